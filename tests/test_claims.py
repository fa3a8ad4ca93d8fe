"""What the notebooks say an output shows, the notebooks' own stored outputs show.

``docs/claims/NN-slug.md``, one file per part, holds a short introduction and one table::

    | cell | claim | shown by | output |

- **cell**: the id of the cell (its ``id`` in ``solutions/NN-slug/NN-slug.ipynb``) whose text
  makes the claim (a statement about what a figure, a number or an error shows, or a number);
- **claim**: words of that cell, quoted exactly (``|`` written ``\\|``);
- **shown by**: the id of the cell whose stored output shows it;
- **output**: words of that cell's stored text output (a stream, ``text/plain``, or an
  error's name or message), or ``image/png``: the cell stores a figure.

Runs of whitespace compare as one space (a table row is one line; notebook text and outputs
wrap). Each claim must also reach the learner: the released notebook (``notebooks/``, the same
cell ids, outputs cleared) keeps the claim's cell with the claim in it, unless the claim sits in
a solution or hidden-test block that the release removes, and keeps the cell that shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from instructor.course import PART_NAMES, ROOT

CLAIMS = ROOT / "docs" / "claims"
HEADER = "| cell | claim | shown by | output |"
FIGURE = "image/png"
# What the release removes from a cell: the answers, and the hidden tests.
REMOVED = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS).*?### END \1", re.S)

pytestmark = pytest.mark.course_data()  # reads notebooks, runs none: no data


@dataclass(frozen=True)
class Row:
    part: str
    line: int
    cell: str
    claim: str
    shown_by: str
    output: str

    def __str__(self):
        return f"{self.part} (docs/claims line {self.line}), cell {self.cell}: «{self.claim}»"


def _fold(text: str) -> str:
    return " ".join(text.split())


def _fields(line: str) -> list[str]:
    """The cells of a markdown table row; ``\\|`` is a ``|`` inside a cell."""
    inner = line.strip()
    inner = inner[1:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner[1:]
    return [field.strip().replace("\\|", "|") for field in re.split(r"(?<!\\)\|", inner)]


def _rows(path: Path) -> list[Row]:
    part = path.stem
    lines = path.read_text().splitlines()
    headers = [i for i, line in enumerate(lines) if line.strip().startswith("| cell ")]
    assert [lines[i].strip() for i in headers] == [HEADER], \
        f"{path.name}: expected one table with the header {HEADER!r}"
    assert any(line.strip() and not line.lstrip().startswith("|") for line in lines[:headers[0]]), \
        f"{path.name}: start with a short introduction before the table"
    rows = []
    for n, line in enumerate(lines[headers[0] + 2:], start=headers[0] + 3):
        if not line.strip().startswith("|"):
            break
        fields = _fields(line)
        assert len(fields) == 4 and all(fields), f"{path.name} line {n}: expected four non-empty cells, got {fields}"
        rows.append(Row(part, n, *fields))
    assert rows, f"{path.name}: the table has no rows"
    return rows


def _claim_files() -> list[Path]:
    return sorted(CLAIMS.glob("*.md"))


def _notebook(folder: str, part: str):
    return nbformat.read(ROOT / folder / part / f"{part}.ipynb", as_version=4)


def _texts(cell) -> list[str]:
    """A code cell's stored text outputs: streams, text/plain, an error's name and message."""
    texts, streams = [], {}
    for out in cell.get("outputs", []):
        if out.output_type == "stream":  # a print may arrive in pieces: join each stream's
            streams[out.name] = streams.get(out.name, "") + out.text
        elif out.output_type == "error":
            texts += [out.ename, out.evalue, f"{out.ename}: {out.evalue}"]
        elif "text/plain" in out.get("data", {}):
            texts.append(out.data["text/plain"])
    return texts + list(streams.values())


def _has_figure(cell) -> bool:
    return any(FIGURE in out.get("data", {}) for out in cell.get("outputs", []))


def test_every_claims_file_is_a_part():
    names = [p.stem for p in _claim_files()]
    assert names, "docs/claims/ holds no claims table"
    unknown = sorted(set(names) - set(PART_NAMES))
    assert not unknown, f"docs/claims/{unknown[0]}.md names no part: expected one of {list(PART_NAMES)}"


def test_every_part_has_a_claims_table():
    missing = [part for part in PART_NAMES if not (CLAIMS / f"{part}.md").exists()]
    assert not missing, f"no claims table for {', '.join(missing)}: write docs/claims/<part>.md"


@pytest.mark.parametrize("path", _claim_files(), ids=lambda p: p.stem)
def test_claims_are_shown_by_stored_outputs(path):
    solution = {c.id: c for c in _notebook("solutions", path.stem).cells}
    problems = []
    for row in _rows(path):
        cell, shown = solution.get(row.cell), solution.get(row.shown_by)
        if cell is None:
            problems.append(f"{row}: no cell {row.cell} in the solution")
            continue
        if _fold(row.claim) not in _fold(cell.source):
            problems.append(f"{row}: the cell no longer says this")
        if shown is None:
            problems.append(f"{row}: no cell {row.shown_by} (shown by) in the solution")
        elif row.output == FIGURE:
            if not _has_figure(shown):
                problems.append(f"{row}: cell {row.shown_by} stores no figure")
        elif not any(_fold(row.output) in _fold(text) for text in _texts(shown)):
            problems.append(f"{row}: cell {row.shown_by}'s stored output does not show «{row.output}»")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", _claim_files(), ids=lambda p: p.stem)
def test_released_notebooks_keep_the_claims(path):
    released = {c.id: c for c in _notebook("notebooks", path.stem).cells}
    solution = {c.id: c for c in _notebook("solutions", path.stem).cells}
    problems = []
    for row in _rows(path):
        cell = released.get(row.cell)
        if cell is None:
            problems.append(f"{row}: the released notebook has no cell {row.cell} (run `make release`)")
        elif _fold(row.claim) not in _fold(cell.source):
            removed = " ".join(m.group(0) for m in REMOVED.finditer(solution[row.cell].source)) \
                if row.cell in solution else ""
            if _fold(row.claim) not in _fold(removed):
                problems.append(f"{row}: the released cell does not say this (run `make release`)")
        if row.shown_by not in released:
            problems.append(f"{row}: the released notebook has no cell {row.shown_by} (shown by)")
    assert not problems, "\n".join(problems)


def test_a_table_row_may_quote_a_bar():
    assert _fields(r"| a1 | x \| y | b2 | `a \| b` |") == ["a1", "x | y", "b2", "`a | b`"]
