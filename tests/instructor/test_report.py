"""The class report (`make report`): numbers from a gradebook with known scores, built with
nbgrader's API (no grading run), plus a grading-report.csv as `make autograde` writes it."""

from __future__ import annotations

import base64
import csv
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image

from instructor import report
from instructor.course import REPORT, ROOT, GradingError, gradebook

ROOT = ROOT
P1, P2 = "01-tensors", "02-neural-networks"
CELLS = {P1: {"test_a": 2, "test_b": 1}, P2: {"test_c": 4}}
SCORES = {  # (part, student) -> {cell: auto score}
    (P1, "ann"): {"test_a": 2, "test_b": 1},    # 100 %
    (P1, "ben"): {"test_a": 2, "test_b": 0},    # 66.67 %
    (P1, "cat"): {"test_a": 0, "test_b": 0},    # 0 %
    (P1, "dan"): {"test_a": 0, "test_b": 0},    # could not be graded
    (P2, "ann"): {"test_c": 4},                 # 100 %
    (P2, "ben"): {"test_c": 2},                 # 50 %: partial marks do not pass the cell
    (P2, "cat"): {"test_c": 4},                 # tampering caught
}
OUTCOME = {  # (part, student) -> (status, seconds, reason, review)
    (P1, "ann"): ("graded", 10, "", ""),
    (P1, "ben"): ("graded", 20, "", "reads a file outside the notebook"),
    (P1, "cat"): ("graded", 30, "", ""),
    (P1, "dan"): ("flagged", 5, "the kernel died (it crashed, exited, or hit the memory/CPU limit)", ""),
    (P2, "ann"): ("graded", 40, "", ""),
    (P2, "ben"): ("graded", 60, "", ""),
    (P2, "cat"): ("tampered", 50, "a test cell was changed", ""),
}


def make_gradebook(course: Path) -> None:
    from sqlalchemy.exc import SAWarning

    with gradebook(course) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's add_submission trips autoflush warnings
        for part, cells in CELLS.items():
            gb.add_assignment(part)
            gb.add_notebook(part, part)
            for cell, points in cells.items():
                gb.add_grade_cell(cell, part, part, max_score=points, cell_type="code")
        for (part, student), marks in SCORES.items():
            gb.update_or_create_student(student)
            gb.add_submission(part, student)
            for cell, score in marks.items():
                grade = gb.find_grade(cell, part, part, student)
                grade.auto_score, grade.needs_manual_grade = score, False
        gb.find_submission_notebook(P1, P1, "dan").flagged = True
        gb.db.commit()


def write_grading_report(course: Path, with_review: bool) -> None:
    fields = ["student", "part", "status", "score", "max_score", "seconds", "reason", "log"]
    fields += ["review"] if with_review else []
    (course / "autograded").mkdir(exist_ok=True)
    with open(course / "autograded" / REPORT, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for (part, student), (status, seconds, reason, review) in OUTCOME.items():
            row = {"student": student, "part": part, "status": status, "score": 0, "max_score": 0,
                   "seconds": seconds, "reason": reason, "log": f"autograded/.logs/{part}/{student}.log"}
            if with_review:
                row["review"] = review
            writer.writerow(row)


def new_course(folder: Path) -> Path:
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    make_gradebook(folder)
    return folder


@pytest.fixture
def course(tmp_path):
    return new_course(tmp_path)


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """`python -m instructor report`, as `make report` runs it."""
    course = new_course(tmp_path_factory.mktemp("course"))
    write_grading_report(course, with_review=True)
    proc = subprocess.run([sys.executable, "-m", "instructor", "--course", str(course), "report"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return course / "report"


def test_score_distribution_per_part(built):
    parts = {r["part"]: r for r in read(built / "parts.csv")}
    one, two = parts[P1], parts[P2]
    assert (one["submissions"], one["graded"], one["flagged"], one["full_marks"]) == ("4", "3", "1", "1")
    assert float(one["mean_percent"]) == pytest.approx((100 + 200 / 3 + 0) / 3, abs=0.01)
    assert (float(one["median_percent"]), float(one["min_percent"]), float(one["max_percent"])) == (66.67, 0, 100)
    assert (two["submissions"], two["graded"], two["flagged"]) == ("3", "2", "1"), "tampered work is not graded work"
    assert float(two["mean_percent"]) == 75


def test_pass_rate_per_cell_hardest_first(built):
    cells = read(built / "cells.csv")
    assert [(r["part"], r["cell"]) for r in cells] == [(P1, "test_b"), (P2, "test_c"), (P1, "test_a")]
    assert [(r["graded"], r["passed"], float(r["pass_rate"])) for r in cells] == [
        ("3", "1", 33.33), ("2", "1", 50.0), ("3", "2", 66.67)]
    assert float(cells[1]["mean_score"]) == 3.0


def test_flagged_submissions_and_why(built):
    rows = read(built / "flagged.csv")
    assert [(r["student"], r["part"], r["status"]) for r in rows] == [("dan", P1, "flagged"), ("cat", P2, "tampered")]
    assert rows[0]["reason"].startswith("the kernel died")
    assert rows[1]["reason"] == "a test cell was changed"


def test_grading_time_per_part(built):
    rows = {r["part"]: r for r in read(built / "timing.csv")}
    assert (rows[P1]["jobs"], float(rows[P1]["mean_seconds"]), float(rows[P1]["median_seconds"]),
            float(rows[P1]["max_seconds"]), float(rows[P1]["total_seconds"])) == ("4", 16.25, 15.0, 30.0, 65.0)
    assert float(rows[P2]["total_seconds"]) == 150


def test_every_score_and_the_review_notes(built):
    scores = {(r["part"], r["student"]): r for r in read(built / "scores.csv")}
    assert len(scores) == len(SCORES)
    assert (float(scores[(P1, "ben")]["score"]), float(scores[(P1, "ben")]["max_score"])) == (2, 3)
    assert [(r["student"], r["review"]) for r in read(built / "review.csv")] == [
        ("ben", "reads a file outside the notebook")]


def test_page_shows_every_plot(built):
    page = (built / "index.html").read_text()
    for name in report.PLOTS.values():
        embedded = base64.b64encode((built / name).read_bytes()).decode("ascii")
        assert f"src='data:image/png;base64,{embedded}' data-file='{name}'" in page, f"index.html does not show {name}"
        with Image.open(built / name) as img:
            assert img.format == "PNG" and min(img.size) > 100, f"{name} is not a real plot"
    assert "4 student(s), 7 submission(s), 2 flagged" in page


def test_without_grading_report(course):
    """Only the gradebook: the flag set there still shows, grading times are simply absent."""
    out = report.build(course, say=lambda *_: None).parent
    assert [(r["student"], r["reason"]) for r in read(out / "flagged.csv")] == [("dan", "flagged in the gradebook")]
    assert read(out / "timing.csv") == []
    assert not (out / "review.csv").exists()
    parts = {r["part"]: r for r in read(out / "parts.csv")}
    assert parts[P2]["graded"] == "3", "without grading-report.csv only the gradebook's flag counts"


def test_no_gradebook_is_a_clear_error(tmp_path):
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    with pytest.raises(GradingError, match="no gradebook"):
        report.build(tmp_path)
