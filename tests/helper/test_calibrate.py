"""helper.calibrate: the scaling from the measured times to this machine's, with fake clocks (no
real timing is asserted), the week-long cache, and the tables kept in step with docs/times.toml.

Tolerance: an estimate is the measured time times a ratio of two sums of quickest runs, so a
machine whose every run takes twice as long gets exactly twice the times; the tests allow 1e-9
relative (floating point), and 5 % on the rounded figures printed."""

from __future__ import annotations

import datetime
import itertools
import re

import pytest

from helper import calibrate
from helper.calibrate import Calibration, expected_seconds, measure
from instructor.course import PART_NAMES, ROOT
from tests import times


def fake_clock(durations):
    """A clock whose successive timed runs take ``durations`` (start, end, start, end, ...)."""
    now = [0.0]
    steps = itertools.chain.from_iterable((0.0, d) for d in durations)

    def clock():
        now[0] += next(steps)
        return now[0]
    return clock


def noop_work(n=3):
    return {f"piece{i}": (lambda: None) for i in range(n)}


def test_each_piece_keeps_its_quickest_run():
    # 3 pieces x 3 repeats; piece 0 is slowed once by other work, as happens on a busy machine
    cal = measure(repeats=3, clock=fake_clock([0.5, 0.2, 0.3, 0.1, 0.1, 0.1, 0.4, 0.4, 0.35]), work=noop_work())
    assert cal.pieces == pytest.approx({"piece0": 0.2, "piece1": 0.1, "piece2": 0.35})
    assert cal.seconds == pytest.approx(0.65)
    assert cal.machine == calibrate.fingerprint()


def test_a_machine_twice_as_slow_gets_twice_the_times():
    runs = [0.21, 0.2, 0.26, 0.3, 0.24, 0.25, 0.3, 0.27, 0.33]
    here = measure(repeats=3, clock=fake_clock(runs), work=noop_work())
    slow = measure(repeats=3, clock=fake_clock([2 * r for r in runs]), work=noop_work())
    assert slow.factor == pytest.approx(2 * here.factor, rel=1e-9)
    for part in PART_NAMES:
        assert expected_seconds(part, slow) == pytest.approx(2 * expected_seconds(part, here), rel=1e-9)
    quick = "05-inference-validation"
    assert expected_seconds(quick, slow, quick=True) == pytest.approx(2 * expected_seconds(quick, here, quick=True))
    # and as printed: every figure of the slower machine's lines is twice the other's, within 5 %
    for part in PART_NAMES:
        shown = [_seconds(text) for text in (calibrate.part_estimate(part, here), calibrate.part_estimate(part, slow))]
        for fast_s, slow_s in zip(*shown, strict=True):
            assert slow_s == pytest.approx(2 * fast_s, rel=0.05), (part, shown)


def _seconds(text: str) -> list[float]:
    return [float(v) * (60 if unit == "min" else 1) for v, unit in re.findall(r"([\d.]+) (s|min)\b", text)]


def test_the_reference_machine_gets_the_measured_times():
    cal = Calibration(calibrate.REFERENCE_SECONDS, {}, "2026-12-07T00:00:00+00:00")
    assert cal.factor == pytest.approx(1)
    assert expected_seconds("03-training", cal) == pytest.approx(calibrate.LEARNER_SECONDS["03-training"])
    assert calibrate.speed(cal) == "about as fast as"
    assert calibrate.speed(Calibration(2 * calibrate.REFERENCE_SECONDS, {}, "")) == "2.0 times slower than"
    assert calibrate.speed(Calibration(calibrate.REFERENCE_SECONDS / 4, {}, "")) == "4.0 times faster than"


def test_wrong_parts_and_settings_are_refused():
    cal = Calibration(1.0, {}, "")
    with pytest.raises(ValueError, match="unknown part '03'"):
        expected_seconds("03", cal)
    with pytest.raises(ValueError, match="03-training has no smaller setting"):
        expected_seconds("03-training", cal, quick=True)
    with pytest.raises(ValueError, match="repeats"):
        measure(repeats=0, work=noop_work())


def test_durations_read_like_the_times_page():
    assert [calibrate.duration(s) for s in (4.94, 97.1, 119.4, 197.3, 1056.7)] == \
        ["4.9 s", "97 s", "119 s", "3.3 min", "17.6 min"]
    cal = Calibration(2 * calibrate.REFERENCE_SECONDS, {}, "")
    part = "05-inference-validation"
    assert calibrate.part_estimate(part, cal) == \
        f"about {calibrate.duration(2 * calibrate.LEARNER_SECONDS[part])}, " \
        f"{calibrate.duration(2 * calibrate.QUICK[part][1])} with `quick = True`"


