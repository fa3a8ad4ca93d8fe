"""What the course-wide notebook checks of ``tests/parts/`` share: the cells of a part (solution or
released copy), their sources as plain Python, the comparisons a test cell makes, and a runner
that executes a solution's cells in this process (no kernel).

A comparison is ``a == b`` / ``a != b``, or a call of ``torch.allclose``, ``torch.equal``,
``torch.isclose``, ``math.isclose``, ``numpy.allclose``, ``torch.testing.assert_close``,
``numpy.testing.assert_allclose`` and the like (also as a method: ``a.allclose(b)``): its
operands are the values compared.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from collections.abc import Iterator

import nbformat

from instructor.course import ROOT

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)
# What a test compares with: a function (or method) of these names, given both values.
COMPARING = frozenset({"allclose", "equal", "isclose", "assert_close", "assert_allclose", "assert_array_equal",
                       "assert_array_almost_equal", "array_equal", "assert_equal", "assertEqual"})


def parts() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("solutions/*/*.ipynb"))


def solution(part: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)


def released(part: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / part / f"{part}.ipynb", as_version=4)


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def is_test(cell) -> bool:
    return cell.cell_type == "code" and bool(meta(cell).get("grade")) and not meta(cell).get("solution")


def is_answer(cell) -> bool:
    return cell.cell_type == "code" and bool(meta(cell).get("solution")) and not meta(cell).get("grade")


def label(cell, index: int) -> str:
    gid = meta(cell).get("grade_id")
    return f"cell {index}" + (f" ({gid})" if gid else "")


def visible(source: str) -> str:
    """A test cell as nbgrader releases it: the hidden block removed."""
    return HIDDEN.sub("", source + "\n")


def python(source: str) -> str:
    """A cell's source as plain Python: IPython magics and shell lines become ``pass``, solution
    markers stay comments."""
    return re.sub(r"^([ \t]*)[%!].*$", r"\1pass", source, flags=re.M) + "\n"


def parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(python(source))
    except SyntaxError:
        return None


def learner_names(nb) -> set[str]:
    """The functions and classes the part's answer cells define (at their top level)."""
    names = set()
    for cell in nb.cells:
        tree = parse(cell.source) if is_answer(cell) else None
        names |= {n.name for n in (tree.body if tree else [])
                  if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return names


def comparisons(tree: ast.AST, ordered: bool = False) -> Iterator[tuple[ast.AST, list[ast.expr]]]:
    """Every comparison in ``tree`` (see the module's docstring) with the two values it compares;
    ``ordered``: a threshold's too (``<``, ``<=``, ``>``, ``>=``: ``accuracy > 0.8``)."""
    ops = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE) if ordered else (ast.Eq, ast.NotEq)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ops) for op in node.ops):
            yield node, [node.left, *node.comparators]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name not in COMPARING:
                continue
            if len(node.args) >= 2:
                yield node, list(node.args[:2])
            elif len(node.args) == 1 and isinstance(func, ast.Attribute) and not _module_like(func.value):
                yield node, [func.value, node.args[0]]


def _module_like(node: ast.AST) -> bool:
    """``torch``, ``np.testing``: a module's name, not a value (a method call's object)."""
    root = node
    while isinstance(root, ast.Attribute):
        root = root.value
    return isinstance(root, ast.Name) and root.id in {"torch", "np", "numpy", "math", "testing", "self"}


def run(source: str, namespace: dict, name: str) -> None:
    """Run a cell's source in ``namespace``, its printing swallowed."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(python(source), name, "exec"), namespace)  # noqa: S102 - the course's own cells


def fails_on_purpose(cell) -> bool:
    return "raises-exception" in cell.metadata.get("tags", []) or "NBVAL_RAISES_EXCEPTION" in cell.source


def is_setup(cell, index: int) -> bool:
    """The course setup cell (Colab's install), which runs nothing here."""
    return index <= 1 and "course setup" in cell.source.lower()


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
           ast.GeneratorExp, ast.ClassDef)


def free_names(scope: ast.AST) -> set[str]:
    """The names ``scope`` (a cell, a function, a comprehension) reads that it does not bind itself
    (for a cell: that it reads before binding them)."""
    read: dict[str, int] = {}       # name -> first line read (nested scopes: where they start)
    stored: dict[str, int] = {}     # name -> first line bound
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        stored |= {a.arg: 0 for a in ast.walk(scope.args) if isinstance(a, ast.arg)}
        body = scope.body if isinstance(scope.body, list) else [scope.body]
    elif isinstance(scope, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        body = [*scope.generators, *([scope.key, scope.value] if isinstance(scope, ast.DictComp) else [scope.elt])]
        stored |= {n.id: 0 for g in scope.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
    else:
        body = scope.body if isinstance(scope, (ast.Module, ast.ClassDef)) else [scope]

    def note(table, name, line):
        table[name] = min(table.get(name, line), line)

    todo = list(body)
    while todo:
        node = todo.pop()
        line = getattr(node, "lineno", 0)
        if isinstance(node, _SCOPES):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                note(stored, node.name, line)
                todo.extend(node.decorator_list)
            for name in free_names(node):
                note(read, name, line)
            continue
        if isinstance(node, ast.Name):
            note(read if isinstance(node.ctx, ast.Load) else stored, node.id, line)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            note(stored, node.name, line)
        todo.extend(ast.iter_child_nodes(node))
    if isinstance(scope, ast.Module):
        return {name for name, line in read.items() if name not in stored or line <= stored[name]}
    return set(read) - set(stored)


def _loads_and_binds(tree: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """(names read, names bound at the cell's level, names changed in place: an attribute or item
    assigned, a method called, or passed to a call in a statement of their own)."""
    loads = free_names(tree)
    binds, changed = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            binds.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            binds |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            changed.add(_root(node.value))
        elif isinstance(node, ast.Call):   # its receiver (x.step()) and its arguments (fit(model, ...))
            if isinstance(node.func, ast.Attribute):
                changed.add(_root(node.func.value))
            changed |= {_root(a) for a in (*node.args, *(k.value for k in node.keywords))}
    return loads, binds, changed


def _root(node: ast.AST) -> str | None:
    """``model`` for ``model.fc1.weight[0]``; None for anything but a name's attribute or item."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def needed_cells(nb, upto: int) -> set[int]:
    """The code cells before ``upto`` (its index included) that the answers and tests up to there
    need: every answer and test cell, the first two code cells (setup and imports), and every cell
    that binds, or may change in place, a name a needed cell reads (transitively, going back)."""
    codes = [i for i, c in enumerate(nb.cells[:upto + 1]) if c.cell_type == "code"]
    keep, needed = set(codes[:2]), set()
    modules = {n for i in codes for t in [parse(nb.cells[i].source)] if t for n in _imports(t)}  # imported, not made
    for i in reversed(codes):
        cell = nb.cells[i]
        tree = parse(cell.source)
        if tree is None:
            continue
        loads, binds, changed = _loads_and_binds(tree)
        if i in keep or is_answer(cell) or is_test(cell) or binds & needed or changed & needed:
            keep.add(i)
            needed |= loads - modules
    return keep


def _imports(tree: ast.AST) -> list[str]:
    return [(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names]
