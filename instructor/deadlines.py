"""Due dates, extensions and the late policy: one file, ``deadlines.toml`` in the course folder.

    [policy]
    timezone = "Europe/Berlin"   # for due dates written without an offset (default: UTC)
    grace_minutes = 15           # up to this long after the due date still counts as on time
    penalty_per_day = 10         # percent of the submission's score per day late (a day begun counts)
    max_penalty = 50             # percent: the cap

    [due]
    01-tensors = 2025-10-06T23:59:00        # a TOML date-time; a date alone means 23:59:59 that day
    02-neural-networks = 2025-10-13T23:59:00+02:00

    [extensions]                             # days added to one student's due date (fractions allowed)
    alice = { 01-tensors = 2 }

    load(course) -> Deadlines | None      None without the file; GradingError (one line) for a bad one
    LatePolicy                            nbgrader's late-submission plugin that applies the policy
    reapply(course) -> [Change]           the policy again on every graded submission: no regrading

Autograding loads the file before anything is graded, then stores each part's due date and each
extension in nbgrader's gradebook and runs nbgrader's ``AssignLatePenalties`` with ``LatePolicy``
as its ``plugin_class`` on every graded submission (lateness from its ``timestamp.txt``). Parts
the file does not name have no due date.

A penalty is arithmetic on stored facts (the raw score in the gradebook, the submission's time,
the due date, the extension, the policy), so :func:`reapply` computes it again whenever grades,
feedback or the report are produced, and at the end of every ``autograde``: a new due date,
extension or policy, or a ``timestamp.txt`` written after grading, changes the gradebook's
penalties, the journal's late days and ``grading-report.csv`` without running any notebook, and
each grade it changes is listed (student / part: old -> new score).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

from .course import PART_NAMES, GradingError, read_regular_file, submission_dir

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

FILE = "deadlines.toml"
DAY = 86400.0
POLICY_KEYS = {"timezone", "grace_minutes", "penalty_per_day", "max_penalty"}


def late_days(seconds_late: float, grace_seconds: float) -> int:
    """Days late, a day begun counting as one; 0 within the grace period."""
    return 0 if seconds_late <= grace_seconds else math.ceil(seconds_late / DAY)


def penalty_percent(days: int, per_day: float, cap: float) -> float:
    """Percent of the score taken for ``days`` days late."""
    return min(cap, days * per_day)


class LatePolicy(LateSubmissionPlugin):
    """nbgrader's late-submission plugin for ``deadlines.toml``: ``penalty_per_day`` percent of the
    score per day late (a day begun counts), at most ``max_penalty`` percent, nothing within the
    grace period. Set with ``c.AssignLatePenalties.plugin_class``."""

    grace_seconds = Float(0.0, help="seconds after the due date that still count as on time").tag(config=True)
    percent_per_day = Float(0.0, help="percent of the score taken per day late").tag(config=True)
    max_percent = Float(100.0, help="the most that is taken, in percent of the score").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        days = late_days(total_seconds_late, self.grace_seconds)
        percent = penalty_percent(days, self.percent_per_day, self.max_percent)
        return score * percent / 100.0 if percent > 0 else None


@dataclass(frozen=True)
class Deadlines:
    """``deadlines.toml``, checked. Due dates are naive UTC, as nbgrader's gradebook keeps them."""

    due: dict[str, datetime] = field(default_factory=dict)
    extensions: dict[tuple[str, str], timedelta] = field(default_factory=dict)  # (student, part)
    grace_seconds: float = 0.0
    per_day: float = 0.0
    cap: float = 100.0

    def extension(self, student: str, part: str) -> timedelta | None:
        """The extension ``student`` has for ``part``, if any."""
        return self.extensions.get((student, part))

    def late_days(self, seconds_late: float) -> int:
        """Days late under this policy (0 within the grace period)."""
        return late_days(seconds_late, self.grace_seconds)

    def nbgrader_config(self):
        """The traitlets Config that makes ``AssignLatePenalties`` apply this policy."""
        from traitlets.config import Config

        cfg = Config()
        cfg.AssignLatePenalties.plugin_class = LatePolicy
        cfg.LatePolicy.grace_seconds = self.grace_seconds
        cfg.LatePolicy.percent_per_day = self.per_day
        cfg.LatePolicy.max_percent = self.cap
        return cfg


