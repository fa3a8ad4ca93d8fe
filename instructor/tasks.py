"""One submission graded end to end, in a private scratch folder: the grading task.

:func:`grade` runs wherever a grading worker runs (a process of the local cluster, or a Dask worker
on another machine). It needs nothing from the course folder: the task carries the submitted
notebook, the part's source notebook (with its hidden tests) and the limits, and it returns the
graded notebook and the outcome. Only the coordinator (:mod:`instructor.grading`) writes the
gradebook and ``autograded/``, so no lock has to span machines.

Inside the task, nbgrader's own ``Autograde`` converter runs in this process (imported once per
worker, not once per submission) on a throw-away course: a private gradebook built from the source
notebook (once per worker and part, then copied), the submission, and a kernelspec that starts the
confined kernel of :mod:`instructor.sandbox`. The pipeline is nbgrader's default with:

- ``LimitOutput`` swapped for :class:`~instructor.preprocessors.LimitOutputSize`;
- tamper canaries inserted before ``Execute`` and checked (and removed) after it
  (:mod:`instructor.integrity`);
- stderr in graded cells made harmless (a progress bar or warning from a correct answer is not a
  failure; a failed assert still is);
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
from pathlib import Path

from . import limits, sandbox

ROOT = Path(__file__).resolve().parents[1]
MAX_NOTEBOOK_BYTES = 64 * 2**20   # a graded notebook larger than this is refused
WALL_FACTOR = 10                  # nbclient's wall-clock cell timeout: a backstop at this many times the limit
STARTUP_TIMEOUT = 300             # seconds for the sandboxed kernel to start (preloads included)
_TEMPLATES: dict[str, Path] = {}  # per worker process: source digest -> private gradebook


def _course_config(course: Path, part: str, student: str | None = None):
    from traitlets.config import Config

    cfg = Config()
    cfg.CourseDirectory.root = str(course)
    cfg.CourseDirectory.course_id = "intro-pytorch"
    cfg.CourseDirectory.source_directory = "source"
    cfg.CourseDirectory.release_directory = "release"
    cfg.CourseDirectory.submitted_directory = "submitted"
    cfg.CourseDirectory.autograded_directory = "autograded"
    cfg.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    cfg.CourseDirectory.assignment_id = part
    cfg.CourseDirectory.include = ["*.ipynb"]
    if student:
        cfg.CourseDirectory.student_id = student
    return cfg


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
    cfg = _course_config(course, part)
    cfg.GenerateAssignment.force = True
    _run_converter(GenerateAssignment, cfg, log)
    _TEMPLATES[digest] = course / "gradebook.db"
    return _TEMPLATES[digest]


def autograde_pipeline() -> list:
    """nbgrader's default autograde preprocessors, with the course's swaps and additions."""
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import AssignLatePenalties, Execute, LimitOutput, SaveAutoGrades

    from . import preprocessors

    pipeline = []
    for pp in Autograde.class_traits()["autograde_preprocessors"].default():
        if pp is Execute:
            pipeline += [preprocessors.InsertCanaries, preprocessors.SupervisedExecute, preprocessors.CheckCanaries]
        elif pp is LimitOutput:
            pipeline += [preprocessors.LimitOutputSize, preprocessors.HarmlessStderr]
        elif pp in (SaveAutoGrades, AssignLatePenalties):
            continue  # scores are saved by the coordinator, in the course's own gradebook
        else:
            pipeline.append(pp)
    return pipeline


def _grading_converter():
    from nbgrader.converters import Autograde

    class ConfinedAutograde(Autograde):
        """nbgrader's Autograde that never follows what the student left in its output folder."""

        def set_permissions(self, assignment_id: str, student_id: str) -> None:
            dest = Path(self._format_dest(assignment_id, student_id))
            for path in dest.glob("*.ipynb"):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    os.chmod(path, 0o644)

    return ConfinedAutograde


def read_regular_file(path: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a link, FIFO or device) of at most ``limit``."""
    if stat.S_ISLNK(os.lstat(path).st_mode):
        raise OSError(f"{path.name} is a symbolic link, not a regular file: never followed")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path.name} is {info.st_size:,} bytes (limit {limit:,})")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)


def worker_limits(lim: dict) -> dict:
    """``lim`` with what the coordinator left to the worker filled in: threads per kernel from
    this worker's GRADING_THREADS (default 1), CPU seconds = notebook timeout x threads."""
    lim = dict(lim)
    lim["threads"] = lim.get("threads") or int(os.environ.get("GRADING_THREADS") or 1)
    lim["cpu_seconds"] = lim.get("cpu_seconds") or lim["notebook_timeout"] * lim["threads"]
    return lim


