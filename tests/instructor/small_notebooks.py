"""Small notebooks made from Part 01 for tests of the static scan, the canaries and the
preprocessors that run them: the released notebook cut down to four exercises, with the
instructor's test cells (hidden tests included, as nbgrader restores them)."""

from __future__ import annotations

import copy

import nbformat

from instructor.course import ROOT, is_locked

PART = "01-tensors"
KEEP = ("setup", "activation", "test_activation", "neuron", "test_neuron", "broadcast_shape",
        "test_broadcast_shape", "standardize", "test_standardize")


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def read(kind: str, part: str = PART):
    return nbformat.read(ROOT / kind / part / f"{part}.ipynb", as_version=4)


def small_notebook(answers: str = "wrong"):
    """Part 01 cut down to four exercises: a markdown cell, setup, imports, the data cell the
    tests use, and the answer and test cells. Test cells hold the instructor's source (hidden
    tests included); answers are the released stubs ("wrong") or the solution's ("solution")."""
    released, solution = read("notebooks"), read("solutions")
    by_id = {meta(c).get("grade_id"): c for c in solution.cells if meta(c).get("grade_id")}
    cells = [next(c for c in released.cells if c.cell_type == "markdown")]
    for cell in released.cells:
        gid = meta(cell).get("grade_id")
        plain = cell.cell_type == "code" and not gid and (
            "import torch" in cell.source or cell.source.startswith("features = torch.randn((1, 5))"))
        if gid in KEEP or plain:
            cell = copy.deepcopy(cell)
            if gid and (is_locked(cell) or answers == "solution"):
                cell.source = by_id[gid].source
            cells.append(cell)
    nb = copy.deepcopy(released)
    nb.cells = cells
    return nb


def with_cell(nb, source: str, name: str = ""):
    """A copy of ``nb`` with a learner's cell holding ``source`` right after the imports (or,
    for "markdown_converted", the first markdown cell turned into that code cell)."""
    nb = copy.deepcopy(nb)
    if name == "markdown_converted":
        i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown")
        old = nb.cells[i]
        new = nbformat.v4.new_code_cell(source)
        new.metadata = old.metadata
        new["id"] = old.get("id", new.get("id"))
        nb.cells[i] = new
        return nb, i
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "import torch" in c.source
             and not meta(c)) + 1
    nb.cells.insert(i, nbformat.v4.new_code_cell(source))
    return nb, i
