"""Autograding a class: one task per (student, part) on a Dask cluster, and the only writer of
the gradebook and ``autograded/``.

    autograde(course, parts, students, settings, cluster=None, force=False) -> [Outcome]

The stages: find the submissions (:func:`find_jobs`), refuse what cannot be sent to a worker
(:func:`check_submission`), skip what was graded before unchanged (the journal), send the rest
to the workers a window at a time (:func:`instructor.tasks.grade`, confined there), and
:func:`record` each outcome as it comes: the graded notebook, its log, the gradebook's scores
(nbgrader's own SaveAutoGrades) and one journal line. Then ``grading-report.csv`` and a loud list
of what needs a look.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import outcome as journal
from .course import (
    EXCHANGE_FILES,
    LOG_DIR,
    GradingError,
    check_course,
    db_url,
    gradebook,
    graded_dir,
    nbgrader_env,
    notebook_in,
    one_line,
    part_notebook,
    read_regular_file,
    released_parts,
    submission_dir,
    usable_student_id,
)
from .deadlines import Deadlines
from .deadlines import load as load_deadlines
from .outcome import Outcome
from .settings import Settings, require_sandbox


@dataclass
class Job:
    """One submission to grade: a student's folder for one part."""

    student: str
    part: str

    @property
    def key(self) -> str:
        """``student/part``."""
        return f"{self.student}/{self.part}"


def find_jobs(course: Path, parts: list[str], students: list[str] | None = None) -> list[Job]:
    """Every submitted/<student>/<part>/ folder, for the parts asked."""
    jobs = []
    for part in parts:
        for folder in sorted((course / "submitted").glob(f"*/{part}")):
            student = folder.parent.name
            if folder.is_dir() and (students is None or student in students):
                jobs.append(Job(student, part))
    return jobs


def submission_bytes(course: Path, job: Job) -> bytes:
    """The submitted notebook, read as a regular file (a link or FIFO is refused, never followed)."""
    return read_regular_file(notebook_in(submission_dir(course, job.student, job.part), job.part))


def _timestamp(course: Path, job: Job) -> str | None:
    path = submission_dir(course, job.student, job.part) / "timestamp.txt"
    try:
        return read_regular_file(path, 200).decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def check_submission(course: Path, job: Job) -> str | None:
    """Why ``job`` cannot be sent to a worker at all, or None."""
    if not usable_student_id(job.student):
        # nbgrader globs with the student id: "*" would grade everybody's folder as this one
        return "the folder name is not a usable student id (glob characters or leading - or .)"
    path = notebook_in(submission_dir(course, job.student, job.part), job.part)
    if not os.path.lexists(path):
        found = sorted(p.name for p in path.parent.iterdir())
        return f"no {path.name} in the submission (found: {', '.join(found) or 'nothing'})"
    return None


# ---------------------------------------------------------------------------
# Recording one outcome
# ---------------------------------------------------------------------------

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
    graded = nbformat.reads(result.notebook, as_version=4)
    result.notebook = None
    folder.mkdir(parents=True)
    nbformat.write(graded, notebook_in(folder, part))
    for name in EXCHANGE_FILES:  # regular files of a few bytes, never followed
        try:
            data = read_regular_file(submission_dir(course, student, part) / name, 4096)
        except OSError:
            continue
        (folder / name).write_bytes(data)
    return graded


def _set_deadline(gb, deadlines, part: str, student: str, submission) -> None:
    """The part's due date and the student's extension, from deadlines.toml, in the gradebook."""
    gb.find_assignment(part).duedate = deadlines.due.get(part)
    submission.extension = deadlines.extension(student, part)
    gb.db.commit()


def _store_scores(course: Path, result: Outcome, graded, timestamp: str | None, deadlines=None) -> None:
    """The gradebook: nbgrader's SaveAutoGrades from the graded notebook, then its
    AssignLatePenalties (with deadlines.toml's policy as the plugin, when there is one); a flagged
    or tampered submission scores 0 (as nbgrader scores a missing notebook) and is flagged until
    looked at."""
    from nbgrader.api import MissingEntry
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
    from sqlalchemy.exc import SAWarning

    student, part = result.student, result.part
    with gradebook(course) as gb, warnings.catch_warnings():
        # nbgrader's update_or_create_submission trips SQLAlchemy's autoflush warnings
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        extra = {"timestamp": timestamp} if timestamp else {}
        try:
            submission = gb.find_submission(part, student)
            if extra:
                submission = gb.update_or_create_submission(part, student, **extra)
        except MissingEntry:
            submission = gb.update_or_create_submission(part, student, **extra)
        if deadlines is not None:
            _set_deadline(gb, deadlines, part, student, submission)
        if graded is not None:
            resources = {"nbgrader": {"db_url": db_url(course), "assignment": part, "notebook": part,
                                      "student": student}}
            SaveAutoGrades().preprocess(graded, resources)
            late = AssignLatePenalties(config=deadlines.nbgrader_config()) if deadlines else AssignLatePenalties()
            late.preprocess(graded, resources)
            gb.db.expire_all()
            submission = gb.find_submission(part, student)
        for nb in submission.notebooks:
            nb.flagged = result.needs_a_look
            if result.status != "graded" or graded is None:
                nb.late_submission_penalty = None
                for grade in nb.grades:
                    grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()
        result.score, result.max_score = submission.score, submission.max_score
        result.penalty = float(submission.late_submission_penalty or 0)
        result.late_days = deadlines.late_days(submission.total_seconds_late) if deadlines else 0


