"""Tamper detection (instructor.integrity): the static scan and the canary cells.

The scan tests need no kernel. The kernel tests run each cheat of tests/cheats.py for real, in
a ``python3`` kernel through nbgrader's Execute (allow_errors=True, as in grading), on a small
notebook made from Part 01: the released notebook with the instructor's test cells (hidden
tests included, as nbgrader restores them) and every answer wrong, plus the cheat's cell.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from instructor.course import ROOT, is_test_cell, locked_ids
from instructor.integrity import canaries, scanner
from tests.cheats import CAUGHT_BY, CHEATS, HONEST_CELLS
from tests.instructor.small_notebooks import meta as _meta
from tests.instructor.small_notebooks import read as _read
from tests.instructor.small_notebooks import small_notebook, with_cell

PARTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file())


def score(nb) -> tuple[float, float]:
    """(score, max): nbgrader's rule for autograded test cells: full points unless an error."""
    got = total = 0.0
    for cell in nb.cells:
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            total += meta.get("points", 0)
            if not any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                got += meta.get("points", 0)
    return got, total


def execute(nb, folder: Path, timeout: int = 60):
    """Run ``nb`` the way grading does (nbgrader's Execute, allow_errors=True) in ``folder``."""
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    folder.mkdir(parents=True, exist_ok=True)
    nb = copy.deepcopy(nb)
    # ipc sockets in the run's folder, as grading uses (instructor/tasks.py): kernels started side
    # by side on TCP can lose a race for a free port ("Address already in use"), a flake of the
    # machine's load and not of the canaries.
    # The sockets live in a short folder of their own: a Unix socket's path is limited to ~107 bytes.
    with tempfile.TemporaryDirectory(prefix="k-", dir="/tmp") as sockets:
        config = Config()
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(sockets, "k")
        Execute(timeout=timeout, kernel_name="python3", config=config).preprocess(
            nb, {"metadata": {"path": str(folder)}})
    return nb


def graded_run(nb, folder: Path):
    """Canaries in, execute, canaries out: (reason, score, cleaned notebook)."""
    secret = canaries.new_secret()
    executed = execute(canaries.insert_canaries(nb, secret), folder)
    reason, cleaned = canaries.check_canaries(executed, secret)
    return reason, score(cleaned), cleaned


