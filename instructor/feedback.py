"""Feedback pages for a class: rendered by the grading workers, written by the coordinator.

    feedback(course, parts=None, cluster=None, jobs=1, force=False) -> {part: {"written": n, ...}}
    render(spec) -> bytes        on a worker: one page's HTML

A page shows the learner's submitted notebook with the outputs they submitted, and for each test
its visible source, points and verdict in words the instructor wrote (:mod:`instructor.verdicts`):
nothing the grading run printed, displayed, raised or wrote reaches it, so no hidden test can.
The coordinator reads each submission, its graded notebook (``autograded/<student>/<part>/``,
for the verdicts), the release's test cells and the scores and comments in the gradebook (a few
queries per part), and sends them to a Dask worker, a bounded window at a time; the worker
renders the page with nbconvert's CSS header and nbgrader's feedback template and returns the
HTML. Workers need no gradebook and no shared file system. Submissions held for review
(:mod:`instructor.held`) get no page until an instructor clears them.
The coordinator writes ``feedback/<student>/<part>/<part>.html`` atomically, then one line per
page in ``feedback/.feedback.jsonl`` (the digest of what it shows): a page whose inputs are
unchanged is not rendered again, so a run stopped half-way resumes where it stopped. A worker
lost mid-task costs that task: Dask runs it elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from pathlib import Path

from .coordinator import run_windowed
from .course import (
    append_json_lines,
    check_course,
    gradebook,
    graded_dir,
    notebook_in,
    one_line,
    read_json_lines,
    read_regular_file,
    released_parts,
    submission_dir,
    write_atomically,
)
from .held import held
from .verdicts import release_tests

MANIFEST = ".feedback.jsonl"  # under feedback/: one line per page written
_WORKER = threading.local()  # a worker thread's exporter, built for its first page


def page_path(course: Path, student: str, part: str) -> Path:
    """``feedback/<student>/<part>/<part>.html``."""
    return Path(course) / "feedback" / student / part / f"{part}.html"


# ---------------------------------------------------------------------------
# On the worker
# ---------------------------------------------------------------------------

def _exporter():
    """The worker thread's HTML exporter: built (its templates loaded) for the first page only,
    as nbgrader's converter uses one exporter for every notebook."""
    exporter = getattr(_WORKER, "exporter", None)
    if exporter is None:
        exporter = _WORKER.exporter = _new_exporter()
    return exporter


