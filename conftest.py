"""Test-session setup shared by `pytest tests/` and `pytest --nbval solutions/`.

- Data: when COURSE_DATA is set (CI points it at real samples) the suite uses it;
  otherwise COURSE_DATA points at a temporary folder (before any kernel starts) where
  each fake data set (``tests/fakedata.py``) is built once, just before the first test
  that needs it: a notebook that loads it, a test file that names it, or a test that
  grades notebooks of parts that load it. ``@pytest.mark.course_data("MNIST", ...)``
  says so explicitly. Tests of the fake data itself use the ``fake_data`` fixture.
- nbval bookkeeping: prints how many notebook cells had their outputs compared and
  how many were run with their output ignored.
- Side by side (``pytest -n 2``, what ``make test`` runs): pytest-xdist gives each worker
  whole files (``--dist loadfile``), the slowest first (``SLOWEST_FIRST``), so that a file's
  fixtures are built once; the workers share the fake data folder.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from instructor.course import ROOT, existing_parts
from tests import fakedata

pytest_plugins = ["tests.services"]

PARTS = existing_parts()
# Test files that grade notebooks (of the parts they name, or of every part).
_GRADES_NOTEBOOKS = ("make_course", "autograde")

# The slowest files first (measured), so that two workers finish close together; the rest
# follow in collection order.
SLOWEST_FIRST = ("tests/instructor/test_coordinator.py", "tests/instructor/test_coordinator_cluster.py",
                 "tests/instructor/test_tasks.py", "tests/instructor/test_integrity.py",
                 "solutions/08-transfer-learning", "tests/instructor/test_notebooks.py",
                 "tests/workflow/test_browser.py", "tests/workflow/test_exchange.py",
                 "tests/workflow/test_instructor_workflow.py", "tests/workflow/test_unprivileged.py",
                 "solutions/07-loading-image-data", "tests/instructor/test_benchmark.py",
                 "tests/workflow/test_services.py")
# Set for pytest-xdist's workers: COURSE_DATA is the controller's fake data folder.
_FAKE_ENV = "COURSE_DATA_IS_FAKE"

_FAKE_DIR: Path | None = None
_OWN_FAKE_DIR = False
_NBVAL: dict[str, Counter] = defaultdict(Counter)
_NBVAL_SECONDS: dict[str, float] = defaultdict(float)


def pytest_configure(config):
    """Point COURSE_DATA at real or (lazily built) fake data before any kernel starts."""
    global _FAKE_DIR, _OWN_FAKE_DIR
    # Kernels started by nbval and nbgrader inherit this environment.
    # (MPLBACKEND is left alone: kernels must keep their inline backend, or nbval finds
    # the stored figures missing. Plain test processes have no display and use Agg.)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # Progress bars redraw at most once a second: fewer kernel messages on a busy machine.
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    if os.environ.get(_FAKE_ENV) == "1" and os.environ.get("COURSE_DATA"):
        _FAKE_DIR = Path(os.environ["COURSE_DATA"])  # a worker: the controller made it
    elif not os.environ.get("COURSE_DATA"):
        _FAKE_DIR = Path(tempfile.mkdtemp(prefix="course-fake-data-"))
        _OWN_FAKE_DIR = True
        os.environ["COURSE_DATA"] = str(_FAKE_DIR)
        os.environ[_FAKE_ENV] = "1"
    config.course_data = os.environ["COURSE_DATA"]
    config.addinivalue_line("markers", "course_data(*names): the fake data sets a test needs "
                            f"({', '.join(fakedata.DATASETS)}) when COURSE_DATA is not set")


def pytest_unconfigure(config):
    """Remove the fake data folder."""
    if _OWN_FAKE_DIR:
        shutil.rmtree(_FAKE_DIR, ignore_errors=True)
        os.environ.pop(_FAKE_ENV, None)


def pytest_report_header(config):
    """Say which data the run uses."""
    kind = "fake data, built when first needed" if _FAKE_DIR is not None else "COURSE_DATA"
    return f"course data: {os.environ.get('COURSE_DATA')} [{kind}]"


@functools.cache
def _source(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _data_needed(item) -> set[str]:
    """The fake data sets ``item`` needs (see the module docstring)."""
    path = Path(str(item.fspath))
    marker = item.get_closest_marker("course_data")
    if marker is not None:
        return set(marker.args)
    if path.suffix == ".ipynb":
        return fakedata.needed_by(_source(path))
    text = _source(path)
    params = getattr(getattr(item, "callspec", None), "params", {})
    needed = fakedata.needed_by(text)
    if not any(word in text for word in _GRADES_NOTEBOOKS):
        return needed
    parts = {p for p in PARTS if p in text or p in map(str, params.values())} or set(PARTS)
    if "graded_class" in getattr(item, "fixturenames", ()):  # every part, whichever test builds it
        parts = set(PARTS)
    for part in parts:
        needed |= fakedata.needed_by(_source(ROOT / "solutions" / part / f"{part}.ipynb"))
    return needed


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Build the fake data sets this test needs (each once per run) before its fixtures run."""
    if _FAKE_DIR is not None:
        for name in sorted(_data_needed(item)):
            fakedata.ensure(_FAKE_DIR, name)


