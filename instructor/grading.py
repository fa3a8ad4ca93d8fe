"""The instructor's workflow on top of nbgrader's own commands.

    autograde   nbgrader autograde, one job per (student, part), JOBS in parallel, every kernel
                confined by :mod:`instructor.sandbox`; submissions that cannot be graded are
                flagged in the gradebook and listed loudly
    feedback    nbgrader generate_feedback (HTML per student in feedback/)
    grades      nbgrader export (CSV)
    collect     nbgrader zip_collect (LMS downloads -> submitted/<student>/<part>/)

Limits, from the environment or the command line (command line wins):

    GRADING_TIMEOUT           seconds one cell may run (default: c.Execute.timeout in
                              nbgrader_config.py, 600: Part 8 trains for minutes on a CPU)
    GRADING_NOTEBOOK_TIMEOUT  wall-clock seconds for a whole notebook (default 3 x the cell
                              timeout: a student can add cells, each just under the limit)
    GRADING_MEMORY            address space per kernel, e.g. 6G (default: min(8G, 3/4 of RAM / JOBS))
    GRADING_CPU               CPU seconds per kernel (default: notebook timeout x threads)
    GRADING_THREADS           threads per kernel (default: cores / JOBS on a local cluster; on
                              --cluster, read on each worker from ITS environment, default 1)
    GRADING_SANDBOX           bwrap (default: refuse to grade without it) or rlimits (grade
                              with resource limits only, NOT confined: see README)
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import limits, sandbox

ROOT = Path(__file__).resolve().parents[1]  # the course repository: helper/ lives here
LOG_DIR = ".logs"                 # under autograded/: one log per job (hidden from nbgrader's globs)
REPORT = "grading-report.csv"     # under autograded/: the outcome of every job graded so far
JOURNAL = ".journal.jsonl"        # under autograded/: one line per outcome, appended as it comes
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")  # what `nbgrader submit` puts beside a notebook


class GradingError(RuntimeError):
    """A problem with the course folder or the setup, not with a submission."""


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

def parse_size(text: str) -> int:
    """'6G', '512M', '1073741824' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 6G, 512M)")
    return int(float(m[1]) * 1024 ** " KMGT".index(m[2].upper() or " "))


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def total_memory() -> int:
    """Physical memory of this machine, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass
class Settings:
    """How one grading run confines and times student code."""

    jobs: int = 1
    cell_timeout: int = 600
    notebook_timeout: int = 1800
    memory_bytes: int = 8 * 2**30
    cpu_seconds: int = 3600
    threads: int = 1
    processes: int = 512        # processes and threads of one submission, all together
    sandbox: str = "bwrap"
    data_dir: str | None = None
    cpu_given: bool = False     # cpu_seconds was set (argument or GRADING_CPU), not derived from threads

    @classmethod
    def resolve(cls, course: Path, jobs: int = 1, timeout: int | None = None,
                notebook_timeout: int | None = None, memory: str | None = None,
                cpu: int | None = None, sandbox_mode: str | None = None,
                processes: int | None = None) -> Settings:
        """Settings from the arguments, else the GRADING_* environment variables, else defaults (module docstring)."""
        env = os.environ
        jobs = max(1, int(jobs))
        cell = int(timeout or env.get("GRADING_TIMEOUT") or configured_timeout(course) or 600)
        whole = int(notebook_timeout or env.get("GRADING_NOTEBOOK_TIMEOUT") or 3 * cell)
        threads = int(env.get("GRADING_THREADS") or max(1, cpu_count() // jobs))
        mem = memory or env.get("GRADING_MEMORY")
        mem_bytes = parse_size(mem) if mem else min(8 * 2**30, int(total_memory() * 0.75 / jobs))
        mode = (sandbox_mode or env.get("GRADING_SANDBOX") or "bwrap").lower()
        if mode not in ("bwrap", "rlimits"):
            raise GradingError(f"GRADING_SANDBOX must be 'bwrap' or 'rlimits', not {mode!r}")
        from helper.data import data_root

        return cls(jobs=jobs, cell_timeout=cell, notebook_timeout=whole, memory_bytes=mem_bytes,
                   cpu_seconds=int(cpu or env.get("GRADING_CPU") or whole * threads),
                   threads=threads, processes=int(processes or env.get("GRADING_PROCESSES") or 512),
                   sandbox=mode, data_dir=os.path.realpath(data_root()),
                   cpu_given=bool(cpu or env.get("GRADING_CPU")))

    def task_limits(self, cluster: bool = False) -> dict:
        """What a grading task needs to confine one submission (plain data: it travels to workers).
        On a ``cluster`` the cores are the worker's, not this machine's: threads per kernel (and the
        CPU seconds derived from them) are left to the worker (``GRADING_THREADS`` there, default 1)."""
        remote = cluster and "GRADING_THREADS" not in os.environ
        return {"cell_timeout": self.cell_timeout, "notebook_timeout": self.notebook_timeout,
                "memory_bytes": self.memory_bytes,
                "cpu_seconds": None if remote and not self.cpu_given else self.cpu_seconds,
                "threads": None if remote else self.threads, "processes": self.processes, "sandbox": self.sandbox}


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
    return value if isinstance(value, str) and value else f"sqlite:///{course / 'gradebook.db'}"


# ---------------------------------------------------------------------------
# The course folder and its gradebook
# ---------------------------------------------------------------------------

def check_course(course: Path) -> Path:
    """The course folder, resolved; GradingError unless it holds nbgrader_config.py."""
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").exists():
        raise GradingError(f"{course} has no nbgrader_config.py: run this in the course folder")
    return course


def nbgrader_env(extra: dict | None = None) -> dict:
    """The environment for nbgrader: this venv's tools (nbgrader runs `alembic`) first on PATH,
    and this repository importable (for ``instructor.*`` preprocessors)."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    env.update(extra or {})
    return env


