"""Grading throughput: seconds per submission, submissions per hour per core, and the overhead
each submission pays beyond running its notebook.

    python -m tests.bench_grading [--parts 01-tensors ...] [--students 4] [--jobs 1 2]
                                   [--kernels warm cold] [--cluster tcp://HOST:8786 ...] [--cores N ...]
                                   [--repeat 1]
    python -m tests.bench_grading --canaries NOTEBOOK [...]    what the canaries cost

Builds a throw-away course from this repository's solutions (default: every part there is),
submits ``--students`` notebooks per part (full, partial, untouched, in turn), then autogrades
all of them once per ``--jobs`` value on a local cluster, or once per repeat on each cluster given
to ``--cluster`` (scheduler addresses; ``--cores``: the cores each cluster's workers have together,
for the per-core figure); each of these once per kind of kernel in ``--kernels``: ``warm``
(``GRADING_WARM=1``: forked from a zygote that has PyTorch imported) and ``cold`` (a fresh Python
each time). Runs alternate, so that background load hits each alike.

Overhead, two ways:

- *beyond a plain run*: the task's seconds minus the seconds the same notebook takes when run
  the plain way, ``jupyter nbconvert --execute`` style (nbclient, an ordinary local kernel,
  its start and shutdown included, the hidden tests restored as the grader runs them, no
  sandbox, no nbgrader, no canaries), measured one at a time before the grading runs;
- *beyond cells*: the task's seconds minus the seconds its kernel spent running the notebook's own
  cells (hidden tests included; the canaries' cells are overhead, as the kernel's start is).

``--canaries`` times the integrity checks instead: per notebook, the number of canaries, their
time in the kernel, and the time scan/insert/check take in the grading process.

The coordinator's own work per submission (writing the graded notebook, nbgrader's
SaveAutoGrades into the gradebook, the journal) is timed as well: it bounds how many
submissions one coordinator can take in an hour, however many workers there are.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from instructor import coordinator, testing
from instructor.course import existing_parts, locked_ids
from instructor.integrity import canaries, scanner
from instructor.settings import Settings, cpu_count


def plain_run_seconds(notebook: Path, timeout: int = 600) -> float:
    """Seconds to run ``notebook`` (outputs cleared) in an ordinary local kernel with nbclient,
    kernel start and shutdown included: what running it outside the grader costs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    with tempfile.TemporaryDirectory(prefix="plain-run-") as folder:
        start = time.monotonic()
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": folder}}).execute()
        return time.monotonic() - start


def _run(course: Path, parts: list[str], jobs: int, cluster: str | None, cores: int, warm: bool) -> dict:
    settings = Settings.resolve(course, jobs=jobs)
    settings.warm = warm
    start = time.monotonic()
    results = coordinator.autograde(course, parts, settings=settings, say=lambda _: None, cluster=cluster, force=True)
    wall = time.monotonic() - start
    bad = [f"{x.student}/{x.part}: {x.reason}" for x in results if x.status != "graded"]
    if bad:
        raise SystemExit("benchmark submissions failed to grade: " + "; ".join(bad))
    n = len(results)
    # steady state: a worker's first task of a part also builds its gradebook for the part
    # (nbgrader's generate_assignment, ~4 s once per worker and part) and, for warm kernels,
    # starts its zygote for the part: reported on its own
    warm = [x for x in results if x.setup_seconds < 0.05] or results
    setups = [x.setup_seconds for x in results if x.setup_seconds >= 0.05]
    return {
        "wall": wall, "n": n, "per_submission": wall / n, "per_hour_per_core": n / wall * 3600 / cores,
        "warm_results": warm,
        "beyond_cells": statistics.mean(x.seconds - x.cell_seconds for x in warm),
        "canaries": statistics.mean(x.canary_seconds for x in warm),
        "phases": _phases(course, warm),
        "warm": len(warm), "setup": statistics.mean(setups) if setups else 0.0, "setups": len(setups),
        "coordinator": statistics.mean(x.record_seconds for x in results),
        "per_part": {p: statistics.mean(x.seconds for x in results if x.part == p) for p in parts},
        "results": results,
    }


