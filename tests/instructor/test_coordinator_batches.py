"""The coordinator at scale, with real processes: results stored in batches survive a coordinator
killed mid-batch (SIGKILL, then a restart), each stored exactly once; a cluster that loses every
worker stops the run with a clear error instead of a silent wait. Feedback pages rendered by
Dask workers are instructor.feedback's (tests/instructor/test_feedback.py).
No sandbox needed: the tasks here grade nothing (:func:`instructor.testing.pregraded`)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from instructor import coordinator, testing
from instructor.course import JOURNAL, ROOT, GradingError, db_url
from instructor.settings import Settings
from tests.services import start_dask_cluster

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
    students = 300
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
    again = subprocess.run(**_driver(course, cluster.address, "none", marker), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    journaled = _journal(course)
    assert sorted(journaled) == sorted(f"s{i:05d}" for i in range(students)), "each result journaled exactly once"
    assert _gradebook_scores(course) == {f"s{i:05d}": testing.trivial_score(i) for i in range(students)}
    assert all((course / "autograded" / f"s{i:05d}" / PART / f"{PART}.ipynb").is_file() for i in range(students))


def test_a_cluster_that_loses_every_worker_stops_the_run_and_keeps_what_was_stored(tmp_path, monkeypatch):
    """Both workers (nannies included: none comes back) SIGKILLed while the last two submissions'
    tasks run: the run stops with a one-line error once the grace period is over, instead of
    waiting forever; what was stored stays, and the same command on a new cluster grades the rest,
    each submission exactly once. The two tasks sleep until released, so which results were stored
    before the loss does not depend on the machine's load; the margin only bounds a regression."""
    grace, margin, students, held = 5, 120, 6, ("s00004", "s00005")
    monkeypatch.setattr(coordinator, "NO_WORKER_GRACE", grace)
    course = testing.trivial_course(tmp_path / "course", students)
    markers = tmp_path / "markers"
    markers.mkdir()
    task = functools.partial(testing.pregraded_or_held, held=held, folder=str(markers))
    settings = Settings.resolve(course, sandbox_mode="rlimits")
    failed: list[Exception] = []

    def run(address: str, said: list[str]) -> None:
        try:
            coordinator.autograde(course, settings=settings, cluster=address, task=task, say=said.append)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            failed.append(exc)

    with start_dask_cluster(2) as cluster:
        runner = threading.Thread(target=run, args=(cluster.address, []), daemon=True)
        runner.start()
        deadline = time.monotonic() + 300
        while len(_journal(course)) < students - len(held) or not list(markers.glob("*.started")):
            assert runner.is_alive() and time.monotonic() < deadline, f"never got busy with a held task: {failed}"
            time.sleep(0.1)
        for i in range(len(cluster.workers)):
            lost = time.monotonic()  # before the last one's SIGKILL: the cluster has a worker until then
            cluster.kill_worker(i)
        runner.join(grace + margin)
        assert not runner.is_alive(), f"still waiting {grace + margin} s after the cluster lost every worker"
        waited = time.monotonic() - lost
    assert len(failed) == 1 and isinstance(failed[0], GradingError), failed
    message = str(failed[0])
    assert "\n" not in message and "lost all its workers" in message, message
    assert f"the {students - len(held)} of {students} result(s) finished before are stored" in message
    assert "run the same command again" in message
    assert waited >= grace, f"it gave up {waited:.1f} s after the loss, before the grace period was over"
    stored = sorted(f"s{i:05d}" for i in range(students - len(held)))
    assert sorted(_journal(course)) == stored and sorted(_gradebook_scores(course)) == stored
    (markers / "release").touch()
    said: list[str] = []
    with start_dask_cluster(2) as cluster:
        run(cluster.address, said)
    assert len(failed) == 1, failed[1:]
    assert f"{len(stored)} submission(s) graded before and unchanged" in "\n".join(said), said
    assert sorted(_journal(course)) == [f"s{i:05d}" for i in range(students)], "each result journaled exactly once"
    assert _gradebook_scores(course) == {f"s{i:05d}": testing.trivial_score(i) for i in range(students)}
