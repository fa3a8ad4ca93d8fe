"""instructor.outcome: one submission's outcome, through the journal (what survives a crash) and
grading-report.csv (what an instructor opens)."""

from __future__ import annotations

import csv
import json

import pytest

from instructor import outcome
from instructor.outcome import Outcome


@pytest.fixture
def course(tmp_path):
    (tmp_path / "autograded").mkdir()
    return tmp_path


def full(student="ada", part="01-tensors", **kw) -> Outcome:
    values = dict(status="graded", score=7.5, max_score=10.0, seconds=12.345, cell_seconds=10.0, reason="",
                  review="cell 3 prints the test", log=".logs/ada.log", sha256="ab" * 32, host="worker-1",
                  late_days=2, penalty=1.5)
    return Outcome(student, part, **{**values, **kw})


def test_an_outcome_round_trips_through_the_journal_without_what_travels_only(course):
    sent = full(log_text="a long log", notebook="{...}", setup_seconds=3.0, record_seconds=0.1)
    outcome.append(course, sent)
    line = json.loads(outcome.journal_path(course).read_text())
    assert set(line) == set(outcome.FIELDS)
    assert "log_text" not in line and "notebook" not in line
    back = outcome.read_journal(course)[("ada", "01-tensors")]
    assert back == full(), "every journaled field comes back, with its type"


def test_provenance_is_journaled_and_older_lines_read_without_it(course):
    inputs = {"release": "r" * 64, "course": "0.1.0+gabc", "torch": "2.6.0", "sandbox": "bwrap"}
    outcome.append_many(course, [full(provenance=inputs)])
    with open(outcome.journal_path(course), "a") as f:   # a line from before provenance was kept
        f.write(json.dumps({k: v for k, v in vars(full("bob")).items() if k in outcome.FIELDS}) + "\n")
    back = outcome.read_journal(course)
    assert back[("ada", "01-tensors")].provenance == inputs
    assert back[("bob", "01-tensors")] == full("bob") and back[("bob", "01-tensors")].provenance == {}
    outcome.write_report(course)
    with open(outcome.report_path(course), newline="") as f:
        assert "provenance" not in next(csv.reader(f)), "the CSV keeps its columns"


def test_the_latest_outcome_of_a_submission_wins(course):
    outcome.append_many(course, [full(score=1.0), full("bob"), full(status="flagged", reason="timed out")])
    latest = outcome.read_journal(course)
    assert sorted(latest) == [("ada", "01-tensors"), ("bob", "01-tensors")]
    assert latest[("ada", "01-tensors")].status == "flagged" and latest[("ada", "01-tensors")].needs_a_look


def test_a_line_cut_short_by_a_crash_is_skipped_and_never_glued_to(course):
    outcome.append(course, full("ada"))
    with open(outcome.journal_path(course), "a") as f:
        f.write('{"student": "bob", "part": "01-te')   # the crash
    outcome.append(course, full("cy"))
    assert sorted(s for s, _ in outcome.read_journal(course)) == ["ada", "cy"]


def test_no_journal_means_nothing_recorded(course):
    assert outcome.read_journal(course) == {} and outcome.read_report(course) == {}


def test_needs_a_look():
    """Graded with nothing to review is the one outcome nobody needs to open."""
    assert full(review="").needs_a_look is False
    assert full(review="cell 3 prints the test").needs_a_look
    assert full(status="flagged", review="").needs_a_look and full(status="tampered", review="").needs_a_look


def test_the_report_is_the_journal_sorted_with_seconds_rounded(course):
    outcome.append_many(course, [full("cy"), full("ada", seconds=1 / 3), full("bob", status="flagged", score=0.0)])
    path = outcome.write_report(course)
    assert path == course / "autograded" / "grading-report.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["student"] for r in rows] == ["ada", "bob", "cy"]
    assert list(rows[0]) == outcome.FIELDS and rows[0]["seconds"] == "0.33"
    back = outcome.read_report(course)
    assert back[("bob", "01-tensors")] == full("bob", status="flagged", score=0.0, seconds=12.35)
    assert not list(course.joinpath("autograded").glob("*.tmp"))


def test_a_report_edited_by_hand_still_reads(course):
    path = outcome.report_path(course)
    path.write_text("student,part,status,score,late_days\nada,01-tensors,graded,,n/a\n")
    assert outcome.read_report(course)[("ada", "01-tensors")] == Outcome("ada", "01-tensors", "graded")


@pytest.mark.parametrize(("log", "reason"), [
    ("... DeadKernelError: Kernel died", "the kernel died (it crashed, exited, or hit the memory/CPU limit)"),
    ("MissingEntry: No such grade cell: p1/p1/cell-abc", "cell cell-abc claims to be a graded test but is not "
     "one in the release (its nbgrader metadata was edited)"),
    ("[ERROR] something odd\nmore", "[ERROR] something odd"),
    ("nothing to go on", "nbgrader failed (see the log)"),
])
def test_diagnose_reads_one_line_from_a_failed_runs_log(log, reason):
    assert outcome.diagnose(log) == reason
