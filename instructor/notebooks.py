"""Course administration of the notebooks: stamping, executing solutions, releasing.

    python -m instructor stamp [NB ...]     Colab setup cell + embedded figures, in place
    python -m instructor execute NB [...]   re-run a solution and store its outputs
    python -m instructor release [PART]     stamp, then nbgrader generate_assignment

``release(course_dir, parts)`` is the one place ``nbgrader generate_assignment`` runs.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable
from pathlib import Path

import nbformat

from .course import PARTS, ROOT, part_notebook, run_nbgrader

SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
ASSETS = ROOT / "assets"


SETUP_MARK = "# Course setup"
# An asset reference written by an author: ![alt](assets/name.png); after stamping the
# image travels inside the notebook: ![alt](data:image/png;base64,... "assets/name.png")
_ASSET_REF = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?:\.\./)*assets/(?P<name>[\w.-]+\.png)\)")
_ASSET_EMBEDDED = re.compile(
    r'!\[(?P<alt>[^\]]*)\]\(data:image/png;base64,[A-Za-z0-9+/=]+ "assets/(?P<name>[\w.-]+\.png)"\)')
_EMBEDDED_DATA = re.compile(r'data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+) "assets/(?P<name>[\w.-]+\.png)"')
# pyproject.toml's [project.urls] Repository line (read with a regex: tomllib needs Python 3.11).
_REPOSITORY = re.compile(r'^\[project\.urls\]\s*$(?:\n(?!\[).*)*?\nRepository\s*=\s*"(?P<url>[^"]+)"', re.M)


def repo_url() -> str:
    """The repository address, written once in pyproject.toml's ``[project.urls]``."""
    match = _REPOSITORY.search((ROOT / "pyproject.toml").read_text())
    if match is None:
        raise LookupError("pyproject.toml has no `Repository = \"...\"` line under [project.urls]")
    return match["url"]


def colab_url(part: str) -> str:
    """The "Open in Colab" address of a part's student notebook on the main branch."""
    gh = repo_url().removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{gh}/blob/main/notebooks/{part}/{part}.ipynb"


def setup_source(part: str) -> str:
    """The first code cell of ``part``'s notebook: installs the course on Colab, nothing locally,
    then prints the part's expected time on this machine and whether its data is ready
    (``helper.doctor.part_line``: calibrated once a week; silent while nbgrader grades).

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
helper.data.install_offline_hint()
import helper.doctor
helper.doctor.part_line("{part}")  # this part's time on this machine, and whether its data is ready
# NBVAL_IGNORE_OUTPUT'''


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
    return [(m["name"], base64.b64decode(m["data"])) for m in _EMBEDDED_DATA.finditer(text)]


def nbval_marker(source: str) -> str | None:
    """The first ``# NBVAL_...`` marker comment in a cell's source (e.g. ``NBVAL_IGNORE_OUTPUT``), or None."""
    for line in source.splitlines():
        m = re.match(r"\s*#\s*(NBVAL_\w+)", line)
        if m:
            return m.group(1)
    return None


def stamp(nb: nbformat.NotebookNode, part: str) -> bool:
    """Bring ``part``'s notebook's setup cell and figures up to date; True if anything changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(SETUP_MARK) and cell.source != setup_source(part):
            cell.source, changed = setup_source(part), True
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
    """Stamp the notebook at ``path`` in place; True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    if stamp(nb, Path(path).stem):
        nbformat.write(nb, path)
        return True
    return False


# ---------------------------------------------------------------------------
# Executing solutions and releasing
# ---------------------------------------------------------------------------

def execute(path: Path, timeout: int = 900) -> None:
    """Run a solution notebook top to bottom in its folder and store the outputs."""
    from nbclient import NotebookClient

    # The kernel inherits this: no debugger warning about frozen modules in the outputs.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # no timestamps: they churn every diff
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=False,  # progress-bar state: 100s of KB, no use
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    nbformat.write(nb, path)


def release(course_dir: Path, parts: Iterable[str] | None = None) -> None:
    """Stamp each part's solution in ``course_dir/solutions``, then run ``nbgrader
    generate_assignment`` there: student notebooks in ``notebooks/``, tests and checksums in
    the course's gradebook. ``parts``: default every part that has a solution there.

    ``course_dir`` holds ``nbgrader_config.py`` and ``solutions/`` (this repository, or a
    throw-away copy of it). Raises ``subprocess.CalledProcessError`` when nbgrader fails.
    """
    course_dir = Path(course_dir)
    if parts is None:
        parts = [p for p, _ in PARTS if part_notebook(p, course=course_dir).exists()]
    parts = list(parts)
    for part in parts:
        stamp_file(part_notebook(part, course=course_dir))
    # nbgrader takes one assignment id, or a glob: every part at once when they are all the
    # folders in solutions/ (one nbgrader process, not one a part)
    folders = sorted(p.name for p in (course_dir / "solutions").iterdir()
                     if p.is_dir() and not p.name.startswith("."))
    for ids in (["*"] if len(parts) > 1 and sorted(parts) == folders else parts):
        run_nbgrader(["generate_assignment", ids, "--force", "--log-level=WARN"], course_dir, check=True)
