"""Integrity checks for graded submissions: a static scan of what a learner wrote, and canary
cells that test, from outside, whether the learner's kernel still reports failures.

Interface (everything else in this module is private)::

    findings = scan_notebook(nb, locked)            # list[Finding], before the notebook runs
    findings = scan_source(source)                  # one cell (used by scan_notebook)
    secret = new_secret()                           # one per graded notebook, never written down
    nb = insert_canaries(nb, secret)                # a copy with hidden canary cells added
    ...execute nb (nbgrader's Execute, allow_errors=True)...
    reason, nb = check_canaries(nb, secret)         # reason: None or one line; canaries removed
    ids = locked_ids(nb)                            # grade ids of the cells learners cannot edit

The same steps as nbconvert preprocessors, for ``Autograde.autograde_preprocessors``:
``ScanCells`` and ``InsertCanaries`` before ``nbgrader.preprocessors.Execute``, ``CheckCanaries``
right after it (before ``ClearMetadataPreprocessor``, ``LimitOutput`` and ``SaveAutoGrades``, so
the canaries never reach the gradebook or the feedback). They leave their results in
``resources["integrity"]``: ``"findings"`` (list of Finding) and ``"tampered"`` (None or reason).

**The scan** parses every code cell a learner can edit (every code cell whose grade id is not a
locked one: learners can add cells and edit metadata) with :mod:`ast`, after turning IPython
syntax (``%magic``, ``!cmd``) into Python the way IPython does. It flags IPython internals, the
rebinding of attributes of imported modules and classes (``torch.allclose = ...``), ``builtins``,
``sys.modules``, trace hooks, ``importlib``, ``ctypes``, ``exec``/``eval``/``compile``, frame
walking, and classes that compare equal to anything. A finding means "needs review"; it does not
change a score. Attributes of the learner's own objects (``model.fc = ...``) are never flagged.

**Canaries** are plain code cells, two per point: after every code cell a learner can edit,
before every locked test cell not already preceded by one, and at the end. Both look like hidden
test cells (a "Check ..." docstring, ``### BEGIN HIDDEN TESTS``, asserts). With values derived
from a per-run secret, the first computes a number and a set of known-false checks
(``torch.allclose``, ``torch.equal``, ``torch.isclose``, ``Tensor.__eq__``/``__bool__``,
``numpy.allclose``, an ``assert`` that must raise the real AssertionError; torch's and numpy's
``assert_close`` must still be the libraries' own: calling torch's costs 0.5 s the first time)
and prints them; the second fails an assert with a random message (a separate,
short cell: IPython's traceback of a long cell costs tens of milliseconds). A kernel that skips
the cells, hides their error, removes their asserts or makes false comparisons true gives itself
away. The kernel sees the canaries' source (it has to run them); it never sees the secret or
which output is expected. Canaries use private names (``import torch as _q...``) and delete them, so
an honest learner's variables (even ``print = ...``) do not disturb them, and a learner's cell
that raised (execution goes on: ``allow_errors=True``) does not disturb them either.

What the canaries cost: ``python -m instructor.integrity NOTEBOOK...`` runs notebooks with
canaries and prints, per notebook, the number of canaries, their total time in the kernel, and
the time scan/insert/check take in the grading process.

Limits, by design: a cheat written to recognise canaries (they are public code) could answer
them; doing so needs the IPython machinery the scan flags. The scan sees source only: code that
builds code at run time is flagged for *how* it runs it (``exec``, ``getattr(get_ipython(),
...)``), not for what it does.
"""

from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nbconvert.preprocessors import Preprocessor as _NbconvertPreprocessor
from traitlets import Bool

__all__ = [
    "CheckCanaries",
    "Finding",
    "InsertCanaries",
    "ScanCells",
    "check_canaries",
    "insert_canaries",
    "is_canary",
    "locked_ids",
    "new_secret",
    "scan_notebook",
    "scan_source",
]


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    """One line that needs review (or, with ``note=True``, a remark such as a syntax error).

    cell: index in ``nb.cells`` (0-based; None from scan_source); line: 1-based, in the cell's
    source; quote: that line, stripped and shortened; reason: one line."""

    cell: int | None
    grade_id: str | None
    line: int
    quote: str
    reason: str
    note: bool = False

    def __str__(self) -> str:
        where = ("" if self.cell is None
                 else f"cell {self.cell + 1}" + (f" ({self.grade_id})" if self.grade_id else "") + ", ")
        return f"{where}line {self.line}: `{self.quote}` {'(note) ' if self.note else ''}-- {self.reason}"


def _shorten(text: str, width: int = 80) -> str:
    text = " ".join(text.strip().split())
    return text if len(text) <= width else text[:width - 3] + "..."


# ---------------------------------------------------------------------------
# What the scan knows
# ---------------------------------------------------------------------------

# Names a course notebook usually imports; used when scan_source gets no notebook context.
DEFAULT_IMPORTS = {
    "torch": "torch", "np": "numpy", "numpy": "numpy", "nn": "torch.nn", "F": "torch.nn.functional",
    "optim": "torch.optim", "torchvision": "torchvision", "datasets": "torchvision.datasets",
    "transforms": "torchvision.transforms", "models": "torchvision.models", "plt": "matplotlib.pyplot",
    "helper": "helper", "sys": "sys", "os": "os", "IPython": "IPython", "tqdm": "tqdm",
}
# From-imports that bind a module (an `import x` always does).
KNOWN_MODULES = {
    "torch.nn", "torch.nn.functional", "torch.optim", "torch.utils", "torch.utils.data", "torch.testing",
    "torchvision.datasets", "torchvision.transforms", "torchvision.models", "torchvision.transforms.v2",
    "matplotlib.pyplot", "numpy.testing", "numpy.random", "helper.data", "helper.train", "helper.models",
    "helper.plots", "helper.metrics", "IPython.display", "os.path",
}

