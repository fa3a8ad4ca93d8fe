"""`make bench-round`'s JSON is taken into docs/times.toml's [round-bench], and the pages' round
sections are worked out from it: the formula's terms as measured, the hours it gives."""

from __future__ import annotations

import json

import pytest

from tests import times, times_round

pytestmark = pytest.mark.course_data()

STAGES = [("setup", 10), *((key, 100) for key in times_round.STAGES)]


def bench_json(tmp_path):
    stages = [{"key": key, "stage": key, "items": items, "wall_s": 36.0} for key, items in STAGES]
    out = {"submissions": 40, "results": 60, "workers": 2, "db": "postgresql", "sandbox": "bwrap",
           "cpu_count": 2, "stages": stages, "load": [1.25, 3.5, 2.0],
           "where": {"task_s": 2.5, "cells_s": 0.5, "beyond_cells_s": 1.9, "setup_s": 3.0, "setups": 2,
                     "worker_busy": 0.9},
           "extrapolation": {"worker_s_per_submission": 3.6, "storage_s_per_result": 0.009,
                             "feedback_worker_s_per_page": 0.2, "exports_and_report_s_per_submission": 0.01}}
    path = tmp_path / "bench-round.json"
    path.write_text(json.dumps(out))
    return path


def test_bench_round_json_is_taken_in_and_worked_out(tmp_path):
    values, notes = times_round.from_round(bench_json(tmp_path))
    assert values["autograde"] == 36.0 and notes["autograde"] == "100 items, 360.0 ms each, 10,000 an hour"
    assert (values["w"], values["g"], values["load"]) == (3.6, 0.009, [1.2, 3.5])
    text = times.set_values(times.DATA.read_text(), times_round.GROUP, values, "2030-01-02", notes)
    groups = times.load_text(text)
    assert groups[times_round.GROUP]["entries"]["w"]["value"] == 3.6
    section = times_round.section(groups, times.fmt, times._duration)
    assert "`T(N) = S·w/N + S·g + S·f/N + S·e`" in section and "Assumed, not measured" in section
    # 80,000 x (3.6 + 0.2) / 100 + 80,000 x (0.009 + 0.01) s = 3,040 + 1,520 s = 1.3 h on 100 workers
    row = next(line for line in section.splitlines() if line.startswith("| 80,000 warm-up"))
    assert row.split(" | ")[3] == "1.3 h", row
    readme = times_round.summary(groups, times.fmt, times._duration)
    assert "1.3 h on 100 workers" in readme and "`make bench-round`" in readme
