"""Re-grade determinism: the hostile class of ``tests/instructor/test_tasks.py`` graded several
times on an idle machine and on a busy one (three grading workers on two cores plus a process
spinning beside them); every submission's status, score and reason must be the same in every run.

    python -m tests.determinism [--runs 3] [--out test-output/determinism.json]

Prints one line per run and a table of any submission whose verdict differed; exits 1 if one did.
Needs bubblewrap, like the hostile tests. Takes about (runs x 2) x 4-6 minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from instructor import testing
from tests.instructor.test_tasks import PART, grade_hostile_class


def verdicts(run) -> dict[str, tuple]:
    """student -> (status, score, reason without the run's own numbers such as seconds)."""
    return {s: (r.status, r.score, re.sub(r"\d+(\.\d+)? s\b", "N s", r.reason)) for s, r in run.results.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per load (default 3)")
    ap.add_argument("--out", type=Path, default=Path("test-output/determinism.json"))
    args = ap.parse_args(argv)
    runs = []
    for load in ("idle", "busy"):
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.monotonic()
                run = grade_hostile_class(testing.make_course(Path(tmp), [PART]), load)
                runs.append({"load": load, "seconds": round(time.monotonic() - start, 1), "verdicts": verdicts(run)})
            print(f"run {len(runs)}: {load}, {len(run.results)} submissions, {runs[-1]['seconds']} s", flush=True)
    first = runs[0]["verdicts"]
    differ = sorted(s for s in first if any(r["verdicts"].get(s) != first[s] for r in runs[1:]))
    honest = ("good", "reference", "honest_variants", "oracle_answer")
    honest_flagged = sorted({s for r in runs for s in honest if r["verdicts"][s][0] != "graded"})
    for student in differ:
        print(f"DIFFERS {student}: " + " | ".join(f"{r['load']}: {r['verdicts'].get(student)}" for r in runs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "differ": differ, "honest_flagged": honest_flagged}, indent=1))
    print(f"{len(first)} submissions x {len(runs)} runs ({args.runs} idle, {args.runs} busy): "
          f"{len(first) - len(differ)} identical in every run, {len(differ)} differed; "
          f"honest submissions not graded in some run: {len(honest_flagged)}")
    return 1 if differ or honest_flagged else 0


if __name__ == "__main__":
    sys.exit(main())
