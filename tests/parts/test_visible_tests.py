"""Visible tests show what is expected and name a learner's mistake; they never hold a working answer.

- No line of a solution (between ``### BEGIN SOLUTION`` and ``### END SOLUTION``) appears in a
  test cell as learners see it, and no visible test restates most of a solution's statements with
  other names (a reference loop written out: the statements' shapes are compared, names and
  numbers left out, attribute and function names kept).
- Every function or class that a released notebook's visible test cells define, put in place of a
  learner's answer that defines the same kind of thing (renamed to the answer's name), fails that
  exercise's test cell, hidden tests included. The solution notebook runs in this process (no
  kernel): at each test cell with candidates, each stand-in is tried, then the real answer is put
  back, and its test must pass again before the notebook goes on.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import re
import textwrap

import matplotlib
import nbformat
import pytest

from instructor import notebooks
from tests.parts.test_parts_01_04_mistakes import _notebook, _python

matplotlib.use("Agg")


def _parts() -> list[str]:
    return sorted(p.parent.name for p in notebooks.ROOT.glob("solutions/*/*.ipynb"))


# trains every part's models in-process (minutes), on every part's data
pytestmark = [pytest.mark.slow, pytest.mark.course_data(*_parts())]


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and bool(_meta(cell).get("grade")) and not _meta(cell).get("solution")


def _is_answer(cell) -> bool:
    return cell.cell_type == "code" and bool(_meta(cell).get("solution")) and not _meta(cell).get("grade")


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


def _definitions(source: str) -> list[ast.stmt]:
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    return [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def _released(part: str):
    return nbformat.read(notebooks.ROOT / "notebooks" / part / f"{part}.ipynb", as_version=4)


def _released_tests(part: str) -> list[str]:
    return [c.source for c in _released(part).cells if _is_test(c)]


@pytest.mark.parametrize("part", _parts())
def test_no_solution_line_in_a_visible_test(part):
    """Lines the released notebook shows elsewhere (its text and examples) are no secret."""
    answers = [c.source for c in _notebook(part).cells if _is_answer(c)]
    shown = {_fold(line) for c in _released(part).cells if not _is_test(c) for line in c.source.splitlines()}
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


@pytest.mark.parametrize("part", _parts())
def test_no_visible_test_restates_a_solution(part):
    """At most half of an answer's statements (by shape) in any one visible test."""
    for cell in (c for c in _notebook(part).cells if _is_answer(c)):
        solution = _shapes(cell.source, solution_only=True)
        if len(solution) < 3:
            continue
        for test in _released_tests(part):
            shared = solution & _shapes(test)
            assert len(shared) <= len(solution) / 2, \
                (f"{part}: a visible test restates {len(shared)} of the {len(solution)} statements of "
                 f"{_meta(cell).get('grade_id')}'s solution: {sorted(shared)[:4]}")


def _candidates(part: str) -> list[ast.stmt]:
    return [d for test in _released_tests(part) for d in _definitions(test)]


def _stand_in(definition: ast.stmt, name: str) -> str:
    node = ast.parse(ast.unparse(definition)).body[0]
    node.name = name
    return ast.unparse(node)


def _run(source: str, namespace: dict, name: str) -> None:
    """Run a cell's source here: IPython magics become ``pass``, solution markers stay comments."""
    code = re.sub(r"^([ \t]*)[%!].*$", r"\1pass", source, flags=re.M)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(code, name, "exec"), namespace)  # noqa: S102 - the course's own cells


def _pairs(part: str) -> int:
    """How many (stand-in, answer) pairs of the same kind the part has."""
    answers = [d for c in _notebook(part).cells if _is_answer(c) for d in _definitions(c.source)]
    return sum(type(c) is type(a) for c in _candidates(part) for a in answers)


@pytest.mark.parametrize("part", [p for p in _parts() if _pairs(p)])
def test_no_visible_definition_passes_for_an_answer(part):
    candidates = _candidates(part)
    nb = _notebook(part)
    namespace: dict = {"__name__": "__main__"}
    answers: list = []      # the answer cells since the last test cell
    tried = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i == 0 and "setup" in cell.source.lower():
            continue
        if not _is_test(cell):
            fails_on_purpose = "raises-exception" in cell.metadata.get("tags", [])
            with contextlib.suppress(Exception) if fails_on_purpose else contextlib.nullcontext():
                _run(cell.source, namespace, f"cell {i}")
            if _is_answer(cell):
                answers.append(cell)
            continue
        for answer in answers:
            for target in _definitions(answer.source):
                for candidate in (c for c in candidates if type(c) is type(target)):
                    _run(_stand_in(candidate, target.name), namespace, f"stand-in {candidate.name}")
                    try:
                        _run(cell.source, namespace, _meta(cell).get("grade_id", "test"))
                    except Exception:  # noqa: BLE001 - any failure costs the learner the points
                        pass
                    else:
                        pytest.fail(f"{part}: {candidate.name}, defined by a visible test, passes "
                                    f"{_meta(cell).get('grade_id')} (hidden tests included) in place of "
                                    f"{target.name}: that visible test holds a working answer")
                    tried += 1
                    for real in answers:   # the real answers back, and their test passes again
                        _run(real.source, namespace, _meta(real).get("grade_id", "answer"))
        _run(cell.source, namespace, _meta(cell).get("grade_id", "test"))
        answers = []
    assert tried == _pairs(part), f"{part}: {tried} of {_pairs(part)} stand-ins were tried"


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
