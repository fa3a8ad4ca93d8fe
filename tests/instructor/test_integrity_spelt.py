"""The scan's reading of names spelt at run time (instructor/integrity/spelt.py): each way a cell
can build a name from literals is read back and flagged; honest strings built from pieces are not."""

from __future__ import annotations

import ast

import pytest

from instructor.integrity import scanner
from instructor.integrity.spelt import fold


@pytest.mark.parametrize(("expression", "name"), [
    ('"ge" + "t_ipython"', "get_ipython"),
    ('"input_trans" + "formers_" + "post"', "input_transformers_post"),
    ("f\"{'run_cell'}_async\"", "run_cell_async"),
    ('"nohtypi_teg"[::-1]', "get_ipython"),
    ('"".join(["__buil", "tins__"])', "__builtins__"),
    ('"_".join(("run", "cell"))', "run_cell"),
    ("chr(103) + chr(101) + chr(116)", "get"),
    ('"SETATTR".lower()', "setattr"),
    ('"sxtattr".replace("x", "e")', "setattr"),
    ('base64.b64decode("YWxsY2xvc2U=").decode()', "allclose"),
    ('bytes.fromhex("616c6c636c6f7365").decode()', "allclose"),
    ('codecs.decode("nyypybfr", "rot13")', "allclose"),
])
def test_names_spelt_from_pieces_are_read_back(expression, name):
    made = fold(ast.parse(expression, mode="eval").body)
    assert made is not None and made[0] == name and made[1] > 1, made
    findings = scanner.scan_source(f"import base64, codecs\nname = {expression}\n")
    assert any(f"spells the name {name!r}" in f.reason for f in findings), findings


@pytest.mark.parametrize("source", [
    'globals()["ge" + "t_ipython"]()',
    'getattr(get_shell(), "ev" + "ents").register("post_run_cell", print)',
    'key = "all" + "close"',
])
def test_a_spelt_name_is_flagged_wherever_it_is_used(source):
    assert scanner.scan_source(source + "\n"), source


def test_a_global_read_by_a_key_made_at_run_time_is_flagged():
    [finding] = scanner.scan_source('name = input()\nshell = globals()[name]()\n')
    assert finding.line == 2 and "by a key made at run time" in finding.reason, finding


@pytest.mark.parametrize("source", [
    'print("epoch " + str(1) + " of " + "3")',                   # a message: not a name
    'folder = "runs/" + "dropout-0.2"',                           # a path
    "title = f\"{'loss'}\"",                                        # one piece
    'line = "-" * 40',
    'name = "relu"\nact = getattr(torch.nn.functional, name)',   # a name written out, read by getattr
    'value = globals()["learning_rate"]',                         # a literal key
    'for key in ("weight", "bias"):\n    print(getattr(model, key))',
])
def test_honest_strings_built_from_pieces_are_not_flagged(source):
    assert scanner.scan_source(source + "\n", imports={"torch": "torch"}) == []
