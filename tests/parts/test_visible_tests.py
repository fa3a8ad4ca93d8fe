"""Visible tests show what is expected and name a learner's mistake; they never hold a working answer.

- No line of a solution (between ``### BEGIN SOLUTION`` and ``### END SOLUTION``) appears in a
  test cell as learners see it, and no visible test restates most of a solution's statements with
  other names (a reference loop written out: the statements' shapes are compared, names and
  numbers left out, attribute and function names kept).
- What a learner does with a visible test fails: every value a visible test compares with (the
  expression, its assigned names inlined), pasted into an answer as ``return <expression>`` with its
  names renamed to the answer's parameters (a class's methods too, ``self`` included), and every
  function or class a visible test defines, put in place of the answer, fail that exercise's test
  cell, hidden tests included. An answer made of statements (``model = ...``) is tried the same way:
  each such value pasted as the value of each name it binds, thresholds' numbers included. The
  solution notebook runs in this process (no kernel, on the fake data), up to its last test cell,
  only the cells its answers and tests need (``needed_cells``: the whole notebook when a test then
  fails): at each test cell, each stand-in is tried, then the
  real answers are put back, and their test must pass again before the notebook goes on. What
  passes is reported with the stand-in's source, for every part and cell at once.
"""

from __future__ import annotations

import ast
import copy
import itertools
import re
import textwrap

import matplotlib
import pytest

from tests.parts.cells import (
    comparisons,
    fails_on_purpose,
    is_answer,
    is_test,
    label,
    learner_names,
    meta,
    needed_cells,
    parse,
    parts,
    released,
    run,
    solution,
    visible,
)
from tests.parts.test_parts_01_04_mistakes import _notebook, _python

matplotlib.use("Agg")


def _fold(line: str) -> str:
    return " ".join(line.split())


def _solution_lines(source: str) -> set[str]:
    """The lines of the solutions worth hiding: not comments, and not a block's bare opening line
    (``with torch.no_grad():`` tells nobody the answer)."""
    lines, inside = set(), False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line:
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif inside and len(_fold(line)) >= 20 and not line.strip().startswith("#") and not line.rstrip().endswith(":"):
            lines.add(_fold(line))
    return lines


def _released_tests(part: str) -> list[str]:
    return [c.source for c in released(part).cells if is_test(c)]


@pytest.mark.parametrize("part", parts())
def test_no_solution_line_in_a_visible_test(part):
    """Lines the released notebook shows elsewhere (its text and examples) are no secret."""
    answers = [c.source for c in _notebook(part).cells if is_answer(c)]
    shown = {_fold(line) for c in released(part).cells if not is_test(c) for line in c.source.splitlines()}
    solution = set().union(*map(_solution_lines, answers)) - shown if answers else set()
    for test in _released_tests(part):
        leaked = solution & {_fold(line) for line in test.splitlines()}
        assert not leaked, f"{part}: a visible test holds solution lines: {sorted(leaked)[:3]}"


class _Shape(ast.NodeTransformer):
    """A statement with its local names and constants blanked: ``total += loss.item()`` and
    ``running_loss += loss.item()`` have the same shape; ``.item()`` and ``torch.`` stay."""

    def visit_Name(self, node):
        return ast.Name(id=node.id if node.id in ("torch", "nn", "F", "optim", "np", "len") else "_", ctx=node.ctx)

    def visit_Constant(self, node):
        return ast.Constant(value=0)

    def visit_JoinedStr(self, node):
        return ast.Constant(value=0)

    def visit_arg(self, node):
        return ast.arg(arg="_")


def _shapes(source: str, solution_only: bool = False) -> set[str]:
    """Shapes of the simple statements in ``source`` (in its solution blocks only, if asked)."""
    if solution_only:
        blocks = re.findall(r"### BEGIN SOLUTION[^\n]*\n(.*?)[ \t]*### END SOLUTION", source, re.S)
        source = "\n".join(textwrap.dedent(block) for block in blocks)
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return set()
    simple = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return)
    return {ast.unparse(_Shape().visit(copy.deepcopy(node))) for node in ast.walk(tree)
            if isinstance(node, simple) and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))}


