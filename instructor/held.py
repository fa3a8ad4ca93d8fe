"""Submissions held back from feedback until an instructor clears them.

    held(course, part) -> {student: why}     what gets no feedback page now
    clear(course, student, part) -> str      release one (the submission graded, as it is now)

A submission is held when grading flagged it, found tampering, or sent it for review (the static
scan's findings, a stopped cell): its page is not rendered, an old page of it is removed,
``make feedback`` lists it with the reason and formgrader shows it flagged, until ``make clear``
releases it (and takes the flag off). A clearance is for
the submission the instructor looked at (its digest): a new submission from the same learner is
held again if its grading sends it for review.
"""

from __future__ import annotations

from pathlib import Path

from .course import append_json_lines, gradebook, read_json_lines
from .outcome import read_journal

CLEARED = ".cleared.jsonl"  # under autograded/: one line per clearance


def _cleared_path(course: Path) -> Path:
    return Path(course) / "autograded" / CLEARED


def cleared(course: Path) -> dict[tuple[str, str], str]:
    """{(student, part): digest of the submission cleared}."""
    return {(row["student"], row["part"]): row["sha256"]
            for row in read_json_lines(_cleared_path(course)) if {"student", "part", "sha256"} <= row.keys()}


def held(course: Path, part: str) -> dict[str, str]:
    """{student: why} for ``part``: every submission that needs a look and was not cleared."""
    done = cleared(course)
    out = {}
    for (student, p), outcome in read_journal(course).items():
        if p != part or not outcome.needs_a_look:
            continue
        if outcome.status == "graded" and done.get((student, part)) == outcome.sha256 and outcome.sha256:
            continue
        what = "sent for review" if outcome.status == "graded" else outcome.status
        out[student] = f"{what}: {outcome.reason or outcome.review}".rstrip(": ")
    return out


def clear(course: Path, student: str, part: str) -> str:
    """Release ``student``'s graded ``part`` for feedback; returns what was cleared, in one line.
    Raises ValueError when there is nothing to clear (not graded, not held, or flagged or
    tampered: those have no grade to show, and are graded again instead)."""
    outcome = read_journal(course).get((student, part))
    if outcome is None:
        raise ValueError(f"{student} has no graded submission of {part}")
    if outcome.status != "graded":
        raise ValueError(f"{student} / {part} was {outcome.status} ({outcome.reason}): there is no grade to show; "
                         "grade it again (make autograde FORCE=1) once the cause is fixed")
    if not outcome.review:
        raise ValueError(f"{student} / {part} is not held: its feedback is rendered as it is")
    append_json_lines(_cleared_path(course), [{"student": student, "part": part, "sha256": outcome.sha256}])
    _unflag(course, student, part)
    return f"cleared {student} / {part} (was held: {outcome.review}); make feedback renders its page"


def _unflag(course: Path, student: str, part: str) -> None:
    """nbgrader's flag off, so formgrader (which shows held submissions flagged) shows it read."""
    from nbgrader.api import MissingEntry

    with gradebook(course) as gb:
        try:
            for nb in gb.find_submission(part, student).notebooks:
                nb.flagged = False
            gb.db.commit()
        except MissingEntry:
            pass  # not in the gradebook: nothing to unflag
        gb.engine.dispose()
