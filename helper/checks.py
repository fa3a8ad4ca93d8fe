"""What the course's tests use to tell an answer that re-creates a function from one that calls it,
and what a cell that runs an earlier exercise's answer uses to name that exercise first.

    with without(torch.softmax, why="write it from exp and sum: torch.softmax is what you are re-creating"):
        probabilities = softmax(scores)

Inside the block, every call is watched (``sys.setprofile``, and ``threading.setprofile`` for
threads started there): a call to one of the functions named, under any name it was imported or
stored as, makes the block fail with ``why`` once the code inside it returns or raises. A
PyTorch built-in counts however it is reached (``torch.softmax(x)``, ``x.softmax()``, ``F.softmax``,
which calls ``x.softmax``, the private ``torch._softmax``, ``torch.ops.aten._softmax``, a scripted
function: the ATen operator itself is watched too, through a dispatch mode); a Python function or
class (``helper.metrics.accuracy``, ``nn.Softmax``) counts when its code runs; a module forbids
all of its package. Turning the watch off from inside counts too.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
from collections.abc import Callable, Iterator

# Calls that would blind the watch: they count as a forbidden call.
_UNWATCH = frozenset({"setprofile", "settrace", "setprofile_all_threads", "settrace_all_threads"})


_HERE = globals()
# For without(LIBRARIES, ...): what a plain-Python answer may still run. The standard library, and
# the kernel's own machinery that a print, a warning or display() goes through.
_STDLIB = frozenset(sys.stdlib_module_names)
_KERNEL = ("IPython", "ipykernel", "jupyter_client", "traitlets", "zmq", "comm", "tornado", "google.colab")
LIBRARIES = types.ModuleType("every package outside the standard library")
# A package's own replacements for standard-library functions: torch's inspect.getfile runs when
# inspect.getsource does, on the library's behalf, and is no call of torch's.
_LIBRARY_PATCHES = ("torch/package/package_importer.py",)


def _excused(frame) -> bool:
    """Code of a package's that runs on another's behalf, borrowing nothing: its patch of the
    standard library, or a module's ``__getattr__`` or ``__dir__`` (a module's own, PEP 562, or its
    class's: torch.ops is a module of a class of torch's), which inspect reaches when it looks
    every module over (inspect.getsource does). What such a hook returns is watched when called."""
    code = frame.f_code
    if code.co_name in ("__getattr__", "__dir__"):
        hook = frame.f_globals.get(code.co_name)
        first = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
        if getattr(hook, "__code__", None) is code or isinstance(first, types.ModuleType):
            return True
    return code.co_filename.replace("\\", "/").endswith(_LIBRARY_PATCHES)


def _operators(forbidden: Callable[[str], bool], called: list[str]):
    """A dispatch mode that adds each ATen operator ``forbidden(name)`` holds for to ``called``.
    Its ``_should_skip_dynamo`` says no: newer PyTorch would otherwise wrap ``__torch_dispatch__``
    to keep torch.compile out of it, importing torch._dynamo (some 900 modules and a quarter of a
    GiB of address space in the learner's kernel) the first time an operator ran under it. A class
    of its own each time: nothing a learner's cell could reach and change between two tests."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Operators(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls) -> bool:
            return False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if forbidden(str(getattr(func, "__name__", ""))):
                called.append(str(func))
            return func(*args, **(kwargs or {}))

    return Operators()


class Delegated(AssertionError):
    """An answer called what its exercise asks the learner to write."""


def _codes(function) -> set[types.CodeType]:
    """The code objects whose running means ``function`` was called."""
    if isinstance(function, type):  # a class: its forward (modules) or its __call__ and __init__
        return {getattr(function, name).__code__ for name in ("forward", "__call__", "__init__")
                if isinstance(function.__dict__.get(name), types.FunctionType)}
    if isinstance(function, (types.FunctionType, types.MethodType)):
        return {function.__code__}
    return set()


def _is_torch(builtin) -> bool:
    owner = getattr(builtin, "__self__", None)
    kind = type(owner)
    return (kind.__module__ or "").startswith("torch") or (getattr(builtin, "__module__", None) or "").startswith(
        "torch") or (isinstance(owner, type) and (owner.__module__ or "").startswith("torch"))


@contextlib.contextmanager
def without(*functions: Callable, why: str) -> Iterator[None]:
    """Fail with ``why`` (a :class:`Delegated`, an AssertionError) if the code in the block calls
    any of ``functions``; see the module's docstring. A module among them (``numpy``) forbids
    everything of that package; ``torch`` forbids every tensor operation; :data:`LIBRARIES`, every
    package outside the standard library (plain Python: a print or display() still goes through)."""
    every_library = any(f is LIBRARIES for f in functions)
    packages = tuple(f.__name__ for f in functions if isinstance(f, types.ModuleType) and f is not LIBRARIES)
    functions = tuple(f for f in functions if not isinstance(f, types.ModuleType))
    codes: set[types.CodeType] = set().union(*map(_codes, functions))
    builtins = [f for f in functions if not _codes(f)]

    def base(name) -> str:  # "_softmax", "aten::_softmax.default", "softmax" -> "softmax"
        return str(name or "").split("::")[-1].split(".")[0].lstrip("_")

    names = {base(getattr(f, "__name__", None)) for f in builtins} - {""}
    every_op = "torch" in packages or every_library
    called: list[str] = []
    try:  # torch.ops' Python entry points: the op they call has no name of its own
        from torch._ops import OpOverload, OpOverloadPacket
        ops = {OpOverload.__call__.__code__, OpOverloadPacket.__call__.__code__}
    except (ImportError, AttributeError):
        ops = set()

    def kernels(frame) -> bool:
        """Whether ``frame`` runs for the kernel: the nearest code outside the standard library on
        its way up (``frame`` included) is the kernel's (a print's stream, display(), a message's
        timestamp reaching dateutil), not the learner's."""
        while frame is not None:
            name = frame.f_globals.get("__name__", "")
            if name.partition(".")[0] not in _STDLIB:
                return any(name == k or name.startswith(k + ".") for k in _KERNEL)
            frame = frame.f_back
        return False

    def owned(name: str) -> bool:
        if every_library:
            top = name.partition(".")[0]
            if top and top not in _STDLIB and top not in ("__main__", "__mp_main__") \
                    and not any(name == k or name.startswith(k + ".") for k in _KERNEL):
                return True
        return any(name == p or name.startswith(p + ".") for p in packages)

    def watch(frame, event, arg):
        if frame.f_globals is _HERE:
            return  # the watch being set and taken down
        if event == "call":
            if frame.f_code in codes or owned(frame.f_globals.get("__name__", "")) and not _excused(frame) \
                    and not (every_library and kernels(frame.f_back)):
                called.append(frame.f_code.co_name)
            elif frame.f_code in ops and (every_op or base(getattr(frame.f_locals.get("self"), "__name__", ""))
                                          in names):
                called.append("torch.ops")
        elif event == "c_call":
            name = getattr(arg, "__name__", None)
            owner = getattr(arg, "__self__", None)
            module = getattr(arg, "__module__", None) or type(owner).__module__ or ""
            if name in _UNWATCH or base(name) in names and (any(arg is f for f in builtins) or _is_torch(arg)) \
                    or owned(getattr(owner, "__name__", "") if isinstance(owner, types.ModuleType) else module) \
                    and not (every_library and kernels(frame)):
                called.append(str(name))

    with contextlib.ExitStack() as stack:
        if every_op or any(_is_torch(f) for f in builtins):
            # Below every Python route: the ATen operator that runs (torch._softmax, torch.ops.aten,
            # a scripted function), whatever called it.
            stack.enter_context(_operators(lambda op: every_op or base(op) in names, called))
        previous, previous_threads = sys.getprofile(), threading.getprofile()
        sys.setprofile(watch)
        threading.setprofile(watch)
        try:
            yield
        except BaseException:
            sys.setprofile(previous)
            threading.setprofile(previous_threads)
            if called:
                raise Delegated(why) from None
            raise
        sys.setprofile(previous)
        threading.setprofile(previous_threads)
    if called:
        raise Delegated(why) from None


@contextlib.contextmanager
def finished(exercise: str) -> Iterator[None]:
    """For a cell that runs an earlier exercise's answer: if that answer is not written yet (its
    cell still raises NotImplementedError) or was never run (NameError), the cell says which
    exercise to finish, first, instead of a traceback through the unfinished answer."""
    try:
        yield
    except NotImplementedError:
        raise NotImplementedError(f"finish {exercise} first: this cell runs its answer") from None
    except NameError as exc:
        raise NameError(f"{exc}: run the cell of {exercise} first (and finish it)") from None
