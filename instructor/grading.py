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
    GRADING_SANDBOX           bwrap (default: refuse to grade without it) or rlimits (grade
                              with resource limits only, NOT confined: see README)
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import sandbox
from .worker import GradebookLock

ROOT = Path(__file__).resolve().parents[1]  # the course repository: helper/ lives here
LOG_DIR = ".logs"                 # under autograded/: one log per job (hidden from nbgrader's globs)
REPORT = "grading-report.csv"     # under autograded/: the outcome of every job graded so far


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
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def total_memory() -> int:
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
    sandbox: str = "bwrap"
    data_dir: str | None = None
    extra_env: dict = field(default_factory=dict)

    @classmethod
    def resolve(cls, course: Path, jobs: int = 1, timeout: int | None = None,
                notebook_timeout: int | None = None, memory: str | None = None,
                cpu: int | None = None, sandbox_mode: str | None = None) -> "Settings":
        env = os.environ
        jobs = max(1, int(jobs))
        cell = int(timeout or env.get("GRADING_TIMEOUT") or configured_timeout(course) or 600)
        whole = int(notebook_timeout or env.get("GRADING_NOTEBOOK_TIMEOUT") or 3 * cell)
        threads = max(1, cpu_count() // jobs)
        mem = memory or env.get("GRADING_MEMORY")
        mem_bytes = parse_size(mem) if mem else min(8 * 2**30, int(total_memory() * 0.75 / jobs))
        mode = (sandbox_mode or env.get("GRADING_SANDBOX") or "bwrap").lower()
        if mode not in ("bwrap", "rlimits"):
            raise GradingError(f"GRADING_SANDBOX must be 'bwrap' or 'rlimits', not {mode!r}")
        data = env.get("COURSE_DATA") or os.path.expanduser("~/.pytorch")
        return cls(jobs=jobs, cell_timeout=cell, notebook_timeout=whole, memory_bytes=mem_bytes,
                   cpu_seconds=int(cpu or env.get("GRADING_CPU") or whole * threads),
                   threads=threads, sandbox=mode, data_dir=os.path.realpath(data))


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
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                          env=nbgrader_env(kwargs.pop("env", None)), **kwargs)


def lock_path(course: Path) -> Path:
    path = course / "autograded"
    path.mkdir(exist_ok=True)
    return path / ".gradebook.lock"


@contextmanager
def gradebook(course: Path):
    """nbgrader's Gradebook for the course, opened under the same lock the grading jobs use."""
    from nbgrader.api import Gradebook

    lock = GradebookLock(str(lock_path(course)))
    with lock.held():
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
    student: str
    part: str

    @property
    def key(self) -> str:
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

@dataclass
class Result:
    student: str
    part: str
    status: str                 # "graded" or "flagged"
    score: float = 0.0
    max_score: float = 0.0
    reason: str = ""
    seconds: float = 0.0
    log: str = ""


