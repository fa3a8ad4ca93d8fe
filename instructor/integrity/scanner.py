"""The scan: every code cell a learner can edit, parsed and walked for what could change how the
tests behave. A finding means "needs review"; it never changes a score.

    scan_notebook(nb, locked) -> [Finding]     before the notebook runs
    scan_source(source) -> [Finding]           one cell, with the course's usual imports
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

from ..course import editable_cells, grade_id
from .rules import (
    ALLOWED_STORES,
    DANGEROUS,
    DEFAULT_IMPORTS,
    DUNDER_ATTRS,
    FLAGGED_SHELL_CALLS,
    FRAME_ATTRS,
    FUNCTION_PARTS,
    FUNCTION_PARTS_REASON,
    IPYTHON_ATTRS,
    LYING_METHODS,
    MAGIC_FLAGGED,
    MAGIC_PYTHON,
    SAFE_CONFIG,
    SAFE_EXTENSIONS,
    STORE_DUNDERS,
    STRING_CODE,
    TEST_BUILTINS,
    Finding,
    Hit,
    Priority,
    owner,
    shorten,
    unpickling_reason,
)
from .source import Context, Names, context, default_context, parse, targets
from .spelt import spelt


class _Scanner(Names, ast.NodeVisitor):
    """Collects the :class:`Hit` s of one parsed cell (the lowest :class:`Priority` wins on a line)."""

    def __init__(self, tree: ast.Module, ctx: Context):
        super().__init__(tree, ctx)
        self.ctx = ctx
        self.hits: list[Hit] = []
        self.extra: list[tuple[int, str, int]] = []       # (line, python source, line offset) to scan too
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.functions = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}

    # -- recording ---------------------------------------------------------

    def hit(self, node: ast.AST, reason: str, priority: Priority = Priority.OTHER) -> None:
        self.hits.append(Hit(getattr(node, "lineno", 1), priority, reason))

    def check_dotted(self, node: ast.AST, dotted: str | None, priority: Priority = Priority.DANGEROUS) -> bool:
        if not dotted:
            return False
        parts = dotted.replace("[]", "").replace("()", "").split(".")
        # Every tail too: a module reached through another one's attribute is still itself
        # (torch.serialization.pickle.loads is pickle.loads, os.sys.modules is sys.modules).
        for key, reason in ((k, r) for i in range(len(parts)) for k, r in DANGEROUS.items()
                            if ".".join(parts[i:]) == k or ".".join(parts[i:]).startswith(k + ".")):
            if key == "sys.modules" and self._membership_test(node):
                return False
            self.hit(node, reason, priority)
            return True
        return False

    def _unpickling_load(self, node: ast.Call) -> None:
        """A load that unpickles (UNPICKLING_UNLESS), also through an alias or functools.partial."""
        loader = self.external(node.func, alias=True)
        if loader == "functools.partial" and node.args:
            loader = self.external(node.args[0], alias=True)
        if reason := unpickling_reason(loader, node.keywords):
            self.hit(node, reason, Priority.DANGEROUS)

    def _membership_test(self, node: ast.AST) -> bool:
        """``"google.colab" in sys.modules``: reading whether a module is loaded is harmless."""
        parent = self.parents.get(node)
        return (isinstance(parent, ast.Compare) and node in parent.comparators
                and all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops))

    # -- imports -----------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self.check_dotted(node, alias.name, Priority.INTERNALS):
                self._rebinding_import(node, alias.asname or alias.name.split(".")[0],
                                       alias.name if alias.asname else alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not node.module or node.level:
            return
        for alias in node.names:
            dotted = f"{node.module}.{alias.name}"
            if alias.name == "*":
                self.check_dotted(node, node.module, Priority.INTERNALS)
            elif not self.check_dotted(node, dotted, Priority.INTERNALS):
                if alias.name in IPYTHON_ATTRS:
                    self.hit(node, IPYTHON_ATTRS[alias.name], Priority.SHELL)
                elif alias.name == "get_ipython":
                    self.hit(node, "imports get_ipython: the shell that runs the tests", Priority.INTERNALS)
                else:
                    self._rebinding_import(node, alias.asname or alias.name, dotted)

    def _rebinding_import(self, node: ast.AST, name: str, dotted: str) -> None:
        before = self.ctx.imports.get(name)
        if name in self.ctx.modules and before and before != dotted:
            self.hit(node, f"rebinds {name} (the notebook's {before}) to {dotted}", Priority.INTERNALS)

    # -- names and attributes ---------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "get_ipython":
            self.hit(node, "uses get_ipython(): the shell that runs the tests", Priority.MENTION)
        elif node.id in ("__builtins__", "__import__"):
            self.hit(node, DUNDER_ATTRS[node.id], Priority.INTERNALS)
        elif node.id in IPYTHON_ATTRS and node.id[0].isupper():
            self.hit(node, IPYTHON_ATTRS[node.id], Priority.SHELL)
        elif node.id in ("exec", "eval", "compile", "setattr", "delattr", "globals", "locals", "vars") \
                and node.id in self.unbound_builtins:
            parent = self.parents.get(node)
            if not (isinstance(parent, ast.Call) and parent.func is node):
                self.hit(node, f"passes the builtin {node.id} around (used indirectly)", Priority.DANGEROUS)
        elif isinstance(node.ctx, ast.Load):
            dotted = self.names.get(node.id)
            if dotted and node.id not in self.cell_imports:
                self.check_dotted(node, dotted, Priority.DANGEROUS)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr in IPYTHON_ATTRS:
            self.hit(node, IPYTHON_ATTRS[attr], Priority.SHELL)
        elif attr in ("register", "unregister", "callbacks") and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "events":
            self.hit(node, "registers an IPython event callback (runs around every later cell)", Priority.SHELL)
        elif attr in FRAME_ATTRS:
            self.hit(node, f"walks stack frames (.{attr})", Priority.INTERNALS)
        elif attr in DUNDER_ATTRS:
            self.hit(node, DUNDER_ATTRS[attr], Priority.INTERNALS)
        elif attr == "__dict__" and self.external(node.value):
            self.hit(node, f"reaches the namespace of {self.external(node.value)} (__dict__)", Priority.INTERNALS)
        else:
            parent = self.parents.get(node)
            if not isinstance(parent, ast.Attribute):   # check the whole chain once, at its end
                self.check_dotted(node, self.external(node))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:   # update_wrapper(f, g, ("__code__",))
        if isinstance(node.value, str) and node.value in FUNCTION_PARTS:
            self.hit(node, FUNCTION_PARTS_REASON.format(node.value), Priority.INTERNALS)

    # -- calls --------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if self._shell_call(node):
            return
        name = func.id if isinstance(func, ast.Name) else None
        self._unpickling_load(node)
        if name in STRING_CODE and name in self.unbound_builtins:
            self.hit(node, STRING_CODE[name], Priority.INTERNALS)
        elif name in ("setattr", "delattr") and name in self.unbound_builtins and node.args:
            self._set_on(node, node.args[0], node.args[1] if len(node.args) > 1 else None, name)
        elif isinstance(func, ast.Attribute) and func.attr in ("__setattr__", "__delattr__"):
            owner = func.value
            if isinstance(owner, ast.Name) and owner.id in ("object", "type") and node.args:
                self._set_on(node, node.args[0], node.args[1] if len(node.args) > 1 else None, func.attr)
            else:
                self._set_on(node, owner, node.args[0] if node.args else None, func.attr)
        elif name in ("getattr", "hasattr") and len(node.args) > 1:
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and isinstance(attr.value, str):
                if attr.value in IPYTHON_ATTRS:
                    self.hit(node, IPYTHON_ATTRS[attr.value], Priority.SHELL)
                elif attr.value in FRAME_ATTRS or attr.value in DUNDER_ATTRS:
                    self.hit(node, f"reaches {attr.value} through {name}", Priority.INTERNALS)
        elif name in ("globals", "locals", "vars") and name in self.unbound_builtins:
            self._namespace_write(node, name)
        elif wrapper := self._wrapper(node):   # setattr(wrapper, each of assigned=, ...), updates of updated=
            self._set_on(node, wrapper, None, "functools.update_wrapper")
        elif name in self.functions:
            for arg in node.args:
                if isinstance(arg, ast.Name) and arg.id in self.modules:
                    self.hit(node, f"passes the module {arg.id} to its own function {name}() "
                                   "(which can rebind the module's attributes)", Priority.OTHER)
        self.generic_visit(node)

    def _set_on(self, node: ast.AST, target: ast.AST, attr: ast.AST | None, how: str) -> None:
        dotted = self.external(target)
        attr_name = attr.value if isinstance(attr, ast.Constant) and isinstance(attr.value, str) else None
        if attr_name in IPYTHON_ATTRS:
            self.hit(node, IPYTHON_ATTRS[attr_name], Priority.SHELL)
        elif dotted and not self._allowed_store(dotted, attr_name):
            what = f"{dotted}.{attr_name}" if attr_name else f"an attribute of {dotted}"
            self.hit(node, f"rebinds {what} with {how}, {owner(dotted)}", Priority.REBINDS)
        elif attr_name in STORE_DUNDERS or self._has_class_chain(target):
            self.hit(node, f"rebinds {attr_name or 'an attribute'} of a class with {how}", Priority.REBINDS)

    def _wrapper(self, node: ast.Call) -> ast.AST | None:
        """The object ``functools.update_wrapper(obj, ...)`` or ``functools.wraps(...)(obj)`` changes."""
        func = node.func.func if isinstance(node.func, ast.Call) else node.func
        wanted = "functools.wraps" if isinstance(node.func, ast.Call) else "functools.update_wrapper"
        return node.args[0] if node.args and self.external(func, alias=True) == wanted else None

    @staticmethod
    def _has_class_chain(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Attribute) and n.attr in ("__class__", "__bases__", "__mro__")
                   for n in ast.walk(node))

    @staticmethod
    def _allowed_store(dotted: str, attr: str | None) -> bool:
        full = f"{dotted}.{attr}" if attr else dotted + "."
        return full.startswith(ALLOWED_STORES)

    def _namespace_write(self, node: ast.Call, name: str) -> None:
        if name == "vars" and node.args and self.external(node.args[0]):
            self.hit(node, f"reaches the namespace of {self.external(node.args[0])} (vars)", Priority.SHELL)
            return
        parent = self.parents.get(node)
        if ((isinstance(parent, ast.Subscript) and isinstance(parent.ctx, (ast.Store, ast.Del)))
                or (isinstance(parent, ast.Attribute)
                    and parent.attr in ("update", "setdefault", "pop", "popitem",
                                        "clear", "__setitem__", "__delitem__"))):
            self.hit(node, f"writes into {name}() (rebinds names behind the code's back)", Priority.INTERNALS)

    def _shell_call(self, node: ast.Call) -> bool:
        """``get_ipython().run_line_magic('matplotlib', 'inline')`` and the like, which IPython
        writes for ``%`` and ``!`` lines: judged by the magic; True when fully handled."""
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in FLAGGED_SHELL_CALLS
                and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "get_ipython" and not func.value.args):
            return False
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        if not args or None in args or node.keywords:
            return False  # built at run time: let the generic get_ipython rule flag it
        if func.attr in ("system", "getoutput"):
            return True   # a shell command runs in a separate process
        if func.attr == "magic":
            magic, _, line = args[0].lstrip("%").partition(" ")
            args = [magic, line]
        magic, line = args[0], args[1] if len(args) > 1 else ""
        words = line.split()
        if magic in MAGIC_FLAGGED:
            self.hit(node, MAGIC_FLAGGED[magic], Priority.SHELL)
        elif magic in ("load_ext", "reload_ext", "unload_ext"):
            if not words or words[0] not in SAFE_EXTENSIONS:
                self.hit(node, f"loads an IPython extension (%{magic} {line.strip()}): it gets the shell",
                         Priority.SHELL)
        elif magic == "config":
            if words and not words[0].startswith(SAFE_CONFIG):
                self.hit(node, f"configures IPython (%config {words[0]})", Priority.SHELL)
        elif func.attr == "run_cell_magic" and len(args) > 2:
            body = args[2]
            if magic in MAGIC_PYTHON or magic in ("writefile", "file") and words and words[-1].endswith(".py"):
                self.extra.append((node.lineno, body, node.lineno))
        elif magic in MAGIC_PYTHON and line.strip():
            code = line
            if magic == "timeit":  # options first: %timeit -n 10 -r 3 x = f()
                code = re.sub(r"^(\s*-\w+(\s+\d+)?)*\s*", "", line)
            self.extra.append((node.lineno, code, node.lineno - 1))
        return True

    # -- assignments ---------------------------------------------------------

    def _store(self, target: ast.AST, value: ast.AST | None, how: str = "rebinds") -> None:
        for t in targets(target):
            if isinstance(t, ast.Attribute):
                dotted = self.external(t.value)
                if dotted and not self._allowed_store(dotted, t.attr):
                    self.hit(t, f"{how} {dotted}.{t.attr}, {owner(dotted)}", Priority.REBINDS)
                elif t.attr in STORE_DUNDERS or t.attr in IPYTHON_ATTRS:
                    self.hit(t, f"{how} {t.attr} of an object (changes how it behaves everywhere)", Priority.REBINDS)
            elif isinstance(t, ast.Subscript):
                dotted = self.external(t.value)
                if dotted and ("__dict__" in dotted or dotted.startswith(("vars(", "globals()", "locals()"))):
                    self.hit(t, f"{how} an entry of {dotted}", Priority.REBINDS)
                elif dotted:
                    self.check_dotted(t, dotted, Priority.REBINDS)
            elif isinstance(t, ast.Name):
                self._store_name(t, t.id, value, how)

    def _store_name(self, node: ast.AST, name: str, value: ast.AST | None, how: str = "rebinds") -> None:
        if name in self.modules and name not in self.cell_imports:
            expected = self.ctx.imports.get(name, DEFAULT_IMPORTS.get(name))
            if value is None or self.external(value, alias=True) != expected:
                self.hit(node, f"{how} {name}, a module the notebook imported (tests use it)", Priority.SHELL)
        elif name in TEST_BUILTINS and (how == "redefines" or isinstance(value, (ast.Lambda, ast.Name, ast.Attribute))):
            self.hit(node, f"replaces the builtin {name} with a function (tests call it)", Priority.SHELL)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._store(target, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            self._store(node.target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._store(node.target, node.value)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._store(node.target, node.value)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            for t in targets(target):
                if not isinstance(t, ast.Name):
                    self._store(t, None, "deletes")
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._store(node.target, None)
        self.generic_visit(node)

    def _define(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        parent = self.parents.get(node)
        if isinstance(parent, ast.ClassDef):
            if node.name in LYING_METHODS:
                self.hit(node, f"defines {node.name} (an object that passes comparisons or type "
                               "checks it should fail)", Priority.INTERNALS)
        else:
            self._store_name(node, node.name, None, "redefines")
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _define

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for stmt in node.body:
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    if isinstance(t, ast.Name) and t.id in LYING_METHODS:
                        self.hit(t, f"defines {t.id} (an object that passes comparisons or type "
                                    "checks it should fail)", Priority.INTERNALS)
        self._define(node)


def _scan(source: str, ctx: Context, line_offset: int = 0, depth: int = 0) -> list[Hit]:
    """Every rule matching a line of one source (line numbers in the cell), magics' code included."""
    tree, error = parse(source)
    if tree is None:
        line = (error.lineno or 1) if error else 1
        msg = error.msg if error else "unreadable"
        return [Hit(line + line_offset, Priority.NOTE, f"not valid Python ({msg}): not scanned; it cannot run either",
                    True)]
    scanner = _Scanner(tree, ctx)
    scanner.visit(tree)
    hits = [h._replace(line=h.line + line_offset) for h in scanner.hits + spelt(tree)]
    if depth < 3:
        for _line, body, offset in scanner.extra:
            hits += [h._replace(reason="in a magic's code: " + h.reason) if depth == 0 else h
                     for h in _scan(body, ctx, line_offset + offset, depth + 1)]
    return hits