def test_the_real_workload_runs_and_measures_something():
    """The workload itself, made small: every piece runs and takes some time (no figure checked)."""
    cal = measure(repeats=1, work=calibrate.workload(scale=0.02))
    assert set(cal.pieces) == {"loading", "mlp", "cnn"} and all(v > 0 for v in cal.pieces.values())


def test_a_calibration_is_kept_for_a_week_on_this_machine(tmp_path, monkeypatch):
    path = tmp_path / "calibration.json"
    cal = Calibration(1.4, {"loading": 0.5, "mlp": 0.4, "cnn": 0.5}, "2026-12-07T09:00:00+00:00",
                      calibrate.fingerprint())
    calibrate.save(cal, path)
    day = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.timezone.utc)
    assert calibrate.load(path, now=day + datetime.timedelta(days=6, hours=23)) == cal
    assert calibrate.load(path, now=day + datetime.timedelta(days=7)) is None
    # another machine (or another PyTorch) measures again
    calibrate.save(Calibration(1.4, {}, cal.date, {**cal.machine, "cpus": "64"}), path)
    assert calibrate.load(path, now=day) is None
    assert calibrate.load(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{")
    assert calibrate.load(tmp_path / "bad.json") is None


def test_calibration_reads_the_kept_one_and_measures_only_without(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert calibrate.cache_path() == tmp_path / "intro-pytorch" / "calibration.json"
    fresh = Calibration(0.9, {"x": 0.9}, datetime.datetime.now(datetime.timezone.utc).isoformat(),
                        calibrate.fingerprint())
    measured = []
    monkeypatch.setattr(calibrate, "measure", lambda: measured.append(1) or fresh)
    assert calibrate.calibration() == fresh and measured == [1]   # none kept: measured, then kept
    assert calibrate.calibration() == fresh and measured == [1]   # kept: not measured again
    assert calibrate.calibration(refresh=True) == fresh and measured == [1, 1]


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path):
    (tmp_path / "file").write_text("")
    calibrate.save(Calibration(1.0, {}, ""), tmp_path / "file" / "calibration.json")


def test_the_tables_are_docs_times_toml():
    """LEARNER_SECONDS and QUICK are the `learner` group, REFERENCE_SECONDS the `calibration`
    group's entry: learners' installs have no docs/, so the figures ship in the package."""
    groups = times.load()
    learner = {k: e.get("value") for k, e in groups["learner"]["entries"].items()}
    table = {k: v for k, v in learner.items() if " " not in k}
    quick = {k.split(" ")[0]: (k.split(" ", 1)[1].replace("=", " = "), v) for k, v in learner.items() if " " in k}
    expected = "\n".join(["LEARNER_SECONDS: dict[str, float] = {", *(f'    "{k}": {v},' for k, v in table.items()),
                          "}", "# Parts that offer a smaller setting: (the setting's line, seconds with it).",
                          "QUICK: dict[str, tuple[str, float]] = {",
                          *(f'    "{k}": ("{s}", {v}),' for k, (s, v) in quick.items()), "}"])
    source = (ROOT / "helper" / "calibrate.py").read_text()
    block = source.split("# --- times:begin learner ---\n")[1].split("\n# --- times:end learner ---")[0]
    assert block == expected, f"helper/calibrate.py's table is out of step with docs/times.toml: make it\n{expected}"
    assert list(table) == list(PART_NAMES)
    calibration = groups["calibration"]
    assert reference_value(calibration) == calibrate.REFERENCE_SECONDS, "REFERENCE_SECONDS: copy docs/times.toml's"
    assert "helper.calibrate" in calibration["command"] and calibration["date"]


def reference_value(group: dict) -> float:
    """The reference as docs/times.toml's `calibration` group works it out: the calibration beside
    each re-run part times (that part's learner time / its re-run time), the median over parts."""
    import statistics

    implied = [e["calibration"] * e["learner"] / e["value"] for e in group["entries"].values() if "learner" in e]
    assert implied, "[calibration] has no re-run part to work the reference out from"
    assert group["entries"]["reference"]["value"] == round(statistics.median(implied), 3), \
        "[calibration] reference: the median of the implied references, rounded to 3 decimals"
    learner = times.load()["learner"]["entries"]
    for e in group["entries"].values():
        if "learner" in e:
            assert e["learner"] == learner[e["key"].split(" ")[0]]["value"], f"{e['key']}: the learner time it re-ran"
    return group["entries"]["reference"]["value"]
