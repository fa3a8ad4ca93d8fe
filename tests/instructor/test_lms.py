"""Grades out to Canvas and Moodle (`python -m instructor grades --format canvas|moodle`): a
gradebook with known scores (the class report's, tests/instructor/test_report.py) and a grading
journal, exported and checked against what each platform's importer reads:

- Canvas (its gradebook importer, canvas-lms app/models/gradebook_importer.rb, and the Instructor
  Guide "How do I import grades in the Gradebook?"): a header that starts ``Student, ID``, then
  ``SIS User ID, SIS Login ID`` and ``Section`` as the last student column; a row whose first cell
  holds ``Points Possible``; a column whose points cell says "read only" is not imported; a grade
  is a number (a dot or a comma) or blank (no grade); CSV by RFC 4180, UTF-8.
- Moodle (grade/import/csv/classes/load_data.php, "Import grades" > CSV file): one column mapped
  to the user (id, username, ID number or email), which must name a user on every row or the
  whole import stops; a grade is a number, or '' or '-' for no grade; a feedback column is text;
  comma-separated UTF-8.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import warnings
from pathlib import Path

import pytest

from instructor import lms, outcome
from instructor.__main__ import main
from instructor.course import ROOT, GradingError, gradebook
from instructor.outcome import Outcome

from .test_report import OUTCOME, P1, P2, make_gradebook

NUMBER = re.compile(r"^-?\d+([.,]\d+)?$")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The report's gradebook (ann 3/3 and 4/4, ben 2/3 with a review note and 2/4, cat 0/3 and
    tampered, dan flagged and no part 2), ann's part 1 one day late (-0.5), and names that need
    quoting."""
    from sqlalchemy.exc import SAWarning

    tmp_path = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    make_gradebook(tmp_path)
    with gradebook(tmp_path) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student("ann", last_name="Müller, Jr.", first_name='Ann "Annie"', email="ann@uni.example")
        gb.find_submission_notebook(P1, P1, "ann").late_submission_penalty = 0.5
        gb.db.commit()
    (tmp_path / "autograded").mkdir()
    for (part, student), (status, seconds, reason, review) in OUTCOME.items():
        outcome.append(tmp_path, Outcome(student, part, status=status, seconds=seconds, reason=reason,
                                         review=review, late_days=1 if (part, student) == (P1, "ann") else 0))
    return tmp_path


@pytest.fixture
def course(template: Path, tmp_path: Path) -> Path:
    """A copy of the template course (the gradebook is a file in it)."""
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path


def export(course: Path, fmt: str, roster: Path | None = None) -> tuple[list[list[str]], list[str]]:
    said: list[str] = []
    out = lms.export(course, course / f"{fmt}.csv", fmt, roster, say=said.append)
    data = out.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf"), "no byte-order mark"
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""))), said


def check_canvas(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """What Canvas's importer reads: {SIS Login ID: {column: cell}}; asserts the format."""
    header, pp, *students = rows
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1]
    assert re.match(r"SIS\s+User\s+ID", header[2]) and re.match(r"SIS\s+Login\s+ID", header[3])
    assert header[4] == "Section", "Section is the last student column (custom columns follow it)"
    assert "Points Possible" in pp[0]
    assert all(len(r) == len(header) for r in rows), "every row as wide as the header"
    imported = [i for i in range(5, len(header)) if not re.search(r"read\s+only", pp[i])]
    assert [header[i] for i in imported] == [P1, P2], "only the parts are imported as assignments"
    assert all(NUMBER.match(pp[i]) for i in imported)
    for row in students:
        assert row[1] or row[2] or row[3], "Canvas needs an ID, SIS User ID or SIS Login ID"
        assert all(row[i] == "" or NUMBER.match(row[i]) for i in imported), row
    return {r[3]: dict(zip(header, r, strict=True)) for r in students}


def check_moodle(rows: list[list[str]], identifier: str) -> dict[str, dict[str, str]]:
    """What Moodle's CSV import reads: {identifier: {column: cell}}; asserts the format."""
    header, *students = rows
    assert len(set(header)) == len(header) and all(h == h.strip() for h in header)
    assert identifier in header
    assert all(len(r) == len(header) for r in rows)
    for row in students:
        cells = dict(zip(header, row, strict=True))
        assert cells[identifier].strip(), "a blank user stops Moodle's whole import"
        for part in (P1, P2):
            assert cells[part] in ("", "-") or re.match(r"^-?\d+(\.\d+)?$", cells[part]), cells
            assert f"{part} feedback" in cells
    return {r[header.index(identifier)]: dict(zip(header, r, strict=True)) for r in students}