def run_nbgrader(args: list[str], course: Path, **kwargs) -> subprocess.CompletedProcess:
    """``python -m nbgrader ARGS`` in ``course`` with :func:`nbgrader_env` (kwargs go to subprocess.run)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                          env=nbgrader_env(kwargs.pop("env", None)), **kwargs)


@contextmanager
def gradebook(course: Path):
    """nbgrader's Gradebook for the course. Only the grading coordinator writes it."""
    from nbgrader.api import Gradebook

    # nbgrader calls `alembic` (from this venv) when it creates a new gradebook
    os.environ["PATH"] = nbgrader_env()["PATH"]
    with Gradebook(db_url(course)) as gb:
        yield gb


def released_parts(course: Path) -> list[str]:
    """Parts known to the gradebook, i.e. released with ``nbgrader generate_assignment``."""
    url = db_url(course)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return []
    with gradebook(course) as gb:
        return sorted(a.name for a in gb.assignments)


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
    submitted = course / "submitted"
    for part in parts:
        for folder in sorted(submitted.glob(f"*/{part}")):
            student = folder.parent.name
            if folder.is_dir() and (students is None or student in students):
                jobs.append(Job(student, part))
    return jobs


# ---------------------------------------------------------------------------
# Autograding
# ---------------------------------------------------------------------------

def require_sandbox(settings: Settings, say=print) -> str:
    """Check bubblewrap; refuse (GradingError) or warn loudly. Returns the status line."""
    ok, message = sandbox.probe()
    if ok:
        cg_ok, cg_message = limits.available()
        per_submission = (f"per-submission limits: {cg_message}" if cg_ok else
                          f"per-submission limits UNAVAILABLE ({cg_message}): memory is limited per process, "
                          "processes per user (see README, 'Grading safety')")
        return f"sandbox: bubblewrap ({message}); {per_submission}"
    if settings.sandbox == "rlimits":
        banner = "!" * 78
        say(f"{banner}\n!! WARNING: grading WITHOUT a sandbox: {message}\n"
            "!! Student code runs with resource limits only: it can read solutions/ and the\n"
            "!! gradebook, write anywhere this user can, and use the network.\n"
            f"{banner}")
        return f"sandbox: NONE (resource limits only): {message}"
    raise GradingError(
        f"cannot confine student code: {message}.\n"
        "Grading refused. Install bubblewrap, or accept the risk explicitly with "
        "GRADING_SANDBOX=rlimits (see the README, 'Grading safety').")


@dataclass
class Result:
    """The outcome of one submission, as the report and the command line show it."""

    student: str
    part: str
    status: str                 # "graded", "flagged" (not gradable, or a limit hit) or "tampered"
    score: float = 0.0
    max_score: float = 0.0
    reason: str = ""
    review: str = ""            # static-scan findings: graded, but an instructor should look
    seconds: float = 0.0        # the whole task, on its worker
    cell_seconds: float = 0.0   # of which the kernel ran cells; the rest is overhead
    setup_seconds: float = 0.0  # of which the worker prepared the part (its first task of the part)
    record_seconds: float = 0.0  # the coordinator's time to store it (notebook, gradebook, journal)
    log: str = ""
    sha256: str = ""
    host: str = ""


