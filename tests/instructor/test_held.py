"""instructor.held: what needs a look gets no feedback page until an instructor clears it, and a
clearance is for the submission looked at, not the next one."""

from __future__ import annotations

import pytest

from instructor import held
from instructor.outcome import Outcome, append


@pytest.fixture
def course(tmp_path):
    (tmp_path / "autograded").mkdir()
    for outcome in (Outcome("ok", "p", "graded", sha256="a"),
                    Outcome("look", "p", "graded", review="reads its caller's frame (line 3)", sha256="b"),
                    Outcome("tamper", "p", "tampered", reason="the canaries failed in cell 9", sha256="c"),
                    Outcome("look", "q", "graded", review="another part", sha256="d")):
        append(tmp_path, outcome)
    return tmp_path


def test_review_flagged_and_tampered_are_held_with_their_reason(course):
    assert held.held(course, "p") == {"look": "sent for review: reads its caller's frame (line 3)",
                                      "tamper": "tampered: the canaries failed in cell 9"}


def test_clearing_releases_that_submission_only(course):
    assert "cleared look / p" in held.clear(course, "look", "p")
    assert held.held(course, "p") == {"tamper": "tampered: the canaries failed in cell 9"}
    assert "look" in held.held(course, "q"), "a clearance is for one part"
    append(course, Outcome("look", "p", "graded", review="reads its caller's frame (line 4)", sha256="new"))
    assert "look" in held.held(course, "p"), "a new submission sent for review is held again"


@pytest.mark.parametrize("student, part, why", [
    ("ok", "p", "is not held"), ("tamper", "p", "there is no grade to show"), ("nobody", "p", "has no graded"),
])
def test_nothing_to_clear_is_said_in_words(course, student, part, why):
    with pytest.raises(ValueError, match=why):
        held.clear(course, student, part)


def test_clearing_takes_formgraders_flag_off(tmp_path):
    from nbgrader.api import Gradebook

    from instructor import store, testing
    from instructor.coordinator import Job, submission_bytes
    from instructor.course import db_url

    course = testing.trivial_course(tmp_path / "course", 2)
    part = testing.TRIVIAL_PART
    outcomes = [testing.pregraded({"student": s, "part": part, "notebook": submission_bytes(course, Job(s, part))})
                for s in ("s00000", "s00001")]
    outcomes[1].review = "reads its caller's frame (line 2)"
    with store.Store(course) as st:
        st.record([(o, o.student, None) for o in outcomes])

    def flags():
        with Gradebook(db_url(course)) as gb:
            return {s: gb.find_submission_notebook(part, part, s).flagged for s in ("s00000", "s00001")}

    assert flags() == {"s00000": False, "s00001": True}
    assert held.held(course, part) == {"s00001": "sent for review: reads its caller's frame (line 2)"}
    held.clear(course, "s00001", part)
    assert flags() == {"s00000": False, "s00001": False} and held.held(course, part) == {}
