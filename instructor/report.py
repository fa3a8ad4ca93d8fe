"""The class report: how the class did, part by part and exercise by exercise.

    python -m instructor report [--out report]      (`make report`)

Reads nbgrader's gradebook (``c.CourseDirectory.db_url`` or gradebook.db) and, when grading
wrote it, ``autograded/grading-report.csv``; writes ``report/index.html`` (one self-contained
page: the PNG plots are embedded, and also written beside it) and the numbers behind every
plot as CSV files:

    scores.csv     one row per submission: student, part, status, score (after any late penalty),
                   max_score, percent, late_days, penalty
    parts.csv      score distribution per part (graded submissions only)
    cells.csv      pass rate per graded cell (full marks = passed), hardest first
    flagged.csv    submissions that need a look (could not be graded, tampering) and why
    timing.csv     grading time per part (from grading-report.csv)
    review.csv     static-scan findings per submission (when grading-report.csv has them)
    late.csv       submissions past their due date (deadlines.toml): days late and points taken
    mistakes.csv   the named mistakes of each exercise: who made them (instructor.mistakes)
    similarity/    similar answers per part (instructor.similarity): a list to read, never a penalty

Submissions that could not be graded score 0 until an instructor looks at them: they are
listed under "flagged" and left out of the score distribution and the pass rates, so one
broken notebook does not read as an exercise the whole class failed.
"""

from __future__ import annotations

import base64
import html
import random
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import deadlines, mistakes, outcome
from .course import GradingError, check_course, db_url, gradebook_file, html_table, write_csv
from .similarity import pages as similarity

PLOTS = {
    "scores": "scores.png",
    "cells": "cells.png",
    "flagged": "flagged.png",
    "timing": "timing.png",
}


@dataclass
class Submission:
    """One student's graded notebook of one part, as the report counts it: the gradebook's
    scores per cell, and the grading :class:`~instructor.outcome.Outcome` (status, reason, review,
    seconds) where grading recorded one."""

    student: str
    part: str
    score: float
    max_score: float
    status: str = "graded"            # graded, flagged, tampered (from grading-report.csv)
    reason: str = ""
    seconds: float | None = None
    review: str = ""
    cells: dict = field(default_factory=dict)   # grade id -> (score or None, max_score)
    late_days: int = 0                # past the due date, with any extension (deadlines.toml)
    penalty: float = 0.0              # points taken for lateness (already out of ``score``)

    @property
    def percent(self) -> float:
        """Score as a percentage of the part's maximum."""
        return 100.0 * self.score / self.max_score if self.max_score else 0.0


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

def read_submissions(course: Path) -> list[Submission]:
    """Every submission in the gradebook, with per-cell scores and grading-report.csv's outcome."""
    from nbgrader.api import Gradebook

    course = Path(course).resolve()
    file = gradebook_file(course)
    if file is not None and not file.exists():
        raise GradingError(f"no gradebook at {file}: grade first (make autograde)")
    outcomes = outcome.read_report(course)
    rules = deadlines.load(course)
    grace = rules.grace_seconds if rules else 0.0
    subs = []
    with Gradebook(db_url(course)) as gb:
        for assignment in sorted(gb.assignments, key=lambda a: a.name):
            for sub in gb.assignment_submissions(assignment.name):
                penalty = float(sub.late_submission_penalty or 0)
                s = Submission(sub.student_id, assignment.name, max(0.0, float(sub.score or 0) - penalty),
                               float(sub.max_score or 0), penalty=penalty,
                               late_days=deadlines.late_days(sub.total_seconds_late, grace))
                for nb in sub.notebooks:
                    if nb.flagged:
                        s.status, s.reason = "flagged", "flagged in the gradebook"
                    for g in nb.grades:
                        graded = g.auto_score is not None or g.manual_score is not None
                        s.cells[g.name] = (float(g.score) if graded else None, float(g.max_score or 0))
                seen = outcomes.get((s.student, s.part))
                if seen:
                    s.status = seen.status or s.status
                    s.reason = seen.reason or ("" if s.status == "graded" else s.reason)
                    s.seconds = seen.seconds
                    s.review = seen.review.strip()
                    s.late_days = seen.late_days
                subs.append(s)
    return subs


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

