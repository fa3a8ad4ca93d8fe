"""Every sentence of a learner's notebook is about the learner's own run.

The released notebooks (``notebooks/<part>/<part>.ipynb``, what learners open, outputs empty)
must not speak of the course's CI, its tests or the data sample they run on, of outputs stored
or printed in the notebook (a learner's copy has none: "the output above" of the learner's own
run is fine), or of the instructors' tooling (nbgrader, formgrader, autograding, hidden tests).
Every markdown cell is read (embedded images left out), and the comments and strings (a test's
messages, docstrings, printed text) of every code cell.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

import pytest

from tests.parts.cells import parts, python, released

# (pattern, what it speaks of). Case-insensitive unless the pattern says otherwise.
WORDING: list[tuple[str, str]] = [
    # the course's continuous integration and its tests
    (r"(?-i:\bCI\b)", "the course's CI"),
    (r"\bcontinuous integration\b|\bGitHub Actions\b", "the course's CI"),
    (r"\bcourse'?s (?:own |automatic |visible )?tests?\b|\bautomatic tests?\b|\btest suite\b",
     "the course's tests"),
    (r"\b(?:nbval|pytest)\b|\bmake (?:test|release|outputs)\b", "the course's tests"),
    # the data sample the tests run on, not the learner's data
    (r"\bcourse'?s (?:own )?(?:smaller |small )?(?:test |data |CI )?sample\b", "the course's data sample"),
    (r"\b(?:small|smaller|tiny|data|test|CI|fake) sample\b", "a data sample"),
    (r"\b(?:on|with|from) a sample of\b", "a data sample"),
    (r"\bfake (?:data|images|photos)\b", "the tests' fake data"),
    # outputs a learner's copy does not have
    (r"\b(?:printed|stored|recorded|saved) here\b", "outputs stored in the notebook"),
    (r"\bstored (?:in|with) this notebook\b|\bthis notebook'?s (?:stored |saved )?outputs?\b",
     "outputs stored in the notebook"),
    (r"\b(?:stored|saved) outputs?\b|\boutputs? (?:stored|saved) (?:in|with)\b", "outputs stored in the notebook"),
    (r"\bwhen this notebook was (?:run|executed|made|written)\b|\bour run\b", "outputs stored in the notebook"),
    # the instructors' tooling
    (r"\b(?:nb|form)grader\b|\bautograd(?:e|ed|er|es|ing)\b|\bhidden tests?\b", "the instructors' tooling"),
    (r"\binstructor'?s? (?:copy|notebook|solution|tools?|tooling)\b|\bgrading (?:run|kernel|sandbox)\b",
     "the instructors' tooling"),
]
_COMPILED = [(re.compile(p, re.I), what) for p, what in WORDING]
# Embedded images (attachments, data URIs) are not text.
_IMAGES = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+|!\[[^\]]*\]\(attachment:[^)]*\)")


def findings(text: str) -> list[tuple[str, str]]:
    """(phrase, what it speaks of) for each wording of WORDING in ``text``."""
    text = _IMAGES.sub(" ", text)
    found, spans = [], []
    for pattern, what in _COMPILED:
        for match in pattern.finditer(text):
            if not any(match.start() < end and start < match.end() for start, end in spans):
                spans.append(match.span())
                found.append((" ".join(match.group(0).split()), what))
    return found


def comments(source: str) -> str:
    """The comments and string literals of a code cell, one per line ("" for a cell that is not
    Python)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(python(source)).readline))
        tree = ast.parse(python(source))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return ""
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    return "\n".join([t.string for t in tokens if t.type == tokenize.COMMENT] + strings)


def _wording(part: str) -> list[str]:
    out = []
    for index, cell in enumerate(released(part).cells):
        text = {"markdown": cell.source, "code": comments(cell.source)}.get(cell.cell_type, "")
        for phrase, what in findings(text):
            out.append(f"{part} cell {index} ({cell.cell_type}): \"{phrase}\" speaks of {what}")
    return out


@pytest.mark.parametrize("part", parts())
def test_a_learner_notebook_speaks_of_the_learners_own_run(part):
    found = _wording(part)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text", [
    "the small data sample the course's tests use",
    "on the course's smaller test sample it is higher",
    "The accuracy printed here is from a run on a CPU.",
    "the outputs stored in this notebook",
    "The CI runs this notebook on fake data.",
    "nbgrader's hidden tests check more cases",
    "the autograder gives 2 points",
    "On a sample of 720 images it is 16 batches.",
])
def test_the_wording_check_flags(text):
    assert findings(text), text


@pytest.mark.parametrize("text", [
    "Your output should show a loss that falls; the output above is from your own run.",
    "Its elements are no longer stored in reading order.",
    "The running mean and variance stored during ImageNet training.",
    "It uses a **seeded random sample** of the training photos.",
    "autograd records every operation; `loss.backward()` runs it backwards.",
    "The test cell below checks your function; a circle of cicadas.",
    "![diagram](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABCIstagAAAABJRU5ErkJggg==)",
])
def test_the_wording_check_leaves_honest_sentences(text):
    assert not findings(text), findings(text)


def test_code_comments_and_strings_are_read():
    assert comments("x = 1  # printed here for the CI\n%matplotlib inline\ny = 'the hidden tests'\n") == \
        "# printed here for the CI\nthe hidden tests"
