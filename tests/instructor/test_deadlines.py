"""deadlines.toml: checked before grading starts (one clear line for a bad file), applied to each
recorded submission through nbgrader's AssignLatePenalties with our LatePolicy plugin, and shown
in grades.csv and the class report. A gradebook with known scores, no grading run."""

from __future__ import annotations

import csv
import shutil
import textwrap
import warnings
from pathlib import Path

import nbformat
import pytest

from instructor import deadlines, lms, report, store
from instructor.__main__ import main
from instructor.course import ROOT, GradingError, gradebook
from instructor.outcome import Outcome

P1 = "01-tensors"
CELLS = {"test_a": 2, "test_b": 1}   # 3 points
# Due 2025-10-06 23:59 in Berlin (21:59 UTC); 15 minutes' grace; 10 % of the score a day, at most 50 %.
GOOD = """
[policy]
timezone = "Europe/Berlin"
grace_minutes = 15
penalty_per_day = 10
max_penalty = 50

[due]
01-tensors = 2025-10-06T23:59:00

[extensions]
eve = { 01-tensors = 2 }
fay = { 01-tensors = 1 }
"""
CASES = {  # student: (timestamp.txt, days late, penalty in points on a full score of 3)
    "ann": ("2025-10-06 20:00:00.000000 UTC", 0, 0.0),    # on time
    "ben": ("2025-10-06 22:09:00.000000 UTC", 0, 0.0),    # 10 minutes late: within the grace period
    "cat": ("2025-10-07 10:00:00.000000 UTC", 1, 0.3),    # 12 hours late: 1 day, 10 %
    "dan": ("2025-10-09 12:00:00.000000 UTC", 3, 0.9),    # 2.6 days late: 3 days, 30 %
    "eli": ("2025-10-20 12:00:00.000000 UTC", 14, 1.5),   # 14 days: capped at 50 %
    "eve": ("2025-10-08 12:00:00.000000 UTC", 0, 0.0),    # 1.6 days late, 2 days' extension: on time
    "fay": ("2025-10-08 12:00:00.000000 UTC", 1, 0.3),    # 1.6 days late, 1 day's extension: 1 day
}


def new_course(folder: Path, text: str | None = GOOD) -> Path:
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    if text is not None:
        (folder / "deadlines.toml").write_text(textwrap.dedent(text))
    from sqlalchemy.exc import SAWarning

    with gradebook(folder) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        gb.add_assignment(P1)
        gb.add_notebook(P1, P1)
        for cell, points in CELLS.items():
            gb.add_grade_cell(cell, P1, P1, max_score=points, cell_type="code")
    return folder


