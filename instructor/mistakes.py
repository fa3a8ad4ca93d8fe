"""The class's mistakes by name: for each exercise of a part, which named mistakes its learners
made, how many (count and share), who (linked to their feedback page), and the notebook section
that teaches the fix; failures no named message explains, counted as "unexplained" with their
most common error lines, so the instructor sees where a test needs a new message.

    found = part_mistakes(course, part)         # [Found], from the graded notebooks
    html = report_section(course, out)          # the class report's section; writes out/mistakes.csv
    tag_source(source, part, ids)               # a test cell with an id after each untagged message

A mistake's id is written in the test cell's source, next to its message (a ``# mistake: <id>``
comment on a line of the statement holding the text, read by :mod:`instructor.verdicts`). A failed
test is read exactly as its feedback page reads it (:func:`instructor.verdicts.explained_by` on
the last error output of the graded test cell, this cell's messages first, then the part's other
test cells'). To give every message of the solutions an id
(``NN-<the message's first words>``, unique within the part), then release them::

    python -m instructor.mistakes tag solutions/*/*.ipynb && make release
"""

from __future__ import annotations

import argparse
import html
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .course import (
    grade_id,
    graded_dir,
    html_table,
    is_answer_cell,
    is_test_cell,
    notebook_in,
    read_regular_file,
    released_parts,
    write_csv,
)
from .verdicts import HOLE, explanation, message_sites, source_notebook

UNEXPLAINED = "unexplained"
UNTAGGED = "untagged"   # a message of the tests that carries no id yet
FIELDS = ["part", "exercise", "mistake", "message", "count", "share", "learners", "section"]
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_EXERCISE = re.compile(r"^Exercise\b", re.I)


@dataclass
class Found:
    """One named mistake (or the unexplained failures) of one exercise, in a class."""

    part: str
    exercise: str          # the exercise's heading ("Exercise 2 — train (3 points)"), else the test's grade id
    section: str           # the heading above the exercise's answer cell: the section that teaches it
    mistake: str           # its id, UNTAGGED, or UNEXPLAINED
    message: str           # the message's template; for UNEXPLAINED, the three most common error lines
    learners: list[str] = field(default_factory=list)
    graded: int = 0        # graded notebooks of the part

    @property
    def share(self) -> float:
        return len(self.learners) / self.graded if self.graded else 0.0

    def row(self) -> dict:
        """A row of mistakes.csv."""
        return {"part": self.part, "exercise": self.exercise, "mistake": self.mistake, "message": self.message,
                "count": len(self.learners), "share": f"{self.share:.2f}", "learners": " ".join(self.learners),
                "section": self.section}


def exercises(nb) -> dict[str, tuple[str, str, str]]:
    """{grade id of each test cell: (its source, its exercise's heading, the section)}: the exercise
    is the nearest "Exercise ..." heading above the test cell; the section, the nearest other
    heading above the exercise's answer cell (the text that teaches what the exercise asks)."""
    out: dict[str, tuple[str, str, str]] = {}
    exercise = section = taught = ""
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            for heading in _HEADING.findall(cell.source):
                heading = heading.replace("`", "").strip()  # as it reads, without markdown's code marks
                if _EXERCISE.match(heading):
                    exercise = heading
                else:
                    section = heading
        elif is_answer_cell(cell):
            taught = section
        elif is_test_cell(cell):
            out[grade_id(cell)] = (cell.source, exercise or grade_id(cell), taught or section)
    return out


def _graded(course: Path, part: str):
    """(student, graded notebook) of every graded submission of ``part``, by student."""
    import nbformat

    for folder in sorted((Path(course) / "autograded").glob(f"*/{part}")):
        student, path = folder.parent.name, notebook_in(graded_dir(course, folder.parent.name, part), part)
        if student.startswith(".") or not path.is_file():
            continue
        try:
            yield student, nbformat.reads(read_regular_file(path).decode("utf-8"), as_version=4)
        except (OSError, ValueError):
            continue  # not a notebook: nothing to read (the grading report says why)


def _error_line(error: dict) -> str:
    text = f"{error.get('ename', '')}: {error.get('evalue', '')}".strip()
    return (text.splitlines() or [""])[0][:160]