def _phases(course: Path, results) -> dict[str, float]:
    """Means over ``results`` of what each task's log says of its kernel (SupervisedExecute's timing line)."""
    from instructor.preprocessors import TIMING

    seen = [TIMING.search((course / x.log).read_text()) for x in results if x.log]
    seen = [m for m in seen if m]
    if not seen:
        return {}
    mean = {name: statistics.mean(float(m[i]) for m in seen)
            for i, name in ((1, "ready"), (3, "cells"), (4, "messages"), (5, "end"))}
    return mean


def _plain_runs(course: Path, results) -> dict[str, float]:
    """Seconds of a plain run for each distinct graded notebook (by submission digest)."""
    plain: dict[str, float] = {}
    for x in results:
        if x.sha256 not in plain:
            plain[x.sha256] = plain_run_seconds(course / "autograded" / x.student / x.part / f"{x.part}.ipynb")
    return plain


def measure_canaries(notebook_path: str, repeat: int = 1) -> dict:
    """Run a notebook with canaries (nbgrader's Execute) and time the parts the canaries add:
    their cells in the kernel, and insert/check/scan in the grading process; then run it
    again without canaries, for the end-to-end difference (noisy on a busy machine)."""
    import copy

    import nbformat
    from nbgrader.preprocessors import Execute

    nb = nbformat.read(notebook_path, as_version=4)
    out = {"notebook": notebook_path, "runs": []}
    for _ in range(repeat):
        secret = canaries.new_secret()
        t0 = time.perf_counter()
        findings = scanner.scan_notebook(nb, locked_ids(nb))
        t1 = time.perf_counter()
        marked = canaries.insert_canaries(nb, secret)
        t2 = time.perf_counter()
        Execute(timeout=600, kernel_name="python3").preprocess(
            marked, {"metadata": {"path": str(Path(notebook_path).parent)}})
        t3 = time.perf_counter()
        cells = [c for c in marked.cells if canaries.is_canary(c, secret)]
        reason, _ = canaries.check_canaries(marked, secret)
        t4 = time.perf_counter()
        plain = copy.deepcopy(nb)
        Execute(timeout=600, kernel_name="python3").preprocess(
            plain, {"metadata": {"path": str(Path(notebook_path).parent)}})
        t5 = time.perf_counter()
        out["runs"].append({"notebook_without_canaries_s": round(t5 - t4, 1),
            "canaries": len(cells) // 2, "canary_cells": len(cells),
            "canary_kernel_s": round(sum(map(canaries.cell_seconds, cells)), 3),
            "scan_s": round(t1 - t0, 3), "insert_s": round(t2 - t1, 3), "check_s": round(t4 - t3, 3),
            "notebook_s": round(t3 - t2, 1), "findings": len(findings), "tampered": reason})
    return out


