"""Diagrams of tensors as grids of numbers: broadcasting (Part 1) and convolution (Part 7).

The numbers in these figures are computed, not typed: the broadcasting figure draws the very
tensors of Part 1's cells (``BROADCASTS``), the convolution figure the output of its filter on
its image (``convolve``). ``tests/test_assets.py`` checks both against PyTorch.
"""

from __future__ import annotations

import numpy as np
from drawing import (
    BLUE,
    BLUE_LIGHT,
    GREEN,
    GREEN_LIGHT,
    GREY,
    GREY_LIGHT,
    INK,
    LABEL,
    ORANGE,
    ORANGE_LIGHT,
    RED,
    RED_LIGHT,
    SMALL,
    TITLE,
    canvas,
    cell_grid,
)
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

MONO = "DejaVu Sans Mono"

# Part 1's additions (the code as the notebook writes it, and the same tensors as arrays).
BROADCASTS = [
    ("torch.ones(5, 3) + torch.arange(3)", np.ones((5, 3)), np.arange(3.0)),
    ("torch.ones(5, 1) + torch.ones(1, 3)", np.ones((5, 1)), np.ones((1, 3))),
    ("torch.ones(5, 3) + torch.arange(5)", np.ones((5, 3)), np.arange(5.0)),
]

# Part 7's convolution: a 5 x 5 image, one 3 x 3 filter, padding 1, stride 1.
CONV_IMAGE = np.array([[0, 0, 1, 3, 3],
                       [0, 1, 3, 3, 2],
                       [0, 1, 3, 2, 1],
                       [0, 0, 2, 3, 1],
                       [0, 0, 1, 2, 2]], dtype=float)
CONV_FILTER = np.array([[-1, 0, 1],
                        [-1, 0, 1],
                        [-1, 0, 1]], dtype=float)
CONV_PADDING, CONV_STRIDE = 1, 1
# Output positions (row, column) whose window the figure outlines, in these colours.
CONV_WINDOWS = [((0, 0), ORANGE, ORANGE_LIGHT), ((1, 3), GREEN, GREEN_LIGHT), ((4, 1), RED, RED_LIGHT)]
CONV_WORKED = 1  # the window whose sum of products is written out