def _r(x: float) -> float:
    return round(x, 2)


def part_stats(subs: list[Submission]) -> list[dict]:
    """Score distribution per part, graded submissions only (percent of the part's points)."""
    rows = []
    for part in sorted({s.part for s in subs}):
        mine = [s for s in subs if s.part == part]
        graded = [s.percent for s in mine if s.status == "graded"]
        rows.append({
            "part": part,
            "submissions": len(mine),
            "graded": len(graded),
            "flagged": len(mine) - len(graded),
            "max_score": max((s.max_score for s in mine), default=0),
            "mean_percent": _r(statistics.mean(graded)) if graded else "",
            "median_percent": _r(statistics.median(graded)) if graded else "",
            "min_percent": _r(min(graded)) if graded else "",
            "max_percent": _r(max(graded)) if graded else "",
            "full_marks": sum(p >= 100 for p in graded),
        })
    return rows


def cell_stats(subs: list[Submission]) -> list[dict]:
    """Pass rate per graded cell over graded submissions (passed = full marks on the cell),
    lowest pass rate first: the exercises the class fails most."""
    scores = defaultdict(list)
    for s in subs:
        if s.status != "graded":
            continue
        for cell, (score, top) in s.cells.items():
            if score is not None:   # None: waiting for a manual grade
                scores[(s.part, cell)].append((score, top))
    rows = []
    for (part, cell), marks in scores.items():
        passed = sum(score >= top for score, top in marks)
        rows.append({
            "part": part,
            "cell": cell,
            "graded": len(marks),
            "passed": passed,
            "pass_rate": _r(100.0 * passed / len(marks)),
            "mean_score": _r(statistics.mean(score for score, _ in marks)),
            "max_score": marks[0][1],
        })
    rows.sort(key=lambda r: (r["pass_rate"], r["part"], r["cell"]))
    return rows


def flagged_rows(subs: list[Submission]) -> list[dict]:
    """Rows of flagged.csv: every submission that needs a look, and why."""
    return [{"student": s.student, "part": s.part, "status": s.status, "reason": s.reason}
            for s in sorted(subs, key=lambda s: (s.part, s.student)) if s.status != "graded"]


def timing_stats(subs: list[Submission]) -> list[dict]:
    """Rows of timing.csv: grading seconds per part (jobs, mean, median, max, total)."""
    rows = []
    for part in sorted({s.part for s in subs}):
        secs = [s.seconds for s in subs if s.part == part and s.seconds is not None]
        if secs:
            rows.append({"part": part, "jobs": len(secs), "mean_seconds": _r(statistics.mean(secs)),
                         "median_seconds": _r(statistics.median(secs)), "max_seconds": _r(max(secs)),
                         "total_seconds": _r(sum(secs))})
    return rows


def review_rows(subs: list[Submission]) -> list[dict]:
    """Rows of review.csv: submissions the static scan quoted lines of."""
    return [{"student": s.student, "part": s.part, "review": s.review}
            for s in sorted(subs, key=lambda s: (s.part, s.student)) if s.review]


def score_rows(subs: list[Submission]) -> list[dict]:
    """Rows of scores.csv: every submission's score and status."""
    return [{"student": s.student, "part": s.part, "status": s.status, "score": _r(s.score),
             "max_score": _r(s.max_score), "percent": _r(s.percent), "late_days": s.late_days,
             "penalty": _r(s.penalty)}
            for s in sorted(subs, key=lambda s: (s.part, s.student))]


def late_rows(subs: list[Submission]) -> list[dict]:
    """Rows of late.csv: submissions past their due date (with any extension) and what it cost."""
    return [{"student": s.student, "part": s.part, "late_days": s.late_days, "penalty": _r(s.penalty),
             "score": _r(s.score)}
            for s in sorted(subs, key=lambda s: (s.part, s.student)) if s.late_days or s.penalty]


