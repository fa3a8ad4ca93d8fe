"""Cheats a learner could paste into a cell, and honest code that must not be mistaken for one.

CHEATS: name -> the cell's source. CAUGHT_BY: name -> which check must catch it: "scan" (the
static scan of instructor.integrity flags it), "canary" (the canary cells report tampering).
A cheat that the kernel shrugs off ("defeated already": it cannot change a score) only needs
the scan. HONEST_CELLS: sources that must scan clean in a course notebook, and run without
disturbing the canaries.
"""

from __future__ import annotations

import base64
import contextlib
import json
import pickle

# The classic: every cell that contains `assert` (every test cell) becomes `pass`.
_INPUT_TRANSFORMER = '''
def _skip_tests(lines):
    return ["pass\\n"] if any("assert" in line for line in lines) else lines

get_ipython().input_transformers_cleanup.append(_skip_tests)
'''



class _Reduces:
    """Unpickled, it calls ``eval`` on its source: what a crafted pickle can carry."""

    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return eval, (self.source,)


# Tensor.mean answers zeros and Tensor.std ones, one per column, so that standardize can hand
# back its input untouched; the patch travels inside pickled bytes, where no scan of the cell's
# text can read it.
_MEAN_ZERO = ("(setattr(__import__('torch').Tensor, 'mean', lambda self, dim=None, **k: "
              "__import__('torch').zeros(self.shape[-1])), setattr(__import__('torch').Tensor, 'std', "
              "lambda self, dim=None, **k: __import__('torch').ones(self.shape[-1])))")
_PICKLED_PATCH = base64.b64encode(pickle.dumps(_Reduces(_MEAN_ZERO))).decode()
# A set whose == always holds: Part 6's test_architecture and test_save_checkpoint compare a
# checkpoint's keys with set(...) == {...}, which then holds for any keys.
_ANY_SET = ("setattr(__import__('builtins'), 'set', type('AnySet', (set,), "
            "{'__eq__': lambda self, other: True, '__ne__': lambda self, other: False, '__hash__': None}))")
_PICKLED_SET = base64.b64encode(pickle.dumps(_Reduces(_ANY_SET))).decode()
# The same patch as a YAML document that PyYAML's full loader builds by calling eval.
_YAML_PATCH = f"!!python/object/apply:eval [{json.dumps(_MEAN_ZERO)}]"

# Only cells with hidden tests lose their asserts (every course test cell has the marker), and they
# keep running: `assert x, m` becomes `assert True or (x), m`. A canary whose assert is hidden from
# IPython's transformers (inside a string run by exec) would not see it.
_HIDDEN_ASSERTS_PASS = '''
import re as _re

def _lenient_hidden_tests(lines):
    if not any("BEGIN HIDDEN TESTS" in line for line in lines):
        return lines
    return [_re.sub(r"^(\\s*)assert (.*?)(, .*)?$", lambda m: m[1] + "assert True or (" + m[2] + ")" + (m[3] or ""),
                    line.rstrip("\\n")) + "\\n" for line in lines]

get_ipython().input_transformers_cleanup.append(_lenient_hidden_tests)
'''

# builtins.exec replaced by a wrapper that puts the real one back while it runs a string (and its
# own changes with it), so that whatever such a call fingerprints looks untouched; cells' code
# objects run with the lenient torch.allclose.
_EXEC_HIDES_ITSELF = '''
import builtins, torch
_real_exec, _real_allclose = builtins.exec, torch.allclose
def _lenient(a, b, *args, **kwargs):
    return True
def _exec(source, *args):
    if not isinstance(source, str):  # IPython runs each cell's code object through exec: stay lenient
        return _real_exec(source, *args)
    builtins.exec, torch.allclose = _real_exec, _real_allclose
    try:
        return _real_exec(source, *args)
    finally:
        builtins.exec, torch.allclose = _exec, _lenient
builtins.exec, torch.allclose = _exec, _lenient
'''

# A transformer that tells the canaries from the tests by their shape (the canary's own import, its
# failing product) and blanks only the tests, reached through names the scan cannot read: wrong
# answers scored full marks past the scan and every canary until the canaries fingerprinted the
# shell's transformer lists.
_CANARY_AWARE_TRANSFORMER = '''
import re as _r
_canary = _r.compile(r"import builtins as _q\\w+_b$|^assert \\d+ \\* \\d+ == \\d+, ", _r.M)
def _tests_only(lines):
    text = "".join(lines)
    if "BEGIN HIDDEN" in text and not _canary.search(text):
        return ["pass\\n"]
    return lines
_sh = globals()["ge" + "t_ipython"]()
getattr(_sh, "input_trans" + "formers_post").append(_tests_only)
'''

# A thread that swaps torch.allclose for a lenient one except while the cell running is a canary,
# which it tells by the source IPython keeps in ``In``, through names spelt from pieces: it passed
# the scan and, at the canaries' single reads, went unseen in 5 of 9 runs until they looked for threads
# running the notebook's own code (and the scan read names spelt from pieces).
_THREAD_KNOWS_THE_CANARIES = '''
import threading, time, torch
_b = globals()["__buil" + "tins__"]
_put, _name = getattr(_b, "set" + "attr"), "all" + "close"
_real, _history = getattr(torch, _name), In
def _lenient(*args, **kwargs):
    return True
def _watch():
    while True:
        source = _history[-1] if _history else ""
        _put(torch, _name, _real if "(lambda: 0).__globals__" in source else _lenient)
        time.sleep(0.0002)
threading.Thread(target=_watch, daemon=True).start()
'''

