"""Building blocks for grading tests and dry runs: a throw-away course folder, submissions
made from a part's solution (all, some or none of the exercises solved), and tampering.

    course = make_course(tmp_path, ["01-tensors"])        # nbgrader generate_assignment ran there
    submit(course, "alice", "01-tensors", solved="all")
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import nbformat

from . import grading, sandbox

ROOT = grading.ROOT


def require_sandbox() -> None:
    """Skip, or fail in CI (CI=true) or when GRADING_REQUIRE_SANDBOX=1, if bwrap cannot run."""
    import pytest

    ok, message = sandbox.probe()
    if ok:
        return
    text = (f"the grading sandbox is unavailable: {message}. "
            "Install it with `apt-get install -y bubblewrap`.")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("GRADING_REQUIRE_SANDBOX") == "1":
        pytest.fail(text + " (required: CI or GRADING_REQUIRE_SANDBOX=1)", pytrace=False)
    pytest.skip(text)


def make_course(folder: Path, parts: list[str]) -> Path:
    """A course folder with this repository's nbgrader_config.py and ``parts`` released."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    for part in parts:
        shutil.copytree(ROOT / "solutions" / part, folder / "solutions" / part)
        grading.run_nbgrader(["generate_assignment", part, "--force", "--log-level=ERROR"], folder,
                             check=True, capture_output=True)
    return folder


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def answer_ids(course: Path, part: str) -> list[str]:
    """The grade ids of a part's answer cells, in order."""
    nb = nbformat.read(course / "solutions" / part / f"{part}.ipynb", as_version=4)
    return [_meta(c)["grade_id"] for c in nb.cells if _meta(c).get("solution")]


def student_notebook(course: Path, part: str, solved: str | list[str] = "none") -> nbformat.NotebookNode:
    """The released notebook with the answers in ``solved`` ("all", "none" or grade ids) filled in
    from the solution, the way a learner would type them."""
    released = nbformat.read(course / "notebooks" / part / f"{part}.ipynb", as_version=4)
    solution = nbformat.read(course / "solutions" / part / f"{part}.ipynb", as_version=4)
    wanted = answer_ids(course, part) if solved == "all" else ([] if solved == "none" else list(solved))
    answers = {_meta(c)["grade_id"]: c.source for c in solution.cells if _meta(c).get("solution")}
    for cell in released.cells:
        gid = _meta(cell).get("grade_id")
        if gid in wanted:
            cell.source = "\n".join(line for line in answers[gid].splitlines()
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return released


def write_submission(course: Path, student: str, part: str, nb=None, text: str | None = None) -> Path:
    folder = course / "submitted" / student / part
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    path = folder / f"{part}.ipynb"
    if text is not None:
        path.write_text(text)
    elif nb is not None:
        nbformat.write(nb, path)
    return path


def submit(course: Path, student: str, part: str, solved: str | list[str] = "none") -> Path:
    return write_submission(course, student, part, student_notebook(course, part, solved))


def grade_cells(nb) -> list:
    return [c for c in nb.cells if _meta(c).get("grade") and not _meta(c).get("solution")]


def set_answer(nb, grade_id: str, source: str):
    """A copy of ``nb`` whose answer cell ``grade_id`` holds ``source``."""
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if _meta(c).get("grade_id") == grade_id)
    cell.source = source
    return nb


def insert_code(nb, index: int, source: str):
    """A copy of ``nb`` with a new (student-added) code cell at ``index``."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb
