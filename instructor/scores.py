"""The gradebook side of a batch of outcomes, written in bulk: what nbgrader's own steps store for
one notebook at a time (``update_or_create_student``, ``add_submission``, ``SaveAutoGrades``,
``AssignLatePenalties``), for a whole batch with a few statements, in the caller's transaction.

    store_scores(session, parts, batch, deadlines, late) -> [(score, max_score, penalty, seconds late)]

``batch``: :class:`Row` per outcome. nbgrader's helpers query and commit row by row (a dozen
statements and a commit per notebook, ~10,000 Python calls): a round of 80,000 cannot afford
them. The rows are nbgrader's own (its models, its ids, its defaults); every write sets a value,
none adds to one, so storing a batch again changes nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from .deadlines import Deadlines


@dataclass
class Row:
    """One outcome as the gradebook sees it."""

    student: str
    part: str
    timestamp: str | None
    graded: object = None          # the graded notebook (NotebookNode), or None
    zero: bool = False             # flagged or tampered: every test scores 0, no late penalty
    flagged: bool = False          # needs a look (formgrader's flag)


@dataclass
class Part:
    """A released part's rows: its assignment, notebooks and cells, read once per run."""

    assignment_id: str
    duedate: datetime.datetime | None
    notebooks: dict[str, str] = field(default_factory=dict)            # name -> notebook id
    grade_cells: dict[str, dict[str, str]] = field(default_factory=dict)    # notebook -> {grade id: cell id}
    comment_cells: dict[str, dict[str, str]] = field(default_factory=dict)  # notebook -> {grade id: cell id}


def read_part(session, part: str) -> Part:
    """``part``'s assignment, notebooks and graded, answer and task cells."""
    from nbgrader.api import Assignment

    assignment = session.query(Assignment).filter(Assignment.name == part).one()
    out = Part(assignment.id, assignment.duedate)
    for nb in assignment.notebooks:
        out.notebooks[nb.name] = nb.id
        out.grade_cells[nb.name] = {c.name: c.id for c in [*nb.grade_cells, *nb.task_cells]}
        out.comment_cells[nb.name] = {c.name: c.id for c in [*nb.solution_cells, *nb.task_cells]}
    return out


def _ensure_students(session, students: set[str]) -> None:
    from nbgrader.api import Student
    from sqlalchemy import insert, select

    known = set(session.scalars(select(Student.id).where(Student.id.in_(students))))
    if students - known:
        session.execute(insert(Student.__table__), [{"id": s} for s in sorted(students - known)])


def _add_submission(part: Part, r: Row, values: dict, new: dict) -> str:
    """The rows nbgrader's add_submission makes (submission, notebooks, their grades and
    comments), appended to ``new``; returns the submission id."""
    from nbgrader.api import new_uuid

    sub = new_uuid()
    new["sub"].append({"id": sub, "assignment_id": part.assignment_id, "student_id": r.student,
                       "timestamp": values.get("timestamp"), "extension": values.get("extension")})
    for name, notebook_id in part.notebooks.items():
        nb = new_uuid()
        new["nb"].append({"id": nb, "assignment_id": sub, "notebook_id": notebook_id, "flagged": False})
        new["grade"] += [{"id": new_uuid(), "notebook_id": nb, "cell_id": c, "needs_manual_grade": False}
                         for c in part.grade_cells[name].values()]
        new["comment"] += [{"id": new_uuid(), "notebook_id": nb, "cell_id": c}
                           for c in part.comment_cells[name].values()]
    return sub


