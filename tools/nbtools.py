"""Maintainer tools for the course notebooks (not part of the learner's `helper` package).

    python -m tools.nbtools stamp [NB ...]     Colab setup cell + embedded figures, in place
    python -m tools.nbtools execute NB [...]   re-run a solution and store its outputs
    python -m tools.nbtools release [PART]     stamp, then nbgrader generate_assignment
    python -m tools.nbtools stats [NB ...]     cells compared vs ignored by nbval
    python -m tools.nbtools colab-links        README "Open in Colab" table rows

Building blocks for writing notebooks (``md``, ``code``, ``answer``, ``tests``) give
cells with the nbgrader metadata the course uses.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
ASSETS = ROOT / "assets"

PARTS = [
    ("01-tensors", "Tensors"),
    ("02-neural-networks", "Neural networks in PyTorch (MNIST)"),
    ("03-training", "Training neural networks"),
    ("04-fashion-mnist", "Classifying Fashion-MNIST"),
    ("05-inference-validation", "Inference and validation"),
    ("06-saving-loading", "Saving and loading models"),
    ("07-loading-image-data", "Loading image data"),
    ("08-transfer-learning", "Transfer learning"),
]

SETUP_MARK = "# Course setup"
# An asset reference written by an author: ![alt](assets/name.png); after stamping the
# image travels inside the notebook: ![alt](data:image/png;base64,... "assets/name.png")
_ASSET_REF = re.compile(r'!\[(?P<alt>[^\]]*)\]\((?:\.\./)*assets/(?P<name>[\w.-]+\.png)\)')
_ASSET_EMBEDDED = re.compile(
    r'!\[(?P<alt>[^\]]*)\]\(data:image/png;base64,[A-Za-z0-9+/=]+ "assets/(?P<name>[\w.-]+\.png)"\)')


def repo_url() -> str:
    """The repository address, written once in pyproject.toml's [project.urls]."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


def part_notebook(part: str, release: bool = False) -> Path:
    return (NOTEBOOKS if release else SOLUTIONS) / part / f"{part}.ipynb"


def colab_url(part: str) -> str:
    gh = repo_url().removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{gh}/blob/main/notebooks/{part}/{part}.ipynb"


def setup_source() -> str:
    """The first code cell of every notebook: installs the course on Colab, nothing locally.

    On Colab, ``USE_DRIVE = True`` (a checkbox there) mounts Google Drive and keeps the data
    and checkpoints in it (``helper.colab.use_drive``); everywhere else the flag changes nothing.
    """
    return f'''{SETUP_MARK}: on Colab this installs the course's helper package; locally it does nothing.
# On Colab, tick USE_DRIVE to keep the data and your checkpoints in Google Drive across sessions.
USE_DRIVE = False  # @param {{type:"boolean"}}
import sys

if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "intro-pytorch @ git+{repo_url()}"], check=True)
try:
    import helper.colab
except ImportError as exc:
    raise ImportError("The course's helper package is not installed: run `make install` "
                      "(or `pip install -e .`) in the course folder, then restart the kernel.") from exc
helper.colab.use_drive(USE_DRIVE)  # before helper.data reads the data root
import helper.data
helper.data.install_offline_hint()'''


# ---------------------------------------------------------------------------
# Cell builders
# ---------------------------------------------------------------------------

def _nbgrader(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked,
            "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(src: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(src.strip("\n"))


def setup_cell() -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(setup_source(), metadata=_nbgrader("setup", locked=True))


def answer(grade_id: str, src: str) -> nbformat.NotebookNode:
    """An autograded answer cell; ``src`` holds ### BEGIN SOLUTION / ### END SOLUTION."""
    if "### BEGIN SOLUTION" not in src:
        raise ValueError(f"answer cell {grade_id} has no ### BEGIN SOLUTION block")
    return nbformat.v4.new_code_cell(src.strip("\n"), metadata=_nbgrader(grade_id, solution=True))


def tests(grade_id: str, points: int, src: str) -> nbformat.NotebookNode:
    """A locked test cell worth ``points``; ``src`` opens with a one-line docstring."""
    if not src.lstrip().startswith('"""'):
        raise ValueError(f"test cell {grade_id} should open with a one-line docstring")
    return nbformat.v4.new_code_cell(
        src.strip("\n"), metadata=_nbgrader(grade_id, grade=True, locked=True, points=points))


def new_notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=list(cells))
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


# ---------------------------------------------------------------------------
# Stamping: setup cell and embedded figures
# ---------------------------------------------------------------------------

def _embed(match: re.Match) -> str:
    name = match["name"]
    path = ASSETS / name
    if not path.exists():
        raise FileNotFoundError(f"figure {name} is referenced but assets/{name} does not exist "
                                "(run `make assets`)")
    data = base64.b64encode(path.read_bytes()).decode()
    return f'![{match["alt"]}](data:image/png;base64,{data} "assets/{name}")'