def graded_notebook() -> str:
    """What a worker returns for a fully correct submission: the graded cells, no errors."""
    nb = nbformat.v4.new_notebook()
    for cell, points in CELLS.items():
        code = nbformat.v4.new_code_cell("assert True")
        code.metadata["nbgrader"] = {"grade": True, "grade_id": cell, "points": points, "solution": False,
                                     "locked": True, "schema_version": 3}
        nb.cells.append(code)
    return nbformat.writes(nb)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every CASES student recorded as the coordinator records a graded submission, plus a
    flagged late one: what the gradebook, grades.csv and the report then say."""
    course = new_course(tmp_path_factory.mktemp("course"))
    rules = deadlines.load(course)
    results = {s: store.record(course, Outcome(s, P1, status="graded", notebook=graded_notebook()),
                                     "digest", stamp, rules)
               for s, (stamp, _, _) in CASES.items()}
    results["gus"] = store.record(course, Outcome("gus", P1, reason="the kernel died"), "digest",
                                        CASES["dan"][0], rules)
    return course, results


def read(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r.get("student_id") or r["student"]: r for r in csv.DictReader(f)}


def test_policy_applied_through_nbgrader(graded):
    course, results = graded
    with gradebook(course) as gb:
        assert gb.find_assignment(P1).duedate.isoformat() == "2025-10-06T21:59:00", "Berlin time, stored as UTC"
        for student, (_, days, penalty) in CASES.items():
            sub = gb.find_submission(P1, student)
            assert sub.late_submission_penalty == pytest.approx(penalty), student
            assert (results[student].late_days, results[student].penalty) == (days, pytest.approx(penalty)), student
            assert results[student].score == 3, "the score is nbgrader's raw score; the penalty is kept beside it"
        assert gb.find_submission(P1, "eve").extension.days == 2


def test_flagged_late_submission_scores_zero_without_a_penalty(graded):
    _, results = graded
    gus = results["gus"]
    assert (gus.status, gus.score, gus.penalty, gus.late_days) == ("flagged", 0, 0, 3)


def test_grades_csv_shows_late_days_and_penalty(graded):
    course, _ = graded
    rows = read(lms.export_grades(course, course / "grades.csv"))
    for student, (_, days, penalty) in CASES.items():
        row = rows[student]
        assert (int(row["late_days"]), float(row["late_submission_penalty"])) == (days, pytest.approx(penalty))
        assert float(row["score"]) == pytest.approx(3 - penalty)
    assert rows["gus"]["status"] == "flagged"


def test_report_shows_late_days_and_penalty(graded):
    course, _ = graded
    out = report.build(course, say=lambda *_: None).parent
    dan = read(out / "scores.csv")["dan"]
    assert (dan["late_days"], float(dan["penalty"]), float(dan["score"])) == ("3", 0.9, 2.1)
    assert list(read(out / "late.csv")) == ["cat", "dan", "eli", "fay", "gus"], "the grace period counts"
    assert "Late submissions" in (out / "index.html").read_text()


def test_no_file_no_deadlines(tmp_path):
    assert deadlines.load(new_course(tmp_path, None)) is None


@pytest.mark.parametrize("text, message", [
    ("[due]\n01-tensors = 'next friday'\n", "due date of 01-tensors is not a date: 'next friday'"),
    ("[due]\n01-tensors = 2025-13-40T23:59:00\n", "not valid TOML"),
    ("[due]\n99-nothing = 2025-10-06\n", "[due] names unknown part '99-nothing'"),
    ("[policy]\npenalty_per_day = -5\n", "policy.penalty_per_day must be between 0 and 100, not -5"),
    ("[policy]\nmax_penalty = 150\n", "policy.max_penalty must be between 0 and 100, not 150"),
    ("[policy]\ngrace_minutes = 'ten'\n", "policy.grace_minutes must be a number, not 'ten'"),
    ("[policy]\npenalty = 5\n", "unknown policy key 'penalty'"),
    ("[policy]\ntimezone = 'Mars/Olympus'\n", "policy.timezone 'Mars/Olympus' is not a time zone"),
    ("[due]\n01-tensors = 2025-10-06\n[extensions]\nann = { 02-neural-networks = 1 }\n",
     "extensions.ann extends 02-neural-networks, which has no due date"),
    ("[due]\n01-tensors = 2025-10-06\n[extensions]\nann = { 01-tensors = -1 }\n",
     "extensions.ann.01-tensors must be at least 0, not -1"),
    ("[deadline]\n", "unknown section [deadline]"),
])
def test_bad_file_is_one_clear_line(tmp_path, text, message):
    (tmp_path / "deadlines.toml").write_text(text)
    with pytest.raises(GradingError) as caught:
        deadlines.load(tmp_path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and str(caught.value).startswith("deadlines.toml: ")


def test_bad_file_stops_autograde_before_grading(tmp_path, capsys):
    """`python -m instructor autograde` refuses with one line and grades nothing."""
    course = new_course(tmp_path, "[policy]\npenalty_per_day = -5\n")
    (course / "submitted" / "ann" / P1).mkdir(parents=True)
    assert main(["--course", str(course), "autograde"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: deadlines.toml: policy.penalty_per_day must be between 0 and 100, not -5"
    assert not (course / "autograded").exists()


def test_date_alone_means_end_of_that_day_utc(tmp_path):
    (tmp_path / "deadlines.toml").write_text("[due]\n01-tensors = 2025-10-06\n")
    assert deadlines.load(tmp_path).due[P1].isoformat() == "2025-10-06T23:59:59"


def test_without_the_file_nothing_is_late(tmp_path):
    """No deadlines.toml: nbgrader's default plugin, no due date, so a timestamp costs nothing."""
    course = new_course(tmp_path, None)
    done = store.record(course, Outcome("ann", P1, status="graded", notebook=graded_notebook()), "digest",
                              CASES["eli"][0], deadlines.load(course))
    assert (done.score, done.late_days, done.penalty) == (3, 0, 0)
    with gradebook(course) as gb:
        assert gb.find_assignment(P1).duedate is None