@pytest.fixture
def kernel_env(kernel, monkeypatch):
    """Kernels import the course's helper package from this checkout."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("MPLBACKEND", "Agg")


# ---------------------------------------------------------------------------
# The scan
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("part", PARTS)
def test_solutions_and_released_notebooks_scan_clean(part):
    for kind in ("solutions", "notebooks"):
        nb = _read(kind, part)
        assert scanner.scan_notebook(nb, locked_ids(nb)) == [], f"{kind}/{part} was flagged"


@pytest.mark.parametrize("name", sorted(HONEST_CELLS))
def test_honest_cells_scan_clean(name):
    nb, i = with_cell(small_notebook("solution"), HONEST_CELLS[name])
    findings = scanner.scan_notebook(nb, locked_ids(_read("solutions")))
    flags = [str(f) for f in findings if not f.note]
    assert flags == [], f"honest code flagged: {flags}"
    if name == "syntax_error":
        assert [(f.cell, f.line, f.note) for f in findings] == [(i, 1, True)], findings


@pytest.mark.parametrize("name", sorted(n for n in CHEATS if "scan" in CAUGHT_BY[n]))
def test_scan_flags_cheat(name):
    nb, i = with_cell(small_notebook(), CHEATS[name], name)
    findings = scanner.scan_notebook(nb, locked_ids(_read("solutions")))
    assert findings, f"{name}: not flagged"
    assert {f.cell for f in findings} == {i}, f"{name}: findings outside the cheat's cell: {findings}"
    for f in findings:
        assert ((not f.note and "\n" not in str(f) and f.quote in CHEATS[name].replace("\n", " "))
                or f.quote.endswith("...")), f


@pytest.mark.parametrize(("source", "reason"), [
    ("import functools\nfunctools.update_wrapper(torch._C._nn, object(), ('cross_entropy_loss',), ())",
     "rebinds an attribute of torch._C._nn with functools.update_wrapper"),
    ("from functools import update_wrapper as copy_names\ncopy_names(F, object(), ['relu'], [])",
     "rebinds an attribute of torch.nn.functional with functools.update_wrapper"),
    ("import functools\nfunctools.wraps(print, ('softmax',), ())(F)",
     "rebinds an attribute of torch.nn.functional with functools.update_wrapper"),
    ("import operator\nget = operator.attrgetter('__kwdefaults__')", "names a function's __kwdefaults__ in a string"),
    ("parts = ['__clo' 'sure__']", "names a function's __closure__ in a string"),
], ids=["update_wrapper_module", "aliased", "wraps_applied_to_module", "attrgetter", "implicit_concatenation"])
def test_scan_flags_changes_made_in_place(source, reason):
    """Routes that change a shared object without an assignment or setattr the scan would see."""
    [finding] = scanner.scan_source(source)
    assert reason in finding.reason, finding


def test_scan_finding_is_one_readable_line():
    [finding] = scanner.scan_source("import torch\ntorch.allclose = lambda *a, **k: True\n")
    assert (finding.cell, finding.line, finding.quote) == (None, 2, "torch.allclose = lambda *a, **k: True")
    assert "torch.allclose" in finding.reason and "\n" not in str(finding)


def test_scan_cells_a_learner_cannot_edit_are_skipped_unless_changed():
    nb = small_notebook()
    test = next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == "test_activation")
    nb.cells[test].source += "\ntorch.allclose = lambda *a, **k: True\n"
    locked = locked_ids(_read("solutions"))
    assert scanner.scan_notebook(nb, locked) == []     # nbgrader restores this cell's source
    sources = {_meta(c)["grade_id"]: c.source for c in _read("solutions").cells if _meta(c).get("grade_id") in locked}
    assert [f.cell for f in scanner.scan_notebook(nb, sources)] == [test]
    # a second cell claiming a locked id (metadata is the learner's to edit) is scanned
    nb.cells.append(copy.deepcopy(nb.cells[test]))
    assert [f.cell for f in scanner.scan_notebook(nb, locked)] == [len(nb.cells) - 1]


# ---------------------------------------------------------------------------
# Canaries without a kernel
# ---------------------------------------------------------------------------

# How test cells name what they call: "nn.Linear" is torch.nn.Linear, and so on.
_TEST_ALIASES = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional", "np": "numpy",
                 "numpy": "numpy", "math": "math"}


def _names_the_tests_use() -> set[str]:
    """What a test cell of a solution calls or compares with, as the canaries name it:
    ``torch.X``, ``torch.nn.X``, ``numpy.X`` and the like for ``torch.X``, ``nn.X``, ``np.X``;
    ``torch.Tensor.X`` for ``anything.X`` when X is a Tensor attribute; ``builtins.X`` for a
    builtin name the cell reads and does not assign itself."""
    import ast
    import builtins

    import torch

    from instructor.course import is_test_cell

    used = set()
    for part in PARTS:
        for cell in _read("solutions", part).cells:
            if cell.cell_type != "code" or not is_test_cell(cell):
                continue
            code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            tree = ast.parse(code)
            assigned = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
                        and isinstance(node.ctx, ast.Store)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and hasattr(builtins, node.id) \
                        and node.id not in assigned and not node.id.startswith("__"):
                    used.add(f"builtins.{node.id}")
                if not isinstance(node, ast.Attribute) or node.attr.startswith("__"):
                    continue
                chain, root = [node.attr], node.value  # torch.nn.functional.relu: every prefix
                while isinstance(root, ast.Attribute):
                    chain.insert(0, root.attr)
                    root = root.value
                if isinstance(root, ast.Name) and root.id in _TEST_ALIASES:
                    used.add(".".join([_TEST_ALIASES[root.id], *chain]))
                elif hasattr(torch.Tensor, node.attr):
                    used.add(f"torch.Tensor.{node.attr}")
    return used


def test_every_name_a_test_uses_is_fingerprinted_by_the_canaries():
    """A test's verdict rests on every torch function, Tensor method, torch.nn class and builtin
    it calls: each must be one the canaries check is still the original (a Tensor.mean that
    always answers zero passes a "mean is 0" test, a set whose == always holds passes a "these
    keys" test, as surely as a lenient allclose passes any)."""
    missing = sorted(_names_the_tests_use() - set(canaries._IDENTITIES) - canaries.REWRAPPED_BY_TORCH)
    assert not missing, f"add to instructor/integrity/identities.py's _IDENTITIES: {missing}"


_FINGERPRINTS = """
import contextlib, io
from instructor.integrity.canaries import _IDENTITIES
from instructor.integrity.identities import fingerprint_code

def fingerprints():
    \"\"\"path -> what a canary prints for it, by the canary's own code.\"\"\"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec("import builtins as _qb, numpy as _qn, torch as _qt\\n_qX = _qb.exec\\n" + fingerprint_code("_q", "P"), {})
    return dict(zip(_IDENTITIES, out.getvalue().split()[1:], strict=False))

def changed(before):
    now = fingerprints()
    return [p for p in _IDENTITIES if now[p] != before[p]]
"""


def _fingerprints_after(change: str) -> str:
    """The paths whose canary fingerprint ``change`` altered, as a fresh Python process prints them."""
    import subprocess
    import sys

    code = _FINGERPRINTS + "before = fingerprints()\n" + change + "\nprint(changed(before))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_what_the_canaries_fingerprint_stays_itself_when_torch_loads_its_own_modules():
    """Honest work loads torch._dynamo (torch.compile, ONNX export), torchvision and TensorBoard
    mid-notebook: none of that may change an object the canaries fingerprint, nor the code,
    defaults or closure of a function among them."""
    loads = "import torch._dynamo, torch.export, torch.onnx, torch.utils.tensorboard, torchvision.transforms.v2"
    assert _fingerprints_after(loads) == "[]"


@pytest.mark.parametrize(("change", "path"), [
    ("import functools\ndef _f(*shapes):\n    return shapes[0]\n"
     "functools.update_wrapper(torch.broadcast_shapes, _f, assigned=('__code__',), updated=())",
     "torch.broadcast_shapes"),
    ("torch.testing.assert_close.__kwdefaults__['atol'] = 1e9", "torch.testing.assert_close"),
    ("torch.nn.functional.softmax.__defaults__ = (None, 3, None)", "torch.nn.functional.softmax"),
], ids=["code", "keyword_default_in_place", "defaults"])
def test_a_function_changed_in_place_changes_its_fingerprint(change, path):
    """Same object, same address, other behaviour: the fingerprint follows its code and defaults."""
    assert _fingerprints_after("import numpy, torch\n" + change) == str([path])


def test_the_fingerprint_follows_a_closure_s_contents():
    """A closure cell can be rewritten in place (``cell_contents``): the fingerprint shows it."""
    code = ("import builtins as _qb\nfrom instructor.integrity.identities import fingerprint_code\n"
            "ns = {'_qb': _qb}\nexec(fingerprint_code('_q', 'P').split('_qb.print')[0], ns)  # defines _qd\n"
            "def outer(x):\n    return lambda: x\n"
            "f = outer(1)\nbefore = ns['_qd'](f)\nf.__closure__[0].cell_contents = 2\n"
            "print(before != ns['_qd'](f), before.count('+'))\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["True", "3"], out.stdout + out.stderr[-2000:]


def test_canaries_placed_at_the_start_before_every_test_cell_and_at_the_end():
    nb = small_notebook()
    secret = canaries.new_secret()
    marked = canaries.insert_canaries(nb, secret)
    flags = [canaries.is_canary(c, secret) for c in marked.cells]
    tests = [i for i, c in enumerate(nb.cells) if is_test_cell(c)]
    assert tests and flags[:2] == flags[-2:] == [True, True] and sum(flags) == 2 * (len(tests) + 2)
    originals = [copy.deepcopy(c) for c, f in zip(marked.cells, flags, strict=True) if not f]
    starts = [i for i, f in enumerate(flags) if f and (i == 0 or not flags[i - 1])]
    for p in starts[1:-1]:   # a test cell gets the check of the canary before it on its first line
        canary = canaries._canary(secret, marked.cells[p].metadata[canaries.CANARY_KEY]["canary"] // 2)
        assert marked.cells[p + 2].source.startswith(canary.inline) and "\n" not in canary.inline
    for cell in originals:
        cell.source = cell.source.split("(lambda: 0).__globals__); ", 1)[-1] if is_test_cell(cell) else cell.source
    assert originals == nb.cells, "insert_canaries changed the learner's cells"
    assert all(flags[i + 1] for i in starts) and len(starts) == len(tests) + 2
    before = [[c.get("id") for c in originals].index(marked.cells[p + 2].get("id")) for p in starts[1:-1]]
    assert before == tests, "each test cell runs right after a canary"
    assert all(not _meta(c) for c, f in zip(marked.cells, flags, strict=True) if f), \
        "canaries must not be nbgrader cells"
    nbformat.validate(marked)


def test_a_learners_copy_of_a_test_cell_gets_no_canary_of_its_own():
    """A second cell with a test's id is the learner's code: checked before the next real test, like any."""
    nb = small_notebook()
    test = next(i for i, c in enumerate(nb.cells) if is_test_cell(c))
    nb.cells.insert(test, copy.deepcopy(nb.cells[test]))   # the copy comes first: it is the locked one
    secret = canaries.new_secret()
    flags = [canaries.is_canary(c, secret) for c in canaries.insert_canaries(nb, secret).cells]
    assert sum(flags) == 2 * (sum(1 for c in nb.cells if is_test_cell(c)) - 1 + 2)


def test_a_stop_inside_a_checked_span_points_at_the_cells_before_it_too():
    """Tampering in an early cell and a cell stopped later, before the same check: flagged as timed
    out (a stopped cell can break the kernel by itself), naming the cells that ran before the stop."""
    nb = small_notebook()
    secret = canaries.new_secret()
    first_test = next(i for i, c in enumerate(nb.cells) if is_test_cell(c))
    assert first_test >= 3, "the test needs a span of at least three cells before the first test"

    def tamper(k, checks, fails, canary):
        if k == 1:
            checks.outputs[0]["text"] = checks.outputs[0]["text"].replace(canary.token, canary.prefix + " 1 000000001")

    marked = _fake_run(nb, secret, tamper)
    stopped = first_test   # the last cell before the check, numbered from 1
    index = next(i for i, c in enumerate(marked.cells) if c is not None and c.source == nb.cells[stopped - 1].source)
    reason, _ = canaries.check_canaries(marked, secret, [{"cell": index, "label": f"cell {stopped}"}])
    assert reason.startswith(f"timed out in cell {stopped}: "), reason
    assert f"cells 1-{stopped - 1} ran before the stop since the last check" in reason, reason


def test_a_tampering_report_names_the_cells_since_the_last_check():
    nb = small_notebook()
    secret = canaries.new_secret()

    def tamper(k, checks, fails, canary):
        if k == 1:   # the canary before the first test cell
            checks.outputs[0]["text"] = checks.outputs[0]["text"].replace(canary.token, canary.prefix + " 1 000000001")

    reason, _ = canaries.check_canaries(_fake_run(nb, secret, tamper), secret)
    first_test = next(i for i, c in enumerate(nb.cells) if is_test_cell(c))
    span = f"cell {first_test}" if first_test == 1 else f"cells 1-{first_test}"
    assert reason.startswith(f"tampered: in the canary after {span}"), reason


def test_canaries_depend_on_the_secret_and_stay_out_of_sight():
    nb = small_notebook()
    a, b = (canaries.insert_canaries(nb, canaries.new_secret()) for _ in range(2))
    sources_a = {c.source for c in a.cells} - {c.source for c in nb.cells}
    sources_b = {c.source for c in b.cells} - {c.source for c in nb.cells}
    assert sources_a and not sources_a & sources_b
    secret = canaries.new_secret()
    canary = canaries._canary(secret, 0)
    for source in (canary.checks, canary.fails):
        assert secret not in source and canary.token not in source
        assert source.startswith('"""Check ') and "assert " in source, "canaries must look like test cells"
    assert "BEGIN HIDDEN TESTS" in canary.checks
    assert canary.message in canary.fails   # the kernel must raise it; it cannot be hidden


def _fake_run(nb, secret, tamper=None):
    """``nb`` with canaries whose outputs are what an honest kernel gives (or ``tamper``'s:
    called with k, the canary's two cells, and the canary)."""
    nb = canaries.insert_canaries(nb, secret)
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
    cells = [c for c in nb.cells if canaries.is_canary(c, secret)]
    seen = " ".join(["<an_address>"] * (len(canaries._IDENTITIES) + len(canaries._NAMESPACE)))
    for k in range(len(cells) // 2):
        canary, checks, fails = canaries._canary(secret, k), cells[2 * k], cells[2 * k + 1]
        checks.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                 text=f"{canary.token}\n{canary.prefix}= {seen}\n")]
        for test in (c for c in nb.cells if c.cell_type == "code" and c.source.startswith(canary.inline)):
            test.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{canary.inline_prefix}= {seen}\n")]
        fails.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=canary.message, traceback=[])]
        if tamper:
            tamper(k, checks, fails, canary)
    return nb


