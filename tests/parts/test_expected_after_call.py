"""A test calls the learner's code first and computes what it compares with afterwards.

A learner's function can read its caller's frame (and the notebook's globals), so any value a test
has bound before it calls the learner's code is readable by that code: an answer could return the
test's expected value instead of working it out. This test walks every test cell of the solutions
(hidden tests included) with ``ast``, in the order its statements run (a loop's target is bound
before its body runs; a helper function's parameters before its body), and fails when a value a
comparison uses as the expected side is bound before the learner call whose result it checks.

What counts:
- learner code: the functions and classes the part's answer cells define, the test cell's own
  functions that call them, an object learner code made (calling it, indexing it, looping over it,
  passing it to a call such as ``len`` or ``DataLoader``, or calling one of the learner classes'
  methods runs learner code);
- the actual side of a comparison (``==``, ``!=``, ``torch.allclose``, ``torch.equal``, ``isclose``,
  ``assert_close``, ...): the operand computed from learner code; the expected side: the other;
- a name the expected side reads, bound in the cell (or the helper function) before that learner
  call ran, is reported; the learner call's own inputs (names passed to learner code) and the
  learner's objects are not expected values.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import pytest

from tests.parts.cells import COMPARING, comparisons, is_answer, is_test, label, parse, parts, solution

# Calls that read an object without running its code (or compare values: the comparison itself).
_NO_LEARNER_CODE = COMPARING | {"getattr", "hasattr", "isinstance", "issubclass", "type", "id", "callable"}


@dataclass
class _Binding:
    pos: int
    tainted_at: int | None    # position of the last learner call the value comes from (None: not from one)
    learner_object: bool = False
    instance: bool = False    # made by a learner class


@dataclass
class _Scope:
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)

    def lookup(self, name: str, before: int) -> _Binding | None:
        earlier = [b for b in self.bindings.get(name, ()) if b.pos < before]
        return earlier[-1] if earlier else None


class _Walk:
    """One scope (the cell, or one of its functions) walked in execution order."""

    def __init__(self, learner: set[str], classes: set[str], methods: set[str]):
        self.learner, self.classes, self.methods = learner, classes, methods
        self.scope = _Scope()
        self.pos = 0
        self.calls: dict[ast.AST, int] = {}       # learner call node -> position
        self.compared: list[tuple[ast.AST, list[ast.expr], int]] = []
        self.inputs: set[str] = set()             # names passed to learner code

    def tick(self) -> int:
        self.pos += 1
        return self.pos

    # -- names ----------------------------------------------------------------------------------

    def bind(self, target: ast.AST, tainted_at: int | None, learner_object: bool = False,
             instance: bool = False) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.scope.bindings.setdefault(node.id, []).append(
                    _Binding(self.tick(), tainted_at, learner_object, instance))

    def is_learner_object(self, node: ast.AST, instance: bool = False) -> bool:
        if isinstance(node, ast.Name):
            binding = self.scope.lookup(node.id, self.pos + 1)
            return binding is not None and binding.learner_object and (binding.instance or not instance)
        return False

    def taint(self, node: ast.AST) -> int | None:
        """Position of the last learner call ``node``'s value comes from (None: none)."""
        found = [p for n, p in self.calls.items() if any(n is m for m in ast.walk(node))]
        for name in (n for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)):
            binding = self.scope.lookup(name.id, self.pos + 1)
            if binding is not None and binding.tainted_at is not None:
                found.append(binding.tainted_at)
        return max(found) if found else None

    # -- expressions, in evaluation order -------------------------------------------------------

    def expr(self, node: ast.AST | None) -> None:
        if node is None:
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            for generator in node.generators:
                self.expr(generator.iter)
                self.loop_over(generator.iter)
                self.bind(generator.target, self.taint(generator.iter))
                for condition in generator.ifs:
                    self.expr(condition)
            for part in ((node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)):
                self.expr(part)
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.bind(node.target, self.taint(node.value))
            return
        for child in ast.iter_child_nodes(node):
            self.expr(child)
        if isinstance(node, ast.Call) and self.runs_learner_code(node):
            self.calls[node] = self.tick()
            for arg in (*node.args, *(k.value for k in node.keywords)):
                self.inputs |= {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Call) and self.hands_over_an_instance(node):
            self.calls[node] = self.tick()
        elif isinstance(node, ast.Subscript) and self.is_learner_object(node.value):
            self.calls[node] = self.tick()
            self.inputs |= {n.id for n in ast.walk(node.slice) if isinstance(n, ast.Name)}
        if node in {c for c, _ in comparisons(node)} and not isinstance(node, ast.Module):
            for compared_node, operands in comparisons(node):
                if compared_node is node:
                    self.compared.append((node, operands, self.tick()))

    def hands_over_an_instance(self, call: ast.Call) -> bool:
        """``len(dataset)``, ``DataLoader(dataset)``: an object of a learner class does the work."""
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        return name not in _NO_LEARNER_CODE and any(
            self.is_learner_object(a, instance=True) for a in (*call.args, *(k.value for k in call.keywords)))

    def runs_learner_code(self, call: ast.Call) -> bool:
        """A learner function, a learner object called, or a learner class's method."""
        func = call.func
        if isinstance(func, ast.Name):
            return func.id in self.learner or self.is_learner_object(func)
        return isinstance(func, ast.Attribute) and (func.attr in self.methods or self.is_learner_object(func))

    def loop_over(self, iterable: ast.AST) -> None:
        if self.is_learner_object(iterable):
            self.calls[iterable] = self.tick()

    # -- statements, in execution order ---------------------------------------------------------

    def block(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return   # walked as scopes of their own
        if isinstance(node, ast.Assign):
            self.expr(node.value)
            made = self.makes_learner_object(node.value)
            instance = made and node.value.func.id in self.classes
            # a learner class's new object is not a result: what it computes comes from its calls
            tainted = None if instance else self.taint(node.value)
            for target in node.targets:
                self.expr_targets(target)
                self.bind(target, tainted, made, instance)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            self.expr(node.value)
            if node.value is not None:
                before = self.taint(node.target) if isinstance(node, ast.AugAssign) else None
                after = self.taint(node.value)
                self.bind(node.target, max((p for p in (before, after) if p is not None), default=None))
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter)
            self.loop_over(node.iter)
            self.bind(node.target, self.taint(node.iter))
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, (ast.While, ast.If)):
            self.expr(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, self.taint(item.context_expr))
            self.block(node.body)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            self.block(node.body)
            for handler in node.handlers:
                if handler.name:
                    self.scope.bindings.setdefault(handler.name, []).append(_Binding(self.tick(), None))
                self.block(handler.body)
            self.block(node.orelse)
            self.block(node.finalbody)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def expr_targets(self, target: ast.AST) -> None:
        """Subscripts and attributes assigned to evaluate their object first."""
        if isinstance(target, (ast.Subscript, ast.Attribute)):
            self.expr(target.value)

    def makes_learner_object(self, value: ast.AST) -> bool:
        """``ReLUNetwork()``, ``build_classifier(...)``, ``train, test = loaders(...)``: an object the
        learner's code made, whose calls, items and iteration run learner code."""
        return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and (
            value.func.id in self.learner or value.func.id in self.classes)

    # -- the findings ---------------------------------------------------------------------------

    def findings(self) -> list[tuple[str, int, int]]:
        """(name, line, line of the comparison) for each expected value bound before its call."""
        out = []
        for node, operands, at in self.compared:
            taints = [self.taint_at(op, at) for op in operands]
            if sum(t is not None for t in taints) != 1:
                continue
            called = next(t for t in taints if t is not None)
            for operand, taint in zip(operands, taints, strict=True):
                if taint is not None:
                    continue
                for name in {n.id for n in ast.walk(operand) if isinstance(n, ast.Name)} - self.inputs:
                    binding = self.scope.lookup(name, at)
                    if binding is not None and not binding.learner_object and binding.pos < called:
                        out.append((name, getattr(operand, "lineno", 0), node.lineno))
        return out

    def taint_at(self, node: ast.AST, at: int) -> int | None:
        saved, self.pos = self.pos, at - 1
        try:
            return self.taint(node)
        finally:
            self.pos = saved


