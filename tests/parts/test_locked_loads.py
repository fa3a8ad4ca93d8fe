"""A locked cell that unpickles loads only bytes it made itself.

The static scan reads the cells a learner can edit; a locked cell runs the instructor's source and is
not scanned. A locked ``torch.load(path, weights_only=False)`` (or ``pickle.load``, ``np.load`` with
``allow_pickle=True``) on a path or buffer an editable cell made would run whatever bytes the
learner wrote there, out of the scan's sight: a patch to ``torch.allclose`` carried in a pickle.
So every such load in a locked cell reads a name bound in that same cell, from a literal
constructor of its own (``io.BytesIO()``), never a path a learner's cell could have written.
"""

from __future__ import annotations

import ast

import pytest

from tests.parts.cells import label, meta, parse, parts, solution

_UNPICKLING = {"load", "loads"}


def _unpickles(call: ast.Call) -> bool:
    """``torch.load(..., weights_only=False)``, ``pickle.load(s)``, ``np.load(..., allow_pickle=True)``."""
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr in _UNPICKLING):
        return False
    owner = func.value.id if isinstance(func.value, ast.Name) else ""
    flags = {k.arg: k.value for k in call.keywords}
    if owner == "pickle":
        return True
    if owner == "torch":
        return isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is False
    if owner in ("np", "numpy"):
        return isinstance(flags.get("allow_pickle"), ast.Constant) and flags["allow_pickle"].value is True
    return False


def _bound_here(tree: ast.Module) -> set[str]:
    return {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def _locked_loads():
    for part in parts():
        for i, cell in enumerate(solution(part).cells):
            if cell.cell_type != "code" or not meta(cell).get("locked") or meta(cell).get("grade"):
                continue
            tree = parse(cell.source)
            for call in (n for n in ast.walk(tree or ast.Module(body=[])) if isinstance(n, ast.Call)):
                if _unpickles(call):
                    yield part, label(cell, i), call, _bound_here(tree)


@pytest.mark.parametrize(("part", "where", "call", "bound"), list(_locked_loads()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_a_locked_cell_unpickles_only_what_it_made(part, where, call, bound):
    source = call.args[0] if call.args else None
    assert isinstance(source, ast.Name) and source.id in bound, (
        f"{part} {where}: {ast.unparse(call)} reads bytes this cell did not make: a learner's cell "
        "could have written them (make them in the cell, as Part 6's unpickle_demo does)")


def test_the_course_has_such_a_demo():
    """Part 6 shows what weights_only=False runs: the check above is not vacuous."""
    assert any(part == "06-saving-loading" for part, *_ in _locked_loads())