def _submissions(session, parts: dict[str, Part], batch: list[Row], deadlines: Deadlines | None) -> list[str]:
    """The submission id of each row (created when new, as nbgrader's add_submission does), its
    timestamp and extension set, and the part's due date."""
    from nbgrader.api import Assignment, Comment, Grade, SubmittedAssignment, SubmittedNotebook
    from nbgrader.utils import parse_utc
    from sqlalchemy import bindparam, insert, select, update

    table = SubmittedAssignment.__table__
    ids: dict[tuple[str, str], str] = {}
    for part in {r.part for r in batch}:
        students = [r.student for r in batch if r.part == part]
        found = session.execute(select(table.c.student_id, table.c.id).where(
            table.c.assignment_id == parts[part].assignment_id, table.c.student_id.in_(students)))
        ids.update({(student, part): sub for student, sub in found})
        if deadlines is not None:
            assignments = Assignment.__table__
            session.execute(update(assignments).where(assignments.c.id == parts[part].assignment_id)
                            .values(duedate=deadlines.due.get(part)))
    new: dict[str, list] = {"sub": [], "nb": [], "grade": [], "comment": []}
    changed: dict[str, list] = {"timestamp": [], "extension": []}
    for r in batch:
        values = {"timestamp": parse_utc(r.timestamp)} if r.timestamp else {}
        if deadlines is not None:
            values["extension"] = deadlines.extension(r.student, r.part)
        if (r.student, r.part) not in ids:
            ids[(r.student, r.part)] = _add_submission(parts[r.part], r, values, new)
            continue
        for column, value in values.items():
            changed[column].append({"b_id": ids[(r.student, r.part)], "b_value": value})
    for key, model in (("sub", SubmittedAssignment), ("nb", SubmittedNotebook), ("grade", Grade), ("comment", Comment)):
        if new[key]:
            session.execute(insert(model.__table__), new[key])
    for column, rows in changed.items():
        if rows:
            session.execute(update(table).where(table.c.id == bindparam("b_id"))
                            .values({column: bindparam("b_value")}), rows)
    return [ids[(r.student, r.part)] for r in batch]


def _notebooks(session, parts: dict[str, Part], batch: list[Row], subs: list[str]) -> list[dict[str, str]]:
    """Each row's submitted notebooks: {notebook name: submitted notebook id}."""
    from nbgrader.api import SubmittedNotebook
    from sqlalchemy import select

    t = SubmittedNotebook.__table__
    found: dict[str, dict[str, str]] = {}
    names = {nb_id: name for p in parts.values() for name, nb_id in p.notebooks.items()}
    for nb, sub, notebook in session.execute(select(t.c.id, t.c.assignment_id, t.c.notebook_id)
                                             .where(t.c.assignment_id.in_(subs))):
        found.setdefault(sub, {})[names[notebook]] = nb
    return [found.get(sub, {}) for sub in subs]


def _autogrades(parts: dict[str, Part], r: Row, notebooks: dict[str, str], grades: list, comments: list) -> None:
    """SaveAutoGrades' values for row ``r`` (its notebook is named after its part), appended."""
    from nbgrader import utils
    from nbgrader.api import MissingEntry

    name = r.part
    cells_g, cells_c = parts[r.part].grade_cells.get(name, {}), parts[r.part].comment_cells.get(name, {})
    for cell in r.graded.cells:
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if utils.is_grade(cell):
            if gid not in cells_g:
                raise MissingEntry(f"No such grade: {r.part}/{name}/{gid} for {r.student}")
            auto = utils.determine_grade(cell)[0]
            grades.append({"b_nb": notebooks[name], "b_cell": cells_g[gid], "b_auto": auto, "b_none": auto is None})
        if (utils.is_solution(cell) or utils.is_task(cell)) and gid in cells_c:
            untouched = cell.metadata.nbgrader.get("checksum") == utils.compute_checksum(cell)
            comments.append({"b_nb": notebooks[name], "b_cell": cells_c[gid],
                             "b_text": "No response." if untouched and not utils.is_task(cell) else None})


def _write_autogrades(session, parts, batch: list[Row], notebooks: list[dict[str, str]]) -> None:
    from nbgrader.api import Comment, Grade
    from sqlalchemy import Boolean, bindparam, case, update

    grades: list[dict] = []
    comments: list[dict] = []
    for r, nbs in zip(batch, notebooks, strict=True):
        if r.graded is not None:
            _autogrades(parts, r, nbs, grades, comments)
    g, c = Grade.__table__, Comment.__table__
    if grades:
        session.execute(update(g).where(g.c.notebook_id == bindparam("b_nb"), g.c.cell_id == bindparam("b_cell"))
                        .values(auto_score=bindparam("b_auto"), needs_manual_grade=case(
                            (g.c.manual_score.is_not(None), True), else_=bindparam("b_none", type_=Boolean))), grades)
    if comments:
        session.execute(update(c).where(c.c.notebook_id == bindparam("b_nb"), c.c.cell_id == bindparam("b_cell"))
                        .values(auto_comment=bindparam("b_text")), comments)


def _seconds_late(timestamp, extension, duedate) -> float:
    """nbgrader's SubmittedAssignment.total_seconds_late, from its columns."""
    if timestamp is None or duedate is None:
        return 0
    return max(0, (timestamp - (duedate + extension if extension is not None else duedate)).total_seconds())


