"""instructor.limits: what a worker fills in of a task's limits, and the per-submission clock
and control groups where this machine has them."""

from __future__ import annotations

import os
import subprocess
import sys

from instructor import limits

TASK = {"cell_timeout": 10, "notebook_timeout": 30, "memory_bytes": 2**30, "cpu_seconds": None,
        "threads": None, "processes": 512, "sandbox": "bwrap"}


def test_worker_limits_fill_in_threads_and_cpu_from_the_workers_environment(monkeypatch):
    monkeypatch.delenv("GRADING_THREADS", raising=False)
    assert (limits.worker_limits(TASK)["threads"], limits.worker_limits(TASK)["cpu_seconds"]) == (1, 30)
    monkeypatch.setenv("GRADING_THREADS", "4")
    filled = limits.worker_limits(TASK)
    assert (filled["threads"], filled["cpu_seconds"]) == (4, 120)
    assert TASK["threads"] is None and TASK["cpu_seconds"] is None, "the task's own dict is not changed"


def test_worker_limits_keep_what_the_coordinator_sent(monkeypatch):
    monkeypatch.setenv("GRADING_THREADS", "4")
    sent = {**TASK, "threads": 2, "cpu_seconds": 7}
    assert limits.worker_limits(sent) == sent


def test_tree_of_this_process_has_its_threads_and_cpu_time():
    threads = limits.tree_threads(os.getpid())
    assert os.getpid() in threads
    seconds = limits.tree_cpu_seconds(os.getpid())
    assert seconds is None or seconds > 0


def test_a_missing_process_has_no_threads():
    assert limits.tree_threads(2**22 + 1) == []   # above Linux's largest pid


def test_available_says_why_in_one_line():
    ok, message = limits.available()
    assert isinstance(ok, bool) and message and "\n" not in message


def test_the_tree_counts_a_child_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in limits.tree_threads(os.getpid())
    finally:
        child.kill()
        child.wait()