# Imported by the kernel before it answers (not charged to any cell, never cut halfway by a cell's
# limit): the canaries' own imports, and torchvision where the part uses it.
PRELOAD = ("numpy", "torch")


def preload_modules(source: bytes) -> list[str]:
    """The modules a grading kernel of this part imports before its first cell."""
    return [*PRELOAD, *(["torchvision"] if b"torchvision" in source else [])]


def _sandbox_config(spec: dict, scratch: Path, group) -> dict:
    lim = worker_limits(spec["limits"])
    helper = ROOT / "helper"
    binds = [[p, p] for p in sandbox.python_paths()]
    if helper.is_dir():
        binds.append([str(helper), "/opt/course/helper"])
    env = {
        "PYTHONPATH": "/opt/course",
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "NBGRADER_EXECUTION": "autograde",
        "LANG": "C.UTF-8",
        "TQDM_MININTERVAL": "5",
        **{f"{name}_NUM_THREADS": str(lim["threads"]) for name in ("OMP", "MKL", "OPENBLAS")},
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks: keep as set
        if os.environ.get(name):
            env[name] = os.environ[name]
    data = spec.get("data_dir")
    if data and os.path.isdir(data):
        binds.append([data, data])
        env["COURSE_DATA"] = data
    masked = [p for p in spec.get("masked", []) if os.path.isdir(p)]
    return {
        "mode": lim["sandbox"],
        "bwrap": sandbox.bwrap_path(),
        "python": sandbox.kernel_python(),
        "allowed_parent": str(scratch / "course" / "autograded"),
        "masked": masked,
        "ro_binds": binds,
        "env": env,
        "cgroup": group.dirs if group else None,
        "pidfile": str(scratch / "kernel.pid"),
        "preload": preload_modules(spec["source"]),
        "kernel_dir": str(scratch / "kernel"),
        "limits": {
            "memory_bytes": lim["memory_bytes"],
            "cpu_seconds": lim["cpu_seconds"],
            "file_bytes": 1 * 2**30,
            "open_files": 4096,
            "tmp_bytes": 512 * 2**20,
            "processes": lim["processes"],
        },
    }


def _stop_kernel(scratch: Path, group) -> None:
    """The notebook ran out of time: kill the whole submission (nbgrader then sees a dead kernel)."""
    if group is not None:
        for pid in group.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
    try:
        pid = int((scratch / "kernel.pid").read_text())
        os.kill(pid, 9)  # bwrap: --die-with-parent takes the kernel with it
    except (OSError, ValueError):
        pass


def grade(spec: dict) -> dict:
    """Grade one submission. ``spec``: student, part, notebook (bytes), source (bytes),
    timestamp (str or None), limits (dict, see ``grading.Settings.task_limits``), data_dir,
    secret (str: seeds the canaries), masked (folders the kernel must not see).
    Returns: status ('graded', 'flagged' or 'tampered'), reason, notebook (str, the graded
    notebook when there is one), review (list of one-line findings), log, host, seconds (the
    whole task), execute_seconds (of which the kernel ran cells) and setup_seconds (of which this
    worker built its gradebook for the part: the first task of a part on a worker only)."""
    import nbformat

    from . import integrity

    start = time.monotonic()
    student, part = spec["student"], spec["part"]
    # nbformat validates every notebook nbgrader reads and writes: the compiled validator is faster
    os.environ.setdefault("NBFORMAT_VALIDATOR", "fastjsonschema")
    tools = os.path.dirname(sys.executable)  # nbgrader runs `alembic` when it creates a gradebook
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = tools + os.pathsep + os.environ.get("PATH", "")
    out = {"student": student, "part": part, "status": "flagged", "reason": "", "notebook": None,
           "review": [], "log": "", "seconds": 0.0, "execute_seconds": 0.0, "setup_seconds": 0.0,
           "host": os.uname().nodename}
    try:
        submitted = nbformat.reads(spec["notebook"].decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any unreadable upload is the student's, not ours
        out["reason"] = f"the notebook is not valid notebook JSON ({type(exc).__name__})"
        out["seconds"] = time.monotonic() - start
        return out
    source_nb = nbformat.reads(spec["source"].decode("utf-8"), as_version=4)
    locked = {c.metadata.get("nbgrader", {}).get("grade_id") for c in source_nb.cells
              if c.metadata.get("nbgrader", {}).get("locked")}
    out["review"] = [str(f) for f in integrity.scan_notebook(submitted, locked) if not f.note]

    cache = Path(tempfile.gettempdir()) / f"course-grading-{os.getuid()}" / f"worker-{os.getpid()}"
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="job-", dir=cache))
    stream = io.StringIO()
    log = logging.getLogger(f"instructor.task.{scratch.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(logging.StreamHandler(stream))
    group = None
    timer = None
    saved_env = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")}
    try:
        setup = time.monotonic()
        template = private_gradebook(part, spec["source"], cache)
        out["setup_seconds"] = time.monotonic() - setup  # once per worker and part, then ~0
        course = scratch / "course"
        folder = course / "submitted" / student / part
        folder.mkdir(parents=True)
        (folder / f"{part}.ipynb").write_bytes(spec["notebook"])
        if spec.get("timestamp"):
            (folder / "timestamp.txt").write_text(spec["timestamp"])
        (course / "source" / part).mkdir(parents=True)
        (course / "source" / part / f"{part}.ipynb").write_bytes(spec["source"])
        shutil.copy(template, course / "gradebook.db")

        lim = spec["limits"]
        try:
            group = limits.create(lim["memory_bytes"], lim["processes"])
            log.info("per-submission limits: %s", group.dirs)
        except OSError as exc:
            group = None
            log.warning("per-submission limits unavailable (%s): limits are per process", exc)
        jupyter_dir = scratch / "jupyter"
        sandbox.write_kernelspec(jupyter_dir, _sandbox_config(spec, scratch, group))
        kernel_dir = scratch / "kernel"
        kernel_dir.mkdir()
        os.environ["JUPYTER_PATH"] = str(jupyter_dir)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(kernel_dir)

        cfg = _course_config(course, part, student)
        cfg.Autograde.force = True
        cfg.Autograde.create_student = True
        cfg.Autograde.autograde_preprocessors = autograde_pipeline()
        cfg.Execute.kernel_name = sandbox.KERNEL_NAME
        # A cell's limit is read on the submission's own clock (CPU time while it computes, wall
        # time while it waits): a busy machine does not stretch it. Wall time is only a backstop.
        threads = worker_limits(lim)["threads"]
        cfg.SupervisedExecute.cell_limit = float(lim["cell_timeout"])
        cfg.SupervisedExecute.grace = max(2.0, lim["cell_timeout"] / 20)
        cfg.SupervisedExecute.threads = threads
        cfg.SupervisedExecute.cgroup = group.dirs if group else {}
        cfg.SupervisedExecute.pid_file = str(scratch / "kernel.pid")
        cfg.SupervisedExecute.record_path = str(scratch / "stops.json")
        cfg.Execute.timeout = int(lim["cell_timeout"] * WALL_FACTOR)
        cfg.Execute.interrupt_on_timeout = True
        # The kernel imports PyTorch before it answers: on a loaded machine that takes a while.
        cfg.Execute.startup_timeout = STARTUP_TIMEOUT
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
        cfg.CheckCanaries.verdict_path = str(scratch / "canaries.json")

        timed_out, finished = threading.Event(), threading.Event()

        def watch_notebook():  # the notebook's limit, on the same clock as the cells'
            clock = limits.SubmissionClock(group, str(scratch / "kernel.pid"), threads)
            while not finished.wait(0.25):
                if clock.read() > lim["notebook_timeout"]:
                    timed_out.set()
                    _stop_kernel(scratch, group)
                    return

        timer = threading.Thread(target=watch_notebook, daemon=True)
        timer.start()
        failed = None
        try:
            _run_converter(_grading_converter(), cfg, log)
        except Exception as exc:  # noqa: BLE001 - nbgrader raises NbGraderException and others
            failed = exc
        finished.set()
        events = group.events() if group else {"pids": 0, "oom_kill": 0}
        text = stream.getvalue()
        out["log"] = text[-200_000:]
        graded = course / "autograded" / student / part / f"{part}.ipynb"
        verdict = {}
        if (scratch / "canaries.json").exists():
            verdict = json.loads((scratch / "canaries.json").read_text())
            out["execute_seconds"] = float(verdict.get("execute_seconds") or 0.0)
        stops = json.loads((scratch / "stops.json").read_text()) if (scratch / "stops.json").exists() else []
        stuck = [s["label"] for s in stops if s["kind"] == "killed"] or \
            [s["label"] for s in stops if s["kind"] == "wall" and failed is not None]
        limit_hits = []
        if events["oom_kill"]:
            limit_hits.append(f"hit the memory limit of {lim['memory_bytes'] / 2**30:.1f} GiB for the whole "
                              f"submission ({events['oom_kill']} process(es) killed)")
        if events["pids"]:
            limit_hits.append(f"hit the limit of {lim['processes']} processes/threads for the whole submission")
        if timed_out.is_set():
            out["reason"] = f"stopped after the notebook time limit ({lim['notebook_timeout']} s)"
        elif stuck and not limit_hits:
            out["reason"] = f"timed out in {stuck[0]}: it kept running after its time limit and would not stop"
        elif failed is not None or not graded.exists():
            out["reason"] = "; ".join(limit_hits) or diagnose(text)
        else:
            out["notebook"] = read_regular_file(graded).decode("utf-8")
            if limit_hits:  # a canary starved by the submission's own limit is no tampering
                out["reason"] = "; ".join(limit_hits)
            elif str(verdict.get("reason") or "").startswith("timed out"):
                out["reason"] = verdict["reason"]  # flagged: the kernel could not be checked after it
            elif verdict.get("reason"):
                out["status"], out["reason"] = "tampered", verdict["reason"]
            else:
                out["status"] = "graded"
                out["review"] += [f"timed out in {s['label']}: stopped at its time limit "
                                  f"({_limit_words(s['kind'], lim)}), the rest graded as earned"
                                  for s in stops]
    except Exception as exc:  # noqa: BLE001 - the task reports, the run goes on
        import traceback

        stream.write(traceback.format_exc())
        out["reason"] = f"grading failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        out["log"] = stream.getvalue()[-200_000:]
    finally:
        if timer is not None:
            finished.set()
            timer.join()
        if group is not None:
            group.destroy()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)
        out["seconds"] = time.monotonic() - start
    return out


