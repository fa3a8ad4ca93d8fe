"""One submission graded end to end, in a private scratch folder: the grading task.

:func:`grade` runs wherever a grading worker runs (a process of the local cluster, or a Dask worker
on another machine). It needs nothing from the course folder: the task carries the submitted
notebook, the part's source notebook (with its hidden tests) and the limits, and it returns the
graded notebook and the outcome. Only the coordinator (:mod:`instructor.coordinator`) writes the
gradebook and ``autograded/``, so no lock has to span machines.

Inside the task, nbgrader's own ``Autograde`` converter runs in this process (imported once per
worker, not once per submission) on a throw-away course: a private gradebook built from the source
notebook (once per worker and part, then copied), the submission, and a kernelspec that starts the
confined kernel of :mod:`instructor.sandbox`. The pipeline is nbgrader's default with:

- ``LimitOutput`` swapped for :class:`~instructor.preprocessors.LimitOutputSize`;
- tamper canaries inserted before ``Execute`` and checked (and removed) after it
  (:mod:`instructor.integrity.canaries`);
- stderr in graded cells made harmless (a progress bar or a warning is no failure; an assert is);
- no ``SaveAutoGrades``/``AssignLatePenalties``: the coordinator runs them on the returned
  notebook against the course's gradebook.

Student code never runs in this process: the kernel runs in bubblewrap, with a control group that
limits the memory and process count of the whole submission (:mod:`instructor.limits`), and a
working folder that is a tmpfs inside the sandbox. What comes back is the notebook nbgrader wrote,
read as a regular file (``lstat``): nothing the student created is ever followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import limits, sandbox, zygotes
from .course import (
    ROOT,
    graded_dir,
    locked_ids,
    metadata_problem,
    nbgrader_config,
    notebook_in,
    read_regular_file,
    submission_dir,
)
from .integrity import scanner
from .outcome import Outcome, diagnose

WALL_FACTOR = 10                  # nbclient's wall-clock cell timeout: a backstop at this many times the limit
STARTUP_TIMEOUT = 300             # seconds for the sandboxed kernel to start (preloads included)
# Seconds to wait for a cell's last outputs after its reply: nbclient's default (4 s) flagged a
# cell that printed 50 MB on a busy machine as one that "would not stop". The clock still bounds
# the notebook; a thread printing after its cell does not hold this wait.
IOPUB_TIMEOUT = 120
LOG_CHARS = 200_000               # the end of a task's log that travels back
_TEMPLATES: dict[str, Path] = {}  # per worker process: source digest -> private gradebook


def _run_converter(converter_class, cfg, log: logging.Logger) -> None:
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=cfg)
    converter = converter_class(coursedir=coursedir, config=cfg, log=log)
    converter.start()


def private_gradebook(part: str, source: bytes, cache: Path) -> Path:
    """A gradebook that knows ``part`` as released from ``source``: built once per worker."""
    from nbgrader.converters import GenerateAssignment

    digest = hashlib.sha256(part.encode() + b"\0" + source).hexdigest()[:16]
    if digest in _TEMPLATES and _TEMPLATES[digest].exists():
        return _TEMPLATES[digest]
    course = cache / f"release-{digest}"
    shutil.rmtree(course, ignore_errors=True)
    (course / "source" / part).mkdir(parents=True)
    (course / "source" / part / f"{part}.ipynb").write_bytes(source)
    log = logging.getLogger(f"instructor.release.{digest}")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    cfg = nbgrader_config(course, part)
    cfg.GenerateAssignment.force = True
    _run_converter(GenerateAssignment, cfg, log)
    _TEMPLATES[digest] = course / "gradebook.db"
    return _TEMPLATES[digest]


def _grading_converter():
    from nbgrader.converters import Autograde

    class ConfinedAutograde(Autograde):
        """nbgrader's Autograde that never follows what the student left in its output folder."""

        def init_destination(self, assignment_id: str, student_id: str) -> bool:
            return True  # a throw-away course: the output folder, made for the early kernel, is kept

        def set_permissions(self, assignment_id: str, student_id: str) -> None:
            dest = Path(self._format_dest(assignment_id, student_id))
            for path in dest.glob("*.ipynb"):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    os.chmod(path, 0o644)

    return ConfinedAutograde


# ---------------------------------------------------------------------------
# The task, stage by stage
# ---------------------------------------------------------------------------