def _late_penalties(session, parts: dict[str, Part], batch: list[Row], subs: list[str],
                    deadlines: Deadlines | None, late) -> None:
    """AssignLatePenalties for graded rows (the course's plugin decides the points), from one
    query of their notebooks' scores."""
    from nbgrader.api import SubmittedAssignment, SubmittedNotebook
    from sqlalchemy import bindparam, select, update

    graded = {sub: r for r, sub in zip(batch, subs, strict=True) if r.graded is not None}
    if not graded:
        return
    sa, t = SubmittedAssignment, SubmittedNotebook.__table__
    found = session.execute(select(SubmittedNotebook.id, SubmittedNotebook.score, sa.id, sa.timestamp, sa.extension)
                            .join(sa, sa.id == SubmittedNotebook.assignment_id).where(sa.id.in_(list(graded))))
    penalties = []
    for nb, score, sub, timestamp, extension in found:
        r = graded[sub]
        seconds = _seconds_late(timestamp, extension, _duedate(parts, r.part, deadlines))
        penalty = late.plugin_inst.late_submission_penalty(r.student, score, seconds) if seconds > 0 else None
        if penalty is not None:
            penalty = min(max(penalty, 0), score)  # AssignLatePenalties' _check_late_penalty
        penalties.append({"b_id": nb, "b_value": penalty})
    session.execute(update(t).where(t.c.id == bindparam("b_id")).values(late_submission_penalty=bindparam("b_value")),
                    penalties)


def _duedate(parts: dict[str, Part], part: str, deadlines: Deadlines | None):
    return deadlines.due.get(part) if deadlines is not None else parts[part].duedate


def _flags(session, batch: list[Row], notebooks: list[dict[str, str]]) -> None:
    from nbgrader.api import Grade, SubmittedNotebook
    from sqlalchemy import bindparam, update

    t, g = SubmittedNotebook.__table__, Grade.__table__
    session.execute(update(t).where(t.c.id == bindparam("b_id")).values(flagged=bindparam("b_flag")),
                    [{"b_id": nb, "b_flag": r.flagged} for r, nbs in zip(batch, notebooks, strict=True)
                     for nb in nbs.values()])
    zero = [nb for r, nbs in zip(batch, notebooks, strict=True) if r.zero for nb in nbs.values()]
    if zero:
        session.execute(update(t).where(t.c.id.in_(zero)).values(late_submission_penalty=None))
        session.execute(update(g).where(g.c.notebook_id.in_(zero)).values(auto_score=0, needs_manual_grade=False))


def store_scores(session, parts: dict[str, Part], batch: list[Row], deadlines: Deadlines | None,
                 late) -> list[str]:
    """Write ``batch`` (student, submission, due date and extension, scores and comments, late
    penalty, flags) in ``session``'s transaction, uncommitted. ``parts``: :func:`read_part` of
    each part in the batch; ``late``: an AssignLatePenalties with its plugin. Returns each
    row's submission id (for :func:`read_scores`, once committed)."""
    session.flush()
    _ensure_students(session, {r.student for r in batch})
    subs = _submissions(session, parts, batch, deadlines)
    notebooks = _notebooks(session, parts, batch, subs)
    _write_autogrades(session, parts, batch, notebooks)
    _late_penalties(session, parts, batch, subs, deadlines, late)
    _flags(session, batch, notebooks)
    return subs


def read_scores(session, parts: dict[str, Part], batch: list[Row], subs: list[str],
                deadlines: Deadlines | None) -> list[tuple[float, float, float, float]]:
    """(score, max_score, late penalty, seconds late) of each row's submission, as the gradebook
    computes them, in one query."""
    from nbgrader.api import SubmittedAssignment as Sa
    from sqlalchemy import select

    found = {row[0]: row[1:] for row in session.execute(
        select(Sa.id, Sa.score, Sa.max_score, Sa.late_submission_penalty, Sa.timestamp, Sa.extension)
        .where(Sa.id.in_(subs)))}
    out = []
    for r, sub in zip(batch, subs, strict=True):
        score, top, penalty, timestamp, extension = found[sub]
        seconds = _seconds_late(timestamp, extension, _duedate(parts, r.part, deadlines))
        out.append((score, top, float(penalty or 0), seconds))
    return out
