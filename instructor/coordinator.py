"""Autograding a class: one task per (student, part) on a Dask cluster, and the only writer of
the gradebook and ``autograded/``.

    autograde(course, parts, students, settings, cluster=None, force=False) -> [Outcome]

The stages: find the submissions (:func:`find_jobs`), refuse what cannot be sent to a worker
(:func:`check_submission`), skip what was graded before unchanged (the journal: the same
submission, by the same tests), send the rest to the workers a bounded window at a time
(:func:`instructor.tasks.grade`, confined there), and store the outcomes as they come,
everything finished meanwhile in one batch (:class:`instructor.store.Store`: the graded notebooks
and logs, the gradebook's scores in one transaction, the journal, each outcome with its
provenance). Then ``grading-report.csv``, a loud list of what needs a look, and, for a regrade,
whose score or status changed, old -> new, and which inputs differed
(:mod:`instructor.provenance`), or "0 changes".
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import outcome as journal
from . import provenance
from .course import (
    GradingError,
    check_course,
    nbgrader_env,
    notebook_in,
    one_line,
    part_notebook,
    read_regular_file,
    released_parts,
    submission_dir,
    usable_student_id,
)
from .deadlines import load as load_deadlines
from .deadlines import reapply
from .outcome import Outcome
from .settings import Settings, require_sandbox
from .store import BATCH, Store


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
# Running the tasks
# ---------------------------------------------------------------------------

def _client(cluster: str | None, jobs: int):
    """A Dask client: to the scheduler at ``cluster``, or to a local cluster of ``jobs`` worker
    processes (one task at a time each) that stops with the client."""
    from distributed import Client, LocalCluster

    os.environ.update({k: nbgrader_env()[k] for k in ("PATH", "PYTHONPATH")})
    if cluster:
        return Client(cluster, timeout="30s"), None
    # No dashboard; the scheduler's small HTTP server (health, metrics) on a free loopback port,
    # not 8787: two local runs at once (two courses, or parallel tests) do not collide.
    local = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                         dashboard_address=None, worker_dashboard_address=None,
                         scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                         silence_logs=40, host="127.0.0.1")
    return Client(local), local


# The longest a cluster that had workers may have none at all while tasks wait before the run
# stops: with every worker process gone (and none restarted) Dask would wait for one forever. A
# remote cluster that has had no worker yet is waited for (its first jobs may sit in a queue).
NO_WORKER_GRACE = 60.0
_LOOK_EVERY = 1.0  # seconds between looks at the cluster's workers while waiting for results


def _workers(client) -> dict:
    try:
        return client.nthreads()  # asks the scheduler now, unlike the client's cached copy
    except (OSError, TimeoutError):  # the scheduler does not answer: no worker to be seen either
        return {}


def _no_worker_since(since: float | None, grace: float, where: str, done: int, total: int) -> float:
    """When the cluster, seen without a worker now, was first seen so; a GradingError once that
    was ``grace`` seconds ago or more."""
    now = time.monotonic()
    since = now if since is None else since
    if now - since >= grace:
        raise GradingError(f"the Dask cluster ({where}) lost all its workers {now - since:.0f} s ago and none "
                           f"came back; the {done} of {total} result(s) finished before are stored: run the "
                           "same command again to resume with the rest")
    return since


def _batches(client, queue, where: str, total: int, local: bool):
    """``queue.batches()`` (an ``as_completed``), but looking at the cluster's workers every
    _LOOK_EVERY seconds meanwhile: once it has had one (a ``local`` cluster has them from the
    start), NO_WORKER_GRACE seconds without any stop the run (see :func:`_no_worker_since`)."""
    since, done, next_look, armed = None, 0, time.monotonic(), local
    while not queue.is_empty():
        with queue.thread_condition:  # as_completed notifies it, under this lock, once a result is queued
            if not queue.has_ready():
                queue.thread_condition.wait(timeout=_LOOK_EVERY)
        batch = queue.next_batch(block=False)
        if batch:
            yield batch
            done += len(batch)
        if time.monotonic() >= next_look:
            workers = bool(_workers(client))
            armed = armed or workers
            since = None if workers or not armed else _no_worker_since(since, NO_WORKER_GRACE, where, done, total)
            next_look = time.monotonic() + _LOOK_EVERY


def run_windowed(items: list, send: Callable, finish: Callable, cluster: str | None, jobs: int,
                 desc: str, unit: str, say=print) -> None:
    """One task per item on the Dask cluster at ``cluster`` (default: a local one of ``jobs``
    processes), a bounded window at a time, so that memory stays flat for a class of 10,000:
    two per worker at first (at least BATCH), then one more for each that finishes.

    ``send(client, item)`` submits an item's task and returns (future, what ``finish`` needs);
    ``finish(client, [(future, that), ...], say)`` takes the finished tasks, at most BATCH at a
    time (everything finished meanwhile, so that storing keeps up), with a ``say`` that writes
    above the progress bar. A cluster left without any worker for NO_WORKER_GRACE seconds stops
    the run with a GradingError; what ``finish`` stored stays."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    client, local = _client(cluster, jobs)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})) or jobs)
        pending, meta, queue = iter(items), {}, as_completed([])

        def submit(n: int) -> None:
            for item in itertools.islice(pending, n):
                future, that = send(client, item)
                meta[future.key] = that
                queue.add(future)

        # two per worker keep a worker busy while its last result travels; a batch's worth keeps
        # the batches full when tasks take less time than storing them
        submit(max(2 * workers, BATCH))
        bar = tqdm(total=len(items), desc=desc, unit=unit, mininterval=1.0, disable=len(items) < 2)
        write = bar.write if say is print else say  # lines above the progress bar, not through it
        where = cluster or f"{jobs} local worker(s)"
        try:
            for done in _batches(client, queue, where, len(items), local is not None):
                for start in range(0, len(done), BATCH):
                    batch = done[start:start + BATCH]
                    finish(client, [(f, meta.pop(f.key)) for f in batch], write)
                    submit(len(batch))
                    bar.update(len(batch))
        finally:
            bar.close()
    finally:
        client.close()
        if local is not None:
            local.close()


