"""What every canary fingerprints: the objects the course's test cells compare with and call
(their dotted paths, below torch, numpy, builtins, math, sys, threading, signal, asyncio,
functools and helper), and the names the tests read from the learner's namespace; and the code a
canary runs to print them (:func:`fingerprint_code`). :mod:`.canaries` checks what it printed;
tests/instructor/test_integrity.py keeps the list in step with the test cells."""

from .outside import look

# What the tests compare with, fingerprinted by every canary through its own imports (dotted paths
# below the modules above): each must stay the very object the canary at the start saw, before any
# learner code ran, whatever route replaced it (an attribute,
# ``vars()``, ``gc``, ``ctypes``, ``sys.modules``, an import hook, a class's ``__dict__``, a wrapper).
SHELL_HOOKS = "IPython's input and AST transformers"   # not a dotted path: canaries.py builds this one
_IDENTITIES = (
    "torch", "torch.allclose", "torch.equal", "torch.isclose", "torch.eq", "torch.all", "torch.any",
    "torch.abs", "torch.isfinite", "torch.broadcast_shapes", "torch.testing", "torch.testing.assert_close",
    "torch.Tensor", "torch.Tensor.__eq__", "torch.Tensor.__ne__", "torch.Tensor.__lt__", "torch.Tensor.__le__",
    "torch.Tensor.__gt__", "torch.Tensor.__ge__", "torch.Tensor.__bool__", "torch.Tensor.__abs__",
    "torch.Tensor.__sub__", "torch.Tensor.equal", "torch.Tensor.allclose", "torch.Tensor.isclose",
    "torch.Tensor.all", "torch.Tensor.any", "torch.Tensor.item", "torch.Tensor.tolist", "torch.Tensor.sum",
    "torch.Tensor.abs", "torch.nn", "torch.nn.functional", "torch.nn.functional.cross_entropy",
    "torch.nn.functional.log_softmax", "torch.nn.functional.softmax", "torch.nn.Module",
    "numpy", "numpy.allclose", "numpy.array_equal", "numpy.isclose", "numpy.ndarray.__eq__",
    "numpy.testing", "numpy.testing.assert_allclose", "numpy.testing.assert_array_equal",
    "builtins.abs", "builtins.all", "builtins.any", "builtins.isinstance", "builtins.issubclass", "builtins.len",
    "builtins.round", "builtins.float", "builtins.int", "builtins.bool", "builtins.sum", "builtins.max",
    SHELL_HOOKS, "builtins", "builtins.min", "builtins.AssertionError", "builtins.print", "builtins.exec",
    "builtins.getattr",
    "builtins.hasattr", "builtins.type", "builtins.zip", "builtins.range", "builtins.tuple", "builtins.list",
    "builtins.__import__", "math.isclose",
    # Every other torch function and Tensor method or property a test cell of the course uses
    # (tests/instructor/test_integrity.py keeps this in step): a Tensor.mean that always answers
    # zero passes a "mean is 0" test as surely as an allclose that always answers True.
    "torch.Generator", "torch.arange", "torch.cat", "torch.device", "torch.diag", "torch.exp", "torch.eye",
    "torch.float32", "torch.inference_mode", "torch.int64", "torch.is_grad_enabled", "torch.isnan",
    "torch.linalg", "torch.linspace", "torch.load", "torch.no_grad", "torch.ones", "torch.empty",
    "torch.broadcast_tensors", "torch.broadcast_to", "torch.special", "torch.special.expit", "torch.Tensor.sigmoid",
    "torch.special.softmax", "torch.log_softmax", "torch.Tensor.log_softmax", "torch.Tensor.copy_",
    "torch.optim", "torch.rand", "torch.randint", "torch.randn", "torch.relu", "torch.save", "torch.sigmoid",
    "torch.softmax", "torch.stack", "torch.tensor", "torch.utils", "torch.zeros", "torch.zeros_like",
    "torch.Tensor.T", "torch.Tensor.argmax", "torch.Tensor.backward", "torch.Tensor.clone", "torch.Tensor.cpu",
    "torch.Tensor.data", "torch.Tensor.detach", "torch.Tensor.device", "torch.Tensor.dim", "torch.Tensor.dtype",
    "torch.Tensor.exp", "torch.Tensor.expand", "torch.Tensor.float", "torch.Tensor.grad", "torch.Tensor.index",
    "torch.Tensor.is_floating_point", "torch.Tensor.max", "torch.Tensor.mean", "torch.Tensor.min",
    "torch.Tensor.mode", "torch.Tensor.name", "torch.Tensor.numel", "torch.Tensor.numpy", "torch.Tensor.pow",
    "torch.Tensor.register_hook", "torch.Tensor.relu", "torch.Tensor.requires_grad", "torch.Tensor.reshape",
    "torch.Tensor.shape", "torch.Tensor.softmax", "torch.Tensor.std", "torch.Tensor.to", "torch.Tensor.type",
    "torch.Tensor.values", "torch.Tensor.view",
    # ... and every builtin, torch.nn, torch.optim and torch.utils.data name they read: a set
    # whose == always holds passes a "these keys" test with any keys.
    "builtins.AttributeError", "builtins.Exception", "builtins.RuntimeError", "builtins.TypeError",
    "builtins.dict", "builtins.globals", "builtins.id", "builtins.iter", "builtins.next", "builtins.open",
    "builtins.set", "builtins.sorted", "builtins.str", "builtins.super", "builtins.enumerate",
    "torch.nn.Conv2d", "torch.nn.CrossEntropyLoss", "torch.nn.Dropout", "torch.nn.Flatten", "torch.nn.Linear",
    "torch.nn.LogSoftmax", "torch.nn.MaxPool2d", "torch.nn.ModuleDict", "torch.nn.NLLLoss", "torch.nn.Parameter",
    "torch.nn.ReLU", "torch.nn.Sequential", "torch.nn.Sigmoid", "torch.nn.Softmax", "torch.nn.modules",
    "torch.nn.functional.linear", "torch.nn.functional.relu", "torch.nn.modules.batchnorm",
    "torch.nn.modules.batchnorm._BatchNorm", "torch.linalg.vector_norm", "torch.optim.Adam",
    "torch.optim.Optimizer", "torch.optim.SGD", "torch.optim.lr_scheduler",
    "torch.optim.lr_scheduler.CosineAnnealingLR", "torch.optim.lr_scheduler.LRScheduler",
    "torch.optim.lr_scheduler.StepLR", "torch.utils.data", "torch.utils.data.DataLoader",
    "torch.utils.data.RandomSampler", "torch.utils.data.SequentialSampler", "torch.utils.data.TensorDataset",
    # ... and what helper.checks.without (a test's watch on an answer's calls) stands on, globals read included
    "sys.setprofile", "sys.getprofile", "threading.setprofile", "threading.getprofile", "helper.checks.without",
    # ... and what the canary's look outside the cells reads (.outside): where installed code lives,
    # the threads, signal handlers, the event loop's callbacks and tasks, what a callable wraps
    "sys.prefix", "sys.base_prefix", "sys.exec_prefix", "sys._current_frames", "threading.get_ident",
    "threading.enumerate", "helper.__file__", "builtins.vars", "builtins.staticmethod", "builtins.classmethod",
    "builtins.property", "signal.getsignal", "signal.valid_signals", "asyncio.events._get_running_loop",
    "asyncio.events.Handle", "asyncio.events.TimerHandle", "asyncio.all_tasks", "functools.partial",
    "gc", "gc.callbacks",
    "helper.checks.without.__wrapped__", "helper.checks._codes", "helper.checks._is_torch", "helper.checks._UNWATCH",
    "helper.checks._HERE", "helper.checks.Delegated", "helper.checks._excused", "helper.checks._LIBRARY_PATCHES",
    "helper.checks._operators", "helper.checks.LIBRARIES", "helper.checks._STDLIB", "helper.checks._KERNEL",
    "torch.utils._python_dispatch.TorchDispatchMode",
    "torch.utils._python_dispatch.TorchDispatchMode.__enter__",
    "torch.utils._python_dispatch.TorchDispatchMode.__exit__",
    "torch.utils._python_dispatch._push_mode", "torch.utils._python_dispatch._pop_mode",
)
# Replaced by torch itself: importing torch._dynamo (torch.compile, an ONNX export, %timeit's
# first use of it) wraps torch.manual_seed, so its identity says nothing about the learner.
REWRAPPED_BY_TORCH = frozenset({"torch.manual_seed"})
# Names the test cells read from the learner's namespace: where the learner's namespace has one,
# it must be the object the canary's own imports see (a module swapped for a look-alike, or
# ``isinstance = lambda *a: True``, changes what the tests call without touching the real one).
_NAMESPACE = (("torch", "torch"), ("np", "numpy"), ("numpy", "numpy"), ("F", "torch.nn.functional"),
              ("nn", "torch.nn"), ("abs", "builtins.abs"), ("all", "builtins.all"), ("any", "builtins.any"),
              ("isinstance", "builtins.isinstance"), ("issubclass", "builtins.issubclass"),
              ("round", "builtins.round"), ("bool", "builtins.bool"), ("float", "builtins.float"),
              ("AssertionError", "builtins.AssertionError"), ("print", "builtins.print"),
              ("getattr", "builtins.getattr"), ("hasattr", "builtins.hasattr"),
              ("__builtins__", "builtins"))   # what every bare name in a test cell falls back on


