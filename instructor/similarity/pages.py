"""What a similarity run writes for each part: ``index.html`` (ranked pairs, clusters, each pair's
matching cells side by side) and the CSV files; the command (:func:`run`) and the class report's
section.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..course import html_table, one_line, write_csv
from .compare import THRESHOLD, Pair, Result, class_answers, compare, submitted_parts

SHOWN_PAIRS = 100      # pairs shown side by side in index.html (all of them are in pairs.csv)

FIELDS = {
    "pairs.csv": ["part", "student_a", "student_b", "score", "shared", "cells", "cluster"],
    "clusters.csv": ["part", "cluster", "size", "students", "max_score"],
    "problems.csv": ["student", "part", "reason"],
}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 80em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } .none { color: #666; font-style: italic; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em; } .side > div { min-width: 0; }
pre { background: #fafafa; border: 1px solid #ddd; padding: 0.4em; overflow-x: auto; font-size: 0.85em; margin: 0; }
pre span { display: block; } pre span.match { background: #ffe08a; }
.note { background: #eef5ff; border-left: 4px solid #4a86e8; padding: 0.4em 0.8em; }
"""

NOTE = ("A list of answers to read, not a verdict: similar code is often honest (a small exercise, a shared "
        "tutorial, a study group). Nothing here changes a grade.")


def _marked(source: str, lines: set[int]) -> str:
    rows = []
    for number, line in enumerate(source.splitlines() or [""], 1):
        cls = " class='match'" if number in lines else ""
        rows.append(f"<span{cls}>{html.escape(line) or ' '}</span>")
    return "<pre>" + "".join(rows) + "</pre>"


def _side_by_side(result: Result, pair: Pair) -> str:
    a, b = result.subs[pair.a], result.subs[pair.b]
    blocks = []
    for gid in pair.cells:
        fa, fb = a.prints.get(gid, {}), b.prints.get(gid, {})
        common = {f for f in fa.keys() & fb.keys() if result.weights.get((gid, f), 0) > 0}
        if not common:
            continue
        weight = sum(result.weights[(gid, f)] for f in common)
        la = {n for f in common for n in fa[f]}
        lb = {n for f in common for n in fb[f]}
        blocks.append(f"<h4>{html.escape(gid)} — {len(common)} matching fingerprint(s), weight {weight:.2f}</h4>"
                      f"<div class='side'><div><b>{html.escape(a.student)}</b>{_marked(a.cells[gid], la)}</div>"
                      f"<div><b>{html.escape(b.student)}</b>{_marked(b.cells[gid], lb)}</div></div>")
    return "".join(blocks)


def rows(result: Result) -> dict[str, list[dict]]:
    """The CSV tables of one part's result."""
    subs = result.subs
    return {
        "pairs.csv": [{"part": result.part, "student_a": subs[p.a].student, "student_b": subs[p.b].student,
                       "score": p.score, "shared": p.shared, "cells": " ".join(p.cells), "cluster": p.cluster}
                      for p in result.pairs],
        "clusters.csv": [{"part": result.part, "cluster": i, "size": len(members),
                          "students": " ".join(subs[m].student for m in members),
                          "max_score": max(p.score for p in result.pairs if p.cluster == i)}
                         for i, members in enumerate(result.clusters, 1)],
        "problems.csv": [{"student": s.student, "part": result.part, "reason": reason}
                         for s in subs for reason in s.problems],
    }


