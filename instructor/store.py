"""Storing outcomes on the grading coordinator, a batch at a time: the one writer of the
gradebook, ``autograded/`` and the journal.

    with Store(course, deadlines) as store:
        stored = store.record([(outcome, sha256, timestamp), ...])   # -> [Outcome], completed

Each batch is stored in three steps, in this order:

1. the files: each task's log, and its graded notebook (written atomically) with the exchange
   files nbgrader's feedback reads beside it;
2. the gradebook, in **one transaction** for the whole batch: the student, the submission and
   its timestamp, the due date and extension (deadlines.toml), the autograder's scores and
   comments (what nbgrader's SaveAutoGrades stores), the late penalty (what its
   AssignLatePenalties stores, with deadlines.toml's policy as the plugin), and the flags;
3. the journal: one line per outcome, the whole batch flushed to disk at once.

The journal is the source of truth: an outcome is stored once its line is there. A coordinator
killed before that (mid-transaction, or between the commit and the journal) grades the batch
again when it resumes, and storing it again changes nothing: every gradebook write sets a value,
none adds to one. One gradebook connection serves the whole run (nbgrader's own preprocessors
open a new one, with its schema checks, for every notebook: most of the 0.1 s a result cost).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from . import outcome as journal
from .course import (
    EXCHANGE_FILES,
    LOG_DIR,
    gradebook,
    graded_dir,
    notebook_in,
    one_line,
    read_regular_file,
    submission_dir,
)
from .deadlines import Deadlines
from .outcome import Outcome

BATCH = 64  # outcomes stored in one transaction, at most


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


def _store_files(course: Path, result: Outcome):
    """The task's log under autograded/.logs/, and the graded notebook (if any) with the
    exchange files nbgrader's feedback reads beside it. Returns the graded notebook or None."""
    import nbformat

    student, part = result.student, result.part
    log_path = course / "autograded" / LOG_DIR / part / f"{student}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(result.log_text + (f"\n{result.reason}\n" if result.reason else ""))
    result.log, result.log_text = str(log_path.relative_to(course)), ""
    folder = graded_dir(course, student, part)
    if folder.is_symlink():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    if not result.notebook:
        return None
    graded = nbformat.reads(result.notebook, as_version=4)  # validated: it goes to formgrader as is
    result.notebook = None
    folder.mkdir(parents=True)
    text = nbformat.writes(graded)
    write_atomically(notebook_in(folder, part), (text if text.endswith("\n") else text + "\n").encode("utf-8"))
    for name in EXCHANGE_FILES:  # regular files of a few bytes, never followed
        try:
            data = read_regular_file(submission_dir(course, student, part) / name, 4096)
        except OSError:
            continue
        (folder / name).write_bytes(data)
    return graded


# ---------------------------------------------------------------------------
# The gradebook: one transaction per batch
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def _one_transaction(gb):
    """Everything in the block in one transaction: nbgrader's helpers (update_or_create_student,
    add_submission, ...) commit after each change, so their commits only flush here; the block's
    end commits, an error rolls all of it back."""
    session = gb.db
    session.commit = session.flush
    try:
        yield
    except BaseException:
        del session.commit
        session.rollback()
        raise
    del session.commit
    session.commit()


def _cells_by_name(gb, model, notebook_id: str) -> dict:
    """The submitted notebook's grades or comments (``model``), by their cell's grade id."""
    from nbgrader.api import BaseCell

    rows = gb.db.query(model, BaseCell.name).join(BaseCell, BaseCell.id == model.cell_id) \
        .filter(model.notebook_id == notebook_id)
    return {name: row for row, name in rows}


def save_autogrades(gb, row, graded) -> None:
    """What nbgrader's SaveAutoGrades stores for the ``graded`` notebook, into the submitted
    notebook ``row`` of an open gradebook, without committing: each test's auto score (a manual
    score, or no auto score, asks for a manual grade) and "No response." on untouched answers."""
    from nbgrader import utils
    from nbgrader.api import Comment, Grade, MissingEntry

    grades, comments = _cells_by_name(gb, Grade, row.id), _cells_by_name(gb, Comment, row.id)
    for cell in graded.cells:
        name = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if utils.is_grade(cell):
            if name not in grades:
                raise MissingEntry(f"No such grade: {row.assignment.name}/{row.name}/{name}")
            grade = grades[name]
            grade.auto_score = utils.determine_grade(cell)[0]
            grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        if (utils.is_solution(cell) or utils.is_task(cell)) and name in comments:
            untouched = cell.metadata.nbgrader.get("checksum") == utils.compute_checksum(cell)
            comments[name].auto_comment = "No response." if untouched and not utils.is_task(cell) else None


