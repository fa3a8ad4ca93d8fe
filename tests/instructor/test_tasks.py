"""Hostile submissions, all graded in ONE autograde run together with honest ones.

Every case must end with the run completing, the case scored (with the ORIGINAL tests) or
flagged, the gradebook intact and the honest students' scores what they were when graded alone.

The run is graded on a machine made busy on purpose (``LOAD``, default "busy": more grading
workers than cores and a process spinning beside them): a verdict must be a property of the
submission, not of the machine. ``python -m tests.determinism`` grades the same class several
times, idle and busy, and compares every status and score.
The "reference" student solved every other exercise; the tampering students start from the
same answers, so "scored correctly" means "scored exactly like reference".

Needs bubblewrap (`apt-get install -y bubblewrap`): skipped without it, except in CI
(CI=true) or with GRADING_REQUIRE_SANDBOX=1, where its absence is a failure.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from instructor import coordinator, feedback, held, lms, testing
from instructor.course import ROOT
from instructor.settings import Settings
from tests import cheats
from tests.conftest import require_sandbox

PART = "01-tensors"
pytestmark = pytest.mark.slow
# Short limits for this test; real grading keeps 600 s per cell (Part 8 trains for minutes).
CELL_TIMEOUT = 10       # seconds per cell
NOTEBOOK_TIMEOUT = 45   # seconds per notebook: Part 1 takes under 10 s, even on a busy machine
CPU_SECONDS = 20        # CPU seconds per kernel: above what the loops below burn before their timeouts

# Cheats graded through the whole pipeline, in the sandbox: the table and a few beyond
# it (tests/instructor/test_integrity.py runs every cheat of tests/cheats.py in a plain kernel).
CHEATS = ["input_transformer", "ast_transformer", "run_cell_wrapped", "showtraceback_and_post_run_cell",
          "torch_allclose", "tensor_eq", "getattr_disguised", "exec_base64", "settrace_skips_asserts",
          "only_hidden_tests", "sys_excepthook", "always_equal_answer", "answer_reads_the_test",
          "compile_strips_asserts", "vars_lenient_allclose", "sys_modules_proxy", "import_hook_proxy",
          "pickled_patch", "code_swapped_in_place", "hidden_asserts_pass", "exec_hides_itself",
          "builtins_namespace_swapped", "canary_aware_transformer", "thread_knows_the_canaries",
          "event_loop_knows_the_canaries", "run_cell_knows_the_tests"]

FLAGGED = {"loop_ignores_interrupt", "kernel_exit", "cpu_hog", "slow_cells", "not_json", "missing",
           "fork_loop", "memory_hog_processes", "symlinked_upload", "points_raised", "sleep_ignores_interrupt",
           "tamper_then_time_out", "duplicate_id"}
SCORED_LIKE_REFERENCE = {"tests_edited", "tests_deleted", "tests_markdown", "infinite_loop", "memory_hog",
                         "huge_output", "wrong_kernelspec", "snoop", "links_and_fifos", "sleeps_past_the_limit"}
# Stopped at a cell's time limit and graded as earned: sent for review with the cell named.
TIMED_OUT = {"infinite_loop", "sleeps_past_the_limit"}
LOAD = os.environ.get("HOSTILE_LOAD", "busy")  # "busy": 3 workers on the cores and a spinning process; "idle"

# An answer that breaks the kernel's comparisons, then runs into the cell's time limit: the
# canaries after it fail, but the interruption is what they are blamed on (flagged, not tampered).
TAMPER_THEN_TIME_OUT = """import time, torch
torch.allclose = lambda *args, **kwargs: True
time.sleep(1000)"""

# Left in the kernel's own folder: links to what the grader may read or chmod, a FIFO that blocks
# whoever opens it, a hard link attempt, thousands of files and a large one. Nothing outside the
# sandbox may follow, copy or chmod any of it.
LINKS = '''
import os
COURSE, PART = {course!r}, {part!r}
made = []
for name, target in [("gb.txt", f"{{COURSE}}/gradebook.db"), ("private.txt", f"{{COURSE}}/private.txt"),
                     ("sol.txt", f"{{COURSE}}/solutions/{{PART}}/{{PART}}.ipynb"),
                     ("etc", "/etc"), ("root", "/")]:
    try:
        os.symlink(target, name); made.append(name)
    except OSError as exc:
        print("symlink", name, type(exc).__name__)
try:
    os.mkfifo("pipe.ipynb"); made.append("pipe.ipynb")
except OSError as exc:
    print("fifo", type(exc).__name__)
try:
    os.link("/usr/bin/env", "env-hardlink"); made.append("env-hardlink")
except OSError as exc:
    print("hardlink", type(exc).__name__)
for i in range(3000):
    open(f"junk{{i}}.txt", "w").write("x")
with open("big.bin", "wb") as f:
    f.write(b"x" * 50_000_000)
print("made", made)
'''

FORK_LOOP = '''
import os, time
children = []
try:
    for _ in range(2000):
        pid = os.fork()
        if pid == 0:
            time.sleep(15)  # alive until the forks hit the limit, even on a slow, busy machine
            os._exit(0)
        children.append(pid)
except OSError as exc:
    print("fork refused after", len(children), exc)
for pid in children:
    os.waitpid(pid, 0)
'''

# Five processes of 1.5 GiB each: each under the per-process address-space limit, together over
# the submission's memory limit. Filling bytes is fast: the limit is hit within the cell timeout.
MEMORY_PROCESSES = '''
import os, time
children = []
for _ in range(5):
    pid = os.fork()
    if pid == 0:
        try:
            block = b"\\1" * (3 * 2**29)
            time.sleep(3)
        finally:
            os._exit(0)
    children.append(pid)
print([os.waitpid(pid, 0)[1] for pid in children])
'''

SNOOP = '''
import os, shutil, socket
COURSE, PART, PORT = {course!r}, {part!r}, {port}

def nonempty(text):
    if not text:
        raise LookupError("read nothing")
    return text

def attempt(name, action):
    try:
        result = action()
    except Exception as exc:
        print(f"ATTACK {{name}}: BLOCKED ({{type(exc).__name__}})")
    else:
        print(f"ATTACK {{name}}: DONE {{str(result)[:60]!r}}")

attempt("read-solutions", lambda: nonempty(open(f"{{COURSE}}/solutions/{{PART}}/{{PART}}.ipynb").read()))
attempt("read-solutions-relative", lambda: nonempty(open(f"../../../solutions/{{PART}}/{{PART}}.ipynb").read()))
attempt("read-hidden-tests-in-graded-notebook", lambda: nonempty(open(f"{{PART}}.ipynb").read()))
attempt("read-gradebook", lambda: nonempty(open(f"{{COURSE}}/gradebook.db", "rb").read()))
attempt("write-gradebook", lambda: open(f"{{COURSE}}/gradebook.db", "wb").write(b"pwned"))
attempt("delete-outside-own-folder", lambda: os.remove(f"{{COURSE}}/sentinel.txt"))
attempt("delete-other-submission", lambda: shutil.rmtree(f"{{COURSE}}/submitted/good"))
attempt("read-other-student", lambda: nonempty(open(f"{{COURSE}}/autograded/good/{{PART}}/{{PART}}.ipynb").read()))
attempt("write-home", lambda: open("/root/.bashrc", "a").write("pwned"))
attempt("network", lambda: socket.create_connection(("127.0.0.1", PORT), timeout=3))
print("uid", os.getuid())
'''


class LoopbackServer:
    """Counts TCP connections to 127.0.0.1:port while the grading runs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join()
        self.sock.close()