# ---------------------------------------------------------------------------
# Plots (matplotlib's object API with the Agg canvas: no display, no global state)
# ---------------------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_scores(subs: list[Submission], path: Path) -> None:
    """Score distribution per part (PNG)."""
    parts = sorted({s.part for s in subs})
    fig, ax = _figure(max(6, 1.1 * len(parts) + 2), 4)
    data = [[s.percent for s in subs if s.part == p and s.status == "graded"] for p in parts]
    if any(data):
        ax.boxplot([d or [float("nan")] for d in data], positions=range(len(parts)), widths=0.5,
                   showfliers=False)
        jitter = random.Random(0)
        for i, d in enumerate(data):
            ax.scatter([i + jitter.uniform(-0.15, 0.15) for _ in d], d, s=14, alpha=0.6, color="C0", zorder=3)
        ax.set_xticks(range(len(parts)), parts, rotation=30, ha="right")
        ax.set_ylim(-5, 105)
        ax.set_ylabel("score (% of the part's points)")
    else:
        _empty(ax, "no graded submission yet")
    ax.set_title("Score distribution per part (graded submissions)")
    fig.savefig(path)


def plot_cells(rows: list[dict], path: Path) -> None:
    """Pass rate per graded cell, hardest first (PNG)."""
    fig, ax = _figure(8, max(2.5, 0.28 * len(rows) + 1.2))
    if rows:
        labels = [f"{r['part']} / {r['cell']}" for r in rows]
        rates = [r["pass_rate"] for r in rows]
        colors = ["C3" if x < 50 else "C1" if x < 80 else "C2" for x in rates]
        ax.barh(range(len(rows)), rates, color=colors)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.invert_yaxis()  # hardest first, at the top
        ax.set_xlim(0, 100)
        ax.set_xlabel("passed (full marks on the cell), % of graded submissions")
    else:
        _empty(ax, "no graded cell yet")
    ax.set_title("Pass rate per graded cell (hardest at the top)")
    fig.savefig(path)


