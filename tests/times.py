"""The measured times the documentation quotes, written once, in ``docs/times.toml``.

    python -m tests.times                 rewrite docs/times.md and the generated sections
    python -m tests.times --check         exit 1 if any of them is out of date (what the test does)
    python -m tests.times --from-bench test-output/bench-learner.json
                                          take in `make bench-learner`'s results (group "learner")
    python -m tests.times --from-round test-output/bench-round.json
                                          take in `make bench-round`'s results (group "round-bench")
    python -m tests.times --from-pytest LOG [LOG ...] [--suite]
                                          take in the nbval times `make test` prints per notebook
                                          (several logs: their range); --suite also the test count
                                          and pytest's total time (group "suite")
    make times                            the first command

Generated from the data file (never edit them by hand):

- ``docs/times.md``: every group as a table, with how, with what command and when it was measured;
- ``README.md``, between ``<!-- times:begin course-map -->`` and ``<!-- times:end course-map -->``:
  the course map. Its "what it teaches" column is kept from the README as it stands (edit it
  there); the links and the time columns (groups "nbval" and "learner") are written here;
- ``README.md``, between ``<!-- times:begin round-summary -->`` and its end: the simulated
  round's figures in two lines (``tests/times_round.py``);
- ``docs/scaling.md``, between ``<!-- times:begin round -->`` and ``<!-- times:end round -->``:
  how long a round of a large class takes, worked out from the grading throughput; and between
  ``<!-- times:begin mooc-round -->`` and ``<!-- times:end mooc-round -->``, the simulated
  round's stages and its extrapolation (``tests/times_round.py``).

The data file's layout is described at its top. Taking in a tool's output edits only the
``value`` and ``date`` lines of the entries it measured, so comments and hand edits stay.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from instructor.course import PART_NAMES
from instructor.notebooks import colab_url
from tests import times_round

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "times.toml"
TIMES_MD = ROOT / "docs" / "times.md"
README = ROOT / "README.md"
SCALING = ROOT / "docs" / "scaling.md"
NOT_MEASURED = "not yet measured"
LEARNERS, PARTS_PER_ROUND = 10_000, 8  # the class size docs/scaling.md works out


# --- reading and formatting ---------------------------------------------------------------------

def load(path: Path | None = None) -> dict:
    """{group: {"title", "how", "command", "date", "unit", "entries": {key: entry}}}; every entry
    carries its group's fields unless it sets its own."""
    path = path or DATA
    return load_text(path.read_text(), path.name)


def load_text(text: str, source: str = "docs/times.toml") -> dict:
    """``load`` of the data file's text."""
    groups = {}
    for name, group in tomllib.loads(text).items():
        shared = {k: v for k, v in group.items() if k != "entry"}
        entries = {}
        for entry in group.get("entry", []):
            if entry.get("key") in entries or "key" not in entry:
                raise SystemExit(f"{source}: [{name}] has an entry without a key, or two with key {entry.get('key')!r}")
            entries[entry["key"]] = {"what": entry["key"], **shared, **entry}
        groups[name] = {**shared, "entries": entries}
    return groups


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:g}"


def fmt(entry: dict | None) -> str:
    """An entry's value as the documentation shows it: "3 s", "5-6 s", "11.5 min", "915 tests"."""
    if entry is None or "value" not in entry:
        return NOT_MEASURED
    value, unit = entry["value"], entry.get("unit", "")
    values = value if isinstance(value, list) else [value]
    if unit == "s" and max(abs(v) for v in values) >= 120:
        values, unit = [round(v / 60, 1) for v in values], "min"
    return "-".join(_number(v) for v in values) + (f" {unit}" if unit else "")


def high(entry: dict) -> float:
    """The value, or the top of its range."""
    value = entry["value"]
    return max(value) if isinstance(value, list) else value


# --- docs/times.md ------------------------------------------------------------------------------

