"""A class as an instructor receives it, for ``tests/bench_round.py``: a course with a small part
whose notebooks really run (plain Python and NumPy, no PyTorch work, so that a thousand of them
grade in minutes) and the tiny part of :func:`instructor.testing.trivial_course`, and the
downloads of both parts as a learning platform hands them out: ``.zip`` archives of
``<student>_<part>.ipynb`` files, as ``python -m instructor collect`` takes them.

    course = make_course(folder)                        # both parts released (nbgrader)
    downloads(course, folder / "downloads", real=1000, trivial=10000)
    expected_score(i)                                   # what student i scores on SMALL_PART

Student ``i`` of the small part hands in one of four kinds of work, in turn (:data:`KINDS`): all
answers right, the first one only, nothing (the released notebook), the first two right and a
wrong third. Student ``i`` of the trivial part is :func:`instructor.testing.trivial_submission`.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import nbformat

from instructor import testing
from instructor.course import grade_id, is_answer_cell, run_nbgrader

SMALL_PART = "00-warm-up"
PER_ARCHIVE = 100  # notebooks per downloaded .zip (collect's limit is 200 entries)

# (grade id of the answer, its solution, a wrong answer); each answer's test is worth POINTS[k]
ANSWERS = [
    ("mean", "def mean(xs):\n    return sum(xs) / len(xs)", "def mean(xs):\n    return 0"),
    ("normalize", "import numpy as np\n\ndef normalize(a):\n    a = np.asarray(a, dtype=float)\n"
                  "    return (a - a.mean()) / a.std()", "def normalize(a):\n    return a"),
    ("word_counts", "def word_counts(text):\n    counts = {}\n    for word in text.lower().split():\n"
                    "        counts[word] = counts.get(word, 0) + 1\n    return counts",
     "def word_counts(text):\n    return {}"),
]
TESTS = [
    'assert mean([1, 2, 3]) == 2\nassert mean([5]) == 5\n### BEGIN HIDDEN TESTS\nassert mean([-1, 1, 0.5]) == 0.5 / 3\n'
    '### END HIDDEN TESTS',
    "import numpy as np\nz = normalize([1.0, 2.0, 3.0, 4.0])\nassert abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9\n"
    "### BEGIN HIDDEN TESTS\nassert np.allclose(normalize(np.arange(10)).std(), 1)\n### END HIDDEN TESTS",
    'assert word_counts("a b a") == {"a": 2, "b": 1}\n### BEGIN HIDDEN TESTS\n'
    'assert word_counts("The the THE") == {"the": 3}\n### END HIDDEN TESTS',
]
POINTS = (2, 2, 1)
# kind -> which answers are right (the others: the released stub, or a wrong answer for "wrong-third")
KINDS = ("all", "first", "none", "wrong-third")
RIGHT = {"all": (0, 1, 2), "first": (0,), "none": (), "wrong-third": (0, 1)}


def kind(i: int) -> str:
    """The kind of work student ``i`` hands in."""
    return KINDS[i % len(KINDS)]


def expected_score(i: int) -> int:
    """What student ``i`` scores on :data:`SMALL_PART`."""
    return sum(POINTS[k] for k in RIGHT[kind(i)])


def student_id(i: int) -> str:
    """Student ``i``'s id (the same as :func:`instructor.testing.trivial_course`'s)."""
    return f"s{i:05d}"


def _source() -> nbformat.NotebookNode:
    def meta(gid: str, **kw) -> dict:
        base = {"grade": False, "solution": False, "locked": False, "task": False, "schema_version": 3}
        return {"nbgrader": {**base, "grade_id": gid, **kw}}

    v4 = nbformat.v4
    cells = [v4.new_markdown_cell("# Warm-up\n\nThree small functions, each checked by a test.")]
    for (gid, solution, _), test, points in zip(ANSWERS, TESTS, POINTS, strict=True):
        answer = f"### BEGIN SOLUTION\n{solution}\n### END SOLUTION"
        cells += [v4.new_code_cell(answer, metadata=meta(gid, solution=True)),
                  v4.new_code_cell(f'"""Check {gid} ({points} points)"""\n{test}',
                                   metadata=meta(f"test_{gid}", grade=True, locked=True, points=points))]
    return v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def make_course(folder: Path, config: str = "") -> Path:
    """A course (this repository's nbgrader_config.py plus ``config``) with :data:`SMALL_PART`
    and :data:`instructor.testing.TRIVIAL_PART` released, no submissions yet."""
    testing.trivial_course(folder, 0, config)
    path = folder / "solutions" / SMALL_PART / f"{SMALL_PART}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(_source(), path)
    run_nbgrader(["generate_assignment", SMALL_PART, "--force", "--log-level=WARN"], folder, check=True)
    return folder


def small_submission(released: nbformat.NotebookNode, i: int) -> nbformat.NotebookNode:
    """Student ``i``'s notebook of :data:`SMALL_PART`, as typed into the released one (not run)."""
    nb = nbformat.from_dict(released)
    answers = {gid: (right, wrong) for gid, right, wrong in ANSWERS}
    for cell in nb.cells:
        if is_answer_cell(cell):
            k = [gid for gid, *_ in ANSWERS].index(grade_id(cell))
            if k in RIGHT[kind(i)]:
                cell.source = answers[grade_id(cell)][0]
            elif kind(i) == "wrong-third":
                cell.source = answers[grade_id(cell)][1]
    return nb


def _archives(folder: Path, part: str, notebooks) -> int:
    """Write ``notebooks`` ((student, text) pairs) as downloads of ``part``: .zip archives of
    :data:`PER_ARCHIVE` files each. Returns the number of archives."""
    count, batch = 0, []

    def flush() -> None:
        nonlocal count, batch
        if batch:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for student, text in batch:
                    archive.writestr(f"submissions/{student}_{part}.ipynb", text)
            (folder / f"{part}-{count:04d}.zip").write_bytes(buffer.getvalue())
            count, batch = count + 1, []

    for item in notebooks:
        batch.append(item)
        if len(batch) == PER_ARCHIVE:
            flush()
    flush()
    return count


def downloads(course: Path, folder: Path, real: int, trivial: int) -> dict[str, dict[str, int]]:
    """``folder/<part>/``: the downloads of :data:`SMALL_PART` (students 0 .. real-1) and of the
    trivial part (students 0 .. trivial-1), as .zip archives. Returns {part: {"notebooks", "archives"}}."""
    out = {}
    small = nbformat.read(course / "notebooks" / SMALL_PART / f"{SMALL_PART}.ipynb", as_version=4)
    for part, n, make in (
            (SMALL_PART, real, lambda i: small_submission(small, i)),
            (testing.TRIVIAL_PART, trivial, lambda i: testing.trivial_submission(course, i))):
        where = folder / part
        where.mkdir(parents=True, exist_ok=True)
        made = ((student_id(i), nbformat.writes(make(i))) for i in range(n))
        out[part] = {"notebooks": n, "archives": _archives(where, part, made)}
    return out
