"""The course's vocabulary, written once: every other module and the tests say it this way.

    ROOT, PARTS, existing_parts(), part_notebook()     this repository and its eight parts
    submission_dir(), graded_dir()                      where a student's part lives in a course folder
    REPORT, JOURNAL, LOG_DIR, EXCHANGE_FILES            the files grading keeps beside them
    course_config(), db_url(), gradebook(), ...         the course's nbgrader configuration
    nbgrader_config()                                   a throw-away course's (the grading task's)
    is_test_cell(), is_answer_cell(), locked_ids()      which cells are which (nbgrader's metadata)
    read_regular_file(), write_atomically()             how anything a student made is read, and written
    write_csv(), html_table()                           how the reports write their tables
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the course repository: helper/ and solutions/ live here
COURSE_ID = "intro-pytorch"
PARTS = (
    ("01-tensors", "Tensors"),
    ("02-neural-networks", "Neural networks in PyTorch (MNIST)"),
    ("03-training", "Training neural networks"),
    ("04-fashion-mnist", "Classifying Fashion-MNIST"),
    ("05-inference-validation", "Inference and validation"),
    ("06-saving-loading", "Saving and loading models"),
    ("07-loading-image-data", "Loading image data"),
    ("08-transfer-learning", "Transfer learning"),
)
PART_NAMES = tuple(name for name, _ in PARTS)

LOG_DIR = ".logs"                 # under autograded/: one log per job (hidden from nbgrader's globs)
REPORT = "grading-report.csv"     # under autograded/: the outcome of every job graded so far
JOURNAL = ".journal.jsonl"        # under autograded/: one line per outcome, appended as it comes
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")  # what `nbgrader submit` puts beside a notebook
MAX_NOTEBOOK_BYTES = 64 * 2**20   # a notebook larger than this is refused


class GradingError(RuntimeError):
    """A problem with the course folder or the setup, not with a submission."""


# ---------------------------------------------------------------------------
# Parts and paths
# ---------------------------------------------------------------------------

def part_notebook(part: str, release: bool = False, course: Path = ROOT) -> Path:
    """``<course>/solutions/<part>/<part>.ipynb``, or under ``notebooks/`` when ``release``."""
    return course / ("notebooks" if release else "solutions") / part / f"{part}.ipynb"


def existing_parts(course: Path = ROOT) -> list[str]:
    """The known parts that have a solution notebook in ``course``, in course order."""
    return [p for p in PART_NAMES if part_notebook(p, course=course).exists()]


def submission_dir(course: Path, student: str, part: str) -> Path:
    """``<course>/submitted/<student>/<part>``: one submission (notebook, timestamp)."""
    return Path(course) / "submitted" / student / part


def graded_dir(course: Path, student: str, part: str) -> Path:
    """``<course>/autograded/<student>/<part>``: the graded notebook of one submission."""
    return Path(course) / "autograded" / student / part


def notebook_in(folder: Path, part: str) -> Path:
    """The part's notebook in a submission or graded folder: ``<folder>/<part>.ipynb``."""
    return folder / f"{part}.ipynb"


# ---------------------------------------------------------------------------
# The course's nbgrader configuration and gradebook
# ---------------------------------------------------------------------------

def check_course(course: Path) -> Path:
    """The course folder, resolved; GradingError unless it holds nbgrader_config.py."""
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").exists():
        raise GradingError(f"{course} has no nbgrader_config.py: run this in the course folder")
    return course


def course_config(course: Path):
    """The course's nbgrader_config.py as a traitlets Config (empty if it cannot be read)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    try:
        return PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    except Exception:  # noqa: BLE001 - a broken config is reported by nbgrader itself
        return Config()


def configured_timeout(course: Path) -> int | None:
    """``c.Execute.timeout`` from the course's nbgrader_config.py, if set."""
    value = course_config(course).get("Execute", {}).get("timeout")
    return int(value) if isinstance(value, int) else None