# IPython's shell machinery: attribute name -> reason.
_IPY_RUN = "reaches IPython's {} (can skip or change later cells, tests included)"
IPYTHON_ATTRS = {
    "input_transformers_post": "reaches IPython's input transformers (can rewrite later cells, tests included)",
    "input_transformers_cleanup": "reaches IPython's input transformers (can rewrite later cells, tests included)",
    "input_transformer_manager": "reaches IPython's input transformers (can rewrite later cells, tests included)",
    "ast_transformers": "reaches IPython's AST transformers (can rewrite later cells, tests included)",
    "run_cell": _IPY_RUN.format("run_cell"), "run_cell_async": _IPY_RUN.format("run_cell_async"),
    "run_ast_nodes": _IPY_RUN.format("run_ast_nodes"), "run_code": _IPY_RUN.format("run_code"),
    "transform_cell": _IPY_RUN.format("transform_cell"), "should_run_async": _IPY_RUN.format("should_run_async"),
    "showtraceback": "reaches IPython's showtraceback (can hide errors)",
    "_showtraceback": "reaches IPython's showtraceback (can hide errors)",
    "showsyntaxerror": "reaches IPython's error display (can hide errors)",
    "set_custom_exc": "installs a custom exception handler in IPython (can hide errors)",
    "custom_exceptions": "installs a custom exception handler in IPython (can hide errors)",
    "CustomTB": "installs a custom exception handler in IPython (can hide errors)",
    "register_magic_function": "registers an IPython magic", "register_magics": "registers an IPython magic",
    "user_ns": "reaches IPython's namespace machinery", "user_global_ns": "reaches IPython's namespace machinery",
    "InteractiveShell": "reaches IPython's InteractiveShell",
    "ZMQInteractiveShell": "reaches IPython's InteractiveShell",
    "execute_request": "reaches the kernel's request handlers", "do_execute": "reaches the kernel's request handlers",
    "shell_handlers": "reaches the kernel's request handlers", "send_response": "reaches the kernel's messaging",
}
FRAME_ATTRS = {"f_back", "f_globals", "f_locals", "f_builtins", "f_trace", "tb_frame", "gi_frame",
               "cr_frame", "ag_frame"}
DUNDER_ATTRS = {  # reading them is already suspicious in a course notebook
    "__globals__": "reaches a function's globals (__globals__)",
    "__builtins__": "reaches __builtins__",
    "__subclasses__": "walks the class hierarchy (__subclasses__)",
    "__code__": "reaches a function's code object (__code__)",
    "__closure__": "reaches a function's closure (__closure__)",
    "__self__": "reaches a bound object through __self__",
    "__import__": "imports through __import__",
    "__loader__": "reaches a module loader (__loader__)",
}
STORE_DUNDERS = {"__class__", "__bases__", "__dict__", "__code__", "__defaults__", "__kwdefaults__",
                 "__call__", "__getattr__", "__getattribute__", "__setattr__"}
# Dotted names (after resolving imports) -> reason. A name matches itself and anything under it.
DANGEROUS = {
    "builtins": "uses the builtins module (can change functions every cell sees)",
    "importlib": "uses importlib (can load or swap modules)",
    "ctypes": "uses ctypes (raw memory access)", "_ctypes": "uses ctypes (raw memory access)",
    "cffi": "uses cffi (native code)", "runpy": "uses runpy (runs other files)",
    "marshal": "uses marshal (code objects)", "ipykernel": "reaches the kernel itself (ipykernel)",
    "IPython.core": "reaches IPython internals (IPython.core)",
    "IPython.terminal": "reaches IPython internals (IPython.terminal)",
    "IPython.get_ipython": "uses get_ipython(): the shell that runs the tests",
    "IPython.InteractiveShell": "reaches IPython's InteractiveShell",
    "unittest.mock": "uses unittest.mock (patches functions that tests call)",
    "mock": "uses mock (patches functions that tests call)",
    "sys.modules": "uses sys.modules (can swap the modules tests import)",
    "sys.settrace": "sets a trace function (sys.settrace: sees and changes code as it runs)",
    "sys.setprofile": "sets a profile function (sys.setprofile: sees code as it runs)",
    "sys.monitoring": "uses sys.monitoring (sees code as it runs)",
    "sys.excepthook": "touches sys.excepthook (error reporting)",
    "sys.displayhook": "touches sys.displayhook (output reporting)",
    "sys.unraisablehook": "touches sys.unraisablehook (error reporting)",
    "sys.breakpointhook": "touches sys.breakpointhook",
    "sys._getframe": "walks stack frames (sys._getframe)",
    "sys._current_frames": "walks stack frames (sys._current_frames)",
    "sys.meta_path": "changes the import system (sys.meta_path)",
    "sys.path_hooks": "changes the import system (sys.path_hooks)",
    "sys.path_importer_cache": "changes the import system (sys.path_importer_cache)",
    "sys.addaudithook": "installs an audit hook (sys.addaudithook)",
    "threading.settrace": "sets a trace function (threading.settrace)",
    "threading.setprofile": "sets a profile function (threading.setprofile)",
    "inspect.currentframe": "walks stack frames (inspect.currentframe)",
    "inspect.stack": "walks stack frames (inspect.stack)",
    "inspect.trace": "walks stack frames (inspect.trace)",
    "inspect.getouterframes": "walks stack frames (inspect.getouterframes)",
    "inspect.getinnerframes": "walks stack frames (inspect.getinnerframes)",
    "traceback.walk_stack": "walks stack frames (traceback.walk_stack)",
    # The caller's source line holds the test's expected value: an answer that reads it passes
    # without doing the work, and the kernel is untouched (no canary can see it).
    "traceback.extract_stack": "reads the calling code (traceback.extract_stack): can copy a test's expected value",
    "traceback.format_stack": "reads the calling code (traceback.format_stack): can copy a test's expected value",
    "traceback.print_stack": "reads the calling code (traceback.print_stack): can copy a test's expected value",
    "traceback.StackSummary": "reads the calling code (traceback.StackSummary): can copy a test's expected value",
    "linecache": "reads the source of the cells that ran (linecache): can copy a test's expected value",
    "traceback.walk_tb": "walks stack frames (traceback.walk_tb)",
    "gc.get_referrers": "searches live objects (gc.get_referrers)",
    "gc.get_referents": "searches live objects (gc.get_referents)",
    "gc.get_objects": "searches live objects (gc.get_objects)",
    "types.CodeType": "builds code objects (types.CodeType)",
    "types.FunctionType": "builds functions from code objects (types.FunctionType)",
    "torch.utils.cpp_extension": "compiles native code (torch.utils.cpp_extension)",
    "torch.nn.modules.module.register_module_forward_hook": "installs a forward hook on every module",
    "torch.nn.modules.module.register_module_forward_pre_hook": "installs a forward hook on every module",
    "torch.nn.modules.module.register_module_full_backward_hook": "installs a backward hook on every module",
    "torch.overrides": "overrides torch functions (torch.overrides)",
    "torch.library": "registers torch operators (torch.library)",
}
# Attributes of imported modules that honest code sets (configuration switches).
ALLOWED_STORES = ("torch.backends.", "pandas.options.", "numpy.set_printoptions")
STRING_CODE = {"exec": "runs code from a string (exec)", "eval": "runs code from a string (eval)",
               "compile": "compiles code from a string (compile)"}
