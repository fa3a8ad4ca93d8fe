"""What produced a stored result, and what a regrade changed: every outcome carries the inputs
its score depends on, and a regrade ends by naming whose score or status changed and why.

    inputs = run_inputs(course, parts, settings.sandbox, task_limits)  # {part: {...}}, once a run
    versions()                        # {"torch", "nbgrader", "python"}, where a task runs
    found = changes(before, after)    # [Change]: score or status changed, old -> new, inputs differed
    regrade_lines(found, regraded)    # what autograde ends with ("regrade: 0 changes ...")

The inputs (an outcome's ``provenance``, journaled with it): ``release``, a digest of the part's
tests (each test cell of the source notebook: grade id, points, source); ``course``, the
course's version (pyproject.toml's, plus the git commit when there is one); the ``torch``,
``nbgrader`` and ``python`` versions the task ran with; the ``sandbox`` and the ``limits`` in
force. The submission's digest is the outcome's ``sha256``. Two gradings of the same inputs give
the same score: a change with no input changed is nondeterminism, and is said so.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .course import ROOT, grade_id, is_test_cell, nbgrader_meta
from .outcome import Outcome

# The inputs, in the order a change names them; "submission" is the outcome's sha256.
INPUTS = ("submission", "release", "course", "torch", "nbgrader", "python", "sandbox", "limits")


def release_digest(course: Path, part: str) -> str:
    """sha256 of ``part``'s tests: each test cell of its source notebook (grade id, points, source,
    hidden tests included), in order. Anything else in the notebook leaves it as it is."""
    from .verdicts import source_notebook

    try:
        nb = source_notebook(course, part)
    except OSError:
        return ""  # no source notebook here: not recorded
    cells = [[grade_id(c), nbgrader_meta(c).get("points"), c.source] for c in nb.cells if is_test_cell(c)]
    return hashlib.sha256(json.dumps(cells).encode("utf-8")).hexdigest()


def course_version(root: Path = ROOT) -> str:
    """pyproject.toml's version, plus ``+g<commit>`` when ``root`` is a git checkout."""
    try:
        text = (Path(root) / "pyproject.toml").read_text()
        version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    except (OSError, AttributeError):
        version = "unknown"
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+g{commit}" if re.fullmatch(r"[0-9a-f]{7,40}", commit) else version


def versions() -> dict[str, str]:
    """The torch, nbgrader and Python versions of this process's environment (not imported)."""
    found = {"python": platform.python_version()}
    for name in ("torch", "nbgrader"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def limits_text(limits: dict) -> str:
    """The limits in force as one line, ``name=value`` sorted by name (the sandbox aside)."""
    return " ".join(f"{k}={limits[k]}" for k in sorted(limits) if k != "sandbox")


def run_inputs(course: Path, parts: list[str], sandbox: str, limits: dict) -> dict[str, dict[str, str]]:
    """{part: the inputs one run shares}: the release's digest, the course's version, the sandbox
    and the limits. :func:`versions` is added where each task runs."""
    common = {"course": course_version(), "sandbox": sandbox, "limits": limits_text(limits)}
    return {part: {"release": release_digest(course, part), **common} for part in parts}


def with_versions(task, spec: dict) -> Outcome:
    """``task(spec)`` (a grading task, on a worker), its outcome stamped with the worker's
    :func:`versions`."""
    result = task(spec)
    result.provenance = {**versions(), **(result.provenance or {})}
    return result


def inputs_of(result: Outcome) -> dict[str, str]:
    """Every recorded input of ``result``, the submission's digest included."""
    return {"submission": result.sha256, **(result.provenance or {})}


@dataclass
class Change:
    """A submission graded again whose score or status is not what it was."""

    before: Outcome
    after: Outcome

    @property
    def differed(self) -> list[str]:
        """The inputs that were not the same (only those recorded both times)."""
        old, new = inputs_of(self.before), inputs_of(self.after)
        return [k for k in INPUTS if k in old and k in new and old[k] != new[k]]

    def line(self) -> str:
        """``student / part: 2 / 3 graded -> 1 / 3 graded; inputs that differed: release, course``."""
        b, a = self.before, self.after
        if not self.before.provenance:
            why = "inputs of the earlier grading not recorded" + (
                " (submission differed)" if "submission" in self.differed else "")
        elif self.differed:
            why = "inputs that differed: " + ", ".join(self.differed)
        else:
            why = "no recorded input differed: grading was not deterministic here, look at both logs"
        return (f"{b.student} / {b.part}: {b.score:g} / {b.max_score:g} {b.status} \u2192 "
                f"{a.score:g} / {a.max_score:g} {a.status}; {why}")


def changes(before: dict[tuple[str, str], Outcome], after: list[Outcome]) -> list[Change]:
    """Each outcome of ``after`` whose score or status differs from its earlier one in ``before``
    (the journal as it was before the run); submissions graded for the first time are left out."""
    found = []
    for result in after:
        old = before.get((result.student, result.part))
        if old is not None and (old.status, round(old.score, 6)) != (result.status, round(result.score, 6)):
            found.append(Change(old, result))
    return sorted(found, key=lambda c: (c.after.part, c.after.student))


def regrade_lines(found: list[Change], regraded: int) -> list[str]:
    """What a run that graded ``regraded`` submissions again ends with: ``0 changes``, or each
    change (old -> new, and the inputs that differed)."""
    if not found:
        return [f"regrade: 0 changes: the {regraded} submission(s) graded again kept their score and status"]
    return [f"regrade: {len(found)} change(s) among the {regraded} submission(s) graded again:",
            *(f"  {c.line()}" for c in found)]