def _findings(source: str, hits: list[Hit], cell: int | None, gid: str | None) -> list[Finding]:
    """One finding per line: the hit of the lowest priority."""
    lines = source.splitlines()
    best: dict[int, Hit] = {}
    for hit in hits:
        if hit.line not in best or hit.priority < best[hit.line].priority:
            best[hit.line] = hit
    return [Finding(cell, gid, line, shorten(lines[line - 1] if 0 < line <= len(lines) else ""), h.reason, h.note)
            for line, h in sorted(best.items())]


def scan_source(source: str, *, imports: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings for one cell's source (IPython syntax allowed). ``imports``: the names the rest
    of the notebook imports (name -> dotted module); default: the course's usual ones."""
    ctx = default_context() if imports is None else Context(dict(imports), set(imports), set(imports))
    return _findings(source, _scan(source, ctx), None, None)


def scan_notebook(nb, locked: set[str] | Mapping[str, str]) -> list[Finding]:
    """Findings for every code cell of ``nb`` a learner can edit: every code cell whose grade id
    is not in ``locked`` (the first cell with a locked id is skipped: nbgrader restores its
    source; pass ``{grade_id: source}`` instead of a set to scan such a cell if it was changed).
    Scan the submission before :func:`insert_canaries` (or after :func:`check_canaries`)."""
    editable = editable_cells(nb, locked)
    ctx = context(c.source for c in nb.cells if c.get("cell_type") == "code")
    findings = []
    for i in editable:
        cell = nb.cells[i]
        findings += _findings(cell.source, _scan(cell.source, ctx), i, grade_id(cell))
    return findings