# Builtins that test cells call: a learner's function bound to one of these names fools them.
TEST_BUILTINS = {"isinstance", "issubclass", "len", "abs", "all", "any", "float", "int", "bool", "round",
                 "sum", "max", "min", "range", "zip", "type", "hasattr", "getattr", "callable", "sorted",
                 "list", "tuple", "set", "dict", "str", "repr", "print", "map", "enumerate", "iter",
                 "next", "AssertionError", "Exception", "BaseException", "object", "super"}
# Methods that let an object pass checks it should fail (`out == expected`, `isinstance(out, Tensor)`).
LYING_METHODS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__getattr__",
                 "__getattribute__", "__instancecheck__", "__subclasscheck__", "__class__",
                 "__torch_function__", "__torch_dispatch__", "__array_ufunc__", "__array_function__"}
# Magics: line magics whose argument is Python run in the kernel, and ones that run other code.
MAGIC_PYTHON = {"time", "timeit", "prun", "debug", "capture"}
MAGIC_FLAGGED = {
    "run": "runs another file in the kernel (%run)", "macro": "defines a macro (%macro)",
    "rerun": "re-runs earlier input (%rerun)", "recall": "re-runs earlier input (%recall)",
    "autocall": "changes how IPython reads code (%autocall)",
    "alias_magic": "redefines magics (%alias_magic)", "loadpy": "loads code (%loadpy)",
}
SAFE_EXTENSIONS = {"autoreload", "tensorboard"}  # tensorboard: Part 5 shows %tensorboard
SAFE_CONFIG = ("InlineBackend",)
FLAGGED_SHELL_CALLS = {"run_line_magic", "run_cell_magic", "magic", "system", "getoutput"}


def _builtin_names() -> set[str]:
    return {name for name in dir(builtins) if not name.startswith("_")}


# ---------------------------------------------------------------------------
# Notebook context: what the notebook imports and binds, across all its cells
# ---------------------------------------------------------------------------

@dataclass
class _Context:
    imports: dict[str, str]          # name -> dotted module path, from every import in the notebook
    modules: set[str]                # names among those that are modules
    bound: set[str]                  # every name any cell binds (assignments, defs, imports)


def _import_bindings(tree: ast.AST) -> Iterable[tuple[str, str, bool, ast.AST]]:
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


def _bound_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def _parse(source: str) -> tuple[ast.Module | None, SyntaxError | None]:
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


def _context(sources: Iterable[str]) -> _Context:
    ctx = _Context({}, set(), set())
    for source in sources:
        tree = _parse(source)[0]
        if tree is None:
            continue
        for name, dotted, is_module, _ in _import_bindings(tree):
            ctx.imports.setdefault(name, dotted)
            if is_module:
                ctx.modules.add(name)
        ctx.bound |= _bound_names(tree)
    return ctx


def _default_context() -> _Context:
    return _Context(dict(DEFAULT_IMPORTS), set(DEFAULT_IMPORTS), set(DEFAULT_IMPORTS))


# ---------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------

def _owner(dotted: str) -> str:
    if dotted.startswith("get_ipython()"):
        return "part of the shell that runs the tests"
    return "shared with the tests (an imported module or class, or a builtin)"


