"""The coordinator at scale, with real processes: results stored in batches survive a coordinator
killed mid-batch (SIGKILL, then a restart), each stored exactly once. Feedback pages rendered by
Dask workers are instructor.feedback's (tests/instructor/test_feedback.py).
No sandbox needed: the tasks here grade nothing (:func:`instructor.testing.pregraded`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from instructor import testing
from instructor.course import JOURNAL, ROOT, db_url
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
    return [json.loads(line)["student"] for line in (course / "autograded" / JOURNAL).read_text().splitlines()]


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
