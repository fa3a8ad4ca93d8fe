"""A simulated round of a large class, end to end, through the real path: collect, autograde on a
real Dask cluster, feedback, grades export (CSV and the LMS file), class report.

    python -m tests.bench_round [--submissions 1000] [--results 10000] [--workers 2]
                                [--db postgresql|sqlite] [--json FILE]
    make bench-round

What it builds (``tests/round_course.py``): a course with two parts, a small one whose notebooks
really run (three functions in plain Python and NumPy, graded by nbgrader in the sandboxed kernel
exactly as a course part is: canaries, limits, bubblewrap when the machine has it) and the tiny
part of :func:`instructor.testing.trivial_course`, whose ``--results`` submissions are graded by a
task that runs nothing (:func:`instructor.testing.pregraded`): they load the coordinator, the
gradebook, the feedback pages, the exports and the report as a class of that size does, without
the hours its kernels would take. Both parts' downloads are .zip archives of
``<student>_<part>.ipynb`` files (what ``python -m instructor collect`` takes).

Everything runs on this machine: a throw-away PostgreSQL server (``--db sqlite``: the course's
file), a ``dask scheduler`` and ``--workers`` ``dask worker`` processes on 127.0.0.1
(``tests/services.py``), the coordinator in this process. Every stored score is checked against
what the notebook's kind says, and the exports' row counts against the class.

It prints one row per stage (items, wall seconds, per item, items an hour), where the grading
time goes (from the outcomes' recorded timings), the load average through the run (the machine
may be shared: say so beside the figures), and an extrapolation to 80,000 submissions on N
workers; ``--json`` writes the same figures for ``python -m tests.times --from-round FILE``.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from instructor import collect, coordinator, feedback, lms, report, sandbox, testing
from instructor.settings import Settings
from tests import round_course
from tests.services import start_dask_cluster, start_postgres

ROUND = 80_000                       # submissions in the round the extrapolation is for
WORKERS = (10, 50, 100, 500)         # N in the extrapolation table


class Stages:
    """Wall time of each stage, and the load average when it ended."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.loads: list[float] = [os.getloadavg()[0]]

    def run(self, key: str, name: str, items: int, fn):
        """Run ``fn()`` as stage ``key`` (shown as ``name``) of ``items`` items; returns what it returned."""
        start = time.monotonic()
        result = fn()
        self.rows.append({"key": key, "stage": name, "items": items, "wall_s": time.monotonic() - start})
        self.loads.append(os.getloadavg()[0])
        print(f"done: {name}, {items:,} items, {self.rows[-1]['wall_s']:.1f} s, load average {self.loads[-1]:.2f}",
              flush=True)
        return result

    def wall(self, key: str) -> float:
        return next(row["wall_s"] for row in self.rows if row["key"] == key)


def _check_scores(stored, expected: dict[str, int], what: str) -> None:
    wrong = [(r.student, r.status, r.score, expected.get(r.student)) for r in stored
             if r.status != "graded" or r.score != expected.get(r.student)]
    if wrong or len(stored) != len(expected):
        reasons = {r.reason for r in stored if r.reason}
        raise SystemExit(f"{what}: {len(stored)} stored for {len(expected)}; {len(wrong)} wrong, "
                         f"e.g. {wrong[:3]}; reasons: {sorted(reasons)[:3]}")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _where(real: list, wall: float, workers: int) -> dict:
    """Where the real part's grading time goes, from the outcomes' recorded timings (seconds)."""
    n = len(real)
    setups = [r.setup_seconds for r in real if r.setup_seconds >= 0.05]
    return {
        "task_s": statistics.mean(r.seconds for r in real),
        "cells_s": statistics.mean(r.cell_seconds for r in real),
        "beyond_cells_s": statistics.mean(r.seconds - r.cell_seconds - r.setup_seconds for r in real),
        "setup_s": statistics.mean(setups) if setups else 0.0, "setups": len(setups),
        "storage_s": statistics.mean(r.record_seconds for r in real),
        "storage_share": sum(r.record_seconds for r in real) / wall,
        "worker_busy": sum(r.seconds for r in real) / (wall * workers),
        "worker_s_per_submission": wall * workers / n,
    }


def _receive(stages: Stages, course: Path, folder: Path, db_url: str | None, real: int, trivial: int) -> None:
    """Release both parts and build the downloads (shown, never extrapolated: an instructor
    receives these), then collect each part's downloads."""
    config = f"\nc.CourseDirectory.db_url = {db_url!r}\n" if db_url else ""

    def setup() -> dict:
        round_course.make_course(course, config)
        return round_course.downloads(course, folder / "downloads", real, trivial)

    made = stages.run("setup", "setup: release both parts, build the downloads", real + trivial, setup)
    for part in (round_course.SMALL_PART, testing.TRIVIAL_PART):
        got = stages.run(f"collect-{part}", f"collect {part} (.zip downloads)", made[part]["notebooks"],
                         lambda p=part: collect.collect(course, folder / "downloads" / p, p, say=_quiet))
        if len(got["collected"]) != made[part]["notebooks"] or got["rejected"]:
            raise SystemExit(f"collect {part}: {len(got['collected'])} collected, rejected {got['rejected'][:3]}")


