"""The grading benchmark (tests/bench_grading.py) runs end to end and prints what the scaling table
in docs/scaling.md is made of."""

from __future__ import annotations

import re

import nbformat
import pytest

from tests import bench_grading as benchmark
from tests.conftest import require_sandbox

pytestmark = pytest.mark.kernel


def test_plain_run_seconds_runs_the_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(0.5)")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    seconds = benchmark.plain_run_seconds(path)
    assert seconds >= 0.5, f"a notebook that sleeps 0.5 s took {seconds:.2f} s: it did not run"


def test_benchmark_reports_overhead_throughput_and_speed_up(capsys):
    """Warm and cold kernels side by side, in one run."""
    require_sandbox()
    assert benchmark.main(["--parts", "01-tensors", "--students", "2", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"plain runs: 2 distinct notebooks, mean \d+\.\d+ s", out), out
    beyond = {}
    for kind in ("warm", "cold"):
        run = re.search(rf"run 1 JOBS=1 {kind}: +[\d.]+ s for 2 submissions = +[\d.]+ s each, +(\d+) per hour per "
                        r"core; overhead per submission ([-+][\d.]+) s beyond a plain run \(([\d.]+) s beyond cells, "
                        r"([\d.]+) s of it in the canaries' cells; (\d+) steady-state tasks\), "
                        r"\+([\d.]+) s once per worker and part \((\d+)x\); "
                        r"coordinator ([\d.]+) s per submission; mean task time per part: 01-tensors [\d.]+ s", out)
        assert run, out
        per_hour, overhead, beyond_cells, canaries, steady, setup, setups, coordinator = run.groups()
        assert int(per_hour) > 0 and float(coordinator) > 0
        # one worker: its first Part 01 task builds the part's gradebook (and, warm, starts its
        # zygote), the second one is in the steady state
        assert (int(steady), int(setups)) == (1, 1) and float(setup) > 0, out
        # the canaries' cells are overhead, not the learner's: counted beyond the cells, and they ran
        assert float(beyond_cells) > float(canaries) > 0, out
        beyond[kind] = float(beyond_cells)
    assert "JOBS=1 warm: median" in out and "speed-up 1.00x over JOBS=1 warm" in out, out
    compared = re.search(r"JOBS=1: warm ([\d.]+) s beyond cells, cold ([\d.]+) s; submissions per hour per core "
                         r"([\d.]+)x cold's", out)
    assert compared, out
    assert float(compared[1]) == beyond["warm"] and float(compared[2]) == beyond["cold"]
    assert beyond["warm"] < beyond["cold"], f"a warm kernel does not import PyTorch again: {out}"
