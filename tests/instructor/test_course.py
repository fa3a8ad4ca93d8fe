"""instructor.course: the vocabulary every other module uses (parts, a submission's paths, the
course's nbgrader configuration, which cell is which) and how a student's file is read."""

from __future__ import annotations

import os

import nbformat
import pytest

from instructor import course
from instructor.course import GradingError
from tests.conftest import modules_imported_by

v4 = nbformat.v4


def nbgrader_cell(gid, kind="code", **flags):
    meta = {"nbgrader": {"grade": False, "solution": False, "locked": False, "grade_id": gid, **flags}}
    return (v4.new_code_cell if kind == "code" else v4.new_markdown_cell)(f"# {gid}", metadata=meta)


ANSWER = nbgrader_cell("answer", solution=True)
TEST = nbgrader_cell("test_answer", grade=True, locked=True, points=1)
LOCKED_TEXT = nbgrader_cell("intro", kind="markdown", locked=True)
GRADED_ANSWER = nbgrader_cell("both", solution=True, grade=True, points=2)  # nbgrader: manually graded answer
PLAIN = v4.new_code_cell("x = 1")


def test_parts_are_numbered_slugs_in_course_order():
    assert tuple(sorted(course.PART_NAMES)) == course.PART_NAMES
    assert all(name[:2].isdigit() and name[2] == "-" and name == name.lower() for name in course.PART_NAMES)
    assert course.existing_parts() == list(course.PART_NAMES), "every part has its solution notebook"


def test_a_submissions_paths(tmp_path):
    assert course.submission_dir(tmp_path, "ada", "01-tensors") == tmp_path / "submitted" / "ada" / "01-tensors"
    assert course.graded_dir(tmp_path, "ada", "01-tensors") == tmp_path / "autograded" / "ada" / "01-tensors"
    assert course.notebook_in(tmp_path, "01-tensors") == tmp_path / "01-tensors.ipynb"
    assert course.part_notebook("01-tensors", release=True, course=tmp_path) == \
        tmp_path / "notebooks" / "01-tensors" / "01-tensors.ipynb"


@pytest.mark.parametrize(("cell", "answer", "test", "locked"), [
    (ANSWER, True, False, False), (TEST, False, True, True), (LOCKED_TEXT, False, False, True),
    (GRADED_ANSWER, True, False, False), (PLAIN, False, False, False)])
def test_cell_predicates_follow_nbgrader(cell, answer, test, locked):
    assert (course.is_answer_cell(cell), course.is_test_cell(cell), course.is_locked(cell)) == (answer, test, locked)


def test_a_cell_with_empty_metadata_is_ordinary():
    cell = v4.new_code_cell("x", metadata={"nbgrader": None})
    assert course.nbgrader_meta(cell) == {} and course.grade_id(cell) is None


def test_editable_cells_skip_the_first_copy_of_each_locked_cell_unless_changed():
    copy_of_test = nbgrader_cell("test_answer", grade=True, locked=True, points=1)  # a learner's duplicate
    nb = v4.new_notebook(cells=[LOCKED_TEXT, ANSWER, TEST, PLAIN, copy_of_test])
    assert course.locked_ids(nb) == {"intro", "test_answer"}
    assert course.editable_cells(nb, course.locked_ids(nb)) == [1, 3, 4]
    assert course.editable_cells(nb, {"test_answer": "# test_answer"}) == [1, 3, 4]
    assert course.editable_cells(nb, {"test_answer": "the instructor's source"}) == [1, 2, 3, 4]


@pytest.mark.parametrize(("student", "usable"), [
    ("ada", True), ("s00001", True), ("Ada Lovelace", True), ("a-b.c", True), ("é", True),
    ("*", False), ("a?", False), ("[ab]", False), ("-x", False), ("-rf", False), (".hidden", False),
    ("..", False), ("../x", False), ("a/b", False), ("a\\b", False), ("a\nb", False), ("tab\t", False)])
def test_usable_student_id_refuses_what_a_glob_or_a_path_would_misread(student, usable):
    assert course.usable_student_id(student) is usable


def test_check_course_needs_an_nbgrader_config(tmp_path):
    with pytest.raises(GradingError, match="has no nbgrader_config.py: run this in the course folder"):
        course.check_course(tmp_path)
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    assert course.check_course(tmp_path / "." / "") == tmp_path.resolve()


def test_the_course_config_decides_timeout_and_gradebook(tmp_path):
    assert course.db_url(tmp_path) == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert course.configured_timeout(tmp_path) is None
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.Execute.timeout = 42\nc.CourseDirectory.db_url = 'postgresql://db/course'\n")
    assert course.configured_timeout(tmp_path) == 42
    assert course.db_url(tmp_path) == "postgresql://db/course" and course.gradebook_file(tmp_path) is None
    (tmp_path / "nbgrader_config.py").write_text("this is not python(\n")
    assert course.configured_timeout(tmp_path) is None, "a broken config is nbgrader's to report"


def test_no_released_part_without_a_gradebook(tmp_path):
    assert course.released_parts(tmp_path) == []
    assert not (tmp_path / "gradebook.db").exists(), "looking creates nothing"