def part_mistakes(course: Path, part: str) -> list[Found]:
    """Every named mistake (and the unexplained failures) of ``part``'s graded notebooks, by
    exercise in the notebook's order, the most common first. An unanswered exercise (its stub's
    NotImplementedError) is no mistake; nor is a test that did not run."""
    tests = exercises(source_notebook(course, part))
    found: dict[tuple[str, str, str], Found] = {}
    raw: dict[str, Counter] = {}
    graded = 0
    for student, nb in _graded(course, part):
        graded += 1
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid not in tests or not is_test_cell(cell):
                continue
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if not errors or errors[-1].get("ename") == "NotImplementedError":
                continue
            _, exercise, section = tests[gid]
            template = explanation(errors[-1], tests[gid][0], [src for g, (src, _, _) in tests.items() if g != gid])
            if template is None:
                key = (gid, UNEXPLAINED, "")
                raw.setdefault(gid, Counter())[_error_line(errors[-1])] += 1
            else:
                key = (gid, template.mistake or UNTAGGED, template.text)
            entry = found.setdefault(key, Found(part, exercise, section, key[1], key[2]))
            if student not in entry.learners:
                entry.learners.append(student)
    order = {gid: i for i, gid in enumerate(tests)}
    for (gid, mistake, _), entry in found.items():
        entry.graded = graded
        if mistake == UNEXPLAINED:
            entry.message = " | ".join(f"{line} ({n})" for line, n in raw[gid].most_common(3))
    ranked = sorted(found.items(), key=lambda kv: (order[kv[0][0]], kv[0][1] == UNEXPLAINED,
                                                   -len(kv[1].learners), kv[0][1]))
    return [entry for _, entry in ranked]


def _learner_links(course: Path, out: Path, entry: Found) -> str:
    from .feedback import page_path

    links = []
    for student in entry.learners:
        page = page_path(course, student, entry.part)
        name = html.escape(student)
        links.append(f"<a href='{html.escape(os.path.relpath(page, out))}'>{name}</a>" if page.is_file() else name)
    return ", ".join(links)


def report_section(course: Path, out: Path) -> str:
    """The class report's "Mistakes by name" section, one table per part; writes
    ``out/mistakes.csv`` (part, exercise, mistake, message, count, share, learners, section)."""
    course, out = Path(course), Path(out)
    rows, tables = [], []
    for part in released_parts(course):
        try:
            found = part_mistakes(course, part)
        except (OSError, ValueError):
            continue  # no readable source notebook for this part here
        rows += [f.row() for f in found]
        cells = [{"exercise": html.escape(f.exercise), "mistake": f"<code>{html.escape(f.mistake)}</code>",
                  "message": html.escape(f.message),
                  "learners": f"{len(f.learners)} ({f.share:.0%}): {_learner_links(course, out, f)}",
                  "section that teaches it": html.escape(f.section)} for f in found]
        if cells:
            tables.append(f"<h3>{html.escape(part)}</h3>"
                          + html_table(cells, list(cells[0]), escape=False))
    write_csv(out / "mistakes.csv", rows, FIELDS)
    text = ("What the class got wrong, by the mistake each failed test's message names (its id in the "
            "test's source), per exercise: how many learners made it, who (their feedback page), and the "
            "notebook section that teaches the fix. 'unexplained': failures no message of the test names, "
            "with their most common error lines (a test that needs a new message).")
    return (f"<h2>Mistakes by name</h2><p>{html.escape(text)}</p>"
            + ("".join(tables) or "<p class='none'>no failed test in the graded notebooks</p>")
            + "<p><a href='mistakes.csv'>mistakes.csv</a></p>")


# ---------------------------------------------------------------------------
# Giving each message of a test cell an id
# ---------------------------------------------------------------------------

def slug(text: str, words: int = 4) -> str:
    """The first ``words`` words of a message, lowercase, joined by '-' (its values left out)."""
    found = re.findall(r"[a-z0-9]+", text.replace(HOLE, " ").lower())
    return "-".join(found[:words]) or "message"


def tag_source(source: str, part: str, ids: dict[str, str]) -> str:
    """``source`` (a test cell) with ``  # mistake: NN-<slug>`` after each message that has no id
    (on the last line of the statement holding its text). ``ids``: {message: id} of the part so
    far, ids already in the cell included, updated: a message met again gets the same id, a new
    slug that is taken gets -2, -3, ..."""
    lines = source.split("\n")
    number = part.split("-")[0]
    sites = message_sites(source)
    for template, _ in sites:
        if template.mistake:
            ids.setdefault(template.text, template.mistake)
    tagged: set[int] = set()
    for template, last in sites:
        if template.mistake or last - 1 in tagged or "# mistake:" in lines[last - 1]:
            continue
        if template.text not in ids:
            base, taken, n = f"{number}-{slug(template.text)}", set(ids.values()), 2
            new = base
            while new in taken:
                new, n = f"{base}-{n}", n + 1
            ids[template.text] = new
        lines[last - 1] += f"  # mistake: {ids[template.text]}"
        tagged.add(last - 1)
    return "\n".join(lines)


def tag_notebook(path: Path) -> int:
    """Give every message of the test cells of the notebook at ``path`` (``NN-slug/NN-slug.ipynb``)
    an id, in place; returns how many were added."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    part, ids, added = Path(path).stem, {}, 0
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and is_test_cell(cell):
            before = cell.source.count("# mistake:")
            cell.source = tag_source(cell.source, part, ids)
            added += cell.source.count("# mistake:") - before
    if added:
        nbformat.write(nb, path)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m instructor.mistakes", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tag", help="give each test message of these source notebooks a mistake id, in place")
    p.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {tag_notebook(path)} mistake id(s) added")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
