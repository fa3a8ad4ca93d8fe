"""Grading across machines: a real Dask scheduler and two workers on 127.0.0.1, one killed
mid-run, an interrupted coordinator resumed, and the gradebook on a real PostgreSQL server.
Needs bubblewrap, as tests/instructor/test_tasks.py explains."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time

import nbformat
import pytest

from instructor import coordinator, feedback, lms, testing
from instructor.course import JOURNAL, REPORT, ROOT, db_url
from instructor.settings import Settings
from tests.conftest import require_sandbox
from tests.services import start_dask_cluster

PART = "01-tensors"
PARTS = ("01-tensors", "02-neural-networks")
CLASS = ("full", "partial", "empty", "crash", "cheat")
pytestmark = [pytest.mark.slow, pytest.mark.course_data(*PARTS)]


def small_class(folder, students=("full", "partial", "empty", "crash"), config="", parts=(PART,)):
    """``parts`` for: the solution, the first exercise solved, untouched, a kernel that dies, a
    cheat the canaries catch (run_cell wrapped), and any other name: the solution again."""
    from tests import cheats

    course = testing.make_course(folder, list(parts), config)
    for part in parts:
        first = testing.answer_ids(course, part)[:1]
        kinds = {"full": "all", "partial": first, "empty": "none"}
        for student in students:
            if student in kinds:
                testing.submit(course, student, part, kinds[student])
            elif student == "crash":
                nb = testing.student_notebook(course, part, first)
                testing.write_submission(course, student, part, testing.insert_code(nb, 2, "import os\nos._exit(3)"))
            elif student == "cheat":
                nb = testing.student_notebook(course, part, first)
                after_first = 1 + next(i for i, c in enumerate(nb.cells)
                                       if c.metadata.get("nbgrader", {}).get("grade_id") == first[0])
                testing.write_submission(course, student, part,
                                         testing.insert_code(nb, after_first, cheats.CHEATS["run_cell_wrapped"]))
            else:
                testing.submit(course, student, part, "all")
    return course


def outcome(course):
    """((student, part) -> (status, score, reason, review)) from the report, and
    (student, part) -> score from the gradebook."""
    from nbgrader.api import Gradebook

    with open(course / "autograded" / REPORT, newline="") as f:
        report = {(row["student"], row["part"]): (row["status"], float(row["score"]), row["reason"], row["review"])
                  for row in csv.DictReader(f)}
    with Gradebook(db_url(course)) as gb:
        book = {(s.student.id, a.name): s.score for a in gb.assignments for s in a.submissions}
    return report, book


def journal_counts(course):
    counts: dict[str, int] = {}
    for line in (course / "autograded" / JOURNAL).read_text().splitlines():
        student = line.split('"student": "')[1].split('"')[0]
        counts[student] = counts.get(student, 0) + 1
    return counts


@pytest.fixture(scope="module")
def local_run(kernel, tmp_path_factory):
    require_sandbox()
    course = small_class(tmp_path_factory.mktemp("local"), CLASS, parts=PARTS)
    coordinator.autograde(course, list(PARTS), settings=Settings.resolve(course, jobs=2), say=lambda _: None)
    return outcome(course)


def kill_a_busy_worker(cluster, client, killed: threading.Event, deadline: float = 120) -> None:
    """Kill the first worker seen running a task, 2 s into it (its kernel has started)."""
    stop = time.monotonic() + deadline
    while time.monotonic() < stop and not killed.is_set():
        if any(client.processing().values()):
            time.sleep(2)
            if cluster.kill_a_busy_worker(client):
                killed.set()
                return
        time.sleep(0.2)


def test_a_real_cluster_grades_like_a_local_run_even_when_a_worker_dies(tmp_path, local_run):
    """Two parts x (full, partial, untouched, a dying kernel, a cheat) through a real scheduler and
    two workers, one of them killed mid-task: report and gradebook equal the local run's,
    submission for submission, and each submission is recorded exactly once."""
    course = small_class(tmp_path / "course", CLASS, parts=PARTS)
    with start_dask_cluster(2) as cluster:
        client = cluster.client()
        killed = threading.Event()
        killer = threading.Thread(target=kill_a_busy_worker, args=(cluster, client, killed), daemon=True)
        killer.start()
        results = coordinator.autograde(course, list(PARTS), settings=Settings.resolve(course),
                                    cluster=cluster.address, say=lambda _: None)
        killer.join(timeout=5)
        client.close()
        hosts = {r.host for r in results}
    assert killed.is_set(), "no worker was ever busy"
    assert len(results) == len(CLASS) * len(PARTS)
    assert journal_counts(course) == {s: len(PARTS) for s in CLASS}, "each submission recorded exactly once"
    report, book = outcome(course)
    assert (report, book) == local_run
    for part in PARTS:
        assert report[("full", part)][:2] == ("graded", book[("full", part)]) and book[("full", part)] > 0
        assert 0 < report[("partial", part)][1] < report[("full", part)][1]
        assert report[("empty", part)][:2] == ("graded", 0)
        assert report[("crash", part)][0] == "flagged" and "kernel died" in report[("crash", part)][2]
        assert report[("cheat", part)][:2] == ("tampered", 0) and "canary" in report[("cheat", part)][2]
    assert hosts == {os.uname().nodename}


@pytest.mark.kernel
def test_an_interrupted_coordinator_resumes(tmp_path):
    """Ctrl-C after the first graded submission, then the same command again: what was graded
    stays (not graded twice), the rest is graded, nothing is lost. The other submissions sleep in
    a cell until the interrupt, so which ones were graded does not depend on the machine's load."""
    require_sandbox()
    slow = ("slow1", "slow2", "slow3")
    course = small_class(tmp_path / "course", ("empty",))
    sleeper = testing.insert_code(testing.student_notebook(course, PART, "all"), 1, "import time\ntime.sleep(300)")
    for student in slow:
        testing.write_submission(course, student, PART, sleeper)
    cmd = [sys.executable, "-m", "instructor", "--course", str(course), "autograde", "--jobs", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    first = []
    deadline = time.monotonic() + 600
    for line in proc.stdout:
        if re.match(r"(.*\r)?ok ", line):
            first.append(line)
            proc.send_signal(signal.SIGINT)  # Ctrl-C after the first graded submission
            break
        assert time.monotonic() < deadline
    rest = proc.communicate(timeout=300)[0]
    assert first and "empty" in first[0], rest
    assert proc.returncode != 0
    assert journal_counts(course) == {"empty": 1}, "the graded one is kept, the sleeping ones were not graded"
    for student in slow:  # never graded, so they may change: resubmitted without the sleep
        testing.submit(course, student, PART, "all")
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "1 submission(s) graded before and unchanged" in again.stdout
    assert journal_counts(course) == {s: 1 for s in ("empty", *slow)}, "nothing graded twice, nothing lost"


@pytest.mark.kernel
def test_gradebook_on_postgresql_round_trip(tmp_path, postgres_db_factory):
    """release -> autograde -> feedback -> export with the gradebook on a PostgreSQL server."""
    require_sandbox()
    url = postgres_db_factory()
    course = small_class(tmp_path / "course", ("full", "empty"), config=f"\nc.CourseDirectory.db_url = {url!r}\n")
    results = coordinator.autograde(course, [PART], settings=Settings.resolve(course, jobs=2),
                                say=lambda _: None)
    assert {r.student: r.status for r in results} == {"full": "graded", "empty": "graded"}
    feedback.feedback(course, [PART])
    out = lms.export_grades(course, course / "grades.csv")
    with open(out, newline="") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    assert float(rows["full"]["score"]) == float(rows["full"]["max_score"]) > 0
    assert float(rows["empty"]["score"]) == 0
    assert not (course / "gradebook.db").exists(), "nothing went to SQLite"
    assert (course / "feedback" / "full" / PART / f"{PART}.html").exists()
    nbformat.read(course / "autograded" / "full" / PART / f"{PART}.ipynb", as_version=4)