class Store:
    """The coordinator's storage for one run: one gradebook connection, batches of outcomes."""

    def __init__(self, course: Path, deadlines: Deadlines | None = None):
        self.course, self.deadlines = course, deadlines
        self._gradebook = gradebook(course)
        self.gb = None
        self._late = None

    def __enter__(self) -> Store:
        from nbgrader.preprocessors import AssignLatePenalties

        self.gb = self._gradebook.__enter__()
        config = self.deadlines.nbgrader_config() if self.deadlines else None
        self._late = AssignLatePenalties(config=config) if config else AssignLatePenalties()
        self._late.init_plugin()
        return self

    def __exit__(self, *exc) -> None:
        self._gradebook.__exit__(*exc)
        self.gb.engine.dispose()

    def record(self, items: list[tuple[Outcome, str, str | None]]) -> list[Outcome]:
        """Store ``items`` (outcome, digest of the submission, its timestamp) as one batch:
        files, one gradebook transaction, journal. Returns the outcomes, completed (scores, late
        days and penalty, log path, digest, the coordinator's seconds per outcome). A batch the
        gradebook refuses is stored again one outcome at a time, so one bad row spoils no other."""
        from sqlalchemy.exc import SAWarning

        start = time.monotonic()
        graded = []
        for result, sha256, _ in items:
            result.reason, result.review = one_line(result.reason), one_line(result.review, 1000)
            result.sha256 = sha256
            graded.append(_store_files(self.course, result))
        batch = [(r, nb, ts) for (r, _, ts), nb in zip(items, graded, strict=True)]
        with warnings.catch_warnings():
            # nbgrader's update_or_create_submission trips SQLAlchemy's autoflush warnings
            warnings.simplefilter("ignore", SAWarning)
            try:
                self._store_scores(batch)
            except Exception:  # noqa: BLE001 - rolled back: each one alone, raising for a bad one
                if len(batch) == 1:
                    raise
                for one in batch:
                    self._store_scores([one])
        results = [r for r, _, _ in batch]
        journal.append_many(self.course, results)
        seconds = (time.monotonic() - start) / max(1, len(results))
        for r in results:
            r.record_seconds = seconds
        return results

    def _store_scores(self, batch: list) -> None:
        """The gradebook side of :meth:`record`: one transaction, then the scores read back."""
        gb = self.gb
        with _one_transaction(gb):
            rows = [self._submission(result, ts) for result, _, ts in batch]
            for result, graded, _ in batch:
                if graded is not None:
                    save_autogrades(gb, gb.find_submission_notebook(result.part, result.part, result.student),
                                    graded)
            gb.db.flush()
            gb.db.expire_all()  # the notebooks' scores are computed by the database
            for (result, graded, _), row in zip(batch, rows, strict=True):
                if graded is not None:
                    self._late_penalty(result, row)
                self._flags(result, graded, row)
        gb.db.expire_all()
        for (result, _, _), row in zip(batch, rows, strict=True):
            result.score, result.max_score = row.score, row.max_score
            result.penalty = float(row.late_submission_penalty or 0)
            result.late_days = self.deadlines.late_days(row.total_seconds_late) if self.deadlines else 0

    def _submission(self, result: Outcome, timestamp: str | None):
        """The student and their submission of the part (created when new), with the timestamp,
        the part's due date and the student's extension."""
        from nbgrader.api import MissingEntry

        gb, student, part = self.gb, result.student, result.part
        gb.update_or_create_student(student)
        extra = {"timestamp": timestamp} if timestamp else {}
        try:
            submission = gb.find_submission(part, student)
            if extra:
                submission = gb.update_or_create_submission(part, student, **extra)
        except MissingEntry:
            submission = gb.update_or_create_submission(part, student, **extra)
        if self.deadlines is not None:
            gb.find_assignment(part).duedate = self.deadlines.due.get(part)
            submission.extension = self.deadlines.extension(student, part)
        return submission

    def _late_penalty(self, result: Outcome, submission) -> None:
        """What nbgrader's AssignLatePenalties stores (the course's plugin decides the points)."""
        late = self._late
        for nb in submission.notebooks:
            nb.late_submission_penalty = None
            if submission.total_seconds_late > 0:
                penalty = late.plugin_inst.late_submission_penalty(result.student, nb.score,
                                                                   submission.total_seconds_late)
                if penalty is not None:
                    nb.late_submission_penalty = late._check_late_penalty(nb, penalty)

    @staticmethod
    def _flags(result: Outcome, graded, submission) -> None:
        """Flagged until looked at; a flagged or tampered submission scores 0 (as nbgrader scores
        a missing notebook)."""
        for nb in submission.notebooks:
            nb.flagged = result.needs_a_look
            if result.status != "graded" or graded is None:
                nb.late_submission_penalty = None
                for grade in nb.grades:
                    grade.auto_score, grade.needs_manual_grade = 0, False


def record(course: Path, result: Outcome, sha256: str = "", timestamp: str | None = None,
           deadlines: Deadlines | None = None) -> Outcome:
    """Store one outcome (a batch of one, its own gradebook connection). Returns it, completed."""
    with Store(course, deadlines) as store:
        return store.record([(result, sha256, timestamp)])[0]
