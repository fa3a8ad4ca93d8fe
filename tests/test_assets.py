"""The diagrams in ``assets/``: each drawn by ``assets/draw.py``, current, embedded, and true.

- every diagram ``draw.py`` knows has its PNG in ``assets/``, and every PNG there is one of them;
- redrawn now, each is the committed file, pixel for pixel (``make assets`` after editing the
  drawing code; the Pillow and matplotlib of ``requirements.txt``, what ``make test`` runs);
- each is embedded in at least one solution notebook (``tests/instructor/test_notebooks.py``
  checks that the embedded copies are the files and render in nbgrader's feedback);
- the figures that draw numbers draw PyTorch's: the broadcasting figure, Part 1's own additions
  (the code it names is in Part 1, and PyTorch gives the values and the error it shows); the
  convolution figure, what ``nn.functional.conv2d`` computes for its image and filter, which are
  the ones Part 7's cell computes with PyTorch.
"""

from __future__ import annotations

import sys

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image

from instructor import notebooks
from instructor.course import PART_NAMES, ROOT

ASSETS = ROOT / "assets"
sys.path.insert(0, str(ASSETS))  # draw.py imports its sibling modules as a script does

import draw  # noqa: E402
import grids  # noqa: E402


def _solution(part: str):
    return nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_every_diagram_has_its_file_and_every_file_is_a_diagram():
    files = {p.stem for p in ASSETS.glob("*.png")}
    assert files == set(draw.DIAGRAMS), \
        (f"assets/ and draw.DIAGRAMS disagree: files without a diagram {sorted(files - set(draw.DIAGRAMS))}, "
         f"diagrams without a file {sorted(set(draw.DIAGRAMS) - files)} (run `make assets`)")


@pytest.mark.parametrize("name", list(draw.DIAGRAMS))
def test_diagram_is_current(name, tmp_path):
    assert draw.main([name, "--outdir", str(tmp_path)]) == 0
    drawn, committed = _pixels(tmp_path / f"{name}.png"), _pixels(ASSETS / f"{name}.png")
    assert drawn.shape == committed.shape, f"assets/{name}.png is {committed.shape}, draw.py draws {drawn.shape}"
    differ = np.any(drawn != committed, axis=-1).mean()
    assert differ == 0, \
        f"assets/{name}.png differs from what draw.py draws ({differ:.2%} of its pixels): run `make assets`"


def test_every_diagram_is_embedded_in_a_solution():
    embedded = {name for part in PART_NAMES if (ROOT / "solutions" / part).is_dir()
                for cell in _solution(part).cells if cell.cell_type == "markdown"
                for name, _ in notebooks.embedded_figures(cell.source)}
    missing = sorted(f"{name}.png" for name in draw.DIAGRAMS if f"{name}.png" not in embedded)
    assert not missing, f"no solution notebook shows {', '.join(missing)}"


def test_the_broadcasting_figure_draws_part_1s_additions():
    code = "\n".join(c.source for c in _solution("01-tensors").cells if c.cell_type == "code")
    for expression, a, b in grids.BROADCASTS:
        assert expression in code, f"the broadcasting figure draws {expression}, which Part 1 no longer computes"
        x, y = (eval(part, {"torch": torch}) for part in expression.split(" + "))
        assert np.array_equal(x.numpy(), a) and np.array_equal(y.numpy(), b), f"{expression}: other tensors drawn"
        drawn = grids.broadcast(a, b)
        try:
            result = (x + y).numpy()
        except RuntimeError:
            assert drawn is None, f"{expression} fails in PyTorch, and the figure draws a result"
        else:
            assert drawn is not None and np.array_equal(drawn, result), f"{expression}: the figure draws other values"
    assert sum(grids.broadcast(a, b) is None for _, a, b in grids.BROADCASTS) == 1, "one addition that fails"


def test_the_convolution_figure_is_what_pytorch_computes():
    image = torch.tensor(grids.CONV_IMAGE, dtype=torch.float32).view(1, 1, *grids.CONV_IMAGE.shape)
    weights = torch.tensor(grids.CONV_FILTER, dtype=torch.float32).view(1, 1, *grids.CONV_FILTER.shape)
    for stride in (grids.CONV_STRIDE, 2):
        want = torch.nn.functional.conv2d(image, weights, padding=grids.CONV_PADDING, stride=stride)[0, 0]
        got = grids.convolve(grids.CONV_IMAGE, grids.CONV_FILTER, grids.CONV_PADDING, stride)
        assert np.array_equal(got, want.numpy()), f"stride {stride}: the figure's map is not conv2d's"
    assert grids.convolve(grids.CONV_IMAGE, grids.CONV_FILTER, 1, 1).shape == grids.CONV_IMAGE.shape, \
        "the figure says padding=1 keeps the size"


def test_part_7_computes_the_convolution_figure():
    cell = next(c for c in _solution("07-loading-image-data").cells if "figure_filter" in c.source)
    namespace = {"torch": torch, "nn": torch.nn}
    exec(cell.source, namespace)  # the solution's own cell: a few tensors
    assert np.array_equal(namespace["figure_image"][0, 0].numpy(), grids.CONV_IMAGE), "Part 7 uses another image"
    assert np.array_equal(namespace["figure_filter"][0, 0].numpy(), grids.CONV_FILTER), "Part 7 uses another filter"
