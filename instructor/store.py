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
none adds to one. One gradebook connection serves the whole run, and a batch's rows are written
with a few bulk statements (:mod:`instructor.scores`): nbgrader's own steps open a connection,
with its schema checks, and commit row by row for every notebook, ~0.1 s a result.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

from . import outcome as journal
from . import scores
from .course import (
    EXCHANGE_FILES,
    LOG_DIR,
    gradebook,
    graded_dir,
    notebook_in,
    one_line,
    read_regular_file,
    submission_dir,
    write_atomically,
)
from .deadlines import Deadlines
from .outcome import Outcome

BATCH = 64  # outcomes stored in one transaction, at most


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
    text = result.notebook if result.notebook.endswith("\n") else result.notebook + "\n"
    graded = nbformat.reads(text, as_version=4)  # validated: it goes to formgrader as it is
    result.notebook = None
    folder.mkdir(parents=True)
    write_atomically(notebook_in(folder, part), text.encode("utf-8"))  # as nbgrader wrote it
    for name in EXCHANGE_FILES:  # regular files of a few bytes, never followed
        try:
            data = read_regular_file(submission_dir(course, student, part) / name, 4096)
        except OSError:
            continue
        (folder / name).write_bytes(data)
    return graded


class Store:
    """The coordinator's storage for one run: one gradebook connection, batches of outcomes."""

    def __init__(self, course: Path, deadlines: Deadlines | None = None, inputs: dict | None = None):
        self.course, self.deadlines = course, deadlines
        self.inputs = inputs or {}  # {part: what produced its outcomes}: instructor.provenance.run_inputs
        os.environ.setdefault("NBFORMAT_VALIDATOR", "fastjsonschema")  # nbformat's faster validator
        self._gradebook = gradebook(course)
        self.gb = None
        self._late = None
        self.parts: dict[str, scores.Part] = {}

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
        days and penalty, log path, digest, the run's inputs in its provenance, the coordinator's
        seconds per outcome). A batch the
        gradebook refuses is stored again one outcome at a time, so one bad row spoils no other."""
        from sqlalchemy.exc import SAWarning

        start = time.monotonic()
        graded = []
        for result, sha256, _ in items:
            result.reason, result.review = one_line(result.reason), one_line(result.review, 1000)
            result.sha256 = sha256
            result.provenance = {**self.inputs.get(result.part, {}), **(result.provenance or {})}
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
        session = self.gb.db
        rows = [scores.Row(r.student, r.part, ts, graded, zero=r.status != "graded" or graded is None,
                           flagged=r.needs_a_look) for r, graded, ts in batch]
        try:
            for part in {r.part for r in rows} - set(self.parts):
                self.parts[part] = scores.read_part(session, part)
            subs = scores.store_scores(session, self.parts, rows, self.deadlines, self._late)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        stored = scores.read_scores(session, self.parts, rows, subs, self.deadlines)
        for (result, _, _), (score, top, penalty, late) in zip(batch, stored, strict=True):
            result.score, result.max_score, result.penalty = score, top, penalty
            result.late_days = self.deadlines.late_days(late) if self.deadlines else 0
        session.rollback()  # end the read's transaction: nothing is held open between batches


def record(course: Path, result: Outcome, sha256: str = "", timestamp: str | None = None,
           deadlines: Deadlines | None = None) -> Outcome:
    """Store one outcome (a batch of one, its own gradebook connection). Returns it, completed."""
    with Store(course, deadlines) as store:
        return store.record([(result, sha256, timestamp)])[0]