@pytest.fixture(scope="session")
def fake_data(tmp_path_factory) -> Callable[[str], Path]:
    """``fake_data(name)``: a folder holding fake data set ``name``, built once per run.

    The run's own fake folder when COURSE_DATA is not set, else a temporary one: tests of
    the fake data need it even when the course runs on real data.
    """
    root = _FAKE_DIR or tmp_path_factory.mktemp("fake-data")
    return lambda name: fakedata.ensure(root, name)


def _rank(item) -> int:
    path = item.nodeid.split("::")[0]
    return next((i for i, slow in enumerate(SLOWEST_FIRST) if path.startswith(slow)), len(SLOWEST_FIRST))


def pytest_collection_modifyitems(session, config, items):
    """The slowest files first; give nbval cells time to deliver output; note how nbval treats
    each cell (as a property of its report: with pytest -n, workers collect, the controller counts)."""
    items.sort(key=_rank)  # stable: a file's tests keep their order
    for item in items:
        if type(item).__name__ != "IPyNbCell":
            continue
        # nbval waits only 5 s for a finished cell's queued output messages; on a loaded
        # 2-core machine a cell with progress bars can take longer to deliver them.
        item.output_timeout = 60
        options = item.options
        if options.get("check_exception"):
            kind = "raises"
        elif options.get("check"):
            kind = "compared"
        else:
            kind = "ignored"
        item.user_properties.append(("nbval", kind))


def pytest_runtest_logreport(report):
    """Per notebook: how nbval treated each cell, and the wall time: the sum of its cells'
    setup, run and teardown (kernel start included)."""
    path, _, rest = report.nodeid.partition("::")
    if not path.endswith(".ipynb"):
        return
    name = Path(path).name
    _NBVAL_SECONDS[name] += report.duration
    if report.when == "setup":
        _NBVAL[name].update(value for key, value in report.user_properties if key == "nbval")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Per notebook: cells compared, ignored and failing on purpose, and wall time."""
    if not _NBVAL:
        return
    tr = terminalreporter
    tr.section("nbval: notebook cells")
    total = Counter()
    for name in sorted(_NBVAL):
        c = _NBVAL[name]
        total.update(c)
        tr.write_line(f"{name:40} compared {c['compared']:3}  ignored {c['ignored']:3}  "
                      f"raises {c['raises']:2}  {_NBVAL_SECONDS[name]:6.1f} s")
    tr.write_line(f"{'all notebooks':40} compared {total['compared']:3}  ignored {total['ignored']:3}  "
                  f"raises {total['raises']:2}  {sum(_NBVAL_SECONDS.values()):6.1f} s")