def record(course: Path, result: Outcome, sha256: str = "", timestamp: str | None = None,
           deadlines: Deadlines | None = None) -> Outcome:
    """Store one task's outcome: the graded notebook under autograded/, its log, the gradebook
    (with ``deadlines``' late penalty) and the journal. Returns it, completed (scores, late days
    and penalty, log path, digest, time taken)."""
    start = time.monotonic()
    result.reason, result.review = one_line(result.reason), one_line(result.review, 1000)
    result.sha256 = sha256
    graded = _store_files(course, result)
    _store_scores(course, result, graded, timestamp, deadlines)
    journal.append(course, result)
    result.record_seconds = time.monotonic() - start
    return result


# ---------------------------------------------------------------------------
# Running the tasks
# ---------------------------------------------------------------------------

def _client(cluster: str | None, settings: Settings):
    """A Dask client: to the scheduler at ``cluster``, or to a local cluster of ``jobs`` worker
    processes (one submission at a time each) that stops with the client."""
    from distributed import Client, LocalCluster

    os.environ.update({k: nbgrader_env()[k] for k in ("PATH", "PYTHONPATH")})
    if cluster:
        return Client(cluster, timeout="30s"), None
    # No dashboard; the scheduler's small HTTP server (health, metrics) on a free loopback port,
    # not 8787: two local runs at once (two courses, or parallel tests) do not collide.
    local = LocalCluster(n_workers=settings.jobs, threads_per_worker=1, processes=True,
                         dashboard_address=None, worker_dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                         silence_logs=40, host="127.0.0.1")
    return Client(local), local


def _grade_task(spec: dict) -> Outcome:
    from . import tasks

    return tasks.grade(spec)


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="submission", mininterval=1.0, disable=total < 2)


def _triage(course: Path, jobs: list[Job], force: bool,
            deadlines: Deadlines | None = None) -> tuple[list[Outcome], list[tuple[Job, str]]]:
    """(outcomes of what cannot be sent to a worker, [(job, digest)] to grade): a submission
    graded before with the same bytes is left out unless ``force``."""
    done = {} if force else journal.read_journal(course)
    refused: list[Outcome] = []
    todo = []
    for job in jobs:
        why = check_submission(course, job)
        if why and not usable_student_id(job.student):
            refused.append(Outcome(job.student, job.part, reason=why))  # no gradebook entry for it
            journal.append(course, refused[-1])
            continue
        try:
            data = None if why else submission_bytes(course, job)
        except OSError as exc:
            why = f"the submitted notebook cannot be read safely: {exc}"
        if why:
            refused.append(record(course, Outcome(job.student, job.part, reason=why),
                                  timestamp=_timestamp(course, job), deadlines=deadlines))
            continue
        digest = hashlib.sha256(data).hexdigest()
        previous = done.get((job.student, job.part))
        if previous is None or previous.sha256 != digest:
            todo.append((job, digest))
    return refused, todo


def _limits_line(settings: Settings, task_limits: dict) -> str:
    return (f"limits per submission: cell {settings.cell_timeout} s, notebook {settings.notebook_timeout} s, "
            f"memory {settings.memory_bytes / 2**30:.1f} GiB, {settings.processes} processes, "
            + (f"CPU {settings.cpu_seconds} s, {settings.threads} thread(s)" if task_limits["threads"]
               else "threads per kernel: the workers' GRADING_THREADS (default 1)"))