def walk(source: str, learner: set[str], classes: set[str], methods: set[str]) -> list[tuple[str, int, int]]:
    """Expected values bound before the learner call they check, in one test cell's source."""
    tree = parse(source)
    if tree is None:
        return []
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    learner = set(learner)
    changed = True
    while changed:   # the cell's own functions that call learner code count as learner code
        changed = False
        for function in functions:
            calls = {n.func.id for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            if function.name not in learner and calls & learner:
                learner.add(function.name)
                changed = True
    found = []
    module = _Walk(learner, classes, methods)
    module.block(tree.body)
    found += module.findings()
    for function in functions:
        scope = _Walk(learner, classes, methods)
        scope.bind(function.args, None)
        for arg in ast.walk(function.args):
            if isinstance(arg, ast.arg):
                scope.scope.bindings.setdefault(arg.arg, []).append(_Binding(scope.tick(), None))
        scope.block(function.body)
        found += scope.findings()
    return found


def _learner_code(nb) -> tuple[set[str], set[str], set[str]]:
    """(functions and classes, classes, methods of the classes) the part's answer cells define."""
    names, classes, methods = set(), set(), set()
    for cell in nb.cells:
        tree = parse(cell.source) if is_answer(cell) else None
        for node in tree.body if tree else []:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                names.add(node.name)
                classes.add(node.name)
                methods |= {m.name for m in node.body if isinstance(m, ast.FunctionDef)} - {"__init__"}
    return names, classes, methods


def _bound_early(part: str) -> list[str]:
    nb = solution(part)
    learner, classes, methods = _learner_code(nb)
    out = []
    for index, cell in enumerate(nb.cells):
        if is_test(cell):
            for name, _line, compared in sorted(set(walk(cell.source, learner, classes, methods))):
                out.append(f"{part} {label(cell, index)}: `{name}` (compared on line {compared}) is bound before "
                           "the learner's code it checks is called: call it first, then compute the expected value")
    return out


@pytest.mark.parametrize("part", parts())
def test_expected_values_are_computed_after_the_learners_call(part):
    found = _bound_early(part)
    assert not found, "\n".join(found)


_LEARNER = ({"f", "Net"}, {"Net"}, {"forward"})


@pytest.mark.parametrize("source", [
    "expected = torch.ones(2)\ngot = f(x)\nassert torch.allclose(got, expected)\n",
    "for a, b, expected in cases:\n    assert f(a, b) == expected\n",
    "for a in cases:\n    want = ref(a)\n    got = f(a)\n    assert got == want\n",
    "def check(a, expected):\n    assert f(a) == expected\ncheck(1, 2)\n",
    "net = Net()\nreference = torch.softmax(net.fc(x), dim=1)\nassert torch.allclose(net(x), reference)\n",
    "assert all(f(a) == e for a, e in cases)\n",
    "expected = 3\nwith without(torch.softmax, why='no'):\n    out = f(x)\nassert out.sum() != expected\n",
    "ds = Net()\nfirst = rows[0]\nassert ds[0] == first\n",
])
def test_the_walker_finds_an_expected_value_bound_first(source):
    assert walk(source, *_LEARNER), source


@pytest.mark.parametrize("source", [
    "x = torch.randn(3)\ngot = f(x)\nassert torch.allclose(got, 1 / (1 + torch.exp(-x)))\n",
    "got = f(x)\nexpected = torch.ones(2)\nassert torch.allclose(got, expected)\n",
    "for a, b in cases:\n    got = f(a, b)\n    expected = ref(a, b)\n    assert got == expected\n",
    "net = Net()\nout = net(x)\nreference = torch.softmax(net.fc(x), dim=1)\nassert torch.allclose(out, reference)\n",
    "assert f(1) == 2\n",
    "n = 3\nassert n == 3\n",
])
def test_the_walker_leaves_a_test_that_calls_first(source):
    assert not walk(source, *_LEARNER), walk(source, *_LEARNER)
