"""Reading a cell as Python (IPython syntax turned into Python the way IPython does, line
numbers kept) and what a whole notebook imports and binds: the context the scanner resolves
names in."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from .rules import DEFAULT_IMPORTS, KNOWN_MODULES


@dataclass
class Context:
    """What a whole notebook imports and binds, across all its cells."""

    imports: dict[str, str]          # name -> dotted module path, from every import in the notebook
    modules: set[str]                # names among those that are modules
    bound: set[str]                  # every name any cell binds (assignments, defs, imports)


def import_bindings(tree: ast.AST) -> Iterable[tuple[str, str, bool, ast.AST]]:
    """(name, dotted path, is_module, node) for every import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    yield alias.asname, alias.name, True, node
                else:
                    top = alias.name.split(".")[0]
                    yield top, top, True, node
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name == "*":
                    continue
                dotted = f"{node.module}.{alias.name}"
                yield alias.asname or alias.name, dotted, dotted in KNOWN_MODULES, node


def bound_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def parse(source: str) -> tuple[ast.Module | None, SyntaxError | None]:
    """(tree, error): the source as Python; if it is not, first turned into Python the way
    IPython does (``%magic`` -> ``get_ipython().run_line_magic(...)``), lines kept in place."""
    try:
        return ast.parse(source), None
    except SyntaxError as exc:
        error = exc
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return None, SyntaxError(str(exc))
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        python = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython missing or its transformer failed
        return None, error
    # IPython drops leading blank lines: put them back so line numbers match the cell's.
    blank = len(source) - len(source.lstrip("\n \t\r"))
    python = "\n" * source[:blank].count("\n") + python
    try:
        return ast.parse(python), None
    except SyntaxError as exc:
        return None, exc
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, SyntaxError(str(exc))


def context(sources: Iterable[str]) -> Context:
    ctx = Context({}, set(), set())
    for source in sources:
        tree = parse(source)[0]
        if tree is None:
            continue
        for name, dotted, is_module, _ in import_bindings(tree):
            ctx.imports.setdefault(name, dotted)
            if is_module:
                ctx.modules.add(name)
        ctx.bound |= bound_names(tree)
    return ctx


def default_context() -> Context:
    return Context(dict(DEFAULT_IMPORTS), set(DEFAULT_IMPORTS), set(DEFAULT_IMPORTS))


# ---------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------
