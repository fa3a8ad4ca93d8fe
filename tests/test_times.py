"""docs/times.toml is the one place measured times are written: the pages that show them
(docs/times.md, the README's course map, docs/scaling.md's worked example) are generated from it
and in step with it, and the tools' outputs can be taken in. Offline: files are only read."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from instructor.course import PART_NAMES, ROOT
from tests import times

pytestmark = pytest.mark.course_data()


def test_generated_pages_are_up_to_date_with_the_data():
    stale = [str(path.relative_to(ROOT)) for path, wanted in times.generated(times.load()).items()
             if not path.exists() or path.read_text() != wanted]
    assert not stale, f"{', '.join(stale)} out of step with docs/times.toml: run `make times`"


@pytest.mark.parametrize("group", ["nbval", "learner", "colab"])
def test_per_part_groups_list_every_part_in_order(group):
    keys = list(times.load()[group]["entries"])
    assert [k for k in keys if k in PART_NAMES] == list(PART_NAMES), \
        f"[{group}] in docs/times.toml must have one entry per part, in course order (no value: not yet measured)"
    for key in keys:  # besides: a part timed with a setting changed, "05-inference-validation quick=True"
        part, _, setting = key.partition(" ")
        assert key in PART_NAMES or (part in PART_NAMES and re.fullmatch(r"\w+=\S+", setting)), key


def _about(seconds: float) -> str:
    """A run time as a part's first cell says it."""
    minutes = round(seconds / 60)
    return "under a minute" if seconds < 60 else f"about {minutes} minute{'s' if minutes != 1 else ''}"


def test_a_long_part_says_so_up_front_and_offers_a_measured_quick_setting():
    """A part over bench_learner.LONG_SECONDS on a learner's CPU offers ``quick = True``; a part that
    offers it says how long it takes, and how long with it, in its first cell (figures from
    docs/times.toml), and its settings cell has ``quick = False``; the quick run is measured and
    under the limit. (Part 5 offers it: 17.6 min on 2026-12-03, 4.8 min measured again since, on
    two cores; a slower laptop's CPU still needs it.)"""
    import nbformat

    from tests.bench_learner import LONG_SECONDS

    learner = times.load()["learner"]["entries"]
    long_parts = [p for p in PART_NAMES if "value" in learner[p] and times.high(learner[p]) > LONG_SECONDS]
    offering = [p for p in PART_NAMES if f"{p} {times.QUICK}" in learner]
    assert set(long_parts) <= set(offering), f"{sorted(set(long_parts) - set(offering))}: offer `quick = True`"
    assert offering, "no part offers `quick = True`: this test has nothing to check"
    for part in offering:
        quick = learner[f"{part} {times.QUICK}"]
        assert "value" in quick, f"{part}: time it with `python -m tests.bench_learner --part {part} --set quick=True`"
        assert times.high(quick) <= LONG_SECONDS, f"{part}: quick = True still takes {times.fmt(quick)}"
        nb = nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)
        intro = nb.cells[0].source
        for entry in (learner[part], quick):
            said = _about(times.high(entry))
            assert said in intro, f"{part}'s first cell must say '{said}'"
        assert "quick = True" in intro, f"{part}'s first cell must name the setting"
        assert any(re.search(r"^quick = False\b", c.source, re.M) for c in nb.cells if c.cell_type == "code"), \
            f"{part} has no `quick = False` setting"


def test_every_group_says_how_it_was_measured():
    for name, group in times.load().items():
        assert group.get("title") and group.get("how"), f"[{name}] needs a title and says how it was measured"
        measured = [e for e in group["entries"].values() if "value" in e]
        for entry in measured:
            assert entry.get("date") and entry.get("unit") is not None, \
                f"[{name}] {entry['key']}: a measured value needs a date and a unit"


@pytest.mark.parametrize(("entry", "shown"), [
    ({"value": 3, "unit": "s"}, "3 s"),
    ({"value": [5, 6], "unit": "s"}, "5-6 s"),
    ({"value": 690, "unit": "s"}, "11.5 min"),
    ({"value": [31, 150], "unit": "s"}, "0.5-2.5 min"),
    ({"value": -0.98, "unit": "s"}, "-0.98 s"),
    ({"value": 915, "unit": "tests"}, "915 tests"),
    ({"value": 447, "unit": ""}, "447"),
    ({"unit": "s"}, times.NOT_MEASURED),
    (None, times.NOT_MEASURED),
])
def test_values_read_as_the_pages_show_them(entry, shown):
    assert times.fmt(entry) == shown


DATA = """# a comment that stays
[learner]
title = "What a learner waits for"
how = "on the CPU"
date = "2026-12-02"
unit = "s"

[[learner.entry]]
key = "01-tensors"
value = 9

[[learner.entry]]
key = "02-neural-networks"
# measured once
value = 16
note = "kept"

[[learner.entry]]
key = "03-training"

[other]
title = "Another group"
"""