def db_url(course: Path) -> str:
    """``c.CourseDirectory.db_url`` if the course sets one (a server database), else nbgrader's
    default SQLite file in the course folder."""
    value = course_config(course).get("CourseDirectory", {}).get("db_url")
    return value if isinstance(value, str) and value else f"sqlite:///{Path(course) / 'gradebook.db'}"


def nbgrader_config(course: Path, part: str, student: str | None = None):
    """The configuration of a throw-away course (the grading task's): its gradebook is
    ``course/gradebook.db``, its folders nbgrader's defaults, ``part`` the assignment."""
    from traitlets.config import Config

    cfg = Config()
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.course_id = COURSE_ID
    for name in ("source", "release", "submitted", "autograded"):
        setattr(cfg.CourseDirectory, f"{name}_directory", name)
    cfg.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    cfg.CourseDirectory.assignment_id = part
    cfg.CourseDirectory.include = ["*.ipynb"]
    if student:
        cfg.CourseDirectory.student_id = student
    return cfg


def nbgrader_env(extra: dict | None = None) -> dict:
    """The environment for nbgrader: this venv's tools (nbgrader runs `alembic`) first on PATH,
    and this repository importable (for ``instructor.*`` preprocessors)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.update(extra or {})
    return env


def schema_version_in_process() -> None:
    """nbgrader, creating a gradebook, asks a new ``alembic`` process for the newest revision of
    its schema: 4 s each time. This has nbgrader read it here (alembic's ScriptDirectory, the
    same files), which takes milliseconds; the answer is the same (tests/instructor/test_course.py)."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = _schema_head


def _schema_head() -> str:
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


# nbgrader's command as `python -m nbgrader` starts it, after this package (see its __init__) and
# with schema_version_in_process: 1.5 s less for each call, 4 s more for one that creates a gradebook
NBGRADER = ("import instructor.course, runpy; instructor.course.schema_version_in_process(); "
            "runpy.run_module('nbgrader', run_name='__main__', alter_sys=True)")


def run_nbgrader(args: list[str], course: Path, **kwargs) -> subprocess.CompletedProcess:
    """``python -m nbgrader ARGS`` in ``course`` with :func:`nbgrader_env` (kwargs go to
    subprocess.run), started as :data:`NBGRADER` says."""
    return subprocess.run([sys.executable, "-c", NBGRADER, *args], cwd=course,
                          env=nbgrader_env(kwargs.pop("env", None)), **kwargs)


@contextmanager
def gradebook(course: Path):
    """nbgrader's Gradebook for the course. Only the grading coordinator writes it."""
    from nbgrader.api import Gradebook

    schema_version_in_process()  # nbgrader would ask a new `alembic` process when it creates one
    with Gradebook(db_url(course)) as gb:
        yield gb


def gradebook_file(course: Path) -> Path | None:
    """The SQLite gradebook file of the course, or None when it uses a server database."""
    url = db_url(course)
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def released_parts(course: Path) -> list[str]:
    """Parts known to the gradebook, i.e. released with ``nbgrader generate_assignment``."""
    file = gradebook_file(course)
    if file is not None and not file.exists():
        return []
    with gradebook(course) as gb:
        return sorted(a.name for a in gb.assignments)


# ---------------------------------------------------------------------------
# Cells: nbgrader's metadata says which is which
# ---------------------------------------------------------------------------

def nbgrader_meta(cell) -> dict:
    """The cell's ``nbgrader`` metadata ({} for an ordinary cell)."""
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def grade_id(cell) -> str | None:
    """The cell's nbgrader grade id, if it has one."""
    return nbgrader_meta(cell).get("grade_id")


def is_answer_cell(cell) -> bool:
    """A cell the learner writes (nbgrader: ``solution``)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test_cell(cell) -> bool:
    """A graded test: a code cell worth points that is not an answer."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_locked(cell) -> bool:
    """nbgrader's rule (nbgrader.utils.is_locked): answer cells never, test cells always."""
    meta = nbgrader_meta(cell)
    if meta.get("solution"):
        return False
    return bool(meta.get("grade") or meta.get("locked"))


