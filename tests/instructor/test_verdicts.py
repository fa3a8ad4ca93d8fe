"""instructor.verdicts: a feedback page is the learner's submitted notebook plus verdicts in the
instructor's words; whatever the grading run's error outputs hold (forged or not), none of it is
shown. No kernel: graded notebooks are built here, as a hostile kernel could have written them."""

from __future__ import annotations

import base64

import nbformat
import pytest

from instructor import verdicts

v4 = nbformat.v4
TEST = '''"""Check softmax"""
probabilities = softmax(scores)
assert probabilities.shape == (2, 3), f"expected shape (2, 3), got {tuple(probabilities.shape)}"
assert (probabilities.sum(dim=1) - 1).abs().max() < 1e-6, "each row should sum to 1: divide by the row's sum"
### BEGIN HIDDEN TESTS
secret_rows = torch.randn(7, 11)
assert torch.allclose(softmax(secret_rows), torch.softmax(secret_rows, dim=1)), "wrong values for a (7, 11) batch"
### END HIDDEN TESTS
'''
HIDDEN = "secret_rows = torch.randn(7, 11)"


def _meta(gid: str, **kw) -> dict:
    return {"nbgrader": {"grade_id": gid, "schema_version": 3, **kw}}


def _notebooks(error=None, learner_output="tensor([[0.09, 0.24, 0.67]])\n"):
    """(graded, submitted): an answer cell and one test cell, the graded one failing with ``error``."""
    answer = "def softmax(x):\n    ### BEGIN SOLUTION\n    return x.exp() / x.exp().sum(1, keepdim=True)\n" \
             "    ### END SOLUTION"
    submitted = v4.new_notebook(cells=[
        v4.new_markdown_cell("### Exercise 1 — softmax (2 points)"),
        v4.new_code_cell(answer, metadata=_meta("softmax", solution=True, grade=False)),
        v4.new_code_cell("print(softmax(torch.tensor([[1.0, 2.0, 3.0]])))"),
        v4.new_code_cell("# the learner's copy of the visible test", metadata=_meta("test_softmax", grade=True,
                                                                                    solution=False, points=2)),
    ])
    submitted.cells[2].outputs = [v4.new_output("stream", name="stdout", text=learner_output)]
    submitted.cells[3].outputs = [v4.new_output("stream", name="stdout", text="the learner's own run\n")]
    graded = nbformat.from_dict(nbformat.reads(nbformat.writes(submitted), as_version=4))
    graded.cells[3].source = TEST
    graded.cells[2].outputs = [v4.new_output("stream", name="stdout", text=f"grading run: {HIDDEN}\n")]
    graded.cells[3].outputs = [v4.new_output("error", **error)] if error else []
    return graded, submitted


def _page(error=None, **kw) -> str:
    graded, submitted = _notebooks(error, **kw)
    return nbformat.writes(verdicts.feedback_notebook(graded, submitted, {"test_softmax": TEST}))


def test_templates_are_the_messages_of_the_cell_hidden_tests_included():
    texts = [t.text for t in verdicts.templates(TEST)]
    assert texts == ["expected shape (2, 3), got …", "each row should sum to 1: divide by the row's sum",
                     "wrong values for a (7, 11) batch"]


@pytest.mark.parametrize("source, message, shown", [
    ('assert x, "plain"', "plain", "plain"),
    ('assert x, f"got {y!r} for {z:.2f}"', "got 'abc' for 1.00", "got … for …"),
    ('assert x, ("joined "\n "over lines")', "joined over lines", "joined over lines"),
    ('msg = "held in a name"\nassert x, msg', "held in a name", "held in a name"),
    ('assert x, "a %s b" % y', "a 12 b", "a … b"),
    ('assert x, "{} of {}".format(a, b)', "1 of 2", "… of …"),
    ('raise AssertionError("raised " + str(n)) from None', "raised 7", "raised …"),
    ('with without(torch.softmax, why="write it from exp and sum"):\n    softmax(x)', "write it from exp and sum",
     "write it from exp and sum"),
])
def test_a_message_shows_as_its_template(source, message, shown):
    error = {"ename": "AssertionError", "evalue": message, "traceback": []}
    assert verdicts.failure_message(error, source, set()) == f"AssertionError: {shown}"


def test_the_page_is_the_submission_with_verdicts():
    page = verdicts.feedback_notebook(*_notebooks(), {"test_softmax": TEST})
    learner, test = page.cells[2], page.cells[3]
    assert learner.outputs[0].text == "tensor([[0.09, 0.24, 0.67]])\n", "the learner's own output"
    assert HIDDEN not in nbformat.writes(page) and "BEGIN HIDDEN" not in test.source
    assert test.source.startswith('"""Check softmax"""') and "divide by the row's sum" in test.source
    assert [o.text for o in test.outputs] == ["Passed.\n"]


def test_a_failed_assertion_shows_its_message_and_never_the_values():
    shape = base64.b64encode(HIDDEN.encode()).decode()
    page = _page({"ename": "AssertionError", "evalue": f"expected shape (2, 3), got {shape}", "traceback": [shape]})
    assert "expected shape (2, 3), got …" in page
    assert shape not in page


