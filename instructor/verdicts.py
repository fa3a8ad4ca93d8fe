"""Feedback built from what the learner already had, plus messages the instructor wrote.

    page = feedback_notebook(graded, submitted, tests)   # the notebook a feedback page shows

Nothing printed, displayed, raised, warned or written by the grading run reaches a page. Learner
code runs in that run after hidden tests have run (and can read them: its caller's frame, code
constants, the notebook file), so anything it produces there can carry them, encoded, split or
turned into numbers; no filter can recognise every encoding. A page is therefore made of:

- every cell of the learner's *submitted* notebook, with the outputs it had when they submitted
  it (made on their own machine, where no hidden test ever ran);
- in place of each test cell, the release's visible test (hidden tests removed) and a verdict:
  passed, or failed with one message chosen from a fixed set that the run cannot add to:
  a message the instructor wrote in that test cell's source (an ``assert``'s message, an
  exception raised by the test, a ``why=`` of :func:`helper.checks.without`), shown as its
  template: ``f"got {shape}"`` reads ``got …``, since the values come from learner code; or,
  for an error raised elsewhere, its type if Python or PyTorch defines it, and the learner's
  function it was raised in, when the submission defines a function of that name.

What the grading run decides is which of these few sentences each failed test shows: a few bits
per test cell (docs/grading-safety.md), as any verdict is.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import hashlib
import io
import re
import tokenize
from pathlib import Path

from .course import course_config, grade_id, is_answer_cell, is_test_cell, read_regular_file

HOLE = "…"  # what a value computed at grading time shows as
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FRAME = re.compile(r"^Cell In\[\d+\], line \d+(?:, in (\w+)\()?")
# Exception types a page names: Python's own, and those PyTorch raises.
KNOWN_ERRORS = frozenset(n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)) \
    | {"OutOfMemoryError", "Delegated"}
_STUB = "NotImplementedError"


# ---------------------------------------------------------------------------
# The messages a test cell's source holds
# ---------------------------------------------------------------------------

def visible_source(source: str) -> str:
    """A test cell's source as learners see it: the ``### BEGIN HIDDEN TESTS`` blocks removed
    (what nbgrader's ClearHiddenTests leaves)."""
    return re.sub(r"[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[^\n]*\n?", "", source, flags=re.S).rstrip()


def _pieces(node: ast.AST, names: dict[str, ast.AST], depth: int = 0) -> list[str | None] | None:
    """A string expression as text pieces and holes (None), or None if it is no string."""
    if depth > 8:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.Constant) else None for v in node.values]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _pieces(node.left, names, depth + 1), _pieces(node.right, names, depth + 1)
        if left is None and right is None:
            return None
        return (left or [None]) + (right or [None])  # "got " + str(x): a value is a hole
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):  # "... %s" % value
        left = _pieces(node.left, names, depth + 1)
        return None if left is None else [p for s in left for p in _split(s, r"%[-#0 +]*\d*(?:\.\d+)?[a-z%]")]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        left = _pieces(node.func.value, names, depth + 1)
        return None if left is None else [p for s in left for p in _split(s, r"\{[^{}]*\}")]
    if isinstance(node, ast.Name) and node.id in names:
        return _pieces(names[node.id], names, depth + 1)
    return None


def _split(piece: str | None, hole: str) -> list[str | None]:
    if piece is None:
        return [None]
    out: list[str | None] = []
    for i, part in enumerate(re.split(hole, piece)):
        if i:
            out.append(None)
        out.append(part)
    return out


_MISTAKE = re.compile(r"#\s*mistake:\s*([\w.-]+)")  # a message's id: `# mistake: 03-zero-grad`


class Template:
    """One message the instructor wrote: its text as a page shows it, the messages it matches,
    and the id of the mistake it names (a ``# mistake: <id>`` comment on a line of the statement
    that holds its text), if any."""

    def __init__(self, pieces: list[str | None], mistake: str | None = None):
        self.text = "".join(HOLE if p is None else p for p in pieces)
        self.mistake = mistake
        self._pattern = re.compile("".join(".*?" if p is None else re.escape(p) for p in pieces), re.S)

    def matches(self, message: str) -> bool:
        return bool(self._pattern.fullmatch(message))

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def _statements(tree: ast.AST) -> dict[int, ast.stmt]:
    """{id(node): the innermost statement that holds it}."""
    owner: dict[int, ast.stmt] = {}
    stack = [(tree, None)]
    while stack:
        node, stmt = stack.pop()
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.stmt) else stmt
            owner[id(child)] = inner
            stack.append((child, inner))
    return owner


