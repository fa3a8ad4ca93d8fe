"""Seconds per submission with JOBS=1 and JOBS=2: the README's grading figures.

    python -m instructor.benchmark [--parts 01-tensors ...] [--students 4] [--repeat 1]

Builds a throw-away course from this repository's solutions (default: every part there is),
submits ``--students`` notebooks per part (full, partial, untouched, in turn), then autogrades
all of them with each JOBS value, alternating the runs so that background load hits both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from . import grading, testing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor.benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*")
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    parts = args.parts or sorted(p.name for p in (testing.ROOT / "solutions").iterdir()
                                 if (p / f"{p.name}.ipynb").exists())
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        course = testing.make_course(Path(tmp) / "course", parts)
        kinds = ["all", "first", "none"]
        for part in parts:
            first = testing.answer_ids(course, part)[:1]
            for i in range(args.students):
                kind = kinds[i % 3]
                testing.submit(course, f"s{i:02d}", part, first if kind == "first" else kind)
        n = len(parts) * args.students
        times: dict[int, list[float]] = {j: [] for j in args.jobs}
        for r in range(args.repeat):
            for jobs in args.jobs:
                settings = grading.Settings.resolve(course, jobs=jobs)
                start = time.monotonic()
                results = grading.autograde(course, parts, settings=settings, say=lambda _: None)
                wall = time.monotonic() - start
                bad = [f"{x.student}/{x.part}: {x.reason}" for x in results if x.status != "graded"]
                if bad:
                    raise SystemExit("benchmark submissions failed to grade: " + "; ".join(bad))
                per_part = {p: statistics.mean(x.seconds for x in results if x.part == p) for p in parts}
                times[jobs].append(wall)
                print(f"run {r + 1} JOBS={jobs}: {wall:6.1f} s for {n} submissions = {wall / n:5.2f} s each; "
                      "mean job time per part: " + ", ".join(f"{p} {s:.1f} s" for p, s in per_part.items()),
                      flush=True)
        base = statistics.median(times[args.jobs[0]])
        for jobs in args.jobs:
            wall = statistics.median(times[jobs])
            print(f"JOBS={jobs}: median {wall:.1f} s, {wall / n:.2f} s per submission, "
                  f"speed-up {base / wall:.2f}x over JOBS={args.jobs[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
