"""instructor.mistakes: the class's mistakes by name. A part whose test cells carry mistake ids,
and a class of graded notebooks with planted mistakes (error outputs as a grading run writes
them; no kernel): every planted mistake is counted once, under its id, in the report's section
and in mistakes.csv; failures no message names are "unexplained", with their error lines. Then
the tool that gives each message of a notebook an id."""

from __future__ import annotations

import csv

import nbformat
import pytest

from instructor import mistakes, report, testing, verdicts
from instructor.course import graded_dir, notebook_in, part_notebook

PART = testing.TRIVIAL_PART
v4 = nbformat.v4

TEST_0 = '''"""Check the answer"""
assert isinstance(answer, int), f"answer should be an int, got {type(answer).__name__}"  # mistake: 00-int
assert answer != 24, "24 is 42 with its digits swapped: read them in order"  # mistake: 00-swapped
assert answer == 42, "the answer is a number you know"
'''
TEST_1 = '''"""Check the double"""
if double != 2 * answer:
    raise AssertionError(
        "double the answer by multiplying by 2, not by adding 2") from None  # mistake: 00-add-not-multiply
### BEGIN HIDDEN TESTS
assert double == 84, f"hidden: {double}"
### END HIDDEN TESTS
'''

# student: {test: (ename, evalue)} of the tests that failed; (mistake id or None) planted
PLANTED = {
    "ada": {"test_0": ("AssertionError", "24 is 42 with its digits swapped: read them in order")},
    "ben": {"test_0": ("AssertionError", "answer should be an int, got str")},
    "cy": {"test_0": ("AssertionError", "24 is 42 with its digits swapped: read them in order"),
           "test_1": ("AssertionError", "double the answer by multiplying by 2, not by adding 2")},
    "dee": {"test_0": ("AssertionError", "the answer is a number you know")},
    "eve": {"test_0": ("ZeroDivisionError", "division by zero")},
    "fay": {"test_0": ("ZeroDivisionError", "division by zero"), "test_1": ("AssertionError", "a message I made up")},
    "gus": {"test_0": ("NotImplementedError", ""), "test_1": ("NameError", "name 'answer' is not defined")},
    "hal": {},
    "ian": {"test_1": ("AssertionError", "24 is 42 with its digits swapped: read them in order")},  # test_0's check
}


def _meta(gid: str, **kw) -> dict:
    base = {"grade": False, "solution": False, "locked": False, "schema_version": 3}
    return {"nbgrader": {**base, "grade_id": gid, **kw}}


def source_notebook() -> nbformat.NotebookNode:
    return v4.new_notebook(cells=[
        v4.new_markdown_cell("# Part 0\n\n## Reading numbers\n\nDigits are read from left to right."),
        v4.new_markdown_cell("### Exercise 1 — the answer (2 points)\n\nSet `answer`."),
        v4.new_code_cell("answer = 42", metadata=_meta("answer", solution=True)),
        v4.new_code_cell(TEST_0, metadata=_meta("test_0", grade=True, locked=True, points=2)),
        v4.new_markdown_cell("## Doubling\n\nTo double, multiply by two."),
        v4.new_markdown_cell("### Exercise 2 — double (1 point)"),
        v4.new_code_cell("double = 84", metadata=_meta("double", solution=True)),
        v4.new_code_cell(TEST_1, metadata=_meta("test_1", grade=True, locked=True, points=1)),
    ])


@pytest.fixture
def course(trivial_course):
    """The trivial course with the tagged part as its source, and the planted class graded."""
    nb = source_notebook()
    nbformat.write(nb, part_notebook(PART, course=trivial_course))
    for student, failed in PLANTED.items():
        graded = nbformat.from_dict(nbformat.reads(nbformat.writes(nb), as_version=4))
        for cell in graded.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in failed:
                ename, evalue = failed[gid]
                cell.outputs = [v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])]
        folder = graded_dir(trivial_course, student, PART)
        folder.mkdir(parents=True)
        nbformat.write(graded, notebook_in(folder, PART))
    page = trivial_course / "feedback" / "ada" / PART / f"{PART}.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html></html>")
    return trivial_course