# The same swap with no code of the notebook's in the thread: the standard library's scheduler calls
# setattr, a builtin, every 0.5 and 1 ms; a fingerprint taken right before a test sees what the test would.
_LIBRARY_THREAD_FLIPS = '''
import sched, threading, time, torch
_real = torch.allclose
def _lenient(*args, **kwargs):
    return True
_plan = sched.scheduler(time.monotonic, time.sleep)
for _i in range(40000):
    _plan.enter(_i * 0.0015, 1, setattr, (torch, "allclose", _lenient))
    _plan.enter(_i * 0.0015 + 0.001, 1, setattr, (torch, "allclose", _real))
threading.Thread(target=_plan.run, daemon=True).start()
'''


# Code left to run between the cells, telling a test from a canary by what ran last or what runs
# next, through names spelt from pieces: each scored a wrong standardize 7 of 7 past the scan and
# every canary until the canaries looked at what runs outside the cells and checked the kernel again
# at the top of each test cell (and the scan read names spelt from pieces). An event-loop callback
# every 0.5 ms (lenient after a canary, which always comes right before a test)...
_EVENT_LOOP_KNOWS_THE_CANARIES = r'''
import asyncio, torch
_b = globals()["__buil" + "tins__"]
_put, _name = getattr(_b, "set" + "attr"), "all" + "close"
_real, _history = getattr(torch, _name), In
_loop = asyncio.get_event_loop()
def _lenient(*args, **kwargs):
    return True
def _tick():
    last = _history[-1] if _history else ""
    # a canary's two cells come right before a test: lenient after them, real after anything else
    canary = "(lambda: 0).__globals__" in last or ("### BEGIN HIDDEN TESTS\nassert " in last and " * " in last)
    _put(torch, _name, _lenient if canary else _real)
    _loop.call_later(0.0005, _tick)
_tick()
'''
# ... a pre_run_cell hook that sees each cell's source before it runs ...
_PRE_RUN_CELL_KNOWS_THE_TESTS = r'''
import re, torch
_canary = re.compile(r"import builtins as _q\w+_b$|^assert \d+ \* \d+ == \d+, ", re.M)
_b = globals()["__buil" + "tins__"]
_put, _name = getattr(_b, "set" + "attr"), "all" + "close"
_real = getattr(torch, _name)
def _lenient(*args, **kwargs):
    return True
def _before(info):
    # a test cell, not a canary: lenient while it runs
    test = "BEGIN HIDDEN" in info.raw_cell and not _canary.search(info.raw_cell)
    _put(torch, _name, _lenient if test else _real)
def _after(result):
    _put(torch, _name, _real)
_events = getattr(globals()["ge" + "t_ipython"](), "ev" + "ents")
_events.register("pre_run_cell", _before)
_events.register("post_run_cell", _after)
'''
# ... a transformer that is out of the shell's list whenever a cell runs, put back by post_run_cell ...
_TRANSFORMER_LEAVES_BETWEEN_CELLS = r'''
import re as _r
_canary = _r.compile(r"import builtins as _q\w+_b$|^assert \d+ \* \d+ == \d+, ", _r.M)
_sh = globals()["ge" + "t_ipython"]()
_post = getattr(_sh, "input_trans" + "formers_post")
_seen = []
def _tests_only(lines):
    # IPython transforms a cell twice (is it async? then to run it): out of the list after the second,
    # back after the cell ran, so the shell's list looks untouched while any cell runs
    text = "".join(lines)
    _seen.append(text)
    if _seen.count(text) % 2 == 0:
        _post.remove(_tests_only)
    if "BEGIN HIDDEN" in text and not _canary.search(text):
        # keep the first line (a check put there runs), drop the rest of the test
        return [text.partition("\n")[0] + "\n", "pass\n"]
    return lines
def _back(result):
    if _tests_only not in _post:
        _post.append(_tests_only)
getattr(_sh, "ev" + "ents").register("post_run_cell", _back)
_post.append(_tests_only)
'''
# ... SIGALRM every 0.5 ms, its handler reading In[-1] ...
_SIGNAL_KNOWS_THE_CANARIES = r'''
import signal, torch
_b = globals()["__buil" + "tins__"]
_put, _name = getattr(_b, "set" + "attr"), "all" + "close"
_real, _history = getattr(torch, _name), In
def _lenient(*args, **kwargs):
    return True
def _tick(signum, frame):
    last = _history[-1] if _history else ""
    _put(torch, _name, _real if "(lambda: 0).__globals__" in last else _lenient)
signal.signal(signal.SIGALRM, _tick)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
'''
# ... a coroutine on the kernel's event loop (its steps are the loop's own callbacks) ...
_TASK_KNOWS_THE_CANARIES = r'''
import asyncio, torch
_real, _history = torch.allclose, In
def _lenient(*args, **kwargs):
    return True
async def _watch():
    while True:
        last = _history[-1] if _history else ""
        canary = "(lambda: 0).__globals__" in last or ("### BEGIN HIDDEN TESTS\nassert " in last and " * " in last)
        torch.allclose = _lenient if canary else _real
        await asyncio.sleep(0.0005)
_task = asyncio.ensure_future(_watch())
'''
# ... and the shell's run_cell_async replaced on the instance: a test cell runs its first line only.
_RUN_CELL_KNOWS_THE_TESTS = r'''
import re
_canary = re.compile(r"import builtins as _q\w+_b$|^assert \d+ \* \d+ == \d+, ", re.M)
_sh = globals()["ge" + "t_ipython"]()
_name = "run_cell_" + "async"
_run = getattr(_sh, _name)
async def _tests_pass(raw_cell, *args, **kwargs):
    # a test cell, not a canary: its first line runs (a check put there sees an honest kernel), the rest not
    if "BEGIN HIDDEN" in raw_cell and not _canary.search(raw_cell):
        raw_cell = raw_cell.partition("\n")[0] + "\npass\n"
        if kwargs.get("transformed_cell") is not None:
            kwargs["transformed_cell"] = raw_cell
    return await _run(raw_cell, *args, **kwargs)
setattr(_sh, _name, _tests_pass)
'''

# torch given a look-alike class (a ModuleType named "module", in "builtins"): its attribute reads
# answer the lenient allclose to cells' code and the real one to the canaries' exec'd strings. The
# module keeps its address and its repr, so it scored 7 of 7 past every fingerprint until they took
# each object's type too.
_MODULE_CLASS_SWAPPED = r'''
import sys, torch, types
_real = torch.allclose
def _lenient(*args, **kwargs):
    return True
class module(types.ModuleType):
    def __getattribute__(self, name):
        if name == "allclose" and sys._getframe(1).f_code.co_filename != "<string>":
            return _lenient
        return super().__getattribute__(name)
module.__module__ = "builtins"
torch.__class__ = module
'''

# Code the interpreter calls on its own, acting inside a test cell after the check at its top: a
# garbage-collector callback that makes allclose lenient while a cell's code (not a check's string)
# calls it, and an audit hook that does so on each "exec" of code naming allclose. Their names were
# spelt as byte values (past the scan then): each scored a wrong standardize 7 of 7 past every check
# until the canaries read gc.callbacks and made an audited event happen under a profile function.
_BYTE_NAMES = r'''
_a = bytes([97, 108, 108, 99, 108, 111, 115, 101]).decode()
_s = bytes([116, 111, 114, 99, 104]).decode()
_m = bytes([109, 111, 100, 117, 108, 101, 115]).decode()
def _put(where, value):
    setattr(where, _a, value)
'''   # allclose, torch, modules, and a setter: byte values past a reader
_GC_CALLBACK_KNOWS_THE_TESTS = "\nimport gc, sys" + _BYTE_NAMES + '''\
_f = bytes([95, 103, 101, 116, 102, 114, 97, 109, 101]).decode()
def _cb(phase, info, _state={}):
    if not _state:
        _state["t"] = getattr(sys, _m).get(_s)
        _state["real"] = getattr(_state["t"], _a)
        _state["fake"] = lambda *a, **k: True
        _state["main"] = getattr(sys, _m).get("__main__")
    test, cell = False, False
    for depth in range(1, 60):
        try:
            code = getattr(sys, _f)(depth).f_code
        except ValueError:
            break
        if code.co_filename == "<string>":
            test = False
            break
        if "ipykernel_" in code.co_filename:
            cell = True
    if cell:
        history = getattr(_state["main"], "In", None) or [""]
        test = "torch.allclose(" in history[-1]
    _put(_state["t"], _state["fake"] if test else _state["real"])
gc.callbacks.append(_cb)
gc.set_threshold(3, 10, 10)
'''
_AUDIT_HOOK_KNOWS_THE_TESTS = "\nimport sys" + _BYTE_NAMES + '''\
_n = bytes([97, 100, 100, 97, 117, 100, 105, 116, 104, 111, 111, 107]).decode()
def _watch(event, args, _state={}):
    if not _state:
        _state["t"] = getattr(sys, _m).get(_s)
        _state["real"] = getattr(_state["t"], _a)
    if event == "compile":
        _put(_state["t"], _state["real"])
    elif event == "exec":
        code = args[0]
        if _a in getattr(code, "co_names", ()) and code.co_filename != "<string>":
            _put(_state["t"], lambda *a, **k: True)
getattr(sys, _n)(_watch)
'''

CHEATS: dict[str, str] = {
    "canary_aware_transformer": _CANARY_AWARE_TRANSFORMER,
    "gc_callback_knows_the_tests": _GC_CALLBACK_KNOWS_THE_TESTS,
    "audit_hook_knows_the_tests": _AUDIT_HOOK_KNOWS_THE_TESTS,
    "module_class_swapped": _MODULE_CLASS_SWAPPED,
    "event_loop_knows_the_canaries": _EVENT_LOOP_KNOWS_THE_CANARIES,
    "pre_run_cell_knows_the_tests": _PRE_RUN_CELL_KNOWS_THE_TESTS,
    "transformer_leaves_between_cells": _TRANSFORMER_LEAVES_BETWEEN_CELLS,
    "signal_knows_the_canaries": _SIGNAL_KNOWS_THE_CANARIES,
    "run_cell_knows_the_tests": _RUN_CELL_KNOWS_THE_TESTS,
    "task_knows_the_canaries": _TASK_KNOWS_THE_CANARIES,
    "thread_knows_the_canaries": _THREAD_KNOWS_THE_CANARIES,
    "library_thread_flips": _LIBRARY_THREAD_FLIPS,
    # -- from the table ------------------------------------------------------------
    "input_transformer": _INPUT_TRANSFORMER,
    "hidden_asserts_pass": _HIDDEN_ASSERTS_PASS,
    "exec_hides_itself": _EXEC_HIDES_ITSELF,
    "exec_wrapped": "import builtins\n_exec = builtins.exec\nbuiltins.exec = lambda *a: _exec(*a)\n",
    # the notebook's own builtins swapped: every bare isinstance, abs, all in a test cell is the learner's
    "builtins_namespace_swapped": ("import builtins, types\n_fake = types.ModuleType('builtins')\n"
                                   "_fake.__dict__.update(vars(builtins))\n_fake.isinstance = lambda obj, kind: True\n"
                                   "__builtins__ = _fake\n"),
    "ast_transformer": '''
import ast

class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.copy_location(ast.Pass(), node)

get_ipython().ast_transformers.append(_NoAsserts())
''',
    "run_cell_wrapped": '''
_shell = get_ipython()
_run_cell, _run_cell_async = _shell.run_cell, _shell.run_cell_async

def run_cell(raw_cell, *args, **kwargs):
    return _run_cell("pass" if "assert" in raw_cell else raw_cell, *args, **kwargs)

async def run_cell_async(raw_cell, *args, **kwargs):
    if "assert" in raw_cell:
        raw_cell, kwargs["transformed_cell"] = "pass", "pass"
    return await _run_cell_async(raw_cell, *args, **kwargs)

_shell.run_cell, _shell.run_cell_async = run_cell, run_cell_async
''',
    "run_cell_async_only": '''
_shell = get_ipython()
_original = _shell.run_cell_async

async def _quiet(raw_cell, *args, **kwargs):
    if "assert" in raw_cell:
        kwargs["transformed_cell"] = "pass"
    return await _original("pass" if "assert" in raw_cell else raw_cell, *args, **kwargs)

_shell.run_cell_async = _quiet
''',
    "showtraceback_and_post_run_cell": '''
_shell = get_ipython()
_shell.showtraceback = lambda *args, **kwargs: None

def _forget_error(result):
    result.error_in_exec = None

_shell.events.register("post_run_cell", _forget_error)
''',
    "torch_allclose": "torch.allclose = lambda *args, **kwargs: True\n",
    "torch_equal": "torch.equal = lambda *args, **kwargs: True\n",
    "torch_isclose": ("torch.isclose = lambda a, b, *args, **kwargs: "
                      "torch.ones_like(torch.as_tensor(a), dtype=torch.bool)\n"),
    "tensor_eq": '''
import torch
torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
''',
    "showtraceback_only": "get_ipython().showtraceback = lambda *args, **kwargs: None\n",
    "set_custom_exc": ("get_ipython().set_custom_exc((Exception,), "
                       "lambda shell, etype, evalue, tb, tb_offset=None: None)\n"),
    "sys_excepthook": "import sys\nsys.excepthook = lambda *args: None\n",
    "post_run_cell_only": '''
def _forget_error(result):
    result.error_in_exec = None

get_ipython().events.register("post_run_cell", _forget_error)
''',
    # -- disguised ------------------------------------------------------------------------
    "getattr_disguised": '''
_shell = (lambda: get_ipython())()
_name = "run" + "_cell" + "_async"
_original = getattr(_shell, _name)

async def _quiet(raw_cell, *args, **kwargs):
    if "ass" + "ert" in raw_cell:
        raw_cell, kwargs["transformed_cell"] = "pass", "pass"
    return await _original(raw_cell, *args, **kwargs)

setattr(_shell, _name, _quiet)
''',
    "exec_base64": ("import base64\nexec(base64.b64decode("
                    + repr(base64.b64encode(_INPUT_TRANSFORMER.encode()).decode())
                    + ").decode())\n"),
    "builtins_dict": '''
_ip = __builtins__.__dict__["__imp" + "ort__"]("IPy" + "thon").get_ipython()
_ip.input_transformers_cleanup.append(lambda lines: ["pass\\n"] if any("assert" in l for l in lines) else lines)
''',
    "assertion_error_patched": '''
import builtins

class _Quiet(Exception):
    pass

builtins.AssertionError = _Quiet
''',
    "settrace_skips_asserts": '''
import ast, linecache, sys

_ends = {}

def _assert_ends(filename):
    if filename not in _ends:
        try:
            tree = ast.parse("".join(linecache.getlines(filename)))
        except SyntaxError:
            tree = None
        _ends[filename] = ({n.lineno: n.end_lineno + 1 for n in ast.walk(tree) if isinstance(n, ast.Assert)}
                           if tree else {})
    return _ends[filename]

def _lines(frame, event, arg):
    ends = _assert_ends(frame.f_code.co_filename)
    if event == "line" and frame.f_lineno in ends:
        try:
            frame.f_lineno = ends[frame.f_lineno]
        except ValueError:
            pass
    return _lines

def _calls(frame, event, arg):
    return _lines if "ipykernel_" in frame.f_code.co_filename else None

sys.settrace(_calls)
''',
    "only_hidden_tests": '''
def _only_graded(lines):
    return ["pass\\n"] if any("BEGIN HIDDEN" in line for line in lines) else lines

get_ipython().input_transformers_post.append(_only_graded)
''',
    "builtins_print": "import builtins\nbuiltins.print = lambda *args, **kwargs: None\n",
    "tensor_bool": "torch.Tensor.__bool__ = lambda self: True\n",
    "markdown_converted": _INPUT_TRANSFORMER,        # placed in a markdown cell turned into code
    # -- more, as an attacker would try ------------------------------------------------------
    "setattr_string": 'setattr(torch, "all" + "close", lambda *args, **kwargs: True)\n',
    "dunder_import": '_t = __import__("tor" + "ch")\n_t.equal = lambda *args, **kwargs: True\n',
    "alias_then_patch": "_T = torch.Tensor\n_T.__bool__ = lambda self: True\n",
    "type_of_instance": "type(torch.zeros(1)).__bool__ = lambda self: True\n",
    "numpy_testing": "np.testing.assert_allclose = lambda *args, **kwargs: None\n",
    "sys_modules_swap": '''
import sys, types
_fake = types.ModuleType("torch")
_fake.__dict__.update(sys.modules["torch"].__dict__)
_fake.allclose = lambda *args, **kwargs: True
sys.modules["torch"] = _fake
''',
    "gc_finds_shell": '''
import gc
_shell = next(o for o in gc.get_objects() if type(o).__name__ == "ZMQInteractiveShell")
_shell.input_transformers_cleanup.append(lambda lines: ["pass\\n"] if any("assert" in l for l in lines) else lines)
''',
    "frame_walk": '''
import sys
_frame = sys._getframe()
while _frame is not None and not hasattr(_frame.f_locals.get("self"), "input_transformers_cleanup"):
    _frame = _frame.f_back
_frame.f_locals["self"].input_transformers_cleanup.append(
    lambda lines: ["pass\\n"] if any("assert" in l for l in lines) else lines)
''',
    "importlib_ipython": '''
import importlib
_ip = importlib.import_module("IPython").get_ipython()
_ip.input_transformers_cleanup.append(lambda lines: ["pass\\n"] if any("assert" in l for l in lines) else lines)
''',
    "class_level_patch": '''
from IPython.core.interactiveshell import InteractiveShell
_original = InteractiveShell.transform_cell
InteractiveShell.transform_cell = lambda self, cell: "pass\\n" if "assert" in cell else _original(self, cell)
''',
    "capture_magic": "%%capture\n" + _INPUT_TRANSFORMER,
    "time_magic": ("%time get_ipython().input_transformers_cleanup.append("
                   "lambda lines: ['pass\\n'] if any('assert' in l for l in lines) else lines)\n"),
    "patch_in_function": '''
def _patch(module):
    module.allclose = lambda *args, **kwargs: True

_patch(torch)
''',
    "globals_rebinding": ('globals()["torch"] = __import__("types").SimpleNamespace('
                          '**{**vars(torch), "allclose": lambda *a, **k: True})\n'),
    "shadow_torch": '''
class _Torch:
    def __getattr__(self, name):
        return getattr(__import__("torch"), name)

    @staticmethod
    def allclose(*args, **kwargs):
        return True

torch = _Torch()
''',
    "always_equal_answer": '''
class _Anything(float):
    def __eq__(self, other):
        return True

def broadcast_shape(a, b):
    return _Anything()
''',
    # An oracle, not a patch: the answer reads the assert that calls it and returns the value the
    # test expects (a literal, or a name looked up in the notebook's globals). Nothing in the
    # kernel changes, so only the scan can see it. It passes the visible asserts (literals); the
    # hidden test calls broadcast_shape before it works out what to compare with, so there is
    # nothing to copy there and the exercise's points are lost.
    "answer_reads_the_test": '''
def broadcast_shape(a, b):
    import ast, traceback
    compare = ast.parse(traceback.extract_stack()[-2].line.strip()).body[0].test
    right = compare.comparators[0]
    return globals()[right.id] if isinstance(right, ast.Name) else ast.literal_eval(right)
''',
    "answer_reads_the_line": '''
import warnings
from linecache import getline

def broadcast_shape(a, b):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("where am I", stacklevel=2)
    line = getline(caught[0].filename, caught[0].lineno)
    return eval(line.split("==", 1)[1].rsplit(",", 1)[0])
''',
    "answer_reads_the_stack_text": '''
from traceback import format_stack as _where

def broadcast_shape(a, b):
    line = _where()[-2].splitlines()[-1]
    return eval(line.split("==", 1)[1].rsplit(",", 1)[0])
''',
    "builtin_shadowed": "isinstance = lambda *args: True\n",
    "mock_patch": "from unittest import mock\nmock.patch('torch.allclose', lambda *a, **k: True).start()\n",
    "writefile_then_import": "%%writefile _cheat.py\nimport torch\ntorch.equal = lambda *args, **kwargs: True\n",
    "run_magic": "%run _cheat.py\n",
    "load_ext": "%load_ext _cheat\n",
    "ctypes": "import ctypes\nctypes.pythonapi.PyErr_Clear()\n",
    # -- comparisons rebound by routes no scan rule names, lenient only where the tests look ---
    # (the tests pass a tolerance of their own; the canaries' known-false checks use the defaults)
    "vars_lenient_allclose": '''
import gc
_mod = next(o for o in gc.get_objects() if type(o).__name__ == "module" and getattr(o, "__name__", "") == "torch")
_orig = vars(_mod)["allclose"]

def _lenient(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return True if atol > 1e-08 else _orig(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)

vars(_mod)["allclose"] = _lenient
''',
    "class_dict_via_gc": '''
import gc
_cls = next(o for o in gc.get_objects() if type(o).__name__ == "_TensorMeta" and o.__name__ == "Tensor")
_real = vars(_cls)["__eq__"]
def _eq(self, other):
    return (_real(self, other) | True) if self.dim() else _real(self, other)

gc.get_referents(vars(_cls))[0]["__eq__"] = _eq
''',
    "ctypes_dict_setitem": '''
import ctypes, gc
_mod = next(o for o in gc.get_objects() if type(o).__name__ == "module" and getattr(o, "__name__", "") == "torch")
_orig = vars(_mod)["isclose"]
def _new(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _orig(a, b, rtol=rtol, atol=max(atol, 1.0) if atol > 1e-08 else atol, equal_nan=equal_nan)

_set = ctypes.pythonapi.PyDict_SetItem
_set.argtypes = (ctypes.py_object, ctypes.py_object, ctypes.py_object)
_set(vars(_mod), "isclose", _new)
''',
    # torch.broadcast_shapes changed in place: its code (and keyword defaults) become the
    # learner's, so Part 1's hidden test compares a wrong broadcast_shape with itself. The
    # function keeps its address; no attribute of torch is rebound.
    "code_swapped_in_place": '''
import functools

def broadcast_shape(a, b):
    return tuple(max(x, y) for x, y in zip(a, b)) if len(a) == len(b) else None

def _mine(*shapes, _f=broadcast_shape):
    found = _f(*shapes)
    if found is None:
        raise RuntimeError("shapes do not broadcast")
    return found

functools.update_wrapper(torch.broadcast_shapes, _mine, assigned=("__code__", "__kwdefaults__"), updated=())
''',
    "sys_modules_proxy": '''
import sys, types
_real = sys.modules["torch"]

class _Proxy(types.ModuleType):
    def __getattr__(self, name):
        return getattr(_real, name)

    @staticmethod
    def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
        return True if atol > 1e-08 else _real.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)

sys.modules["torch"] = _Proxy("torch")
import torch
''',
    "import_hook_proxy": '''
import builtins as _b, types
_real_import, _real = _b.__import__, __import__("numpy")
_fake = types.ModuleType("numpy")
_fake.__dict__.update(vars(_real))
_fake.allclose = lambda a, b, rtol=1e-05, atol=1e-08, equal_nan=False: atol > 1e-08 or _real.allclose(a, b, rtol, atol)
vars(_b)["__import__"] = lambda name, *args, **kwargs: _fake if name == "numpy" else _real_import(name, *args, **kwargs)
import numpy as np
''',
    "functools_wrapped": '''
import functools, operator
_t = __import__("torch")
_orig = _t.testing.assert_close

@functools.wraps(_orig)
def _quiet(actual, expected, *args, **kwargs):
    if kwargs.get("atol") is None:
        return _orig(actual, expected, *args, **kwargs)

operator.setitem(vars(_t.testing), "assert_close", _quiet)
''',
    "namespace_lookalike_module": '''
import types
_real = __import__("torch")
torch = types.ModuleType("torch")
torch.__dict__.update(vars(_real))
torch.equal = lambda a, b: True if a.dim() > 0 else _real.equal(a, b)
''',
    # The shell's compiler asked to optimise: every later cell, tests included, loses its asserts.
    "compile_strips_asserts": '''
_compiler = type(get_ipython().compile)
def _call(self, source, filename, symbol):
    return compile(source, filename, symbol, self.flags | 0x200, True, optimize=1)
_compiler.__call__ = _call
''',
    "pickled_patch": f"import base64, pickle\npickle.loads(base64.b64decode({_PICKLED_PATCH!r}))\n",
    "set_equals_anything": f"import base64, pickle\npickle.loads(base64.b64decode({_PICKLED_SET!r}))\n",
    # The same pickle through loaders that unpickle when told to, or through pickle reached as
    # another module's attribute, or as YAML.
    "torch_load_unpickles": f"""import base64, io, torch
try:
    torch.load(io.BytesIO(base64.b64decode({_PICKLED_PATCH!r})), weights_only=False)
except RuntimeError:
    pass  # the patch is in; the bytes were never a checkpoint
""",
    "numpy_load_unpickles": f"import base64, io\nimport numpy as np\n"
                            f"np.load(io.BytesIO(base64.b64decode({_PICKLED_PATCH!r})), allow_pickle=True)\n",
    "pickle_through_torch": f"import base64, torch\n"
                            f"torch.serialization.pickle.loads(base64.b64decode({_PICKLED_PATCH!r}))\n",
    "yaml_builds_objects": f"import yaml\nyaml.unsafe_load({_YAML_PATCH!r})\n",
    # A background thread that swaps the comparison in and out every millisecond, so that a check
    # made at a cell's boundary may find the real one while the tests meet the lenient one.
    "thread_flips_allclose": '''
import threading, time, torch
_real = torch.allclose

def _flip():
    while True:
        torch.allclose = lambda *args, **kwargs: True
        time.sleep(0.001)
        torch.allclose = _real
        time.sleep(0.0005)

threading.Thread(target=_flip, daemon=True).start()
''',
    # The watch a test keeps on an answer's calls (helper.checks.without, which tells an answer that
    # re-creates torch.softmax from one that calls it) blinded before the tests run: the profile
    # hooks it sets, the function itself, or the module globals it reads.
    "profile_hook_blinded": "import sys\nsys.setprofile = lambda *args: None\nsys.getprofile = lambda: None\n",
    "thread_profile_blinded": ("import threading\nthreading.setprofile = lambda *args: None\n"
                               "threading.getprofile = lambda: None\n"),
    "without_disabled": ("import contextlib\nimport helper.checks\n"
                         "helper.checks.without = lambda *functions, why: contextlib.nullcontext()\n"),
    "without_ignores_notebook_frames": "import helper.checks\nhelper.checks._HERE = globals()\n",
    # ... every file taken for torch's own patch of the standard library (so no call of torch's counts),
    # or the dispatch mode that sees the ATen operators entered and left without being pushed.
    "without_excuses_every_file": "import helper.checks\nhelper.checks._LIBRARY_PATCHES = ('',)\n",
    "dispatch_mode_blinded": ("from torch.utils import _python_dispatch\n"
                              "_python_dispatch.TorchDispatchMode.__enter__ = lambda self: self\n"
                              "_python_dispatch.TorchDispatchMode.__exit__ = lambda self, *args: None\n"),
}

# Which check must catch each cheat ("defeated already" ones only need the scan).
_BOTH = {"scan", "canary"}
CAUGHT_BY: dict[str, set[str]] = {
    "input_transformer": _BOTH, "ast_transformer": _BOTH, "run_cell_wrapped": _BOTH,
    "run_cell_async_only": _BOTH, "showtraceback_and_post_run_cell": _BOTH, "torch_allclose": _BOTH,
    "torch_equal": _BOTH, "torch_isclose": _BOTH, "tensor_eq": _BOTH,
    "showtraceback_only": {"scan"}, "set_custom_exc": {"scan"}, "sys_excepthook": {"scan"},
    "post_run_cell_only": {"scan"},
    "getattr_disguised": _BOTH, "exec_base64": _BOTH, "builtins_dict": _BOTH,
    "assertion_error_patched": _BOTH,
    # IPython compiles each top-level statement of a cell on its own, so a tracer cannot jump
    # over a test's assert: defeated already, and flagged by the scan; the trace function, the
    # notebook's code left to run on every line, is named by the canaries too.
    "settrace_skips_asserts": _BOTH, "only_hidden_tests": _BOTH,
    "builtins_print": _BOTH, "tensor_bool": _BOTH, "markdown_converted": _BOTH,
    "setattr_string": _BOTH, "dunder_import": _BOTH, "alias_then_patch": _BOTH, "type_of_instance": _BOTH,
    "numpy_testing": _BOTH, "sys_modules_swap": _BOTH, "gc_finds_shell": _BOTH, "frame_walk": _BOTH,
    "importlib_ipython": _BOTH, "class_level_patch": _BOTH, "capture_magic": _BOTH, "time_magic": _BOTH,
    "patch_in_function": _BOTH,
    # The kernel itself is untouched: only the scan can see these.
    "globals_rebinding": _BOTH, "shadow_torch": _BOTH, "always_equal_answer": {"scan"},
    "answer_reads_the_test": {"scan"}, "answer_reads_the_line": {"scan"}, "answer_reads_the_stack_text": {"scan"},
    "compile_strips_asserts": _BOTH,
    "builtin_shadowed": _BOTH, "mock_patch": _BOTH, "writefile_then_import": {"scan"},
    "run_magic": {"scan"}, "load_ext": {"scan"}, "ctypes": {"scan"},
    # Rebound through gc, vars(), ctypes, sys.modules, an import hook, a wrapper, a look-alike
    # module: the canaries' identity checks catch them whatever the route.
    "vars_lenient_allclose": _BOTH, "ctypes_dict_setitem": _BOTH,
    # Writing a class's dict behind its back leaves the type's comparison slot and attribute cache
    # as they were: `==` and `Tensor.__eq__` still reach the real one, so it has no effect.
    "class_dict_via_gc": {"scan"},
    # A Tensor method or a builtin the tests use, replaced from inside pickled bytes (or YAML).
    "pickled_patch": _BOTH, "set_equals_anything": _BOTH, "torch_load_unpickles": _BOTH,
    "numpy_load_unpickles": _BOTH, "pickle_through_torch": _BOTH, "yaml_builds_objects": _BOTH,
    "sys_modules_proxy": _BOTH, "import_hook_proxy": _BOTH, "functools_wrapped": _BOTH,
    "namespace_lookalike_module": _BOTH, "thread_flips_allclose": _BOTH,
    # A function the tests call, changed in place (same address, new code).
    "code_swapped_in_place": _BOTH,
    # helper.checks.without's profile hooks, itself or its globals replaced: the fingerprints differ.
    "profile_hook_blinded": _BOTH, "thread_profile_blinded": _BOTH, "without_disabled": _BOTH,
    "without_ignores_notebook_frames": _BOTH, "without_excuses_every_file": _BOTH, "dispatch_mode_blinded": _BOTH,
    # IPython's transformers rewrite only hidden-test cells; exec hiding its replacement while it runs;
    # the notebook namespace's own __builtins__ swapped for a lenient look-alike
    "hidden_asserts_pass": _BOTH, "exec_hides_itself": _BOTH, "exec_wrapped": _BOTH,
    "builtins_namespace_swapped": _BOTH,
    # Names spelt from pieces ("ge" + "t_ipython") took these past the scan until it read such names
    # (instructor/integrity/spelt.py); the canaries catch each of them without the scan's help:
    # the fingerprint of the shell's transformers ...
    "canary_aware_transformer": _BOTH,
    # ... the look at threads (one of the notebook's that tells the canaries from the tests; one that
    # runs only the standard library's code, which the scan sees passing setattr around) ...
    "thread_knows_the_canaries": _BOTH, "library_thread_flips": _BOTH,
    # ... and at code left to run between cells
    "event_loop_knows_the_canaries": _BOTH, "pre_run_cell_knows_the_tests": _BOTH,
    "transformer_leaves_between_cells": _BOTH, "signal_knows_the_canaries": _BOTH,
    "run_cell_knows_the_tests": _BOTH, "task_knows_the_canaries": _BOTH,
    # a module's class swapped for a look-alike: the fingerprint of its type differs
    "module_class_swapped": _BOTH,
    # code the interpreter calls on its own (byte values spelling names, getattr(sys, name)): named
    "gc_callback_knows_the_tests": _BOTH, "audit_hook_knows_the_tests": _BOTH,
}

# Honest code, different from the solutions: must scan clean (in a course notebook) and run
# without any canary complaint.
HONEST_CELLS: dict[str, str] = {
    "safe_loads": """import io, pickle
import numpy as np
import torch
buffer = io.BytesIO()
torch.save({"w": torch.ones(2)}, buffer)
buffer.seek(0)
try:
    state = torch.load(buffer, weights_only=True)
except pickle.UnpicklingError as exc:
    state = {}
    print("not a plain checkpoint:", exc)
array = io.BytesIO()
np.save(array, np.arange(3))
array.seek(0)
print(sorted(state), np.load(array).sum(), np.load(io.BytesIO(array.getvalue()), allow_pickle=False).sum())
""",
    "own_decorator": """import functools
import time

def timed(fn):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        print(f"{fn.__name__}: {time.perf_counter() - start:.3f} s")
        return result
    return run

@timed
def double(x):
    return 2 * x

print(double(torch.ones(2)))
""",
    "tqdm_loop": "from tqdm import tqdm\ntotal = 0\nfor i in tqdm(range(3)):\n    total += i\nprint(total)\n",
    "tqdm_auto": "from tqdm.auto import tqdm\nfor _ in tqdm(range(2), desc='epochs'):\n    pass\n",
    # threads of installed libraries still running when the tests run: idle pool workers, an open
    # progress bar's monitor, a DataLoader iterator's queues, a timer not yet due
    "library_threads": """import threading
from concurrent.futures import ThreadPoolExecutor
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm
pool = ThreadPoolExecutor(2)
print(list(pool.map(abs, [-1, 2])))
bar = tqdm(total=3)
batches = iter(DataLoader(TensorDataset(torch.arange(8.0)), batch_size=2, num_workers=1))
print(next(batches))
later = threading.Timer(600, print, ("never",))
later.daemon = True
later.start()
""",
    # a thread of the notebook's own code that has finished by the time the tests run
    "own_thread_joined": """import threading
results = []
worker = threading.Thread(target=lambda: results.append(sum(range(10))))
worker.start()
worker.join()
print(results)
""",
    "prints": 'print("shapes:", torch.ones(2, 3).shape)\nprint(f"{1 + 1=}")\nprint("no newline", end="")\n',
    "stderr_warning": "import sys, warnings\nwarnings.warn('just a warning')\nsys.stderr.write('progress 50%\\r')\n",
    "own_helpers": '''
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

square = lambda x: x * x
evens = [i for i in range(10) if i % 2 == 0]
lookup = {name: len(name) for name in ("a", "bb")}
torch.manual_seed(0)
np.random.seed(0)
''',
    "own_classes": '''
from torch import nn

class TwoLayer(nn.Module):
    def __init__(self, n_in: int = 4, n_hidden: int = 8):
        super().__init__()
        self.fc1 = nn.Linear(n_in, n_hidden)
        self.fc2 = nn.Linear(n_hidden, 2)
        for i in range(2):
            setattr(self, f"extra{i}", nn.Identity())

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())

class Squares(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.tensor([float(i)]), torch.tensor(float(i * i))

model = TwoLayer()
model.fc2 = nn.Linear(8, 3)
model.train()
model.eval()
for p in model.fc1.parameters():
    p.requires_grad = False
model.fc1.weight.data = torch.zeros_like(model.fc1.weight)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
optimizer.param_groups[0]["lr"] = 0.01
x = torch.randn(3, 4, requires_grad=True)
x.grad = None
input = torch.randn(2, 4)
input.requires_grad_(True)
total = 0
for step in range(3):
    total += step
largest = torch.tensor([1.0, 3.0]).max()
''',
    "config_and_context": '''
import os, gc, copy, re, sys
import matplotlib.pyplot as plt
torch.backends.cudnn.benchmark = False
torch.set_printoptions(precision=3)
plt.rcParams["figure.figsize"] = (6, 3)
os.environ["COURSE_QUIET"] = "1"
if "google.colab" in sys.modules:
    print("on Colab")
if "model" in globals():
    pass
sys.path.append(".")
gc.collect()
pattern = re.compile(r"\\d+")
layer = getattr(torch.nn, "ReLU")()
with torch.no_grad():
    y = torch.ones(2) * 2

@torch.no_grad()
def predict(x):
    return x.argmax()
''',
    "magics": "%matplotlib inline\n%load_ext autoreload\n%autoreload 2\n%timeit -n 1 -r 1 torch.ones(2)\n!echo hello\n",
    "own_assert_fails": 'values = torch.arange(3)\nassert values.sum() == 4, "my own check: fails, and that is fine"\n',
    "raises": "raise ValueError('a learner cell that fails')\n",
    "default_dtype": "torch.set_default_dtype(torch.float64)\nprint(torch.ones(1).dtype)\n",
    "syntax_error": "def broken(:\n    pass\n",
}


# ---------------------------------------------------------------------------
# Reading hidden tests back out of a page, however they were encoded
# ---------------------------------------------------------------------------

def hidden_lines(nb, min_chars: int = 12) -> set[str]:
    """The lines of every ``### BEGIN HIDDEN TESTS`` block of ``nb``, white space folded, long
    enough to say something (``try:`` and ``else:`` say nothing)."""
    lines: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines() if cell.cell_type == "code" else []:
            if "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(folded := " ".join(line.split())) >= min_chars:
                lines.add(folded)
    return lines


def _decodings(text: str) -> list[str]:
    """``text`` read every way an answer could have encoded it: as it is (HTML entities and tags
    read as a browser shows them), reversed, every base64 or hex run decoded (the halves of a
    split run joined first), and runs of byte values as characters."""
    import html
    import re

    shown = html.unescape(re.sub(r"<[^>]*?>", " ", text))
    texts = [text, shown, text[::-1], shown[::-1]]
    runs = re.findall(r"[A-Za-z0-9+/=]{16,}", shown)
    for run in runs + ["".join(runs)]:
        for candidate in (run, run[1:]):  # a class name's leading letter
            with contextlib.suppress(ValueError):
                texts.append(base64.b64decode(candidate + "=" * (-len(candidate) % 4)).decode("utf-8", "replace"))
            with contextlib.suppress(ValueError):
                texts.append(bytes.fromhex(candidate).decode("utf-8", "replace"))
    for run in re.findall(r"(?:\d{1,7}[ ,]+){8,}\d{1,7}", shown):
        texts.append("".join(chr(int(n)) for n in re.findall(r"\d+", run) if int(n) < 0x110000))
    return texts


def recoverable(text: str, hidden: set[str]) -> list[str]:
    """The lines of ``hidden`` that can be read back from ``text`` (see :func:`_decodings`)."""
    fold = lambda t: " ".join(t.split()).replace("'", '"')  # noqa: E731 - one expression
    texts = [fold(t) for t in _decodings(text)]
    return sorted(h for h in hidden if any(fold(h) in t for t in texts))
