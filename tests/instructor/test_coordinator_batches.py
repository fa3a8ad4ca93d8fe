"""The coordinator at scale, with real processes: results stored in batches survive a coordinator
killed mid-batch (SIGKILL, then a restart), and feedback pages are rendered by Dask workers,
equal to nbgrader's own, resumed without redoing a page, and none lost with a worker.
No sandbox needed: the tasks here grade nothing (:func:`instructor.testing.pregraded`)."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from instructor import feedback, store, testing
from instructor.coordinator import Job, submission_bytes
from instructor.course import JOURNAL, ROOT, db_url, run_nbgrader
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


@pytest.mark.parametrize(("point", "database"), [("mid-transaction", "sqlite"), ("after-commit", "postgresql"),
                                                 ("after-commit", "sqlite")])
def test_a_coordinator_killed_mid_batch_stores_every_result_exactly_once(tmp_path, point, database, request):
    config = ""
    if database == "postgresql":
        config = f"\nc.CourseDirectory.db_url = {request.getfixturevalue('postgres_db_factory')()!r}\n"
    students = 300
    course = testing.trivial_course(tmp_path / "course", students, config)
    marker = tmp_path / "held"
    with start_dask_cluster(2) as cluster:
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


def _stored_class(folder, students: int):
    """A trivial course with every submission stored (as the coordinator stores them)."""
    course = testing.trivial_course(folder, students)
    items = []
    for i in range(students):
        spec = {"student": f"s{i:05d}", "part": PART, "notebook": submission_bytes(course, Job(f"s{i:05d}", PART))}
        items.append((testing.pregraded(spec), "digest", None))
    with store.Store(course) as st:
        for start in range(0, students, store.BATCH):
            st.record(items[start:start + store.BATCH])
    return course


def test_feedback_on_workers_equals_nbgrader_and_resumes(tmp_path):
    course = _stored_class(tmp_path / "course", 6)
    pipeline = "['nbgrader.preprocessors.GetGrades','nbconvert.preprocessors.CSSHTMLHeaderPreprocessor'," \
               "'instructor.preprocessors.FeedbackWithoutHiddenTests']"
    run_nbgrader(["generate_feedback", PART, "--force", "--log-level=WARN",
                  f"--GenerateFeedback.preprocessors={pipeline}"], course, check=True)
    shutil.move(course / "feedback", tmp_path / "nbgrader")
    said: list[str] = []
    with start_dask_cluster(1) as cluster:
        assert feedback.feedback(course, cluster=cluster.address, say=said.append) == \
            {PART: {"written": 6, "up to date": 0, "failed": 0}}
        for i in range(6):
            ours = feedback.page_path(course, f"s{i:05d}", PART)
            assert filecmp.cmp(tmp_path / "nbgrader" / ours.relative_to(course / "feedback"), ours, shallow=False)
        assert f"{PART}: 6 page(s) written, 0 up to date" in said
        before = {i: feedback.page_path(course, f"s{i:05d}", PART).stat().st_mtime_ns for i in range(6)}
        # a grader's manual score changes one page; nothing else is rendered again
        from nbgrader.api import Gradebook

        with Gradebook(db_url(course)) as gb:
            gb.find_grade("test_0", PART, PART, "s00001").manual_score = 1.5
            gb.db.commit()
        assert feedback.feedback(course, cluster=cluster.address, say=said.append) == \
            {PART: {"written": 1, "up to date": 5, "failed": 0}}
    after = {i: feedback.page_path(course, f"s{i:05d}", PART).stat().st_mtime_ns for i in range(6)}
    assert [i for i in range(6) if after[i] != before[i]] == [1]
    assert "1.5" in feedback.page_path(course, "s00001", PART).read_text()


def test_feedback_loses_no_page_with_a_worker(tmp_path):
    students = 150
    course = _stored_class(tmp_path / "course", students)
    with start_dask_cluster(2) as cluster:
        client = cluster.client()
        killed, stop = [], threading.Event()

        def kill_the_first_busy_worker() -> None:
            while not stop.is_set() and not killed:
                busy = [w for w, keys in client.processing().items() if keys]
                if busy:
                    name = client.scheduler_info()["workers"][busy[0]]["name"]
                    cluster.kill_worker(cluster.names.index(name))
                    killed.append(name)
                time.sleep(0.01)

        killer = threading.Thread(target=kill_the_first_busy_worker, daemon=True)
        killer.start()
        summary = feedback.feedback(course, cluster=cluster.address, say=lambda _: None)
        stop.set()
        killer.join(timeout=5)
        client.close()
    assert killed, "no worker was ever busy"
    assert summary == {PART: {"written": students, "up to date": 0, "failed": 0}}
    assert all(feedback.page_path(course, f"s{i:05d}", PART).stat().st_size > 1000 for i in range(students))
    lines = (course / "feedback" / feedback.MANIFEST).read_text().splitlines()
    assert len(lines) == students
