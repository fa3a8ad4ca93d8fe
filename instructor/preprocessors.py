"""nbgrader preprocessors the grading run swaps in (``Autograde.autograde_preprocessors``), and
the pipeline they make (:func:`autograde_pipeline`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path

from nbclient.util import ensure_async, run_sync
from nbgrader.preprocessors import AssignLatePenalties, Execute, LimitOutput, NbGraderPreprocessor, SaveAutoGrades
from traitlets import Dict, Float, Integer, Unicode

from . import limits
from .course import grade_id, read_regular_file
from .integrity import canaries
from .kernels import GradingKernelManager


class LimitOutputSize(LimitOutput):
    """nbgrader's LimitOutput (at most ``max_lines`` lines of printed output per cell), plus a
    cap on characters: one 50 MB line, or a huge ``repr``, passes a line limit untouched and
    would end up in the gradebook's notebook and in the feedback HTML."""

    max_chars = Integer(
        100_000,
        help="maximum characters kept in one output (stream text or one rich-output value); -1: no limit",
    ).tag(config=True)

    def _cut(self, text: str) -> str:
        if self.max_chars < 0 or len(text) <= self.max_chars:
            return text
        return text[:self.max_chars] + f"\n... Output truncated ({len(text):,} characters) ..."

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for mime, value in list(output.get("data", {}).items()):
                    if isinstance(value, str) and len(value) > self.max_chars >= 0:
                        if mime.startswith("text/"):
                            output.data[mime] = self._cut(value)
                        else:  # an image or JSON too large to keep: drop it, say so
                            del output.data[mime]
                            output.data.setdefault("text/plain", f"[{mime} output removed: {len(value):,} characters]")
            elif output.output_type == "error":
                output.evalue = self._cut(output.evalue)
        return cell, resources