def test_canvas_file(course):
    rows, said = export(course, "canvas")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Notes", P1, P2]
    assert rows[1] == ["Points Possible", "", "", "", "", "(read only)", "3", "4"]
    got = check_canvas(rows)
    assert list(got) == ["ann", "ben", "cat", "dan"], "nbgrader's student id is the SIS Login ID"
    assert got["ann"]["Student"] == 'Müller, Jr., Ann "Annie"'
    assert (got["ann"][P1], got["ann"][P2]) == ("2.5", "4"), "the late penalty is out of the score"
    assert got["ann"]["Notes"] == f"{P1}: 1 day(s) late, -0.5 point(s)"
    assert (got["ben"][P1], got["ben"][P2]) == ("2", "2")
    assert got["ben"]["Notes"] == f"{P1}: under review: reads a file outside the notebook"
    assert (got["cat"][P1], got["cat"][P2]) == ("0", ""), "an earned 0 is 0; tampered work is no grade"
    assert got["cat"]["Notes"] == f"{P2}: tampered, not graded: a test cell was changed"
    assert (got["dan"][P1], got["dan"][P2]) == ("", ""), "flagged and missing are never a silent 0"
    assert got["dan"]["Notes"].startswith(f"{P1}: flagged, not graded: the kernel died")
    assert got["dan"]["Notes"].endswith(f"| {P2}: no submission")
    assert said[0].startswith("3 grade(s) need a look")
    assert {line.split(" / ")[0].strip() for line in said[1:4]} == {"ben", "cat", "dan"}
    assert said[-1] == "1 submission(s) missing: their cells are empty, not 0"


def test_moodle_file(course):
    rows, _ = export(course, "moodle")
    assert rows[0][:3] == ["Username", "First name", "Last name"], "not every student has an email"
    got = check_moodle(rows, "Username")
    assert (got["ann"][P1], got["ann"][f"{P1} feedback"]) == ("2.5", "Submitted 1 day(s) late: 0.5 point(s) taken off.")
    assert (got["ben"][P1], got["ben"][f"{P1} feedback"]) == ("2", "Score under review.")
    assert (got["cat"][P2], got["cat"][f"{P2} feedback"]) == (
        "", "Not graded yet: your instructor is looking at this submission.")
    assert (got["dan"][P2], got["dan"][f"{P2} feedback"]) == ("", "No submission.")
    assert "the kernel died" not in got["dan"][f"{P1} feedback"], "the reason is for the instructor (Notes)"
    assert "the kernel died" in got["dan"]["Notes"]