REPORT_FIELDS = ["student", "part", "status", "score", "max_score", "seconds", "cell_seconds", "reason",
                 "review", "log", "sha256", "host"]


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def submission_bytes(course: Path, job: Job) -> bytes:
    """The submitted notebook, read as a regular file (a link or FIFO is refused, never followed)."""
    from .tasks import read_regular_file

    return read_regular_file(course / "submitted" / job.student / job.part / f"{job.part}.ipynb")


def _timestamp(course: Path, job: Job) -> str | None:
    path = course / "submitted" / job.student / job.part / "timestamp.txt"
    try:
        from .tasks import read_regular_file

        return read_regular_file(path, 200).decode("utf-8", "replace").strip() or None
    except OSError:
        return None


def check_submission(course: Path, job: Job) -> str | None:
    """Why ``job`` cannot be sent to a worker at all, or None."""
    if re.search(r"[*?\[\]/\\]|^[-.]", job.student) or not job.student.isprintable():
        # nbgrader globs with the student id: "*" would grade everybody's folder as this one
        return "the folder name is not a usable student id (glob characters or leading - or .)"
    path = course / "submitted" / job.student / job.part / f"{job.part}.ipynb"
    if not os.path.lexists(path):
        found = sorted(p.name for p in path.parent.iterdir())
        return f"no {path.name} in the submission (found: {', '.join(found) or 'nothing'})"
    return None


def journal_path(course: Path) -> Path:
    """autograded/.journal.jsonl: one JSON line per recorded outcome."""
    return course / "autograded" / JOURNAL


def read_journal(course: Path) -> dict[tuple[str, str], dict]:
    """Every outcome recorded so far (the last one per student and part)."""
    rows: dict[tuple[str, str], dict] = {}
    path = journal_path(course)
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            rows[(row["student"], row["part"])] = row
    return rows


def _append_journal(course: Path, result: Result) -> None:
    path = journal_path(course)
    row = {k: getattr(result, k) for k in REPORT_FIELDS}
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def record(course: Path, outcome: dict, sha256: str, timestamp: str | None) -> Result:
    """Store one task's outcome: the graded notebook under autograded/, its log, and the
    gradebook (scores computed by nbgrader's own SaveAutoGrades from the graded notebook; a
    flagged or tampered submission scores 0 until an instructor looks)."""
    import nbformat
    from nbgrader.api import MissingEntry
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
    from sqlalchemy.exc import SAWarning

    start = time.monotonic()
    student, part = outcome["student"], outcome["part"]
    result = Result(student, part, outcome["status"], reason=_one_line(outcome.get("reason", "")),
                    review=_one_line("; ".join(outcome.get("review") or []), 1000),
                    seconds=outcome.get("seconds", 0.0), cell_seconds=outcome.get("execute_seconds", 0.0),
                    setup_seconds=outcome.get("setup_seconds", 0.0),
                    sha256=sha256, host=outcome.get("host", ""))
    log_path = course / "autograded" / LOG_DIR / part / f"{student}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text((outcome.get("log") or "") + (f"\n{result.reason}\n" if result.reason else ""))
    result.log = str(log_path.relative_to(course))
    folder = course / "autograded" / student / part
    if folder.is_symlink() or folder.exists():
        shutil.rmtree(folder) if not folder.is_symlink() else folder.unlink()
    graded = None
    if outcome.get("notebook"):
        graded = nbformat.reads(outcome["notebook"], as_version=4)
        folder.mkdir(parents=True)
        nbformat.write(graded, folder / f"{part}.ipynb")
        # nbgrader's feedback and exchange read these beside the graded notebook: copied from the
        # submission as regular files of a few bytes, never followed
        from .tasks import read_regular_file

        for name in EXCHANGE_FILES:
            try:
                data = read_regular_file(course / "submitted" / student / part / name, 4096)
            except OSError:
                continue
            (folder / name).write_bytes(data)

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
        if graded is not None:
            resources = {"nbgrader": {"db_url": db_url(course), "assignment": part, "notebook": part,
                                      "student": student}}
            SaveAutoGrades().preprocess(graded, resources)
            AssignLatePenalties().preprocess(graded, resources)
            gb.db.expire_all()
            submission = gb.find_submission(part, student)
        for nb in submission.notebooks:
            nb.flagged = result.status != "graded" or bool(result.review)
            if result.status != "graded" or graded is None:
                for grade in nb.grades:  # as nbgrader scores a missing notebook: zero
                    grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()
        result.score, result.max_score = submission.score, submission.max_score
    _append_journal(course, result)
    result.record_seconds = time.monotonic() - start
    return result


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