@pytest.mark.parametrize("part", PARTS)
def test_every_test_cell_of_the_course_gets_the_check_on_its_first_line(part):
    """The check goes before a test cell's first statement, on its first line: every test cell of the
    course starts with a statement that can follow another there (its docstring)."""
    nb = _read("solutions", part)
    marked = canaries.insert_canaries(nb, canaries.new_secret())
    tests = [c for c in marked.cells if is_test_cell(c)]
    assert tests and all(c.source.startswith("import builtins as _q") for c in tests), part


def test_a_test_cell_that_cannot_take_the_check_runs_as_written():
    """A test cell whose first line is a compound statement or IPython's syntax gets no check there
    (it would not compile): it runs as the course wrote it, right after its canary."""
    nb = small_notebook()
    test = next(c for c in nb.cells if is_test_cell(c))
    test.source = "with torch.no_grad():\n    x = torch.ones(2)\nassert x.sum() == 2"
    marked = canaries.insert_canaries(nb, canaries.new_secret())
    assert test.source in [c.source for c in marked.cells]


def test_the_checks_own_line_counts_not_a_look_alike_printed_after_it():
    """The test's code runs after the check at its top: a line it prints that looks like the check's
    (an honest fingerprint copied from earlier) does not hide what the check saw."""
    nb, secret = small_notebook(), canaries.new_secret()
    run = _fake_run(nb, secret)
    for cell in run.cells:
        if cell.cell_type == "code" and "(lambda: 0).__globals__); " in cell.source[:40000] \
                and not canaries.is_canary(cell, secret):
            honest = cell.outputs[0]["text"]
            cell.outputs[0]["text"] = honest.replace("<an_address>", "<a_lenient_one>", 1) + honest
    reason = canaries.check_canaries(run, secret)[0]
    assert reason and reason.startswith("tampered: the check at the top of cell") and "replaced" in reason, reason


