"""The simulated round's figures (``make bench-round``, ``tests/bench_round.py``) in docs/times.toml
and in docs/scaling.md: taken in from the benchmark's JSON (``python -m tests.times --from-round
FILE``) into the group [round-bench], and the section ``<!-- times:begin mooc-round -->`` of
docs/scaling.md worked out from that group (never edited by hand)."""

from __future__ import annotations

import json
from pathlib import Path

GROUP = "round-bench"
STAGES = ("collect-00-warm-up", "collect-00-trivial", "autograde", "autograde-trivial", "feedback",
          "grades-csv", "grades-lms", "report")
ROUND = 80_000
WORKERS = (10, 50, 100, 500)


def from_round(path: Path) -> tuple[dict[str, float | list[float]], dict[str, str]]:
    """({key: value}, {key: note}) for [round-bench] from `make bench-round`'s JSON."""
    out = json.loads(path.read_text())
    rows = {row["key"]: row for row in out["stages"]}
    values: dict = {"submissions": out["submissions"], "results": out["results"], "workers": out["workers"]}
    notes = {"workers": f"sandbox: {out['sandbox']}; gradebook: {out['db']}; {out['cpu_count']} CPU cores"}
    for key in STAGES:
        row = rows[key]
        values[key] = round(row["wall_s"], 1)
        per = row["wall_s"] / row["items"]
        notes[key] = f"{row['items']:,} items, {per * 1000:.1f} ms each, {3600 / per:,.0f} an hour"
    where, x = out["where"], out["extrapolation"]
    values.update({
        "task": round(where["task_s"], 2), "cells": round(where["cells_s"], 2),
        "beyond-cells": round(where["beyond_cells_s"], 2), "setup": round(where["setup_s"], 1),
        "worker-busy": round(where["worker_busy"] * 100),
        "w": round(x["worker_s_per_submission"], 3), "g": round(x["storage_s_per_result"], 4),
        "f": round(x["feedback_worker_s_per_page"], 4), "e": round(x["exports_and_report_s_per_submission"], 4),
        "load": [round(min(out["load"]), 1), round(max(out["load"]), 1)],
    })
    notes["setup"] = f"{where['setups']} time(s): once per worker and part"
    return values, notes


def _value(entries: dict, key: str) -> float | None:
    value = entries.get(key, {}).get("value")
    return max(value) if isinstance(value, list) else value


def summary(groups: dict, fmt, duration) -> str:
    """The README's lines on the size of a round, from [round-bench] (with the command)."""
    group, e = groups[GROUP], groups[GROUP]["entries"]
    if any(_value(e, k) is None for k in ("w", "g", "f", "e")):
        return (f"A large class on many machines: [docs/scaling.md](docs/scaling.md) "
                f"(`{group['command']}`: not yet run).")
    w, g, f, after = (_value(e, k) for k in ("w", "g", "f", "e"))
    hours = {n: (ROUND * (w + f) / n + ROUND * (g + after)) / 3600 for n in (100, 500)}
    return (f"A simulated round on one 2-core machine (`{group['command']}`, {group['date']}, load average "
            f"{fmt(e['load'])}):\n{int(_value(e, 'submissions')):,} small submissions graded in sandboxed kernels "
            f"in {fmt(e['autograde'])} on {int(_value(e, 'workers'))} workers, and\n"
            f"{int(_value(e, 'results')):,} more results stored, fed back and exported. Extrapolated to "
            f"{ROUND:,} such submissions:\n{duration(hours[100])} on 100 workers, {duration(hours[500])} on 500 "
            "([docs/scaling.md](docs/scaling.md#a-simulated-round-end-to-end):\nwhat is measured, "
            "what is assumed, and a real part's longer tasks).")


def section(groups: dict, fmt, duration) -> str:
    """docs/scaling.md's ``mooc-round`` section, from [round-bench] (and the course's part times)."""
    group = groups[GROUP]
    e = group["entries"]
    if any(_value(e, k) is None for k in ("w", "g", "f", "e", *STAGES)):
        return f"Not yet measured: run `{group['command']}` and take its JSON in (see times.md)."
    w, g, f, after = (_value(e, k) for k in ("w", "g", "f", "e"))
    part_times = groups["grading-part-2"]["entries"]
    parts = [v for v in (_value(part_times, key) for key in part_times) if v]
    course_w = sum(parts) / len(parts)  # seconds per task with two workers on two cores: worker-seconds
    rows = ["| stage | items, time, rate |", "| --- | --- |"]
    for key in STAGES:
        rows.append(f"| {e[key]['what']} | {fmt(e[key])}: {e[key].get('note', '')} |")

    def line(label: str, per: float) -> str:
        return f"| {label} | " + " | ".join(
            duration((ROUND * per / n + ROUND * g + ROUND * f / n + ROUND * after) / 3600) for n in WORKERS) + " |"

    return "\n".join([
        f"Measured with `{group['command']}` ({group['date']}; load average {fmt(e['load'])} on the 2 cores,",
        f"{e['workers']['note']}): {int(_value(e, 'submissions')):,} warm-up submissions graded in real kernels and",
        f"{int(_value(e, 'results')):,} trivial results, every stage through the real path:", "", *rows, "",
        f"A warm-up task took {fmt(e['task'])} on its worker: {fmt(e['cells'])} in cells (canaries included),",
        f"{fmt(e['beyond-cells'])} beyond them (the kernel's start with its preloads, the sandbox, nbgrader's steps),",
        f"plus {fmt(e['setup'])} once per worker and part; the workers were busy {fmt(e['worker-busy'])}",
        "of the time.", "",
        f"**Extrapolation** to S = {ROUND:,} submissions on N one-thread workers:",
        "`T(N) = S·w/N + S·g + S·f/N + S·e`, with, measured above: `w` = "
        f"{w:g} worker-seconds per graded submission (autograde wall × workers / submissions), `g` = {g:g} s",
        f"of the coordinator per stored result, `f` = {f:g} worker-seconds per feedback page, `e` = {after:g} s",
        "per submission for the grades CSV, the LMS file and the report. Assumed, not measured: throughput",
        "linear in workers (a core each, nothing shared but the scheduler and the coordinator), a network as",
        "fast as loopback, exports and report linear in the class; adding `S·g` is cautious (the coordinator",
        "stores while the workers grade). Real parts take longer than the warm-up: the second row puts in",
        f"`w` = {course_w:.1f} s, the course's mean task time per part with two workers "
        "([times.md](times.md#grading-time-per-part-2-workers--1-thread)).", "",
        "| N workers | " + " | ".join(map(str, WORKERS)) + " |", "| --- |" + " --- |" * len(WORKERS),
        line(f"{ROUND:,} warm-up submissions", w),
        line(f"{ROUND:,} submissions of the course's average part", course_w),
    ])
