"""After grading: HTML feedback per student (nbgrader generate_feedback, hidden tests removed)
and the grades as CSV (nbgrader export, with what grading said of each row).
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import outcome
from .course import check_course, released_parts, run_nbgrader

FEEDBACK_PREPROCESSORS = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "instructor.preprocessors.FeedbackWithoutHiddenTests",
]


def feedback(course: Path, parts: list[str] | None = None) -> None:
    """nbgrader generate_feedback: feedback/<student>/<part>/<part>.html for graded work, without
    hidden tests (nbgrader_config.py sets the same pipeline for formgrader)."""
    course = check_course(course)
    pipeline = "[" + ",".join(repr(p) for p in FEEDBACK_PREPROCESSORS) + "]"
    parts = list(parts or released_parts(course))

    def one(part: str) -> None:
        run_nbgrader(["generate_feedback", part, "--force", "--log-level=WARN",
                      f"--GenerateFeedback.preprocessors={pipeline}"], course, check=True)

    # one nbgrader process per part, as many at once as there are cores: each writes only
    # feedback/<student>/<part>/ and reads the gradebook
    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), os.cpu_count() or 1))) as pool:
        for done in [pool.submit(one, part) for part in parts]:
            done.result()


def export_grades(course: Path, out: Path) -> Path:
    """nbgrader export (one CSV row per student and part) plus what grading said of each row:
    ``status`` (graded, flagged, tampered, or missing when nothing was graded), ``reason`` and
    ``review``, so a flagged 0 never reads like an earned 0, and ``late_days`` (deadlines.toml;
    nbgrader's own ``late_submission_penalty`` column has the points taken)."""
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
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields + ["status", "reason", "review", "late_days"])
        writer.writeheader()
        writer.writerows(rows)
    return out