@pytest.mark.parametrize("part", parts())
def test_no_visible_test_restates_a_solution(part):
    """At most half of an answer's statements (by shape) in any one visible test."""
    for cell in (c for c in _notebook(part).cells if is_answer(c)):
        solution = _shapes(cell.source, solution_only=True)
        if len(solution) < 3:
            continue
        for test in _released_tests(part):
            shared = solution & _shapes(test)
            assert len(shared) <= len(solution) / 2, \
                (f"{part}: a visible test restates {len(shared)} of the {len(solution)} statements of "
                 f"{meta(cell).get('grade_id')}'s solution: {sorted(shared)[:4]}")


# ----------------------------------------------------------------------------------------------
# What a learner does with a visible test: paste its reference expression into the answer
# ----------------------------------------------------------------------------------------------
#
# For every test cell, each value a visible test compares with (an operand of ==, allclose, equal,
# isclose, assert_close, ...; a name assigned in the cell stands for its right-hand side, inlined)
# becomes an answer's body: ``return <expression>``, its names bound in the test cell renamed to the
# answer's parameters (in order of first use; where the counts differ, every injective mapping, up
# to _MAPPINGS). A class's methods get the same treatment (``self`` is one of the parameters). The
# function or class a visible test defines, renamed, is tried too. Each stand-in must fail the test
# cell with its hidden tests; then the real answers go back and their test must pass again.

_MAPPINGS = 6          # renamings tried per expression when the counts differ
_INLINE_DEPTH = 6      # how deep assigned names are replaced by their right-hand sides