def times_md(groups: dict) -> str:
    out = ["# Measured times", "",
           "Every run time the documentation quotes, with how it was measured. This file is generated",
           "from [times.toml](times.toml) by `make times` (`python -m tests.times`), which also fills the",
           "time columns of the README's course map and the worked example in [scaling.md](scaling.md):",
           "edit a figure in `times.toml`, then run `make times`. A test fails when they are out of step.",
           "Taking in a tool's output: `python -m tests.times --from-bench test-output/bench-learner.json`",
           "(`make bench-learner`), `--from-round test-output/bench-round.json` (`make bench-round`)",
           "or `--from-pytest LOG` (the nbval times `make test` prints).", ""]
    for group in groups.values():
        out += [f"## {group.get('title', '')}", ""]
        said = [f"**How:** {group['how']}." if group.get("how") else "",
                f"**Command:** `{group['command']}`." if group.get("command") else "",
                f"**Measured:** {group['date']}." if group.get("date") else ""]
        out += [" ".join(s for s in said if s), ""]
        entries = group["entries"].values()
        extra = any(_remark(e, group) for e in entries)
        out += [_row(["what", "value"] + ["note"] * extra), _row(["---", "---"] + ["---"] * extra)]
        for e in entries:
            what = f"`{e['key']}`" if e["key"] in PART_NAMES else e["what"]
            out.append(_row([what, fmt(e)] + [_remark(e, group)] * extra))
        out.append("")
    return "\n".join(out)


def _row(cells: list[str]) -> str:
    return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"


def _remark(entry: dict, group: dict) -> str:
    """An entry's note, plus its own how and date where they differ from its group's."""
    parts = [entry.get("note", "")]
    if entry.get("how") != group.get("how"):
        parts.append(entry["how"])
    if "value" in entry and entry.get("date") != group.get("date"):
        parts.append(f"measured {entry['date']}")
    return "; ".join(p for p in parts if p)


# --- generated sections -------------------------------------------------------------------------

def _section(text: str, name: str, body: str, where: str) -> str:
    begin, end = f"<!-- times:begin {name} -->", f"<!-- times:end {name} -->"
    pattern = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), flags=re.S)
    if not pattern.search(text):
        raise SystemExit(f"{where} has no section {begin} ... {end}")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


QUICK = "quick=True"  # the smaller setting a long part offers (tests/bench_learner.py --set quick=True)
ROW = re.compile(r"^\| \[`(?P<part>0\d-[a-z-]+)`\]\([^)]*\) \| (?P<topics>.*?) \| ", flags=re.M)


def course_map(groups: dict, readme: str) -> str:
    """The course map: links from the part names, times from the data, topics kept from ``readme``."""
    topics = {m["part"]: m["topics"] for m in ROW.finditer(readme)}
    nbval, learner = groups["nbval"]["entries"], groups["learner"]["entries"]
    rows = ["| Part | What it teaches | CI sample¹ | Learner, CPU² | |", "| --- | --- | --- | --- | --- |"]
    for part in PART_NAMES:
        link = f"[`{part}`](notebooks/{part}/{part}.ipynb)"
        colab = f"[Open in Colab]({colab_url(part)})"
        quick = learner.get(f"{part} {QUICK}")
        cpu = fmt(learner.get(part)) + (f" ({fmt(quick)} with `{QUICK}`)" if quick and "value" in quick else "")
        rows.append(f"| {link} | {topics.get(part, '(what it teaches)')} | {fmt(nbval.get(part))} "
                    f"| {cpu} | {colab} |")
    return "\n".join(rows)


def suite_times(groups: dict) -> str:
    """The README's line on how long the two test tiers take, from [suite]."""
    e = groups["suite"]["entries"]
    return (f"On two CPU cores: `make test` {fmt(e.get('make-test'))} ({fmt(e.get('tests'))}), "
            f"`make test-fast` {fmt(e.get('make-test-fast'))}\n({fmt(e.get('tests-fast'))}: lint, every test that "
            "starts no notebook kernel and is not marked slow,\nand one Part 1 submission graded in the sandbox). "
            "How they were measured:\n[docs/times.md](docs/times.md#the-test-suite).")