class _Scanner(ast.NodeVisitor):
    """Collects (line, priority, reason) for one parsed cell. Lower priority wins on a line."""

    def __init__(self, tree: ast.Module, ctx: _Context):
        self.ctx = ctx
        self.hits: list[tuple[int, int, str]] = []
        self.extra: list[tuple[int, str, int]] = []       # (line, python source, line offset) to scan too
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        local_bound = _bound_names(tree)
        self.unbound_builtins = _builtin_names() - ctx.bound - local_bound
        self.names: dict[str, str] = {}      # local name -> dotted path of an external object
        self.modules = set(ctx.modules)
        for name, dotted in ctx.imports.items():
            self.names[name] = dotted
        self.cell_imports: dict[str, str] = {}
        for name, dotted, is_module, _ in _import_bindings(tree):
            self.cell_imports[name] = dotted
            self.names[name] = dotted
            if is_module:
                self.modules.add(name)
        self.functions = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        self._aliases(tree)

    # -- resolving names ---------------------------------------------------

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

    # -- recording ---------------------------------------------------------

    def hit(self, node: ast.AST, reason: str, priority: int = 5) -> None:
        self.hits.append((getattr(node, "lineno", 1), priority, reason))

    def check_dotted(self, node: ast.AST, dotted: str | None, priority: int = 4) -> bool:
        if not dotted:
            return False
        clean = dotted.replace("[]", "").replace("()", "")
        for key, reason in DANGEROUS.items():
            if clean == key or clean.startswith(key + "."):
                if key == "sys.modules" and self._membership_test(node):
                    return False
                self.hit(node, reason, priority)
                return True
        return False

    def _membership_test(self, node: ast.AST) -> bool:
        """``"google.colab" in sys.modules``: reading whether a module is loaded is harmless."""
        parent = self.parents.get(node)
        return (isinstance(parent, ast.Compare) and node in parent.comparators
                and all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops))

    # -- imports -----------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not self.check_dotted(node, alias.name, 3):
                self._rebinding_import(node, alias.asname or alias.name.split(".")[0],
                                       alias.name if alias.asname else alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not node.module or node.level:
            return
        for alias in node.names:
            dotted = f"{node.module}.{alias.name}"
            if alias.name == "*":
                self.check_dotted(node, node.module, 3)
            elif not self.check_dotted(node, dotted, 3):
                if alias.name in IPYTHON_ATTRS:
                    self.hit(node, IPYTHON_ATTRS[alias.name], 2)
                elif alias.name == "get_ipython":
                    self.hit(node, "imports get_ipython: the shell that runs the tests", 3)
                else:
                    self._rebinding_import(node, alias.asname or alias.name, dotted)

    def _rebinding_import(self, node: ast.AST, name: str, dotted: str) -> None:
        before = self.ctx.imports.get(name)
        if name in self.ctx.modules and before and before != dotted:
            self.hit(node, f"rebinds {name} (the notebook's {before}) to {dotted}", 3)

    # -- names and attributes ---------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "get_ipython":
            self.hit(node, "uses get_ipython(): the shell that runs the tests", 9)
        elif node.id in ("__builtins__", "__import__"):
            self.hit(node, DUNDER_ATTRS[node.id], 3)
        elif node.id in IPYTHON_ATTRS and node.id[0].isupper():
            self.hit(node, IPYTHON_ATTRS[node.id], 2)
        elif node.id in ("exec", "eval", "compile", "setattr", "delattr", "globals", "locals", "vars") \
                and node.id in self.unbound_builtins:
            parent = self.parents.get(node)
            if not (isinstance(parent, ast.Call) and parent.func is node):
                self.hit(node, f"passes the builtin {node.id} around (used indirectly)", 4)
        elif isinstance(node.ctx, ast.Load):
            dotted = self.names.get(node.id)
            if dotted and node.id not in self.cell_imports:
                self.check_dotted(node, dotted, 4)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr in IPYTHON_ATTRS:
            self.hit(node, IPYTHON_ATTRS[attr], 2)
        elif attr in ("register", "unregister", "callbacks") and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "events":
            self.hit(node, "registers an IPython event callback (runs around every later cell)", 2)
        elif attr in FRAME_ATTRS:
            self.hit(node, f"walks stack frames (.{attr})", 3)
        elif attr in DUNDER_ATTRS:
            self.hit(node, DUNDER_ATTRS[attr], 3)
        elif attr == "__dict__" and self.external(node.value):
            self.hit(node, f"reaches the namespace of {self.external(node.value)} (__dict__)", 3)
        else:
            parent = self.parents.get(node)
            if not isinstance(parent, ast.Attribute):   # check the whole chain once, at its end
                self.check_dotted(node, self.external(node))
        self.generic_visit(node)

    # -- calls --------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if self._shell_call(node):
            return
        name = func.id if isinstance(func, ast.Name) else None
        if name in STRING_CODE and name in self.unbound_builtins:
            self.hit(node, STRING_CODE[name], 3)
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
                    self.hit(node, IPYTHON_ATTRS[attr.value], 2)
                elif attr.value in FRAME_ATTRS or attr.value in DUNDER_ATTRS:
                    self.hit(node, f"reaches {attr.value} through {name}", 3)
        elif name in ("globals", "locals", "vars") and name in self.unbound_builtins:
            self._namespace_write(node, name)
        elif name in self.functions:
            for arg in node.args:
                if isinstance(arg, ast.Name) and arg.id in self.modules:
                    self.hit(node, f"passes the module {arg.id} to its own function {name}() "
                                   "(which can rebind the module's attributes)", 5)
        self.generic_visit(node)

    def _set_on(self, node: ast.AST, target: ast.AST, attr: ast.AST | None, how: str) -> None:
        dotted = self.external(target)
        attr_name = attr.value if isinstance(attr, ast.Constant) and isinstance(attr.value, str) else None
        if attr_name in IPYTHON_ATTRS:
            self.hit(node, IPYTHON_ATTRS[attr_name], 2)
        elif dotted and not self._allowed_store(dotted, attr_name):
            what = f"{dotted}.{attr_name}" if attr_name else f"an attribute of {dotted}"
            self.hit(node, f"rebinds {what} with {how}, {_owner(dotted)}", 1)
        elif attr_name in STORE_DUNDERS or self._has_class_chain(target):
            self.hit(node, f"rebinds {attr_name or 'an attribute'} of a class with {how}", 1)

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
            self.hit(node, f"reaches the namespace of {self.external(node.args[0])} (vars)", 2)
            return
        parent = self.parents.get(node)
        if ((isinstance(parent, ast.Subscript) and isinstance(parent.ctx, (ast.Store, ast.Del)))
                or (isinstance(parent, ast.Attribute)
                    and parent.attr in ("update", "setdefault", "pop", "popitem",
                                        "clear", "__setitem__", "__delitem__"))):
            self.hit(node, f"writes into {name}() (rebinds names behind the code's back)", 3)

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
            self.hit(node, MAGIC_FLAGGED[magic], 2)
        elif magic in ("load_ext", "reload_ext", "unload_ext"):
            if not words or words[0] not in SAFE_EXTENSIONS:
                self.hit(node, f"loads an IPython extension (%{magic} {line.strip()}): it gets the shell", 2)
        elif magic == "config":
            if words and not words[0].startswith(SAFE_CONFIG):
                self.hit(node, f"configures IPython (%config {words[0]})", 2)
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

    def _targets(self, target: ast.AST) -> Iterable[ast.AST]:
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                yield from self._targets(elt)
        elif isinstance(target, ast.Starred):
            yield from self._targets(target.value)
        else:
            yield target

    def _store(self, target: ast.AST, value: ast.AST | None, how: str = "rebinds") -> None:
        for t in self._targets(target):
            if isinstance(t, ast.Attribute):
                dotted = self.external(t.value)
                if dotted and not self._allowed_store(dotted, t.attr):
                    self.hit(t, f"{how} {dotted}.{t.attr}, {_owner(dotted)}", 1)
                elif t.attr in STORE_DUNDERS or t.attr in IPYTHON_ATTRS:
                    self.hit(t, f"{how} {t.attr} of an object (changes how it behaves everywhere)", 1)
            elif isinstance(t, ast.Subscript):
                dotted = self.external(t.value)
                if dotted and ("__dict__" in dotted or dotted.startswith(("vars(", "globals()", "locals()"))):
                    self.hit(t, f"{how} an entry of {dotted}", 1)
                elif dotted:
                    self.check_dotted(t, dotted, 1)
            elif isinstance(t, ast.Name):
                self._store_name(t, t.id, value, how)

    def _store_name(self, node: ast.AST, name: str, value: ast.AST | None, how: str = "rebinds") -> None:
        if name in self.modules and name not in self.cell_imports:
            expected = self.ctx.imports.get(name, DEFAULT_IMPORTS.get(name))
            if value is None or self.external(value, alias=True) != expected:
                self.hit(node, f"{how} {name}, a module the notebook imported (tests use it)", 2)
        elif name in TEST_BUILTINS and (how == "redefines" or isinstance(value, (ast.Lambda, ast.Name, ast.Attribute))):
            self.hit(node, f"replaces the builtin {name} with a function (tests call it)", 2)

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
            for t in self._targets(target):
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
                               "checks it should fail)", 3)
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
                                    "checks it should fail)", 3)
        self._define(node)


