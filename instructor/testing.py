"""Building blocks for grading tests and dry runs: a throw-away course folder, submissions
made from a part's solution (all, some or none of the exercises solved), and tampering.

    course = make_course(tmp_path, ["01-tensors"])        # nbgrader generate_assignment ran there
    submit(course, "alice", "01-tensors", solved="all")
"""

from __future__ import annotations

import atexit
import copy
import shutil
import tempfile
from pathlib import Path

import nbformat

from . import notebooks
from .course import ROOT, grade_id, is_answer_cell, is_test_cell, nbgrader_meta

# Courses released in this process, by parts: releasing runs one nbgrader process per part,
# and a copy of the same release is the same course (its gradebook is a file in the folder).
_RELEASED: dict[tuple[str, ...], Path] = {}


def make_course(folder: Path, parts: list[str], config: str = "") -> Path:
    """A course folder with this repository's nbgrader_config.py (plus the lines in ``config``)
    and ``parts`` released. Without ``config`` (the gradebook is the course's SQLite file), a
    course with the same parts released earlier in this process is copied instead."""
    folder.mkdir(parents=True, exist_ok=True)
    key = tuple(parts)
    if not config and key in _RELEASED:
        shutil.copytree(_RELEASED[key], folder, dirs_exist_ok=True, symlinks=True)
        return folder
    (folder / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + config)
    for part in parts:
        shutil.copytree(ROOT / "solutions" / part, folder / "solutions" / part)
    notebooks.release(folder, parts)
    if not config:
        keep = Path(tempfile.mkdtemp(prefix="course-released-"))
        atexit.register(shutil.rmtree, keep, True)
        shutil.copytree(folder, keep, dirs_exist_ok=True, symlinks=True)
        _RELEASED[key] = keep
    return folder


def solved_test_id(course: Path, part: str, answer_id: str) -> str:
    """The grade id of the test cell that checks answer ``answer_id`` (the next graded cell)."""
    nb = nbformat.read(course / "solutions" / part / f"{part}.ipynb", as_version=4)
    cells = [c for c in nb.cells if nbgrader_meta(c).get("grade") or is_answer_cell(c)]
    i = next(i for i, c in enumerate(cells) if grade_id(c) == answer_id)
    return next(grade_id(c) for c in cells[i + 1:] if is_test_cell(c))


def answer_ids(course: Path, part: str) -> list[str]:
    """The grade ids of a part's answer cells, in order."""
    nb = nbformat.read(course / "solutions" / part / f"{part}.ipynb", as_version=4)
    return [grade_id(c) for c in nb.cells if is_answer_cell(c)]


def student_notebook(course: Path, part: str, solved: str | list[str] = "none") -> nbformat.NotebookNode:
    """The released notebook with the answers in ``solved`` ("all", "none" or grade ids) filled in
    from the solution, the way a learner would type them."""
    released = nbformat.read(course / "notebooks" / part / f"{part}.ipynb", as_version=4)
    solution = nbformat.read(course / "solutions" / part / f"{part}.ipynb", as_version=4)
    wanted = answer_ids(course, part) if solved == "all" else ([] if solved == "none" else list(solved))
    answers = {grade_id(c): c.source for c in solution.cells if is_answer_cell(c)}
    for cell in released.cells:
        gid = grade_id(cell)
        if gid in wanted:
            cell.source = "\n".join(line for line in answers[gid].splitlines()
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return released


def write_submission(course: Path, student: str, part: str, nb=None, text: str | None = None) -> Path:
    """submitted/<student>/<part>/<part>.ipynb holding ``nb`` (or the raw ``text``)."""
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
    """Submit the released notebook with the answers in ``solved`` filled in (see student_notebook)."""
    return write_submission(course, student, part, student_notebook(course, part, solved))


def grade_cells(nb) -> list:
    """The test cells of ``nb`` (graded, not answers)."""
    return [c for c in nb.cells if is_test_cell(c)]


def set_answer(nb, wanted: str, source: str):
    """A copy of ``nb`` whose answer cell (grade id ``wanted``) holds ``source``."""
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if grade_id(c) == wanted)
    cell.source = source
    return nb


def insert_code(nb, index: int, source: str):
    """A copy of ``nb`` with a new (student-added) code cell at ``index``."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb
