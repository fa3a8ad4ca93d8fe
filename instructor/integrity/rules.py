"""What the scan looks for: the tables of dangerous names, the priorities that decide which
reason a line gets when several apply, and :class:`Finding`, what the scan reports."""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple


class Priority(IntEnum):
    """Which reason a line keeps when several rules match it: the lowest wins."""

    REBINDS = 1      # changes something the tests share (an imported module, a class, a builtin)
    SHELL = 2        # reaches the IPython shell that runs the tests (magics, events, extensions)
    INTERNALS = 3    # imports or reaches interpreter internals (frames, dunders, exec, sys.modules)
    DANGEROUS = 4    # names a dangerous object (DANGEROUS below), or passes a builtin around
    OTHER = 5        # anything else worth a look
    MENTION = 9      # merely uses get_ipython(): a reason only when nothing stronger is on the line
    NOTE = 99        # a remark, not a finding (a cell that is not valid Python)


class Hit(NamedTuple):
    """One rule matching one line of one cell."""

    line: int
    priority: int
    reason: str
    note: bool = False


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




def owner(dotted: str) -> str:
    """Who else uses what ``dotted`` names, for a finding's reason."""
    if dotted.startswith("get_ipython()"):
        return "part of the shell that runs the tests"
    return "shared with the tests (an imported module or class, or a builtin)"


def shorten(text: str, width: int = 80) -> str:
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
# Named in a string, these change a function in place (functools.update_wrapper's assigned=,
# operator.attrgetter, setattr): the function keeps its address, so say so wherever they appear.
FUNCTION_PARTS = {"__code__", "__defaults__", "__kwdefaults__", "__closure__", "__globals__", "cell_contents"}
FUNCTION_PARTS_REASON = ("names a function's {} in a string (update_wrapper, attrgetter or setattr with it "
                         "changes a function in place)")
STORE_DUNDERS = {"__class__", "__bases__", "__dict__", "__code__", "__defaults__", "__kwdefaults__",
                 "__call__", "__getattr__", "__getattribute__", "__setattr__"}
# Dotted names (after resolving imports) -> reason. A name matches itself and anything under it.
DANGEROUS = {
    "builtins": "uses the builtins module (can change functions every cell sees)",
    "importlib": "uses importlib (can load or swap modules)",
    "ctypes": "uses ctypes (raw memory access)", "_ctypes": "uses ctypes (raw memory access)",
    "cffi": "uses cffi (native code)", "runpy": "uses runpy (runs other files)",
    "marshal": "uses marshal (code objects)", "ipykernel": "reaches the kernel itself (ipykernel)",
    # unpickling runs whatever calls the data names (setattr, eval, ...), out of the scan's sight
    "pickle.loads": "unpickles data (pickle.loads: runs code hidden in it)",
    "pickle.load": "unpickles data (pickle.load: runs code hidden in it)",
    "pickle.Unpickler": "unpickles data (pickle.Unpickler: runs code hidden in it)",
    "pickle._loads": "unpickles data (pickle._loads: runs code hidden in it)",
    "pickle._load": "unpickles data (pickle._load: runs code hidden in it)",
    "pickle._Unpickler": "unpickles data (pickle._Unpickler: runs code hidden in it)",
    "_pickle": "uses _pickle (unpickling runs code hidden in data)",
    "dill": "uses dill (unpickling runs code hidden in data)",
    "cloudpickle": "uses cloudpickle (unpickling runs code hidden in data)",
    "shelve": "uses shelve (unpickling runs code hidden in data)",
    "joblib.load": "unpickles data (joblib.load: runs code hidden in it)",
    "torch.package": "uses torch.package (unpickling runs code hidden in data)",
    # PyYAML's full loaders build any Python object a document names (!!python/object/apply)
    "yaml.load": "loads YAML that can build any Python object (yaml.load)",
    "yaml.load_all": "loads YAML that can build any Python object (yaml.load_all)",
    "yaml.unsafe_load": "loads YAML that can build any Python object (yaml.unsafe_load)",
    "yaml.unsafe_load_all": "loads YAML that can build any Python object (yaml.unsafe_load_all)",
    "yaml.Loader": "loads YAML that can build any Python object (yaml.Loader)",
    "yaml.UnsafeLoader": "loads YAML that can build any Python object (yaml.UnsafeLoader)",
    "yaml.constructor": "loads YAML that can build any Python object (yaml.constructor)",
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
# Loaders that unpickle (and so run code hidden in the data) unless a keyword keeps them safe:
# dotted name -> (keyword, its safe value). Left out, the keyword has its safe default.
UNPICKLING_UNLESS = {"torch.load": ("weights_only", True), "torch.serialization.load": ("weights_only", True),
                     "numpy.load": ("allow_pickle", False), "numpy.lib.format.read_array": ("allow_pickle", False)}


def unpickling_reason(loader: str | None, keywords: list[ast.keyword]) -> str | None:
    """Why a call of ``loader`` with ``keywords`` needs review, if it does: it unpickles, since
    a keyword of UNPICKLING_UNLESS is not its safe constant (``torch.load(f, weights_only=False)``,
    ``np.load(f, allow_pickle=flag)``) or ``**keywords`` could set it."""
    if loader not in UNPICKLING_UNLESS:
        return None
    keyword, safe = UNPICKLING_UNLESS[loader]
    for kw in keywords:
        if kw.arg is None or (kw.arg == keyword and not (isinstance(kw.value, ast.Constant)
                                                         and kw.value.value is safe)):
            said = f"{keyword}={ast.unparse(kw.value)}" if kw.arg else f"**{ast.unparse(kw.value)}"
            return f"unpickles data ({loader} with {said}: runs code hidden in it)"
    return None


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



def builtin_names() -> set[str]:
    return {name for name in dir(builtins) if not name.startswith("_")}

