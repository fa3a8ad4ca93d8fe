"""How long each solution notebook takes a learner: run on full-size data, on the CPU.

    python -m tests.bench_learner [--part 05-inference-validation ...] [--data DIR] [--json FILE]
                                  [--set quick=True]
    make bench-learner

Learners download the full data sets (MNIST and Fashion-MNIST: 60,000 training and 10,000 test
images; the cats-and-dogs folder: 3,680 training and 3,669 test photos). This benchmark cannot
download them (it runs offline), so it builds FAKE data sets of exactly those sizes and class
counts with the project's own generator (``tests.fakedata.ensure(..., sizes=FULL_SIZES[name])``:
drawn digits and garments, synthetic photos), then runs every solution notebook top to bottom
on it in a fresh kernel, on the CPU only (``CUDA_VISIBLE_DEVICES`` empty), and prints the wall
time of each, kernel start included. Fake images cost the same to load, transform and push
through a network as real ones of the same size; only how fast a model learns can differ (Part 5
stops early when its validation loss stops improving, so its time depends on the data).

Not part of ``make test``: it takes many minutes. A notebook that takes longer than
``LONG_SECONDS`` is flagged: it must say so up front and offer a smaller setting, such as Part
5's ``quick = True``. ``--set NAME=VALUE`` times that setting: it rewrites the line ``NAME = ...``
of the notebook's settings cell as a learner would, and fails if there is no such line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tests import fakedata

ROOT = Path(__file__).resolve().parents[1]
LONG_SECONDS = 300  # more than this on a CPU: the notebook must warn and offer a smaller setting


def parts() -> list[str]:
    return sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file())


def build_data(root: Path) -> float:
    """Every fake data set at full size under ``root`` (kept if already there); seconds taken."""
    start = time.perf_counter()
    for name in fakedata.DATASETS:
        fakedata.ensure(root, name, sizes=fakedata.FULL_SIZES[name])
    return time.perf_counter() - start


def apply_settings(nb, settings: dict[str, str]) -> None:
    """Rewrite each ``NAME = ...`` line (the first code cell that assigns NAME at the start of a
    line) to ``NAME = VALUE``, keeping its comment; SystemExit when a NAME is not a setting."""
    for name, value in settings.items():
        pattern = re.compile(rf"^{re.escape(name)} = [^#\n]*?(\s*#.*)?$", re.MULTILINE)
        cell = next((c for c in nb.cells if c.cell_type == "code" and pattern.search(c.source)), None)
        if cell is None:
            raise SystemExit(f"--set {name}=...: no line '{name} = ...' in the notebook's code cells")
        line = f"{name} = {value}"
        cell.source = pattern.sub(lambda m, line=line: line + (m.group(1) or ""), cell.source, count=1)


def run_notebook(part: str, data: Path, timeout: int,
                 settings: dict[str, str] | None = None) -> tuple[float, list[tuple[float, int, str]]]:
    """Execute ``part``'s solution (with ``settings`` applied) in a scratch folder; (wall seconds,
    the slowest cells as (seconds, index, first line))."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)
    apply_settings(nb, settings or {})
    with tempfile.TemporaryDirectory(prefix=f"bench-{part}-") as scratch:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                                resources={"metadata": {"path": scratch}})
        start = time.perf_counter()
        client.execute()
        wall = time.perf_counter() - start
    cells = []
    for i, cell in enumerate(nb.cells):
        timing = cell.metadata.get("execution", {})
        if cell.cell_type == "code" and "shell.execute_reply" in timing:
            from datetime import datetime

            began = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            ended = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            cells.append(((ended - began).total_seconds(), i, cell.source.split("\n")[0][:60]))
    return wall, sorted(cells, reverse=True)[:3]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench_learner", description=__doc__.split("\n")[0])
    parser.add_argument("--part", action="append", choices=parts(), help="one part (repeatable); default all")
    parser.add_argument("--data", type=Path, help="folder for the full-size fake data (kept); default a temporary one")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="run with a setting changed, e.g. quick=True (repeatable)")
    args = parser.parse_args(argv)
    if any("=" not in s for s in args.set):
        parser.error("--set takes NAME=VALUE, e.g. --set quick=True")
    settings = dict(s.split("=", 1) for s in args.set)

    data = args.data or Path(tempfile.mkdtemp(prefix="bench-learner-data-"))
    # Kernels inherit this environment: the fake data, and no GPU.
    os.environ["COURSE_DATA"] = str(data)
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    print(f"full-size fake data in {data}: built in {build_data(data):.0f} s; {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f} (other work slows every time below)", flush=True)
    results = {}
    try:
        for part in args.part or parts():
            wall, slowest = run_notebook(part, data, args.timeout, settings)
            results[part] = {"seconds": round(wall, 1), "load_average": round(os.getloadavg()[0], 1),
                             "slowest_cells": slowest, **({"settings": settings} if settings else {})}
            flag = "  LONG: must warn and offer a smaller setting" if wall > LONG_SECONDS else ""
            flag += "".join(f"  {k}={v}" for k, v in settings.items())
            cells = "; ".join(f"cell {i} {s:.0f} s" for s, i, _ in slowest)
            print(f"{part:28} {wall:7.0f} s  ({wall / 60:4.1f} min)  load {os.getloadavg()[0]:4.1f}  "
                  f"slowest: {cells}{flag}", flush=True)
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "parts": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
