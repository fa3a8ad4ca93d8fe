"""The grading round trip through nbgrader's real commands, for every part:
the solution scores full marks, the untouched student notebook scores 0 on every
code exercise, and a partly solved one lands in between."""

import nbformat
import pytest

from instructor import grading, notebooks
from instructor.testing import answer_ids, make_course, submit, write_submission

PARTS = notebooks.existing_parts()


@pytest.fixture(scope="module", params=PARTS)
def graded(request, tmp_path_factory):
    """A course folder with three submissions of one part, autograded with nbgrader's own
    command; yields (part, gradebook, grade id of the test of the one solved exercise)."""
    from nbgrader.api import Gradebook

    part = request.param
    course = make_course(tmp_path_factory.mktemp(f"grade-{part}"), [part])
    solution = nbformat.read(course / "solutions" / part / f"{part}.ipynb", as_version=4)
    write_submission(course, "full", part, solution)  # the instructor's own notebook
    submit(course, "empty", part, solved="none")
    first = answer_ids(course, part)[0]
    submit(course, "partial", part, solved=[first])
    codes = [c for c in solution.cells if c.cell_type == "code"]
    i = next(i for i, c in enumerate(codes) if c.metadata.get("nbgrader", {}).get("grade_id") == first)
    solved_test = codes[i + 1].metadata["nbgrader"]["grade_id"]
    run = grading.run_nbgrader(["autograde", part, "--create", "--log-level=ERROR"], course,
                               capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        yield part, gb, solved_test


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
