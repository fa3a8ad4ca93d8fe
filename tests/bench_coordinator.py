"""How many results one grading coordinator stores in an hour: results from trivial notebooks,
through real Dask processes, into a gradebook on a real PostgreSQL server.

    python -m tests.bench_coordinator [--results 2000] [--workers 2] [--db postgresql|sqlite]
                                      [--feedback] [--json FILE]
    make bench-coordinator

Builds a course whose one part is tiny (:func:`instructor.testing.trivial_course`), starts a
throw-away PostgreSQL server (initdb + pg_ctl, ``tests/services.py``; ``--db sqlite``: the
course's SQLite file instead) and a ``dask scheduler`` with ``--workers`` ``dask worker``
processes on 127.0.0.1, then autogrades every submission with a task that runs nothing
(:func:`instructor.testing.pregraded`: the submission comes back as its graded notebook). What
is left is everything the coordinator does per result: read and send the submission, fetch the
outcome, write the graded notebook and log, nbgrader's scores and late penalty in the gradebook,
the journal. It prints the results per hour end to end (wall clock of the whole autograde), the
coordinator's storage time per result and the rate that alone allows, and the load average
before and after (the machine may be busy with other work: compare figures taken alike).
``--feedback`` then renders every feedback page on the same workers and times that too.

Every stored score is checked against what the notebook says (:func:`trivial_score`).
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from instructor import coordinator, testing
from instructor.settings import Settings
from tests.services import start_dask_cluster, start_postgres


def _check(course: Path, results) -> None:
    expected = {f"s{i:05d}": testing.trivial_score(i) for i in range(len(results))}
    wrong = [(r.student, r.score, expected.get(r.student)) for r in results
             if r.status != "graded" or r.score != expected.get(r.student)]
    if wrong or len(results) != len(expected):
        raise SystemExit(f"{len(wrong)} result(s) stored wrong, e.g. {wrong[:3]}")


def measure(folder: Path, results: int, workers: int, db_url: str | None, with_feedback: bool) -> dict:
    """Autograde ``results`` trivial submissions on a real cluster; the figures, as a dict."""
    config = f"\nc.CourseDirectory.db_url = {db_url!r}\n" if db_url else ""
    course = testing.trivial_course(folder / "course", results, config)
    settings = Settings.resolve(course, sandbox_mode="rlimits")  # the task runs no student code
    out = {"results": results, "workers": workers, "db": "postgresql" if db_url else "sqlite",
           "cpu_count": os.cpu_count(), "load_before": os.getloadavg()}
    with start_dask_cluster(workers, base=str(folder)) as cluster:
        start = time.monotonic()
        stored = coordinator.autograde(course, [testing.TRIVIAL_PART], settings=settings, say=lambda _: None,
                                       cluster=cluster.address, task=testing.pregraded)
        out["wall_s"] = time.monotonic() - start
        out["load_after"] = os.getloadavg()
        _check(course, stored)
        out["per_hour"] = results / out["wall_s"] * 3600
        out["store_s_per_result"] = statistics.mean(r.record_seconds for r in stored)
        out["store_only_per_hour"] = 3600 / out["store_s_per_result"]
        if with_feedback:
            from instructor import feedback

            start = time.monotonic()
            summary = feedback.feedback(course, cluster=cluster.address, say=lambda _: None)
            out["feedback_wall_s"] = time.monotonic() - start
            out["feedback_pages"] = sum(s["written"] for s in summary.values())
            out["feedback_per_hour"] = out["feedback_pages"] / out["feedback_wall_s"] * 3600
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_coordinator", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--feedback", action="store_true", help="also render every feedback page")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-coordinator-") as tmp:
        if args.db == "postgresql":
            with start_postgres() as pg:
                out = measure(Path(tmp), args.results, args.workers, pg.create_database("bench"), args.feedback)
        else:
            out = measure(Path(tmp), args.results, args.workers, None, args.feedback)
    load = "load average {:.2f} before, {:.2f} after".format(out["load_before"][0], out["load_after"][0])
    print(f"{out['results']} results, {out['workers']} workers, {out['db']}: {out['wall_s']:.1f} s = "
          f"{out['per_hour']:,.0f} results per hour end to end; storage {out['store_s_per_result'] * 1000:.1f} ms "
          f"per result ({out['store_only_per_hour']:,.0f} per hour); {load}")
    if "feedback_pages" in out:
        print(f"feedback: {out['feedback_pages']} pages in {out['feedback_wall_s']:.1f} s = "
              f"{out['feedback_per_hour']:,.0f} per hour")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