def locked_ids(nb) -> set[str]:
    """Grade ids of the cells learners cannot change (nbgrader restores them before grading).
    Take them from the instructor's notebook (solutions/ or the gradebook), or from a submission
    after nbgrader's OverwriteCells has run."""
    return {grade_id(c) for c in nb.cells if grade_id(c) and is_locked(c)}


def metadata_problem(nb) -> str | None:
    """One sentence on what makes a submission's nbgrader metadata ungradable, or None: two cells
    that claim one grade id (a copied cell keeps its metadata), an nbgrader cell without an id."""
    seen: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if not (meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task")):
            continue
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or not gid:
            return f"cell {i} is marked as an nbgrader cell but has no grade id (its metadata was edited)"
        if gid in seen:
            return (f"two cells claim the id {gid}: cell {seen[gid]} and cell {i} (a copied cell keeps its "
                    "metadata: delete the copy, or grade the notebook after removing it)")
        seen[gid] = i
    return None


def editable_cells(nb, locked: set[str] | Mapping[str, str]) -> list[int]:
    """Indices of the code cells a learner could have written: every code cell but the first
    with each ``locked`` id (nbgrader runs the instructor's source there; with a
    ``{grade_id: source}`` mapping, such a cell counts when its source was changed)."""
    seen: set[str] = set()
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        gid = grade_id(cell)
        if gid in locked and gid not in seen:
            seen.add(gid)
            if not isinstance(locked, Mapping) or cell.source == locked[gid]:
                continue
        out.append(i)
    return out


# ---------------------------------------------------------------------------
# Reading what a student made
# ---------------------------------------------------------------------------

def read_regular_file(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a link, FIFO or device) of at most ``limit``."""
    if stat.S_ISLNK(os.lstat(path).st_mode):
        raise OSError(f"{path.name} is a symbolic link, not a regular file: never followed")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path.name} is {info.st_size:,} bytes (limit {limit:,})")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def append_json_lines(path: Path, rows: list[dict]) -> None:
    """One JSON line per row at the end of ``path``, in one write flushed to disk: a crash cuts at
    most the last line short, and a new line is never glued to one cut short."""
    lines = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    with open(path, "ab+") as f:
        end = f.seek(0, os.SEEK_END)
        if end and (f.seek(end - 1), f.read(1))[1] != b"\n":
            lines = b"\n" + lines
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())


def read_json_lines(path: Path):
    """The JSON objects of ``path``, one a line, in order (none if it does not exist); a line
    cut short by a crash, or not an object, is skipped."""
    if not Path(path).exists():
        return
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            yield row


def write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or what it held before, never a part: a temporary file beside it, renamed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def one_line(text, limit: int = 300) -> str:
    """``text`` on one line of at most ``limit`` characters (for reasons and reports)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def usable_student_id(student: str) -> bool:
    """Whether a folder name can be a student id (nbgrader globs with it: no ``*``, no leading - or .)."""
    return student.isprintable() and not re.search(r"[*?\[\]/\\]|^[-.]", student)


def write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    """``rows`` (dicts) as a CSV file with a header."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def html_table(rows: list[dict], fields: list[str], limit: int | None = None, escape: bool = True) -> str:
    """``rows`` as an HTML table: the first ``limit`` of them and how many more the CSV file has;
    cells escaped unless ``escape`` is False (rows that hold their own links)."""
    if not rows:
        return "<p class='none'>none</p>"
    cell = (lambda value: html.escape(str(value))) if escape else str
    head = "".join(f"<th>{html.escape(f)}</th>" for f in fields)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(f, ''))}</td>" for f in fields) + "</tr>" for r in rows[:limit])
    more = f"<p class='none'>{len(rows) - limit} more in the CSV file</p>" if limit and len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"