def _zone(name):
    if name is None:
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise GradingError(f"{FILE}: policy.timezone {name!r} is not a time zone (e.g. 'Europe/Berlin')") from None


def _due(part: str, value, zone) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise GradingError(f"{FILE}: due date of {part} is not a date: {value!r} "
                               "(write e.g. 2025-10-06T23:59:00)") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time(23, 59, 59))
    if not isinstance(value, datetime):
        raise GradingError(f"{FILE}: due date of {part} is not a date: {value!r} (write e.g. 2025-10-06T23:59:00)")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _number(where: str, value, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GradingError(f"{FILE}: {where} must be a number, not {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise GradingError(f"{FILE}: {where} must be {bound}, not {value!r}")
    return float(value)


def _part(where: str, part: str) -> str:
    if part not in PART_NAMES:
        raise GradingError(f"{FILE}: {where} names unknown part {part!r}; parts are: {', '.join(PART_NAMES)}")
    return part


def _table(data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise GradingError(f"{FILE}: [{key}] must be a table")
    return value


def parse(data: dict) -> Deadlines:
    """The checked :class:`Deadlines` from the file's parsed TOML (GradingError: one line)."""
    unknown = sorted(set(data) - {"policy", "due", "extensions"})
    if unknown:
        raise GradingError(f"{FILE}: unknown section [{unknown[0]}] (known: [policy], [due], [extensions])")
    policy, due, extensions = (_table(data, k) for k in ("policy", "due", "extensions"))
    unknown = sorted(set(policy) - POLICY_KEYS)
    if unknown:
        raise GradingError(f"{FILE}: unknown policy key {unknown[0]!r} (known: {', '.join(sorted(POLICY_KEYS))})")
    zone = _zone(policy.get("timezone"))
    dues = {_part("[due]", part): _due(part, value, zone) for part, value in due.items()}
    granted = {}
    for student, parts in extensions.items():
        if not isinstance(parts, dict):
            raise GradingError(f"{FILE}: extensions.{student} must be a table of part = days")
        for part, days in parts.items():
            _part(f"extensions.{student}", part)
            if part not in dues:
                raise GradingError(f"{FILE}: extensions.{student} extends {part}, which has no due date in [due]")
            granted[(student, part)] = timedelta(days=_number(f"extensions.{student}.{part}", days))
    return Deadlines(
        due=dues, extensions=granted,
        grace_seconds=60 * _number("policy.grace_minutes", policy.get("grace_minutes", 0)),
        per_day=_number("policy.penalty_per_day", policy.get("penalty_per_day", 0), 0, 100),
        cap=_number("policy.max_penalty", policy.get("max_penalty", 100), 0, 100))


def load(course: Path) -> Deadlines | None:
    """``<course>/deadlines.toml`` checked, or None when there is none."""
    path = Path(course) / FILE
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise GradingError(f"{FILE}: not valid TOML: {' '.join(str(exc).split())}") from None
    return parse(data)


def course_zone(course: Path):
    """The course's time zone (``policy.timezone`` in deadlines.toml), UTC without one or with a
    file that cannot be read (autograde says why)."""
    try:
        data = tomllib.loads((Path(course) / FILE).read_text(encoding="utf-8"))
        return _zone(data.get("policy", {}).get("timezone"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError, GradingError, AttributeError, ValueError):
        return timezone.utc


@dataclass(frozen=True)
class Change:
    """A grade that :func:`reapply` changed: the score after the penalty, before and after."""

    student: str
    part: str
    old: float
    new: float
    old_days: int
    new_days: int

    def __str__(self) -> str:
        return (f"{self.student} / {self.part}: {self.old:g} -> {self.new:g}"
                f" ({self.new_days} day(s) late{f', was {self.old_days}' if self.old_days != self.new_days else ''})")


def _submitted_time(course: Path, student: str, part: str, sha256: str, stored):
    """The submission's time from its ``timestamp.txt`` (naive UTC) when the notebook beside it
    is the one graded (same digest); ``stored`` otherwise."""
    import hashlib

    from nbgrader.utils import parse_utc

    folder = submission_dir(course, student, part)
    try:
        text = read_regular_file(folder / "timestamp.txt", 200).decode("utf-8", "replace").strip()
        when = parse_utc(text) if text else None
    except (OSError, ValueError, OverflowError):
        return stored
    if when is None or when == stored:
        return stored
    try:
        data = read_regular_file(folder / f"{part}.ipynb")
    except OSError:
        return stored
    return when if hashlib.sha256(data).hexdigest() == sha256 else stored


def reapply(course: Path, say=print) -> list[Change]:
    """The late policy of deadlines.toml applied again to every graded submission, from the
    gradebook's raw scores and each submission's time (its ``timestamp.txt``): due dates,
    extensions and penalties in the gradebook, late days in the journal and grading-report.csv.
    Nothing is graded; without deadlines.toml nothing changes. Says each grade it changes, and
    warns when a part with a due date has submissions without a time. Returns the changes."""
    from dataclasses import replace

    from nbgrader.api import Assignment, SubmittedAssignment, SubmittedNotebook
    from sqlalchemy import select

    from . import outcome as journal
    from .course import gradebook

    rules = load(course)
    seen = journal.read_journal(course) if rules is not None else None
    if not seen:  # no deadlines.toml: the gradebook's penalties stay as nbgrader stored them
        return []
    policy = LatePolicy(grace_seconds=rules.grace_seconds, percent_per_day=rules.per_day, max_percent=rules.cap)
    changes, redone, untimed = [], [], {}
    with gradebook(course) as gb:
        session = gb.db
        for a in session.query(Assignment):
            if a.duedate != rules.due.get(a.name):
                a.duedate = rules.due.get(a.name)
        query = (select(SubmittedNotebook, SubmittedAssignment, Assignment.name)
                 .join(SubmittedAssignment, SubmittedAssignment.id == SubmittedNotebook.assignment_id)
                 .join(Assignment, Assignment.id == SubmittedAssignment.assignment_id))
        for nb, sub, part in session.execute(query).all():
            got = seen.get((sub.student_id, part))
            if got is None:
                continue
            when = _submitted_time(course, sub.student_id, part, got.sha256, sub.timestamp)
            extension = rules.extension(sub.student_id, part)
            due = rules.due.get(part)
            if due is not None and when is None:
                untimed[part] = untimed.get(part, 0) + 1
            late = None if when is None or due is None else when - due - (extension or timedelta())
            seconds = max(0.0, late.total_seconds()) if late is not None else 0.0
            score = float(nb.score or 0)
            penalty = None
            if got.status == "graded" and seconds > 0:
                penalty = policy.late_submission_penalty(sub.student_id, score, seconds)
                penalty = None if penalty is None else min(max(penalty, 0.0), score)
            days = rules.late_days(seconds) if due is not None else 0
            old = float(nb.late_submission_penalty or 0)
            if when != sub.timestamp:
                sub.timestamp = when
            if extension != sub.extension:
                sub.extension = extension
            if (penalty or 0) != old or (nb.late_submission_penalty is None) != (penalty is None):
                nb.late_submission_penalty = penalty
            if (penalty or 0) != old or days != got.late_days:
                if got.status == "graded":
                    changes.append(Change(sub.student_id, part, score - old, score - (penalty or 0),
                                          got.late_days, days))
                redone.append(replace(got, late_days=days, penalty=float(penalty or 0)))
        session.commit()
    if redone:
        journal.append_many(course, redone)
        journal.write_report(course)
    for part, n in sorted(untimed.items()):
        say(f"!! {part} has a due date but {n} graded submission(s) have no time (no timestamp.txt): "
            "they count as on time; collect writes one (docs/instructor.md#timestamps)")
    if changes:
        say(f"late policy (deadlines.toml) applied again: {len(changes)} grade(s) changed, nothing regraded:")
        for change in changes:
            say(f"   {change}")
    return changes