def autograde(course: Path, parts: list[str] | None = None, students: list[str] | None = None,
              settings: Settings | None = None, say=print, cluster: str | None = None,
              force: bool = False) -> list[Result]:
    """Autograde every submission of ``parts`` (default: all released parts), each as one task on
    a Dask cluster (local by default, ``cluster`` = scheduler address otherwise). What was graded
    before (same notebook bytes) is not graded again unless ``force``."""
    import secrets

    course = check_course(course)
    settings = settings or Settings.resolve(course)
    known = released_parts(course)
    if not known:
        raise GradingError("the gradebook knows no part: release first (make release PART=...)")
    parts = parts or known
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise GradingError(f"part {unknown[0]!r} was never released (make release PART={unknown[0]}); "
                           f"released parts: {', '.join(known)}")
    jobs = find_jobs(course, parts, students)
    if not jobs:
        say(f"nothing to grade: no submitted/<student>/<part>/ folder for {', '.join(parts)}")
        return []
    (course / "autograded").mkdir(exist_ok=True)
    say(require_sandbox(settings, say))
    done = {} if force else read_journal(course)
    results: list[Result] = []
    todo = []
    for job in jobs:
        why = check_submission(course, job)
        if why:
            outcome = {"student": job.student, "part": job.part, "status": "flagged", "reason": why}
            if why.startswith("the folder name"):
                results.append(Result(job.student, job.part, "flagged", reason=why))
                _append_journal(course, results[-1])
            else:
                results.append(record(course, outcome, "", None))
            continue
        try:
            data = submission_bytes(course, job)
        except OSError as exc:
            outcome = {"student": job.student, "part": job.part, "status": "flagged",
                       "reason": f"the submitted notebook cannot be read safely: {exc}"}
            results.append(record(course, outcome, "", None))
            continue
        digest = hashlib.sha256(data).hexdigest()
        previous = done.get((job.student, job.part))
        if previous and previous.get("sha256") == digest:
            continue  # graded before, unchanged since
        todo.append((job, digest))
    skipped = len(jobs) - len(todo) - len(results)
    if skipped:
        say(f"{skipped} submission(s) graded before and unchanged: not graded again (--force to regrade)")
    if not todo:
        write_report(course)
        return results
    limits = settings.task_limits(cluster=bool(cluster))
    say(f"grading {len(todo)} submission(s) of {', '.join(parts)} on "
        f"{'the cluster at ' + cluster if cluster else f'{settings.jobs} local worker(s)'}; "
        f"limits per submission: cell {settings.cell_timeout} s, notebook {settings.notebook_timeout} s, "
        f"memory {settings.memory_bytes / 2**30:.1f} GiB, {settings.processes} processes, "
        + (f"CPU {settings.cpu_seconds} s, {settings.threads} thread(s)" if limits["threads"]
           else "threads per kernel: the workers' GRADING_THREADS (default 1)"))
    from distributed import as_completed

    sources = {part: (course / "solutions" / part / f"{part}.ipynb").read_bytes() for part in parts}
    secret = secrets.token_hex(16)
    masked = [str(course)]
    client, local = _client(cluster, settings)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})) or settings.jobs)
        window = 2 * workers  # submissions in flight: memory stays flat for a class of 10,000
        pending = iter(todo)
        meta: dict[str, tuple[Job, str, str | None]] = {}

        def submit_next(queue) -> bool:
            try:
                job, digest = next(pending)
            except StopIteration:
                return False
            timestamp = _timestamp(course, job)
            spec = {"student": job.student, "part": job.part, "notebook": submission_bytes(course, job),
                    "source": sources[job.part], "timestamp": timestamp, "limits": limits,
                    "data_dir": settings.data_dir, "secret": secret, "masked": masked}
            future = client.submit(_grade_task, spec, key=f"grade-{job.student}-{job.part}-{secrets.token_hex(4)}",
                                   pure=False)
            meta[future.key] = (job, digest, timestamp)
            queue.add(future)
            return True

        queue = as_completed([])
        for _ in range(window):
            if not submit_next(queue):
                break
        bar = _progress(len(todo))
        if say is print:
            say = bar.write  # lines above the progress bar, not through it
        for future in queue:
            job, digest, timestamp = meta.pop(future.key)
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. the task's workers kept dying
                outcome = {"student": job.student, "part": job.part, "status": "flagged",
                           "reason": f"the grading task failed: {type(exc).__name__}: {_one_line(exc, 200)}"}
            result = record(course, outcome, digest, timestamp)
            results.append(result)
            bar.update(1)
            mark = "ok " if result.status == "graded" else "!! "
            say(f"{mark}{result.student:>16} / {result.part:<24} {result.score:5g} / "
                f"{result.max_score:<5g} {result.seconds:6.1f} s  {result.reason}"
                + (f"  [review: {result.review}]" if result.review else ""))
            submit_next(queue)
        bar.close()
    finally:
        client.close()
        if local is not None:
            local.close()
    write_report(course)
    bad = [r for r in results if r.status != "graded" or r.review]
    if bad:
        say("!" * 78)
        say(f"!! {len(bad)} submission(s) need a look. Flagged or tampered ones score 0 until you")
        say("!! look at them; 'review' ones keep their score (logs under autograded/.logs/):")
        for r in bad:
            what = r.status if r.status != "graded" else "review"
            say(f"!!   {r.student} / {r.part}: {what}: {r.reason or r.review}")
        say("!" * 78)
    return results