def fingerprint_code(n: str, prefix: str, outside: bool = True) -> str:
    """Canary lines printing "<prefix>= <address> ..." for _IDENTITIES (through the canary's own imports) then
    _NAMESPACE (through the learner's namespace, "-" where it has no such name). ``object.__repr__`` (reached from
    a literal, which no cell can rebind) gives each object's type and address: a replacement cannot show the
    original's. A Python function is also changed in place when its code, defaults or closure are
    (``functools.update_wrapper`` with ``assigned=("__code__",)`` leaves its address as it was): for one, the
    addresses of those follow its own, read through the function type's descriptors (reached from a literal too).
    ``outside`` (a canary): then look at what runs outside the cells too (:mod:`.outside`); the check at the
    top of a test cell, moments before the test reads the kernel, is the fingerprint alone."""
    roots = {"torch": f"{n}t", "numpy": f"{n}n", "builtins": f"{n}b", "math": f"{n}m", "sys": f"{n}s",
             "threading": f"{n}k", "helper": f"{n}h", "signal": f"{n}q", "gc": f"{n}e", "asyncio": f"{n}a",
             "functools": f"{n}u"}
    special = {"builtins.exec": f"{n}d({n}X)",   # the exec the cell called
               SHELL_HOOKS: f"{n}H()"}          # the shell and what it runs a cell's source through
    parts = [special.get(p) or f"{n}d({roots[p.split('.')[0]]}{p[len(p.split('.')[0]):]})" for p in _IDENTITIES]
    parts += [f'({n}d({n}g["{name}"]) if "{name}" in {n}g else "-")' for name, _ in _NAMESPACE]
    return (f"import math as {n}m, sys as {n}s, threading as {n}k, helper.checks as {n}c, helper as {n}h, "
            f"functools as {n}u, asyncio as {n}a, signal as {n}q, gc as {n}e\n"
            f"{n}o = lambda x: ().__class__.__mro__[-1].__repr__(x).replace(' ', '_')\n"
            f"{n}g = (lambda: 0).__globals__\n"
            # IPython's shell (its class's singleton), and every input transformer and AST transformer
            # it runs a cell through: one that rewrites only the test cells, telling them from the
            # canaries by their shape, leaves the canaries' own results alone but not this list
            f"def {n}H(o={n}o, s={n}s, G={n}b.getattr):\n"
            f"    shell = G(G(s.modules.get('IPython.core.interactiveshell'), 'InteractiveShell', None), '_instance',"
            f" None)\n"
            f"    if shell is None:\n"
            f"        return '-'\n"
            f"    hooks = [shell.input_transformers_cleanup, shell.input_transformers_post, shell.ast_transformers]\n"
            f"    return '+'.join([o(shell)] + [o(x) for each in hooks for x in [each, *each]])\n"
            f"def {n}d(x, o={n}o, F=(lambda: 0).__class__, T=().__class__.__class__, E={n}b.ValueError):\n"
            # ... and an object's type, by address: a module given a look-alike class (``torch.__class__ = M``,
            # M a ModuleType named "module" in "builtins") answers attribute reads its own way, and looks the same
            f"    if T(x) is not F:\n"
            f"        return o(x) + '@' + o(T(x)).rpartition('_')[2]\n"
            f"    g = T.__dict__['__dict__'].__get__(F)\n"
            f"    kw = g['__kwdefaults__'].__get__(x) or {{}}\n"
            f"    seen = [o(x), o(g['__code__'].__get__(x)), o(g['__defaults__'].__get__(x))]\n"
            f"    seen += [k + ':' + o(v) for k, v in kw.items()]\n"
            f"    for c in g['__closure__'].__get__(x) or ():\n"
            f"        try:\n"
            f"            seen.append(o(c.cell_contents))\n"
            f"        except E:\n"
            f"            seen.append('empty')\n"
            f"    return '+'.join(seen)\n"
            # one write: a line written in pieces could be broken up by another thread's output
            f"{n}b.print(\"{prefix}= \" + \" \".join([{', '.join(parts)}]) + \"\\n\", end=\"\")\n"
            + (look(n, prefix) + f"{n}Q()\ndel {n}Q\n" if outside else "") +
            f"del {n}m, {n}s, {n}k, {n}c, {n}h, {n}o, {n}g, {n}d, {n}H, {n}u, {n}a, {n}q, {n}e\n")