def _print_runs(runs: dict, configs: list, plain: dict[str, float], repeat: int) -> None:
    for r in range(repeat):
        for label, *_ in configs:
            out = runs[label][r]
            beyond_plain = [x.seconds - plain[x.sha256] for x in out["warm_results"] if x.sha256 in plain]
            out["overhead"] = statistics.mean(beyond_plain) if beyond_plain else float("nan")
            print(f"run {r + 1} {label}: {out['wall']:6.1f} s for {out['n']} submissions = "
                  f"{out['per_submission']:5.2f} s each, {out['per_hour_per_core']:6.0f} per hour per core; "
                  f"overhead per submission {out['overhead']:+.2f} s beyond a plain run "
                  f"({out['beyond_cells']:.2f} s beyond cells, {out['canaries']:.2f} s of it in the canaries' cells; "
                  f"{out['warm']} steady-state tasks), "
                  f"+{out['setup']:.1f} s once per worker and part ({out['setups']}x); "
                  f"coordinator {out['coordinator']:.3f} s per submission; mean task time per part: "
                  + ", ".join(f"{p} {s:.1f} s" for p, s in out["per_part"].items()), flush=True)
            if phases := out["phases"]:
                rest = out["beyond_cells"] - phases["ready"] - phases["messages"] - out["canaries"] - phases["end"]
                print(f"run {r + 1} {label}: where a steady-state task's time beyond the notebook's cells goes: "
                      f"waiting for the kernel {phases['ready']:.2f} s, messages around the cells "
                      f"{phases['messages']:.2f} s, the canaries' cells {out['canaries']:.2f} s, the kernel's end "
                      f"{phases['end']:.2f} s, the rest (nbgrader's steps, the task's own work) {rest:.2f} s",
                      flush=True)
    base = statistics.median(o["wall"] for o in runs[configs[0][0]])
    for label, *_ in configs:
        wall = statistics.median(o["wall"] for o in runs[label])
        print(f"{label}: median {wall:.1f} s, speed-up {base / wall:.2f}x over {configs[0][0]}")
    for label, *_ in configs:  # warm beside cold, on the same workers
        if label.endswith(" warm") and (cold := label[:-len(" warm")] + " cold") in runs:
            w, c = runs[label], runs[cold]
            rate = statistics.median(o["per_hour_per_core"] for o in w) / statistics.median(
                o["per_hour_per_core"] for o in c)
            print(f"{label[:-len(' warm')]}: warm {statistics.median(o['beyond_cells'] for o in w):.2f} s beyond "
                  f"cells, cold {statistics.median(o['beyond_cells'] for o in c):.2f} s; submissions per hour "
                  f"per core {rate:.2f}x cold's")


def main(argv: list[str] | None = None) -> int:
    """Build the course, grade it, print one line per run and a summary."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench_grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*")
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--cluster", nargs="*", default=[],
                        help="running Dask schedulers (default: local clusters of --jobs workers)")
    parser.add_argument("--cores", type=int, nargs="*", default=[],
                        help="cores of each cluster's workers together (with --cluster; default: this machine's)")
    parser.add_argument("--kernels", nargs="*", choices=["warm", "cold"], default=["warm", "cold"],
                        help="warm: forked from a zygote (GRADING_WARM=1); cold: a fresh Python each")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--canaries", nargs="+", metavar="NOTEBOOK", help="time the canaries in these notebooks")
    args = parser.parse_args(argv)
    if args.canaries:
        for path in args.canaries:
            print(json.dumps(measure_canaries(path, args.repeat)))
        return 0
    parts = args.parts or existing_parts()
    # (label, local jobs or None, scheduler address or None, cores for the per-core figure, warm)
    if args.cluster:
        cores = args.cores or [cpu_count()] * len(args.cluster)
        if len(cores) != len(args.cluster):
            parser.error("give --cores once per --cluster address")
        places = [(f"cluster {a}", None, a, c) for a, c in zip(args.cluster, cores, strict=True)]
    else:
        places = [(f"JOBS={j}", j, None, cpu_count()) for j in args.jobs]
    configs = [(f"{label} {kind}", jobs, address, cores, kind == "warm")
               for label, jobs, address, cores in places for kind in args.kernels]
    with tempfile.TemporaryDirectory(prefix="grading-benchmark-") as tmp:
        course = testing.make_course(Path(tmp) / "course", parts)
        kinds = ["all", "first", "none"]
        for part in parts:
            first = testing.answer_ids(course, part)[:1]
            for i in range(args.students):
                kind = kinds[i % 3]
                testing.submit(course, f"s{i:02d}", part, first if kind == "first" else kind)
        runs: dict = {label: [] for label, *_ in configs}
        for r in range(args.repeat):
            for label, jobs, address, cores, warm in configs:
                runs[label].append(_run(course, parts, jobs or 1, address, cores, warm))
                print(f"run {r + 1} {label}: graded {runs[label][-1]['n']} submissions", flush=True)
        # the notebooks as the grader ran them (hidden tests restored), each distinct one run the
        # plain way, one at a time
        plain = _plain_runs(course, runs[configs[0][0]][-1]["results"])
        print(f"plain runs: {len(plain)} distinct notebooks, mean {statistics.mean(plain.values()):.2f} s "
              "(nbclient, ordinary kernel, start and shutdown included)", flush=True)
        _print_runs(runs, configs, plain, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