def sandbox_config(course: Path, settings: Settings) -> dict:
    """What ``instructor/sandbox.py launch`` needs to start one confined kernel."""
    helper = course / "helper" if (course / "helper").is_dir() else ROOT / "helper"
    binds = [[p, p] for p in sandbox.python_paths()]
    if helper.is_dir():
        binds.append([str(helper.resolve()), "/opt/course/helper"])
    env = {
        "PYTHONPATH": "/opt/course",
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "NBGRADER_EXECUTION": "autograde",
        "LANG": "C.UTF-8",
        **{f"{name}_NUM_THREADS": str(settings.threads) for name in ("OMP", "MKL", "OPENBLAS")},
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks: keep as set
        if os.environ.get(name):
            env[name] = os.environ[name]
    if settings.data_dir and os.path.isdir(settings.data_dir):
        binds.append([settings.data_dir, settings.data_dir])
        env["COURSE_DATA"] = settings.data_dir
    env.update(settings.extra_env)
    return {
        "mode": settings.sandbox,
        "bwrap": sandbox.bwrap_path(),
        "python": sandbox.kernel_python(),
        "allowed_parent": str((course / "autograded").resolve()),
        "masked": [str(course.resolve())],
        "ro_binds": binds,
        "env": env,
        "limits": {
            "memory_bytes": settings.memory_bytes,
            "cpu_seconds": settings.cpu_seconds,
            "file_bytes": 1 * 2**30,
            "open_files": 4096,
            "tmp_bytes": 512 * 2**20,
        },
    }


def require_sandbox(settings: Settings, say=print) -> str:
    """Check bubblewrap; refuse (GradingError) or warn loudly. Returns the status line."""
    ok, message = sandbox.probe()
    if ok:
        return f"sandbox: bubblewrap ({message})"
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


def _diagnose(log: str) -> str:
    """A one-line reason from a failed nbgrader job's log."""
    checks = [
        (r"DeadKernelError|Kernel died", "the kernel died (it crashed, exited, or hit the memory/CPU limit)"),
        (r"Timeout waiting for IOPub|CellTimeoutError", "a cell kept running after the timeout and would not stop"),
        (r"NotJSONError|Notebook does not appear to be JSON|JSONDecodeError|Unreadable Notebook",
         "the notebook is not valid JSON / not a notebook"),
        (r"ValidationError|NotebookValidationError", "the notebook does not pass nbformat validation"),
        (r"No notebooks were matched|No notebooks found", "no notebook with the expected name"),
        (r"NoSuchKernel", "the grading kernel could not be found"),
    ]
    for pattern, reason in checks:
        if re.search(pattern, log):
            return reason
    errors = [line for line in log.splitlines() if "ERROR" in line or "Error" in line]
    return errors[-1].strip()[:200] if errors else "nbgrader failed (see the log)"


def _run_job(job: Job, course: Path, settings: Settings, run_dir: Path, jupyter_dir: Path) -> Result:
    start = time.monotonic()
    log_path = course / "autograded" / LOG_DIR / job.part / f"{job.student}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    result = Result(job.student, job.part, "flagged", log=str(log_path.relative_to(course)))
    notebook = course / "submitted" / job.student / job.part / f"{job.part}.ipynb"
    if re.search(r"[*?\[\]]|^[-.]", job.student):
        # nbgrader globs with the student id: "*" would grade everybody's folder as this one
        result.reason = "the folder name is not a usable student id (glob characters or leading - or .)"
        log_path.write_text(result.reason + "\n")
        result.seconds = time.monotonic() - start
        return result
    if not notebook.exists():
        found = sorted(p.name for p in notebook.parent.iterdir())
        result.reason = f"no {notebook.name} in the submission (found: {', '.join(found) or 'nothing'})"
        log_path.write_text(result.reason + "\n")
        _record(course, job, result, missing=True)
        result.seconds = time.monotonic() - start
        return result

    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=run_dir))
    args = [
        job.part, f"--student={job.student}", "--force", "--create",
        "--log-level=INFO",
        "--Execute.kernel_name=" + sandbox.KERNEL_NAME,
        f"--Execute.timeout={settings.cell_timeout}",
        "--Execute.interrupt_on_timeout=True",
        "--KernelManager.transport=ipc",
        f"--KernelManager.ip={job_dir / 'kernel'}",
        "--OverwriteCells.add_missing_cells=True",
    ]
    env = nbgrader_env({
        "JUPYTER_PATH": os.pathsep.join(p for p in (str(jupyter_dir), os.environ.get("JUPYTER_PATH")) if p),
        "JUPYTER_RUNTIME_DIR": str(job_dir),
        "TMPDIR": str(job_dir),  # jupyter_client writes kernel connection files here
    })
    cmd = [sys.executable, "-m", "instructor.worker", str(lock_path(course)), "--", *args]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=settings.notebook_timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # bwrap's --die-with-parent takes the kernel down
            rc, timed_out = proc.wait(), True
    shutil.rmtree(job_dir, ignore_errors=True)
    text = log_path.read_text(errors="replace")
    autograded = course / "autograded" / job.student / job.part / notebook.name
    if timed_out:
        result.reason = f"stopped after the notebook time limit ({settings.notebook_timeout} s)"
        shutil.rmtree(autograded.parent, ignore_errors=True)  # as nbgrader does on failure
    elif rc != 0 or "There was an error processing assignment" in text or not autograded.exists():
        result.reason = _diagnose(text)
    else:
        result.status, result.reason = "graded", ""
    _record(course, job, result)
    result.seconds = time.monotonic() - start
    return result


def _record(course: Path, job: Job, result: Result, missing: bool = False) -> None:
    """Store the outcome in the gradebook: scores for graded work, the flag for the rest."""
    from nbgrader.api import MissingEntry
    from sqlalchemy.exc import SAWarning

    with gradebook(course) as gb, warnings.catch_warnings():
        # nbgrader's update_or_create_submission trips SQLAlchemy's autoflush warnings
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(job.student)
        try:
            submission = gb.find_submission(job.part, job.student)
        except MissingEntry:
            submission = gb.update_or_create_submission(job.part, job.student)
        for nb in submission.notebooks:
            nb.flagged = result.status != "graded"
            if missing:  # as nbgrader scores a missing notebook: zero, nothing to grade by hand
                for grade in nb.grades:
                    grade.auto_score, grade.needs_manual_grade = 0, False
        gb.db.commit()
        result.score, result.max_score = submission.score, submission.max_score


