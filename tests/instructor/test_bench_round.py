"""The simulated round (tests/bench_round.py) runs end to end at a tiny scale, so that its path
stays working: every stage runs, on the items it says, and its figures add up. No timing is
asserted: the benchmark's figures are for docs/times.toml, not for the suite."""

from __future__ import annotations

import json

import pytest

from tests import bench_round
from tests.conftest import require_sandbox

pytestmark = pytest.mark.slow

STAGES = ["setup", "collect-00-warm-up", "collect-00-trivial", "autograde", "autograde-trivial", "feedback",
          "grades-csv", "grades-lms", "report"]


def test_a_tiny_round_runs_every_stage(kernel, tmp_path, capsys):
    require_sandbox()
    out_file = tmp_path / "round.json"
    assert bench_round.main(["--submissions", "4", "--results", "6", "--workers", "2", "--db", "sqlite",
                             "--json", str(out_file)]) == 0
    out = json.loads(out_file.read_text())
    assert [row["key"] for row in out["stages"]] == STAGES
    items = {row["key"]: row["items"] for row in out["stages"]}
    assert items == {"setup": 10, "collect-00-warm-up": 4, "collect-00-trivial": 6, "autograde": 4,
                     "autograde-trivial": 6, "feedback": 10, "grades-csv": 12, "grades-lms": 6, "report": 10}
    assert all(row["wall_s"] > 0 for row in out["stages"])
    assert out["sandbox"] == "bwrap" and len(out["load"]) == len(STAGES) + 1
    where = out["where"]
    # four real submissions, one of each kind, on two workers: each worker builds the part once
    assert 1 <= where["setups"] <= 2 and where["cells_s"] > 0 and where["beyond_cells_s"] > 0
    assert where["task_s"] == pytest.approx(where["cells_s"] + where["beyond_cells_s"]
                                            + where["setup_s"] * where["setups"] / 4, rel=0.05)
    hours = [out["extrapolation"]["hours"][str(n)] for n in bench_round.WORKERS]
    assert hours == sorted(hours, reverse=True) and hours[-1] > 0
    printed = capsys.readouterr().out
    for row in out["stages"]:
        assert row["stage"] in printed
    assert "T(N) = S*w/N + S*g + S*f/N + S*e" in printed and "Assumed, not measured" in printed
