"""How well ``instructor.similarity`` finds copies, and how fast: a synthetic class of honestly
independent answers with planted copies (:mod:`tests.fakeanswers`).

    python -m tests.bench_similarity [--students 300] [--copies 0.1] [--scale 10000] [--seed 0]
    make bench-similarity

Measured: the share of planted copies whose pair with the original is listed (recall); the
independent pairs listed (false positive rate over all independent pairs, and precision over
all listed pairs); and the seconds to compare ``--scale`` submissions of one part (Part 3's
training loop, the longest answer), notebooks read from disk included.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from instructor.similarity import pages as similarity
from tests.fakeanswers import EXERCISES, synthetic_class, write_class


def measure(part: str, students: int, copies: float, seed: int, threshold: float, distinct: bool = True,
            progress: bool = False) -> dict:
    """Recall, false positive rate, precision and seconds (wall and CPU; writing the class not
    counted) on one synthetic class of ``part``."""
    sources, family = synthetic_class(part, students, copies, seed, distinct)
    with tempfile.TemporaryDirectory(prefix="similarity-bench-") as folder:
        course = Path(folder)
        gid, _, stub = EXERCISES[part]
        write_class(course, part, {f"s{i:05d}": {gid: text} for i, text in enumerate(sources)}, {gid: stub})
        start, cpu = time.monotonic(), time.process_time()
        result = similarity.run(course, [part], out=course / "out", threshold=threshold, say=lambda _: None,
                                progress=progress)[part]
        seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    index = [int(s.student[1:]) for s in result.subs]
    found = {(min(index[p.a], index[p.b]), max(index[p.a], index[p.b])) for p in result.pairs}
    members: dict[int, list[int]] = {}
    for i, f in enumerate(family):
        members.setdefault(f, []).append(i)
    planted = [i for group in members.values() for i in group[1:]]   # any member but one per family
    hit = sum(any((min(i, j), max(i, j)) in found for j in members[family[i]] if j != i) for i in planted)
    true_pairs = {(a, b) for group in members.values() for a in group for b in group if a < b}
    false = len(found - true_pairs)
    n = len(sources)
    independent = n * (n - 1) // 2 - len(true_pairs)
    return {"part": part, "submissions": n, "copies": len(planted), "found": hit,
            "recall": hit / len(planted) if planted else 1.0, "pairs_listed": len(found), "false_pairs": false,
            "false_positive_rate": false / independent if independent else 0.0,
            "precision": (len(found) - false) / len(found) if found else 1.0, "seconds": seconds,
            "cpu_seconds": cpu}


def scale(part: str, students: int, seed: int, threshold: float) -> dict:
    """:func:`measure` on a class of ``students`` (10% copies; independent answers only told apart
    from identical ones, the pairwise check being quadratic)."""
    return measure(part, students, 0.1, seed, threshold, distinct=False, progress=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_similarity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=300, help="submissions per part (default 300)")
    parser.add_argument("--copies", type=float, default=0.1, help="share of planted copies (default 0.1)")
    parser.add_argument("--scale", type=int, default=10_000, help="submissions of Part 3 timed (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=similarity.THRESHOLD)
    parser.add_argument("--parts", nargs="*", default=list(EXERCISES), choices=list(EXERCISES))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'part':26} {'subs':>5} {'copies':>6} {'found':>6} {'recall':>7} {'listed':>6} {'false':>6} "
          f"{'FPR':>8} {'precision':>9} {'seconds':>8}")
    for part in args.parts:
        r = measure(part, args.students, args.copies, args.seed, args.threshold)
        rows.append(r)
        print(f"{part:26} {r['submissions']:5} {r['copies']:6} {r['found']:6} {r['recall']:7.1%} "
              f"{r['pairs_listed']:6} {r['false_pairs']:6} {r['false_positive_rate']:8.3%} {r['precision']:9.1%} "
              f"{r['seconds']:8.1f}")
    figures = {"threshold": args.threshold, "accuracy": rows}
    if args.scale:
        s = scale("03-training", args.scale, args.seed, args.threshold)
        figures["scale"] = s
        print(f"scale: {s['submissions']} submissions of {s['part']} compared in {s['seconds']:.1f} s "
              f"({s['cpu_seconds']:.1f} s of CPU); copies found {s['found']}/{s['copies']} ({s['recall']:.1%}), "
              f"{s['pairs_listed']} pairs listed, {s['false_pairs']} false (FPR {s['false_positive_rate']:.3%}, "
              f"precision {s['precision']:.1%})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