def write(result: Result, out: Path) -> Path:
    """``out/index.html`` and the CSV files of one part; returns index.html."""
    out.mkdir(parents=True, exist_ok=True)
    tables = rows(result)
    for name, table in tables.items():
        write_csv(out / name, table, FIELDS[name])
    e = html.escape
    ranked = [{"#": f"<a href='#pair-{i}'>{i}</a>", **{k: e(str(v)) for k, v in r.items()}}
              for i, r in enumerate(tables["pairs.csv"], 1)]
    details = "".join(f"<h3 id='pair-{i}'>{i}. {e(result.subs[p.a].student)} and {e(result.subs[p.b].student)}: "
                      f"score {p.score}, shared weight {p.shared}</h3>{_side_by_side(result, p)}"
                      for i, p in enumerate(result.pairs[:SHOWN_PAIRS], 1))
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Similar answers: "
            f"{e(result.part)}</title><style>{STYLE}</style></head><body><h1>Similar answers: {e(result.part)}</h1>"
            f"<p class='note'>{e(NOTE)}</p>"
            f"<p>{len(result.subs)} submission(s), {len(result.pairs)} pair(s) at or above score "
            f"{result.threshold} in {len(result.clusters)} cluster(s). Score: the rarity-weighted code two "
            f"submissions share over the weight of the smaller (1.0: one contains the other); the released "
            f"scaffold and code most of the class writes the same way weigh nothing. Marked lines hold "
            f"matching code.</p>"
            f"<h2>Pairs</h2>{html_table(ranked, ['#', *FIELDS['pairs.csv'][1:]], escape=False)}"
            f"<p><a href='pairs.csv'>pairs.csv</a></p>"
            f"<h2>Clusters</h2>{html_table(tables['clusters.csv'], FIELDS['clusters.csv'][1:])}"
            f"<p><a href='clusters.csv'>clusters.csv</a></p>"
            f"<h2>Could not be compared as submitted</h2>{html_table(tables['problems.csv'], FIELDS['problems.csv'])}"
            f"<p><a href='problems.csv'>problems.csv</a></p>"
            f"<h2>Side by side</h2>{details or '<p class=none>no pair</p>'}</body></html>")
    index = out / "index.html"
    index.write_text(page)
    return index


def run(course: Path, parts: list[str] | None = None, out: Path | None = None, threshold: float = THRESHOLD,
        graded: bool = False, say=print, progress: bool = True) -> dict[str, Result]:
    """Compare every part in ``parts`` (default: every part with submissions) and write
    ``out/<part>/``; returns {part: Result}. Never touches the gradebook."""
    course = Path(course).resolve()
    out = Path(out) if out else course / "report" / "similarity"
    out = out if out.is_absolute() else course / out
    results = {}
    for part in parts or submitted_parts(course, graded):
        subs = class_answers(course, part, graded, progress)
        result = compare(subs, threshold, part=part)
        index = write(result, out / part)
        problems = sum(len(s.problems) for s in subs)
        say(f"{part}: {len(subs)} submission(s), {len(result.pairs)} similar pair(s), "
            f"{len(result.clusters)} cluster(s), {problems} problem(s): {index}")
        results[part] = result
    return results


def report_section(course: Path, out: Path, say=print) -> str:
    """The class report's section: similar pairs per part, written under ``out/similarity/``;
    a failure is one line in the section, never the end of the report."""
    try:
        results = run(course, out=Path(out) / "similarity", say=say, progress=False)
    except Exception as exc:  # noqa: BLE001 - the rest of the report must still be written
        return (f"<h2>Similar answers</h2><p class='none'>not computed: "
                f"{html.escape(one_line(f'{type(exc).__name__}: {exc}'))}</p>")
    if not results:
        return "<h2>Similar answers</h2><p class='none'>no submissions in submitted/</p>"
    rows_ = []
    for part, result in results.items():
        top = result.pairs[0] if result.pairs else None
        best = f"{result.subs[top.a].student} / {result.subs[top.b].student}: {top.score}" if top else ""
        rows_.append(f"<tr><td><a href='similarity/{html.escape(part)}/index.html'>{html.escape(part)}</a></td>"
                     f"<td>{len(result.subs)}</td><td>{len(result.pairs)}</td><td>{len(result.clusters)}</td>"
                     f"<td>{html.escape(best)}</td>"
                     f"<td>{sum(len(s.problems) for s in result.subs)}</td></tr>")
    return ("<h2>Similar answers</h2><p>" + html.escape(NOTE) + "</p><table><tr><th>part</th><th>submissions</th>"
            "<th>similar pairs</th><th>clusters</th><th>most similar</th><th>problems</th></tr>"
            + "".join(rows_) + "</table>")
