"""Building blocks for grading tests and dry runs: a throw-away course folder, submissions
made from a part's solution (all, some or none of the exercises solved), and tampering.

    course = make_course(tmp_path, ["01-tensors"])        # nbgrader generate_assignment ran there
    submit(course, "alice", "01-tensors", solved="all")

For the coordinator's own tests and benchmark, a course whose one part is tiny, and a grading
task that only hands back the submission as its graded notebook (no kernel, no sandbox)::

    course = trivial_course(tmp_path, students=1000)       # TRIVIAL_PART, 1000 submissions
    coordinator.autograde(course, settings=..., task=pregraded)
    trivial_score(i)                                        # what student i must score
    coordinator.autograde(course, settings=..., task=executed)  # the tests run, in-process

(:func:`pregraded_or_held` keeps chosen students' tasks running until a test lets them go.)
"""

from __future__ import annotations

import atexit
import copy
import shutil
import tempfile
from pathlib import Path

import nbformat

from . import notebooks
from .course import ROOT, grade_id, is_answer_cell, is_test_cell, nbgrader_meta, run_nbgrader
from .outcome import Outcome

# Courses released in this process, by parts: releasing runs one nbgrader process per part,
# and a copy of the same release is the same course (its gradebook is a file in the folder).
_RELEASED: dict[tuple[str, ...], Path] = {}


def make_course(folder: Path, parts: list[str], config: str = "") -> Path:
    """A course folder with this repository's nbgrader_config.py (plus the lines in ``config``)
    and ``parts`` released. Without ``config`` (the gradebook is the course's SQLite file), a
    course with the same parts released earlier in this process is copied instead."""
    key = tuple(parts)
    if _copy_release(key, folder, config):
        return folder
    (folder / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + config)
    for part in parts:
        shutil.copytree(ROOT / "solutions" / part, folder / "solutions" / part)
    notebooks.release(folder, parts)
    _keep_release(key, folder, config)
    return folder


def _copy_release(key: tuple[str, ...], folder: Path, config: str) -> bool:
    """Make ``folder`` (created here) a copy of the release ``key`` kept earlier in this process,
    if any and the course has no ``config`` of its own; whether it did."""
    folder.mkdir(parents=True, exist_ok=True)
    if config or key not in _RELEASED:
        return False
    shutil.copytree(_RELEASED[key], folder, dirs_exist_ok=True, symlinks=True)
    return True


def _keep_release(key: tuple[str, ...], folder: Path, config: str) -> None:
    """Keep a copy of the course just released in ``folder`` (with no ``config`` of its own) as ``key``."""
    if config:
        return
    keep = Path(tempfile.mkdtemp(prefix="course-released-"))
    atexit.register(shutil.rmtree, keep, True)
    shutil.copytree(folder, keep, dirs_exist_ok=True, symlinks=True)
    _RELEASED[key] = keep


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


# ---------------------------------------------------------------------------
# A tiny part, and a task that grades nothing
# ---------------------------------------------------------------------------

TRIVIAL_PART = "00-trivial"
TRIVIAL_POINTS = (2, 1)  # the part's two tests