@dataclass
class _Run:
    """One task's private state: its scratch folder, its log, the submission's control group."""

    spec: dict
    scratch: Path
    lim: dict
    stream: io.StringIO = field(default_factory=io.StringIO)
    group: limits.Group | None = None
    zygote_seconds: float = 0.0   # starting this worker's zygote for the part (warm kernels, first task)

    @property
    def course(self) -> Path:
        return self.scratch / "course"

    @property
    def pid_file(self) -> str:
        return str(self.scratch / "kernel.pid")

    @property
    def log(self) -> logging.Logger:
        log = logging.getLogger(f"instructor.task.{self.scratch.name}")
        if not log.handlers:
            log.setLevel(logging.INFO)
            log.propagate = False
            log.addHandler(logging.StreamHandler(self.stream))
        return log

    def log_tail(self) -> str:
        return self.stream.getvalue()[-LOG_CHARS:]


def _prepare_process() -> None:
    """Once per worker, harmless to repeat: nbformat's compiled validator (faster: it checks
    every notebook nbgrader reads and writes), the gradebook's schema version read in this
    process (course.schema_version_in_process) and this venv's tools on PATH."""
    from .course import schema_version_in_process

    os.environ.setdefault("NBFORMAT_VALIDATOR", "fastjsonschema")
    schema_version_in_process()
    tools = os.path.dirname(sys.executable)
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = tools + os.pathsep + os.environ.get("PATH", "")


