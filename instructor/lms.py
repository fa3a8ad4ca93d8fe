"""Grades out: nbgrader's CSV export with what grading said of each row, or the gradebook as the
CSV file Canvas or Moodle imports.

    python -m instructor grades [--out grades.csv]
    python -m instructor grades --format canvas [--roster roster.csv] [--out canvas-grades.csv]
    python -m instructor grades --format moodle [--roster roster.csv] [--out moodle-grades.csv]

The numbers are the gradebook's, as in grades.csv: one column per part, the score after any late
penalty. A submission that needs a look is never a silent 0: a flagged, tampered or missing one
gets an empty grade cell (no grade), and every flag, review note and late penalty is written in
words beside the grades (and the command lists the rows to look at).

Canvas (Grades > Import): the header ``Student, ID, SIS User ID, SIS Login ID, Section``, then
``Notes`` (Canvas's own notes column when the course shows it; otherwise its "(read only)" in the
points row makes Canvas skip it), then one column per part named like the Canvas assignment, and a
second row ``Points Possible`` with each part's points. Canvas matches students by ``ID``, then
``SIS User ID``, then ``SIS Login ID``; without a roster the login id is nbgrader's student id.

Moodle (Grades > Import > CSV file): ``Username`` (nbgrader's student id unless the roster says
otherwise), ``Email address`` and ``ID number`` when every student has one (map one of them to the
user at import), one grade column per part, ``<part> feedback`` (map it to that item's feedback:
students see it) and ``Notes`` (for you: leave it ignored).

The roster (``--roster``) is a CSV file with a ``student_id`` column (nbgrader's id) and any of
``name``, ``canvas_id``, ``sis_user_id``, ``sis_login_id``, ``section``, ``email``, ``username``,
``idnumber``; every student in the gradebook must be in it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from . import deadlines, outcome, provenance
from .course import GradingError, check_course, gradebook, gradebook_file, run_nbgrader

FORMATS = ("csv", "canvas", "moodle")
ROSTER_COLUMNS = ("name", "canvas_id", "sis_user_id", "sis_login_id", "section", "email", "username", "idnumber")
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


@dataclass
class Grade:
    """One student's result on one part, as the gradebook and the grading journal have it."""

    student: str
    part: str
    max_score: float
    score: float | None = None   # after the late penalty; None when there is nothing to count
    status: str = "missing"      # graded, flagged, tampered, missing
    reason: str = ""
    review: str = ""
    late_days: int = 0
    penalty: float = 0.0

    @property
    def note(self) -> str:
        """What the instructor should know about this grade, in words ('' when nothing)."""
        if self.status == "missing":
            return f"{self.part}: no submission"
        if self.status != "graded":
            return f"{self.part}: {self.status}, not graded: {self.reason or 'see grading-report.csv'}"
        bits = [f"under review: {self.review}"] if self.review else []
        if self.late_days or self.penalty:
            bits.append(f"{self.late_days} day(s) late, -{points(self.penalty)} point(s)")
        return f"{self.part}: {'; '.join(bits)}" if bits else ""

    @property
    def feedback(self) -> str:
        """What the student may read about this grade ('' when nothing)."""
        if self.status == "missing":
            return "No submission."
        if self.status != "graded":
            return "Not graded yet: your instructor is looking at this submission."
        bits = ["Score under review."] if self.review else []
        if self.late_days or self.penalty:
            bits.append(f"Submitted {self.late_days} day(s) late: {points(self.penalty)} point(s) taken off.")
        return " ".join(bits)


def points(value: float | None) -> str:
    """A number as the platforms read it: a dot, at most two decimals, no exponent ('' for None)."""
    if value is None:
        return ""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def read_grades(course: Path) -> tuple[list[str], dict[str, float], dict[str, dict], list[Grade]]:
    """(parts, points per part, {student: gradebook names and email}, every Grade) from the
    gradebook and the grading journal: the same numbers as grades.csv."""
    from nbgrader.api import MissingEntry

    file = gradebook_file(course)
    if file is not None and not file.exists():
        raise GradingError(f"no gradebook at {file}: grade first (make autograde)")
    seen = outcome.read_journal(course)
    grades = []
    with gradebook(course) as gb:
        assignments = sorted(gb.assignments, key=lambda a: a.name)
        students = {s.id: {"first": s.first_name or "", "last": s.last_name or "", "email": s.email or ""}
                    for s in sorted(gb.students, key=lambda s: s.id)}
        maxima = {a.name: float(a.max_score or 0) for a in assignments}
        for a in assignments:
            for student in students:
                g = Grade(student, a.name, maxima[a.name])
                try:
                    sub = gb.find_submission(a.name, student)
                except MissingEntry:
                    grades.append(g)
                    continue
                g.penalty = float(sub.late_submission_penalty or 0)
                g.score = max(0.0, float(sub.score or 0) - g.penalty)
                flagged = any(nb.flagged for nb in sub.notebooks)
                g.status = "flagged" if flagged else "graded"
                got = seen.get((student, a.name))
                if got:
                    g.status, g.reason, g.review, g.late_days = got.status, got.reason, got.review, got.late_days
                elif flagged:
                    g.reason = "flagged in the gradebook"
                if g.status != "graded":
                    g.score = None
                grades.append(g)
    return [a.name for a in assignments], maxima, students, grades


