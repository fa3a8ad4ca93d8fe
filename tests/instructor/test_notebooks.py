"""The notebooks as files: course map, release sync, no leaks, exercise structure,
setup cells, figures and stored outputs. (Executing them is nbval's job.)"""

import base64
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from instructor import notebooks
from instructor.course import PART_NAMES, ROOT, existing_parts, part_notebook

PARTS = existing_parts()
BLOCKS = [("### BEGIN SOLUTION", "### END SOLUTION"), ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")]
MIN_EXERCISES = {"01-tensors": 4}  # every other part: 3


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def grade_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def test_parts_exist_in_order_and_match_the_folders():
    on_disk = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(PART_NAMES)
    assert on_disk == PARTS, "every folder in solutions/ must be a known part, and vice versa"
    assert all(re.fullmatch(r"0[1-8]-[a-z]+(-[a-z]+)*", p) for p in names)
    assert names == sorted(names)
    assert PARTS, "no parts found"
    for part in PARTS:
        assert part_notebook(part).exists()
        assert [f.name for f in (ROOT / "solutions" / part).iterdir() if f.suffix == ".ipynb"] == [f"{part}.ipynb"]


def test_readme_course_map_lists_every_part_in_order_with_colab_links():
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| \[?`?(0[1-8]-[a-z-]+)", readme, flags=re.M)
    assert listed == list(PART_NAMES), "README course map must list all eight parts in order"
    for part in PARTS:
        assert notebooks.colab_url(part) in readme, f"README lacks the Open in Colab link for {part}"
        assert (ROOT / "notebooks" / part / f"{part}.ipynb").exists(), f"README links a missing notebook {part}"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """Run nbgrader's release on a copy of the course; returns the new release folder."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    notebooks.release(course, PARTS)
    return course / "notebooks"


@pytest.mark.parametrize("part", PARTS)
def test_release_in_sync(regenerated, part):
    """`make release` reproduces the committed student notebook exactly."""
    committed = read(part_notebook(part, release=True))
    fresh = read(regenerated / part / f"{part}.ipynb")
    assert fresh == committed, f"notebooks/{part} is stale: run `make release PART={part}` and commit"


def _block_lines(source: str) -> tuple[set[str], set[str]]:
    """(lines inside solution/hidden-test blocks, lines outside them), stripped, non-empty."""
    inside, outside, depth = set(), set(), 0
    for line in source.splitlines():
        s = line.strip()
        if any(s == begin for begin, _ in BLOCKS):
            depth += 1
        elif any(s == end for _, end in BLOCKS):
            depth -= 1
        elif s:
            (inside if depth else outside).add(s)
    return inside, outside


@pytest.mark.parametrize("part", PARTS)
def test_no_solution_or_hidden_test_leaks(part):
    source = read(part_notebook(part))
    inside, outside = set(), set()
    for cell in source.cells:
        i, o = _block_lines(cell.source)
        inside |= i
        outside |= o
    secret = inside - outside  # lines a learner may legitimately see elsewhere are fine
    released = read(part_notebook(part, release=True))
    for cell in released.cells:
        assert "BEGIN SOLUTION" not in cell.source and "HIDDEN TESTS" not in cell.source
        for line in cell.source.splitlines():
            assert line.strip() not in secret, f"{part}: leaked line {line.strip()!r}"
        assert not cell.get("outputs"), f"{part}: student notebooks are released without outputs"


@pytest.mark.parametrize("part", PARTS)
def test_exercise_structure(part):
    nb = read(part_notebook(part))
    cells = code_cells(nb)
    answers = [i for i, c in enumerate(cells) if grade_meta(c).get("solution")]
    assert len(answers) >= MIN_EXERCISES.get(part, 3), f"{part} needs more graded exercises"
    ids = [grade_meta(c)["grade_id"] for c in cells if grade_meta(c)]
    assert len(ids) == len(set(ids)), f"{part}: duplicate grade ids"
    for i in answers:
        answer, test = cells[i], cells[i + 1]
        gid = grade_meta(answer)["grade_id"]
        assert "### BEGIN SOLUTION" in answer.source and "### END SOLUTION" in answer.source
        meta = grade_meta(test)
        assert meta.get("grade") and meta.get("locked") and meta.get("points", 0) > 0, \
            f"{part}: the cell after answer {gid} must be a locked test cell with points"
        assert re.match(r'"""[^\n]+"""\n', test.source), f"{part}: test for {gid} opens with a one-line docstring"
        visible = test.source.split("### BEGIN HIDDEN TESTS")[0]
        assert re.search(r"assert .+, ", visible), f"{part}: test for {gid} needs visible asserts with messages"
        assert "### BEGIN HIDDEN TESTS" in test.source, f"{part}: test for {gid} has no hidden tests"


@pytest.mark.parametrize("part", PARTS)
def test_setup_cell_summary_and_no_dead_apis(part):
    nb = read(part_notebook(part))
    first_code = code_cells(nb)[0]
    assert first_code.source == notebooks.setup_source(part), f"{part}: run `make release` to stamp the setup cell"
    assert notebooks.repo_url() in first_code.source
    assert nb.metadata.kernelspec.name == "python3"
    tail = "\n".join(c.source for c in nb.cells[-3:] if c.cell_type == "markdown")
    assert "## Summary" in tail and "Going further" in tail, f"{part} must end with Summary and Going further"
    everything = "\n".join(c.source for c in nb.cells)
    for dead in ("dataiter.next()", ".next()", "pretrained=True", "Variable(", "box-forced", "resize_(1, 28, 28)"):
        assert dead not in everything, f"{part} uses {dead!r}"


@pytest.mark.parametrize("part", PARTS)
def test_figures_are_embedded_and_current(part):
    nb = read(part_notebook(part))
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        # Relative paths don't resolve on Colab or in nbgrader's feedback: everything embedded.
        assert not re.search(r"!\[[^\]]*\]\((?!data:)", cell.source), f"{part}: image not embedded"
        assert not re.search(r"<img[^>]+src=\"(?!data:)", cell.source), f"{part}: image not embedded"
        for name, data in notebooks.embedded_figures(cell.source):
            assert data == (ROOT / "assets" / name).read_bytes(), \
                f"{part}: figure {name} differs from assets/{name}: run `make assets`"


@pytest.mark.parametrize("part", PARTS)
def test_solutions_are_stored_executed_and_warning_free(part):
    nb = read(part_notebook(part))
    for i, cell in enumerate(code_cells(nb)):
        skipped = "nbval-skip" in cell.metadata.get("tags", []) or notebooks.nbval_marker(cell.source) == "NBVAL_SKIP"
        assert not skipped, f"{part} code cell {i} is skipped by nbval: every solution cell must run"
        assert cell.execution_count is not None, f"{part} code cell {i} has no stored output: `make outputs`"
        for out in cell.outputs:
            text = out.get("text", "") if out.output_type == "stream" else ""
            assert "Warning" not in text, f"{part} code cell {i} printed a warning: {text[:200]}"
            if out.output_type == "error":
                assert "raises-exception" in cell.metadata.get("tags", []), \
                    f"{part} code cell {i} fails but has no raises-exception tag"
    counts = [c.execution_count for c in code_cells(nb) if c.execution_count is not None]
    assert counts == sorted(counts), f"{part} was not executed top to bottom"


def figures(path: Path) -> list[tuple[str, bytes]]:
    """(asset name, PNG bytes) of every figure embedded in a notebook's markdown."""
    return [f for c in read(path).cells if c.cell_type == "markdown" for f in notebooks.embedded_figures(c.source)]


FIGURE_PARTS = [p for p in PARTS if figures(part_notebook(p, release=True))]


def test_some_parts_have_figures():
    assert FIGURE_PARTS, "no student notebook embeds a figure from assets/: the rendering test would check nothing"


@pytest.mark.parametrize("part", FIGURE_PARTS)
def test_figures_render_in_feedback_html(part):
    """nbgrader's feedback is nbconvert HTML: every embedded figure must become an <img>."""
    from nbconvert import HTMLExporter

    path = part_notebook(part, release=True)
    embedded = figures(path)
    html, _ = HTMLExporter().from_notebook_node(read(path))
    rendered = set(re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)', html))
    assert embedded, f"{part}: no figures found"
    for name, data in embedded:
        assert base64.b64encode(data).decode() in rendered, f"{part}: figure {name} is not rendered as an <img>"