def broadcast(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``a + b`` as NumPy broadcasts it (PyTorch's rule), or None where the shapes do not fit."""
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        return None
    return a + b


def convolve(image: np.ndarray, weights: np.ndarray, padding: int, stride: int) -> np.ndarray:
    """What ``nn.Conv2d`` (no bias) computes for one channel: the filter slid over the zero-padded
    image, at each position the sum of the products (a cross-correlation, as in PyTorch)."""
    padded = np.pad(image, padding)
    k = weights.shape[0]
    size = (padded.shape[0] - k) // stride + 1
    return np.array([[(padded[i * stride:i * stride + k, j * stride:j * stride + k] * weights).sum()
                      for j in range(size)] for i in range(size)])


def _cells(ax: Axes, x0: float, y0: float, values, edge, face, text=INK, dashed=False):
    """A grid of cells, top-left corner at ``(x0, y0)``, cell size 1, a number in each."""
    values = np.atleast_2d(values)
    for (i, j), v in np.ndenumerate(values):
        ax.add_patch(Rectangle((x0 + j, y0 - i - 1), 1, 1, facecolor=face, edgecolor=edge,
                               linewidth=1.2 if dashed else 1.6, linestyle="--" if dashed else "-",
                               zorder=2 if dashed else 3))
        ax.text(x0 + j + 0.5, y0 - i - 0.5, f"{v:g}", ha="center", va="center", fontsize=SMALL,
                color=text, zorder=4)


def _stretched(ax: Axes, x0: float, y0: float, values, rows: int, cols: int, edge, face):
    """``values`` drawn solid, and its broadcast to ``(rows, cols)`` as dashed, greyed copies."""
    values = np.atleast_2d(values)
    _cells(ax, x0, y0, np.broadcast_to(values, (rows, cols)), edge, "white", text=GREY, dashed=True)
    _cells(ax, x0, y0, values, edge, face)


def _shape_table(ax: Axes, x_right: float, y: float, a: tuple, b: tuple):
    """The two shapes lined up from the right, one column per dimension, and what each gives."""
    n = max(len(a), len(b))
    pa, pb = (None,) * (n - len(a)) + a, (None,) * (n - len(b)) + b
    for r, name in enumerate(("a", "b")):
        ax.text(x_right - n * 1.3 - 0.4, y - r * 0.75, name, ha="right", va="center", fontsize=SMALL,
                color=GREY)
    for d in range(n):
        x = x_right - (n - 1 - d) * 1.3
        sa, sb = pa[d] or 1, pb[d] or 1
        fits = sa == sb or 1 in (sa, sb)
        for r, size in enumerate((pa[d], pb[d])):
            other = (pb[d] or 1) if r == 0 else (pa[d] or 1)
            colour = RED if not fits else (ORANGE if (size or 1) == 1 and other != 1 else INK)
            ax.text(x, y - r * 0.75, "1" if size is None else str(size), ha="center", va="center",
                    fontsize=SMALL, family=MONO, color=GREY if size is None else colour,
                    fontstyle="italic" if size is None else "normal")
        ax.text(x, y - 1.6, str(max(sa, sb)) if fits else "✗", ha="center", va="center", fontsize=SMALL,
                family=MONO, color=GREEN if fits else RED, fontweight="bold")
    ax.plot([x_right - n * 1.3 + 0.5, x_right + 0.5], [y - 1.15, y - 1.15], color=GREY, lw=0.8)


def _broadcast_panel(ax: Axes, x0: float, top: float, code: str, a, b, caption: str) -> float:
    """One addition: its code, the shapes lined up, then a + b = result as grids. Returns its width."""
    result = broadcast(a, b)
    rows, cols = result.shape if result is not None else a.shape
    b2 = np.atleast_2d(b)
    # the operands take the result's width once stretched; a failed one keeps its own
    width_a, width_b = (a.shape[1], b2.shape[1]) if result is None else (cols, cols)
    width = width_a + width_b + (3 if result is None else cols) + 2.4
    ax.text(x0 + width / 2, top, code, ha="center", va="center", fontsize=SMALL, family=MONO)
    _shape_table(ax, x0 + width / 2 + 0.6, top - 1.1, a.shape, b.shape)

    y = top - 3.7
    _stretched(ax, x0, y, a, rows, cols, BLUE, BLUE_LIGHT)
    xb = x0 + width_a + 1.2
    ax.text(xb - 0.6, y - rows / 2, "+", ha="center", va="center", fontsize=TITLE)
    if result is None:
        _cells(ax, xb, y, b2, ORANGE, ORANGE_LIGHT)
    else:
        _stretched(ax, xb, y, b2, rows, cols, ORANGE, ORANGE_LIGHT)
    xr = xb + width_b + 1.2
    if result is None:
        ax.text(xr - 0.6, y - rows / 2, "=", ha="center", va="center", fontsize=TITLE)
        ax.text(xr + 1.3, y - rows / 2 + 0.5, "✗", ha="center", va="center", fontsize=TITLE + 10,
                color=RED)
        ax.text(xr + 1.3, y - rows / 2 - 0.9, "RuntimeError", ha="center", va="center",
                fontsize=SMALL, color=RED, family=MONO)
    else:
        ax.text(xr - 0.6, y - rows / 2, "=", ha="center", va="center", fontsize=TITLE)
        _cells(ax, xr, y, result, GREEN, GREEN_LIGHT)
    for x, shape in [(x0 + a.shape[1] / 2, a.shape), (xb + b2.shape[1] / 2, b.shape)] + (
            [] if result is None else [(xr + cols / 2, result.shape)]):
        ax.text(x, y - rows - 0.55, str(tuple(shape)), ha="center", va="center", fontsize=SMALL,
                family=MONO)
    ax.text(x0 + width / 2, y - rows - 1.75, caption, ha="center", va="center", fontsize=SMALL,
            color=GREY, linespacing=1.3)
    return width


def draw_broadcasting() -> Figure:
    """Part 1's three additions: shapes lined up from the right, size-1 dimensions stretched."""
    fig, ax = canvas(10.7, 4.3, (0, 41.8), (1.9, 18.6))
    ax.text(20.9, 17.8, "Broadcasting: line the shapes up from the right; sizes equal, or one of them 1",
            ha="center", va="center", fontsize=TITLE, fontweight="bold")
    captions = ["(3,) counts as (1, 3):\nits one row is repeated 5 times",
                "both stretch: the column 3 times,\nthe row 5 times",
                "3 against 5, and neither is 1:\nno broadcast, an error"]
    x = 1.0
    for (code, a, b), caption in zip(BROADCASTS, captions, strict=True):
        x += _broadcast_panel(ax, x, 15.5, code, a, b, caption) + 1.6
    ax.text(20.9, 2.6, "dashed and grey: the values a size-1 dimension is repeated into (no copy is made)",
            ha="center", va="center", fontsize=SMALL, color=GREY)
    return fig


def _outline(ax: Axes, x: float, y: float, size: float, colour, inset: float = 0.07):
    ax.add_patch(Rectangle((x + inset, y - size + inset), size - 2 * inset, size - 2 * inset,
                           facecolor="none", edgecolor=colour, linewidth=3.2, zorder=6))


def _worked_sum(ax: Axes, x: float, y: float, window: np.ndarray, value: float, colour) -> None:
    """One window's sum of products, row by row, under the filter."""
    def term(v, w):
        return f"{v:g}·({w:g})" if w < 0 else f"{v:g}·{w:g}"

    lines = [" + ".join(term(v, w) for v, w in zip(row, wrow, strict=True))
             for row, wrow in zip(window, CONV_FILTER, strict=True)]
    for i, line in enumerate(lines):
        ax.text(x, y - i * 0.62, ("  " if i == 0 else "+ ") + line, ha="center", va="center",
                fontsize=SMALL - 1, family=MONO, color=colour)
    ax.text(x, y - len(lines) * 0.62 - 0.1, f"= {value:g}", ha="center", va="center", fontsize=LABEL,
            family=MONO, color=colour, fontweight="bold")


def draw_convolution() -> Figure:
    """A 3 x 3 filter slid over a zero-padded 5 x 5 image, and the 5 x 5 feature map it fills."""
    out = convolve(CONV_IMAGE, CONV_FILTER, CONV_PADDING, CONV_STRIDE)
    padded = np.pad(CONV_IMAGE, CONV_PADDING)
    n, k, m = padded.shape[0], CONV_FILTER.shape[0], out.shape[0]
    fig, ax = canvas(10.0, 6.0, (0, 23.0), (-3.1, 10.7))
    ax.text(11.5, 10.1, "Convolution: one small filter slid over every position of the image",
            ha="center", va="center", fontsize=TITLE, fontweight="bold")

    # the input: the image (blue) inside its ring of zero padding (grey)
    x0, top = 0.5, 8.0
    cell_grid(ax, x0, top, n, n, 1.0, face=GREY_LIGHT, edge=GREY, values=padded)
    cell_grid(ax, x0 + CONV_PADDING, top - CONV_PADDING, *CONV_IMAGE.shape, 1.0, values=CONV_IMAGE)
    ax.text(x0 + n / 2, top + 0.55, f"input {CONV_IMAGE.shape[0]} × {CONV_IMAGE.shape[1]}, padding={CONV_PADDING}",
            ha="center", va="center", fontsize=LABEL)
    ax.text(x0 + n / 2, top - n - 0.5, "grey: the ring of zeros that padding adds", ha="center",
            va="center", fontsize=SMALL, color=GREY)

    # the output: the feature map, the outlined windows' values in their colours
    xo, topo = 16.5, top - CONV_PADDING
    cell_grid(ax, xo, topo, m, m, 1.0, values=out)
    for (i, j), edge, face in CONV_WINDOWS:
        _outline(ax, x0 + j * CONV_STRIDE, top - i * CONV_STRIDE, k, edge)
        ax.add_patch(Rectangle((xo + j, topo - i - 1), 1, 1, facecolor=face, edgecolor=edge, linewidth=3.2,
                               zorder=5))
        ax.text(xo + j + 0.5, topo - i - 0.5, f"{out[i, j]:g}", ha="center", va="center",
                fontsize=SMALL, fontweight="bold", zorder=6)
    ax.text(xo + m / 2, top + 0.55, f"output {m} × {m} (feature map)", ha="center", va="center",
            fontsize=LABEL)

    # the filter, and one window's sum of products
    xf = 10.0
    cell_grid(ax, xf, top - 0.3, k, k, 1.0, face=ORANGE_LIGHT, edge=INK, values=CONV_FILTER)
    ax.text(xf + k / 2, top + 0.55, f"filter {k} × {k}", ha="center", va="center", fontsize=LABEL)
    ax.text(xf + k / 2, top - k - 0.75, "the same 9 weights\nat every position", ha="center",
            va="center", fontsize=SMALL, color=GREY)
    (i, j), edge, _ = CONV_WINDOWS[CONV_WORKED]
    window = padded[i * CONV_STRIDE:i * CONV_STRIDE + k, j * CONV_STRIDE:j * CONV_STRIDE + k]
    _worked_sum(ax, xf + k / 2, top - k - 2.2, window, out[i, j], edge)

    ax.text(11.5, -0.45, "each outlined window: its 9 values times the filter's 9 weights, added up "
            "(plus a bias, 0 here), is the output value in its colour", ha="center", va="center", fontsize=SMALL)
    strided = convolve(CONV_IMAGE, CONV_FILTER, CONV_PADDING, 2).shape[0]
    h = CONV_IMAGE.shape[0]
    notes = [f"kernel_size={k}, stride={CONV_STRIDE} (one pixel per step), padding={CONV_PADDING} "
             f"(a ring of zeros): {h} × {h} in, {m} × {m} out",
             f"output size = (H + 2·padding − kernel_size) / stride + 1 = ({h} + {2 * CONV_PADDING} − {k}) "
             f"/ {CONV_STRIDE} + 1 = {m};  with stride=2: {strided} × {strided}"]
    for i, note in enumerate(notes):
        ax.text(11.5, -1.35 - i * 0.8, note, ha="center", va="center", fontsize=SMALL, color=GREY)
    return fig
