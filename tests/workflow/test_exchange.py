"""nbgrader's exchange, configured inside the course: release -> fetch -> submit -> collect ->
autograde -> release feedback -> fetch feedback with nbgrader's own commands, two learners
(each with their own HOME and student id) on Part 1. Needs bubblewrap to autograde."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from instructor import coordinator, feedback, testing
from instructor.course import ROOT, run_nbgrader
from instructor.settings import Settings
from tests.conftest import require_sandbox

ROOT = ROOT
PART = "01-tensors"
LEARNER_CONFIG = ROOT / "jupyter" / "learner"


def exchange_root(folder: Path) -> str:
    return PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config().Exchange.root


def test_exchange_is_a_folder_of_the_course(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXCHANGE", raising=False)
    assert exchange_root(ROOT) == str(ROOT / "exchange")
    assert exchange_root(LEARNER_CONFIG) == str(ROOT / "exchange"), "learners must use the instructor's exchange"


def test_exchange_can_be_moved_for_a_shared_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("NBGRADER_EXCHANGE", str(tmp_path))
    assert exchange_root(ROOT) == exchange_root(LEARNER_CONFIG) == str(tmp_path)


def nbgrader(args: list[str], cwd: Path, env: dict | None = None) -> str:
    proc = run_nbgrader([*args, "--log-level=INFO"], cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def round_trip(kernel, tmp_path_factory):
    require_sandbox()
    base = tmp_path_factory.mktemp("exchange")
    course = testing.make_course(base / "course", [PART])
    exchange = base / "shared-exchange"  # where a hub would put it: outside every learner's HOME
    instructor_env = {"NBGRADER_EXCHANGE": str(exchange)}
    nbgrader(["release_assignment", PART], course, instructor_env)

    learners = {"alice": "all", "bob": "none"}
    homes = {}
    for student, solved in learners.items():
        home = base / "home" / student
        home.mkdir(parents=True)
        homes[student] = home
        env = {"HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
               "JUPYTER_CONFIG_PATH": str(LEARNER_CONFIG), "NBGRADER_EXCHANGE": str(exchange)}
        nbgrader(["fetch_assignment", PART], home, env)
        fetched = home / PART / f"{PART}.ipynb"
        assert fetched.exists(), f"fetch_assignment left no {fetched.name} in the learner's HOME"
        nbformat.write(testing.student_notebook(course, PART, solved), fetched)  # the learner's work
        nbgrader(["submit", PART, f"--student={student}"], home, env)

    nbgrader(["collect", PART], course, instructor_env)
    results = {r.student: r for r in coordinator.autograde(course, [PART], settings=Settings.resolve(course),
                                                       say=lambda *_: None)}
    feedback.feedback(course, [PART])
    nbgrader(["release_feedback", PART], course, instructor_env)

    pages = {}
    for student in learners:
        home = homes[student]
        env = {"HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
               "JUPYTER_CONFIG_PATH": str(LEARNER_CONFIG), "NBGRADER_EXCHANGE": str(exchange)}
        nbgrader(["fetch_feedback", PART, f"--student={student}"], home, env)
        pages[student] = sorted((home / PART / "feedback").glob(f"*/{PART}.html"))
    return course, results, pages


def test_collect_files_each_learner_under_their_id(round_trip):
    course, _, _ = round_trip
    for student in ("alice", "bob"):
        assert (course / "submitted" / student / PART / f"{PART}.ipynb").exists(), \
            f"{student}'s submission was not collected"


def test_autograde_scores_the_collected_submissions(round_trip):
    _, results, _ = round_trip
    assert set(results) == {"alice", "bob"}
    assert all(r.status == "graded" for r in results.values()), results
    assert results["alice"].score == results["alice"].max_score > 0
    assert results["bob"].score == 0


def test_each_learner_fetches_their_own_feedback(round_trip):
    _, results, feedback = round_trip
    for student, files in feedback.items():
        assert len(files) == 1, f"{student} should get exactly one feedback file, got {files}"
        html = files[0].read_text()
        r = results[student]
        total = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", html)
        assert total, f"{student}'s feedback shows no score"
        assert (float(total[1]), float(total[2])) == (r.score, r.max_score), f"{student}'s feedback shows another score"
