"""The coordinator at scale, with real processes: results stored in batches survive a coordinator
killed mid-batch (SIGKILL, then a restart), each stored exactly once; a cluster that loses every
worker stops the run with a clear error instead of a silent wait. Feedback pages rendered by
Dask workers are instructor.feedback's (tests/instructor/test_feedback.py).
No sandbox needed: the tasks here grade nothing (:func:`instructor.testing.pregraded`)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from instructor import coordinator, testing
from instructor.course import JOURNAL, ROOT, GradingError, db_url
from instructor.settings import Settings
from tests.services import dask_env, start_dask_cluster

PART = testing.TRIVIAL_PART

# The coordinator as a subprocess, held (then killed) at one point of its second batch: the
# first batch is stored whole by then.
DRIVER = """
import sys, time
from pathlib import Path
from instructor import coordinator, outcome, scores, testing
from instructor.settings import Settings

course, address, point, marker = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
calls = []

def hold(original):
    def held(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            marker.write_text(point)
            time.sleep(600)
        return original(*args, **kwargs)
    return held

if point == "mid-transaction":      # scores written, the transaction not committed
    scores._flags = hold(scores._flags)
elif point == "after-commit":       # the gradebook committed, the journal not written
    outcome.append_many = hold(outcome.append_many)
coordinator.autograde(course, settings=Settings.resolve(course, sandbox_mode="rlimits"), cluster=address,
                      task=testing.pregraded, say=lambda _: None)
"""


def _gradebook_scores(course) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        return {s.student.id: s.score for a in gb.assignments for s in a.submissions}


def _journal(course) -> list[str]:
    path = course / "autograded" / JOURNAL
    return [json.loads(line)["student"] for line in path.read_text().splitlines()] if path.exists() else []


def _driver(course, address, point, marker) -> dict:
    return {"args": [sys.executable, "-c", DRIVER, str(course), address, point, str(marker)], "cwd": ROOT,
            "env": {**os.environ, "PYTHONPATH": str(ROOT)}}


@pytest.fixture(scope="module")
def cluster():
    """One Dask cluster for every kill below: each test already restarts its coordinator on the
    cluster its killed one left (a killed client's work is the scheduler's to drop)."""
    with start_dask_cluster(2) as started:
        yield started


@pytest.mark.parametrize(("point", "database"), [("mid-transaction", "sqlite"), ("after-commit", "postgresql"),
                                                 ("after-commit", "sqlite")])
def test_a_coordinator_killed_mid_batch_stores_every_result_exactly_once(tmp_path, point, database, request,
                                                                             cluster):
    config = ""
    if database == "postgresql":
        config = f"\nc.CourseDirectory.db_url = {request.getfixturevalue('postgres_db_factory')()!r}\n"
    students = 150  # three batches or more (BATCH = 64): the kill lands in the second
    course = testing.trivial_course(tmp_path / "course", students, config)
    marker = tmp_path / "held"
    proc = subprocess.Popen(**_driver(course, cluster.address, point, marker))
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the coordinator never reached its 2nd batch"
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup of any kind
    proc.wait(timeout=30)
    journaled, booked = _journal(course), _gradebook_scores(course)
    assert 0 < len(journaled) < students
    if point == "after-commit":
        assert len(booked) > len(journaled), "the kill was meant to land after the gradebook's commit"
    else:
        assert set(booked) == set(journaled), "an uncommitted batch leaves nothing in the gradebook"
    # the restart: a new coordinator (this process has run none), on what the killed one left
    coordinator.autograde(course, settings=Settings.resolve(course, sandbox_mode="rlimits"), cluster=cluster.address,
                          task=testing.pregraded, say=lambda _: None)
    journaled = _journal(course)
    assert sorted(journaled) == sorted(f"s{i:05d}" for i in range(students)), "each result journaled exactly once"
    assert _gradebook_scores(course) == {f"s{i:05d}": testing.trivial_score(i) for i in range(students)}
    assert all((course / "autograded" / f"s{i:05d}" / PART / f"{PART}.ipynb").is_file() for i in range(students))


STUDENTS, HELD = 6, ("s00004", "s00005")  # the last two submissions' tasks run until released


class HeldRun:
    """autograde, in a thread, of a class whose last two tasks sleep until ``release()``
    (:func:`instructor.testing.pregraded_or_held`): which results are stored before a worker is
    lost does not depend on the machine's load."""

    def __init__(self, folder):
        self.course = testing.trivial_course(folder / "course", STUDENTS)
        self.markers = folder / "markers"
        self.markers.mkdir()
        self.task = functools.partial(testing.pregraded_or_held, held=HELD, folder=str(self.markers))
        self.failed: list[Exception] = []

    def run(self, address: str, said: list[str]) -> None:
        try:
            coordinator.autograde(self.course, settings=Settings.resolve(self.course, sandbox_mode="rlimits"),
                                  cluster=address, task=self.task, say=said.append)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            self.failed.append(exc)

    def start_until_held(self, address: str) -> threading.Thread:
        """The run started; returns once the others are stored and a held task runs."""
        runner = threading.Thread(target=self.run, args=(address, []), daemon=True)
        runner.start()
        deadline = time.monotonic() + 300
        while len(_journal(self.course)) < STUDENTS - len(HELD) or not list(self.markers.glob("*.started")):
            assert runner.is_alive() and time.monotonic() < deadline, f"never got to a held task: {self.failed}"
            time.sleep(0.1)
        return runner

    def release(self) -> None:
        (self.markers / "release").touch()


def _kill_every_worker(cluster) -> float:
    """SIGKILL each worker and its nanny (none comes back); the time just before the last one's."""
    for i in range(len(cluster.workers)):
        lost = time.monotonic()  # the cluster has a worker until the last SIGKILL
        cluster.kill_worker(i)
    return lost


@pytest.mark.slow  # half a minute or more: make test, not test-fast
def test_a_cluster_that_loses_every_worker_stops_the_run_and_keeps_what_was_stored(tmp_path, monkeypatch):
    """Both workers killed while a held task runs: the run stops with a one-line error once the
    grace period is over, instead of waiting forever; what was stored stays, and the same command
    on a new cluster grades the rest, each submission exactly once. The margin only bounds a
    regression (which would wait forever)."""
    grace, margin = 5, 120
    monkeypatch.setattr(coordinator, "NO_WORKER_GRACE", grace)
    held = HeldRun(tmp_path)
    with start_dask_cluster(2) as cluster:
        runner = held.start_until_held(cluster.address)
        lost = _kill_every_worker(cluster)
        runner.join(grace + margin)
        assert not runner.is_alive(), f"still waiting {grace + margin} s after the cluster lost every worker"
        waited = time.monotonic() - lost
    assert len(held.failed) == 1 and isinstance(held.failed[0], GradingError), held.failed
    message = str(held.failed[0])
    assert "\n" not in message and "lost all its workers" in message, message
    assert f"the {STUDENTS - len(HELD)} of {STUDENTS} result(s) finished before are stored" in message
    assert "run the same command again" in message
    assert waited >= grace, f"it gave up {waited:.1f} s after the loss, before the grace period was over"
    stored = sorted(f"s{i:05d}" for i in range(STUDENTS - len(HELD)))
    assert sorted(_journal(held.course)) == stored and sorted(_gradebook_scores(held.course)) == stored
    held.release()
    said: list[str] = []
    with start_dask_cluster(2) as cluster:
        held.run(cluster.address, said)
    assert len(held.failed) == 1, held.failed[1:]
    assert f"{len(stored)} submission(s) graded before and unchanged" in "\n".join(said), said
    everyone = [f"s{i:05d}" for i in range(STUDENTS)]
    assert sorted(_journal(held.course)) == everyone, "each result journaled exactly once"
    assert _gradebook_scores(held.course) == {s: testing.trivial_score(i) for i, s in enumerate(everyone)}


@contextmanager
def _new_worker(cluster, name: str):
    """One more `dask worker` process on ``cluster``'s scheduler while in the block."""
    with open(cluster.folder / f"{name}.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.address,
                                   "--name", name, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard",
                                   "--dashboard-address", "127.0.0.1:0", "--death-timeout", "30",
                                   "--local-directory", str(cluster.folder / name)],
                                  cwd=cluster.folder, env=dask_env(), stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        yield worker
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


@pytest.mark.slow  # half a minute or more: make test, not test-fast
def test_a_worker_back_within_the_grace_period_lets_the_run_carry_on(tmp_path):
    """Both workers killed while a held task runs, then a new worker started on the scheduler:
    with the default grace period (a minute, far more than a worker takes to start) the run
    carries on and grades everything, each submission exactly once."""
    held = HeldRun(tmp_path)
    with start_dask_cluster(2) as cluster:
        runner = held.start_until_held(cluster.address)
        _kill_every_worker(cluster)
        held.release()
        with _new_worker(cluster, "worker-back"):
            runner.join(300)
            assert not runner.is_alive(), \
                f"not done 300 s after a worker came back:\n{cluster.log('worker-back')[-3000:]}"
    assert held.failed == []
    assert sorted(_journal(held.course)) == [f"s{i:05d}" for i in range(STUDENTS)], "each result journaled once"
    assert _gradebook_scores(held.course) == {f"s{i:05d}": testing.trivial_score(i) for i in range(STUDENTS)}


@pytest.mark.slow
def test_a_cluster_whose_first_worker_is_late_is_waited_for(tmp_path, monkeypatch):
    """A scheduler with no worker yet (its workers' jobs still queued): the run waits past the
    grace period, which counts only once the cluster has had a worker, then grades everything."""
    grace = 2
    monkeypatch.setattr(coordinator, "NO_WORKER_GRACE", grace)
    course = testing.trivial_course(tmp_path / "course", STUDENTS)
    failed: list[Exception] = []

    def run(address: str) -> None:
        try:
            coordinator.autograde(course, settings=Settings.resolve(course, sandbox_mode="rlimits"), cluster=address,
                                  task=testing.pregraded, say=lambda _: None)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            failed.append(exc)

    with start_dask_cluster(0) as cluster:
        runner = threading.Thread(target=run, args=(cluster.address,), daemon=True)
        runner.start()
        runner.join(3 * grace)
        assert runner.is_alive() and failed == [], f"stopped before any worker had come: {failed}"
        assert _journal(course) == []
        with _new_worker(cluster, "late"):
            runner.join(300)
            assert not runner.is_alive(), f"not done 300 s after the first worker came:\n{cluster.log('late')[-3000:]}"
    assert failed == []
    assert _gradebook_scores(course) == {f"s{i:05d}": testing.trivial_score(i) for i in range(STUDENTS)}