def _grade_on_cluster(course: Path, todo: list[tuple[Job, str]], settings: Settings, task_limits: dict,
                      cluster: str | None, say, deadlines: Deadlines | None = None) -> list[Outcome]:
    """Send ``todo`` to the workers, at most two per worker at a time (memory stays flat for a
    class of 10,000), and record each outcome as it comes."""
    from distributed import as_completed

    sources = {part: part_notebook(part, course=course).read_bytes() for part in {j.part for j, _ in todo}}
    common = {"limits": task_limits, "data_dir": settings.data_dir, "secret": secrets.token_hex(16),
              "masked": [str(course)]}
    results: list[Outcome] = []
    client, local = _client(cluster, settings)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})) or settings.jobs)
        pending = iter(todo)
        meta: dict[str, tuple[Job, str, str | None]] = {}
        queue = as_completed([])

        def submit_next() -> None:
            for job, digest in pending:
                timestamp = _timestamp(course, job)
                spec = {**common, "student": job.student, "part": job.part, "timestamp": timestamp,
                        "notebook": submission_bytes(course, job), "source": sources[job.part]}
                future = client.submit(_grade_task, spec, pure=False,
                                       key=f"grade-{job.student}-{job.part}-{secrets.token_hex(4)}")
                meta[future.key] = (job, digest, timestamp)
                queue.add(future)
                return

        for _ in range(2 * workers):
            submit_next()
        bar = _progress(len(todo))
        if say is print:
            say = bar.write  # lines above the progress bar, not through it
        for future in queue:
            job, digest, timestamp = meta.pop(future.key)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. the task's workers kept dying
                result = Outcome(job.student, job.part, reason=f"the grading task failed: "
                                 f"{type(exc).__name__}: {one_line(exc, 200)}")
            results.append(record(course, result, digest, timestamp, deadlines))
            bar.update(1)
            say(_result_line(results[-1]))
            submit_next()
        bar.close()
    finally:
        client.close()
        if local is not None:
            local.close()
    return results


def _result_line(r: Outcome) -> str:
    mark = "ok " if r.status == "graded" else "!! "
    return (f"{mark}{r.student:>16} / {r.part:<24} {r.score:5g} / {r.max_score:<5g} {r.seconds:6.1f} s  "
            f"{r.reason}" + (f"  [review: {r.review}]" if r.review else ""))


def _say_what_needs_a_look(results: list[Outcome], say) -> None:
    bad = [r for r in results if r.needs_a_look]
    if not bad:
        return
    say("!" * 78)
    say(f"!! {len(bad)} submission(s) need a look. Flagged or tampered ones score 0 until you")
    say("!! look at them; 'review' ones keep their score (logs under autograded/.logs/):")
    for r in bad:
        what = r.status if r.status != "graded" else "review"
        say(f"!!   {r.student} / {r.part}: {what}: {r.reason or r.review}")
    say("!" * 78)


def _parts_to_grade(course: Path, parts: list[str] | None) -> list[str]:
    known = released_parts(course)
    if not known:
        raise GradingError("the gradebook knows no part: release first (make release PART=...)")
    unknown = [p for p in parts or [] if p not in known]
    if unknown:
        raise GradingError(f"part {unknown[0]!r} was never released (make release PART={unknown[0]}); "
                           f"released parts: {', '.join(known)}")
    return parts or known


def autograde(course: Path, parts: list[str] | None = None, students: list[str] | None = None,
              settings: Settings | None = None, say=print, cluster: str | None = None,
              force: bool = False) -> list[Outcome]:
    """Autograde every submission of ``parts`` (default: all released parts), each as one task on
    a Dask cluster (local by default, ``cluster`` = scheduler address otherwise). What was graded
    before (same notebook bytes) is not graded again unless ``force``."""
    course = check_course(course)
    deadlines = load_deadlines(course)  # a bad deadlines.toml stops here, before anything is graded
    settings = settings or Settings.resolve(course)
    parts = _parts_to_grade(course, parts)
    jobs = find_jobs(course, parts, students)
    if not jobs:
        say(f"nothing to grade: no submitted/<student>/<part>/ folder for {', '.join(parts)}")
        return []
    (course / "autograded").mkdir(exist_ok=True)
    say(require_sandbox(settings, say))
    results, todo = _triage(course, jobs, force, deadlines)
    skipped = len(jobs) - len(todo) - len(results)
    if skipped:
        say(f"{skipped} submission(s) graded before and unchanged: not graded again (--force to regrade)")
    if todo:
        task_limits = settings.task_limits(cluster=bool(cluster))
        say(f"grading {len(todo)} submission(s) of {', '.join(parts)} on "
            f"{'the cluster at ' + cluster if cluster else f'{settings.jobs} local worker(s)'}; "
            + _limits_line(settings, task_limits))
        results += _grade_on_cluster(course, todo, settings, task_limits, cluster, say, deadlines)
    journal.write_report(course)
    _say_what_needs_a_look(results, say)
    return results