def _grade_task(spec: dict) -> dict:
    from . import tasks

    return tasks.grade(spec)


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="grading", unit="submission", mininterval=1.0, disable=total < 2)


def write_report(course: Path) -> Path:
    """autograded/grading-report.csv: the latest outcome of every student and part (from the journal)."""
    path = course / "autograded" / REPORT
    rows = read_journal(course)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=REPORT_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for key in sorted(rows):
            row = dict(rows[key])
            for key in ("seconds", "cell_seconds"):
                row[key] = f"{float(row.get(key) or 0):.2f}"
            writer.writerow(row)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------
# Feedback, grades, collection
# ---------------------------------------------------------------------------

FEEDBACK_PREPROCESSORS = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "instructor.preprocessors.FeedbackWithoutHiddenTests",
]


def feedback(course: Path, parts: list[str] | None = None) -> None:
    """nbgrader generate_feedback: feedback/<student>/<part>/<part>.html for graded work, without
    hidden tests (nbgrader_config.py sets the same pipeline for formgrader)."""
    from concurrent.futures import ThreadPoolExecutor

    course = check_course(course)
    pipeline = "[" + ",".join(repr(p) for p in FEEDBACK_PREPROCESSORS) + "]"
    parts = list(parts or released_parts(course))

    def one(part: str) -> None:
        run_nbgrader(["generate_feedback", part, "--force", "--log-level=WARN",
                      f"--GenerateFeedback.preprocessors={pipeline}"], course, check=True)

    # one nbgrader process per part, as many at once as there are cores: each writes only
    # feedback/<student>/<part>/ and reads the gradebook
    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), cpu_count()))) as pool:
        for done in [pool.submit(one, part) for part in parts]:
            done.result()