def _scan(source: str, ctx: _Context, line_offset: int = 0, depth: int = 0) -> list[tuple[int, int, str, bool]]:
    """(line in the cell, priority, reason, note) for one source."""
    tree, error = _parse(source)
    if tree is None:
        line = (error.lineno or 1) if error else 1
        msg = error.msg if error else "unreadable"
        return [(line + line_offset, 99, f"not valid Python ({msg}): not scanned; it cannot run either", True)]
    scanner = _Scanner(tree, ctx)
    scanner.visit(tree)
    hits = [(line + line_offset, prio, reason, False) for line, prio, reason in scanner.hits]
    if depth < 3:
        for _line, body, offset in scanner.extra:
            hits += [(ln, prio, "in a magic's code: " + reason if depth == 0 else reason, note)
                     for ln, prio, reason, note in _scan(body, ctx, line_offset + offset, depth + 1)]
    return hits


def _findings(source: str, hits, cell: int | None, grade_id: str | None) -> list[Finding]:
    lines = source.splitlines()
    best: dict[int, tuple[int, str, bool]] = {}
    for line, prio, reason, note in hits:
        if line not in best or prio < best[line][0]:
            best[line] = (prio, reason, note)
    return [Finding(cell, grade_id, line, _shorten(lines[line - 1] if 0 < line <= len(lines) else ""), reason, note)
            for line, (_, reason, note) in sorted(best.items())]


