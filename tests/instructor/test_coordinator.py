"""The grading round trip through the course's pipeline for every part: the solution scores
full marks, the untouched student notebook scores 0 on every code exercise, a partly solved
one lands in between, feedback shows no hidden test, and the similarity report reads the graded class.

Every test of the graded class lives in this file: pytest-xdist hands whole files to its processes,
and the class would be graded again in each process that runs a file using it."""

import csv

import nbformat
import pytest
from nbgrader.api import Gradebook

from instructor import coordinator
from instructor.course import REPORT, graded_dir
from instructor.settings import Settings
from instructor.similarity import compare, pages
from tests.conftest import PARTS
from tests.instructor.test_similarity import pair_set

pytestmark = [pytest.mark.slow, pytest.mark.course_data(*PARTS)]


def _scores(course, part, student):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(part, part, student)
        return {g.name: (g.score, g.max_score) for g in sub.grades}, sub.score, sub.max_score, sub.flagged


@pytest.mark.parametrize("part", PARTS)
def test_solution_scores_full_marks(graded_class, part):
    scores, score, top, flagged = _scores(graded_class.course, part, "full")
    assert scores and all(s == m for s, m in scores.values()), f"{scores}\n{graded_class.log}"
    assert score == top > 0 and not flagged


@pytest.mark.parametrize("part", PARTS)
def test_untouched_student_notebook_scores_zero(graded_class, part):
    scores, score, _, flagged = _scores(graded_class.course, part, "empty")
    assert all(s == 0 for s, _ in scores.values()), scores
    assert score == 0 and not flagged, "an untouched notebook is an honest 0, not a flag"


@pytest.mark.parametrize("part", PARTS)
def test_partly_solved_scores_in_between(graded_class, part):
    scores, score, top, _ = _scores(graded_class.course, part, "partial")
    solved = graded_class.solved[part]
    assert 0 < score < top
    assert scores[solved][0] == scores[solved][1], f"the solved exercise ({solved}) should score full marks: {scores}"


@pytest.mark.parametrize("part", PARTS)
def test_feedback_shows_no_hidden_test(graded_class, part):
    """Hidden tests stay hidden: not in the source, not in a traceback, for any student."""
    source = nbformat.read(graded_class.course / "solutions" / part / f"{part}.ipynb", as_version=4)
    hidden = []
    for cell in source.cells:
        text, inside = cell.source.splitlines(), False
        for line in text:
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                hidden.append(line.strip())
    assert hidden, f"{part} has no hidden tests"
    # Lines that also appear where the learner can see them (a visible test, the task, their own
    # answers) prove nothing.
    released = nbformat.read(graded_class.course / "notebooks" / part / f"{part}.ipynb", as_version=4)
    for student in ("full", "partial", "empty"):
        submitted = nbformat.read(graded_class.course / "submitted" / student / part / f"{part}.ipynb",
                                  as_version=4)
        answers = [c.source for c in submitted.cells if (c.metadata.get("nbgrader") or {}).get("solution")]
        visible = "\n".join([c.source for c in released.cells] + answers)
        html = (graded_class.course / "feedback" / student / part / f"{part}.html").read_text()
        assert "HIDDEN TESTS" not in html
        leaked = [line for line in hidden if line not in visible and (
            line in html or line.replace("'", "&#39;") in html or line.replace('"', "&quot;") in html)]
        assert not leaked, f"{student}/{part} feedback shows hidden test lines: {leaked[:3]}"


def test_grades_csv_says_how_each_row_was_graded(graded_class):
    with open(graded_class.grades, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * len(PARTS)
    assert {row["status"] for row in rows} == {"graded"}
    assert all("reason" in row for row in rows)


def test_regrading_skips_what_was_graded(graded_class):
    """Run again on the same class: nothing is graded twice, the report stays whole."""

    said = []
    results = coordinator.autograde(graded_class.course, PARTS[:1], settings=Settings.resolve(
        graded_class.course), say=said.append)
    assert results == [] and any("not graded again" in line for line in said), said
    with open(graded_class.course / "autograded" / REPORT, newline="") as f:
        assert len(list(csv.DictReader(f))) == 3 * len(PARTS)


def test_report_runs_on_the_graded_class(graded_class):
    """The similarity report on the class graded end to end (every part; solution, partly solved and
    untouched notebooks), from submitted/ and from the graded copies."""
    course = graded_class.course
    for graded in (False, True):
        out = course / f"similarity-{'graded' if graded else 'submitted'}"
        results = pages.run(course, out=out, graded=graded, say=lambda _: None, progress=False)
        assert set(results) == set(compare.submitted_parts(course)), results.keys()
        for part, result in results.items():
            assert (out / part / "index.html").exists() and (out / part / "pairs.csv").exists()
            assert {s.student for s in result.subs} == {"full", "partial", "empty"}
            assert not [s.problems for s in result.subs if s.student != "empty" and s.problems], part
            pairs = pair_set(result)
            assert frozenset(("full", "empty")) not in pairs and frozenset(("partial", "empty")) not in pairs, \
                f"{part}: an untouched notebook holds only the scaffold"
    assert graded_dir(course, "full", compare.submitted_parts(course)[0]).exists()