def test_read_regular_file_refuses_links_fifos_and_huge_files(tmp_path):
    good = tmp_path / "a.ipynb"
    good.write_bytes(b"{}")
    assert course.read_regular_file(good) == b"{}"
    (tmp_path / "link.ipynb").symlink_to(good)
    with pytest.raises(OSError, match="symbolic link, not a regular file: never followed"):
        course.read_regular_file(tmp_path / "link.ipynb")
    os.mkfifo(tmp_path / "fifo.ipynb")
    with pytest.raises(OSError, match="fifo.ipynb is not a regular file"):
        course.read_regular_file(tmp_path / "fifo.ipynb")   # returns at once: never blocks on a FIFO
    with pytest.raises(OSError, match=r"a.ipynb is 2 bytes \(limit 1\)"):
        course.read_regular_file(good, limit=1)


def test_write_atomically_replaces_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "page.html"
    path.write_bytes(b"old")
    course.write_atomically(path, b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["page.html"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_one_line_folds_and_shortens():
    assert course.one_line("a\n  b\tc") == "a b c"
    assert course.one_line("x" * 10, limit=5) == "xxxx…"


def test_html_table_escapes_unless_told_and_says_how_many_more():
    rows = [{"student": "<script>", "score": 1}, {"student": "b", "score": 2}, {"student": "c"}]
    table = course.html_table(rows, ["student", "score"], limit=2)
    assert "&lt;script&gt;" in table and "<script>" not in table
    assert table.count("<tr>") == 3 and "1 more in the CSV file" in table
    assert "<a href='x'>" in course.html_table([{"link": "<a href='x'>"}], ["link"], escape=False)
    assert course.html_table([], ["student"]) == "<p class='none'>none</p>"


def test_write_csv_has_a_header(tmp_path):
    course.write_csv(tmp_path / "x.csv", [{"a": 1, "b": "x,y"}], ["a", "b"])
    assert (tmp_path / "x.csv").read_text().splitlines() == ["a,b", '1,"x,y"']


def test_nbgrader_runs_as_its_own_command_without_the_slow_schema_import(tmp_path):
    """run_nbgrader starts nbgrader as `python -m nbgrader` would (its output, its exit status),
    this package first, so that jsonschema never loads rfc3987_syntax."""
    wrong = course.run_nbgrader(["autograde", "--no-such-flag"], tmp_path, capture_output=True, text=True)
    assert wrong.returncode == 2 and "no-such-flag" in wrong.stdout + wrong.stderr
    assert course.NBGRADER.startswith("import instructor")
    created = course.run_nbgrader(["db", "student", "add", "ann"], tmp_path, env={"PATH": "/usr/bin:/bin"},
                                  capture_output=True, text=True)  # a new gradebook, no `alembic` on PATH
    assert created.returncode == 0, created.stderr
    heavy = ("lark", "jsonschema")  # lark: what rfc3987_syntax builds its parsers with
    assert modules_imported_by("import instructor, nbgrader.apps.nbgraderapp", heavy) == ["jsonschema"]

def test_notebooks_are_still_validated_without_the_iri_format():
    """Leaving rfc3987_syntax out drops one string format nobody uses, not validation."""
    assert modules_imported_by("import instructor, nbformat", ("lark", "jsonschema")) == ["jsonschema"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.validate(nb)
    nb.cells[0]["outputs"] = "not a list"
    with pytest.raises(nbformat.ValidationError):
        nbformat.validate(nb)


def test_the_schema_version_read_in_process_is_nbgraders_own(tmp_path):
    """What nbgrader's own `alembic heads` call answers, and what a new gradebook records."""
    import io
    import sqlite3

    import alembic.command
    import alembic.config
    from nbgrader.dbutil import _temp_alembic_ini

    out = io.StringIO()
    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'unused.db'}") as ini:
        alembic.command.heads(alembic.config.Config(ini, stdout=out))  # `alembic heads`, as nbgrader.api runs it
    expected = out.getvalue().split("\n")[0].split(" ")[0]
    assert course._schema_head() == expected
    (tmp_path / "nbgrader_config.py").write_text("")
    with course.gradebook(tmp_path) as gb:
        gb.add_student("ann")
    with sqlite3.connect(tmp_path / "gradebook.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(expected,)]


def test_metadata_problems_are_said_in_words():
    from instructor.course import metadata_problem

    def cell(gid, **kw):
        return nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"grade_id": gid, **kw}})

    ok = nbformat.v4.new_notebook(cells=[cell("a", solution=True), cell("test_a", grade=True, points=1)])
    assert metadata_problem(ok) is None
    copied = nbformat.v4.new_notebook(cells=[*ok.cells, cell("test_a", grade=True, points=1)])
    assert metadata_problem(copied).startswith("two cells claim the id test_a: cell 1 and cell 2")
    nameless = nbformat.v4.new_notebook(cells=[cell("", grade=True, points=1)])
    assert metadata_problem(nameless) == \
        "cell 0 is marked as an nbgrader cell but has no grade id (its metadata was edited)"
