"""The solutions write PyTorch as it is written now: no tensor ``.data`` (it bypasses autograd
silently; ``torch.no_grad()`` or ``.detach()`` say what they mean), except the one cell of Part 2
that shows the old way beside the new for comparison. ``.data`` of a torchvision data set (its
images as one tensor) is another thing and allowed."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from instructor.course import PART_NAMES, ROOT

pytestmark = pytest.mark.course_data()

DATASET = re.compile(r"(train|test|set)$")  # mnist_train.data: a data set's images, not Tensor.data
COMPARISON = "the old way through .data, for comparison only"


def code_of(cell) -> str:
    """A cell's Python, its IPython magics and shell lines replaced by ``pass``."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!"))
                     else line for line in cell.source.splitlines())


def tensor_data_uses(part: str) -> list[tuple[int, str]]:
    nb = nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(code_of(cell))):
            if isinstance(node, ast.Attribute) and node.attr == "data":
                base = node.value
                if isinstance(base, ast.Name) and (DATASET.search(base.id) or base.id == "helper"):
                    continue  # a data set's images, or the module helper.data
                if isinstance(base, ast.Attribute) and base.attr == "utils":  # the module torch.utils.data
                    continue
                found.append((index, ast.unparse(node)))
    return found


@pytest.mark.parametrize("part", PART_NAMES)
def test_no_tensor_data_but_the_comparison(part):
    nb = nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)
    uses = [(i, what) for i, what in tensor_data_uses(part) if COMPARISON not in nb.cells[i].source]
    assert not uses, f"{part}: Tensor.data in cells {uses}: use torch.no_grad() or .detach()"


def test_the_comparison_is_still_there():
    uses = tensor_data_uses("02-neural-networks")
    assert uses, "Part 2 no longer shows the old .data way beside torch.no_grad(): update this test's docstring"