def _grade_task(spec: dict) -> Outcome:
    from . import tasks

    return tasks.grade(spec)


def _triage(course: Path, jobs: list[Job], force: bool,
            store: Store) -> tuple[list[Outcome], list[tuple[Job, str]]]:
    """(outcomes of what cannot be sent to a worker, stored; [(job, digest)] to grade): a
    submission graded before with the same bytes, by the same tests (the release digest
    recorded then, if any), is left out unless ``force``."""
    done = {} if force else journal.read_journal(course)
    refused: list[Outcome] = []
    todo, unreadable = [], []
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
            unreadable.append((Outcome(job.student, job.part, reason=why), "", _timestamp(course, job)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        previous = done.get((job.student, job.part))
        release = store.inputs.get(job.part, {}).get("release")
        recorded = previous.provenance.get("release") if previous is not None else None
        if previous is None or previous.sha256 != digest or (recorded and release and recorded != release):
            todo.append((job, digest))
    for start in range(0, len(unreadable), BATCH):
        refused += store.record(unreadable[start:start + BATCH])
    return refused, todo


def _limits_line(settings: Settings, task_limits: dict) -> str:
    return (f"limits per submission: cell {settings.cell_timeout} s, notebook {settings.notebook_timeout} s, "
            f"memory {settings.memory_bytes / 2**30:.1f} GiB, {settings.processes} processes, "
            + (f"CPU {settings.cpu_seconds} s, {settings.threads} thread(s)" if task_limits["threads"]
               else "threads per kernel: the workers' GRADING_THREADS (default 1)"))


def _collect(client, done: list) -> list[tuple[Outcome, str, str | None]]:
    """The outcomes of finished tasks ``done`` ([(future, (job, digest, timestamp))]), fetched
    together: (outcome, digest, timestamp) each."""
    finished = [f for f, _ in done if f.status == "finished"]
    fetched = dict(zip([f.key for f in finished], client.gather(finished, errors="skip"), strict=False))
    items = []
    for future, (job, digest, timestamp) in done:
        result = fetched.get(future.key)
        if result is None:
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. the task's workers kept dying
                result = Outcome(job.student, job.part, reason=f"the grading task failed: "
                                 f"{type(exc).__name__}: {one_line(exc, 200)}")
        items.append((result, digest, timestamp))
    return items


def _grade_on_cluster(course: Path, todo: list[tuple[Job, str]], settings: Settings, task_limits: dict,
                      cluster: str | None, say, store: Store, task: Callable[[dict], Outcome]) -> list[Outcome]:
    """Send ``todo`` to the workers (:func:`run_windowed`) and store the outcomes as they come."""
    sources = {part: part_notebook(part, course=course).read_bytes() for part in {j.part for j, _ in todo}}
    common = {"limits": task_limits, "data_dir": settings.data_dir, "secret": secrets.token_hex(16),
              "masked": [str(course)]}
    results: list[Outcome] = []

    def send(client, item: tuple[Job, str]):
        job, digest = item
        timestamp = _timestamp(course, job)
        spec = {**common, "student": job.student, "part": job.part, "timestamp": timestamp,
                "notebook": submission_bytes(course, job), "source": sources[job.part]}
        future = client.submit(provenance.with_versions, task, spec, pure=False,
                               key=f"grade-{job.student}-{job.part}-{secrets.token_hex(4)}")
        return future, (job, digest, timestamp)

    def finish(client, done: list, write) -> None:
        stored = store.record(_collect(client, done))
        results.extend(stored)
        for result in stored:
            write(_result_line(result))

    run_windowed(todo, send, finish, cluster, settings.jobs, "grading", "submission", say)
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
              force: bool = False, task: Callable[[dict], Outcome] = _grade_task) -> list[Outcome]:
    """Autograde every submission of ``parts`` (default: all released parts), each as one task on
    a Dask cluster (local by default, ``cluster`` = scheduler address otherwise). What was graded
    before (same notebook bytes) is not graded again unless ``force``. ``task`` grades one
    submission on a worker (:func:`instructor.tasks.grade`; tests and benchmarks swap it)."""
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
    before = journal.read_journal(course)
    inputs = provenance.run_inputs(course, parts, settings.sandbox, settings.task_limits(cluster=bool(cluster)))
    with Store(course, deadlines, inputs) as store:
        results, todo = _triage(course, jobs, force, store)
        skipped = len(jobs) - len(todo) - len(results)
        if skipped:
            say(f"{skipped} submission(s) graded before and unchanged: not graded again (--force to regrade)")
        if todo:
            task_limits = settings.task_limits(cluster=bool(cluster))
            say(f"grading {len(todo)} submission(s) of {', '.join(parts)} on "
                f"{'the cluster at ' + cluster if cluster else f'{settings.jobs} local worker(s)'}; "
                + _limits_line(settings, task_limits))
            results += _grade_on_cluster(course, todo, settings, task_limits, cluster, say, store, task)
    reapply(course, say)  # deadlines.toml on what was not graded again: a new due date or extension counts
    journal.write_report(course)
    _say_what_needs_a_look(results, say)
    regraded = [r for r in results if (r.student, r.part) in before]
    if regraded:  # what changed, and why: "0 changes" is the determinism claim, on every regrade
        for line in provenance.regrade_lines(provenance.changes(before, regraded), len(regraded)):
            say(line)
    return results
