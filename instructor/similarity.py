"""Similar answers: which learners' answer cells match more than independent work would.

    python -m instructor similarity [--part P] [--out report/similarity] [--threshold 0.6] [--graded]
    make similarity PART=05-inference-validation

For every part, every pair of submissions is compared on the cells nbgrader marks as answers
(``submitted/<student>/<part>/<part>.ipynb``, or with ``--graded`` the copies in ``autograded/``).
The result is a list of pairs to read, never a verdict: nothing here touches the gradebook or a
score. Written to ``<out>/<part>/`` (default ``report/similarity/<part>/``, where the class
report, ``make report``, also writes it):

    index.html    ranked pairs and clusters; each pair's matching cells side by side, with the
                  lines that match marked
    pairs.csv     part, student_a, student_b, score, shared, cells, cluster
    clusters.csv  groups of students linked by pairs above the threshold (connected components)
    problems.csv  submissions (or cells) that could not be read as they are, with a one-line reason

How answers are compared (MOSS's winnowing, on a normalised form of the code):

1. *Normalise* each answer cell with Python's ``ast``: comments, docstrings and whitespace go;
   string literals become ``'S'``; code that cannot run (``if False:``, statements after a
   ``return``, bare constants, ``pass``) goes; import aliases become the module's name; the
   statements of every block are put in a canonical order that keeps each dependency (a
   statement that reads or changes a name another one sets stays after it), so reordering
   independent statements changes nothing; then every name the answers bind (variables,
   arguments, functions, attributes set on ``self``) is renamed ``V0, V1, ...`` in order of
   first use. A cell that does not parse is compared token by token instead (said in
   problems.csv).
2. *Fingerprint*: hashes of every k tokens in a row, winnowed (the smallest of every window
   of w hashes kept), per cell.
3. *Drop the scaffold*: statements of the released notebook's answer cells (the function header,
   docstring and ``raise NotImplementedError()`` every learner starts with) are taken out of each
   answer before fingerprinting.
4. *Weigh by rarity*: a fingerprint found in ``df`` of the part's N submissions weighs
   ``log((N+1)/df) / log(N+1)``: code the whole class writes the same way weighs nothing.
5. *Score* a pair: the weight the two share over the weight of the smaller one (1.0: one is
   contained in the other), counted only when the shared weight is at least ``MIN_SHARED``
   (a one-line answer is not evidence). Up to EXACT_UP_TO submissions every pair is scored at
   once, as a sparse matrix product (an inverted index of fingerprints); above that the pairs
   scored are those MinHash LSH (``datasketch``) or an index of the rare fingerprints puts
   forward, so a class of 10,000 is not 50 million comparisons. Pairs at or above the
   threshold are linked into clusters (connected components).

A notebook that is not JSON, a huge cell or an answer with a syntax error gives one line in
problems.csv; every other submission is compared as usual.
"""

from __future__ import annotations

import ast
import copy
import csv
import hashlib
import html
import io
import json
import math
import re
import tokenize
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .course import grade_id, is_answer_cell, one_line, part_notebook, read_regular_file

K = 10                 # tokens per fingerprint
WINDOW = 4             # winnowing window: a match of K + WINDOW - 1 tokens is always seen
THRESHOLD = 0.6        # pairs at or above this score are listed as similar and clustered
MIN_SHARED = 2.5       # shared weight (about that many rare fingerprints) below which a pair scores 0
MAX_CELL_CHARS = 50_000   # an answer cell longer than this is left out (a real answer is ~2,000)
MAX_TOKENS = 20_000    # tokens per submission compared at most
RARE_DF = 50           # above EXACT_UP_TO, the rare index holds fingerprints found in 2..50 submissions
SHOWN_PAIRS = 100      # pairs shown side by side in index.html (all of them are in pairs.csv)
EXACT_UP_TO = 3_000    # up to this many submissions every pair is scored (a sparse matrix product)
LSH_THRESHOLD = 0.3    # above it, candidates: MinHash LSH at this Jaccard, and the rare-fingerprint index
LSH_PERMUTATIONS = 128

FIELDS = {
    "pairs.csv": ["part", "student_a", "student_b", "score", "shared", "cells", "cluster"],
    "clusters.csv": ["part", "cluster", "size", "students", "max_score"],
    "problems.csv": ["student", "part", "reason"],
}


# ---------------------------------------------------------------------------
# Normalising one cell: a list of units (tokens with the original lines they came from)
# ---------------------------------------------------------------------------

@dataclass
class Unit:
    """A statement (or a compound statement's header) after normalising: its tokens and the lines
    of the original cell it came from."""

    tokens: list[str]
    first: int
    last: int


