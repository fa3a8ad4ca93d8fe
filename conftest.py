"""Test-session setup shared by `pytest tests/` and `pytest --nbval solutions/`.

- Data: when COURSE_DATA is set (CI points it at real samples) the suite uses it;
  otherwise COURSE_DATA points at a temporary folder (before any kernel starts) where
  each fake data set (``tests/fakedata.py``) is built once, just before the first test
  that needs it. A test says what it needs: ``@pytest.mark.course_data("MNIST", ...)``
  names data sets, or parts (``course_data("02-neural-networks")``: what that part's
  notebook loads, from ``PART_DATA``), for a test that grades or runs a part. nbval's
  cells of ``solutions/<part>`` get ``PART_DATA[part]``. Tests of the fake data itself use
  the ``fake_data`` fixture.
- Kernels: a test that starts a notebook kernel (nbval's cells, grading, a notebook run, a
  Jupyter server) is marked ``kernel``: ``@pytest.mark.kernel``, or, for every test that uses
  it, a fixture that asks for the ``kernel`` fixture. ``make test-fast`` runs the rest, less
  tests marked ``slow`` (minutes of in-process training), and the one ``smoke`` grading
  (``-m "not (kernel or slow) or smoke"``).
- nbval bookkeeping: prints how many notebook cells had their outputs compared and
  how many were run with their output ignored.
- Side by side (``pytest -n 2``, what ``make test`` runs): pytest-xdist gives each worker
  whole files (``--dist loadfile``) so that a file's fixtures are built once; the workers
  share the fake data folder. Files go out the slowest first: by their time in the last run
  of whole files (kept in pytest's cache; a ``-m`` tier such as ``make test-fast``'s keeps its
  own), else files with ``slow`` tests, then files with kernel tests, then the rest.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from helper import datacheck
from instructor.course import existing_parts
from tests import fakedata

pytest_plugins = ["tests.services"]

PARTS = existing_parts()
# The data sets each part's notebook loads (what nbval on the solution, and grading the part,
# need): helper.datacheck's table, which the doctor reads too and tests/helper/test_datacheck.py
# keeps in step with the notebooks.
PART_DATA = datacheck.PART_DATA
# Set for pytest-xdist's workers: COURSE_DATA is the controller's fake data folder.
_FAKE_ENV = "COURSE_DATA_IS_FAKE"
# Seconds per test file in the last run, in pytest's cache (orders the next run's files); a run
# with -m (`make test-fast`'s tier) keeps its own: its files' times are those of its tests.
_FILE_SECONDS = "course/file-seconds"

_FAKE_DIR: Path | None = None
_OWN_FAKE_DIR = False
_NBVAL: dict[str, Counter] = defaultdict(Counter)
_NBVAL_SECONDS: dict[str, float] = defaultdict(float)
_FILE_TIMES: dict[str, float] = defaultdict(float)


def _share_the_cores(config) -> None:
    """In each of pytest-xdist's N test processes, torch computes on its share of the cores (at
    least one thread): by default each would use every core, and N of them on the same cores
    spend their time waiting on each other. Only this process changes; the kernels and workers it
    starts keep their own settings."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // workers))


def pytest_configure(config):
    """Point COURSE_DATA at real or (lazily built) fake data before any kernel starts."""
    global _FAKE_DIR, _OWN_FAKE_DIR
    missing = set(PARTS) - set(PART_DATA)
    if missing:
        raise pytest.UsageError(f"conftest.py: PART_DATA does not say which data {sorted(missing)} load")
    # Kernels started by nbval and nbgrader inherit this environment.
    # (MPLBACKEND is left alone: kernels must keep their inline backend, or nbval finds
    # the stored figures missing. Plain test processes have no display and use Agg.)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # A test that creates a gradebook with nbgrader's API has it read its schema version as the
    # course's commands do: in this process, not from a new `alembic` process (4 s).
    from instructor.course import schema_version_in_process

    schema_version_in_process()
    # Progress bars redraw at most once a second: fewer kernel messages on a busy machine.
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    _share_the_cores(config)
    if os.environ.get(_FAKE_ENV) == "1" and os.environ.get("COURSE_DATA"):
        _FAKE_DIR = Path(os.environ["COURSE_DATA"])  # a worker: the controller made it
    elif not os.environ.get("COURSE_DATA"):
        _FAKE_DIR = Path(tempfile.mkdtemp(prefix="course-fake-data-"))
        _OWN_FAKE_DIR = True
        os.environ["COURSE_DATA"] = str(_FAKE_DIR)
        os.environ[_FAKE_ENV] = "1"
    config.course_data = os.environ["COURSE_DATA"]