def _lines(stmt: ast.stmt) -> tuple[int, int]:
    """The lines of ``stmt`` (1-based, inclusive); of a compound statement (``with``, ``if``), its
    header only."""
    if not isinstance(getattr(stmt, "body", None), list):
        return stmt.lineno, stmt.end_lineno or stmt.lineno
    header = [v for name, v in ast.iter_fields(stmt) if name not in ("body", "orelse", "handlers", "finalbody")]
    ends = [n.end_lineno for v in header for item in (v if isinstance(v, list) else [v]) if isinstance(item, ast.AST)
            for n in ast.walk(item) if getattr(n, "end_lineno", None)]
    return stmt.lineno, max([stmt.lineno, *ends])


def _comments(source: str) -> dict[int, str]:
    """{line: its comment} of ``source``."""
    try:
        return {t.start[0]: t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type == tokenize.COMMENT}
    except (tokenize.TokenError, SyntaxError):
        return {}


def message_sites(source: str) -> list[tuple[Template, int]]:
    """Every message ``source`` (a test cell, hidden tests included) can fail with, in the cell's
    order, each with the last line (1-based) of the statement holding its text: the assert or
    raise, the call with ``why=``, or the assignment of the name that holds it. Duplicates kept."""
    clean = re.sub(r"^([ \t]*)[%!].*$", r"\1pass", source, flags=re.M)
    try:
        tree = ast.parse(clean)
    except SyntaxError:
        return []
    assigned = {t.id: n for n in ast.walk(tree) if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    names = {name: n.value for name, n in assigned.items()}
    owner, comments = _statements(tree), _comments(clean)
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.msg is not None:
            found.append(node.msg)
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
            found.append(node.exc.args[0])
        elif isinstance(node, ast.Call):
            found.extend(k.value for k in node.keywords if k.arg == "why")
    out = []
    for node in sorted(found, key=lambda n: (n.lineno, n.col_offset)):
        pieces = _pieces(node, names)
        if pieces is None:
            continue
        stmt = assigned[node.id] if isinstance(node, ast.Name) and node.id in assigned else owner[id(node)]
        first, last = _lines(stmt)
        ids = [m.group(1) for n in range(first, last + 1) if (m := _MISTAKE.search(comments.get(n, "")))]
        out.append((Template(pieces, ids[0] if ids else None), last))
    return out


@functools.lru_cache(maxsize=512)  # a class's failures read the same few test cells again and again
def templates(source: str) -> tuple[Template, ...]:
    """Every message ``source`` (a test cell, hidden tests included) can fail with: assert
    messages, the first argument of an exception it raises, ``why=`` keywords; a message held in
    a name is followed to the string assigned to it in the cell. Each carries its mistake id."""
    out, seen = [], set()
    for t, _ in message_sites(source):
        if t.text not in seen:
            seen.add(t.text)
            out.append(t)
    return tuple(out)


# ---------------------------------------------------------------------------
# One failed test, in words the run cannot choose
# ---------------------------------------------------------------------------

def _frames(traceback: list[str]) -> list[str | None]:
    """The function of each notebook-cell frame of an error's traceback, innermost last."""
    out = []
    for entry in traceback or []:
        match = _FRAME.match(_ANSI.sub("", str(entry)))
        if match:
            out.append(match.group(1))
    return out


def learner_functions(submitted) -> set[str]:
    """Names of the functions and classes (and their methods) the submission's answer cells define."""
    names: set[str] = set()
    for cell in submitted.cells:
        if cell.get("cell_type") != "code" or not is_answer_cell(cell):
            continue
        try:
            tree = ast.parse(re.sub(r"^([ \t]*)[%!].*$", r"\1pass", cell.source, flags=re.M))
        except SyntaxError:
            continue
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        names |= {n.name for n in ast.walk(tree) if isinstance(n, kinds)}
    return names


def explained_by(error: dict, source: str) -> Template | None:
    """The message of ``source`` (a test cell, hidden tests included) that the failed test's error
    output ``error`` is, or None: only an assertion (or a ``why=`` refusal) is one."""
    if str(error.get("ename", "")) in ("AssertionError", "Delegated"):
        evalue = str(error.get("evalue", ""))
        return next((t for t in templates(source) if t.matches(evalue)), None)
    return None


def explanation(error: dict, source: str, others=()) -> Template | None:
    """The message a failed test's ``error`` is: one of ``source``'s (the test cell's), else one of
    ``others``' (the part's other test cells: a check one test defines and another calls); or None."""
    return next((t for text in (source, *others) if (t := explained_by(error, text)) is not None), None)


def failure_message(error: dict, source: str, defined: set[str], others: tuple[str, ...] = ()) -> str:
    """What a page says about a failed test cell whose error output is ``error``: a message of
    ``source`` (the test cell, hidden tests included), or else of ``others`` (the part's other
    test cells: a check one test defines and another calls), that the error's message matches;
    or the error's type and the learner's function it came from. Never text from the run itself."""
    ename = str(error.get("ename", ""))
    kind = ename if ename in KNOWN_ERRORS else "an exception of a class your code defines"
    if (template := explanation(error, source, others)) is not None:
        return f"AssertionError: {template.text}"
    evalue = str(error.get("evalue", ""))
    if ename == "NameError":
        match = re.fullmatch(r"name '(\w+)' is not defined", evalue)
        visible = set(re.findall(r"\w+", visible_source(source)))
        if match and match.group(1) in visible:
            return (f"NameError: name '{match.group(1)}' is not defined: run the cell that defines it "
                    "(an exercise above may be unfinished)")
    frames = [f for f in _frames(error.get("traceback", [])) if f in defined]
    where = f" in your function {frames[-1]}" if frames else " in your code"
    if ename == _STUB:
        return f"NotImplementedError{where}: the exercise is not written yet"
    if ename == "AssertionError" and not frames:
        return "AssertionError: the test failed"
    return (f"{kind} raised{where}. The page does not show messages made while grading: run this test "
            "in your own notebook to see the whole error")


# ---------------------------------------------------------------------------
# The page's notebook
# ---------------------------------------------------------------------------

def feedback_notebook(graded, submitted, tests: dict[str, str]):
    """The notebook a feedback page shows: ``submitted`` (the learner's notebook as they handed it
    in, outputs included), with each test cell's source replaced by the release's visible test
    and its outputs by a verdict read from ``graded`` (the grading run's notebook, its nbgrader
    metadata carrying scores as nbgrader's GetGrades sets them). ``tests``: {grade id: the test
    cell's source in the release, hidden tests included}. Markdown formulas become MathML
    (:mod:`instructor.mathml`): the page needs no network to show them."""
    import nbformat

    from .mathml import offline_math

    verdicts = {grade_id(c): c for c in graded.cells if is_test_cell(c) and grade_id(c) in tests}
    defined = learner_functions(submitted)
    page = copy.deepcopy(submitted)
    shown: set[str] = set()
    cells = []
    for cell in page.cells:
        gid = grade_id(cell)
        if gid in tests and gid not in shown:
            shown.add(gid)
            cells.append(_verdict_cell(gid, tests, verdicts.get(gid), defined))
        elif gid in tests or cell.get("cell_type") == "code" and is_test_cell(cell):
            continue  # a copy of a test cell, or a test the release does not have: no verdict to show
        else:
            if cell.get("cell_type") == "markdown":  # formulas drawn by the browser, offline too
                cell.source = offline_math(cell.source)
            cells.append(cell)
    for gid in tests:   # a test cell the learner deleted: still shown, with its verdict
        if gid not in shown and gid in verdicts:
            cells.append(_verdict_cell(gid, tests, verdicts[gid], defined))
    page.cells = cells
    page.metadata = nbformat.from_dict({k: v for k, v in graded.metadata.items()
                                        if k in ("kernelspec", "language_info")})
    return page


def _verdict_cell(gid: str, tests: dict[str, str], graded, defined: set[str]):
    import nbformat

    source = tests[gid]
    cell = nbformat.v4.new_code_cell(visible_source(source))
    fallback = "test-" + hashlib.sha256(gid.encode()).hexdigest()[:8]
    cell.id = graded.get("id") if graded is not None and graded.get("id") else fallback
    meta = copy.deepcopy(dict(graded.metadata)) if graded is not None else {}
    cell.metadata = nbformat.from_dict({k: v for k, v in meta.items()
                                        if k in ("nbgrader", "tags", "deletable", "editable")})
    cell.metadata.setdefault("nbgrader", {}).update({"grade_id": gid, "grade": True, "solution": False, "locked": True})
    errors = [o for o in (graded.outputs if graded is not None else []) if o.get("output_type") == "error"]
    if graded is None:
        text = "Not graded: this test did not run."
    elif errors:
        text = failure_message(errors[-1], source, defined, tuple(s for g, s in tests.items() if g != gid))
        cell.outputs = [nbformat.v4.new_output("error", ename="TestFailed", evalue=text, traceback=[text])]
        return cell
    else:
        text = "Passed."
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
    return cell


def source_notebook(course: Path, part: str):
    """``part``'s source notebook in ``course`` (the release's, hidden tests included)."""
    import nbformat

    folder = course_config(course).get("CourseDirectory", {}).get("source_directory", "source")
    return nbformat.reads(read_regular_file(Path(course) / folder / part / f"{part}.ipynb").decode("utf-8"),
                          as_version=4)


def release_tests(course: Path, part: str) -> dict[str, str]:
    """{grade id: source} of the test cells of ``part``'s source notebook (hidden tests included):
    what a page's test cells and messages come from."""
    return {grade_id(c): c.source for c in source_notebook(course, part).cells if is_test_cell(c)}
