"""The grading round trip through nbgrader's real commands, for every part:
the solution scores full marks, the untouched student notebook scores 0 on every
code exercise, and a partly solved one lands in between."""

import shutil
from pathlib import Path

import nbformat
import pytest

from tools import nbtools

ROOT = Path(__file__).resolve().parents[1]
PARTS = nbtools.existing_parts()


def solve_first_exercise(student: Path, solution: Path, out: Path) -> str:
    """Copy the student notebook with ONLY the first answer cell filled in from the solution.

    Returns the grade id of the test cell that checks that answer."""
    nb = nbformat.read(student, as_version=4)
    sol_cells = [c for c in nbformat.read(solution, as_version=4).cells if c.cell_type == "code"]
    i = next(i for i, c in enumerate(sol_cells) if c.metadata.get("nbgrader", {}).get("solution"))
    answer_id = sol_cells[i].metadata["nbgrader"]["grade_id"]
    test_id = sol_cells[i + 1].metadata["nbgrader"]["grade_id"]
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == answer_id)
    cell.source = "\n".join(line for line in sol_cells[i].source.splitlines()
                            if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    nbformat.write(nb, out)
    return test_id


@pytest.fixture(scope="module", params=PARTS)
def graded(request, tmp_path_factory):
    """A course folder with three submissions of one part, autograded; yields (part, gradebook)."""
    from nbgrader.api import Gradebook

    part = request.param
    course = tmp_path_factory.mktemp(f"grade-{part}")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / part, course / "solutions" / part)
    nbtools.run_nbgrader(["generate_assignment", part, "--log-level=ERROR"], cwd=course, capture_output=True)
    released = course / "notebooks" / part / f"{part}.ipynb"
    solution = course / "solutions" / part / f"{part}.ipynb"
    for student in ("full", "empty", "partial"):
        (course / "submitted" / student / part).mkdir(parents=True)
    target = f"{part}.ipynb"
    shutil.copy(solution, course / "submitted" / "full" / part / target)
    shutil.copy(released, course / "submitted" / "empty" / part / target)
    solved = solve_first_exercise(released, solution, course / "submitted" / "partial" / part / target)
    run = nbtools.run_nbgrader(["autograde", part, "--create", "--log-level=ERROR"], cwd=course,
                               capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        yield part, gb, solved


def _scores(gb, part, student):
    sub = gb.find_submission_notebook(part, part, student)
    return {g.name: (g.score, g.max_score) for g in sub.grades}, sub


def test_solution_scores_full_marks(graded):
    part, gb, _ = graded
    scores, sub = _scores(gb, part, "full")
    assert scores and all(score == top for score, top in scores.values()), scores
    assert sub.score == sub.max_score > 0


def test_untouched_student_notebook_scores_zero(graded):
    part, gb, _ = graded
    scores, sub = _scores(gb, part, "empty")
    assert all(score == 0 for score, _ in scores.values()), scores
    assert sub.score == 0


def test_partly_solved_scores_in_between(graded):
    part, gb, solved = graded
    scores, sub = _scores(gb, part, "partial")
    assert 0 < sub.score < sub.max_score
    assert scores[solved][0] == scores[solved][1], f"the solved exercise ({solved}) should score full marks: {scores}"
