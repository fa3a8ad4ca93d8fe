"""Grading as an ordinary user: no step of the host side needs root. The whole command line
runs as uid 65534 (``setpriv``), on a course folder that user owns; the sandbox still confines
the kernel, and a fork loop is still bounded (by a process count for the user, since an
ordinary user cannot create control groups here)."""

from __future__ import annotations

import csv
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from instructor import testing
from instructor.course import ROOT
from tests.conftest import require_sandbox
from tests.instructor.test_tasks import FORK_LOOP

PART = "01-tensors"
NOBODY = 65534


def _reachable(paths):
    """Let others traverse the folders above ``paths`` (the venv and its Python may live under a
    home folder of mode 700); yields, then puts every mode back."""
    changed = {}
    for path in paths:
        for folder in Path(os.path.realpath(path)).parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH and folder not in changed:
                changed[folder] = mode
                os.chmod(folder, mode | stat.S_IXOTH)
    return changed


@pytest.fixture
def course_of_nobody(kernel):
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to become uid 65534 with setpriv) to test grading as an ordinary user")
    require_sandbox()
    base = Path(tempfile.mkdtemp(prefix="course-nobody-", dir="/tmp"))
    # An ordinary grading account has its own readable venv; here the test's venv may sit in
    # root's home: let uid 65534 traverse to it (not list or read anything else) for the test.
    changed = _reachable([sys.executable, os.path.realpath(sys.executable), sys.prefix, sys.base_prefix,
                          ROOT / "helper"])
    try:
        course = testing.make_course(base / "course", [PART])
        ids = testing.answer_ids(course, PART)
        testing.submit(course, "honest", PART, "all")
        testing.write_submission(course, "forker", PART, testing.set_answer(
            testing.student_notebook(course, PART, "all"), ids[1], FORK_LOOP))
        (base / "home").mkdir()
        os.chmod(base, 0o755)
        for path in [base, *base.rglob("*")]:
            os.lchown(path, NOBODY, NOBODY)
        yield base, course
    finally:
        for folder, mode in changed.items():
            os.chmod(folder, mode)
        shutil.rmtree(base, ignore_errors=True)


def test_grading_runs_as_an_ordinary_user(course_of_nobody):
    base, course = course_of_nobody
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_DATA",)}
    env.update(HOME=str(base / "home"), TMPDIR=str(base / "home"), PYTHONPATH=str(ROOT))
    cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
           sys.executable, "-m", "instructor", "--course", str(course), "autograde", "--jobs", "1",
           "--processes", "200"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert "per-submission limits UNAVAILABLE" in out, out[-3000:]
    with open(course / "autograded" / "grading-report.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    honest = rows["honest"]
    assert honest["status"] == "graded" and float(honest["score"]) == float(honest["max_score"]) > 0, out[-3000:]
    graded = (course / "autograded" / "forker" / PART / f"{PART}.ipynb").read_text()
    assert "fork refused after" in graded, "the fork loop was not bounded"
    assert all(p.stat().st_uid == NOBODY for p in (course / "autograded").rglob("*"))