def _limit_words(kind: str, lim: dict) -> str:
    if kind == "wall":
        return f"{lim['cell_timeout'] * WALL_FACTOR} s of wall time"
    return f"{lim['cell_timeout']} s"


def diagnose(log: str) -> str:
    """A one-line reason from a failed nbgrader run's log."""
    import re

    checks = [
        (r"DeadKernelError|Kernel died", "the kernel died (it crashed, exited, or hit the memory/CPU limit)"),
        (r"Timeout waiting for IOPub|CellTimeoutError", "a cell kept running after the timeout and would not stop"),
        (r"NotJSONError|Notebook does not appear to be JSON|JSONDecodeError|Unreadable Notebook",
         "the notebook is not valid JSON / not a notebook"),
        (r"ValidationError|NotebookValidationError", "the notebook does not pass nbformat validation"),
        (r"MissingEntry: No such grade cell: [^/\s]+/[^/\s]+/(?P<cell>\S+)",
         "cell {cell} claims to be a graded test but is not one in the release (its nbgrader metadata was edited)"),
        (r"MissingEntry: No such (?:source|solution) cell: [^/\s]+/[^/\s]+/(?P<cell>\S+)",
         "cell {cell} claims to be an nbgrader cell but is not one in the release (its metadata was edited)"),
        (r"MetadataValidationError|[Cc]ell metadata|Notebook .* metadata",
         "the notebook's nbgrader metadata was changed"),
        (r"No notebooks were matched|No notebooks found", "no notebook with the expected name"),
        (r"NoSuchKernel", "the grading kernel could not be found"),
    ]
    for pattern, reason in checks:
        m = re.search(pattern, log)
        if m:
            return reason.format(**m.groupdict())
    errors = [line.strip() for line in log.splitlines()
              if ("ERROR" in line or "Error" in line) and "see the above traceback" not in line]
    return errors[-1][:200] if errors else "nbgrader failed (see the log)"