def outputs_text(course: Path, student: str) -> str:
    """The graded notebook's outputs as text. A cell's consecutive outputs on one stream read as one,
    as Jupyter shows them: a busy kernel may send one print's words in two messages."""
    path = course / "autograded" / student / PART / f"{PART}.ipynb"
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        stream = None
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == stream:
                parts[-2] += out.get("text", "")
                continue
            stream = out.get("name") if out.get("output_type") == "stream" else None
            parts.append(out.get("text", "") or out.get("evalue", "") or json.dumps(out.get("data", {})))
            parts.append(out.get("ename", ""))
    return "\n".join(parts)


# Right answers to broadcast_shape that, when a test calls them, show the code that is running
# them: the hidden tests' lines reach the cell's outputs, and must not reach the feedback page.
_BROADCAST = """
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        return None
    return tuple(y if x == 1 else x for x, y in zip(a, b))
"""
ECHOES = {
    "echo_printed": "import inspect\ndef broadcast_shape(a, b):\n"
                    "    print(inspect.getsource(inspect.currentframe().f_back))" + _BROADCAST,
    "echo_stack": "import traceback\ndef broadcast_shape(a, b):\n    traceback.print_stack()" + _BROADCAST,
    "echo_logged": "import logging, traceback\ndef broadcast_shape(a, b):\n"
                   "    logging.getLogger('mine').warning(''.join(traceback.format_stack(limit=3)))" + _BROADCAST,
    "echo_html": "import html, inspect\nfrom IPython.display import HTML, display\n"
                 "def broadcast_shape(a, b):\n"
                 "    code = html.escape(inspect.getsource(inspect.currentframe().f_back))\n"
                 "    display(HTML('<pre>' + code + '</pre><img alt=\"' + code + '\" src=\"x.png\">'))" + _BROADCAST,
    "echo_warned": "import inspect, warnings\ndef broadcast_shape(a, b):\n"
                   "    warnings.warn(repr(inspect.getsource(inspect.currentframe().f_back)))" + _BROADCAST,
}
# The same, encoded so that no pattern could recognise it: base64, reversed, hex in a file of the
# working folder, byte values in a warning, split over two outputs of a later cell, and raised
# (as an assertion, as another error, as an exception class's name) on the hidden cases only.
_CALLER = "import base64, inspect\n_code = lambda: inspect.getsource(inspect.currentframe().f_back.f_back)\n"
_VISIBLE_CASES = "((64, 2), (1, 2)), ((5, 3), (3,)), ((5, 1), (1, 3)), ((5, 3), (5,))"
_ON_A_HIDDEN_CASE = f"    if (tuple(a), tuple(b)) not in ({_VISIBLE_CASES}):\n"
EXFILTRATIONS = {
    "exfil_base64_printed": _CALLER + "def broadcast_shape(a, b):\n"
                            "    print(base64.b64encode(_code().encode()).decode())" + _BROADCAST,
    "exfil_reversed_displayed": _CALLER + "from IPython.display import display\ndef broadcast_shape(a, b):\n"
                                "    display({'text/plain': _code()[::-1]}, raw=True)" + _BROADCAST,
    "exfil_numbers_warned": _CALLER + "import warnings\ndef broadcast_shape(a, b):\n"
                            "    warnings.warn(' '.join(map(str, _code().encode())))" + _BROADCAST,
    "exfil_hex_file": _CALLER + "def broadcast_shape(a, b):\n"
                      "    open('leak.txt', 'a').write(_code().encode().hex())" + _BROADCAST,
    "exfil_split_later": _CALLER + "import builtins\ndef broadcast_shape(a, b):\n"
                         "    builtins.kept = base64.b64encode(_code().encode()).decode()" + _BROADCAST,
    "exfil_assertion_raised": _CALLER + "def broadcast_shape(a, b):\n" + _ON_A_HIDDEN_CASE +
                              "        raise AssertionError(base64.b64encode(_code().encode()).decode())" + _BROADCAST,
    "exfil_error_raised": _CALLER + "def broadcast_shape(a, b):\n" + _ON_A_HIDDEN_CASE +
                          "        raise ValueError(_code().encode().hex())" + _BROADCAST,
    "exfil_class_named": _CALLER + "def broadcast_shape(a, b):\n" + _ON_A_HIDDEN_CASE +
                         "        raise type('E' + _code()[-2000:].encode().hex(), (Exception,), {})()" + _BROADCAST,
}
# A cell of the learner's own after the tested answer: prints what was kept, in two halves.
SPLIT_LATER = "import builtins\nkept = getattr(builtins, 'kept', '')\nprint(kept[:len(kept) // 2])\nprint('and')\n" \
              "print(kept[len(kept) // 2:])"
