"""Grading's smoke test, the one kernel test of `make test-fast`: Part 1's solution, submitted by
one student, graded through the coordinator in the sandbox, scores full marks."""

from __future__ import annotations

import pytest

from instructor import coordinator, testing
from instructor.settings import Settings
from tests.conftest import require_sandbox

PART = "01-tensors"
pytestmark = [pytest.mark.kernel, pytest.mark.smoke, pytest.mark.course_data(PART)]


def test_one_solved_submission_of_one_part_scores_full_marks(tmp_path):
    require_sandbox()
    course = testing.make_course(tmp_path / "course", [PART])
    testing.submit(course, "full", PART, solved="all")
    log: list[str] = []
    results = coordinator.autograde(course, [PART], settings=Settings.resolve(course, jobs=1), say=log.append)
    assert [(r.student, r.part, r.status) for r in results] == [("full", PART, "graded")], "\n".join(log)
    assert results[0].score == results[0].max_score > 0, "\n".join(log)
    assert (course / "autograded" / "full" / PART / f"{PART}.ipynb").exists()
    # the kernel's seconds: the notebook's own cells, and the canaries' apart (overhead, not the learner's)
    result = results[0]
    assert result.canary_seconds > 0 and result.cell_seconds > 0 and \
        result.cell_seconds + result.canary_seconds < result.seconds, result
    text = (course / result.log).read_text()
    assert "kernel started before nbgrader's steps" in text and \
        "Execute adopted the kernel started before nbgrader's steps" in text, text[-2000:]