_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|[A-Za-z_]\w*|\d[\w.]*|\S")
_PREFIXES = {"f", "b", "r", "u", "rb", "br", "fr", "rf"}
_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()", "### BEGIN SOLUTION", "### END SOLUTION")


def _without_magics(source: str) -> str:
    """IPython's ``%magic`` and ``!shell`` lines blanked, the release's ``raise NotImplementedError()``
    made a ``pass`` (a body of its own, dropped later as dead code): line numbers stay."""
    out = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == "raise NotImplementedError()":
            out.append(line[:len(line) - len(line.lstrip())] + "pass")
        else:
            out.append("" if stripped.startswith(("%", "!")) or stripped in _STUB else line)
    return "\n".join(out)


def _flat(tokens: list[str]) -> tuple[str, ...]:
    """A unit's tokens with every placeholder the same: how scaffold units are recognised."""
    return tuple("V" if t[:1] == "V" and t[1:].isdigit() else t for t in tokens)


def _is_dead(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
        return True  # docstrings, ``...``, bare numbers
    if isinstance(stmt, (ast.If, ast.While)) and isinstance(stmt.test, ast.Constant) and not stmt.test.value:
        return not stmt.orelse
    return False


def _live(body: list[ast.stmt]) -> list[ast.stmt]:
    """``body`` without dead statements, and without what follows a return, raise, break or continue."""
    out = []
    for stmt in body:
        if _is_dead(stmt):
            continue
        out.append(stmt)
        if isinstance(stmt, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
            break
    return out


class _Binder(ast.NodeVisitor):
    """Names the answers bind (renamed later) and import aliases (replaced by the module's name)."""

    def __init__(self):
        self.bound: set[str] = set()
        self.attrs: set[str] = set()
        self.imports: dict[str, str] = {}

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.bound.add(node.id)

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Store):
            self.attrs.add(node.attr)
        self.generic_visit(node)

    def visit_arg(self, node):
        self.bound.add(node.arg)
        self.generic_visit(node)

    def _define(self, node):
        self.bound.add(node.name)
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _define

    def visit_ExceptHandler(self, node):
        if node.name:
            self.bound.add(node.name)
        self.generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            top = alias.name.split(".")[0]
            self.imports[alias.asname or top] = alias.name if alias.asname else top

    def visit_ImportFrom(self, node):
        for alias in node.names:
            self.imports[alias.asname or alias.name] = f"{node.module or ''}.{alias.name}"


def _place(node: ast.AST) -> str | None:
    """``x``, ``x.a`` or ``x['k']`` (a constant key) for a stored target; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _place(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        base = _place(node.value)
        return f"{base}[{node.slice.value!r}]" if base else None
    if isinstance(node, ast.Subscript):
        return _place(node.value)
    return None


def _names(node: ast.AST) -> tuple[set[str], set[str]]:
    """(reads, writes) of a statement: names read, and places written (``x``, ``self.fc1``,
    ``d['key']``); a call ``x.f(...)`` whose value is not used counts as changing ``x``."""
    reads, writes, bases = set(), set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            place = _place(sub)
            if place:
                writes.add(place)
                base = sub.value
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                bases.add(id(base))
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if isinstance(sub.ctx, (ast.Store, ast.Del)):
                writes.add(sub.id)
            elif id(sub) not in bases:
                reads.add(sub.id)
        elif (isinstance(sub, ast.Expr) and isinstance(sub.value, ast.Call)
              and isinstance(sub.value.func, ast.Attribute)):
            base = sub.value.func.value  # a call for its effect: ``x.append(...)``, ``optimizer.step()``
            while isinstance(base, (ast.Attribute, ast.Subscript, ast.Call)):
                base = base.func if isinstance(base, ast.Call) else base.value
            if isinstance(base, ast.Name):
                writes.add(base.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            writes.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            writes.update(a.asname or a.name.split(".")[0] for a in sub.names)
    return reads, writes


def _conflict(writes: set[str], other: set[str]) -> bool:
    """Whether a statement writing ``writes`` and one touching ``other`` must keep their order:
    the same place, or one inside the other (``d`` and ``d['k']``)."""
    for w in writes:
        for o in other:
            if w == o or w.startswith((o + ".", o + "[")) or o.startswith((w + ".", w + "[")):
                return True
    return False


_BARRIERS = (ast.Return, ast.Raise, ast.Break, ast.Continue, ast.Global, ast.Nonlocal)


class _Normaliser:
    """One cell (or several: the renaming is shared) turned into units."""

    def __init__(self, bound: set[str], attrs: set[str], imports: dict[str, str]):
        self.bound, self.attrs, self.imports = bound, attrs, imports
        self.renamed: dict[str, str] = {}

    # names -------------------------------------------------------------------
    def name(self, ident: str) -> str:
        if ident in self.bound:
            if ident not in self.renamed:
                self.renamed[ident] = f"V{len(self.renamed)}"
            return self.renamed[ident]
        return self.imports.get(ident, ident)

    def key(self, stmt: ast.stmt) -> str:
        """The canonical-order key: the statement with every bound name as ``V`` (no numbering)."""
        return " ".join(self.text_tokens(ast.unparse(stmt), flat=True))

    def text_tokens(self, text: str, flat: bool = False) -> list[str]:
        """Tokens of unparsed code: bound names numbered (or all ``V`` when ``flat``), attributes
        set on an object likewise, import aliases the module's name, strings ``'S'``."""
        out, previous = [], ""
        for tok in _TOKEN.findall(text):
            if tok[0] in "'\"":
                if out and out[-1].lower() in _PREFIXES and previous == out[-1]:
                    out.pop()  # f'...', b'...': a string all the same
                out.append("'S'")
            elif tok[0].isalpha() or tok[0] == "_":
                ident = "." + tok if previous == "." else tok
                if ident in self.bound:
                    out.append("V" if flat else self.name(ident))
                else:
                    out.append(tok if previous == "." else self.imports.get(tok, tok))
            else:
                out.append(tok)
            previous = tok
        return out

    # ordering ----------------------------------------------------------------
    def order(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """``body`` in canonical order: dependencies kept, independent statements sorted by key."""
        body = _live(body)
        if len(body) < 2:
            return body
        info = [_names(s) for s in body]
        after: list[set[int]] = [set() for _ in body]   # i must come after every index in after[i]
        for j in range(len(body)):
            rj, wj = info[j]
            for i in range(j):
                ri, wi = info[i]
                if (isinstance(body[i], _BARRIERS) or isinstance(body[j], _BARRIERS)
                        or _conflict(wi, rj | wj) or _conflict(wj, ri)):
                    after[j].add(i)
        keys = [self.key(s) for s in body]
        done: list[int] = []
        left = set(range(len(body)))
        while left:
            ready = [i for i in left if after[i] <= set(done)]
            pick = min(ready, key=lambda i: (keys[i], i))
            done.append(pick)
            left.remove(pick)
        return [body[i] for i in done]

    # units -------------------------------------------------------------------
    def tokens(self, node: ast.AST) -> list[str]:
        return self.text_tokens(ast.unparse(node))

    def units(self, body: list[ast.stmt]) -> Iterable[Unit]:
        for stmt in self.order(body):
            yield from self.unit(stmt)

    def unit(self, stmt: ast.stmt) -> Iterable[Unit]:
        first = stmt.lineno
        last = getattr(stmt, "end_lineno", first) or first
        blocks = [b for b in ("body", "orelse", "finalbody") if getattr(stmt, b, None)]
        if not blocks and not getattr(stmt, "handlers", None):
            yield Unit(self.tokens(stmt), first, last)
            return
        header_end = stmt.body[0].lineno - 1 if getattr(stmt, "body", None) else first
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = copy.copy(stmt.args)
            args.args = [ast.arg(arg=a.arg) for a in stmt.args.args]  # annotations are the scaffold's
            head = ["def", self.name(stmt.name), "("] + self.tokens(args) + [")", ":"]
        elif isinstance(stmt, ast.ClassDef):
            head = ["class", self.name(stmt.name)] + [t for b in stmt.bases for t in self.tokens(b)] + [":"]
        else:
            shell = copy.copy(stmt)
            for b in ("body", "orelse", "finalbody", "handlers"):
                if getattr(shell, b, None):
                    setattr(shell, b, [] if b == "handlers" else [ast.Pass()])
            if hasattr(shell, "handlers") and stmt.handlers:
                shell.handlers = [ast.ExceptHandler(type=None, name=None, body=[ast.Pass()])]
            head = self.text_tokens(ast.unparse(shell).splitlines()[0])
        yield Unit(head, first, max(first, header_end))
        yield from self.units(stmt.body)
        yield Unit(["}"], last, last)
        for handler in getattr(stmt, "handlers", []) or []:
            words = ["except"] + (self.tokens(handler.type) if handler.type else []) + [":"]
            yield Unit(words, handler.lineno, handler.lineno)
            yield from self.units(handler.body)
        for b in ("orelse", "finalbody"):
            if getattr(stmt, b, None):
                yield Unit([b, ":"], first, first)
                yield from self.units(getattr(stmt, b))


def _token_units(source: str) -> list[Unit]:
    """A cell that does not parse: one unit per line, comments and strings dropped, identifiers
    renamed in order of first use (Python keywords and dotted attributes kept)."""
    import keyword

    renamed: dict[str, str] = {}
    units = []
    source = _without_magics(source)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
        for number, line in enumerate(source.splitlines(), 1):
            for match in _TOKEN.finditer(line.split("#")[0]):
                tokens.append(tokenize.TokenInfo(tokenize.NAME if match.group()[0].isalpha() else tokenize.OP,
                                                 match.group(), (number, match.start()), (number, match.end()), line))
    by_line: dict[int, list[str]] = defaultdict(list)
    previous = ""
    for tok in tokens:
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER) or not tok.string.strip():
            continue
        text = tok.string
        if tok.type == tokenize.STRING or text[:1] in "'\"":
            text = "'S'"
        elif tok.type == tokenize.NAME and not keyword.iskeyword(text) and previous != ".":
            text = renamed.setdefault(text, f"V{len(renamed)}")
        by_line[tok.start[0]].append(text)
        previous = tok.string
    for number in sorted(by_line):
        units.append(Unit(by_line[number], number, number))
    return units


# ---------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------

def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _local(tokens: list[str]) -> str:
    """The k-gram's text with its placeholders numbered again from its own first one: a statement
    added or removed elsewhere (dead code) does not change the numbers inside this window."""
    seen: dict[str, str] = {}
    return " ".join(seen.setdefault(t, f"v{len(seen)}") if t[:1] == "V" and t[1:].isdigit() else t for t in tokens)


def winnow(hashes: list[int], window: int = WINDOW) -> list[int]:
    """Positions kept by winnowing (Schleimer, Wilkerson and Aiken 2003): the rightmost smallest
    hash of every ``window`` consecutive ones, each position once."""
    if len(hashes) <= window:
        return [min(range(len(hashes)), key=lambda i: (hashes[i], -i))] if hashes else []
    keep, last = [], -1
    for start in range(len(hashes) - window + 1):
        pick = min(range(start, start + window), key=lambda i: (hashes[i], -i))
        if pick != last:
            keep.append(pick)
            last = pick
    return keep


def fingerprints(units: list[Unit], salt: str = "", k: int | None = None, window: int | None = None
                 ) -> dict[int, list[int]]:
    """{fingerprint: [original line numbers it covers]} of a normalised cell (``k`` tokens in a row,
    winnowed with ``window``; default K and WINDOW); ``salt`` (the grade id) keeps the same code in
    two exercises apart."""
    k, window = k or K, window or WINDOW
    flat, lines = [], []
    for unit in units:
        flat.extend(unit.tokens)
        span = list(range(unit.first, unit.last + 1))
        lines.extend([span] * len(unit.tokens))
    if not flat:
        return {}
    if len(flat) < k:
        return {_hash(salt + "\x1f" + _local(flat)): sorted({n for s in lines for n in s})}
    grams = [_hash(salt + "\x1f" + _local(flat[i:i + k])) for i in range(len(flat) - k + 1)]
    out: dict[int, list[int]] = {}
    for i in winnow(grams, window):
        covered = out.setdefault(grams[i], [])
        covered.extend(n for s in lines[i:i + k] for n in s if n not in covered)
    return out


# ---------------------------------------------------------------------------
# Submissions
# ---------------------------------------------------------------------------

@dataclass
class Answers:
    """One student's answer cells of one part, fingerprinted."""

    student: str
    cells: dict[str, str] = field(default_factory=dict)        # grade id -> source
    prints: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # grade id -> fingerprints
    problems: list[str] = field(default_factory=list)

    def all_prints(self) -> set[tuple[str, int]]:
        return {(gid, f) for gid, fps in self.prints.items() for f in fps}


def answer_cells(nb: dict) -> dict[str, str]:
    """{grade id: source} of the answer cells (nbgrader's ``solution``) of a notebook's JSON, the
    first cell of each id; code cells only."""
    out: dict[str, str] = {}
    for cell in nb.get("cells") or []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code" or not is_answer_cell(cell):
            continue
        gid = grade_id(cell) or f"cell-{len(out)}"
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        out.setdefault(str(gid), source)
    return out


def normalise(cells: dict[str, str]) -> tuple[dict[str, list[Unit]], list[str]]:
    """{grade id: units} of a submission's answer cells (the renaming is shared by its cells),
    and the problems met (one line each)."""
    problems, trees = [], {}
    binder = _Binder()
    for gid, source in cells.items():
        if len(source) > MAX_CELL_CHARS:
            problems.append(f"answer cell {gid} is {len(source):,} characters (limit {MAX_CELL_CHARS:,}): left out")
            continue
        try:
            tree = ast.parse(_without_magics(source))
            binder.visit(tree)
            trees[gid] = tree
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
            problems.append(f"answer cell {gid} does not parse{where}: compared token by token")
            trees[gid] = None
    bound = binder.bound | {"." + a for a in binder.attrs}
    units: dict[str, list[Unit]] = {}
    total = 0
    for gid, tree in trees.items():
        try:  # numbering starts again in each cell: an answer left empty above shifts nothing
            norm = _Normaliser(bound, binder.attrs, binder.imports)
            units[gid] = list(norm.units(tree.body)) if tree is not None else _token_units(cells[gid])
        except (RecursionError, MemoryError, ValueError):
            problems.append(f"answer cell {gid} is nested too deeply to normalise: compared token by token")
            units[gid] = _token_units(cells[gid])
        count = sum(len(u.tokens) for u in units[gid])
        if total + count > MAX_TOKENS:
            problems.append(f"answer cell {gid}: over {MAX_TOKENS:,} tokens in the answers: left out")
            units.pop(gid)
            continue
        total += count
    return units, problems


def fingerprint_cells(cells: dict[str, str], scaffold: dict[str, Counter] | None = None
                      ) -> tuple[dict[str, dict[int, list[int]]], list[str]]:
    """Fingerprints of a submission's answer cells, and the problems met; ``scaffold``: the
    released cells' units ({grade id: Counter of flat units}), taken out first."""
    units, problems = normalise(cells)
    out = {}
    for gid, cell in units.items():
        given = Counter((scaffold or {}).get(gid, ()))
        kept = []
        for unit in cell:
            key = _flat(unit.tokens)
            if given[key] > 0:
                given[key] -= 1
            else:
                kept.append(unit)
        out[gid] = fingerprints(kept, salt=gid)
    return out, problems


def read_answers(path: Path, student: str, given: dict[str, Counter] | None = None) -> Answers:
    """A submitted notebook's answers; never raises (problems are recorded on the result)."""
    answers = Answers(student)
    try:
        nb = json.loads(read_regular_file(path).decode("utf-8", errors="replace"))
        if not isinstance(nb, dict):
            raise ValueError("the file is JSON but not a notebook")
    except (OSError, ValueError) as exc:
        reason = f"not JSON ({exc})" if isinstance(exc, json.JSONDecodeError) else str(exc)
        answers.problems.append(one_line(f"{path.name} could not be read: {reason}"))
        return answers
    answers.cells = answer_cells(nb)
    if not answers.cells:
        answers.problems.append("no answer cell (nbgrader metadata missing or changed)")
    answers.prints, problems = fingerprint_cells(answers.cells, given)
    answers.problems += [one_line(p) for p in problems]
    return answers


def scaffold(course: Path, part: str) -> dict[str, Counter]:
    """{grade id: Counter of flat units} of what every learner starts with: the released
    notebook's answer cells (or the solution's with the BEGIN/END SOLUTION region taken out)."""
    released = part_notebook(part, release=True, course=course)
    source = part_notebook(part, course=course)
    cells: dict[str, str] = {}
    if released.exists():
        cells = answer_cells(json.loads(released.read_text()))
    elif source.exists():
        for gid, text in answer_cells(json.loads(source.read_text())).items():
            cells[gid] = re.sub(r"(?ms)^[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[ \t]*$", "", text)
    return scaffold_units(cells)


def scaffold_units(cells: dict[str, str]) -> dict[str, Counter]:
    """{grade id: Counter of flat units} of released answer cells (see :func:`scaffold`)."""
    units, _ = normalise(cells)
    return {gid: Counter(_flat(u.tokens) for u in cell) for gid, cell in units.items()}


# ---------------------------------------------------------------------------
# Comparing a class
# ---------------------------------------------------------------------------

@dataclass
class Pair:
    a: int
    b: int
    score: float
    shared: float
    cells: list[str]
    cluster: int = 0


@dataclass
class Result:
    """The comparison of one part's submissions."""

    part: str
    subs: list[Answers]
    weights: dict[tuple[str, int], float]
    pairs: list[Pair]                      # at or above the threshold, best first
    clusters: list[list[int]]              # indices into subs, biggest first
    threshold: float


def compare(subs: list[Answers], threshold: float = THRESHOLD, min_shared: float = MIN_SHARED,
            part: str = "") -> Result:
    """Score every pair of ``subs``: exactly (a sparse matrix product over every fingerprint) up to
    EXACT_UP_TO submissions; above that, the pairs that MinHash LSH or the index of rare
    fingerprints put forward."""
    sets = [s.all_prints() for s in subs]
    n = len(subs)
    df: dict[tuple[str, int], int] = defaultdict(int)
    for fps in sets:
        for f in fps:
            df[f] += 1
    scale = math.log(n + 1) if n > 1 else 1.0
    weights = {f: math.log((n + 1) / d) / scale for f, d in df.items()}
    totals = [sum(weights[f] for f in fps) for fps in sets]

    if n <= EXACT_UP_TO:
        shared = _shared(sets, weights, {f for f, d in df.items() if d >= 2}, min_shared)
    else:
        shared = {}
        candidates = _lsh_candidates(sets) | set(_shared(sets, weights, _rare(df), min_shared / 2))
        for a, b in candidates:
            shared[(a, b)] = sum(weights[f] for f in sets[a] & sets[b])
    pairs: list[Pair] = []
    for (a, b), weight in shared.items():
        smaller = min(totals[a], totals[b])
        if weight < min_shared or not smaller or weight / smaller < threshold:
            continue
        cells = sorted({gid for gid, f in sets[a] & sets[b] if weights[(gid, f)] > 0})
        pairs.append(Pair(a, b, round(min(weight / smaller, 1.0), 3), round(weight, 2), cells))
    pairs.sort(key=lambda p: (-p.score, -p.shared, subs[p.a].student, subs[p.b].student))
    clusters = _components(n, pairs)
    for number, members in enumerate(clusters, 1):
        for p in pairs:
            if p.a in members:
                p.cluster = number
    return Result(part, subs, weights, pairs, clusters, threshold)


def _rare(df: dict) -> set:
    return {f for f, d in df.items() if 2 <= d <= RARE_DF}


def _shared(sets: list[set], weights: dict, keep: set, floor: float) -> dict[tuple[int, int], float]:
    """{(a, b): weight shared} for every pair (a < b) sharing at least ``floor`` of weight among the
    fingerprints in ``keep``: an inverted index as a sparse matrix product (submissions x
    fingerprints, weighted, times its 0/1 transpose)."""
    import numpy as np
    from scipy import sparse

    column = {f: i for i, f in enumerate(keep)}
    rows, cols, vals = [], [], []
    for r, fps in enumerate(sets):
        for f in fps:
            c = column.get(f)
            if c is not None:
                rows.append(r)
                cols.append(c)
                vals.append(weights[f])
    if not column or len(sets) < 2:
        return {}
    x = sparse.csr_matrix((np.asarray(vals, dtype=float), (rows, cols)), shape=(len(sets), len(column)))
    binary = x.copy()
    binary.data[:] = 1.0
    product = sparse.triu(x @ binary.T, k=1).tocoo()
    keep_ = product.data >= floor
    return {(int(a), int(b)): float(v)
            for a, b, v in zip(product.row[keep_], product.col[keep_], product.data[keep_], strict=True)}


def _lsh_candidates(sets: list[set]) -> set[tuple[int, int]]:
    """Pairs whose fingerprint sets MinHash LSH (datasketch) finds alike (Jaccard about
    LSH_THRESHOLD or more): copies built from common pieces, whose every fingerprint is frequent."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=LSH_PERMUTATIONS)
    found = set()
    for i, fps in enumerate(sets):
        if not fps:
            continue
        m = MinHash(num_perm=LSH_PERMUTATIONS, seed=1, hashfunc=int)
        m.update_batch([_hash(f"{gid}:{f}") & 0xFFFFFFFF for gid, f in fps])
        for j in lsh.query(m):
            found.add((j, i))
        lsh.insert(i, m)
    return found


def _components(n: int, pairs: list[Pair]) -> list[list[int]]:
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for p in pairs:
        parent[root(p.a)] = root(p.b)
    groups: dict[int, set[int]] = defaultdict(set)
    for p in pairs:
        groups[root(p.a)].update((p.a, p.b))
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def class_answers(course: Path, part: str, graded: bool = False, progress: bool = True) -> list[Answers]:
    """Every student's answers to ``part``: ``submitted/*/<part>/<part>.ipynb`` (or ``autograded/``),
    the part's scaffold taken out."""
    from tqdm.auto import tqdm

    given = scaffold(course, part)
    base = Path(course) / ("autograded" if graded else "submitted")
    folders = sorted(p for p in base.glob(f"*/{part}")  # not hidden folders (autograded/.logs)
                     if p.is_dir() and not p.parent.name.startswith(".")) if base.is_dir() else []
    subs = []
    for folder in tqdm(folders, desc=f"similarity {part}", unit="submission", mininterval=1.0,
                       disable=not progress or len(folders) < 50, leave=False):
        student = folder.parent.name
        notebook = folder / f"{part}.ipynb"
        if not notebook.exists() and not notebook.is_symlink():
            found = sorted(folder.glob("*.ipynb"))
            if not found:
                subs.append(Answers(student, problems=["no notebook in the submission"]))
                continue
            notebook = found[0]
        subs.append(read_answers(notebook, student, given))
    return subs


def submitted_parts(course: Path, graded: bool = False) -> list[str]:
    """Parts that have at least one submission in the course, in course order."""
    from .course import PART_NAMES

    base = Path(course) / ("autograded" if graded else "submitted")
    found = {p.name for p in base.glob("*/*") if p.is_dir() and not p.parent.name.startswith(".")
             } if base.is_dir() else set()
    return [p for p in PART_NAMES if p in found] + sorted(found - set(PART_NAMES))


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 80em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } .none { color: #666; font-style: italic; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em; } .side > div { min-width: 0; }
pre { background: #fafafa; border: 1px solid #ddd; padding: 0.4em; overflow-x: auto; font-size: 0.85em; margin: 0; }
pre span { display: block; } pre span.match { background: #ffe08a; }
.note { background: #eef5ff; border-left: 4px solid #4a86e8; padding: 0.4em 0.8em; }
"""

NOTE = ("A list of answers to read, not a verdict: similar code is often honest (a small exercise, a shared "
        "tutorial, a study group). Nothing here changes a grade.")


def _marked(source: str, lines: set[int]) -> str:
    rows = []
    for number, line in enumerate(source.splitlines() or [""], 1):
        cls = " class='match'" if number in lines else ""
        rows.append(f"<span{cls}>{html.escape(line) or ' '}</span>")
    return "<pre>" + "".join(rows) + "</pre>"


def _side_by_side(result: Result, pair: Pair) -> str:
    a, b = result.subs[pair.a], result.subs[pair.b]
    blocks = []
    for gid in pair.cells:
        fa, fb = a.prints.get(gid, {}), b.prints.get(gid, {})
        common = {f for f in fa.keys() & fb.keys() if result.weights.get((gid, f), 0) > 0}
        if not common:
            continue
        weight = sum(result.weights[(gid, f)] for f in common)
        la = {n for f in common for n in fa[f]}
        lb = {n for f in common for n in fb[f]}
        blocks.append(f"<h4>{html.escape(gid)} — {len(common)} matching fingerprint(s), weight {weight:.2f}</h4>"
                      f"<div class='side'><div><b>{html.escape(a.student)}</b>{_marked(a.cells[gid], la)}</div>"
                      f"<div><b>{html.escape(b.student)}</b>{_marked(b.cells[gid], lb)}</div></div>")
    return "".join(blocks)


def _table(rows: list[dict], fields: list[str], limit: int | None = None) -> str:
    if not rows:
        return "<p class='none'>none</p>"
    head = "".join(f"<th>{html.escape(f)}</th>" for f in fields)
    body = "".join("<tr>" + "".join(f"<td>{r.get(f, '')}</td>" for f in fields) + "</tr>" for r in rows[:limit])
    more = f"<p class='none'>{len(rows) - limit} more in the CSV file</p>" if limit and len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def rows(result: Result) -> dict[str, list[dict]]:
    """The CSV tables of one part's result."""
    subs = result.subs
    return {
        "pairs.csv": [{"part": result.part, "student_a": subs[p.a].student, "student_b": subs[p.b].student,
                       "score": p.score, "shared": p.shared, "cells": " ".join(p.cells), "cluster": p.cluster}
                      for p in result.pairs],
        "clusters.csv": [{"part": result.part, "cluster": i, "size": len(members),
                          "students": " ".join(subs[m].student for m in members),
                          "max_score": max(p.score for p in result.pairs if p.cluster == i)}
                         for i, members in enumerate(result.clusters, 1)],
        "problems.csv": [{"student": s.student, "part": result.part, "reason": reason}
                         for s in subs for reason in s.problems],
    }


def write(result: Result, out: Path) -> Path:
    """``out/index.html`` and the CSV files of one part; returns index.html."""
    out.mkdir(parents=True, exist_ok=True)
    tables = rows(result)
    for name, table in tables.items():
        _write_csv(out / name, table, FIELDS[name])
    e = html.escape
    ranked = [{"#": f"<a href='#pair-{i}'>{i}</a>", "student_a": e(r["student_a"]), "student_b": e(r["student_b"]),
               "score": r["score"], "shared": r["shared"], "cells": e(r["cells"]), "cluster": r["cluster"]}
              for i, r in enumerate(tables["pairs.csv"], 1)]
    clusters = [{k: e(str(v)) for k, v in r.items()} for r in tables["clusters.csv"]]
    problems = [{k: e(str(v)) for k, v in r.items()} for r in tables["problems.csv"]]
    details = "".join(f"<h3 id='pair-{i}'>{i}. {e(result.subs[p.a].student)} and {e(result.subs[p.b].student)}: "
                      f"score {p.score}, shared weight {p.shared}</h3>{_side_by_side(result, p)}"
                      for i, p in enumerate(result.pairs[:SHOWN_PAIRS], 1))
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Similar answers: "
            f"{e(result.part)}</title><style>{STYLE}</style></head><body><h1>Similar answers: {e(result.part)}</h1>"
            f"<p class='note'>{e(NOTE)}</p>"
            f"<p>{len(result.subs)} submission(s), {len(result.pairs)} pair(s) at or above score "
            f"{result.threshold} in {len(result.clusters)} cluster(s). Score: the rarity-weighted code two "
            f"submissions share over the weight of the smaller (1.0: one contains the other); the released "
            f"scaffold and code most of the class writes the same way weigh nothing. Marked lines hold "
            f"matching code.</p>"
            f"<h2>Pairs</h2>{_table(ranked, ['#', 'student_a', 'student_b', 'score', 'shared', 'cells', 'cluster'])}"
            f"<p><a href='pairs.csv'>pairs.csv</a></p>"
            f"<h2>Clusters</h2>{_table(clusters, FIELDS['clusters.csv'][1:])}"
            f"<p><a href='clusters.csv'>clusters.csv</a></p>"
            f"<h2>Could not be compared as submitted</h2>{_table(problems, FIELDS['problems.csv'])}"
            f"<p><a href='problems.csv'>problems.csv</a></p>"
            f"<h2>Side by side</h2>{details or '<p class=none>no pair</p>'}</body></html>")
    index = out / "index.html"
    index.write_text(page)
    return index


def run(course: Path, parts: list[str] | None = None, out: Path | None = None, threshold: float = THRESHOLD,
        graded: bool = False, say=print, progress: bool = True) -> dict[str, Result]:
    """Compare every part in ``parts`` (default: every part with submissions) and write
    ``out/<part>/``; returns {part: Result}. Never touches the gradebook."""
    course = Path(course).resolve()
    out = Path(out) if out else course / "report" / "similarity"
    out = out if out.is_absolute() else course / out
    results = {}
    for part in parts or submitted_parts(course, graded):
        subs = class_answers(course, part, graded, progress)
        result = compare(subs, threshold, part=part)
        index = write(result, out / part)
        problems = sum(len(s.problems) for s in subs)
        say(f"{part}: {len(subs)} submission(s), {len(result.pairs)} similar pair(s), "
            f"{len(result.clusters)} cluster(s), {problems} problem(s): {index}")
        results[part] = result
    return results


def report_section(course: Path, out: Path, say=print) -> str:
    """The class report's section: similar pairs per part, written under ``out/similarity/``;
    a failure is one line in the section, never the end of the report."""
    try:
        results = run(course, out=Path(out) / "similarity", say=say, progress=False)
    except Exception as exc:  # noqa: BLE001 - the rest of the report must still be written
        return (f"<h2>Similar answers</h2><p class='none'>not computed: "
                f"{html.escape(one_line(f'{type(exc).__name__}: {exc}'))}</p>")
    if not results:
        return "<h2>Similar answers</h2><p class='none'>no submissions in submitted/</p>"
    rows_ = []
    for part, result in results.items():
        top = result.pairs[0] if result.pairs else None
        best = f"{result.subs[top.a].student} / {result.subs[top.b].student}: {top.score}" if top else ""
        rows_.append(f"<tr><td><a href='similarity/{html.escape(part)}/index.html'>{html.escape(part)}</a></td>"
                     f"<td>{len(result.subs)}</td><td>{len(result.pairs)}</td><td>{len(result.clusters)}</td>"
                     f"<td>{html.escape(best)}</td>"
                     f"<td>{sum(len(s.problems) for s in result.subs)}</td></tr>")
    return ("<h2>Similar answers</h2><p>" + html.escape(NOTE) + "</p><table><tr><th>part</th><th>submissions</th>"
            "<th>similar pairs</th><th>clusters</th><th>most similar</th><th>problems</th></tr>"
            + "".join(rows_) + "</table>")
