"""Reading a cell as Python (IPython syntax turned into Python the way IPython does, line
numbers kept), what a whole notebook imports and binds (the context), and what each name of a
cell refers to in it (:class:`Names`)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from .rules import DEFAULT_IMPORTS, KNOWN_MODULES, builtin_names


@dataclass
class Context:
    """What a whole notebook imports and binds, across all its cells."""

    imports: dict[str, str]          # name -> dotted module path, from every import in the notebook
    modules: set[str]                # names among those that are modules
    bound: set[str]                  # every name any cell binds (assignments, defs, imports)


def targets(target: ast.AST) -> Iterable[ast.AST]:
    """Each name, attribute or item an assignment's target binds (tuples and starred unpacked)."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from targets(elt)
    elif isinstance(target, ast.Starred):
        yield from targets(target.value)
    else:
        yield target


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


class Names:
    """What the names of one parsed cell refer to: imported modules and objects (the notebook's
    and the cell's own imports), names assigned one of them, and the builtins nothing rebinds."""

    def __init__(self, tree: ast.Module, ctx: Context):
        self.unbound_builtins = builtin_names() - ctx.bound - bound_names(tree)
        self.names: dict[str, str] = dict(ctx.imports)     # local name -> dotted path of an external object
        self.modules = set(ctx.modules)
        self.cell_imports: dict[str, str] = {}
        for name, dotted, is_module, _ in import_bindings(tree):
            self.cell_imports[name] = dotted
            self.names[name] = dotted
            if is_module:
                self.modules.add(name)
        self._aliases(tree)

    def _aliases(self, tree: ast.AST) -> None:
        """Names assigned an imported object or a part of one (``T = torch.Tensor``, ``ip =
        get_ipython()``, ``for m in (torch, np)``) become external too."""
        for _ in range(3):
            changed = False
            for node in ast.walk(tree):
                pairs = []
                if isinstance(node, ast.Assign):
                    pairs = [(t, node.value) for t in node.targets]
                elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    pairs = [(node.target, node.value)]
                elif (isinstance(node, (ast.For, ast.comprehension))
                      and isinstance(node.iter, (ast.Tuple, ast.List, ast.Set))):
                    pairs = [(node.target, elt) for elt in node.iter.elts]
                elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                    pairs = [(node.optional_vars, node.context_expr)]
                for target, value in pairs:
                    if isinstance(target, ast.Name) and target.id not in self.names:
                        dotted = self.external(value, alias=True)
                        if dotted:
                            self.names[target.id] = dotted
                            changed = True
            if not changed:
                break

    def external(self, node: ast.AST, alias: bool = False) -> str | None:
        """The dotted path of ``node`` if it is an imported object or reached from one
        (``torch.Tensor.__eq__``, ``sys.modules[...]``, ``type(x)``), else None. With
        ``alias``, a call's result counts only for calls that return existing objects."""
        parts: list[str] = []
        while True:
            if isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            elif isinstance(node, ast.Subscript):
                parts.append("[]")
                node = node.value
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else None
                if name == "get_ipython":
                    root = "get_ipython()"
                    break
                if name in ("type", "vars") and node.args:
                    inner = self.external(node.args[0], alias=True)
                    root = f"{name}({inner or '...'})"
                    break
                if name == "getattr" and node.args:
                    inner = self.external(node.args[0], alias=True)
                    if inner is None:
                        return None
                    root = inner + ".?"
                    break
                if name in ("globals", "locals", "__import__"):
                    root = f"{name}()"
                    break
                dotted = self.external(func, alias=True)
                if dotted and dotted.split(".")[0] in ("importlib", "sys", "builtins"):
                    root = dotted + "()"
                    break
                if alias or not parts:
                    return None   # a call's result: a new object (torch.zeros(3), nn.Linear(2, 3))
                parts.append("()")
                node = func
            elif isinstance(node, ast.Name):
                if node.id in self.names:
                    root = self.names[node.id]
                elif node.id == "__builtins__":
                    root = "builtins"
                elif node.id in self.unbound_builtins:
                    root = node.id    # a builtin (print, AssertionError): its attributes are shared
                else:
                    return None
                break
            else:
                return None
        return ".".join([root, *reversed(parts)]).replace(".[]", "[]").replace(".()", "()")
