"""After grading: HTML feedback per student (rendered on the workers, hidden tests removed)
and the grades as CSV (nbgrader export, with what grading said of each row).
"""

from __future__ import annotations

import csv
from pathlib import Path

from . import feedback as feedback_pages
from . import outcome
from .course import check_course, run_nbgrader


def feedback(course: Path, parts: list[str] | None = None, cluster: str | None = None, jobs: int = 1,
             force: bool = False, say=print) -> dict[str, dict[str, int]]:
    """feedback/<student>/<part>/<part>.html for graded work, without hidden tests, rendered on
    the Dask workers (:func:`instructor.feedback.feedback`; nbgrader_config.py sets the same
    pipeline for formgrader's own feedback button)."""
    return feedback_pages.feedback(course, parts, cluster=cluster, jobs=jobs, force=force, say=say)


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