def autograde(course: Path, parts: list[str] | None = None, students: list[str] | None = None,
              settings: Settings | None = None, say=print) -> list[Result]:
    """Autograde every submission of ``parts`` (default: all released parts)."""
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
    say(require_sandbox(settings, say))
    say(f"grading {len(jobs)} submission(s) of {', '.join(parts)} with {settings.jobs} job(s); "
        f"limits per kernel: cell {settings.cell_timeout} s, notebook {settings.notebook_timeout} s, "
        f"memory {settings.memory_bytes / 2**30:.1f} GiB, CPU {settings.cpu_seconds} s, "
        f"{settings.threads} thread(s)")
    run_dir = Path(tempfile.mkdtemp(prefix="grading-"))
    try:
        jupyter_dir = run_dir / "jupyter"
        sandbox.write_kernelspec(jupyter_dir, sandbox_config(course, settings))
        with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
            futures = [pool.submit(_run_job, job, course, settings, run_dir, jupyter_dir) for job in jobs]
            results = []
            for future in futures:
                result = future.result()
                results.append(result)
                mark = "ok " if result.status == "graded" else "!! "
                say(f"{mark}{result.student:>16} / {result.part:<24} {result.score:5g} / "
                    f"{result.max_score:<5g} {result.seconds:6.1f} s  {result.reason}")
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    write_report(course, results)
    flagged = [r for r in results if r.status != "graded"]
    if flagged:
        say("!" * 78)
        say(f"!! {len(flagged)} submission(s) could not be graded automatically. They are flagged in")
        say("!! the gradebook and score 0 until you look at them (logs under autograded/.logs/):")
        for r in flagged:
            say(f"!!   {r.student} / {r.part}: {r.reason}")
        say("!" * 78)
    return results


def write_report(course: Path, results: list[Result]) -> Path:
    """Merge ``results`` into autograded/grading-report.csv (one row per student and part)."""
    path = course / "autograded" / REPORT
    rows = {}
    if path.exists():
        with open(path, newline="") as f:
            rows = {(r["student"], r["part"]): r for r in csv.DictReader(f)}
    for r in results:
        rows[(r.student, r.part)] = {"student": r.student, "part": r.part, "status": r.status,
                                     "score": r.score, "max_score": r.max_score,
                                     "seconds": f"{r.seconds:.1f}", "reason": r.reason, "log": r.log}
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "part", "status", "score", "max_score",
                                               "seconds", "reason", "log"])
        writer.writeheader()
        writer.writerows(rows[k] for k in sorted(rows))
    return path


# ---------------------------------------------------------------------------
# Feedback, grades, collection
# ---------------------------------------------------------------------------

def feedback(course: Path, parts: list[str] | None = None) -> None:
    """nbgrader generate_feedback: feedback/<student>/<part>/<part>.html for graded work."""
    course = check_course(course)
    for part in parts or released_parts(course):
        run_nbgrader(["generate_feedback", part, "--force", "--log-level=WARN"], course, check=True)


def export_grades(course: Path, out: Path) -> Path:
    """nbgrader export: one CSV row per student and part."""
    course = check_course(course)
    out = Path(out).resolve()
    run_nbgrader(["export", f"--to={out}", "--log-level=WARN"], course, check=True)
    return out


def collect_regexp(part: str) -> str:
    """How a downloaded file is named: ``<student>_<part>.ipynb`` or ``<student>_<anything>_<part>.ipynb``."""
    return (r"(?:.*/)?(?P<student_id>[A-Za-z0-9.@-]+)_(?:.*_)?(?P<file_id>"
            + re.escape(part) + r")\.ipynb$")


def collect(course: Path, source: Path, part: str) -> None:
    """nbgrader zip_collect: files and .zip archives in ``source`` -> submitted/<student>/<part>/."""
    course = check_course(course)
    source = Path(source).resolve()
    if not source.is_dir():
        raise GradingError(f"{source} is not a folder of downloaded submissions")
    archive = course / "downloaded" / part / "archive"
    if archive.exists():
        shutil.rmtree(archive)
    shutil.copytree(source, archive)
    run_nbgrader(["zip_collect", part, "--force", "--log-level=WARN",
                  f"--FileNameCollectorPlugin.named_regexp={collect_regexp(part)}"], course, check=True)
