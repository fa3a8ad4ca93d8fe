"""The instructor's workflow end to end, through the command line the Makefile calls:
release (nbgrader generate_assignment), collect (zip_collect), autograde in parallel,
feedback, grades. Three students on two parts: full marks, partly solved, untouched.

Parts: 01-tensors and 02-neural-networks; until Part 2 exists, a copy of Part 1 under
another name stands in as the second assignment.
Needs bubblewrap, as tests/test_hostile_submissions.py explains.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from instructor import testing

ROOT = testing.ROOT
FIRST, SECOND = "01-tensors", "02-neural-networks"
STAND_IN = "01-tensors-again"

pytestmark = pytest.mark.skipif(not (ROOT / "solutions" / FIRST).is_dir(), reason=f"{FIRST} not written yet")


def instructor(course: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m instructor --course COURSE ARGS`` as the Makefile runs it."""
    return subprocess.run([sys.executable, "-m", "instructor", "--course", str(course), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)


def make_two_part_course(folder: Path) -> tuple[Path, list[str]]:
    if (ROOT / "solutions" / SECOND).is_dir():
        return testing.make_course(folder, [FIRST, SECOND]), [FIRST, SECOND]
    course = testing.make_course(folder, [FIRST])
    source = course / "solutions" / STAND_IN
    source.mkdir(parents=True)
    shutil.copy(course / "solutions" / FIRST / f"{FIRST}.ipynb", source / f"{STAND_IN}.ipynb")
    testing.grading.run_nbgrader(["generate_assignment", STAND_IN, "--log-level=ERROR"], course,
                                 check=True, capture_output=True)
    return course, [FIRST, STAND_IN]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    testing.require_sandbox()
    course, parts = make_two_part_course(tmp_path_factory.mktemp("course"))
    steps = {}
    for i, part in enumerate(parts):
        downloads = tmp_path_factory.mktemp(f"downloads-{part}")
        first_answer = testing.answer_ids(course, part)[:1]
        notebooks = {
            f"full_{part}.ipynb": testing.student_notebook(course, part, "all"),
            # LMS-style names carry extra fields between the student id and the part
            f"partial_attempt2_{part}.ipynb": testing.student_notebook(course, part, first_answer),
            f"empty_{part}.ipynb": testing.student_notebook(course, part, "none"),
        }
        if i == 0:  # loose files for the first part ...
            for name, nb in notebooks.items():
                nbformat.write(nb, downloads / name)
        else:  # ... one zip archive for the second
            with zipfile.ZipFile(downloads / "submissions.zip", "w") as zf:
                for name, nb in notebooks.items():
                    zf.writestr(name, nbformat.writes(nb))
        steps[f"collect {part}"] = instructor(course, "collect", str(downloads), "--part", part)
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
    assert "with 2 job(s)" in steps["autograde"].stdout


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