def test_exercises_and_the_sections_that_teach_them():
    found = mistakes.exercises(source_notebook())
    assert {gid: rest for gid, (_, *rest) in found.items()} == {
        "test_0": ["Exercise 1 — the answer (2 points)", "Reading numbers"],
        "test_1": ["Exercise 2 — double (1 point)", "Doubling"]}


def test_every_planted_mistake_is_counted_once_under_its_id(course):
    found = {(f.exercise[:10], f.mistake): f for f in mistakes.part_mistakes(course, PART)}
    assert {k: sorted(f.learners) for k, f in found.items()} == {
        ("Exercise 1", "00-swapped"): ["ada", "cy"],
        ("Exercise 1", "00-int"): ["ben"],
        ("Exercise 1", mistakes.UNTAGGED): ["dee"],
        ("Exercise 1", mistakes.UNEXPLAINED): ["eve", "fay"],
        ("Exercise 2", "00-add-not-multiply"): ["cy"],
        ("Exercise 2", "00-swapped"): ["ian"],
        ("Exercise 2", mistakes.UNEXPLAINED): ["fay", "gus"],
    }, "gus's unanswered Exercise 1 is no mistake; hal passed; a check of test_0 that test_1 calls is named"
    swapped = found[("Exercise 1", "00-swapped")]
    assert (swapped.graded, round(swapped.share, 3)) == (9, 0.222)
    assert swapped.message == "24 is 42 with its digits swapped: read them in order"
    assert found[("Exercise 1", "00-int")].message == f"answer should be an int, got {verdicts.HOLE}"
    assert found[("Exercise 1", mistakes.UNEXPLAINED)].message == "ZeroDivisionError: division by zero (2)"
    assert found[("Exercise 2", mistakes.UNEXPLAINED)].message == (
        "AssertionError: a message I made up (1) | NameError: name 'answer' is not defined (1)")
    assert found[("Exercise 2", "00-add-not-multiply")].section == "Doubling"
    order = [f.mistake for f in mistakes.part_mistakes(course, PART)]
    assert order == ["00-swapped", "00-int", mistakes.UNTAGGED, mistakes.UNEXPLAINED,
                     "00-add-not-multiply", "00-swapped", mistakes.UNEXPLAINED], "by exercise, the most common first"