def test_a_check_printed_in_pieces_is_removed_whole():
    """The kernel may send one long printed line as several stream messages: the check's line goes,
    whole, and what the test printed itself stays."""
    nb, secret = small_notebook(), canaries.new_secret()
    run = _fake_run(nb, secret)
    split = 0
    for cell in run.cells:
        if cell.cell_type == "code" and cell.get("outputs") and "(lambda: 0).__globals__); " in cell.source[:40000] \
                and not canaries.is_canary(cell, secret):
            text = cell.outputs[0]["text"]
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=piece)
                            for piece in ("the test's own line\n", text[:7], text[7:900], text[900:])]
            split += 1
    reason, cleaned = canaries.check_canaries(run, secret)
    assert split and reason is None, reason
    printed = [o["text"] for c in cleaned.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"]
    assert printed == ["the test's own line\n"] * split


@pytest.mark.parametrize(("tamper", "expected"), [
    (None, None),
    # a learner's background thread printing into the canary's output does not matter
    (lambda k, c, f, can: c.outputs[0].update(text="epoch 1/3" + can.token + "\r50%\n"), None),
    (lambda k, c, f, can: f.outputs.clear() if k == 2 else None, "should have failed but ran without an error"),
    (lambda k, c, f, can: c.outputs.clear() if k == 1 else None, "neither ran its checks nor printed"),
    (lambda k, c, f, can: c.outputs[0].update(text=can.token[:-9] + "100000000\n"), "must fail passed: torch.allclose"),
    (lambda k, c, f, can: f.outputs[0].update(ename="NameError", evalue="x"), "raised NameError: x"),
    (lambda k, c, f, can: c.outputs.append(f.outputs[0]), "raised AssertionError"),
])
def test_check_canaries_reasons(tamper, expected):
    nb, secret = small_notebook(), canaries.new_secret()
    reason, cleaned = canaries.check_canaries(_fake_run(nb, secret, tamper), secret)
    # strict=False: a length mismatch is reported by the assert just below, not as a ValueError here
    assert cleaned.cells == nb.cells or all(c.source == d.source for c, d in zip(cleaned.cells, nb.cells, strict=False))
    assert len(cleaned.cells) == len(nb.cells)
    if expected is None:
        assert reason is None
    else:
        assert reason and reason.startswith("tampered: ") and expected in reason and "\n" not in reason, reason


@pytest.mark.parametrize("cell", ["checks", "fails"])
def test_a_canary_starved_of_memory_is_no_tampering(cell):
    """A learner's cell that filled its memory limit and kept it (a list of arrays grown until
    MemoryError) leaves the canaries after it none either: that is "out of memory", flagged for the
    instructor and never graded as if vouched for, and never "tampered"."""
    nb, secret = small_notebook(), canaries.new_secret()

    def starve(k, checks, fails, canary):
        if k >= 1:
            {"checks": checks, "fails": fails}[cell].outputs = [
                nbformat.v4.new_output("error", ename="MemoryError", evalue="", traceback=[])]
    reason, _ = canaries.check_canaries(_fake_run(nb, secret, starve), secret)
    assert reason.startswith("out of memory: the canary after cell") and "MemoryError" in reason, reason


def test_canary_failures_after_a_timeout_are_blamed_on_it():
    """A cell stopped at its time limit (an import cut halfway, say) can break the kernel by
    itself: the canaries after it failing is "timed out", never "tampered"; before it, tampered."""
    nb, secret = small_notebook(), canaries.new_secret()
    run = _fake_run(nb, secret, lambda k, c, f, can: c.outputs[0].update(text=can.token[:-9] + "100000000\n")
                    if k >= 1 else None)
    marked = [i for i, c in enumerate(run.cells) if canaries.is_canary(c, secret)]
    first_bad = marked[2]  # canary 1's first cell; the learner's cell just before it timed out
    stopped = first_bad - 1
    number = 1 + sum(1 for c in run.cells[:stopped] if not canaries.is_canary(c, secret))
    timeouts = [{"cell": stopped, "label": f"cell {number}", "kind": "time"}]
    reason, cleaned = canaries.check_canaries(run, secret, timeouts)
    assert reason.startswith(f"timed out in cell {number}: ") and "could not vouch" in reason, reason
    assert "torch.allclose" in reason and "\n" not in reason and len(cleaned.cells) == len(nb.cells)
    # a stop AFTER the failing canary does not excuse it
    late = [{"cell": marked[-1] - 1, "label": f"cell {len(nb.cells)}", "kind": "time"}]
    assert canaries.check_canaries(run, secret, late)[0].startswith("tampered: ")
    assert canaries.check_canaries(run, secret)[0].startswith("tampered: ")


def test_check_canaries_stopped_run_and_spoofed_metadata():
    nb, secret = small_notebook(), canaries.new_secret()
    run = _fake_run(nb, secret)
    stopped = copy.deepcopy(run)                      # the kernel died half way: later cells never ran
    half = len(stopped.cells) // 2
    for cell in stopped.cells[half:]:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    assert canaries.check_canaries(stopped, secret)[0] is None
    skipped = copy.deepcopy(run)                      # one canary never ran, later cells did
    for cell in [c for c in skipped.cells if canaries.is_canary(c, secret)][:2]:
        cell.outputs, cell.execution_count = [], None
    assert "did not run" in canaries.check_canaries(skipped, secret)[0]
    # metadata stripped (ClearMetadataPreprocessor): canaries are still found by their ids
    for cell in run.cells:
        cell.metadata.pop(canaries.CANARY_KEY, None)
    reason, cleaned = canaries.check_canaries(run, secret)
    assert reason is None and len(cleaned.cells) == len(nb.cells)
    # a learner's cell carrying canary metadata is not a canary (and its marker is dropped)
    spoof = copy.deepcopy(nb)
    spoof.cells[2].metadata[canaries.CANARY_KEY] = {"canary": 0}
    marked = canaries.insert_canaries(spoof, secret)
    assert not canaries.is_canary(marked.cells[2], secret)


# ---------------------------------------------------------------------------
# In a kernel
# ---------------------------------------------------------------------------

def _run_all(jobs: dict[str, object], tmp_path: Path) -> dict[str, tuple]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(graded_run, nb, tmp_path / name) for name, nb in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


def test_honest_notebooks_pass_the_canaries(kernel_env, tmp_path):
    """Right answers, wrong answers, and right answers among honest extras (a failing cell,
    progress bars, prints, magics, shadowed builtins): no reason, and the right scores."""
    extras = small_notebook("solution")
    for name in ("own_helpers", "own_classes", "tqdm_loop", "tqdm_auto", "library_threads", "own_thread_joined",
                 "prints", "stderr_warning",
                 "config_and_context", "magics", "own_assert_fails", "raises", "syntax_error"):
        extras, _ = with_cell(extras, HONEST_CELLS[name])
    results = _run_all({"solution": small_notebook("solution"), "wrong": small_notebook("wrong"),
                        "extras": extras}, tmp_path)
    for name, (reason, _, _) in results.items():
        assert reason is None, f"{name}: {reason}"
    full = score(small_notebook())[1]
    assert results["solution"][1] == (full, full) and results["extras"][1] == (full, full)
    assert results["wrong"][1] == (0, full)


def test_full_solution_notebook_passes_the_canaries(kernel_env, tmp_path):
    nb = _read("solutions")
    reason, got, cleaned = graded_run(nb, tmp_path / "full")
    assert reason is None
    assert got[0] == got[1], f"the solution lost points with canaries: {got}"
    assert [c.source for c in cleaned.cells] == [c.source for c in nb.cells]


def test_test_cells_keep_their_own_source_outputs_and_tracebacks(kernel_env, tmp_path):
    """The check put at the top of each test cell leaves no trace in the graded notebook: not in the
    source, not in the outputs, not in a traceback that shows the lines around a failing one."""
    nb = small_notebook("wrong")
    reason, _, cleaned = graded_run(nb, tmp_path / "wrong")
    assert reason is None
    assert [c.source for c in cleaned.cells] == [c.source for c in nb.cells]
    text = json.dumps(cleaned.cells)
    assert "_object_at_0x" not in text and "import builtins as _q" not in text and "__globals__" not in text
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    [standardize] = [ansi.sub("", "\n".join(o.traceback)) for c in cleaned.cells for o in c.get("outputs", [])
                     if _meta(c).get("grade_id") == "test_standardize" and o.output_type == "error"]
    assert '1 """Check standardize' in standardize, standardize   # it fails on line 4: line 1 is shown


@pytest.mark.parametrize("chunk", range(3))
def test_canaries_catch_cheats(kernel_env, tmp_path, chunk):
    """Every cheat the canaries must catch, each in its own kernel (three at a time)."""
    names = sorted(n for n in CHEATS if "canary" in CAUGHT_BY[n])[chunk::3]
    results = _run_all({n: with_cell(small_notebook(), CHEATS[n], n)[0] for n in names}, tmp_path)
    missed = {n: r[1] for n, r in results.items() if r[0] is None}
    assert not missed, f"cheats the canaries missed (score they got): {missed}"
    for reason, _, cleaned in results.values():
        assert reason.startswith("tampered: ") and "\n" not in reason, reason
        assert not any(canaries.CANARY_KEY in c.metadata for c in cleaned.cells)
