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


# ---------------------------------------------------------------------------
# Late policy as arithmetic on stored facts: deadlines.toml changed after grading, nothing regraded
# ---------------------------------------------------------------------------

CLASS = {  # five learners; eve's timestamp.txt is written after grading
    "ann": "2025-10-06 20:00:00.000000 UTC",   # on time
    "ben": "2025-10-06 23:00:00.000000 UTC",   # on time
    "cat": "2025-10-07 10:00:00.000000 UTC",   # 10 h late: 1 day
    "dan": "2025-10-08 12:00:00.000000 UTC",   # 1.5 days late, 3 days' extension granted later
    "eve": "2025-10-08 20:00:00.000000 UTC",   # 1.8 days late: 2 days
}
POLICY = "[policy]\npenalty_per_day = 10\nmax_penalty = 50\n\n[due]\n01-tensors = 2025-10-06T23:59:00\n"


def no_grading(monkeypatch):
    """Any attempt to run a notebook or grade a submission fails the test."""
    import nbclient

    from instructor import coordinator, tasks

    def refuse(*_, **__):
        raise AssertionError("a notebook was run or a submission graded")

    monkeypatch.setattr(tasks, "grade", refuse)
    monkeypatch.setattr(coordinator, "autograde", refuse)
    monkeypatch.setattr(nbclient.NotebookClient, "execute", refuse)
    monkeypatch.setattr(nbclient.NotebookClient, "async_execute", refuse)


def graded_class(course: Path) -> None:
    """The class as the coordinator stores it, graded without a deadlines.toml: each learner's
    submitted/ folder (notebook and, but for eve, timestamp.txt) and the gradebook's full scores."""
    import hashlib

    for student, stamp in CLASS.items():
        folder = course / "submitted" / student / P1
        folder.mkdir(parents=True)
        data = f"{student}'s notebook".encode()
        (folder / f"{P1}.ipynb").write_bytes(data)
        if student != "eve":
            (folder / "timestamp.txt").write_text(stamp)
        store.record(course, Outcome(student, P1, status="graded", notebook=graded_notebook()),
                     hashlib.sha256(data).hexdigest(), stamp if student != "eve" else None, None)


def grades(course: Path, capsys) -> tuple[dict[str, dict], str]:
    assert main(["--course", str(course), "grades"]) == 0
    return read(course / "grades.csv"), capsys.readouterr().out


def test_due_date_and_extension_added_after_grading_change_grades_without_regrading(tmp_path, capsys, monkeypatch):
    course = new_course(tmp_path, None)
    graded_class(course)
    no_grading(monkeypatch)
    rows, _ = grades(course, capsys)
    assert {s: float(r["score"]) for s, r in rows.items()} == dict.fromkeys(CLASS, 3.0)

    # a due date arrives, and eve's time
    (course / "deadlines.toml").write_text(POLICY)
    (course / "submitted" / "eve" / P1 / "timestamp.txt").write_text(CLASS["eve"])
    rows, out = grades(course, capsys)
    assert {s: (float(r["score"]), int(r["late_days"])) for s, r in rows.items()} == {
        "ann": (3, 0), "ben": (3, 0), "cat": (2.7, 1), "dan": (2.4, 2), "eve": (2.4, 2)}
    assert "late policy (deadlines.toml) applied again: 3 grade(s) changed, nothing regraded:" in out
    assert "   cat / 01-tensors: 3 -> 2.7 (1 day(s) late, was 0)" in out
    assert "   eve / 01-tensors: 3 -> 2.4 (2 day(s) late, was 0)" in out

    # an extension for dan, granted after grading
    (course / "deadlines.toml").write_text(POLICY + "\n[extensions]\ndan = { 01-tensors = 3 }\n")
    rows, out = grades(course, capsys)
    assert (float(rows["dan"]["score"]), int(rows["dan"]["late_days"])) == (3, 0)
    assert "1 grade(s) changed" in out and "   dan / 01-tensors: 2.4 -> 3 (0 day(s) late, was 2)" in out
    with gradebook(course) as gb:
        assert gb.find_submission(P1, "dan").extension.days == 3
        assert gb.find_submission(P1, "eve").timestamp.isoformat() == "2025-10-08T20:00:00"

    # the same facts again: nothing changes, nothing is said
    rows, out = grades(course, capsys)
    assert "applied again" not in out and float(rows["cat"]["score"]) == 2.7

    # Canvas's file, the grading report and the class report say the same
    canvas = lms.export(course, course / "canvas.csv", "canvas", say=lambda *_: None)
    assert "2.7" in canvas.read_text() and "1 day(s) late, -0.3 point(s)" in canvas.read_text()
    late = read(course / "autograded" / "grading-report.csv")
    assert (late["cat"]["late_days"], late["dan"]["late_days"], late["eve"]["late_days"]) == ("1", "0", "2")
    assert main(["--course", str(course), "report", "--out", str(course / "report")]) == 0
    assert list(read(course / "report" / "late.csv")) == ["cat", "eve"]


def test_a_timestamp_beside_a_different_notebook_is_not_used(tmp_path, capsys, monkeypatch):
    """A notebook collected again since grading (not graded yet): its time is not the graded one's."""
    course = new_course(tmp_path, None)
    graded_class(course)
    no_grading(monkeypatch)
    (course / "deadlines.toml").write_text(POLICY)
    folder = course / "submitted" / "ann" / P1
    (folder / f"{P1}.ipynb").write_text("a newer notebook")
    (folder / "timestamp.txt").write_text("2025-10-20 10:00:00.000000 UTC")
    rows, _ = grades(course, capsys)
    assert (float(rows["ann"]["score"]), int(rows["ann"]["late_days"])) == (3, 0)


def test_submissions_without_a_time_are_warned_of(tmp_path, capsys):
    course = new_course(tmp_path, None)
    graded_class(course)
    (course / "deadlines.toml").write_text(POLICY)
    _, out = grades(course, capsys)
    assert ("!! 01-tensors has a due date but 1 graded submission(s) have no time (no timestamp.txt): "
            "they count as on time") in out