READ_BACK = "print(open('leak.txt').read())"  # the file, read back by a later cell of the learner's
RAISING = {"exfil_assertion_raised", "exfil_error_raised", "exfil_class_named"}
ECHOES.update(EXFILTRATIONS)


@contextmanager
def machine_load(load: str):
    """"busy": a process spinning on one core for as long as the block runs; "idle": nothing."""
    if load == "idle":
        yield
        return
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def write_runaways(course: Path, ref, target: str) -> None:
    """Submissions that run past a limit: time, CPU, memory, processes, output."""
    def hostile(student, nb):
        testing.write_submission(course, student, PART, nb)

    hostile("infinite_loop", testing.set_answer(ref, target, "while True:\n    pass"))
    hostile("sleeps_past_the_limit", testing.set_answer(ref, target, "import time\ntime.sleep(1000)"))
    hostile("sleep_ignores_interrupt", testing.set_answer(
        ref, target, "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(1000)"))
    hostile("tamper_then_time_out", testing.set_answer(ref, target, TAMPER_THEN_TIME_OUT))
    hostile("loop_ignores_interrupt", testing.set_answer(
        ref, target, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"))
    hostile("kernel_exit", testing.set_answer(ref, target, "import os\nos._exit(1)"))
    spin = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 5:\n    pass"
    cpu_hog = ref
    for _ in range(10):  # each cell within the cell timeout, together past the CPU limit
        cpu_hog = testing.insert_code(cpu_hog, 2, spin)
    hostile("cpu_hog", cpu_hog)
    slow = ref
    for _ in range(5):  # each cell within the cell timeout, together past the notebook limit
        slow = testing.insert_code(slow, 2, "import time\ntime.sleep(9.5)")
    hostile("slow_cells", slow)
    # np.empty maps memory without touching it: the address-space limit trips at once, where
    # touching gigabytes takes seconds per GiB on small VMs. RLIMIT_AS bounds both alike.
    hostile("memory_hog", testing.set_answer(
        ref, target, "import numpy as np\nblocks = []\nwhile True:\n    blocks.append(np.empty(2**27))"))
    hostile("huge_output", testing.set_answer(
        ref, target, "import sys\nline = 'x' * 1_000_000\nfor _ in range(50):\n    sys.stdout.write(line + '\\n')"))
    hostile("fork_loop", testing.set_answer(ref, target, FORK_LOOP))
    hostile("memory_hog_processes", testing.set_answer(ref, target, MEMORY_PROCESSES))


def write_hostile(course: Path, ref, target: str, first: str) -> LoopbackServer:
    """Every other hostile submission: tests changed, files that are not a notebook, escapes from
    the sandbox, the cheats and their honest look-alikes. Returns the server the snoop calls."""
    def hostile(student, nb=None, text=None):
        testing.write_submission(course, student, PART, nb, text)

    edited = copy.deepcopy(ref)
    for cell in testing.grade_cells(edited):
        cell.source = '"""Check nothing"""\nassert True'
    hostile("tests_edited", edited)
    deleted = copy.deepcopy(ref)
    deleted.cells = [c for c in deleted.cells if c not in testing.grade_cells(deleted)]
    hostile("tests_deleted", deleted)
    markdown = copy.deepcopy(ref)
    for cell in testing.grade_cells(markdown):
        cell.cell_type = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    hostile("tests_markdown", markdown)
    hostile("not_json", text='{"cells": [ this is not JSON')
    missing = course / "submitted" / "missing" / PART
    missing.mkdir(parents=True)
    (missing / "my answers.txt").write_text("I forgot to upload the notebook")
    wrong = copy.deepcopy(ref)
    wrong.metadata["kernelspec"] = {"name": "no-such-kernel", "display_name": "Evil", "language": "python"}
    hostile("wrong_kernelspec", testing.insert_code(wrong, 2, "import os\nprint('uid', os.getuid())"))
    hostile("links_and_fifos", testing.insert_code(ref, 2, LINKS.format(course=str(course), part=PART)))
    raised = copy.deepcopy(ref)
    answer = next(c for c in raised.cells if c.metadata.get("nbgrader", {}).get("grade_id") == target)
    answer.metadata["nbgrader"].update(grade=True, points=100)  # "my answer is a test worth 100"
    hostile("points_raised", raised)
    outside = course / "elsewhere.ipynb"
    nbformat.write(ref, outside)
    link = course / "submitted" / "symlinked_upload" / PART
    link.mkdir(parents=True)
    (link / f"{PART}.ipynb").symlink_to(outside)
    for name in ("*", "a?"):  # nbgrader globs with the student id
        testing.write_submission(course, name, PART, ref)
    # Each cheat as a cell of its own right after the first answer (torch is imported by then),
    # in a notebook that otherwise deserves the reference's score.
    after_first = 1 + next(i for i, c in enumerate(ref.cells)
                           if c.metadata.get("nbgrader", {}).get("grade_id") == first)
    for name in CHEATS:
        hostile(f"cheat_{name}", testing.insert_code(ref, after_first, cheats.CHEATS[name]))
    # The oracle as the real answer to an exercise the reference solved: it reads the visible
    # asserts' literals, but the hidden test calls it before working out what it compares with, so
    # it loses that exercise's points; and it is sent for review (the scan is all that sees it).
    hostile("oracle_answer", testing.set_answer(ref, "broadcast_shape", cheats.CHEATS["answer_reads_the_test"]))
    duplicate = copy.deepcopy(ref)
    test = next(i for i, c in enumerate(duplicate.cells) if c.metadata.get("nbgrader", {}).get("grade"))
    duplicate.cells.insert(test + 1, copy.deepcopy(duplicate.cells[test]))
    hostile("duplicate_id", duplicate)
    for name, source in ECHOES.items():
        nb = testing.set_answer(ref, "broadcast_shape", source)
        if name in ("exfil_split_later", "exfil_hex_file"):  # a cell after the test of broadcast_shape
            test = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id")
                        == testing.solved_test_id(course, PART, "broadcast_shape"))
            nb = testing.insert_code(nb, test + 1, SPLIT_LATER if name == "exfil_split_later" else READ_BACK)
        hostile(name, nb)
    honest = testing.student_notebook(course, PART, "all")
    for source in cheats.HONEST_CELLS.values():  # after the answers: extra work of the learner's own
        honest = testing.insert_code(honest, len(honest.cells), source)
    hostile("honest_variants", honest)
    server = LoopbackServer()
    (course / "sentinel.txt").write_text("must survive")
    hostile("snoop", testing.insert_code(ref, 2, SNOOP.format(course=str(course), part=PART, port=server.port)))
    return server


def grade_hostile_class(course: Path, load: str = LOAD):
    """Build the hostile class in ``course`` and grade it under ``load``; returns the run."""
    from nbgrader.api import Gradebook

    ids = testing.answer_ids(course, PART)
    solved, target = ids[0::2], ids[1]  # hostile code goes in an unsolved answer with solved ones after it
    ref = testing.student_notebook(course, PART, solved)
    testing.write_submission(course, "good", PART, testing.student_notebook(course, PART, "all"))
    testing.write_submission(course, "reference", PART, ref)
    # Busy: more workers than cores (each kernel limited to one thread) and a spinning process.
    settings = Settings.resolve(course, jobs=3 if load == "busy" else 2, timeout=CELL_TIMEOUT,
                                memory="6G", notebook_timeout=NOTEBOOK_TIMEOUT, cpu=CPU_SECONDS, processes=256)
    log = []
    # What the honest students deserve: every point for "good", the solved exercises' for "reference".
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        cells = {c.name: c.max_score for c in gb.find_notebook(PART, PART).grade_cells}
    baseline = {"good": sum(cells.values()),
                "reference": sum(cells[testing.solved_test_id(course, PART, a)] for a in solved)}
    (course / "private.txt").write_text("the instructor's own file")
    protected = {path: (path.stat().st_mode, path.read_bytes()) for path in
                 [course / "private.txt", course / "solutions" / PART / f"{PART}.ipynb"]}
    protected_mode = (course / "gradebook.db").stat().st_mode  # its contents change as grading goes
    write_runaways(course, ref, target)
    server = write_hostile(course, ref, target, ids[0])
    try:
        with machine_load(load):
            results = {r.student: r for r in coordinator.autograde(course, [PART], settings=settings, say=log.append)}
    finally:
        server.close()
    said: list[str] = []
    feedback.feedback(course, [PART], say=said.append)
    held_back = {s for s in results if not (course / "feedback" / s / PART / f"{PART}.html").exists()}
    for student in held.held(course, PART):  # an instructor reads each, and clears it
        if results[student].status == "graded":
            held.clear(course, student, PART)
    feedback.feedback(course, [PART], say=said.append)
    grades = lms.export_grades(course, course / "grades.csv")
    with open(grades, newline="") as f:
        exported = {row["student_id"]: row for row in csv.DictReader(f)}
    return SimpleNamespace(course=course, baseline=baseline, results=results, exported=exported, solved=solved,
                           server=server, log="\n".join(log), protected=protected, held_back=held_back,
                           feedback_said="\n".join(said),
                           protected_mode=protected_mode, warm=settings.warm)


@pytest.fixture(scope="module")
def run(kernel, tmp_path_factory):
    require_sandbox()
    return grade_hostile_class(testing.make_course(tmp_path_factory.mktemp("hostile"), [PART]))


def test_every_submission_was_processed(run):
    expected = ({"good", "reference", "honest_variants", "oracle_answer"} | FLAGGED | SCORED_LIKE_REFERENCE
                | set(ECHOES) | {f"cheat_{name}" for name in CHEATS})
    assert set(run.results) == expected | {"*", "a?"}, run.log
    assert set(run.exported) == expected


def test_kernels_start_warm_or_cold_as_set(run):
    """GRADING_WARM=1 grades this class on warm kernels (docs/grading-safety.md#warm-kernels), 0 on
    cold ones: each task that reached a kernel says which in its log."""
    logs = {s: (run.course / r.log).read_text() for s, r in run.results.items() if r.log}
    started = {s: text for s, text in logs.items() if "per-submission limits" in text}
    assert len(started) > len(run.results) / 2, sorted(logs)
    for student, text in started.items():
        assert ("warm kernel, forked from zygote" in text) == run.warm, f"{student}: {text[-400:]}"


def test_each_kernel_boots_while_nbgrader_prepares_and_is_the_one_that_runs_the_cells(run):
    """Started before nbgrader's steps (preprocessors.start_early) and adopted by its Execute: each
    task that reached a kernel says so in its log; where Execute ran (its timing line), that it ran
    the cells in that kernel. A notebook nbgrader refused before Execute (edited metadata) never
    gets there: its early kernel is killed (tests/instructor/test_kernels.py)."""
    from instructor.preprocessors import TIMING

    logs = {s: (run.course / r.log).read_text() for s, r in run.results.items() if r.log}
    started = {s: text for s, text in logs.items() if "per-submission limits" in text}
    for student, text in started.items():
        assert "kernel started before nbgrader's steps" in text, f"{student}: {text[-600:]}"
    executed = {s: text for s, text in started.items() if TIMING.search(text)}
    assert len(executed) > len(started) / 2, sorted(started)
    for student, text in executed.items():
        assert "Execute adopted the kernel started before nbgrader's steps" in text, f"{student}: {text[-600:]}"
        assert int(TIMING.search(text)[2]) > 0, f"{student}: {text[-600:]}"


def test_honest_scores_unchanged_by_hostile_neighbours(run):
    for student in ("good", "reference"):
        assert run.results[student].status == "graded", run.log
        assert run.results[student].score == run.baseline[student], run.log
    assert run.results["good"].score == run.results["good"].max_score > 0
    assert 0 < run.results["reference"].score < run.results["reference"].max_score


@pytest.mark.parametrize("student", sorted(SCORED_LIKE_REFERENCE))
def test_hostile_case_scored_with_original_tests(run, student):
    result = run.results[student]
    assert result.status == "graded", f"{student}: {result.reason}\n{run.log}"
    assert result.score == run.results["reference"].score, f"{student} scored {result.score}\n{run.log}"
    assert float(run.exported[student]["score"]) == result.score


@pytest.mark.parametrize("student", sorted(FLAGGED))
def test_hostile_case_flagged(run, student):
    """Flagged: score 0 and the flag in the gradebook, the reason in grades.csv."""
    from nbgrader.api import Gradebook

    result = run.results[student]
    assert result.status == "flagged" and result.reason, run.log
    assert float(run.exported[student]["score"]) == 0
    with Gradebook(f"sqlite:///{run.course / 'gradebook.db'}") as gb:
        assert gb.find_submission_notebook(PART, PART, student).flagged
        assert not gb.find_submission_notebook(PART, PART, "good").flagged


def test_flag_reasons_say_what_happened(run):
    reasons = {s: run.results[s].reason for s in FLAGGED}
    assert "kernel died" in reasons["kernel_exit"]
    assert "would not stop" in reasons["loop_ignores_interrupt"]
    assert "kernel died" in reasons["cpu_hog"] or "notebook time limit" in reasons["cpu_hog"]
    assert f"notebook time limit ({NOTEBOOK_TIMEOUT} s)" in reasons["slow_cells"]
    assert "JSON" in reasons["not_json"]
    assert "no 01-tensors.ipynb" in reasons["missing"] and "my answers.txt" in reasons["missing"]
    assert "processes" in reasons["fork_loop"] and "limit" in reasons["fork_loop"]
    assert "memory limit" in reasons["memory_hog_processes"]
    assert "symbolic link" in reasons["symlinked_upload"]
    assert reasons["duplicate_id"].startswith("two cells claim the id "), reasons["duplicate_id"]
    assert all(len(reason.splitlines()) == 1 for reason in reasons.values()), reasons


def test_every_reason_is_a_sentence_not_an_exception(run):
    """Each reason and review finding the hostile class produced reads as words an instructor can
    act on: never a bare exception (``KeyError: 'grade_id'``) or a repr."""
    bare = re.compile(r"^\w*(Error|Exception)\b|\b\w+(Error|Exception): ['\"(<\[]|<\w+ object at 0x")
    said = {f"{s}: {text}" for s, r in run.results.items() for text in (r.reason, *r.review.split("; ")) if text}
    assert said, "the hostile class produced no reasons"
    assert not [t for t in said if bare.search(t.split(": ", 1)[1])], sorted(t for t in said if bare.search(t))[:5]


def test_nothing_the_kernel_left_is_followed(run):
    """Links, FIFOs, junk files: none reaches autograded/ or feedback/, no target was touched."""
    assert "made [" in outputs_text(run.course, "links_and_fifos")
    for path, (mode, data) in run.protected.items():
        assert path.stat().st_mode == mode, f"{path.name}: permissions changed"
        assert path.read_bytes() == data, f"{path.name}: contents changed"
    assert (run.course / "gradebook.db").stat().st_mode == run.protected_mode, "gradebook.db: permissions changed"
    for kind in ("autograded", "feedback"):
        folder = run.course / kind / "links_and_fifos" / PART
        names = sorted(p.name for p in folder.iterdir())
        assert names == [f"{PART}.{'ipynb' if kind == 'autograded' else 'html'}"], f"{kind}: {names[:10]}"
    html = (run.course / "feedback" / "links_and_fifos" / PART / f"{PART}.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in html


def test_raised_points_are_flagged_with_the_cell_named(run):
    """An answer cell turned into a test worth 100: flagged, the cell named, the real total kept."""
    result = run.results["points_raised"]
    assert "metadata was edited" in result.reason and "cell " in result.reason, result.reason
    assert result.max_score == run.results["good"].max_score


@pytest.mark.parametrize("name", CHEATS)
def test_cheat_is_caught(run, name):
    """A canary catches a tampered kernel (score 0, flagged); the scan quotes the line (review)."""
    result, caught_by = run.results[f"cheat_{name}"], cheats.CAUGHT_BY[name]
    if "canary" in caught_by:
        assert result.status == "tampered" and result.reason.startswith("tampered:"), (result, run.log)
        assert result.score == 0 and float(run.exported[f"cheat_{name}"]["score"]) == 0
        assert run.exported[f"cheat_{name}"]["status"] == "tampered"
    else:
        assert result.status == "graded", (result, run.log)
    if "scan" in caught_by:
        assert result.review and "line" in result.review, result
    assert len(result.reason.splitlines()) <= 1 and len(result.review.splitlines()) <= 1


def test_an_answer_that_reads_the_test_is_sent_for_review(run):
    """An answer that copies the expected value out of the calling assert passes the visible
    asserts (their literals), and the kernel is untouched (the canaries cannot prove anything); the
    hidden test calls it first and only then works out what to compare with, so it has nothing to
    copy there and the exercise's points are lost. An instructor is told which line to look at."""
    assert "broadcast_shape" in run.solved
    result = run.results["oracle_answer"]
    points = next(c.metadata["nbgrader"]["points"] for c in nbformat.read(
        ROOT / "solutions" / PART / f"{PART}.ipynb", as_version=4).cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == "test_broadcast_shape")
    assert result.status == "graded" and result.score == run.baseline["reference"] - points, (result, run.log)
    assert "traceback.extract_stack" in result.review and "line" in result.review, result
    assert "traceback.extract_stack" in run.exported["oracle_answer"]["review"]


def test_honest_variants_are_neither_flagged_nor_reviewed(run):
    """Plain tqdm, prints, warnings on stderr, helpers of the learner's own: full marks, clean."""
    result = run.results["honest_variants"]
    assert result.status == "graded" and not result.review, result
    assert result.score == result.max_score == run.results["good"].max_score
    for student in ("good", "reference"):
        assert not run.results[student].review, run.results[student]


def test_glob_student_ids_are_flagged_not_graded(run):
    """nbgrader globs with the student id: "*" must not grade everybody's folder as one."""
    for name in ("*", "a?"):
        assert run.results[name].status == "flagged" and "not a usable student id" in run.results[name].reason


@pytest.mark.parametrize("student", sorted(TIMED_OUT))
def test_a_cell_stopped_at_its_limit_is_named_for_review(run, student):
    """Graded as earned, never tampered, and the stopped cell named (the same in every run)."""
    result = run.results[student]
    assert result.status == "graded" and result.review.startswith("timed out in cell "), result
    assert "graded as earned" in result.review and "KeyboardInterrupt" in outputs_text(run.course, student)


def test_a_timeout_is_never_called_tampering(run):
    """Canaries failing after an interrupted cell are blamed on the interruption (the issue's
    import cut halfway), and a sleep that ignores the interrupt is said to be one."""
    reasons = {s: run.results[s].reason for s in ("tamper_then_time_out", "sleep_ignores_interrupt")}
    assert reasons["tamper_then_time_out"].startswith("timed out in cell "), reasons
    assert "could not vouch" in reasons["tamper_then_time_out"], reasons
    assert "would not stop" in reasons["sleep_ignores_interrupt"], reasons
    assert not any(r.status == "tampered" for s, r in run.results.items() if not s.startswith("cheat_")), \
        {s: r.reason for s, r in run.results.items() if r.status == "tampered"}


def test_submissions_sent_for_review_got_no_page_until_cleared(run):
    """Every answer that reads its caller was sent for review: make feedback held it back (and said
    so, with the reason), and rendered it only once an instructor had cleared it."""
    reviewed = {s for s, r in run.results.items() if r.status == "graded" and r.review}
    assert set(ECHOES) <= reviewed, sorted(set(ECHOES) - reviewed)
    assert reviewed <= run.held_back, sorted(reviewed - run.held_back)
    for student in sorted(reviewed):
        assert f"held: {student} / {PART}: sent for review: " in run.feedback_said, run.feedback_said
        assert (run.course / "feedback" / student / PART / f"{PART}.html").exists(), f"{student}: cleared, no page"


@pytest.mark.parametrize("student", sorted(ECHOES))
def test_no_hidden_test_line_in_any_feedback(run, student):
    """An answer that prints, logs, warns, displays, writes to a file or raises the code running
    it (as it is, or encoded) gets the hidden tests into its graded outputs, and not one line of
    them is recoverable from its feedback page, decoded every way it was encoded."""
    result = run.results[student]
    assert result.status == "graded", (result, run.log)
    if student not in RAISING:
        assert result.score == run.baseline["reference"], (result, run.log)
    source = nbformat.read(run.course / "solutions" / PART / f"{PART}.ipynb", as_version=4)
    hidden = cheats.hidden_lines(source)
    graded = outputs_text(run.course, student)
    assert cheats.recoverable(graded, hidden), "the answer did not carry a hidden test out: the check proves nothing"
    folder = run.course / "feedback" / student / PART
    assert sorted(p.name for p in folder.iterdir()) == [f"{PART}.html"], "only the page is written"
    leaked = cheats.recoverable((folder / f"{PART}.html").read_text(), hidden)
    assert not leaked, f"{len(leaked)} hidden-test lines recoverable from the feedback: {leaked[:3]}"


def test_formgraders_pages_carry_no_hidden_test_either(run, tmp_path):
    """The other path that renders feedback: nbgrader generate_feedback with the course's
    nbgrader_config.py (formgrader's button), on a copy of the graded course. Held submissions are
    refused there too, with the reason."""
    import shutil

    from instructor.course import run_nbgrader

    course = tmp_path / "course"
    shutil.copytree(run.course, course, symlinks=True, ignore=shutil.ignore_patterns("feedback"))
    source = nbformat.read(course / "solutions" / PART / f"{PART}.ipynb", as_version=4)
    hidden = cheats.hidden_lines(source)
    for student in sorted(ECHOES):
        done = run_nbgrader(["generate_feedback", PART, f"--student={student}", "--force"], course,
                            capture_output=True, text=True)
        page = course / "feedback" / student / PART / f"{PART}.html"
        assert done.returncode == 0 and page.exists(), (student, done.stdout[-2000:], done.stderr[-2000:])
        leaked = cheats.recoverable(page.read_text(), hidden)
        assert not leaked, f"{student}: {len(leaked)} hidden-test lines recoverable from formgrader's page"
    cleared = course / "autograded" / held.CLEARED
    cleared.unlink()  # as before the instructor read them: held again
    student = sorted(ECHOES)[0]
    (course / "feedback" / student / PART / f"{PART}.html").unlink()
    done = run_nbgrader(["generate_feedback", PART, f"--student={student}", "--force"], course,
                        capture_output=True, text=True)
    assert not (course / "feedback" / student / PART / f"{PART}.html").exists()
    assert "held for review" in done.stdout + done.stderr, (done.stdout[-2000:], done.stderr[-2000:])


def test_infinite_loop_stopped_by_the_cell_timeout(run):
    assert "KeyboardInterrupt" in outputs_text(run.course, "infinite_loop") or \
        "CellTimeoutError" in outputs_text(run.course, "infinite_loop")
    # Stopped promptly: at most a few cell limits beyond an honest neighbour graded in the same
    # run (wall seconds alone would measure the machine's load, not the loop's handling).
    assert run.results["infinite_loop"].seconds < run.results["good"].seconds + 6 * CELL_TIMEOUT


def test_memory_hog_hits_the_limit_and_the_kernel_survives(run):
    assert "MemoryError" in outputs_text(run.course, "memory_hog")


def test_huge_output_is_truncated_everywhere(run):
    graded = run.course / "autograded" / "huge_output" / PART / f"{PART}.ipynb"
    page = run.course / "feedback" / "huge_output" / PART / f"{PART}.html"
    assert graded.stat().st_size < 3_000_000
    assert page.exists() and page.stat().st_size < 5_000_000
    assert "Output truncated" in outputs_text(run.course, "huge_output")


def test_wrong_kernelspec_graded_in_the_sandbox_kernel(run):
    assert "uid 65534" in outputs_text(run.course, "wrong_kernelspec")


def test_snooping_student_is_confined(run):
    text = outputs_text(run.course, "snoop")
    attacks = [line for line in text.splitlines() if line.startswith("ATTACK")]
    assert len(attacks) == 10, text[:3000]
    assert all(": BLOCKED" in line for line in attacks), "\n".join(attacks)
    assert "BEGIN HIDDEN TESTS" not in text
    assert "uid 65534" in text
    assert run.server.connections == 0
    assert (run.course / "sentinel.txt").read_text() == "must survive"
    assert (run.course / "submitted" / "good" / PART / f"{PART}.ipynb").exists()


def test_gradebook_intact(run):
    db = sqlite3.connect(run.course / "gradebook.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        students = {row[0] for row in db.execute("SELECT id FROM student")}
    finally:
        db.close()
    assert students == set(run.results) - {"*", "a?"}


@pytest.mark.parametrize("name", ["*", "a?", "[ab]", "-rf", ".hidden"])
def test_unusable_student_ids_are_refused(tmp_path, name):
    assert "not a usable student id" in coordinator.check_submission(tmp_path, coordinator.Job(name, PART))