def scan_source(source: str, *, imports: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings for one cell's source (IPython syntax allowed). ``imports``: the names the rest
    of the notebook imports (name -> dotted module); default: the course's usual ones."""
    ctx = _default_context() if imports is None else _Context(dict(imports), set(imports), set(imports))
    return _findings(source, _scan(source, ctx), None, None)


def _meta(cell) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def _is_locked(cell) -> bool:
    """nbgrader's rule (nbgrader.utils.is_locked): answer cells never, test cells always."""
    meta = _meta(cell)
    if meta.get("solution"):
        return False
    return bool(meta.get("grade") or meta.get("locked"))


def locked_ids(nb) -> set[str]:
    """Grade ids of the cells learners cannot change (nbgrader restores them before grading).
    Take them from the instructor's notebook (solutions/ or the gradebook), or from a submission
    after nbgrader's OverwriteCells has run."""
    return {_meta(c)["grade_id"] for c in nb.cells if _meta(c).get("grade_id") and _is_locked(c)}


def _editable(nb, locked: set[str] | Mapping[str, str]) -> list[int]:
    """Indices of the code cells a learner could have written."""
    seen: set[str] = set()
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        gid = _meta(cell).get("grade_id")
        if gid in locked and gid not in seen:
            seen.add(gid)
            if not isinstance(locked, Mapping) or cell.source == locked[gid]:
                continue   # nbgrader runs the instructor's source here
        out.append(i)
    return out


def scan_notebook(nb, locked: set[str] | Mapping[str, str]) -> list[Finding]:
    """Findings for every code cell of ``nb`` a learner can edit: every code cell whose grade id
    is not in ``locked`` (the first cell with a locked id is skipped: nbgrader restores its
    source; pass ``{grade_id: source}`` instead of a set to scan such a cell if it was changed).
    Scan the submission before :func:`insert_canaries` (or after :func:`check_canaries`)."""
    editable = _editable(nb, locked)
    ctx = _context(c.source for c in nb.cells if c.get("cell_type") == "code")
    findings = []
    for i in editable:
        cell = nb.cells[i]
        findings += _findings(cell.source, _scan(cell.source, ctx), i, _meta(cell).get("grade_id"))
    return findings


# ---------------------------------------------------------------------------
# Canaries
# ---------------------------------------------------------------------------

CANARY_KEY = "course_integrity"   # cell metadata: {"canary": k}; never shown to learners
_WORDS = ("shape", "values", "gradient", "batch", "output", "weights", "bias", "loss", "layer", "mean",
          "scale", "sum", "order", "sign", "range", "dtype", "device", "result", "input", "logits")
# Known-false checks, in the order their bits are printed.
_COMPARISONS = ("torch.allclose", "torch.equal", "torch.isclose", "Tensor.__eq__", "Tensor.__bool__",
                "numpy.allclose", "torch.testing.assert_close", "numpy.testing.assert_allclose",
                "the assert statement or AssertionError")


def new_secret() -> str:
    """A fresh random secret for one graded notebook."""
    return secrets.token_hex(16)


def _derive(secret: str, k: int, what: str) -> int:
    digest = hmac.new(secret.encode(), f"{k}:{what}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class _Canary:
    """Canary point k: two cells, run one after the other."""

    checks: str     # must run without an error and print ``token``
    fails: str      # must fail with AssertionError(message); short, so its traceback is cheap
    token: str      # "prefix value bits": bits are the known-false checks, all "0"
    prefix: str
    message: str
    ids: tuple[str, str]

    def source(self, part: int) -> str:
        return (self.checks, self.fails)[part]


def _canary(secret: str, k: int) -> _Canary:
    def d(what: str) -> int:
        return _derive(secret, k, what)

    n = f"_q{d('name') % 36 ** 5:x}_"
    a, b, m, c = 1000 + d("a") % 9000, 1000 + d("b") % 9000, 10007 + d("m") % 90000, d("c") % 1000
    value = a * b % m + c
    size, shift = 3 + d("size") % 5, 1 + d("shift") % 7
    prefix = "".join("abcdefghijklmnopqrstuvwxyz"[(d("p") >> (5 * i)) % 26] for i in range(8))
    message = f"expected {d('msg') % 10 ** 9:09d}, {_WORDS[d('w3') % len(_WORDS)]} differs"
    words = [_WORDS[d(f"w{i}") % len(_WORDS)] for i in range(6)]
    wrong_a, wrong_b = 100 + d("fa") % 900, 100 + d("fb") % 900
    checks = f'''"""Check the {words[0]} and {words[1]} of the {words[2]}"""
### BEGIN HIDDEN TESTS
import builtins as {n}b, numpy as {n}n, torch as {n}t
{n}v = {a} * {b} % {m} + {c}
{n}x = {n}t.arange({size}, dtype={n}t.float32, device="cpu")
{n}y = {n}x + {shift}
{n}r = [{n}t.allclose({n}x, {n}y), {n}t.equal({n}x, {n}y), bool({n}t.isclose({n}x, {n}y).any()),
       bool(({n}x == {n}y).any()), bool({n}x.sum() == {n}y.sum()), bool({n}n.allclose({n}x.numpy(), {n}y.numpy()))]
for {n}f, {n}p in (({n}t.testing.assert_close, "torch."), ({n}n.testing.assert_allclose, "numpy.")):
    {n}r.append(not str(getattr({n}f, "__module__", "")).startswith({n}p))
try:
    assert {n}v < 0, "{message}"
except BaseException as {n}e:
    {n}r.append(type({n}e) is not {n}b.AssertionError)
else:
    {n}r.append(True)
{n}b.print("{prefix}", {n}v, "".join("1" if {n}z else "0" for {n}z in {n}r))
del {n}b, {n}n, {n}t, {n}v, {n}x, {n}y, {n}r, {n}f, {n}p
### END HIDDEN TESTS'''
    fails = (f'"""Check the {words[3]} of the {words[4]}"""\n'
             f'assert {wrong_a} * {wrong_b} == {wrong_a * wrong_b + 1 + d("off") % 50}, "{message}"')
    token = f"{prefix} {value} {'0' * len(_COMPARISONS)}"
    return _Canary(checks, fails, token, prefix, message, (f"c{d('id') % 36 ** 12:x}", f"f{d('id') % 36 ** 12:x}"))


def _canary_index(cell, secret: str, ids: dict[str, int] | None = None) -> int | None:
    """j if ``cell`` is this run's canary cell j (point j // 2, part j % 2). Its source must
    match: a learner's cell that copied the metadata or the id is not one."""
    meta = (cell.get("metadata") or {}).get(CANARY_KEY)
    j = meta.get("canary") if isinstance(meta, dict) else None
    if not isinstance(j, int) and ids is not None:
        j = ids.get(cell.get("id"))
    if not isinstance(j, int) or j < 0 or cell.get("cell_type") != "code":
        return None
    return j if cell.get("source") == _canary(secret, j // 2).source(j % 2) else None


def is_canary(cell, secret: str) -> bool:
    """Whether ``cell`` is one of the canary cells ``secret`` made."""
    return _canary_index(cell, secret) is not None


def insert_canaries(nb, secret: str, locked: set[str] | Mapping[str, str] | None = None):
    """A copy of ``nb`` with a canary (two cells) after every code cell a learner can edit,
    before every locked test cell not already preceded by one, and at the end. ``locked``: as
    for :func:`scan_notebook`; default :func:`locked_ids` of ``nb`` (trustworthy once nbgrader's
    OverwriteCells has restored the locked cells' metadata)."""
    import nbformat

    nb = copy.deepcopy(nb)
    locked = locked_ids(nb) if locked is None else locked
    editable = set(_editable(nb, locked))
    with_ids = nb.get("nbformat", 4) > 4 or nb.get("nbformat_minor", 0) >= 5
    for cell in nb.cells:   # a learner's copy of canary metadata must not pass for a canary
        (cell.get("metadata") or {}).pop(CANARY_KEY, None)
    cells, k = [], 0

    def add():
        nonlocal k
        canary = _canary(secret, k)
        for part in (0, 1):
            cell = nbformat.v4.new_code_cell(canary.source(part))
            cell.metadata[CANARY_KEY] = {"canary": 2 * k + part}
            if with_ids:
                cell["id"] = canary.ids[part]
            else:
                cell.pop("id", None)
            cells.append(cell)
        k += 1

    for i, cell in enumerate(nb.cells):
        if (cell.get("cell_type") == "code" and _meta(cell).get("grade") and i not in editable
                and not (cells and CANARY_KEY in cells[-1].metadata)):
            add()
        cells.append(cell)
        if i in editable:
            add()
    add()
    nb.cells = cells
    return nb


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _ran(cell) -> bool:
    return bool(cell.get("outputs")) or cell.get("execution_count") is not None


def _error_text(error) -> str:
    return f"{error.get('ename')}: {_shorten(str(error.get('evalue', '')), 60)}"


def _judge(checks, fails, canary: _Canary, where: str) -> str | None:
    """None if the executed canary cells behaved, else the reason (``where``: "after cell 9")."""
    the = f"the canary {where}"
    text = _stdout(checks)   # searched, not split: a learner's background thread may print into it
    errors = [o for o in checks.get("outputs", []) if o.get("output_type") == "error"]
    if canary.token not in text:
        ours = re.findall(re.escape(canary.prefix) + r" (-?\d+) ([01]+)", text)
        if ours:
            # strict=False: the bits come from the cell's (possibly tampered) output, any length
            wrong = [name for name, bit in zip(_COMPARISONS, ours[-1][1], strict=False) if bit != "0"]
            if wrong:
                return f"tampered: in {the} checks that must fail passed: {', '.join(wrong)}"
            return f"tampered: {the} printed a wrong value"
        if errors:
            return f"tampered: {the} raised {_error_text(errors[0])} before its checks ran"
        return f"tampered: {the} neither ran its checks nor printed their result (the cell was skipped or hidden)"
    if errors:
        return f"tampered: {the} raised {_error_text(errors[0])} after its checks"
    errors = [o for o in fails.get("outputs", []) if o.get("output_type") == "error"]
    if not any(o.get("ename") == "AssertionError" and o.get("evalue") == canary.message for o in errors):
        if errors:
            return f"tampered: {the} should have failed with its own assertion but raised {_error_text(errors[0])}"
        return f"tampered: {the} should have failed but ran without an error"
    return None


def check_canaries(nb, secret: str, timeouts: Iterable[Mapping] = ()):
    """``(reason, cleaned)`` for an executed notebook: reason is None when every canary behaved
    (or the run stopped before reaching it: a dead kernel or a notebook time limit, which the
    grading run reports itself), else one line naming the first canary that did not; cleaned
    is a copy of ``nb`` without the canary cells. Cells are numbered from 1 in the reason, as
    in the cleaned notebook. ``timeouts``: the cells the grading run stopped at their time limit
    (``{"cell": index in nb, "label": "cell N (id)"}``); a canary that misbehaves after one of
    them is blamed on the interruption ("timed out in cell N ..."), never called tampering:
    an interrupted cell (an import cut halfway, say) can leave the kernel broken by itself."""
    reason, cleaned = _check_canaries(nb, secret)
    stops = sorted((t for t in timeouts if isinstance(t.get("cell"), int)), key=lambda t: t["cell"])
    if reason and stops and reason.startswith("tampered:"):
        where = re.search(r"(after cell (\d+)|at the end)", reason)
        first = stops[0]
        number = int(first["label"].split()[1]) if first.get("label", "").startswith("cell ") else 0
        if where is not None and (where[1] == "at the end" or int(where[2]) >= number):
            return (f"timed out in {first['label']}: the cell was stopped at its time limit, and the "
                    f"canaries after it could not vouch for the kernel ({reason[len('tampered: '):]})"), cleaned
    return reason, cleaned


def _check_canaries(nb, secret: str):
    ids = {}
    for k in range(len(nb.cells) // 2 + 1):
        first, second = _canary(secret, k).ids
        ids[first], ids[second] = 2 * k, 2 * k + 1
    found: list[tuple[int, int]] = []           # (cell index, j)
    for i, cell in enumerate(nb.cells):
        j = _canary_index(cell, secret, ids)
        if j is not None:
            found.append((i, j))
    canary_cells = {i for i, _ in found}
    cleaned = copy.deepcopy(nb)
    cleaned.cells = [c for i, c in enumerate(cleaned.cells) if i not in canary_cells]
    if not found:
        return "tampered: no canary cells in the graded notebook (grading pipeline error)", cleaned
    if [j for _, j in found] != list(range(len(found))) or len(found) % 2 or \
            any(found[p + 1][0] != found[p][0] + 1 for p in range(0, len(found), 2)):
        return "tampered: canary cells missing or out of order (grading pipeline error)", cleaned
    last_ran = max((i for i, c in enumerate(nb.cells) if i not in canary_cells and c.get("cell_type") == "code"
                    and _ran(c)), default=-1)
    for p in range(0, len(found), 2):
        i, j = found[p]
        kept = i - sum(1 for c in canary_cells if c < i)      # cells of the cleaned notebook before it
        if p == len(found) - 2 and kept == len(cleaned.cells):
            where = "at the end"
        elif kept == 0:
            where = "at the start"
        else:
            gid = _meta(cleaned.cells[kept - 1]).get("grade_id")
            where = f"after cell {kept}" + (f" ({gid})" if gid else "")
        checks, fails = nb.cells[i], nb.cells[i + 1]
        if not (_ran(checks) and _ran(fails)):
            if last_ran > i:
                return f"tampered: the canary {where} did not run while later cells did", cleaned
            return None, cleaned  # execution stopped before here; the grading run reports why
        reason = _judge(checks, fails, _canary(secret, j // 2), where)
        if reason:
            return reason, cleaned
    return None, cleaned


# ---------------------------------------------------------------------------
# The same steps as nbconvert preprocessors (for nbgrader's Autograde)
# ---------------------------------------------------------------------------

class _Preprocessor(_NbconvertPreprocessor):
    # nbgrader registers its preprocessors without enabling them: on unless configured off
    enabled = Bool(True, help="Whether to run this step").tag(config=True)


def _info(resources) -> dict:
    return resources.setdefault("integrity", {})


class ScanCells(_Preprocessor):
    """resources["integrity"]["findings"] = scan_notebook(nb, locked_ids(nb)). Run it after
    nbgrader's sanitizing step (OverwriteCells), where locked metadata is trustworthy."""

    def preprocess(self, nb, resources):
        _info(resources)["findings"] = scan_notebook(nb, locked_ids(nb))
        return nb, resources


class InsertCanaries(_Preprocessor):
    """Adds canaries with a fresh secret, kept in resources["integrity"]["secret"]."""

    def preprocess(self, nb, resources):
        secret = new_secret()
        _info(resources)["secret"] = secret
        return insert_canaries(nb, secret), resources


class CheckCanaries(_Preprocessor):
    """resources["integrity"]["tampered"] = None or a one-line reason; removes the canaries."""

    def preprocess(self, nb, resources):
        info = _info(resources)
        secret = info.pop("secret", None)
        if secret is None:
            info["tampered"] = "tampered: canaries were never inserted (grading pipeline error)"
            return nb, resources
        info["tampered"], nb = check_canaries(nb, secret)
        return nb, resources


# ---------------------------------------------------------------------------
# Measuring what the canaries cost:  python -m instructor.integrity PART [PART...]
# ---------------------------------------------------------------------------

def cell_seconds(cell) -> float:
    """Seconds between the kernel starting and finishing ``cell`` (nbclient's timing record;
    0 when the cell did not run or its timestamps are unreadable)."""
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    try:
        return (datetime.fromisoformat(end.replace("Z", "+00:00"))
                - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return 0.0


def measure(notebook_path: str, repeat: int = 1) -> dict:
    """Run a notebook with canaries (nbgrader's Execute) and time the parts the canaries add:
    their cells in the kernel, and insert/check/scan in the grading process; then run it
    again without canaries, for the end-to-end difference (noisy on a busy machine)."""
    import time
    from pathlib import Path

    import nbformat
    from nbgrader.preprocessors import Execute

    nb = nbformat.read(notebook_path, as_version=4)
    out = {"notebook": notebook_path, "runs": []}
    for _ in range(repeat):
        secret = new_secret()
        t0 = time.perf_counter()
        findings = scan_notebook(nb, locked_ids(nb))
        t1 = time.perf_counter()
        marked = insert_canaries(nb, secret)
        t2 = time.perf_counter()
        Execute(timeout=600, kernel_name="python3").preprocess(
            marked, {"metadata": {"path": str(Path(notebook_path).parent)}})
        t3 = time.perf_counter()
        canaries = [c for c in marked.cells if is_canary(c, secret)]
        reason, _ = check_canaries(marked, secret)
        t4 = time.perf_counter()
        plain = copy.deepcopy(nb)
        Execute(timeout=600, kernel_name="python3").preprocess(
            plain, {"metadata": {"path": str(Path(notebook_path).parent)}})
        t5 = time.perf_counter()
        out["runs"].append({"notebook_without_canaries_s": round(t5 - t4, 1),
            "canaries": len(canaries) // 2, "canary_cells": len(canaries),
            "canary_kernel_s": round(sum(map(cell_seconds, canaries)), 3),
            "scan_s": round(t1 - t0, 3), "insert_s": round(t2 - t1, 3), "check_s": round(t4 - t3, 3),
            "notebook_s": round(t3 - t2, 1), "findings": len(findings), "tampered": reason})
    return out


if __name__ == "__main__":
    import json
    import sys

    for arg in sys.argv[1:]:
        print(json.dumps(measure(arg), indent=None))