ENCODED = base64.b64encode(HIDDEN.encode()).decode()
HEX = HIDDEN.encode().hex()
FORGED = {
    "an encoded message": {"ename": "ValueError", "evalue": ENCODED, "traceback": [f"ValueError: {ENCODED}"]},
    "an encoded assertion": {"ename": "AssertionError", "evalue": ENCODED, "traceback": [ENCODED]},
    "a message split round a template": {"ename": "AssertionError", "evalue": f"got {ENCODED}", "traceback": []},
    "numbers": {"ename": "RuntimeError", "evalue": " ".join(str(b) for b in HIDDEN.encode()), "traceback": []},
    "the exception's class name": {"ename": f"E{HEX}", "evalue": "", "traceback": []},
    "a frame's function name": {"ename": "ValueError", "evalue": "x", "traceback": [
        f"\x1b[36mCell\x1b[39m In[3], line 2, in \x1b[36mf{HEX}\x1b[39m(x)\n", "ValueError: x"]},
    "a NameError naming a hidden name": {"ename": "NameError", "evalue": "name 'secret_rows' is not defined",
                                         "traceback": []},
}


def _recoverable(page: str) -> list[str]:
    """Hidden-test text decodable from ``page``: as it is, base64, hex, reversed, or bytes as numbers."""
    import re

    found = []
    texts = [page, page[::-1]]
    for token in re.findall(r"[A-Za-z0-9+/=]{12,}", page):
        for decode in (lambda t: base64.b64decode(t + "=" * (-len(t) % 4)), bytes.fromhex):
            try:
                texts.append(decode(token.lstrip("fE")).decode("utf-8", "replace"))
                texts.append(decode(token).decode("utf-8", "replace"))
            except ValueError:
                pass
    numbers = re.findall(r"\d+", page)
    texts.append("".join(chr(int(n)) for n in numbers if int(n) < 0x110000))
    for text in texts:
        for piece in ("secret_rows", "torch.randn(7, 11)"):
            if piece in text:
                found.append(piece)
    return found


@pytest.mark.parametrize("route", FORGED)
def test_no_route_through_an_error_output_reaches_the_page(route):
    graded, _ = _notebooks(FORGED[route])
    assert _recoverable(nbformat.writes(graded)), "the graded notebook carries it: the check proves something"
    page = _page(FORGED[route])
    assert not _recoverable(page), f"{route}: hidden-test text recoverable from the page"


def test_an_error_in_the_learners_function_names_it_and_its_type():
    traceback = ["\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[2]\x1b[39m\x1b[32m, line 3\x1b[39m, in "
                 "\x1b[36msoftmax\x1b[39m\x1b[34m(x)\x1b[39m\n", "\x1b[31mValueError\x1b[39m: secret"]
    message = verdicts.failure_message({"ename": "ValueError", "evalue": "secret", "traceback": traceback}, TEST,
                                       {"softmax"})
    assert message.startswith("ValueError raised in your function softmax") and "secret" not in message


def test_an_unfinished_exercise_says_so():
    stub = {"ename": "NotImplementedError", "evalue": "", "traceback": ["Cell In[2], line 2, in softmax(x)\n"]}
    assert verdicts.failure_message(stub, TEST, {"softmax"}) == \
        "NotImplementedError in your function softmax: the exercise is not written yet"
    missing = {"ename": "NameError", "evalue": "name 'softmax' is not defined", "traceback": []}
    assert "name 'softmax' is not defined" in verdicts.failure_message(missing, TEST, set())


def test_a_deleted_test_cell_still_shows_its_verdict_and_a_copy_shows_once():
    graded, submitted = _notebooks({"ename": "AssertionError", "evalue": "wrong values for a (7, 11) batch",
                                    "traceback": []})
    copy = nbformat.from_dict(dict(submitted.cells[3]))
    submitted.cells.insert(1, copy)
    page = verdicts.feedback_notebook(graded, submitted, {"test_softmax": TEST})
    assert sum(verdicts.grade_id(c) == "test_softmax" for c in page.cells) == 1
    del submitted.cells[1], submitted.cells[3]
    page = verdicts.feedback_notebook(graded, submitted, {"test_softmax": TEST})
    assert page.cells[-1].outputs[0].evalue == "AssertionError: wrong values for a (7, 11) batch"


TAGGED = '''"""Check train"""
DELEGATED = "write the loop yourself"  # mistake: 03-write-the-loop
with without(fit, why=DELEGATED):
    got = train(model)
assert isinstance(got, list), (
    f"train should return a list, got {got!r}")  # mistake: 03-return-a-list
if bad:
    raise AssertionError("flatten every batch") from None  # mistake: 03-flatten
assert got, "no id here"  # an ordinary comment
'''


def test_a_message_carries_the_mistake_id_written_next_to_it():
    found = {t.text: t.mistake for t in verdicts.templates(TAGGED)}
    assert found == {"write the loop yourself": "03-write-the-loop", "train should return a list, got …":
                     "03-return-a-list", "flatten every batch": "03-flatten", "no id here": None}
    error = {"ename": "AssertionError", "evalue": "train should return a list, got 3", "traceback": []}
    assert verdicts.explained_by(error, TAGGED).mistake == "03-return-a-list"
    assert verdicts.explained_by({**error, "ename": "ValueError"}, TAGGED) is None, "only assertions are messages"
    assert [line for _, line in verdicts.message_sites(TAGGED)] == [2, 6, 8, 9]


def test_a_message_from_a_check_another_test_cell_defines_is_shown():
    other = 'def check_rows(p):\n    assert (p.sum(1) - 1).abs().max() < 1e-6, "rows of probabilities sum to 1"\n'
    error = {"ename": "AssertionError", "evalue": "rows of probabilities sum to 1", "traceback": []}
    assert verdicts.failure_message(error, "check_rows(softmax(x))", set(), (other,)) == \
        "AssertionError: rows of probabilities sum to 1"
    assert verdicts.failure_message(error, "check_rows(softmax(x))", set()) == "AssertionError: the test failed"