def test_the_report_shows_the_section_and_writes_mistakes_csv(course):
    index = report.build(course, course / "report", say=lambda _: None)
    page = index.read_text()
    assert "<h2>Mistakes by name</h2>" in page and "<code>00-swapped</code>" in page
    assert f"<a href='../feedback/ada/{PART}/{PART}.html'>ada</a>, cy" in page, "linked where a page exists"
    with open(course / "report" / "mistakes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == mistakes.FIELDS
    named = {(r["mistake"], r["learners"], r["count"], r["share"]) for r in rows if r["mistake"].startswith("00-")}
    assert named == {("00-swapped", "ada cy", "2", "0.22"), ("00-int", "ben", "1", "0.11"),
                     ("00-add-not-multiply", "cy", "1", "0.11"), ("00-swapped", "ian", "1", "0.11")}
    assert rows[0]["section"] == "Reading numbers" and rows[0]["exercise"] == "Exercise 1 — the answer (2 points)"


def test_tagging_gives_each_untagged_message_an_id_unique_in_its_part():
    ids: dict[str, str] = {}
    first = mistakes.tag_source(TEST_0, "03-training", ids)
    assert first.splitlines()[3].endswith('"the answer is a number you know"  # mistake: 03-the-answer-is-a')
    assert [t.mistake for t in verdicts.templates(first)] == ["00-int", "00-swapped", "03-the-answer-is-a"]
    assert mistakes.tag_source(first, "03-training", ids) == first, "tagging twice changes nothing"
    other = ('assert x, "The answer is a float here"\nassert y, f"the answer is a {y}"\n'
             'assert z, "the answer is a number you know"\n')
    tagged = mistakes.tag_source(other, "03-training", ids)
    assert [t.mistake for t in verdicts.templates(tagged)] == [
        "03-the-answer-is-a-2", "03-the-answer-is-a-3", "03-the-answer-is-a"], "unique, and one message one id"
    untagged = TEST_1.replace("  # mistake: 00-add-not-multiply", "")
    assert [t.mistake for t in verdicts.templates(mistakes.tag_source(untagged, "03-training", {}))] == [
        "03-double-the-answer-by", "03-hidden"]
    compile(tagged, "<tagged>", "exec")


def test_tagging_a_notebook_in_place(tmp_path):
    path = tmp_path / "03-training.ipynb"
    nb = source_notebook()
    nb.cells[3].source = TEST_0.replace("  # mistake: 00-int", "")
    nbformat.write(nb, path)
    assert mistakes.main(["tag", str(path)]) == 0
    tagged = nbformat.read(path, as_version=4)
    assert [t.mistake for t in verdicts.templates(tagged.cells[3].source)] == [
        "03-answer-should-be-an", "00-swapped", "03-the-answer-is-a"]
    assert tagged.cells[7].source == TEST_1.replace('{double}"', '{double}"  # mistake: 03-hidden')
    assert mistakes.tag_notebook(path) == 0, "nothing left to tag"


# ---------------------------------------------------------------------------
# The same, on a class graded for real: Part 1 in the sandbox, mistakes planted in the answers
# ---------------------------------------------------------------------------

REAL_PART = "01-tensors"
# student: {answer id: the answer, as a learner might write it}; the solution everywhere else
REAL_PLANTED = {
    "borrows": {"activation": "def activation(x):\n    return torch.sigmoid(x)"},
    "asks_torch": {"broadcast_shape": "def broadcast_shape(a, b):\n    return tuple(torch.broadcast_shapes(a, b))"},
    "rows_first": {"columns_first": "def columns_first(x):\n    return x.reshape(-1)"},
    "both": {"activation": "def activation(x):\n    return torch.sigmoid(x)",
             "columns_first": "def columns_first(x):\n    return x.reshape(-1)"},
    "wrong_dim": {"standardize": "def standardize(x):\n    return (x - x.mean(dim=2)) / x.std(dim=0)"},
    "right": {},
}


@pytest.fixture(scope="module")
def real_class(kernel, tmp_path_factory):
    from instructor import coordinator
    from instructor.settings import Settings
    from tests.conftest import require_sandbox

    require_sandbox()
    course = testing.make_course(tmp_path_factory.mktemp("mistakes"), [REAL_PART])
    solved = testing.student_notebook(course, REAL_PART, "all")
    for student, answers in REAL_PLANTED.items():
        nb = solved
        for answer, source in answers.items():
            nb = testing.set_answer(nb, answer, source)
        testing.write_submission(course, student, REAL_PART, nb)
    testing.submit(course, "untouched", REAL_PART, solved="none")
    results = coordinator.autograde(course, [REAL_PART], settings=Settings.resolve(course, jobs=2),
                                    say=lambda _: None)
    assert {r.student: r.status for r in results} == dict.fromkeys([*REAL_PLANTED, "untouched"], "graded")
    return course


def test_a_class_graded_in_the_sandbox_gets_its_mistakes_by_name(real_class):
    """Each planted mistake counted once, under the id its test's message carries, in its own
    exercise; the error no message names is "unexplained", with its error line; an untouched
    notebook's unanswered exercises are no mistakes."""
    found = {(f.exercise.split(" —")[0], f.mistake): f for f in mistakes.part_mistakes(real_class, REAL_PART)}
    assert {k: sorted(f.learners) for k, f in found.items()} == {
        ("Exercise 1", "01-write-it-from-torch"): ["borrows", "both"],
        ("Exercise 2", "01-got-the-values-row"): ["both", "rows_first"],
        ("Exercise 5", "01-work-the-shape-out"): ["asks_torch"],
        ("Exercise 6", mistakes.UNEXPLAINED): ["wrong_dim"],
    }
    assert found[("Exercise 1", "01-write-it-from-torch")].graded == 7
    assert found[("Exercise 6", mistakes.UNEXPLAINED)].message.startswith("IndexError: Dimension out of range")
    index = report.build(real_class, real_class / "report", say=lambda _: None)
    assert "<code>01-write-it-from-torch</code>" in index.read_text()
    with open(real_class / "report" / "mistakes.csv", newline="") as f:
        rows = {(r["mistake"], r["learners"], r["share"]) for r in csv.DictReader(f)}
    assert ("01-write-it-from-torch", "borrows both", "0.29") in rows