def feedback_templates() -> list[str]:
    """Where a feedback page's templates are looked up, in order: the course's own (no MathJax from a
    CDN: :mod:`instructor.mathml` writes the formulas as MathML), then nbgrader's feedback template.
    nbgrader_config.py gives formgrader's ``generate_feedback`` the same, so both pages are one."""
    import nbgrader

    return [str(Path(__file__).parent / "templates"),
            str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates")]


def _new_exporter():
    import nbgrader.converters
    from nbconvert.exporters import HTMLExporter
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from traitlets.config import Config

    base = Path(nbgrader.converters.__file__).parent.parent / "server_extensions" / "formgrader"
    c = Config()
    c.Exporter.default_preprocessors = []
    c.HTMLExporter.template_name = "feedback"
    c.HTMLExporter.extra_template_basedirs = feedback_templates()
    c.HTMLExporter.extra_template_paths = [str(base / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
    exporter = HTMLExporter(config=c)
    exporter.register_preprocessor(CSSHTMLHeaderPreprocessor)  # as nbgrader's converters do
    return exporter


def render(spec: dict) -> bytes:
    """One feedback page. ``spec``: student, part, notebook (the graded notebook's bytes),
    submitted (the submission's bytes), tests ({grade id: the release's test cell source}) and
    grades ({"cells": {grade id: {"score", "points", "comment"}}, "score", "max_score",
    "late_penalty"}, what :func:`read_grades` found). Returns the HTML, as UTF-8."""
    import nbformat
    from nbgrader import utils

    from .verdicts import feedback_notebook

    graded = nbformat.reads(spec["notebook"].decode("utf-8"), as_version=4)
    submitted = nbformat.reads(spec["submitted"].decode("utf-8"), as_version=4)
    nb = feedback_notebook(graded, submitted, spec["tests"])
    grades, part = spec["grades"], spec["part"]
    for cell in nb.cells:  # nbgrader's GetGrades, from the task
        if not (utils.is_grade(cell) or utils.is_solution(cell) or utils.is_task(cell)):
            continue
        found = grades["cells"].get(cell.metadata.nbgrader["grade_id"], {})
        if utils.is_solution(cell) or utils.is_task(cell):
            cell.metadata.nbgrader["comment"] = found.get("comment")
        if utils.is_grade(cell) or utils.is_task(cell):
            cell.metadata.nbgrader["score"], cell.metadata.nbgrader["points"] = found.get("score"), found.get("points")
    resources = {"unique_key": part, "output_files_dir": f"{part}_files",
                 "metadata": {"name": part, "path": ""},
                 "nbgrader": {"student": spec["student"], "assignment": part, "notebook": part,
                              "score": grades["score"] - grades["late_penalty"], "max_score": grades["max_score"],
                              "late_penalty": grades["late_penalty"]}}
    html, _ = _exporter().from_notebook_node(nb, resources=resources)
    return html.encode("utf-8")


# ---------------------------------------------------------------------------
# On the coordinator
# ---------------------------------------------------------------------------

def read_grades(course: Path, part: str) -> dict[str, dict]:
    """What nbgrader's GetGrades reads for each student's ``part``, from a few queries:
    {student: {"cells": {grade id: {"score", "points", "comment"}}, "score", "max_score", "late_penalty"}}."""
    from nbgrader.api import Assignment, BaseCell, Comment, Grade, Notebook, SubmittedAssignment, SubmittedNotebook
    from sqlalchemy import select

    sa, sn = SubmittedAssignment, SubmittedNotebook
    with gradebook(course) as gb:
        session = gb.db
        notebooks = select(sn.id, sa.student_id, sn.score, sn.max_score, sn.late_submission_penalty) \
            .join(sa, sa.id == sn.assignment_id).join(Assignment, Assignment.id == sa.assignment_id) \
            .join(Notebook, Notebook.id == sn.notebook_id).where(Assignment.name == part, Notebook.name == part)
        out, students = {}, {}
        for nb, student, score, top, late in session.execute(notebooks):
            students[nb] = student
            out[student] = {"cells": {}, "score": score, "max_score": top, "late_penalty": late or 0}
        ids = select(sn.id).join(sa, sa.id == sn.assignment_id).join(Assignment, Assignment.id == sa.assignment_id) \
            .where(Assignment.name == part)
        for model, keys in ((Grade, ("score", "max_score")), (Comment, ("comment",))):
            query = select(model.notebook_id, BaseCell.name, *(getattr(model, k) for k in keys)) \
                .join(BaseCell, BaseCell.id == model.cell_id).where(model.notebook_id.in_(ids))
            for nb, name, *values in session.execute(query):
                if nb in students:
                    cell = out[students[nb]]["cells"].setdefault(name, {})
                    cell.update(zip(["points" if k == "max_score" else k for k in keys], values, strict=True))
        gb.engine.dispose()
    return out


def _read_manifest(course: Path) -> dict[tuple[str, str], str]:
    rows = read_json_lines(Path(course) / "feedback" / MANIFEST)
    return {(r["student"], r["part"]): r["digest"] for r in rows if {"student", "part", "digest"} <= r.keys()}


def _append_manifest(course: Path, rows: list[dict]) -> None:
    append_json_lines(Path(course) / "feedback" / MANIFEST, rows)


def _digest(*inputs: bytes, grades: dict) -> str:
    return hashlib.sha256(b"\0".join(inputs) + b"\0" + json.dumps(grades, sort_keys=True).encode()).hexdigest()


def _pages(course: Path, parts: list[str], force: bool, summary: dict, say) -> list[tuple[str, str, dict, str]]:
    """(student, part, grades, digest) of each page to render; the up-to-date ones counted, the
    held ones listed (and an earlier page of theirs removed)."""
    done = {} if force else _read_manifest(course)
    todo = []
    for part in parts:
        summary[part] = {"written": 0, "up to date": 0, "failed": 0, "held": 0}
        tests = json.dumps(release_tests(course, part), sort_keys=True).encode()
        holding = held(course, part)
        for student, why in sorted(holding.items()):
            summary[part]["held"] += 1
            page_path(course, student, part).unlink(missing_ok=True)
            say(f"held: {student} / {part}: {why} (make clear STUDENT={student} PART={part} releases it)")
        for student, grades in sorted(read_grades(course, part).items()):
            if student in holding:
                continue
            path = notebook_in(graded_dir(course, student, part), part)
            try:
                digest = _digest(read_regular_file(path), read_regular_file(notebook_in(
                    submission_dir(course, student, part), part)), tests, grades=grades)
            except OSError:
                continue  # nothing graded to show (flagged before grading)
            if done.get((student, part)) == digest and page_path(course, student, part).exists():
                summary[part]["up to date"] += 1
            else:
                todo.append((student, part, grades, digest))
    return todo


def _copy_beside(course: Path, student: str, part: str) -> None:
    """The graded submission's other files (``timestamp.txt``, the exchange's
    ``submission_secret.txt``) beside its page, as ``nbgrader generate_feedback`` leaves them:
    ``nbgrader release_feedback`` reads both and refuses to run without them. Links and anything
    that is not a regular file are never followed."""
    graded = graded_dir(course, student, part)
    for name in sorted(os.listdir(graded)):
        if name.endswith(".ipynb") or name.startswith("."):
            continue
        try:
            data = read_regular_file(graded / name)
        except OSError:
            continue
        write_atomically(page_path(course, student, part).parent / name, data)


def _write(course: Path, done: list, summary: dict, say) -> None:
    """Write the pages of finished tasks ``done`` ([(future, (student, part, digest))]), then
    their manifest lines."""
    rows = []
    for future, (student, part, digest) in done:
        try:
            html = future.result()
        except Exception as exc:  # noqa: BLE001 - e.g. the task's workers kept dying: run again
            summary[part]["failed"] += 1
            say(f"!! {student} / {part}: feedback failed: {type(exc).__name__}: {one_line(exc, 200)}")
            continue
        path = page_path(course, student, part)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, html)
        _copy_beside(course, student, part)
        summary[part]["written"] += 1
        rows.append({"student": student, "part": part, "digest": digest})
    _append_manifest(course, rows)


def feedback(course: Path, parts: list[str] | None = None, cluster: str | None = None, jobs: int = 1,
             force: bool = False, say=print) -> dict[str, dict[str, int]]:
    """Every student's feedback page for ``parts`` (default: every released part), rendered on
    the Dask cluster at ``cluster`` (default: a local one of ``jobs`` processes). Pages whose
    notebook and scores did not change are kept unless ``force``. Returns, per part, the pages
    written, up to date and failed (a failed page is rendered on the next run)."""
    course = check_course(course)
    parts = list(parts or released_parts(course))
    summary: dict[str, dict[str, int]] = {}
    todo = _pages(course, parts, force, summary, say)
    tests = {part: release_tests(course, part) for part in parts}
    (course / "feedback").mkdir(exist_ok=True)

    def send(client, page: tuple):
        student, part, grades, digest = page
        notebook = read_regular_file(notebook_in(graded_dir(course, student, part), part))
        submitted = read_regular_file(notebook_in(submission_dir(course, student, part), part))
        spec = {"student": student, "part": part, "notebook": notebook, "submitted": submitted,
                "tests": tests[part], "grades": grades}
        future = client.submit(render, spec, pure=False, key=f"feedback-{student}-{part}-{secrets.token_hex(4)}")
        return future, (student, part, digest)

    if todo:
        run_windowed(todo, send, lambda _, done, write: _write(course, done, summary, write),
                     cluster, jobs, "feedback", "page", say)
    for part, counts in summary.items():
        say(f"{part}: {counts['written']} page(s) written, {counts['up to date']} up to date"
            + (f", {counts['held']} held for review (listed above)" if counts["held"] else "")
            + (f", {counts['failed']} FAILED (run again)" if counts["failed"] else ""))
    return summary
