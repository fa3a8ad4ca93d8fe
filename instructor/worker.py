"""One grading job in its own process: ``nbgrader autograde PART --student STUDENT``.

    python -m instructor.worker LOCKFILE -- NBGRADER_AUTOGRADE_ARGS...

Runs nbgrader's own AutogradeApp. The only change: every gradebook session (nbgrader opens
``Gradebook(...)`` for a few short reads and writes per notebook, never while student code
runs) holds an exclusive ``flock`` on LOCKFILE, so parallel jobs never write SQLite at the
same time and never see "database is locked".
"""

from __future__ import annotations

import fcntl
import sys
from contextlib import contextmanager

from traitlets.config import Config


class GradebookLock:
    """A re-entrant, process-wide exclusive lock on one file."""

    def __init__(self, path: str):
        self.path = path
        self._fd = None
        self._depth = 0

    def acquire(self) -> None:
        if self._depth == 0:
            self._fd = open(self.path, "a+")
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._fd.close()
            self._fd = None

    @contextmanager
    def held(self):
        self.acquire()
        try:
            yield
        finally:
            self.release()


def lock_gradebook_sessions(lock: GradebookLock) -> None:
    """Make every ``nbgrader.api.Gradebook`` hold ``lock`` from creation to ``close()``."""
    from nbgrader.api import Gradebook

    if getattr(Gradebook, "_course_locked", False):
        return
    original_init, original_close = Gradebook.__init__, Gradebook.close

    def __init__(self, *args, **kwargs):
        lock.acquire()
        try:
            original_init(self, *args, **kwargs)
        except BaseException:
            lock.release()
            raise
        self._course_lock_held = True

    def close(self):
        try:
            original_close(self)
        finally:
            if getattr(self, "_course_lock_held", False):
                self._course_lock_held = False
                lock.release()

    Gradebook.__init__, Gradebook.close = __init__, close
    Gradebook._course_locked = True


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    lock_gradebook_sessions(GradebookLock(argv[0]))
    from nbgrader.apps.autogradeapp import AutogradeApp

    extra = Config()
    # nbgrader's pipeline with its LimitOutput swapped for one that also caps characters.
    extra.Autograde.autograde_preprocessors = [
        "nbgrader.preprocessors.Execute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "instructor.preprocessors.LimitOutputSize",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    app = AutogradeApp()
    app.initialize(["autograde", *argv[2:]][1:])
    app.update_config(extra)
    app.start()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