def write_roster(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


ROSTER = """student_id,name,canvas_id,sis_user_id,section,email,idnumber
ann,"Müller, Ann",101,S-1,Lab A,ann@uni.example,1001
ben,"Berg, Ben",102,S-2,Lab A,ben@uni.example,1002
cat,"Cole, Cat",103,S-3,Lab B,cat@uni.example,1003
dan,"Dunn, Dan",104,S-4,Lab B,dan@uni.example,1004
"""


def test_roster_maps_students_to_the_platform(course, tmp_path):
    roster = write_roster(tmp_path / "roster.csv", ROSTER)
    canvas = check_canvas(export(course, "canvas", roster)[0])
    ben = [canvas["ben"][k] for k in ("Student", "ID", "SIS User ID", "Section")]
    assert ben == ["Berg, Ben", "102", "S-2", "Lab A"]
    rows, _ = export(course, "moodle", roster)
    assert rows[0][:3] == ["Username", "Email address", "ID number"]
    moodle = check_moodle(rows, "Email address")
    assert (moodle["cat@uni.example"]["ID number"], moodle["cat@uni.example"][P1]) == ("1003", "0")


@pytest.mark.parametrize("text, message", [
    (None, "no such file"),
    ("id,email\nann,a@x\n", "no 'student_id' column"),
    ("student_id,email\nann,a@x\nben,b@x\ncat,c@x\n", "no row for student(s) dan"),
    ("student_id,email\nann,a@x\nann,b@x\n", "line 3: student 'ann' is listed twice"),
    ("student_id,email\nann,a@x,extra\n", "line 2: 2 columns expected"),
    ("student_id,email\n,a@x\n", "line 2: empty student_id"),
])
def test_bad_roster_is_one_clear_line(course, tmp_path, capsys, text, message):
    path = tmp_path / "roster.csv" if text is None else write_roster(tmp_path / "roster.csv", text)
    with pytest.raises(GradingError, match=re.escape(message)):
        lms.export(course, tmp_path / "out.csv", "canvas", path, say=lambda *_: None)
    assert main(["--course", str(course), "grades", "--format", "moodle", "--roster", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: roster {path}") and message in err
    assert not (course / "moodle-grades.csv").exists()


def test_cli_writes_the_default_file(course, capsys):
    assert main(["--course", str(course), "grades", "--format", "canvas"]) == 0
    out = capsys.readouterr().out
    assert "need a look" in out and out.rstrip().endswith(f"canvas grades written to {course / 'canvas-grades.csv'}")
    with open(course / "canvas-grades.csv", newline="", encoding="utf-8") as f:
        check_canvas(list(csv.reader(f)))


def test_grades_csv_can_carry_each_rows_provenance(course, capsys):
    """`make grades PROVENANCE=1`: what produced each row, empty where it was not recorded."""
    inputs = {"release": "r" * 64, "course": "0.1.0+gabc", "torch": "2.6.0", "nbgrader": "0.9.5",
              "python": "3.12.1", "sandbox": "bwrap", "limits": "cell_timeout=600"}
    outcome.append(course, Outcome("ann", P2, status="graded", sha256="s" * 64, provenance=inputs))
    assert main(["--course", str(course), "grades", "--provenance"]) == 0
    with open(course / "grades.csv", newline="") as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    assert list(rows[("ann", P2)])[-len(lms.PROVENANCE_COLUMNS):] == list(lms.PROVENANCE_COLUMNS)
    got = {c: rows[("ann", P2)][c] for c in lms.PROVENANCE_COLUMNS}
    assert got == {"submission_sha256": "s" * 64, "release_sha256": "r" * 64, "course_version": "0.1.0+gabc",
                   "torch": "2.6.0", "nbgrader": "0.9.5", "python": "3.12.1", "sandbox": "bwrap",
                   "limits": "cell_timeout=600"}
    assert rows[("ben", P1)]["release_sha256"] == "", "graded before provenance was kept: empty"
    assert main(["--course", str(course), "grades"]) == 0
    with open(course / "grades.csv", newline="") as f:
        assert "release_sha256" not in next(csv.reader(f)), "without the option, the columns are as before"


def test_points_are_plain_numbers():
    assert [lms.points(x) for x in (3, 2.5, 2 / 3, 1234567.0, 0.0, -0.0, None)] == [
        "3", "2.5", "0.67", "1234567", "0", "0", ""]


def test_the_gradebook_is_required(tmp_path):
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    with pytest.raises(GradingError, match="no gradebook"):
        lms.export(tmp_path, tmp_path / "x.csv", "canvas")


def test_summary_line_counts_the_class(course):
    """The closing line of `make autograde`: the template's 7 submissions (ann's part 1 a day late,
    ben's under review, cat's part 2 tampered, dan's part 1 flagged); cat's part 1 then left blank."""
    from nbgrader.api import Comment
    from sqlalchemy.exc import SAWarning

    assert lms.summary(course) == ("7 submission(s): 5 graded, 2 flagged, 1 for review, 0 blank, 1 late; "
                                   "mean score 60%")  # (2.5/3 + 4/4 + 2/3 + 2/4 + 0/3) / 5
    assert lms.summary(course, [P2]).startswith("3 submission(s): 2 graded, 1 flagged, 0 for review")
    with gradebook(course) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)
        answer = gb.add_solution_cell("answer", P1, P1)
        for student, said in (("cat", "No response."), ("ben", None)):
            gb.db.add(Comment(cell=answer, notebook=gb.find_submission_notebook(P1, P1, student), auto_comment=said))
        gb.db.commit()
    assert ", 1 blank, " in lms.summary(course), "cat left every answer cell as released"


def test_library_output_goes_to_the_log(tmp_path):
    """While autograde runs, what libraries, worker processes and kernels print goes to the log;
    the progress bar (sys.stderr) and the result lines (sys.stdout) stay on the terminal."""
    import subprocess
    import sys

    log = tmp_path / "autograded" / ".logs" / "autograde.log"
    script = (
        "import os, sys, warnings\nfrom pathlib import Path\nfrom instructor.__main__ import _output_to\n"
        f"with _output_to(Path({str(log)!r})):\n"
        "    warnings.warn('a SQLAlchemy-like warning')\n"
        "    os.system('echo kernel banner >&2; echo To connect another client')\n"
        "    sys.stderr.write('progress bar\\n')\n"
        "    print('result line')\n"
        "sys.stderr.write('after\\n')\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "result line\n", "what a child process prints is not on the terminal"
    assert proc.stderr == "progress bar\nafter\n"
    text = log.read_text()
    assert "a SQLAlchemy-like warning" in text and "kernel banner" in text and "To connect another client" in text