def embed_figures(text: str) -> str:
    """Put assets/*.png inside markdown as data URIs (they render in JupyterLab, Colab and
    nbgrader's feedback HTML, where relative paths may not resolve)."""
    text = _ASSET_EMBEDDED.sub(_embed, text)
    return _ASSET_REF.sub(_embed, text)


def embedded_figures(text: str) -> list[tuple[str, bytes]]:
    """(asset name, embedded PNG bytes) for each figure embedded in ``text``."""
    pattern = re.compile(r'data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+) "assets/(?P<name>[\w.-]+\.png)"')
    return [(m["name"], base64.b64decode(m["data"])) for m in pattern.finditer(text)]


def stamp(nb: nbformat.NotebookNode) -> bool:
    """Bring a notebook's setup cell and figures up to date; True if anything changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(SETUP_MARK):
            if cell.source != setup_source():
                cell.source, changed = setup_source(), True
        if cell.cell_type == "code" and nbval_marker(cell.source) == "NBVAL_RAISES_EXCEPTION":
            # The tag lets JupyterLab's "Run All" (and nbclient) go on past a cell that
            # fails on purpose; the comment tells nbval, and the learner, that it should.
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")
                changed = True
        elif cell.cell_type == "markdown":
            new = embed_figures(cell.source)
            if new != cell.source:
                cell.source, changed = new, True
    return changed


def stamp_file(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    if stamp(nb):
        nbformat.write(nb, path)
        return True
    return False


# ---------------------------------------------------------------------------
# Executing solutions, statistics, release
# ---------------------------------------------------------------------------

def execute(path: Path, timeout: int = 900) -> None:
    """Run a solution notebook top to bottom in its folder and store the outputs."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # no timestamps: they churn every diff
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=False,  # progress-bar state: 100s of KB, no use
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nbformat.write(nb, path)


def nbval_marker(source: str) -> str | None:
    for line in source.splitlines():
        m = re.match(r"\s*#\s*(NBVAL_\w+)", line)
        if m:
            return m.group(1)
    return None


def cell_stats(path: Path) -> dict[str, int]:
    """How nbval will treat a notebook's code cells: compared, output ignored, skipped, raises."""
    nb = nbformat.read(path, as_version=4)
    stats = {"compared": 0, "ignored": 0, "skipped": 0, "raises": 0}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        marker = nbval_marker(cell.source)
        key = {"NBVAL_IGNORE_OUTPUT": "ignored", "NBVAL_SKIP": "skipped",
               "NBVAL_RAISES_EXCEPTION": "raises"}.get(marker, "compared")
        stats[key] += 1
    return stats


def existing_parts() -> list[str]:
    return [p for p, _ in PARTS if part_notebook(p).exists()]


def release(parts: list[str]) -> None:
    """Stamp the solutions, then let nbgrader generate the student notebooks."""
    for part in parts:
        stamp_file(part_notebook(part))
        run_nbgrader(["generate_assignment", part, "--force", "--log-level=WARN"], cwd=ROOT)


def run_nbgrader(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    """nbgrader from this environment (the instructor tooling's runner); fails loudly by default."""
    from instructor.grading import run_nbgrader as run

    kwargs.setdefault("check", True)
    return run(args, Path(cwd), **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.nbtools")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("stamp", "stats"):
        p = sub.add_parser(name)
        p.add_argument("notebooks", nargs="*", type=Path)
    p = sub.add_parser("execute")
    p.add_argument("notebooks", nargs="+", type=Path)
    p = sub.add_parser("release")
    p.add_argument("part", nargs="?", default="")
    sub.add_parser("colab-links")
    args = parser.parse_args(argv)

    default_nbs = [part_notebook(p) for p in existing_parts()]
    if args.cmd == "stamp":
        for path in args.notebooks or default_nbs:
            print(f"{path}: {'updated' if stamp_file(path) else 'up to date'}")
    elif args.cmd == "stats":
        for path in args.notebooks or default_nbs:
            print(path, cell_stats(path))
    elif args.cmd == "execute":
        for path in args.notebooks:
            stamp_file(path)
            execute(path)
            print(f"executed {path}")
    elif args.cmd == "release":
        parts = [args.part] if args.part else existing_parts()
        unknown = [p for p in parts if p not in dict(PARTS)]
        if unknown:
            parser.error(f"unknown part {unknown[0]!r}; parts are: {', '.join(p for p, _ in PARTS)}")
        release(parts)
    elif args.cmd == "colab-links":
        for part, title in PARTS:
            print(f"| {part} | {title} | [Open in Colab]({colab_url(part)}) |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    sys.exit(main())
