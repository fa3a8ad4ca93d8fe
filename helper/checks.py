"""What the course's tests use to tell an answer that re-creates a function from one that calls it,
and what a cell that runs an earlier exercise's answer uses to name that exercise first.

    with without(torch.softmax, why="write it from exp and sum: torch.softmax is what you are re-creating"):
        probabilities = softmax(scores)

Inside the block, every call is watched (``sys.setprofile``, and ``threading.setprofile`` for
threads started there): a call to one of the functions named, under any name it was imported or
stored as, makes the block fail with ``why`` once the code inside it returns or raises. A
PyTorch built-in counts however it is reached (``torch.softmax(x)``, ``x.softmax()``, or
``F.softmax``, which calls ``x.softmax``); a Python function or class (``helper.metrics.accuracy``,
``nn.Softmax``) counts when its code runs. Turning the watch off from inside counts too.
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
    any of ``functions``; see the module's docstring."""
    codes: set[types.CodeType] = set().union(*map(_codes, functions))
    builtins = [f for f in functions if not _codes(f)]
    names = {getattr(f, "__name__", None) for f in builtins} - {None}
    called: list[str] = []

    def watch(frame, event, arg):
        if frame.f_globals is _HERE:
            return  # the watch being set and taken down
        if event == "call" and frame.f_code in codes:
            called.append(frame.f_code.co_name)
        elif event == "c_call":
            name = getattr(arg, "__name__", None)
            if name in _UNWATCH or name in names and (any(arg is f for f in builtins) or _is_torch(arg)):
                called.append(name)

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