def _trivial_source() -> nbformat.NotebookNode:
    def meta(gid: str, **kw) -> dict:
        base = {"grade": False, "solution": False, "locked": False, "task": False, "schema_version": 3}
        return {"nbgrader": {**base, "grade_id": gid, **kw}}

    v4 = nbformat.v4
    return v4.new_notebook(cells=[
        v4.new_markdown_cell("Set `answer` to 42."),
        v4.new_code_cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", metadata=meta("answer", solution=True)),
        *(v4.new_code_cell(f'"""Check the answer ({points} points)"""\nassert answer == 42',
                           metadata=meta(f"test_{i}", grade=True, locked=True, points=points))
          for i, points in enumerate(TRIVIAL_POINTS)),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def _failed(i: int) -> tuple[int, ...]:
    return {0: (), 1: (0,), 2: (0, 1)}[i % 3]


def trivial_score(i: int) -> int:
    """What student ``i`` of :func:`trivial_course` scores: none, one, then both tests fail, in turn."""
    return sum(p for j, p in enumerate(TRIVIAL_POINTS) if j not in _failed(i))


def trivial_submission(course: Path, i: int, released: nbformat.NotebookNode | None = None) -> nbformat.NotebookNode:
    """Student ``i``'s notebook as if run: the released one (``released``, else read from the
    course) answered, and an error output in the tests that :func:`trivial_score` says failed."""
    if released is None:
        released = nbformat.read(course / "notebooks" / TRIVIAL_PART / f"{TRIVIAL_PART}.ipynb", as_version=4)
    nb = copy.deepcopy(released)
    next(c for c in nb.cells if is_answer_cell(c)).source = f"answer = {42 if not _failed(i) else i}"
    for j, cell in enumerate(c for c in nb.cells if is_test_cell(c)):
        error = nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=[])
        cell.outputs = [error] if j in _failed(i) else []
    return nb


def trivial_course(folder: Path, students: int = 0, config: str = "") -> Path:
    """A course (this repository's nbgrader_config.py plus ``config``) whose one part,
    :data:`TRIVIAL_PART`, is released, with ``students`` submissions (s00000, s00001, ...).
    Without ``config``, the release made earlier in this process is copied instead."""
    key = (f"trivial:{TRIVIAL_PART}",)
    if not _copy_release(key, folder, config):
        (folder / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text() + config)
        source = folder / "solutions" / TRIVIAL_PART / f"{TRIVIAL_PART}.ipynb"
        source.parent.mkdir(parents=True)
        nbformat.write(_trivial_source(), source)
        run_nbgrader(["generate_assignment", TRIVIAL_PART, "--force", "--log-level=WARN"], folder, check=True)
        _keep_release(key, folder, config)
    released = nbformat.read(folder / "notebooks" / TRIVIAL_PART / f"{TRIVIAL_PART}.ipynb", as_version=4)
    for i in range(students):
        write_submission(folder, f"s{i:05d}", TRIVIAL_PART, trivial_submission(folder, i, released))
    return folder


def pregraded(spec: dict) -> Outcome:
    """A grading task that runs nothing: the submission comes back as its own graded notebook
    (its outputs decide its score), for measuring and testing what the coordinator does."""
    import os

    return Outcome(spec["student"], spec["part"], status="graded", notebook=spec["notebook"].decode("utf-8"),
                   host=os.uname().nodename)


def pregraded_or_held(spec: dict, held: tuple[str, ...] = (), folder: str = "") -> Outcome:
    """:func:`pregraded`, except for the students in ``held``: their task writes
    ``<student>.started`` in ``folder``, then sleeps until ``folder/release`` exists, keeping its
    worker busy for exactly as long as a test wants (however loaded the machine)."""
    import time

    if spec["student"] in held:
        marker = Path(folder)
        (marker / f"{spec['student']}.started").touch()
        while not (marker / "release").exists():
            time.sleep(0.2)
    return pregraded(spec)


def executed(spec: dict) -> Outcome:
    """A grading task for tiny parts without a kernel: the submission's code cells run in this
    process, in order, each test cell replaced by the source's (``spec["source"]``, hidden tests
    included) as nbgrader's autograde does; a cell that raises gets its error output. Scores
    follow the tests as they are now (an edited test changes them), unlike :func:`pregraded`.
    Trusted notebooks only: nothing is confined."""
    import os

    submitted = nbformat.reads(spec["notebook"].decode("utf-8"), as_version=4)
    tests = {grade_id(c): c.source for c in nbformat.reads(spec["source"].decode("utf-8"), as_version=4).cells
             if is_test_cell(c)}
    scope: dict = {}
    for cell in submitted.cells:
        if cell.get("cell_type") != "code":
            continue
        cell.source = tests.get(grade_id(cell), cell.source) if is_test_cell(cell) else cell.source
        cell.outputs = []
        try:
            exec(compile(cell.source, f"<cell {grade_id(cell)}>", "exec"), scope)  # noqa: S102 - trusted test notebooks
        except Exception as exc:  # noqa: BLE001 - a failed cell, as a kernel reports it
            cell.outputs = [nbformat.v4.new_output("error", ename=type(exc).__name__, evalue=str(exc), traceback=[])]
    return Outcome(spec["student"], spec["part"], status="graded", notebook=nbformat.writes(submitted),
                   host=os.uname().nodename)
