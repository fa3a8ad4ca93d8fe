"""The kernel's own timing of a cell, from nbclient's record in its metadata (how long the
canaries' cells and the notebook's own cells took; :mod:`instructor.preprocessors` reads it)."""

from __future__ import annotations

from datetime import datetime


def stamp(value) -> float | None:
    """A timestamp of nbclient's timing record (ISO 8601, "Z" for UTC) in seconds; None if unreadable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def cell_seconds(cell) -> float:
    """Seconds between the kernel starting and finishing ``cell`` (nbclient's timing record;
    0 when the cell did not run or its timestamps are unreadable)."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = stamp(timing.get("iopub.execute_input")), stamp(timing.get("shell.execute_reply"))
    return end - start if start is not None and end is not None else 0.0