def export_grades(course: Path, out: Path) -> Path:
    """nbgrader export (one CSV row per student and part) plus what grading said of each row:
    ``status`` (graded, flagged, tampered, or missing when nothing was graded), ``reason`` and
    ``review``, so a flagged 0 never reads like an earned 0."""
    course = check_course(course)
    out = Path(out).resolve()
    run_nbgrader(["export", f"--to={out}", "--log-level=WARN"], course, check=True)
    outcomes = read_journal(course)
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        outcome = outcomes.get((row.get("student_id", ""), row.get("assignment", "")), {})
        row["status"] = outcome.get("status") or ("missing" if not row.get("timestamp") else "graded")
        row["reason"] = outcome.get("reason", "")
        row["review"] = outcome.get("review", "")
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields + ["status", "reason", "review"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def collect_regexp(part: str) -> str:
    """How a downloaded file is named: ``<student>_<part>.ipynb`` or ``<student>_<anything>_<part>.ipynb``."""
    return (r"(?:.*/)?(?P<student_id>[A-Za-z0-9.@-]+)_(?:.*_)?(?P<file_id>"
            + re.escape(part) + r")\.ipynb$")


@dataclass
class CollectLimits:
    """Bounds checked BEFORE anything of an uploaded archive is written."""

    members: int = 200              # entries in one archive
    member_bytes: int = 64 * 2**20  # one notebook, expanded
    total_bytes: int = 256 * 2**20  # one archive, expanded (what it declares and what it holds)
    ratio: int = 200                # expanded / compressed size of one member (zip bombs)


def _archive_notebooks(path: Path, pattern: re.Pattern, lim: CollectLimits) -> list[tuple[str, bytes]]:
    """The notebooks in one .zip that match ``pattern``: [(student, bytes)]. Raises ValueError with
    a one-line reason for anything hostile or broken; nothing is extracted to disk."""
    import stat as stat_
    import zipfile
    import zlib

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"not a readable zip archive ({_one_line(exc, 80)})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > lim.members:
            raise ValueError(f"{len(infos)} entries (limit {lim.members})")
        declared = 0
        for info in infos:
            name = info.filename
            mode = info.external_attr >> 16
            if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
                raise ValueError(f"absolute path in the archive: {name!r}")
            if ".." in re.split(r"[/\\]", name):
                raise ValueError(f"path leaving the folder (..) in the archive: {name!r}")
            if stat_.S_ISLNK(mode):
                raise ValueError(f"symbolic link in the archive: {name!r}")
            if info.flag_bits & 0x1:
                raise ValueError(f"encrypted entry in the archive: {name!r}")
            if info.file_size > lim.member_bytes:
                raise ValueError(f"{name!r} expands to {info.file_size:,} bytes (limit {lim.member_bytes:,})")
            if info.compress_size and info.file_size / info.compress_size > lim.ratio:
                raise ValueError(f"{name!r} is compressed {info.file_size // info.compress_size}:1 (a zip bomb?)")
            declared += info.file_size
        if declared > lim.total_bytes:
            raise ValueError(f"expands to {declared:,} bytes (limit {lim.total_bytes:,})")
        found = []
        for info in infos:
            m = pattern.match(info.filename)
            if info.is_dir() or not m:
                continue
            try:
                with archive.open(info) as member:  # read at most the declared size + 1: never trust it
                    data = member.read(min(info.file_size, lim.member_bytes) + 1)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{info.filename!r} is corrupt ({_one_line(exc, 80)})") from None
            if len(data) > info.file_size:
                raise ValueError(f"{info.filename!r} holds more than it declares")
            found.append((m["student_id"], data))
        return found


def collect(course: Path, source: Path, part: str, say=print) -> dict:
    """Downloaded files and .zip archives in ``source`` -> submitted/<student>/<part>/<part>.ipynb.

    Each upload on its own: a bad one (hostile or broken archive, link, oversized file) is reported
    with a one-line reason and skipped; everyone else is collected. Archives are checked (entry
    count, sizes, compression ratio, traversal, absolute and link entries) before anything of
    them is read, and nothing is extracted to disk but the notebooks themselves.
    Returns {"collected": [(student, file)], "rejected": [(file, reason)]}."""
    from .tasks import read_regular_file

    course = check_course(course)
    source = Path(source).resolve()
    if not source.is_dir():
        raise GradingError(f"{source} is not a folder of downloaded submissions")
    pattern = re.compile(collect_regexp(part))
    lim = CollectLimits()
    collected: list[tuple[str, str]] = []
    rejected: list[tuple[str, str]] = []
    notebooks: dict[str, tuple[str, bytes]] = {}
    for path in sorted(source.iterdir()):
        name = path.name
        try:
            if path.is_symlink() or not path.is_file():
                raise ValueError("not a regular file (link, folder or device)")
            if name.endswith(".zip"):
                found = _archive_notebooks(path, pattern, lim)
                if not found:
                    raise ValueError(f"no notebook named <student>_{part}.ipynb inside")
                for student, data in found:
                    notebooks[student] = (name, data)
            elif pattern.match(name):
                m = pattern.match(name)
                notebooks[m["student_id"]] = (name, read_regular_file(path, lim.member_bytes))
            else:
                continue  # another part's file, or not a submission
        except (ValueError, OSError) as exc:
            rejected.append((name, _one_line(exc, 200)))
    for student, (name, data) in sorted(notebooks.items()):
        if re.search(r"^[-.]", student):
            rejected.append((name, f"unusable student id {student!r}"))
            continue
        folder = course / "submitted" / student / part
        if folder.is_symlink():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        (folder / f"{part}.ipynb").write_bytes(data)
        collected.append((student, name))
    say(f"collected {len(collected)} submission(s) of {part}; rejected {len(rejected)} upload(s)")
    for name, reason in rejected:
        say(f"!! rejected {name}: {reason}")
    return {"collected": collected, "rejected": rejected}