def _grade(stages: Stages, course: Path, address: str, out: dict) -> None:
    """Autograde both parts and render every feedback page on the cluster at ``address``."""
    real, trivial, small, tiny = out["submissions"], out["results"], round_course.SMALL_PART, testing.TRIVIAL_PART
    settings = Settings.resolve(course, sandbox_mode=out["sandbox"])
    stored = stages.run("autograde", f"autograde {small} (real kernels)", real, lambda: coordinator.autograde(
        course, [small], settings=settings, say=_quiet, cluster=address))
    _check_scores(stored, {round_course.student_id(i): round_course.expected_score(i) for i in range(real)}, small)
    out["where"] = _where(stored, stages.wall("autograde"), out["workers"])
    plain = Settings.resolve(course, sandbox_mode="rlimits")  # the trivial task runs no student code
    pregraded = stages.run("autograde-trivial", f"autograde {tiny} (trivial tasks)", trivial,
                           lambda: coordinator.autograde(course, [tiny], settings=plain, say=_quiet, cluster=address,
                                                         task=testing.pregraded))
    _check_scores(pregraded, {round_course.student_id(i): testing.trivial_score(i) for i in range(trivial)}, tiny)
    out["where"]["storage_trivial_s"] = statistics.mean(r.record_seconds for r in pregraded)
    out["where"]["storage_trivial_share"] = sum(r.record_seconds for r in pregraded) / stages.wall("autograde-trivial")
    pages = stages.run("feedback", "feedback pages, both parts", real + trivial,
                       lambda: feedback.feedback(course, cluster=address, say=_quiet))
    written = sum(counts["written"] for counts in pages.values())
    if written != real + trivial:
        raise SystemExit(f"feedback: {written} pages written for {real + trivial} graded submissions: {pages}")


def _export(stages: Stages, course: Path, folder: Path, real: int, trivial: int) -> None:
    """The grades CSV, the Canvas file and the class report, their rows counted."""
    students = max(real, trivial)
    grades = stages.run("grades-csv", "grades CSV (nbgrader export), rows", students * 2,
                        lambda: lms.export_grades(course, folder / "grades.csv"))
    if len(_rows(grades)) != students * 2:
        raise SystemExit(f"grades.csv: {len(_rows(grades))} rows for {students} students x 2 parts")
    canvas = stages.run("grades-lms", "LMS file (Canvas), students", students,
                        lambda: lms.export(course, folder / "canvas.csv", "canvas", say=_quiet))
    if len(_rows(canvas)) != students + 1:  # and the "Points Possible" row
        raise SystemExit(f"canvas.csv: {len(_rows(canvas))} rows for {students} students and the points row")
    stages.run("report", "class report (similarity included)", real + trivial,
               lambda: report.build(course, folder / "report", say=_quiet))
    if len(_rows(folder / "report" / "scores.csv")) != real + trivial:
        raise SystemExit("report/scores.csv does not list every graded submission")


def _quiet(_line: str) -> None:
    """What the stages would say: not printed (the table says it)."""


def measure(folder: Path, real: int, trivial: int, workers: int, db_url: str | None) -> dict:
    """Run the round; its figures, as a dict (see :func:`main` for what is printed)."""
    probe_ok, probe = sandbox.probe()
    out = {"submissions": real, "results": trivial, "workers": workers, "db": "postgresql" if db_url else "sqlite",
           "sandbox": "bwrap" if probe_ok else "rlimits", "sandbox_probe": probe, "cpu_count": os.cpu_count(),
           "date": datetime.date.today().isoformat()}
    stages, course = Stages(), folder / "course"
    _receive(stages, course, folder, db_url, real, trivial)
    with start_dask_cluster(workers, base=str(folder)) as cluster:
        _grade(stages, course, cluster.address, out)
    _export(stages, course, folder, real, trivial)
    out["stages"], out["load"] = stages.rows, stages.loads
    out["extrapolation"] = extrapolate(out)
    return out