def plot_flagged(rows: list[dict], path: Path) -> None:
    """Submissions flagged, by reason (PNG)."""
    fig, ax = _figure(8, 3.2)
    if rows:
        counts = Counter(f"{r['status']}: {r['reason'] or 'no reason given'}"[:70] for r in rows)
        labels, values = zip(*counts.most_common(), strict=True)
        ax.barh(range(len(values)), values, color="C3")
        ax.set_yticks(range(len(values)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("submissions")
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        _empty(ax, "no flagged submission")
    ax.set_title("Submissions flagged, and why")
    fig.savefig(path)


def plot_timing(subs: list[Submission], path: Path) -> None:
    """Grading time per part (PNG)."""
    parts = sorted({s.part for s in subs if s.seconds is not None})
    fig, ax = _figure(max(6, 1.1 * len(parts) + 2), 3.5)
    if parts:
        data = [[s.seconds for s in subs if s.part == p and s.seconds is not None] for p in parts]
        ax.boxplot(data, positions=range(len(parts)), widths=0.5)
        ax.set_xticks(range(len(parts)), parts, rotation=30, ha="right")
        ax.set_ylabel("seconds per submission")
        ax.set_ylim(bottom=0)
    else:
        _empty(ax, "no grading times (autograded/grading-report.csv is missing)")
    ax.set_title("Grading time per part")
    fig.savefig(path)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _image(path: Path, title: str) -> str:
    """The PNG embedded in the page (it then shows wherever the page is opened: a file, Jupyter's
    /files/, which sandboxes HTML and its requests, or an attachment); the file stays beside it."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img src='data:image/png;base64,{data}' data-file='{path.name}' alt='{html.escape(title)}'>"


FIELDS = {
    "scores.csv": ["student", "part", "status", "score", "max_score", "percent", "late_days", "penalty"],
    "parts.csv": ["part", "submissions", "graded", "flagged", "max_score", "mean_percent", "median_percent",
                  "min_percent", "max_percent", "full_marks"],
    "cells.csv": ["part", "cell", "graded", "passed", "pass_rate", "mean_score", "max_score"],
    "flagged.csv": ["student", "part", "status", "reason"],
    "timing.csv": ["part", "jobs", "mean_seconds", "median_seconds", "max_seconds", "total_seconds"],
    "review.csv": ["student", "part", "review"],
    "late.csv": ["student", "part", "late_days", "penalty", "score"],
}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f3f3f3; } .none { color: #666; font-style: italic; }
"""


OPTIONAL = {  # tables shown only when they have rows: title, text
    "review.csv": ("Review notes", "Static-scan findings to read before trusting a score."),
    "late.csv": ("Late submissions", "Past the due date (with any extension) in deadlines.toml; "
                 "the penalty is already taken from the score."),
}


def _optional_sections(tables: dict) -> list[str]:
    return [f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>"
            f"{html_table(tables[name], FIELDS[name])}<p><a href='{name}'>{name}</a></p>"
            for name, (title, text) in OPTIONAL.items() if tables.get(name)]


def build(course: Path, out: Path | None = None, say=print) -> Path:
    """Write the report into ``out`` (default: report/ in the course); returns index.html."""
    course = check_course(course)
    out = Path(out) if out else course / "report"
    out = out if out.is_absolute() else course / out
    out.mkdir(parents=True, exist_ok=True)
    subs = read_submissions(course)
    tables = {
        "scores.csv": score_rows(subs),
        "parts.csv": part_stats(subs),
        "cells.csv": cell_stats(subs),
        "flagged.csv": flagged_rows(subs),
        "timing.csv": timing_stats(subs),
    }
    reviews, late = review_rows(subs), late_rows(subs)
    if reviews:
        tables["review.csv"] = reviews
    if late:
        tables["late.csv"] = late
    for name, rows in tables.items():
        write_csv(out / name, rows, FIELDS[name])
    plot_scores(subs, out / PLOTS["scores"])
    plot_cells(tables["cells.csv"], out / PLOTS["cells"])
    plot_flagged(tables["flagged.csv"], out / PLOTS["flagged"])
    plot_timing(subs, out / PLOTS["timing"])

    students = len({s.student for s in subs})
    sections = [
        ("Scores per part", "scores", "parts.csv",
         "Percent of each part's points, one dot per graded submission (flagged ones are left out)."),
        ("Which exercise the class fails most", "cells", "cells.csv",
         "Share of graded submissions with full marks on each graded cell, hardest first."),
        ("Flagged submissions", "flagged", "flagged.csv",
         ("Could not be graded automatically (or tampering was caught): they score 0 until you "
          "look at them (formgrader shows the flag; logs under autograded/.logs/).")),
        ("Grading time", "timing", "timing.csv", "Wall time of each submission's grading job."),
    ]
    parts_html = []
    for title, plot, table, text in sections:
        limit = 12 if table == "cells.csv" else None
        parts_html.append(
            f"<h2>{html.escape(title)}</h2><p>{html.escape(text)}</p>"
            f"<a href='{PLOTS[plot]}'>{_image(out / PLOTS[plot], title)}</a>"
            f"{html_table(tables[table], FIELDS[table], limit)}"
            f"<p><a href='{table}'>{table}</a></p>")
    parts_html.append(mistakes.report_section(course, out))
    parts_html += _optional_sections(tables)
    parts_html.append(similarity.report_section(course, out, say=say))
    parts_html.append("<p>Every score: <a href='scores.csv'>scores.csv</a></p>")
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Class report</title>"
            f"<style>{STYLE}</style></head><body><h1>Class report</h1>"
            f"<p class='sub'>{students} student(s), {len(subs)} submission(s), "
            f"{len(tables['flagged.csv'])} flagged</p>{''.join(parts_html)}</body></html>")
    index = out / "index.html"
    index.write_text(page)
    say(f"class report written to {index}")
    return index