def _duration(hours: float) -> str:
    if hours >= 48:
        return f"{hours:.0f} h ({hours / 24:.1f} days)"
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def round_table(groups: dict) -> str:
    """docs/scaling.md's worked example: a round of LEARNERS x PARTS_PER_ROUND on N machines."""
    grading = groups["grading"]["entries"]
    r = high(grading["per-hour-per-machine-2"])      # submissions per hour per 2-core machine, warm (the default)
    cold = grading.get("per-hour-per-machine-2-cold", {})
    r_cold = high(cold) if "value" in cold else None
    g = high(groups["coordinator"]["entries"]["storage-per-result"])  # its seconds per result
    measured = [e for e in groups["grading-part-2"]["entries"].values() if "value" in e]  # per part, 2 workers
    mean, slowest = sum(map(high, measured)) / len(measured), max(measured, key=high)
    machines = (1, 10, 25, 50, 100)

    def row(label: str, submissions: int, rate: float = r) -> str:
        cells = []
        for n in machines:
            workers, coordinator = submissions / (n * rate), submissions * g / 3600
            bound = " (coordinator-bound)" if coordinator > workers else ""
            cells.append(_duration(max(workers, coordinator)) + bound)
        return f"| {label} | " + " | ".join(cells) + " |"

    lines = [
        f"With `r` = {_number(r)} submissions per hour per 2-core machine (two workers, warm kernels: the default)"
        f" and `g` = {g:g} s",
        f"per result (one coordinator takes at most {3600 / g:,.0f} results an hour), from",
        "[times.md](times.md#grading-throughput) and [times.md](times.md#the-coordinators-storage-in-batches):",
        "",
        "| machines (2 cores each) | " + " | ".join(map(str, machines)) + " |",
        "| --- |" + " --- |" * len(machines),
        row(f"one round, {PARTS_PER_ROUND} parts × {LEARNERS:,} learners", LEARNERS * PARTS_PER_ROUND),
        row(f"one part, {LEARNERS:,} submissions (average part)", LEARNERS),
    ]
    if r_cold:
        lines += [row(f"one round, cold kernels (`GRADING_WARM=0`, `r` = {r_cold:,.0f})", LEARNERS * PARTS_PER_ROUND,
                      r_cold),
                  row("one part, cold kernels (average part)", LEARNERS, r_cold)]
    lines += [
        "",
        f"Parts differ: {fmt(slowest)} per task for the slowest, `{slowest['key']}`, against\n"
        f"{mean:.1f} s on average (two workers), so it takes about {high(slowest) / mean:.1f} times "
        "the \"average part\" row.",
    ]
    if r_cold:
        lines += ["",
                  f"Warm kernels (`GRADING_WARM=1`, the default) grade {r / r_cold:.2f} times as many submissions "
                  "an hour as cold ones,\nmeasured side by side in one run on all eight parts "
                  "([times.md](times.md#grading-throughput)): a warm kernel does not import PyTorch again.\n"
                  "The saving is about the same for every part, so short parts gain most."]
    return "\n".join(lines)


def generated(groups: dict) -> dict[Path, str]:
    """{file: its text as the data says it should be}."""
    readme = README.read_text()
    return {
        TIMES_MD: times_md(groups),
        README: _section(_section(_section(readme, "course-map", course_map(groups, readme), "README.md"),
                                  "round-summary", times_round.summary(groups, fmt, _duration), "README.md"),
                         "test-times", suite_times(groups), "README.md"),
        SCALING: _section(_section(SCALING.read_text(), "round", round_table(groups), "docs/scaling.md"),
                          "mooc-round", times_round.section(groups, fmt, _duration), "docs/scaling.md"),
    }


# --- taking in a tool's output ------------------------------------------------------------------

def set_values(text: str, group: str, values: dict[str, float | list[float]], date: str,
               notes: dict[str, str] | None = None) -> str:
    """``text`` (the data file) with the ``value`` and ``date`` of ``group``'s entries replaced
    (and their ``note``, for the keys ``notes`` gives: a new measurement's conditions replace the
    old one's); an entry not there yet is appended to the group's entries."""
    notes = notes or {}
    for key, value in values.items():
        shown = json.dumps(value)
        note = f"note = {json.dumps(notes[key])}\n" if key in notes else ""
        head = re.compile(rf'^\[\[{re.escape(group)}\.entry\]\]\nkey = "{re.escape(key)}"\n', flags=re.M)
        match = head.search(text)
        if match is None:  # a new entry, after the group's last one
            starts = [m.start() for m in re.finditer(rf"^\[\[?{re.escape(group)}(\.entry)?\]\]?$", text, flags=re.M)]
            if not starts:
                raise SystemExit(f"docs/times.toml has no group [{group}]")
            after = re.compile(r"^\[", flags=re.M).search(text, starts[-1] + 1)
            at = after.start() if after else len(text)
            block = f'\n[[{group}.entry]]\nkey = "{key}"\nvalue = {shown}\ndate = "{date}"\n{note}'
            text = text[:at].rstrip("\n") + "\n" + block + ("\n" if after else "") + text[at:]
            continue
        stop = re.compile(r"^\[", flags=re.M).search(text, match.end())
        end = stop.start() if stop else len(text)
        replaced = "value|date|note" if note else "value|date"
        body = re.sub(rf"^({replaced}) = .*\n", "", text[match.end():end], flags=re.M)
        text = text[:match.end()] + f'value = {shown}\ndate = "{date}"\n{note}' + body + text[end:]
    return text


