"""Fixtures shared by the grading tests: the sandbox requirement and ONE graded class.

The class: every part, three submissions each (the solution, the first exercise solved,
untouched), graded in one autograde run with two workers. The round-trip, feedback and
grades tests all read it, so no notebook is graded twice for them.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import nbformat
import pytest

from instructor import coordinator, feedback, lms, sandbox, testing
from instructor.course import existing_parts
from instructor.settings import Settings

PARTS = existing_parts()


def modules_imported_by(statement: str, heavy: tuple[str, ...]) -> list[str]:
    """Which of the ``heavy`` modules a fresh interpreter has loaded after ``statement``."""
    import ast
    import subprocess
    import sys

    code = f"import sys; {statement}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip())


def require_sandbox() -> None:
    """Skip, or fail in CI (CI=true) or when GRADING_REQUIRE_SANDBOX=1, if bwrap cannot run."""
    ok, message = sandbox.probe()
    if ok:
        return
    text = (f"the grading sandbox is unavailable: {message}. "
            "Install it with `apt-get install -y bubblewrap`.")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("GRADING_REQUIRE_SANDBOX") == "1":
        pytest.fail(text + " (required: CI or GRADING_REQUIRE_SANDBOX=1)", pytrace=False)
    pytest.skip(text)


@pytest.fixture(scope="session")
def graded_class(kernel, tmp_path_factory):
    """Every part graded for students "full", "partial" and "empty" in one run (JOBS=2). Its tests
    need every part's data: ``pytest.mark.course_data(*PARTS)``."""
    require_sandbox()
    course = testing.make_course(tmp_path_factory.mktemp("class"), PARTS)
    solved = {}
    for part in PARTS:
        solution = nbformat.read(course / "solutions" / part / f"{part}.ipynb", as_version=4)
        testing.write_submission(course, "full", part, solution)  # the instructor's own notebook
        testing.submit(course, "empty", part, solved="none")
        first = testing.answer_ids(course, part)[0]
        testing.submit(course, "partial", part, solved=[first])
        solved[part] = testing.solved_test_id(course, part, first)
    log: list[str] = []
    settings = Settings.resolve(course, jobs=2)
    results = coordinator.autograde(course, PARTS, settings=settings, say=log.append)
    feedback.feedback(course, PARTS)
    grades = lms.export_grades(course, course / "grades.csv")
    return SimpleNamespace(course=course, results={(r.student, r.part): r for r in results},
                           solved=solved, log="\n".join(log), grades=grades)
