"""The instructor's workflow end to end, through the command line the Makefile calls:
release, collect (loose files and a zip), autograde on a local Dask cluster of two workers,
feedback, grades. Three students: full marks, partly solved, untouched.
Needs bubblewrap, as tests/instructor/test_tasks.py explains.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from instructor import testing
from instructor.course import ROOT
from tests.conftest import require_sandbox

ROOT = ROOT
PART = "01-tensors"


def instructor(course: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m instructor --course COURSE ARGS`` as the Makefile runs it."""
    return subprocess.run([sys.executable, "-m", "instructor", "--course", str(course), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def workflow(kernel, tmp_path_factory):
    require_sandbox()
    course = testing.make_course(tmp_path_factory.mktemp("course"), [PART])
    parts = [PART]
    steps = {}
    downloads = tmp_path_factory.mktemp("downloads")
    first_answer = testing.answer_ids(course, PART)[:1]
    # LMS-style names carry extra fields between the student id and the part
    nbformat.write(testing.student_notebook(course, PART, "all"), downloads / f"full_{PART}.ipynb")
    nbformat.write(testing.student_notebook(course, PART, first_answer),
                   downloads / f"partial_attempt2_{PART}.ipynb")
    with zipfile.ZipFile(downloads / "submissions.zip", "w") as zf:
        zf.writestr(f"empty_{PART}.ipynb", nbformat.writes(testing.student_notebook(course, PART, "none")))
    steps["collect"] = instructor(course, "collect", str(downloads), "--part", PART)
    steps["autograde"] = instructor(course, "autograde", "--jobs", "2")
    steps["feedback"] = instructor(course, "feedback")
    steps["grades"] = instructor(course, "grades", "--out", "grades.csv")
    return course, parts, steps


def test_every_step_succeeds(workflow):
    _, _, steps = workflow
    for name, proc in steps.items():
        assert proc.returncode == 0, f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_collect_files_submissions_by_student_and_part(workflow):
    course, parts, _ = workflow
    for part in parts:
        for student in ("full", "partial", "empty"):
            assert (course / "submitted" / student / part / f"{part}.ipynb").is_file()


def test_autograde_reports_the_sandbox(workflow):
    _, _, steps = workflow
    assert "sandbox: bubblewrap" in steps["autograde"].stdout
    assert "on 2 local worker(s)" in steps["autograde"].stdout


def test_feedback_html_for_every_student_and_part(workflow):
    course, parts, _ = workflow
    for part in parts:
        for student in ("full", "partial", "empty"):
            html = course / "feedback" / student / part / f"{part}.html"
            assert html.is_file() and "<html" in html.read_text()[:2000].lower()


def test_exported_csv_scores(workflow):
    course, parts, _ = workflow
    with open(course / "grades.csv", newline="") as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    assert len(rows) == 3 * len(parts)
    for part in parts:
        full, partial, empty = (rows[(s, part)] for s in ("full", "partial", "empty"))
        top = float(full["max_score"])
        assert top > 0
        assert float(full["score"]) == top, full
        assert 0 < float(partial["score"]) < top, partial
        assert float(empty["score"]) == 0, empty
