"""helper.checks.without: an answer that calls what its exercise re-creates is caught, by any route."""

from __future__ import annotations

import sys
import threading
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import helper.metrics
from helper.checks import Delegated, without

SOFTMAX = (torch.softmax, torch.Tensor.softmax, F.softmax, torch.log_softmax)
_stored = torch.softmax


def _softmax_rows(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, 1)


with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # newer PyTorch deprecates TorchScript, not removed
    _scripted = torch.jit.script(_softmax_rows)


def _in_a_thread(x, route=lambda t: torch.softmax(t, 1)):
    out = []
    worker = threading.Thread(target=lambda: out.append(route(x)))
    worker.start()
    worker.join()
    return out[0]


ROUTES = {
    "torch.softmax": lambda x: torch.softmax(x, 1),
    "an alias stored before the test": lambda x: _stored(x, 1),
    "the Tensor method": lambda x: x.softmax(1),
    "torch.nn.functional": lambda x: F.softmax(x, 1),
    "nn.Softmax": lambda x: nn.Softmax(dim=1)(x),
    "a computed name": lambda x: getattr(torch, "soft" + "max")(x, 1),
    "the watch turned off first": lambda x: (sys.setprofile(None), torch.softmax(x, 1))[1],
    "another thread": _in_a_thread,
    "the private operator": lambda x: torch._softmax(x, 1, False),
    "ATen's operator": lambda x: torch.ops.aten._softmax.default(x, 1, False),
    "ATen's packet": lambda x: torch.ops.aten.softmax(x, 1),
    "the log-softmax, exponentiated": lambda x: torch._log_softmax(x, 1, False).exp(),
    "a scripted function": lambda x: _scripted(x),
    "ATen's operator in another thread": lambda x: _in_a_thread(x, lambda t: torch.ops.aten._softmax(t, 1, False)),
}


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_to_the_builtin_is_caught(route):
    with pytest.raises(Delegated, match="write it from exp and sum"), \
            without(*SOFTMAX, why="write it from exp and sum"):
        ROUTES[route](torch.randn(2, 3))
    assert sys.getprofile() is None and threading.getprofile() is None, "the watch is taken down"


def test_an_answer_written_from_parts_passes_and_keeps_its_result():
    x = torch.randn(4, 3)
    with without(*SOFTMAX, why="no"):
        out = x.exp() / x.exp().sum(dim=1, keepdim=True)
    assert torch.allclose(out.sum(dim=1), torch.ones(4))
    assert sys.getprofile() is None


def test_a_python_function_is_caught_under_another_name():
    borrowed = helper.metrics.accuracy
    with pytest.raises(Delegated, match="count the matches yourself"), \
            without(helper.metrics.accuracy, why="count the matches yourself"):
        borrowed(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))


def test_the_learners_own_error_still_comes_through_when_nothing_was_borrowed():
    with pytest.raises(ZeroDivisionError), without(*SOFTMAX, why="no"):
        1 / 0  # noqa: B018 - the learner's own mistake


def test_borrowing_wins_over_a_later_error():
    """An answer that calls torch.softmax and then fails is told about the borrowing, first."""
    with pytest.raises(Delegated) as caught, without(*SOFTMAX, why="no"):
        torch.softmax(torch.randn(2, 3), 1)
        raise ValueError("later")
    assert caught.value.__suppress_context__, "the message comes first: raised from None"


def test_a_previous_profiler_is_put_back():
    def mine(frame, event, arg):
        return None

    sys.setprofile(mine)
    try:
        with without(*SOFTMAX, why="no"):
            torch.ones(1).exp()
        assert sys.getprofile() is mine
    finally:
        sys.setprofile(None)


def test_a_cell_that_runs_an_unfinished_answer_names_the_exercise_first():
    from helper.checks import finished

    def stub(x):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match=r"^finish Exercise 4 \(multilayer\) first") as caught, \
            finished("Exercise 4 (multilayer)"):
        stub(1)
    assert caught.value.__suppress_context__, "the message comes first: raised from None"
    with pytest.raises(NameError, match=r"run the cell of Exercise 4 \(multilayer\) first"), \
            finished("Exercise 4 (multilayer)"):
        undefined_answer(1)  # noqa: F821 - the learner never ran its cell
    with finished("Exercise 4 (multilayer)"):
        assert stub is not None  # a finished answer: nothing changes