def read_roster(path: Path, students: list[str]) -> dict[str, dict]:
    """The roster CSV as {student id: its columns}; GradingError (one line) when it is missing,
    malformed, or lacks a student of the gradebook."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = reader.fieldnames or []
    except FileNotFoundError:
        raise GradingError(f"roster {path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise GradingError(f"roster {path}: not a UTF-8 CSV file ({' '.join(str(exc).split())[:120]})") from None
    if "student_id" not in fields:
        raise GradingError(f"roster {path}: no 'student_id' column (columns: student_id, then any of "
                           f"{', '.join(ROSTER_COLUMNS)})")
    roster: dict[str, dict] = {}
    for line, row in enumerate(rows, start=2):
        if None in row or any(v is None for v in row.values()):
            raise GradingError(f"roster {path}, line {line}: {len(fields)} columns expected")
        sid = (row.get("student_id") or "").strip()
        if not sid:
            raise GradingError(f"roster {path}, line {line}: empty student_id")
        if sid in roster:
            raise GradingError(f"roster {path}, line {line}: student {sid!r} is listed twice")
        roster[sid] = {k: (row.get(k) or "").strip() for k in ROSTER_COLUMNS}
    absent = [s for s in students if s not in roster]
    if absent:
        more = f" and {len(absent) - 3} more" if len(absent) > 3 else ""
        raise GradingError(f"roster {path}: no row for student(s) {', '.join(absent[:3])}{more}")
    return roster


def _name(student: str, names: dict, entry: dict) -> str:
    if entry.get("name"):
        return entry["name"]
    last, first = names.get("last", ""), names.get("first", "")
    return f"{last}, {first}" if last and first else (last or first or student)


def _by_student(grades: list[Grade]) -> dict[str, dict[str, Grade]]:
    table: dict[str, dict[str, Grade]] = {}
    for g in grades:
        table.setdefault(g.student, {})[g.part] = g
    return table


def _notes(row: dict[str, Grade], parts: list[str]) -> str:
    return " | ".join(n for n in (row[p].note for p in parts) if n)


def canvas_rows(parts, maxima, students, grades, roster=None) -> list[list[str]]:
    """Canvas's gradebook CSV: the header, the Points Possible row, one row per student."""
    roster = roster or {}
    rows = [CANVAS_HEADER + ["Notes"] + parts,
            ["Points Possible", "", "", "", "", "(read only)"] + [points(maxima[p]) for p in parts]]
    for student, row in _by_student(grades).items():
        entry = roster.get(student, {})
        rows.append([_name(student, students.get(student, {}), entry), entry.get("canvas_id", ""),
                     entry.get("sis_user_id", ""), entry.get("sis_login_id") or student, entry.get("section", ""),
                     _notes(row, parts)] + [points(row[p].score) for p in parts])
    return rows


def moodle_rows(parts, maxima, students, grades, roster=None) -> list[list[str]]:
    """Moodle's grade import CSV: identifier columns, a grade and a feedback column per part, notes."""
    roster = roster or {}
    table = _by_student(grades)
    ids = {"Username": {s: roster.get(s, {}).get("username") or s for s in table},
           "Email address": {s: roster.get(s, {}).get("email") or students.get(s, {}).get("email", "")
                             for s in table},
           "ID number": {s: roster.get(s, {}).get("idnumber", "") for s in table}}
    ids = {column: values for column, values in ids.items() if all(values.values())}  # a blank one aborts Moodle
    header = list(ids) + ["First name", "Last name"]
    for p in parts:
        header += [p, f"{p} feedback"]
    rows = [header + ["Notes"]]
    for student, row in table.items():
        names = students.get(student, {})
        line = [values[student] for values in ids.values()] + [names.get("first", ""), names.get("last", "")]
        for p in parts:
            line += [points(row[p].score), row[p].feedback]
        rows.append(line + [_notes(row, parts)])
    return rows


# The provenance columns ``grades --provenance`` adds: {column: input of instructor.provenance}.
PROVENANCE_COLUMNS = {"submission_sha256": "submission", "release_sha256": "release", "course_version": "course",
                      "torch": "torch", "nbgrader": "nbgrader", "python": "python", "sandbox": "sandbox",
                      "limits": "limits"}


