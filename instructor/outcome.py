"""The outcome of grading one submission: one dataclass from the worker (:mod:`instructor.tasks`)
through Dask to the coordinator, the journal, ``grading-report.csv``, the grades CSV and the report.

    Outcome(student, part, status="graded", score=..., ...)   what the worker and the coordinator fill in
    append(course, outcome)        one JSON line in autograded/.journal.jsonl, as it comes
    append_many(course, outcomes)  a batch's lines, flushed to disk at once
    read_journal(course)           {(student, part): Outcome}: the latest of each
    write_report(course)           autograded/grading-report.csv from the journal
    read_report(course)            that CSV back, as Outcomes
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .course import JOURNAL, REPORT, append_json_lines, read_json_lines

STATUSES = ("graded", "flagged", "tampered")   # flagged: not gradable, or a limit hit


@dataclass
class Outcome:
    """One submission, graded or not. The worker fills in what it saw; the coordinator adds the
    scores (from the gradebook), the digest and the log's path, and journals it."""

    student: str
    part: str
    status: str = "flagged"     # one of STATUSES
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0        # the whole task, on its worker
    cell_seconds: float = 0.0   # of which the kernel ran the notebook's own cells (not canaries): the rest is overhead
    reason: str = ""            # why not graded (flagged, tampered): one line
    review: str = ""            # static-scan findings and stopped cells: graded, but look
    log: str = ""               # the task's log, relative to the course (once recorded)
    sha256: str = ""            # of the submitted notebook
    host: str = ""              # the worker's machine
    late_days: int = 0          # days past the due date (deadlines.toml; 0 on time or within the grace period)
    penalty: float = 0.0        # points taken for lateness (nbgrader's late_submission_penalty)
    setup_seconds: float = 0.0  # of which the worker prepared the part (its first task of the part)
    canary_seconds: float = 0.0  # of which the kernel ran the canaries' cells (never journaled)
    record_seconds: float = 0.0  # the coordinator's time to store it (notebook, gradebook, journal)
    log_text: str = ""          # the task's log itself (travels from the worker, never journaled)
    notebook: str | None = None  # the graded notebook (travels from the worker, never journaled)
    provenance: dict = field(default_factory=dict)  # what produced it (instructor.provenance): journaled, no CSV

    @property
    def needs_a_look(self) -> bool:
        """Flagged, tampered, or graded with findings to review."""
        return self.status != "graded" or bool(self.review)


# What the journal and grading-report.csv keep, in this order.
FIELDS = [f.name for f in fields(Outcome)][:14]


def journal_path(course: Path) -> Path:
    """autograded/.journal.jsonl: one JSON line per recorded outcome."""
    return Path(course) / "autograded" / JOURNAL


def report_path(course: Path) -> Path:
    """autograded/grading-report.csv: the latest outcome of every student and part."""
    return Path(course) / "autograded" / REPORT


def _from_row(row: dict) -> Outcome:
    known = {name: row[name] for name in FIELDS if name in row}
    for name, kind in (("score", float), ("max_score", float), ("seconds", float), ("cell_seconds", float),
                       ("penalty", float), ("late_days", int)):
        try:
            known[name] = kind(float(known.get(name) or 0))
        except ValueError:
            known[name] = kind(0)
    return Outcome(**known)


def append(course: Path, outcome: Outcome) -> None:
    """Journal ``outcome`` (flushed to disk: a crash loses nothing recorded)."""
    append_many(course, [outcome])


def append_many(course: Path, outcomes: list[Outcome]) -> None:
    """Journal ``outcomes``, one line each, in one write flushed to disk (a crash cuts at most
    the last line short: :func:`read_journal` skips it)."""
    append_json_lines(journal_path(course), [{**{k: v for k, v in asdict(o).items() if k in FIELDS},
                                              **({"provenance": o.provenance} if o.provenance else {})}
                                             for o in outcomes])


def read_journal(course: Path) -> dict[tuple[str, str], Outcome]:
    """Every outcome recorded so far (the last one per student and part)."""
    outcomes: dict[tuple[str, str], Outcome] = {}
    for row in read_json_lines(journal_path(course)):
        outcomes[(row["student"], row["part"])] = got = _from_row(row)
        got.provenance = row["provenance"] if isinstance(row.get("provenance"), dict) else {}  # older lines: none
    return outcomes


def write_report(course: Path) -> Path:
    """autograded/grading-report.csv: the latest outcome of every student and part (from the journal)."""
    path = report_path(course)
    outcomes = read_journal(course)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        for key in sorted(outcomes):
            row = asdict(outcomes[key])
            for name in ("seconds", "cell_seconds"):
                row[name] = f"{row[name]:.2f}"
            writer.writerow(row)
    os.replace(tmp, path)
    return path


def read_report(course: Path) -> dict[tuple[str, str], Outcome]:
    """grading-report.csv as {(student, part): Outcome}; empty when grading never ran."""
    path = report_path(course)
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {(r["student"], r["part"]): _from_row(r) for r in csv.DictReader(f)}


def diagnose(log: str) -> str:
    """A one-line reason from a failed nbgrader run's log."""
    checks = [
        (r"DeadKernelError|Kernel died", "the kernel died (it crashed, exited, or hit the memory/CPU limit)"),
        (r"Timeout waiting for IOPub|CellTimeoutError", "a cell kept running after the timeout and would not stop"),
        (r"NotJSONError|Notebook does not appear to be JSON|JSONDecodeError|Unreadable Notebook",
         "the notebook is not valid JSON / not a notebook"),
        (r"ValidationError|NotebookValidationError", "the notebook does not pass nbformat validation"),
        (r"MissingEntry: No such grade cell: [^/\s]+/[^/\s]+/(?P<cell>\S+)",
         "cell {cell} claims to be a graded test but is not one in the release (its nbgrader metadata was edited)"),
        (r"MissingEntry: No such (?:source|solution) cell: [^/\s]+/[^/\s]+/(?P<cell>\S+)",
         "cell {cell} claims to be an nbgrader cell but is not one in the release (its metadata was edited)"),
        (r"MetadataValidationError|[Cc]ell metadata|Notebook .* metadata",
         "the notebook's nbgrader metadata was changed"),
        (r"No notebooks were matched|No notebooks found", "no notebook with the expected name"),
        (r"NoSuchKernel", "the grading kernel could not be found"),
    ]
    for pattern, reason in checks:
        m = re.search(pattern, log)
        if m:
            return reason.format(**m.groupdict())
    errors = [line.strip() for line in log.splitlines()
              if ("ERROR" in line or "Error" in line) and "see the above traceback" not in line]
    return errors[-1][:200] if errors else "nbgrader failed (see the log)"