@pytest.mark.parametrize("route", ["numpy", "tensors", "torch.ops"])
def test_a_module_forbids_all_of_its_package(route):
    import numpy as np

    answers = {"numpy": lambda a, b: np.broadcast_shapes(a, b),
               "tensors": lambda a, b: tuple((torch.full(a, 0.0) + torch.full(b, 0.0)).shape),
               "torch.ops": lambda a, b: tuple(torch.ops.aten.add(torch.ops.aten.rand(a),
                                                                   torch.ops.aten.rand(b)).shape)}
    with pytest.raises(Delegated), without(torch, np, why="work the shape out with the rule"):
        answers[route]((5, 1), (1, 3))
    with without(torch, np, why="no"):  # pure Python: nothing of either package runs
        assert max(len((5, 1)), len((1, 3))) == 2


def test_inspect_looking_torch_over_is_no_call_of_torchs():
    """inspect.getsource on a notebook cell's code runs torch's code on inspect's behalf: torch's
    replacement for inspect.getfile, and the __getattr__ of every module (torch.backends', torch._VF's)
    that inspect looks over for the cell's file. An answer that reads its own source (to print it,
    say) borrowed nothing; a torch function planted in a standard-library module is still torch's."""
    import inspect
    import linecache
    import string

    import numpy as np

    cell = "cell-of-a-notebook.py"  # no module's file: inspect looks every module over
    source = ("def rule(a, b):\n    inspect.getsource(rule)\n"
              "    return tuple(max(x, y) for x, y in zip(a, b))\n")
    linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)
    namespace = {"inspect": inspect}
    exec(compile(source, cell, "exec"), namespace)
    try:
        with without(torch, np, why="no"):
            assert namespace["rule"]((5, 1), (1, 3)) == (5, 3)
    finally:
        del linecache.cache[cell]
    string.planted = np.broadcast_shapes
    try:
        with pytest.raises(Delegated), without(torch, np, why="work the shape out with the rule"):
            string.planted((5, 1), (1, 3))
    finally:
        del string.planted


def test_the_watch_on_operators_loads_nothing_into_the_learners_kernel():
    """The dispatch mode costs the kernel nothing: newer PyTorch would import torch._dynamo (some
    900 modules, a quarter of a GiB of address space) the first time an operator ran under a mode
    made the ordinary way, and a submission that had used its memory limit up to then would
    fail every later test for it."""
    import subprocess

    code = ("import sys, torch, numpy as np\nfrom helper.checks import Delegated, without\n"
            "before = set(sys.modules)\n"
            "try:\n    with without(torch, np, why='no'):\n        torch.ones(3) + 1\n"
            "except Delegated:\n    pass\n"
            "with without(torch.softmax, why='no'):\n    torch.exp(torch.ones(2))\n"
            "print(sorted(set(sys.modules) - before))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout[:2000]


_CELL_OF_A_NOTEBOOK = """
import warnings
from IPython.display import display

def onnx_rule(a, b):
    from onnx import TensorProto, helper, shape_inference

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in (("x", a), ("y", b))]
    graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "g", io,
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
    out = shape_inference.infer_shapes(helper.make_model(graph)).graph.output[0]
    return tuple(d.dim_value for d in out.type.tensor_type.shape.dim)

def plain(a, b):
    print("aligning", a, b)
    warnings.warn("a note", stacklevel=2)
    display({"text/plain": "shown"}, raw=True)
    return tuple(max(x, y) for x, y in zip(a, b))
"""


def test_libraries_forbids_every_package_but_lets_plain_python_print():
    """without(LIBRARIES), answers written in a notebook (module __main__): one that has ONNX's shape
    inference work the rule out (no torch, no NumPy runs) is caught; one in plain Python passes,
    printing, warning and displaying included."""
    import contextlib
    import io

    from helper.checks import LIBRARIES

    cell: dict = {"__name__": "__main__"}
    exec(_CELL_OF_A_NOTEBOOK, cell)  # noqa: S102 - the learner's cell above
    assert cell["onnx_rule"]((5, 1), (1, 3)) == (5, 3), "the route works: a working answer without the work"
    with pytest.raises(Delegated), without(LIBRARIES, why="in plain Python"):
        cell["onnx_rule"]((5, 1), (1, 3))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()) as out:  # a kernel's stdout, not pytest's
        warnings.simplefilter("ignore")
        with without(LIBRARIES, why="no"):
            assert cell["plain"]((5, 1), (1, 3)) == (5, 3)
    assert "aligning" in out.getvalue()