class HarmlessStderr(NbGraderPreprocessor):
    """nbgrader scores a graded cell 0 when it printed anything on stderr. A correct answer that
    shows a progress bar or a warning must not lose its points: stderr becomes ordinary output.
    A failed test still fails: its error output is untouched."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


class InsertCanaries(NbGraderPreprocessor):
    """Hidden cells that check, after student code ran, that the kernel still behaves: see
    :func:`instructor.integrity.canaries.insert_canaries`. They are removed again by :class:`CheckCanaries`."""

    secret = Unicode("", help="per-run secret the canaries are derived from").tag(config=True)

    def preprocess(self, nb, resources):
        return canaries.insert_canaries(nb, self.secret), resources


class CheckCanaries(NbGraderPreprocessor):
    """Reads the canaries' outputs, removes the canary cells and writes the verdict (JSON) to
    ``verdict_path``: the seconds the kernel spent in the notebook's own cells (``execute_seconds``)
    and in the canaries' (``canary_seconds``), and ``{"reason": null}`` or a one-line reason the
    kernel was tampered with (``tampered: ...``), or could not be checked after a cell was stopped at its time limit
    (``timed out in cell N ...``: the stops :class:`SupervisedExecute` left in ``resources``)."""

    secret = Unicode("", help="the secret InsertCanaries used").tag(config=True)
    verdict_path = Unicode("", help="where the verdict is written").tag(config=True)

    def preprocess(self, nb, resources):
        reason, cleaned = canaries.check_canaries(nb, self.secret, resources.get("timeouts", []))
        learner = sum(map(canaries.cell_seconds, cleaned.cells))   # the notebook's own cells, tests included
        if self.verdict_path:
            with open(self.verdict_path, "w") as f:
                json.dump({"reason": reason, "execute_seconds": learner,
                           "canary_seconds": sum(map(canaries.cell_seconds, nb.cells)) - learner}, f)
        return cleaned, resources


class FeedbackFromSubmission(NbGraderPreprocessor):
    """For ``nbgrader generate_feedback`` (formgrader's feedback button, through
    nbgrader_config.py): the page of :mod:`instructor.verdicts`, the learner's submitted notebook
    with each test's visible source and verdict, in place of the graded notebook. A submission
    held for review (:mod:`instructor.held`) gets no page: the conversion fails with the reason."""

    def preprocess(self, nb, resources):
        import nbformat
        from nbgrader.coursedir import CourseDirectory

        from .held import held
        from .verdicts import feedback_notebook, release_tests

        info = resources["nbgrader"]
        student, part, name = info["student"], info["assignment"], info["notebook"]
        coursedir = CourseDirectory(config=self.config)
        course = Path(coursedir.root)
        why = held(course, part).get(student)
        if why:
            raise ValueError(f"{student} / {part} is held for review ({why}): "
                             f"make clear STUDENT={student} PART={part} releases its feedback")
        submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, part)) / f"{name}.ipynb"
        learner = nbformat.reads(read_regular_file(submitted).decode("utf-8"), as_version=4)
        return feedback_notebook(nb, learner, release_tests(course, part)), resources


class SupervisedExecute(Execute):
    """nbgrader's Execute with each cell's time limit read on the submission's own clock
    (:class:`instructor.limits.SubmissionClock`: CPU time while it computes, wall time while it
    waits), so that a verdict is a property of the submission, not of the machine: a busy machine
    stretches a computing cell's wall time, not its time on that clock.

    A cell over ``cell_limit`` is interrupted (``KeyboardInterrupt`` in the cell, grading goes on);
    one that keeps going for ``grace`` more seconds is killed with its sandbox. nbclient's own
    ``timeout`` (wall clock) stays as a backstop. Every stop is written to ``record_path`` as it
    happens (JSON: a list of ``{"cell", "label", "kind"}``, kind ``time``, ``wall`` or ``killed``),
    so the grading task can say "timed out in cell N" even when the run dies, and is passed to
    :class:`CheckCanaries` in ``resources["timeouts"]``. Its kernels are started and ended by
    :class:`instructor.kernels.GradingKernelManager`."""

    cell_limit = Float(0.0, help="seconds one cell may take on the submission's clock (0: wall timeout only)"
                       ).tag(config=True)
    grace = Float(3.0, help="seconds an interrupted cell may go on before it is killed").tag(config=True)
    threads = Integer(1, help="threads the kernel may use (CPU seconds per clock second)").tag(config=True)
    cgroup = Dict({}, help="the submission's control group (limits.Group.dirs)").tag(config=True)
    pid_file = Unicode("", help="file holding the pid of the kernel's launcher").tag(config=True)
    record_path = Unicode("", help="where stops are written (JSON)").tag(config=True)
    poll = Float(0.2, help="seconds between two looks at the clock").tag(config=True)
    early = Unicode("", help="the key of this run's kernel when it was started early (start_early)").tag(config=True)

    def create_kernel_manager(self):
        """The manager of the kernel :func:`start_early` started for this run (nbclient then only
        connects to it), or a new one."""
        km = _EARLY.pop(self.early, None) if self.early else None
        if km is None:
            return super().create_kernel_manager()
        self.log.info("Execute adopted the kernel started before nbgrader's steps")
        self.km = km
        return km

    def __init__(self, *args, **kwargs):
        # nbgrader's Execute sets jupyter_client's manager the same way, over any configuration
        kwargs.setdefault("kernel_manager_class", GradingKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._stops, self._index = [], 0
        self._clock = {"began": time.monotonic()}
        nb, resources = super().preprocess(nb, resources, km=km)
        resources["timeouts"] = list(self._stops)
        self.log.info("%s", timing_line(self._clock, nb))
        return nb, resources

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        getattr(self, "_clock", {})["ready"] = time.monotonic()
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _async_cleanup_kernel(self) -> None:
        getattr(self, "_clock", {}).setdefault("ending", time.monotonic())
        await super()._async_cleanup_kernel()
        getattr(self, "_clock", {}).setdefault("ended", time.monotonic())

    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    def _group(self):
        return limits.Group(dict(self.cgroup)) if self.cgroup else None

    def _label(self, index: int) -> str:
        cells = self.nb.cells
        number = 1 + sum(1 for c in cells[:index] if canaries.CANARY_KEY not in c.metadata)
        gid = grade_id(cells[index])
        return f"cell {number}" + (f" ({gid})" if gid else "")

    def _stop(self, index: int, kind: str) -> None:
        self._stops.append({"cell": index, "label": self._label(index), "kind": kind})
        if self.record_path:
            with open(self.record_path, "w") as f:
                json.dump(self._stops, f)

    async def _watch(self, index: int) -> None:
        clock = limits.SubmissionClock(self._group(), self.pid_file, self.threads)
        interrupted_at = None
        while True:
            await asyncio.sleep(self.poll)
            used = clock.read()
            if interrupted_at is None and used > self.cell_limit:
                interrupted_at = used
                self._stop(index, "time")
                self.log.error("Cell %d reached its time limit (%.0f s): interrupting it", index, self.cell_limit)
                await ensure_async(self.km.interrupt_kernel())
            elif interrupted_at is not None and used > interrupted_at + self.grace:
                self._stop(index, "killed")
                self.log.error("Cell %d would not stop after the interrupt: killing the kernel", index)
                limits.kill_submission(self._group(), self.pid_file)
                return

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self._index = cell_index
        watch = None
        if self.cell_limit > 0 and cell.cell_type == "code":
            watch = asyncio.ensure_future(self._watch(cell_index))
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            if watch is not None:
                watch.cancel()

    execute_cell = run_sync(async_execute_cell)  # nbclient binds the name to ITS coroutine

    async def _async_handle_timeout(self, timeout, cell=None):
        self._stop(self._index, "wall")
        return await super()._async_handle_timeout(timeout, cell)


TIMING = re.compile(r"timing: kernel ready ([\d.]+) s after Execute began; (\d+) cells ran \(([\d.]+) s in them, "
                    r"([\d.]+) s of messages around them\); the kernel ended in ([\d.]+) s")


def timing_line(clock: dict, nb) -> str:
    """Where Execute's time went, for the task's log (:data:`TIMING` reads it): the kernel's start
    as Execute waited for it (a kernel started early had booted meanwhile), the cells, the messages
    around them (the kernel's own timestamps: from a cell's busy status to its input, from its reply
    to its idle status, and from one cell's idle status to the next one's busy), and its end."""
    stamps = []
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {}) if cell.get("cell_type") == "code" else {}
        got = [canaries.stamp(timing.get(k))
               for k in ("iopub.status.busy", "iopub.execute_input", "shell.execute_reply", "iopub.status.idle")]
        if None not in got:
            stamps.append(got)
    work = sum(reply - start for _, start, reply, _ in stamps)
    span = stamps[-1][3] - stamps[0][0] if stamps else 0.0
    return (f"timing: kernel ready {clock.get('ready', clock['began']) - clock['began']:.3f} s after Execute began; "
            f"{len(stamps)} cells ran ({work:.3f} s in them, {max(span - work, 0.0):.3f} s of messages around them); "
            f"the kernel ended in {clock.get('ended', 0.0) - clock.get('ending', 0.0):.3f} s")


_EARLY: dict[str, object] = {}     # key -> the manager of a kernel started early, until Execute adopts it


@contextlib.contextmanager
def start_early(cfg, cwd: Path, log=None):
    """Start the grading kernel now, as :class:`SupervisedExecute` configured by ``cfg`` would in
    ``cwd`` (its folder), so that it boots while nbgrader does its steps before Execute; Execute
    then adopts it (``SupervisedExecute.early``). A kernel nbgrader never reached is killed on the
    way out. Where it cannot start here, Execute starts one and reports why not, as it always did."""
    key = cfg.SupervisedExecute.early
    execute = SupervisedExecute(config=cfg, **({"log": log} if log else {}))
    try:
        cwd.mkdir(parents=True, exist_ok=True)
        execute.km = execute.create_kernel_manager()
        execute.start_new_kernel(cwd=str(cwd))
        _EARLY[key] = execute.km
        execute.log.info("kernel started before nbgrader's steps")
    except Exception as exc:  # noqa: BLE001 - Execute tries again and reports
        execute.log.warning("kernel not started early (%s: %s): Execute starts it", type(exc).__name__, exc)
        if execute.km is not None and execute.km.has_kernel:  # launched, then failed: not left running
            with contextlib.suppress(Exception):
                run_sync(execute.km.shutdown_kernel)(now=True)
    try:
        yield
    finally:
        km = _EARLY.pop(key, None)
        if km is not None:  # nbgrader stopped before Execute
            with contextlib.suppress(Exception):
                run_sync(km.shutdown_kernel)(now=True)


def autograde_pipeline() -> list:
    """nbgrader's default autograde preprocessors, with the course's swaps and additions."""
    from nbgrader.converters import Autograde

    pipeline = []
    for pp in Autograde.class_traits()["autograde_preprocessors"].default():
        if pp is Execute:
            pipeline += [InsertCanaries, SupervisedExecute, CheckCanaries]
        elif pp is LimitOutput:
            pipeline += [LimitOutputSize, HarmlessStderr]
        elif pp in (SaveAutoGrades, AssignLatePenalties):
            continue  # scores are saved by the coordinator, in the course's own gradebook
        else:
            pipeline.append(pp)
    return pipeline
