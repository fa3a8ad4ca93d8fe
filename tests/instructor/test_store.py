"""instructor.store: a batch of outcomes stored as files, one gradebook transaction and journal
lines; storing the same batch again changes nothing. A trivial course with an SQLite gradebook in
a temporary folder; the submissions come back as their own graded notebooks
(:func:`instructor.testing.pregraded`), so no kernel runs."""

from __future__ import annotations

import pytest
from nbgrader.api import Gradebook

from instructor import outcome, store, testing
from instructor.coordinator import Job, submission_bytes
from instructor.course import db_url, graded_dir, notebook_in

PART = testing.TRIVIAL_PART


@pytest.fixture
def course(trivial_course):
    """The trivial course (tests/instructor/conftest.py), this test's own copy."""
    return trivial_course


def graded(course, i: int, **kw) -> tuple[outcome.Outcome, str, None]:
    student = f"s{i:05d}"
    result = testing.pregraded({"student": student, "part": PART,
                                "notebook": submission_bytes(course, Job(student, PART))})
    for name, value in kw.items():
        setattr(result, name, value)
    return result, f"digest-{i}", None


def gradebook_rows(course) -> dict[str, tuple[float, bool]]:
    with Gradebook(db_url(course)) as gb:
        return {s.student.id: (s.score, any(nb.flagged for nb in s.notebooks))
                for a in gb.assignments for s in a.submissions}


def test_a_batch_is_stored_whole(course):
    students = len(list((course / "submitted").iterdir()))
    with store.Store(course) as st:
        done = st.record([graded(course, i, log_text=f"log of {i}") for i in range(students)])
    assert [(r.score, r.max_score) for r in done] == [(testing.trivial_score(i), 3) for i in range(students)]
    assert [r.sha256 for r in done] == [f"digest-{i}" for i in range(students)]
    assert gradebook_rows(course) == {f"s{i:05d}": (testing.trivial_score(i), False) for i in range(students)}
    journal = outcome.read_journal(course)
    assert sorted(journal) == [(f"s{i:05d}", PART) for i in range(students)]
    assert all(notebook_in(graded_dir(course, f"s{i:05d}", PART), PART).is_file() for i in range(students))
    assert (course / done[2].log).read_text() == "log of 2"
    assert all(r.log_text == "" and r.notebook is None for r in done), "what travelled is not kept twice"


def test_storing_a_batch_again_changes_nothing(course):
    with store.Store(course) as st:
        st.record([graded(course, i) for i in range(2)])
        first = gradebook_rows(course)
        again = st.record([graded(course, i) for i in range(2)])
    assert gradebook_rows(course) == first
    assert [r.score for r in again] == [testing.trivial_score(i) for i in range(2)]
    with Gradebook(db_url(course)) as gb:
        assert len(gb.students) == 2 and len(gb.find_assignment(PART).submissions) == 2


def test_a_flagged_outcome_scores_zero_and_is_flagged(course):
    flagged = graded(course, 0, status="flagged", reason="the kernel died\nin cell 2", notebook=None)
    reviewed = graded(course, 1, review="cell 3 reads the tests")
    done = store.record(course, *flagged[:2])
    assert (done.score, done.reason) == (0.0, "the kernel died in cell 2"), "reasons are one line"
    with store.Store(course) as st:
        st.record([reviewed])
    assert gradebook_rows(course) == {"s00000": (0.0, True), "s00001": (testing.trivial_score(1), True)}
    assert not graded_dir(course, "s00000", PART).exists(), "no graded notebook for a flagged submission"