def test_taking_in_values_edits_only_their_lines():
    updated = times.set_values(DATA, "learner", {"03-training": 321.5, "02-neural-networks": 17}, "2030-01-02")
    learner = times.load_text(updated)["learner"]["entries"]
    assert learner["03-training"]["value"] == 321.5 and learner["03-training"]["date"] == "2030-01-02"
    assert learner["02-neural-networks"]["value"] == 17 and learner["02-neural-networks"]["note"] == "kept"
    assert learner["01-tensors"] == times.load_text(DATA)["learner"]["entries"]["01-tensors"]
    added = [line for line in updated.splitlines() if line not in DATA.splitlines()]
    removed = [line for line in DATA.splitlines() if line not in updated.splitlines()]
    assert added == ['value = 17', 'date = "2030-01-02"', 'value = 321.5', 'date = "2030-01-02"']
    assert removed == ["value = 16"], "comments, notes and other entries stay as they were"


def test_taking_in_a_new_key_appends_an_entry_to_its_group():
    updated = times.set_values(DATA, "learner", {"09-new-part": [1, 2]}, "2030-01-02")
    groups = times.load_text(updated)
    assert list(groups["learner"]["entries"]) == ["01-tensors", "02-neural-networks", "03-training", "09-new-part"]
    assert groups["learner"]["entries"]["09-new-part"]["value"] == [1, 2]
    assert list(groups) == ["learner", "other"], "the groups keep their order"
    assert "\n\n[other]" in updated, "a blank line still separates the groups"


def test_the_real_data_file_can_be_taken_into():
    text = times.DATA.read_text()
    updated = times.set_values(text, "nbval", {"01-tensors": 4}, "2030-01-02")
    assert times.load_text(updated)["nbval"]["entries"]["01-tensors"]["value"] == 4


def test_bench_learner_json_is_taken_in(tmp_path):
    bench = tmp_path / "bench-learner.json"
    bench.write_text(json.dumps({"cpu_count": 2, "parts": {
        "01-tensors": {"seconds": 8.2, "load_average": 1.0, "slowest_cells": []}}}))
    assert times.from_bench(bench) == {"01-tensors": 8.2}


def test_a_run_with_a_setting_changed_is_its_own_entry(tmp_path):
    bench = tmp_path / "bench-learner.json"
    bench.write_text(json.dumps({"cpu_count": 2, "parts": {"05-inference-validation": {
        "seconds": 250.0, "load_average": 1.5, "slowest_cells": [], "settings": {"quick": "True"}}}}))
    assert times.from_bench(bench) == {"05-inference-validation quick=True": 250.0}
    assert times.bench_loads(bench) == {"05-inference-validation quick=True": "load average 1.5"}
    text = times.set_values(times.DATA.read_text(), "learner", times.from_bench(bench), "2030-01-02")
    groups = times.load_text(text)
    assert "(4.2 min with `quick=True`)" in times.course_map(groups, times.README.read_text())


def test_pytest_logs_are_taken_in_as_ranges(tmp_path):
    def log(name, seconds, total):
        path = tmp_path / name
        path.write_text(
            "=== nbval: notebook cells ===\n"
            f"01-tensors.ipynb                         compared  40  ignored   5  raises  2     {seconds[0]:.1f} s\n"
            f"02-neural-networks.ipynb                 compared  30  ignored   9  raises  0     {seconds[1]:.1f} s\n"
            f"all notebooks                            compared  70  ignored  14  raises  2     {sum(seconds):.1f} s\n"
            f"====== 900 passed, 12 skipped, 3 warnings in {total}s (0:22:44) ======\n")
        return path

    nbval, suite = times.from_pytest([log("a.log", (3.2, 5.4), 1364.1), log("b.log", (2.9, 6.3), 1400.0)])
    assert nbval == {"01-tensors": 3, "02-neural-networks": [5, 6]}
    assert suite == {"tests": 912, "make-test": 1400}


def test_make_times_takes_in_bench_learner_and_rewrites_the_pages(tmp_path, monkeypatch):
    for name in ("DATA", "TIMES_MD", "README", "SCALING"):
        copy = tmp_path / getattr(times, name).name
        shutil.copy(getattr(times, name), copy)
        monkeypatch.setattr(times, name, copy)
    assert times.main(["--check"]) == 0
    bench = tmp_path / "bench-learner.json"
    run = {"seconds": 754.0, "load_average": 1.5}
    bench.write_text(json.dumps({"cpu_count": 2, "parts": {"08-transfer-learning": run}}))
    assert times.main(["--from-bench", str(bench), "--date", "2030-01-02"]) == 0
    assert times.load(times.DATA)["learner"]["entries"]["08-transfer-learning"]["value"] == 754.0
    row = next(line for line in times.README.read_text().splitlines() if line.startswith("| [`08-"))
    assert "| 12.6 min |" in row, "the course map shows the new learner time"
    shown = "| `08-transfer-learning` | 12.6 min | load average 1.5; measured 2030-01-02 |"
    assert shown in times.TIMES_MD.read_text(), "the new run's load replaces the old run's note"
    assert times.main(["--check"]) == 0
