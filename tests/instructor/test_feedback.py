"""instructor.feedback: feedback pages rendered on workers (as ``nbgrader generate_feedback``
renders them), written by the coordinator, resumed without redoing a page and none lost with a
worker. No sandbox needed: the submissions here are graded by :func:`instructor.testing.pregraded`."""

from __future__ import annotations

import filecmp
import re
import shutil
import threading
import time

import nbformat

from instructor import feedback, store, testing
from instructor.coordinator import Job, submission_bytes
from instructor.course import db_url, is_test_cell, run_nbgrader
from instructor.verdicts import release_tests
from tests.services import start_dask_cluster

PART = testing.TRIVIAL_PART
HIDDEN = "assert answer != 'a line only the instructor may see'"


def test_page_path_is_one_page_per_student_and_part(tmp_path):
    assert feedback.page_path(tmp_path, "s1", PART) == tmp_path / "feedback" / "s1" / PART / f"{PART}.html"


def test_render_shows_the_submission_the_scores_and_no_line_of_a_hidden_test(tmp_path):
    """The page: the learner's own outputs, each test's visible source and verdict, the scores;
    what the grading run printed and raised (here, a hidden line) is not on it."""
    course = testing.trivial_course(tmp_path / "course", 2)
    submitted = nbformat.reads(submission_bytes(course, Job("s00001", PART)).decode(), as_version=4)
    next(c for c in submitted.cells if not is_test_cell(c) and c.cell_type == "code").outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="my own run: 41\n")]
    submitted.cells.insert(0, nbformat.v4.new_markdown_cell(r"The sigmoid $\sigma(x) = 1 / (1 + e^{-x})$."))
    graded = nbformat.reads(nbformat.writes(submitted), as_version=4)
    test = next(c for c in graded.cells if is_test_cell(c))
    test.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"it ran: {HIDDEN}\n"),
                    nbformat.v4.new_output("error", ename="AssertionError", evalue=HIDDEN,
                                           traceback=["Traceback", f"    {HIDDEN}", f"AssertionError: {HIDDEN}"])]
    tests = release_tests(course, PART)
    tests["test_0"] += f"\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS"
    grades = {"cells": {"test_0": {"score": 0.0, "points": 2.0}, "test_1": {"score": 1.0, "points": 1.0}},
              "score": 1.0, "max_score": 3.0, "late_penalty": 0.0}
    page = feedback.render({"student": "s00001", "part": PART, "notebook": nbformat.writes(graded).encode(),
                            "submitted": nbformat.writes(submitted).encode(), "tests": tests,
                            "grades": grades}).decode()
    assert "only the instructor may see" not in page
    assert "my own run: 41" in page
    assert "AssertionError: the test failed" in page and "Passed." in page
    assert "Score: 1.0 / 3.0" in page, page[:2000]
    # its formulas drawn by the browser, offline: MathML, and no script fetched from anywhere
    assert re.search(r'The sigmoid <math[^>]* display="inline"[^>]*><mrow><mi>σ</mi>', page), page[-3000:]
    assert not re.search(r"<script[^>]*\ssrc=", page) and "cdnjs" not in page and "MathJax.Hub" not in page


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
    # formgrader's route: nbgrader generate_feedback with the course's nbgrader_config.py
    run_nbgrader(["generate_feedback", PART, "--force", "--log-level=WARN"], course, check=True)
    shutil.move(course / "feedback", tmp_path / "nbgrader")
    said: list[str] = []
    with start_dask_cluster(1) as cluster:
        assert feedback.feedback(course, cluster=cluster.address, say=said.append) == \
            {PART: {"written": 6, "up to date": 0, "failed": 0, "held": 0}}
        for i in range(6):
            ours = feedback.page_path(course, f"s{i:05d}", PART)
            assert filecmp.cmp(tmp_path / "nbgrader" / ours.relative_to(course / "feedback"), ours, shallow=False)
            assert "cdnjs" not in ours.read_text(), "formgrader's page and ours: no MathJax from a CDN"
        assert f"{PART}: 6 page(s) written, 0 up to date" in said
        before = {i: feedback.page_path(course, f"s{i:05d}", PART).stat().st_mtime_ns for i in range(6)}
        # a grader's manual score changes one page; nothing else is rendered again
        from nbgrader.api import Gradebook

        with Gradebook(db_url(course)) as gb:
            gb.find_grade("test_0", PART, PART, "s00001").manual_score = 1.5
            gb.db.commit()
        assert feedback.feedback(course, cluster=cluster.address, say=said.append) == \
            {PART: {"written": 1, "up to date": 5, "failed": 0, "held": 0}}
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
                name = cluster.kill_a_busy_worker(client)
                if name:
                    killed.append(name)
                time.sleep(0.01)

        killer = threading.Thread(target=kill_the_first_busy_worker, daemon=True)
        killer.start()
        summary = feedback.feedback(course, cluster=cluster.address, say=lambda _: None)
        stop.set()
        killer.join(timeout=5)
        client.close()
    assert killed, "no worker was ever busy"
    assert summary == {PART: {"written": students, "up to date": 0, "failed": 0, "held": 0}}
    assert all(feedback.page_path(course, f"s{i:05d}", PART).stat().st_size > 1000 for i in range(students))
    lines = (course / "feedback" / feedback.MANIFEST).read_text().splitlines()
    assert len(lines) == students