def extrapolate(out: dict) -> dict:
    """80,000 submissions on N single-threaded workers (see :func:`explain`): {N: hours}."""
    by = {row["key"]: row for row in out["stages"]}
    w = out["where"]["worker_s_per_submission"]
    g = out["where"]["storage_trivial_s"]
    page = by["feedback"]["wall_s"] * out["workers"] / by["feedback"]["items"]   # worker-seconds per page
    # per submission, in the coordinator's process: the exports and the report
    exports = sum(by[k]["wall_s"] for k in ("grades-csv", "grades-lms", "report"))
    after = exports / (out["submissions"] + out["results"])
    out_n = {}
    for n in WORKERS:
        seconds = ROUND * w / n + ROUND * g + ROUND * page / n + ROUND * after
        out_n[str(n)] = seconds / 3600
    return {"worker_s_per_submission": w, "storage_s_per_result": g, "feedback_worker_s_per_page": page,
            "exports_and_report_s_per_submission": after, "hours": out_n}


def explain(x: dict) -> list[str]:
    """The extrapolation, in words: the formula, what is measured and what is assumed."""
    return [
        f"Extrapolation to {ROUND:,} submissions like these on N one-thread workers:",
        f"  T(N) = S*w/N + S*g + S*f/N + S*e   with S = {ROUND:,} and, measured here:",
        f"    w = {x['worker_s_per_submission']:.2f} worker-s per graded submission "
        "(autograde wall x workers / submissions)",
        f"    g = {x['storage_s_per_result'] * 1000:.1f} ms of the coordinator per stored result "
        "(its recorded storage time)",
        f"    f = {x['feedback_worker_s_per_page']:.3f} worker-s per feedback page (feedback wall x workers / pages)",
        f"    e = {x['exports_and_report_s_per_submission'] * 1000:.1f} ms per submission "
        "for grades CSV + LMS file + report",
        "  Assumed, not measured: throughput linear in workers (each worker a core of its own, as here;",
        "  nothing shared but the scheduler and the coordinator), a cluster network as fast as loopback,",
        "  the coordinator storing while the workers grade (adding S*g is the cautious bound), exports",
        "  and report linear in the class size. A real course part takes longer per submission than",
        "  this warm-up (times.md, grading time per part): scale w by that part's task time.",
        "  " + ", ".join(f"N = {n}: {_hours(h)}" for n, h in x["hours"].items()),
    ]


def _hours(h: float) -> str:
    return f"{h:.1f} h" if h >= 1 else f"{h * 60:.0f} min"


def table(out: dict) -> list[str]:
    """The stage table and where the grading time goes, as printed."""
    lines = [f"{'stage':<42} {'items':>7} {'wall s':>9} {'per item':>10} {'items/hour':>11}"]
    for row in out["stages"]:
        per = row["wall_s"] / row["items"] if row["items"] and row["wall_s"] else 0.0
        rate = f"{3600 / per:,.0f}" if per else "-"
        lines.append(f"{row['stage']:<42} {row['items']:>7,} {row['wall_s']:>9.1f} "
                     f"{per * 1000:>8.1f}ms {rate:>11}")
    w = out["where"]
    lines += [
        f"where a real submission's time goes ({out['submissions']:,} graded, {out['workers']} workers, "
        f"sandbox: {out['sandbox']}):",
        f"  task on its worker {w['task_s']:.2f} s = cells (canaries included) {w['cells_s']:.2f} s + beyond cells "
        f"(kernel start with its preloads, sandbox, nbgrader's steps, scan) {w['beyond_cells_s']:.2f} s + once per "
        f"worker and part {w['setup_s']:.1f} s ({w['setups']}x)",
        f"  workers busy {w['worker_busy']:.0%} of the autograde's wall time x workers; coordinator storage "
        f"{w['storage_s'] * 1000:.1f} ms per real result ({w['storage_share']:.0%} of that wall time)",
        f"  trivial tasks: the coordinator's storage {w['storage_trivial_s'] * 1000:.1f} ms per result, "
        f"{w['storage_trivial_share']:.0%} of their wall time (the rest: Dask's dispatch and transfer, "
        "reading the submissions)",
        f"load average through the run: {min(out['load']):.2f} to {max(out['load']):.2f} on {out['cpu_count']} cores",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_round", description=__doc__.split("\n")[0])
    parser.add_argument("--submissions", type=int, default=1000, help="real submissions (kernels run)")
    parser.add_argument("--results", type=int, default=10000, help="trivial results (coordinator, exports)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.submissions < 1 or args.results < 1 or args.workers < 1:
        parser.error("--submissions, --results and --workers must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-round-") as tmp:
        if args.db == "postgresql":
            with start_postgres() as pg:
                out = measure(Path(tmp), args.submissions, args.results, args.workers, pg.create_database("round"))
        else:
            out = measure(Path(tmp), args.submissions, args.results, args.workers, None)
    print("\n".join(table(out) + explain(out["extrapolation"])))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
