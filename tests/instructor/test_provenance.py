"""instructor.provenance: every stored outcome records what produced it, and a regrade ends by
naming whose score or status changed, old -> new, and which inputs differed ("0 changes" when
none). The trivial course, graded by :func:`instructor.testing.executed` (the tests run in the
worker's process, no kernel): an edited test changes the scores it should, and only those."""

from __future__ import annotations

import re

import nbformat
import pytest

from instructor import coordinator, outcome, provenance, testing
from instructor.course import part_notebook
from instructor.outcome import Outcome
from instructor.settings import Settings

PART = testing.TRIVIAL_PART


@pytest.fixture
def course(trivial_course):
    return trivial_course


def edit_source(course, change) -> None:
    """``change(cells)`` on the trivial part's source notebook, saved."""
    path = part_notebook(PART, course=course)
    nb = nbformat.read(path, as_version=4)
    change(nb.cells)
    nbformat.write(nb, path)


def grade(course, force=False) -> tuple[list[Outcome], list[str]]:
    said: list[str] = []
    results = coordinator.autograde(course, settings=Settings.resolve(course, sandbox_mode="rlimits"),
                                    task=testing.executed, force=force, say=said.append)
    return results, said


def test_the_release_digest_follows_the_tests_and_nothing_else(course):
    first = provenance.release_digest(course, PART)
    edit_source(course, lambda cells: setattr(cells[0], "source", "Set `answer` to forty-two."))
    assert provenance.release_digest(course, PART) == first, "a markdown edit is not a test edit"
    edit_source(course, lambda cells: setattr(cells[3], "source", cells[3].source + "\nassert answer > 0"))
    assert provenance.release_digest(course, PART) != first
    assert provenance.release_digest(course, "99-missing") == ""


def test_the_course_version_and_the_versions_of_a_worker():
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*(\+g[0-9a-f]{12})?", provenance.course_version())
    found = provenance.versions()
    assert set(found) == {"torch", "nbgrader", "python"} and all(found.values())


def test_a_change_names_old_new_and_the_inputs_that_differed():
    inputs = {"release": "a", "course": "1", "torch": "2.6.0", "nbgrader": "0.9", "python": "3.12",
              "sandbox": "bwrap", "limits": "cell_timeout=600"}
    old = Outcome("ada", PART, "graded", 2, 3, sha256="x", provenance=inputs)
    same_score = Outcome("bob", PART, "graded", 3, 3, sha256="y", provenance=inputs)
    before = {("ada", PART): old, ("bob", PART): same_score}
    new = Outcome("ada", PART, "flagged", 0, 3, sha256="x", provenance={**inputs, "release": "b", "torch": "2.7.0"})
    found = provenance.changes(before, [new, same_score, Outcome("cy", PART, "graded", 1, 3)])
    assert [c.after.student for c in found] == ["ada"], "unchanged and first gradings are no change"
    assert found[0].line() == f"ada / {PART}: 2 / 3 graded \u2192 0 / 3 flagged; inputs that differed: release, torch"
    same_inputs = provenance.Change(old, Outcome("ada", PART, "graded", 1, 3, sha256="x", provenance=inputs))
    assert "not deterministic" in same_inputs.line()
    unrecorded = provenance.Change(Outcome("ada", PART, "graded", 2, 3, sha256="w"), new)
    assert unrecorded.line().endswith("not recorded (submission differed)")
    assert provenance.regrade_lines([], 4) == [
        "regrade: 0 changes: the 4 submission(s) graded again kept their score and status"]


def test_a_forced_regrade_of_an_unchanged_class_says_0_changes(course):
    results, said = grade(course)
    assert [r.score for r in sorted(results, key=lambda r: r.student)] == [3, 0, 0, 3]
    assert not any(line.startswith("regrade:") for line in said), "a first grading is no regrade"
    recorded = outcome.read_journal(course)[("s00000", PART)]
    assert set(recorded.provenance) == set(provenance.INPUTS) - {"submission"}
    assert recorded.provenance["release"] == provenance.release_digest(course, PART)
    assert recorded.provenance["sandbox"] == "rlimits" and "cell_timeout=" in recorded.provenance["limits"]
    _, said = grade(course)
    assert not any(line.startswith("regrade:") for line in said), "nothing graded again, nothing to say"
    _, said = grade(course, force=True)
    assert said[-1] == "regrade: 0 changes: the 4 submission(s) graded again kept their score and status"


def test_a_regrade_after_a_test_edit_lists_exactly_the_learners_it_changed(course):
    grade(course)
    # s00001 answered 1: the edited second test (1 point) now accepts it; nobody else's score moves
    edit_source(course, lambda cells: setattr(cells[3], "source", cells[3].source.replace(
        "assert answer == 42", "assert answer in (42, 1)")))
    results, said = grade(course)   # no --force: the tests changed, so every submission is graded again
    assert len(results) == 4
    start = said.index("regrade: 1 change(s) among the 4 submission(s) graded again:")
    assert said[start + 1:] == [f"  s00001 / {PART}: 0 / 3 graded \u2192 1 / 3 graded; inputs that differed: release"]
    _, said = grade(course, force=True)
    assert said[-1].startswith("regrade: 0 changes")