def _bound_in(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names a cell binds as values, names it binds as modules, functions or classes)."""
    values, others = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            values.add(node.id)
        elif isinstance(node, ast.arg):
            values.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            values.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            others |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            others.add(node.name)
    return values - others, others


def _assignments(tree: ast.AST) -> dict[str, list[tuple[tuple[int, int], ast.expr]]]:
    """name -> [(position, right-hand side)] for the cell's assignments to plain names (``a, b =
    x, y`` pairwise), in source order."""
    found: dict[str, list] = {}

    def bind(target, value, where):
        if isinstance(target, ast.Name):
            found.setdefault(target.id, []).append((where, value))
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
                and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts, strict=True):
                bind(t, v, where)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                bind(target, node.value, (node.lineno, node.col_offset))
        elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            bind(node.target, node.value, (node.lineno, node.col_offset))
    for values in found.values():
        values.sort(key=lambda item: item[0])
    return found


class _Inline(ast.NodeTransformer):
    """Each assigned name replaced by the right-hand side of its last assignment before ``where``,
    except the names in ``keep`` (the learner's inputs and objects: they become parameters)."""

    def __init__(self, assignments, where, depth, keep=frozenset()):
        self.assignments, self.where, self.depth, self.keep = assignments, where, depth, keep

    def visit_Name(self, node):
        earlier = [(w, v) for w, v in self.assignments.get(node.id, ()) if w < self.where]
        if not earlier or self.depth <= 0 or not isinstance(node.ctx, ast.Load) or node.id in self.keep:
            return node
        where, value = earlier[-1]
        return _Inline(self.assignments, where, self.depth - 1, self.keep).visit(copy.deepcopy(value))


def _learner_side(tree: ast.AST, learner: set[str], assignments) -> tuple[set[str], set[str], set[str]]:
    """(objects, results, inputs) of the learner's code in a test cell: names bound to a new object
    of a learner class or to what a learner function builds (``net = ReLUNetwork()``), names bound
    to what learner code computed (``out = net(x)``), and the names passed to learner code."""
    def calls_learner(node, names):
        return any(isinstance(n, ast.Call) and isinstance(root := _call_root(n.func), ast.Name) and root.id in names
                   for n in ast.walk(node))

    objects, results = set(), set()
    for _ in range(3):   # results of results
        for name, values in assignments.items():
            for _, value in values:
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in learner:
                    objects.add(name)
                elif calls_learner(value, learner | objects | results):
                    results.add(name)
    inputs = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(root := _call_root(node.func), ast.Name) \
                and root.id in learner | objects | results:
            inputs |= {n.id for a in (*node.args, *(k.value for k in node.keywords)) for n in ast.walk(a)
                       if isinstance(n, ast.Name)}
    return objects, results - objects, inputs - objects - results


def _call_root(func: ast.AST) -> ast.AST:
    """``net`` for ``net(x)`` and ``net.forward(x)``: the object a call runs the code of."""
    while isinstance(func, ast.Attribute):
        func = func.value
    return func


def _local_names(expr: ast.AST) -> set[str]:
    """Names an expression binds itself (comprehension targets, lambda arguments)."""
    names = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.comprehension):
            names |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Lambda):
            names |= {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    return names


def _references(source: str, learner: set[str]) -> list[tuple[str, list[str], list[ast.stmt]]]:
    """(expression, its free names bound in the cell in order of first use, the cell's functions
    and classes it uses) for every value the visible test compares with; none that calls the
    learner's code."""
    tree = ast.parse(_python(visible(source)))
    values, others = _bound_in(tree)
    assignments = _assignments(tree)
    helpers = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    objects, results, inputs = _learner_side(tree, learner, assignments)
    operands = []
    for node, compared in comparisons(tree, ordered=True):
        where = (node.lineno, node.col_offset)
        for operand in compared:
            operands.append((operand, where))
            for name in {n.id for n in ast.walk(operand) if isinstance(n, ast.Name)}:
                for spot, value in assignments.get(name, ()):
                    if spot < where:
                        operands.append((value, spot))
    found, seen = [], set()
    for operand, where in operands:
        inlined = _Inline(assignments, where, _INLINE_DEPTH, objects | inputs).visit(copy.deepcopy(operand))
        expr = ast.parse(ast.unparse(inlined), mode="eval").body
        text = ast.unparse(expr)
        names = [n for n in ast.walk(expr) if isinstance(n, ast.Name)]
        used = {n.id for n in names}
        runs = {n.func.id for n in ast.walk(expr) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        if (text in seen or used & (learner | results) or runs & objects or "globals" in used
                or isinstance(expr, ast.Name)
                or isinstance(expr, ast.Constant) and not isinstance(expr.value, (int, float, complex))):
            continue
        seen.add(text)
        local = _local_names(expr)
        free = []
        for n in sorted(names, key=lambda n: n.col_offset):
            if n.id in values and n.id not in local and n.id not in free:
                free.append(n.id)
        found.append((text, free, [helpers[name] for name in sorted(used & set(helpers))]))
    return found


def _mappings(free: list[str], params: list[str]) -> list[dict[str, str]]:
    """The in-order renaming of ``free`` onto ``params``; where the counts differ, every injective
    one too (up to _MAPPINGS)."""
    first = dict(zip(free, params, strict=False))
    if len(free) == len(params):
        return [first]
    found = [first]
    k = min(len(free), len(params))
    for chosen in itertools.combinations(free, k):
        for targets in itertools.permutations(params, k):
            mapping = dict(zip(chosen, targets, strict=True))
            if mapping not in found:
                found.append(mapping)
            if len(found) >= _MAPPINGS:
                return found
    return found


class _Rename(ast.NodeTransformer):
    def __init__(self, mapping):
        self.mapping = mapping

    def visit_Name(self, node):
        return ast.Name(id=self.mapping.get(node.id, node.id), ctx=node.ctx)


def _params(function: ast.FunctionDef) -> list[str]:
    a = function.args
    return [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]


def _with_body(function: ast.FunctionDef, helpers: list[ast.stmt], expr: str) -> ast.FunctionDef:
    new = copy.deepcopy(function)
    new.body = [*copy.deepcopy(helpers), ast.parse(f"return {expr}").body[0]]
    new.decorator_list = []
    return new


def _stand_ins(answer: ast.stmt, references, others, whole: list[ast.stmt]) -> dict[str, str]:
    """Stand-in source -> what it was made from, for one answer (a function, or a class's methods).
    ``references``: the expressions of its own test cell (every mapping); ``others``: those of the
    part's other visible tests, ``(cell, expression, ...)`` (the in-order renaming, where the names
    and the parameters are as many)."""
    out: dict[str, str] = {}
    methods = [(answer, None)] if isinstance(answer, ast.FunctionDef) else \
        [(m, i) for i, m in enumerate(answer.body) if isinstance(m, ast.FunctionDef) and m.name != "__init__"]
    for method, index in methods:
        params = _params(method)
        tries = [(text, free, uses, _mappings(free, params), "") for text, free, uses in references]
        tries += [(text, free, uses, [dict(zip(free, params, strict=True))], f" (from {where}'s visible test)")
                  for where, text, free, uses in others if free and len(free) == len(params)]
        for text, _, uses, mappings, source_cell in tries:
            for mapping in mappings:
                expr = ast.unparse(_Rename(mapping).visit(ast.parse(text, mode="eval")).body)
                body = _with_body(method, uses, expr)
                if index is None:
                    node = body
                else:
                    node = copy.deepcopy(answer)
                    node.body[index] = body
                source = ast.unparse(ast.fix_missing_locations(node))
                out.setdefault(source, f"{method.name} returning `{text}`{source_cell} with {mapping or 'no renaming'}")
    for definition in whole:                      # a whole definition from a visible test, renamed
        if type(definition) is type(answer):
            node = copy.deepcopy(definition)
            node.name = answer.name
            out.setdefault(ast.unparse(node), f"the visible test's {definition.name}, renamed {answer.name}")
    return out


def _answers(cells) -> list[ast.stmt]:
    tree = [parse(c.source) for c in cells]
    return [n for t in tree if t for n in t.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def _statement_names(cells) -> list[str]:
    """The names an answer made of statements binds (``model = ...``, ``a, b = ...``), in order: an
    answer cell that defines no function or class (Part 4's model, criterion and optimizer)."""
    names: list[str] = []
    for cell in cells:
        tree = parse(cell.source)
        if tree is None or any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body):
            continue
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id not in names:
                        names.append(name.id)
    return names


def _statement_stand_ins(names: list[str], references) -> dict[tuple[str, str], str]:
    """{(name, stand-in source): what it was made of}: each value the visible test compares with (one
    that needs no name of the test's own), pasted as the value of each name the answer binds."""
    out = {}
    for name in names:
        for text, free, uses in references:
            used = {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}
            if free or name in used:
                continue
            source = "\n".join([*(ast.unparse(u) for u in uses), f"{name} = {text}"])
            out.setdefault((name, source), f"`{name} = {text}`")
    return out


def _passes(stand_in: str, who: str, made_of: str, test: str, where: str, namespace: dict) -> list[str]:
    """Run ``stand_in`` (in place of ``who``), then the test cell ``test``: [the failure of the
    proof] if the test passes, hidden tests included, else []."""
    try:
        run(stand_in, namespace, f"stand-in for {who}")
        run(test, namespace, where)
    except Exception:  # noqa: BLE001 - any failure costs the learner the points
        return []
    return [f"{where}: passes with {made_of} (hidden tests included):\n" + textwrap.indent(stand_in, "    ")]


def _proof_failures(part: str, sliced: bool = True) -> tuple[list[str], int]:
    """What the proof finds in ``part``: (failures, stand-ins tried). ``sliced``: run only the cells
    the answers and tests need (:func:`needed_cells`); the whole notebook up to its last test if
    the solution then fails one of its own tests."""
    nb = solution(part)
    learner = learner_names(nb)
    namespace: dict = {"__name__": "__main__"}
    answers: list = []       # the answer cells since the last test cell
    failures, tried = [], 0
    last_test = max((i for i, c in enumerate(nb.cells) if is_test(c)), default=-1)
    wanted = needed_cells(nb, last_test) if sliced else range(last_test + 1)
    for i, cell in enumerate(nb.cells[:last_test + 1]):
        if cell.cell_type != "code" or i not in wanted:
            continue
        if not is_test(cell):
            try:
                run(cell.source, namespace, label(cell, i))
            except Exception:
                if sliced and not fails_on_purpose(cell):   # a cell it needs was left out
                    return _proof_failures(part, sliced=False)
                if not fails_on_purpose(cell):
                    raise
            if is_answer(cell):
                answers.append(cell)
            continue
        tree = parse(visible(cell.source))
        top = [n for n in (tree.body if tree else []) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        others = [(label(c, j), *ref) for j, c in enumerate(nb.cells) if is_test(c) and j != i
                  and parse(visible(c.source)) for ref in _references(c.source, learner)]
        references = _references(cell.source, learner) if tree else []
        for answer in _answers(answers):
            for stand_in, made_of in _stand_ins(answer, references, others, top).items():
                tried += 1
                failures += _passes(stand_in, answer.name, made_of, cell.source, f"{part} {label(cell, i)}", namespace)
                for real in answers:   # the real answers back
                    run(real.source, namespace, label(real, nb.cells.index(real)))
        # An answer made of statements: each name it binds given a value the visible test compares
        # with, the others kept; the name's own value put back after each try (no rerun: Part 3's
        # answers train networks).
        for (name, stand_in), made_of in _statement_stand_ins(_statement_names(answers), references).items():
            tried += 1
            kept = namespace.get(name)
            failures += _passes(stand_in, name, made_of, cell.source, f"{part} {label(cell, i)}", namespace)
            namespace[name] = kept
        try:
            run(cell.source, namespace, label(cell, i))
        except Exception as exc:  # noqa: BLE001 - reported, with the cell
            if sliced:
                return _proof_failures(part, sliced=False)
            failures.append(f"{part} {label(cell, i)}: the solution fails its own test after the stand-ins: "
                            f"{type(exc).__name__}: {exc}")
            return failures, tried
        answers = []
    return failures, tried


@pytest.mark.parametrize("part", [pytest.param(p, marks=pytest.mark.course_data(p)) for p in parts()])
def test_no_visible_reference_passes_for_an_answer(part, monkeypatch):
    """Every value a visible test compares with, made an answer's body, fails the hidden tests."""
    import helper.data

    monkeypatch.setattr(helper.data, "DATA_ROOT", str(helper.data.data_root()))
    failures, tried = _proof_failures(part)
    assert tried, f"{part}: no stand-in was tried (no answer defines a function or class?)"
    assert not failures, f"{len(failures)} of {tried} stand-ins pass:\n" + "\n".join(failures)


# Part 8's fine-tuning exercises: their visible tests define nothing, so the stand-ins above do not
# reach them. What a learner can take from them instead are their numbers (lr=1e-3, steps=4; three
# batches and a StepLR halving the lr): an answer built to pass exactly those must fail the
# exercise once the hidden tests run.
_FITTED_TO_THE_VISIBLE_TEST = {
    "test_prepare_fine_tuning": [
        '''def prepare_fine_tuning(model, lr, steps):
    for p in model.backbone.blocks[-1].parameters():
        p.requires_grad = True
    optimizer = torch.optim.Adam([{"params": model.head.parameters(), "lr": 1e-3},
                                  {"params": model.backbone.blocks[-1].parameters(), "lr": 1e-4}])
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)''',
        '''def prepare_fine_tuning(model, lr, steps):
    for p in model.backbone.blocks[-1].parameters():
        p.requires_grad = True
    optimizer = torch.optim.Adam([{"params": model.head.parameters(), "lr": lr},
                                  {"params": model.backbone.blocks[-1].parameters(), "lr": lr / 10}])
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)''',
    ],
    "test_fine_tune": [
        '''def fine_tune(model, loader, criterion, optimizer, scheduler, device):
    model.train()
    losses = []
    for images, labels in loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    for _ in range(3):
        scheduler.step()
    return losses''',
        '''def fine_tune(model, loader, criterion, optimizer, scheduler, device):
    model.train()
    losses = []
    for images, labels in loader:
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses''',
    ],
}


@pytest.mark.parametrize("test_id, stand_in", [(t, s) for t, sources in _FITTED_TO_THE_VISIBLE_TEST.items()
                                                for s in sources])
def test_an_answer_fitted_to_part8s_visible_fine_tuning_tests_fails(test_id, stand_in):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from helper.pretrained import head_in_features
    from tests.parts.test_parts_07_08_mistakes import P8, failure, visible

    namespace = {"torch": torch, "nn": nn, "copy": copy, "DataLoader": DataLoader, "TensorDataset": TensorDataset,
                 "head_in_features": head_in_features}
    exec(stand_in, namespace)  # noqa: S102 - the stand-in above
    assert failure(visible(P8[test_id]), namespace) is None, "the stand-in should pass the visible test"
    assert failure(P8[test_id], namespace) is not None, f"a stand-in fitted to {test_id}'s visible numbers passes it"


# The proof's own parts, on a made-up test cell.
_CELL = '''"""Check the two-layer net"""
x, w = torch.randn(2, 3), torch.randn(3, 1)
net = Net()
hidden = torch.sigmoid(x @ w)
expected = hidden * 2
y = layer(x, w)
assert torch.allclose(y, expected), "wrong"
assert torch.allclose(net(x), torch.softmax(net.fc(x), dim=1))
### BEGIN HIDDEN TESTS
assert torch.equal(y, secret(x))
### END HIDDEN TESTS
'''


def test_references_keep_the_inputs_and_inline_the_rest():
    found = {text: free for text, free, _ in _references(_CELL, {"layer", "Net"})}
    assert found["torch.sigmoid(x @ w) * 2"] == ["x", "w"]
    assert found["torch.softmax(net.fc(x), dim=1)"] == ["net", "x"]
    assert not any("secret" in text or "layer(" in text or "net(x)" in text for text in found)


def test_stand_ins_rename_onto_the_parameters_and_methods():
    function = ast.parse("def layer(features, weights):\n    return features\n").body[0]
    sources = _stand_ins(function, _references(_CELL, {"layer", "Net"}), [], [])
    assert "def layer(features, weights):\n    return torch.sigmoid(features @ weights) * 2" in sources
    module = ast.parse("class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                       "    def forward(self, inputs):\n        return inputs\n").body[0]
    sources = _stand_ins(module, _references(_CELL, {"layer", "Net"}), [], [])
    assert any("def forward(self, inputs):\n        return torch.softmax(self.fc(inputs), dim=1)" in s for s in sources)


_STATEMENTS = '''"""Check the classifier and its loss"""
assert isinstance(loss_fn, nn.CrossEntropyLoss), "use cross-entropy"
assert accuracy >= 0.9, "train longer"
assert classifier(torch.zeros(4, 3)).shape == (4, 2), "two scores per example"
'''


def test_statement_answers_are_given_each_visible_value():
    """An answer cell of statements binds names; each value its visible test compares with (the
    threshold's 0.9 too) becomes a stand-in for each name, except one that uses the name itself."""
    cell = type("Cell", (), {"source": "classifier = nn.Linear(3, 2)\nloss_fn = nn.CrossEntropyLoss()\n"
                                       "accuracy = evaluate(classifier)"})()
    names = _statement_names([cell])
    assert names == ["classifier", "loss_fn", "accuracy"]
    sources = {source for _, source in _statement_stand_ins(names, _references(_STATEMENTS, set()))}
    assert {"accuracy = 0.9", "loss_fn = (4, 2)", "accuracy = classifier(torch.zeros(4, 3)).shape"} <= sources
    assert not any(s.startswith("classifier = classifier(") for s in sources)