def pytest_unconfigure(config):
    """Remove the fake data folder."""
    if _OWN_FAKE_DIR:
        shutil.rmtree(_FAKE_DIR, ignore_errors=True)
        os.environ.pop(_FAKE_ENV, None)


def pytest_report_header(config):
    """Say which data the run uses."""
    kind = "fake data, built when first needed" if _FAKE_DIR is not None else "COURSE_DATA"
    return f"course data: {os.environ.get('COURSE_DATA')} [{kind}]"


def data_sets(*names: str) -> set[str]:
    """The data sets that ``names`` (data sets, or parts: what their notebooks load) stand for."""
    needed = set()
    for name in names:
        if name in PART_DATA:
            needed.update(PART_DATA[name])
        elif name in fakedata.DATASETS:
            needed.add(name)
        else:
            raise ValueError(f"course_data({name!r}): neither a data set ({', '.join(fakedata.DATASETS)}) "
                             "nor a part in PART_DATA")
    return needed


def _data_needed(item) -> set[str]:
    """The fake data sets ``item`` needs: its ``course_data`` markers, or its part's for nbval."""
    if _is_notebook_cell(item):
        return data_sets(Path(str(item.fspath)).parent.name)
    return data_sets(*(name for marker in item.iter_markers("course_data") for name in marker.args))


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


@pytest.fixture(scope="session")
def kernel() -> None:
    """Asked for by a test or fixture that starts notebook kernels: marks its tests ``kernel``."""


def _is_notebook_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


def _file(item) -> str:
    return item.nodeid.split("::")[0]


def _order(items, seconds: dict[str, float]):
    """Files (their tests kept together, in order) the slowest first: by ``seconds`` (the last
    run's), else marked ``slow``, else with kernel tests; collection order breaks ties."""
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(_file(item), []).append(item)

    def rank(path: str) -> tuple:
        tests = files[path]
        slow = any(t.get_closest_marker("slow") for t in tests)
        kernel = any(t.get_closest_marker("kernel") for t in tests)
        return (-seconds.get(path, 0.0), not slow, not kernel)

    return [item for path in sorted(files, key=rank) for item in files[path]]


def pytest_collection_modifyitems(session, config, items):
    """Mark kernel tests; the slowest files first; give nbval cells time to deliver output; note
    how nbval treats each cell (as a property of its report: with pytest -n, workers collect,
    the controller counts)."""
    for item in items:
        if _is_notebook_cell(item) or "kernel" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kernel)
    cache = getattr(config, "cache", None)
    seconds = cache.get(_seconds_key(config), {}) if cache is not None else {}
    items[:] = _order(items, seconds)
    for item in items:
        if not _is_notebook_cell(item):
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


def _whole_files(config) -> bool:
    """Whether this run took whole files, or their tests of one -m tier (no test ids, -k or --deselect)."""
    option = config.option
    return not (any("::" in arg for arg in config.args) or option.keyword or getattr(option, "deselect", None))


def _seconds_key(config) -> str:
    """The cache key of the file times of this run's tier: every test, or those of its -m expression."""
    tier = re.sub(r"\W+", "-", config.option.markexpr or "").strip("-")
    return f"{_FILE_SECONDS}-{tier}" if tier else _FILE_SECONDS


def pytest_sessionfinish(session, exitstatus):
    """Keep each file's time for the next run's order, when this run took whole files (a file
    not run keeps its time)."""
    config = session.config
    cache = getattr(config, "cache", None)
    if cache is None or not _FILE_TIMES or hasattr(config, "workerinput") or not _whole_files(config):
        return
    key = _seconds_key(config)
    kept = cache.get(key, {})
    kept.update({path: round(s, 1) for path, s in _FILE_TIMES.items()})
    cache.set(key, kept)


def pytest_runtest_logreport(report):
    """Per notebook: how nbval treated each cell, and the wall time: the sum of its cells'
    setup, run and teardown (kernel start included); and each file's time."""
    path, _, rest = report.nodeid.partition("::")
    _FILE_TIMES[path] += report.duration
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