def export_grades(course: Path, out: Path, with_provenance: bool = False) -> Path:
    """nbgrader export (one CSV row per student and part) plus what grading said of each row:
    ``status`` (graded, flagged, tampered, or missing when nothing was graded), ``reason`` and
    ``review``, so a flagged 0 never reads like an earned 0, and ``late_days`` (deadlines.toml;
    nbgrader's own ``late_submission_penalty`` column has the points taken). ``with_provenance``:
    also what produced each row (:data:`PROVENANCE_COLUMNS`; empty where it was not recorded)."""
    course = check_course(course)
    out = Path(out).resolve()
    run_nbgrader(["export", f"--to={out}", "--log-level=WARN"], course, check=True)
    outcomes = outcome.read_journal(course)
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        seen = outcomes.get((row.get("student_id", ""), row.get("assignment", "")))
        row["status"] = seen.status if seen else ("missing" if not row.get("timestamp") else "graded")
        row["reason"] = seen.reason if seen else ""
        row["review"] = seen.review if seen else ""
        row["late_days"] = seen.late_days if seen else 0
        recorded = provenance.inputs_of(seen) if seen else {}
        row.update({column: recorded.get(name, "") for column, name in PROVENANCE_COLUMNS.items()})
    extra = list(PROVENANCE_COLUMNS) if with_provenance else []
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields + ["status", "reason", "review", "late_days"] + extra,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return out


def export(course: Path, out: Path, fmt: str, roster: Path | None = None, say=print,
           with_provenance: bool = False) -> Path:
    """Write the ``fmt`` ("csv": :func:`export_grades`, with its provenance columns if
    ``with_provenance``; "canvas" or "moodle") file to ``out``; say
    which rows need a look. deadlines.toml is applied again first (:func:`deadlines.reapply`):
    a due date or extension added since grading counts, and each grade it changes is said."""
    course = check_course(course)
    file = gradebook_file(course)
    if file is not None and not file.exists():
        raise GradingError(f"no gradebook at {file}: grade first (make autograde)")
    deadlines.reapply(course, say)
    if fmt == "csv":
        return export_grades(course, out, with_provenance)
    parts, maxima, students, grades = read_grades(course)
    known = read_roster(roster, list(students)) if roster else None
    make = {"canvas": canvas_rows, "moodle": moodle_rows}[fmt]
    rows = make(parts, maxima, students, grades, known)
    out = Path(out)
    with open(out, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, quoting=csv.QUOTE_MINIMAL).writerows(rows)
    look = [g for g in grades if g.status in ("flagged", "tampered") or (g.status == "graded" and g.review)]
    if look:
        say(f"{len(look)} grade(s) need a look (empty in {out.name} when not graded; its Notes column says why):")
        for g in look:
            say(f"  {g.student} / {g.note}")
    missing = sum(g.status == "missing" for g in grades)
    if missing:
        say(f"{missing} submission(s) missing: their cells are empty, not 0")
    return out


def _blank(course: Path) -> set[tuple[str, str]]:
    """(student, part) of graded submissions whose every answer cell is as released ("No response.")."""
    from nbgrader.api import Assignment, BaseCell, Comment, SubmittedAssignment, SubmittedNotebook
    from sqlalchemy import select

    answers: dict[tuple[str, str], set] = {}
    with gradebook(course) as gb:
        query = (select(SubmittedAssignment.student_id, Assignment.name, Comment.auto_comment)
                 .join(SubmittedNotebook, Comment.notebook_id == SubmittedNotebook.id)
                 .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                 .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
                 .join(BaseCell, Comment.cell_id == BaseCell.id).where(BaseCell.type == "SolutionCell"))
        for student, part, comment in gb.db.execute(query):
            answers.setdefault((student, part), set()).add(comment)
    return {key for key, said in answers.items() if said == {"No response."}}


def summary(course: Path, parts: list[str] | None = None) -> str:
    """One line on the class's latest grading of ``parts`` (default: every part): graded, flagged,
    for review, blank, late, and the mean score after penalties, as grades.csv has them."""
    _, _, _, grades = read_grades(course)
    subs = [g for g in grades if g.status != "missing" and (parts is None or g.part in parts)]
    graded = [g for g in subs if g.status == "graded"]
    blank = _blank(course)
    mean = sum(g.score / g.max_score for g in graded if g.max_score) / max(1, len(graded))
    return (f"{len(subs)} submission(s): {len(graded)} graded, {len(subs) - len(graded)} flagged, "
            f"{sum(bool(g.review) for g in graded)} for review, "
            f"{sum((g.student, g.part) in blank for g in graded)} blank, {sum(g.late_days > 0 for g in subs)} late; "
            f"mean score {mean:.0%}" if graded else f"{len(subs)} submission(s), none graded")
