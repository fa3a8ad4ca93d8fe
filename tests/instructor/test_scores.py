"""instructor.scores: a batch's rows written in the gradebook's transaction (what nbgrader's
SaveAutoGrades and AssignLatePenalties would store) and read back in one query. On the trivial
course of tests/instructor/conftest.py, with its SQLite gradebook; no kernel runs."""

from __future__ import annotations

from datetime import datetime, timedelta

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties

from instructor import scores, testing
from instructor.course import db_url
from instructor.deadlines import Deadlines

PART = testing.TRIVIAL_PART
DUE = datetime(2026, 10, 6, 23, 59)


def rows(course, *students: int, **kw) -> list[scores.Row]:
    """Rows of the trivial course's students, graded as :func:`instructor.testing.trivial_score` says."""
    return [scores.Row(f"s{i:05d}", PART, kw.get("timestamp"), testing.trivial_submission(course, i),
                       zero=kw.get("zero", False), flagged=kw.get("flagged", False)) for i in students]


def late_penalties(deadlines: Deadlines | None):
    late = AssignLatePenalties(config=deadlines.nbgrader_config()) if deadlines else AssignLatePenalties()
    late.init_plugin()
    return late


def store(course, batch, deadlines=None, commit=True):
    """store_scores in one session; committed (then read back) or rolled back."""
    with Gradebook(db_url(course)) as gb:
        parts = {PART: scores.read_part(gb.db, PART)}
        subs = scores.store_scores(gb.db, parts, batch, deadlines, late_penalties(deadlines))
        if not commit:
            gb.db.rollback()
            return None
        gb.db.commit()
        return scores.read_scores(gb.db, parts, batch, subs, deadlines)


def test_read_part_finds_the_cells_of_the_released_part(trivial_course):
    with Gradebook(db_url(trivial_course)) as gb:
        part = scores.read_part(gb.db, PART)
        assert part.assignment_id == gb.find_assignment(PART).id and part.duedate is None
    assert list(part.notebooks) == [PART]
    assert sorted(part.grade_cells[PART]) == ["test_0", "test_1"]
    assert sorted(part.comment_cells[PART]) == ["answer"]


def test_an_unreleased_part_is_an_error(trivial_course):
    from sqlalchemy.exc import NoResultFound

    with Gradebook(db_url(trivial_course)) as gb, pytest.raises(NoResultFound):
        scores.read_part(gb.db, "99-not-released")


def test_scores_are_nbgraders_and_nothing_is_stored_before_the_commit(trivial_course):
    assert store(trivial_course, rows(trivial_course, 0, 1, 2), commit=False) is None
    with Gradebook(db_url(trivial_course)) as gb:
        assert gb.students == [] and gb.find_assignment(PART).submissions == [], "one transaction, rolled back"
    stored = store(trivial_course, rows(trivial_course, 0, 1, 2))
    assert stored == [(float(testing.trivial_score(i)), 3.0, 0.0, 0) for i in range(3)]


def test_a_flagged_row_scores_zero_and_is_flagged(trivial_course):
    assert store(trivial_course, rows(trivial_course, 0, zero=True, flagged=True)) == [(0.0, 3.0, 0.0, 0)]
    with Gradebook(db_url(trivial_course)) as gb:
        assert gb.find_submission_notebook(PART, PART, "s00000").flagged


def test_a_late_submission_loses_the_policys_share(trivial_course):
    deadlines = Deadlines(due={PART: DUE}, extensions={("s00001", PART): timedelta(days=3)}, per_day=25)
    late = (DUE + timedelta(days=1, hours=1)).isoformat()   # two days begun
    stored = store(trivial_course, rows(trivial_course, 0, 1, timestamp=late), deadlines)
    assert stored[0] == (3.0, 3.0, 1.5, timedelta(days=1, hours=1).total_seconds())
    assert stored[1] == (1.0, 3.0, 0.0, 0), "within the extension: on time"


def test_an_answer_left_as_released_says_no_response(trivial_course):
    untouched = nbformat.read(trivial_course / "notebooks" / PART / f"{PART}.ipynb", as_version=4)
    store(trivial_course, [scores.Row("s00003", PART, None, untouched)])
    with Gradebook(db_url(trivial_course)) as gb:
        comment = gb.find_comment("answer", PART, PART, "s00003")
        assert comment.auto_comment == "No response."