def bench_key(part: str, result: dict) -> str:
    """The learner entry a bench-learner result belongs to: the part, or, for a run with settings
    changed (``--set quick=True``), "05-inference-validation quick=True"."""
    return " ".join([part, *(f"{k}={v}" for k, v in result.get("settings", {}).items())])


def from_bench(path: Path) -> dict[str, float]:
    """{entry key: seconds} from `make bench-learner`'s JSON (tests/bench_learner.py)."""
    return {bench_key(part, r): r["seconds"] for part, r in json.loads(path.read_text())["parts"].items()}


def bench_loads(path: Path) -> dict[str, str]:
    """{entry key: "load average L"}: the load each part of `make bench-learner`'s JSON ran under."""
    parts = json.loads(path.read_text())["parts"]
    return {bench_key(part, r): f"load average {r['load_average']:g}" for part, r in parts.items()
            if "load_average" in r}


NBVAL_LINE = re.compile(r"^(?P<part>0\d-[a-z-]+)\.ipynb\s+compared.*?(?P<seconds>[\d.]+) s\s*$", flags=re.M)
SUMMARY = re.compile(r"^=*\s*(?P<counts>(?:\d+ \w+, )*\d+ \w+) in (?P<seconds>[\d.]+)s\b", flags=re.M)


def from_pytest(logs: list[Path]) -> tuple[dict[str, float | list[float]], dict[str, float]]:
    """({part: seconds, or [low, high] over several logs}, {"tests": n, "make-test": seconds} of the
    last log) from the output of `make test` (conftest.py's "nbval: notebook cells" summary)."""
    seen: dict[str, list[float]] = {}
    suite = {}
    for log in logs:
        text = log.read_text(errors="replace")
        for m in NBVAL_LINE.finditer(text):
            seen.setdefault(m["part"], []).append(float(m["seconds"]))
        summary = list(SUMMARY.finditer(text))
        if summary:
            counts = re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)", summary[-1]["counts"])
            suite = {"tests": sum(int(n) for n, _ in counts), "make-test": round(float(summary[-1]["seconds"]))}
    nbval = {part: round(s[0]) if len(s) == 1 or round(min(s)) == round(max(s)) else [round(min(s)), round(max(s))]
             for part, s in seen.items()}
    return nbval, suite


# --- command line -------------------------------------------------------------------------------

def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.times", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the generated files are up to date")
    parser.add_argument("--from-bench", type=Path, metavar="JSON", help="`make bench-learner`'s results")
    parser.add_argument("--from-round", type=Path, metavar="JSON", help="`make bench-round`'s results")
    parser.add_argument("--from-pytest", type=Path, nargs="+", metavar="LOG", help="logs of `make test`")
    parser.add_argument("--suite", action="store_true", help="with --from-pytest: also the test count and time")
    parser.add_argument("--date", default=datetime.date.today().isoformat(), help="of the measurement (default today)")
    args = parser.parse_args(argv)

    text = DATA.read_text()
    if args.from_bench:
        text = set_values(text, "learner", from_bench(args.from_bench), args.date, bench_loads(args.from_bench))
    if args.from_round:
        values, notes = times_round.from_round(args.from_round)
        text = set_values(text, times_round.GROUP, values, args.date, notes)
    if args.from_pytest:
        nbval, suite = from_pytest(args.from_pytest)
        if not nbval:
            raise SystemExit("no nbval times found: give the output of `make test` (its 'nbval: notebook cells' part)")
        text = set_values(text, "nbval", nbval, args.date)
        if args.suite:
            text = set_values(text, "suite", suite, args.date)
    if text != DATA.read_text():
        DATA.write_text(text)
        print(f"{_name(DATA)}: values and dates updated; check each group's `how` still says "
              "how they were measured (machine, load, data)")

    stale = []
    for path, wanted in generated(load()).items():
        if not path.exists() or path.read_text() != wanted:
            stale.append(_name(path))
            if not args.check:
                path.write_text(wanted)
    if args.check:
        if stale:
            print(f"out of date with docs/times.toml: {', '.join(stale)}; run `make times`")
        return 1 if stale else 0
    print(f"rewrote {', '.join(stale)}" if stale else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