def _read_notebooks(spec: dict):
    """(submitted notebook, source notebook); ValueError with the reason if the upload is not one."""
    import nbformat

    try:
        submitted = nbformat.reads(spec["notebook"].decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable upload is the student's, not ours
        raise ValueError(f"the notebook is not valid notebook JSON ({type(exc).__name__})") from None
    if problem := metadata_problem(submitted):
        raise ValueError(problem)
    return submitted, nbformat.reads(spec["source"].decode("utf-8"), as_version=4)


@contextlib.contextmanager
def _scratch(spec: dict):
    """A private folder for one task under this worker's cache (removed afterwards), and the cache."""
    cache = Path(tempfile.gettempdir()) / f"course-grading-{os.getuid()}" / f"worker-{os.getpid()}"
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    run = _Run(spec, Path(tempfile.mkdtemp(prefix="job-", dir=cache)), limits.worker_limits(spec["limits"]))
    try:
        yield run, cache
    finally:
        if run.group is not None:
            run.group.destroy()
        shutil.rmtree(run.scratch, ignore_errors=True)


def _build_course(run: _Run, cache: Path) -> float:
    """The throw-away course: gradebook (built once per worker and part, then copied), source
    and submission. Returns the seconds spent building the gradebook (~0 after the first time)."""
    spec, part = run.spec, run.spec["part"]
    start = time.monotonic()
    template = private_gradebook(part, spec["source"], cache)
    setup = time.monotonic() - start
    folder = submission_dir(run.course, spec["student"], part)
    folder.mkdir(parents=True)
    notebook_in(folder, part).write_bytes(spec["notebook"])
    if spec.get("timestamp"):
        (folder / "timestamp.txt").write_text(spec["timestamp"])
    (run.course / "source" / part).mkdir(parents=True)
    notebook_in(run.course / "source" / part, part).write_bytes(spec["source"])
    shutil.copy(template, run.course / "gradebook.db")
    return setup


def _confine(run: _Run) -> None:
    """The submission's control group (memory and processes of all its processes together)."""
    try:
        run.group = limits.create(run.lim["memory_bytes"], run.lim["processes"])
        run.log.info("per-submission limits: %s", run.group.dirs)
    except OSError as exc:
        run.group = None
        run.log.warning("per-submission limits unavailable (%s): limits are per process", exc)


@contextlib.contextmanager
def _sandboxed_kernel(run: _Run, cache: Path):
    """The kernelspec that starts the confined kernel, found by jupyter_client through
    JUPYTER_PATH (and its connection files in JUPYTER_RUNTIME_DIR): set for this task only.
    With the warm path on, the kernel is forked from this worker's zygote (:mod:`instructor.zygotes`)."""
    jupyter_dir, kernel_dir = run.scratch / "jupyter", run.scratch / "kernel"
    spec = run.spec
    config = sandbox.kernel_config(
        run.lim, run.scratch, run.group.dirs if run.group else None, sandbox.preload_modules(spec["source"]),
        spec.get("data_dir"), spec.get("masked", []), ROOT / "helper")
    if run.lim.get("warm"):
        start = time.monotonic()
        run.log.info("%s", zygotes.attach(config, cache))
        run.zygote_seconds = time.monotonic() - start
    sandbox.write_kernelspec(jupyter_dir, config)
    kernel_dir.mkdir()
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")}
    os.environ.update(JUPYTER_PATH=str(jupyter_dir), JUPYTER_RUNTIME_DIR=str(kernel_dir))
    try:
        yield kernel_dir
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _grading_config(run: _Run, kernel_dir: Path):
    """nbgrader's Autograde on the throw-away course, with the course's pipeline and limits."""
    from . import preprocessors

    spec, lim = run.spec, run.lim
    cfg = nbgrader_config(run.course, spec["part"], spec["student"])
    cfg.Autograde.force = True
    cfg.Autograde.create_student = True
    cfg.Autograde.autograde_preprocessors = preprocessors.autograde_pipeline()
    cfg.Execute.kernel_name = sandbox.KERNEL_NAME
    # A cell's limit is read on the submission's own clock (CPU time while it computes, wall
    # time while it waits): a busy machine does not stretch it. Wall time is only a backstop.
    cfg.SupervisedExecute.cell_limit = float(lim["cell_timeout"])
    cfg.SupervisedExecute.grace = max(2.0, lim["cell_timeout"] / 20)
    cfg.SupervisedExecute.threads = lim["threads"]
    cfg.SupervisedExecute.cgroup = run.group.dirs if run.group else {}
    cfg.SupervisedExecute.pid_file = run.pid_file
    cfg.SupervisedExecute.record_path = str(run.scratch / "stops.json")
    cfg.Execute.timeout = int(lim["cell_timeout"] * WALL_FACTOR)
    cfg.Execute.interrupt_on_timeout = True
    # The kernel imports PyTorch before it answers: on a loaded machine that takes a while.
    cfg.Execute.startup_timeout = STARTUP_TIMEOUT
    cfg.Execute.iopub_timeout = IOPUB_TIMEOUT
    # Plain tracebacks: IPython's default (context lines, through stack_data) costs ~25 ms for
    # every failed assert, canaries included; feedback shows a failed test's last line anyway.
    cfg.Execute.extra_arguments = ["--InteractiveShell.xmode=Plain"]
    # The sandbox is thrown away: kill it when the last cell has run instead of waiting
    # for a graceful shutdown (~1 s with PyTorch loaded). The control group reaps the rest.
    cfg.Execute.shutdown_kernel = "immediate"
    cfg.KernelManager.transport = "ipc"
    cfg.KernelManager.ip = str(kernel_dir / "kernel")
    cfg.KernelManager.connection_file = str(kernel_dir / "connection.json")
    cfg.OverwriteCells.add_missing_cells = True
    cfg.InsertCanaries.secret = spec["secret"]
    cfg.CheckCanaries.secret = spec["secret"]
    cfg.CheckCanaries.verdict_path = str(run.scratch / "canaries.json")
    cfg.SupervisedExecute.early = run.scratch.name
    return cfg


def _execute(run: _Run, cfg) -> tuple[Exception | None, bool]:
    """Run nbgrader with the notebook's time limit watched on the submission's own clock.
    Returns (what nbgrader raised or None, whether the notebook ran out of time)."""
    timed_out, finished = threading.Event(), threading.Event()

    def watch_notebook():
        clock = limits.SubmissionClock(run.group, run.pid_file, run.lim["threads"])
        while not finished.wait(0.25):
            if clock.read() > run.lim["notebook_timeout"]:
                timed_out.set()
                limits.kill_submission(run.group, run.pid_file)  # nbgrader then sees a dead kernel
                return

    timer = threading.Thread(target=watch_notebook, daemon=True)
    timer.start()
    failed = None
    try:
        _run_converter(_grading_converter(), cfg, run.log)
    except Exception as exc:  # noqa: BLE001 - nbgrader raises NbGraderException and others
        failed = exc
    finally:
        finished.set()
        timer.join()
    return failed, timed_out.is_set()


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.exists() else default


def _limit_hits(run: _Run) -> list[str]:
    events = run.group.events() if run.group else {"pids": 0, "oom_kill": 0}
    hits = []
    if events["oom_kill"]:
        hits.append(f"hit the memory limit of {run.lim['memory_bytes'] / 2**30:.1f} GiB for the whole "
                    f"submission ({events['oom_kill']} process(es) killed)")
    if events["pids"]:
        hits.append(f"hit the limit of {run.lim['processes']} processes/threads for the whole submission")
    return hits


def _verdict(run: _Run, out: Outcome, failed: Exception | None, timed_out: bool) -> list[str]:
    """Fill in ``out`` (status, reason, graded notebook, kernel seconds) from what the run left;
    returns what the instructor should review about stopped cells."""
    lim, spec = run.lim, run.spec
    out.log_text = run.log_tail()
    graded = notebook_in(run.course / "autograded" / spec["student"] / spec["part"], spec["part"])
    verdict = _read_json(run.scratch / "canaries.json", {})
    out.cell_seconds = float(verdict.get("execute_seconds") or 0.0)
    out.canary_seconds = float(verdict.get("canary_seconds") or 0.0)
    stops = _read_json(run.scratch / "stops.json", [])
    stuck = [s["label"] for s in stops if s["kind"] == "killed"] or \
        [s["label"] for s in stops if s["kind"] == "wall" and failed is not None]
    limit_hits = _limit_hits(run)
    if timed_out:
        out.reason = f"stopped after the notebook time limit ({lim['notebook_timeout']} s)"
    elif stuck and not limit_hits:
        out.reason = f"timed out in {stuck[0]}: it kept running after its time limit and would not stop"
    elif failed is not None or not graded.exists():
        out.reason = "; ".join(limit_hits) or diagnose(out.log_text)
    else:
        out.notebook = read_regular_file(graded).decode("utf-8")
        if limit_hits:  # a canary starved by the submission's own limit is no tampering
            out.reason = "; ".join(limit_hits)
        elif str(verdict.get("reason") or "").startswith(("timed out", "out of memory")):
            out.reason = verdict["reason"]  # flagged: the kernel could not be checked after it
        elif verdict.get("reason"):
            out.status, out.reason = "tampered", verdict["reason"]
        else:
            out.status = "graded"
            limit = {"wall": f"{lim['cell_timeout'] * WALL_FACTOR} s of wall time"}
            return [f"timed out in {s['label']}: stopped at its time limit "
                    f"({limit.get(s['kind'], str(lim['cell_timeout']) + ' s')}), the rest graded as earned"
                    for s in stops]
    return []


def grade(spec: dict) -> Outcome:
    """Grade one submission. ``spec``: student, part, notebook (bytes), source (bytes),
    timestamp (str or None), limits (dict, see ``Settings.task_limits``), data_dir,
    secret (str: seeds the canaries), masked (folders the kernel must not see).
    Returns the :class:`~instructor.outcome.Outcome` as the worker saw it: status, reason,
    review, the graded notebook (when there is one), the log, host and seconds."""
    start = time.monotonic()
    out = Outcome(spec["student"], spec["part"], host=os.uname().nodename)
    _prepare_process()
    try:
        submitted, source = _read_notebooks(spec)
    except ValueError as exc:
        out.reason, out.seconds = str(exc), time.monotonic() - start
        return out
    review = [str(f) for f in scanner.scan_notebook(submitted, locked_ids(source)) if not f.note]
    from .preprocessors import start_early  # nbgrader's: imported where a task runs

    with _scratch(spec) as (run, cache):
        try:
            out.setup_seconds = _build_course(run, cache)
            _confine(run)
            with _sandboxed_kernel(run, cache) as kernel_dir:
                cfg = _grading_config(run, kernel_dir)
                folder = graded_dir(run.course, spec["student"], spec["part"])
                with start_early(cfg, folder, run.log):   # the kernel boots while nbgrader prepares
                    failed, timed_out = _execute(run, cfg)
            out.setup_seconds += run.zygote_seconds
            review += _verdict(run, out, failed, timed_out)
        except Exception as exc:  # noqa: BLE001 - the task reports, the run goes on
            run.stream.write(traceback.format_exc())
            out.status, out.notebook = "flagged", None
            out.reason = f"the grader itself failed ({type(exc).__name__}; the log has the traceback): grade it again"
            out.log_text = run.log_tail()
    out.review = "; ".join(review)
    out.seconds = time.monotonic() - start
    return out
