"""Each exercise heading shows its points, and they are the points nbgrader gives.

In every notebook of ``solutions/`` and ``notebooks/``: an exercise heading reads
``### Exercise N — title (P points)`` (``(1 point)`` for one); P is the sum of the nbgrader
``points`` of the graded cells under it (down to the next exercise heading, or the next heading of
its level or higher); every graded cell sits under an exercise heading; exercises are numbered 1,
2, 3, ... in each part; and the headings' points add up to the part's total.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from tests.parts.cells import meta, parts, released, solution

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXERCISE = re.compile(r"^Exercise\b", re.I)
FORM = re.compile(r"^### Exercise (\d+) — (\S.*?) \((\d+) points?\)$")


@dataclass
class Exercise:
    number: int
    title: str
    points: int | None   # None: the heading does not show them
    cell: int
    graded: list[tuple[int, float]] = field(default_factory=list)   # (cell, points)


def headings(markdown: str) -> list[tuple[int, str, str]]:
    """(level, text, line) of each heading of a markdown cell (code blocks left out)."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append((len(match[1]), match[2], line.strip()))
    return found


def problems(nb, name: str) -> list[str]:
    """What is wrong with ``nb``'s exercise headings and their points."""
    out: list[str] = []
    exercises: list[Exercise] = []
    current: Exercise | None = None
    total = 0.0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for level, text, line in headings(cell.source):
                if EXERCISE.match(text):
                    match = FORM.match(line)
                    if not match:
                        out.append(f"{name} cell {index}: `{line}` is not `### Exercise N — title (P points)`")
                        number = re.match(r"Exercise (\d+)", text, re.I)
                        current = Exercise(int(number[1]) if number else 0, text, None, index)
                        exercises.append(current)
                        continue
                    number, points = int(match[1]), int(match[3])
                    if not line.endswith("(1 point)" if points == 1 else f"({points} points)"):
                        out.append(f"{name} cell {index}: `{line}`: write (1 point), or (P points) for P other than 1")
                    current = Exercise(number, match[2], points, index)
                    exercises.append(current)
                elif current is not None and level <= 3:
                    current = None
        elif meta(cell).get("grade"):
            points = float(meta(cell).get("points") or 0)
            total += points
            if current is None:
                out.append(f"{name} cell {index} ({meta(cell).get('grade_id')}, {points:g} points): "
                           "a graded cell under no exercise heading")
            else:
                current.graded.append((index, points))
    for exercise in exercises:
        got = sum(p for _, p in exercise.graded)
        if exercise.points is not None and got != exercise.points:
            cells = ", ".join(f"cell {i}: {p:g}" for i, p in exercise.graded) or "no graded cell"
            out.append(f"{name} cell {exercise.cell}: Exercise {exercise.number} says {exercise.points} points, "
                       f"its graded cells give {got:g} ({cells})")
    numbers = [e.number for e in exercises]
    if numbers != list(range(1, len(numbers) + 1)):
        out.append(f"{name}: exercises numbered {numbers}, not 1, 2, 3, ...")
    shown = sum(e.points or 0 for e in exercises)
    if shown != total:
        out.append(f"{name}: the headings give {shown} points in all, nbgrader {total:g}")
    return out


@pytest.mark.parametrize("part", parts())
@pytest.mark.parametrize("copy", ["solutions", "notebooks"])
def test_exercise_headings_show_their_points(part, copy):
    nb = solution(part) if copy == "solutions" else released(part)
    found = problems(nb, f"{copy}/{part}")
    assert not found, "\n".join(found)


def _notebook(*cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    for kind, source, points in cells:
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if points is not None:
                cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": points, "grade_id": source}
            nb.cells.append(cell)
    return nb


def test_a_well_formed_part_passes():
    nb = _notebook(("md", "# Part\n## Section", None), ("md", "### Exercise 1 — softmax (1 point)", None),
                   ("code", "answer", None), ("code", "t1", 1),
                   ("md", "Text\n### Exercise 2 — accuracy (3 points)\nMore", None), ("code", "t2", 2),
                   ("md", "#### A hint", None), ("code", "t3", 1), ("md", "```\n# not a heading\n```", None))
    assert problems(nb, "p") == []


@pytest.mark.parametrize(("cells", "wanted"), [
    ([("md", "### Exercise 1 — softmax", None), ("code", "t1", 2)], "is not `### Exercise N"),
    ([("md", "### Exercise 1 — softmax (3 points)", None), ("code", "t1", 2)],
     "says 3 points, its graded cells give 2"),
    ([("md", "### Exercise 1 — softmax (2 point)", None), ("code", "t1", 2)], "write (1 point)"),
    ([("md", "### Exercise 1 — softmax (2 points)", None), ("md", "## Next", None), ("code", "t1", 2)],
     "under no exercise heading"),
    ([("code", "t1", 2)], "under no exercise heading"),
    ([("md", "### Exercise 2 — softmax (2 points)", None), ("code", "t1", 2)], "numbered [2]"),
])
def test_problems_are_named(cells, wanted):
    found = problems(_notebook(*cells), "p")
    assert any(wanted in line for line in found), found
