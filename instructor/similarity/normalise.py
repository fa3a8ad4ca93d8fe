"""Normalising answer cells with Python's ``ast``: what two answers have in common once names,
comments, strings, dead code and the order of independent statements no longer differ.

    normalise({grade id: source}) -> ({grade id: [Unit]}, problems)

A unit is a statement (or a compound statement's header) as tokens, with the lines of the
original cell it came from; a cell that does not parse is split into units token by token.
Standard library only.
"""

from __future__ import annotations

import ast
import copy
import io
import re
import tokenize
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

MAX_CELL_CHARS = 50_000   # an answer cell longer than this is left out (a real answer is ~2,000)
MAX_TOKENS = 20_000    # tokens per submission compared at most


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


def flat(tokens: list[str]) -> tuple[str, ...]:
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
