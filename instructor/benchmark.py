"""Grading throughput: seconds per submission, submissions per hour per core, and the overhead
each submission pays beyond running its cells (kernel start, nbgrader, gradebook).

    python -m instructor.benchmark [--parts 01-tensors ...] [--students 4] [--jobs 1 2]
                                   [--cluster tcp://HOST:8786] [--cores N] [--repeat 1]

Builds a throw-away course from this repository's solutions (default: every part there is),
submits ``--students`` notebooks per part (full, partial, untouched, in turn), then autogrades
all of them once per ``--jobs`` value on a local cluster (alternating runs, so that background
load hits each alike), or once per repeat on the cluster at ``--cluster`` (``--cores``: the
cores its workers have together, for the per-core figure).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from . import grading, notebooks, testing


def _run(course: Path, parts: list[str], jobs: int, cluster: str | None, cores: int) -> dict:
    settings = grading.Settings.resolve(course, jobs=jobs)
    start = time.monotonic()
    results = grading.autograde(course, parts, settings=settings, say=lambda _: None, cluster=cluster,
                                force=True)
    wall = time.monotonic() - start
    bad = [f"{x.student}/{x.part}: {x.reason}" for x in results if x.status != "graded"]
    if bad:
        raise SystemExit("benchmark submissions failed to grade: " + "; ".join(bad))
    n = len(results)
    return {
        "wall": wall, "n": n, "per_submission": wall / n, "per_hour_per_core": n / wall * 3600 / cores,
        "overhead": statistics.mean(x.seconds - x.cell_seconds for x in results),
        "per_part": {p: statistics.mean(x.seconds for x in results if x.part == p) for p in parts},
    }


def main(argv: list[str] | None = None) -> int:
    """Build the course, grade it, print one line per run and a summary."""
    parser = argparse.ArgumentParser(prog="python -m instructor.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*")
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--cluster", help="a running Dask scheduler (default: local clusters of --jobs workers)")
    parser.add_argument("--cores", type=int, help="cores of the cluster's workers together (with --cluster)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    parts = args.parts or notebooks.existing_parts()
    configs = [(None, 1)] if args.cluster else [(j, j) for j in args.jobs]
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        course = testing.make_course(Path(tmp) / "course", parts)
        kinds = ["all", "first", "none"]
        for part in parts:
            first = testing.answer_ids(course, part)[:1]
            for i in range(args.students):
                kind = kinds[i % 3]
                testing.submit(course, f"s{i:02d}", part, first if kind == "first" else kind)
        runs: dict = {label: [] for label, _ in configs}
        for r in range(args.repeat):
            for label, jobs in configs:
                cores = args.cores or (grading.cpu_count() if label is None else grading.cpu_count())
                out = _run(course, parts, jobs or 1, args.cluster, cores)
                runs[label].append(out)
                name = f"cluster {args.cluster}" if label is None else f"JOBS={label}"
                print(f"run {r + 1} {name}: {out['wall']:6.1f} s for {out['n']} submissions = "
                      f"{out['per_submission']:5.2f} s each, {out['per_hour_per_core']:6.0f} per hour per core; "
                      f"overhead {out['overhead']:.2f} s per submission; mean task time per part: "
                      + ", ".join(f"{p} {s:.1f} s" for p, s in out["per_part"].items()), flush=True)
        base = statistics.median(o["wall"] for o in runs[configs[0][0]])
        for label, _ in configs:
            wall = statistics.median(o["wall"] for o in runs[label])
            name = f"cluster {args.cluster}" if label is None else f"JOBS={label}"
            first = f"JOBS={configs[0][0]}" if configs[0][0] else "the first run"
            print(f"{name}: median {wall:.1f} s, speed-up {base / wall:.2f}x over {first}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
