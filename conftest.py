"""Test-session setup shared by `pytest tests/` and `pytest --nbval solutions/`.

- Data: when COURSE_DATA is set (CI points it at real samples) the suite uses it;
  otherwise it generates small fake data sets into a temporary folder and points
  COURSE_DATA there, before any notebook kernel starts.
- nbval bookkeeping: prints how many notebook cells had their outputs compared and
  how many were run with their output ignored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

_FAKE_DIR: Path | None = None
_NBVAL: dict[str, Counter] = defaultdict(Counter)
_NBVAL_SECONDS: dict[str, float] = defaultdict(float)


def pytest_configure(config):
    global _FAKE_DIR
    # Kernels started by nbval and nbgrader inherit this environment.
    # (MPLBACKEND is left alone: kernels must keep their inline backend, or nbval finds
    # the stored figures missing. Plain test processes have no display and use Agg.)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # Progress bars redraw at most once a second: fewer kernel messages on a busy machine.
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    if not os.environ.get("COURSE_DATA"):
        from helper.data import write_fake_data

        _FAKE_DIR = Path(tempfile.mkdtemp(prefix="course-fake-data-"))
        write_fake_data(_FAKE_DIR)
        os.environ["COURSE_DATA"] = str(_FAKE_DIR)
    config.course_data = os.environ["COURSE_DATA"]


def pytest_unconfigure(config):
    if _FAKE_DIR is not None:
        shutil.rmtree(_FAKE_DIR, ignore_errors=True)


def pytest_report_header(config):
    kind = "fake data (generated)" if _FAKE_DIR is not None else "COURSE_DATA"
    return f"course data: {os.environ.get('COURSE_DATA')} [{kind}]"


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        if type(item).__name__ != "IPyNbCell":
            continue
        # nbval waits only 5 s for a finished cell's queued output messages; on a loaded
        # 2-core machine a cell with progress bars can take longer to deliver them.
        item.output_timeout = 60
        options = item.options
        if options.get("skip"):
            kind = "skipped"
        elif options.get("check_exception"):
            kind = "raises"
        elif options.get("check"):
            kind = "compared"
        else:
            kind = "ignored"
        _NBVAL[Path(str(item.fspath)).name][kind] += 1


def pytest_runtest_logreport(report):
    """Wall time per notebook: the sum of its cells' setup, run and teardown (kernel start included)."""
    path, _, rest = report.nodeid.partition("::")
    if path.endswith(".ipynb"):
        _NBVAL_SECONDS[Path(path).name] += report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _NBVAL:
        return
    tr = terminalreporter
    tr.section("nbval: notebook cells")
    total = Counter()
    for name in sorted(_NBVAL):
        c = _NBVAL[name]
        total.update(c)
        tr.write_line(f"{name:40} compared {c['compared']:3}  ignored {c['ignored']:3}  "
                      f"raises {c['raises']:2}  skipped {c['skipped']:2}  {_NBVAL_SECONDS[name]:6.1f} s")
    tr.write_line(f"{'all notebooks':40} compared {total['compared']:3}  ignored {total['ignored']:3}  "
                  f"raises {total['raises']:2}  skipped {total['skipped']:2}  "
                  f"{sum(_NBVAL_SECONDS.values()):6.1f} s")
