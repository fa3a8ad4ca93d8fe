"""Draw the course's diagrams as PNG files in ``assets/``.

Every figure that the notebooks embed from ``assets/`` is drawn here, with matplotlib
primitives only (patches, arrows, text; no downloaded fonts or images), so that it can be
regenerated and reviewed like code.

Usage, from the repository root::

    python assets/draw.py                    # draw every diagram
    python assets/draw.py neuron mlp         # draw only some (".png" may be given or left out)
    python assets/draw.py --list             # list the diagram names
    python assets/draw.py --outdir /tmp/x    # write somewhere else (default: this folder)

Each file is about 900-1000 px wide (100 dpi), white, and stored as a 256-colour palette
PNG (10-35 KB) because the notebooks embed it as base64.  The output is deterministic: the
same matplotlib and Pillow versions write byte-identical files (no timestamp or "Software"
tag in the PNG, a fixed seed for the one random pixel pattern, fonts bundled with
matplotlib), so re-running the script leaves ``git status`` clean.

Requires only matplotlib and numpy (and Pillow, which matplotlib itself depends on).

The palette, font sizes, drawing helpers and the PNG writer are in ``drawing.py``; the diagrams
of tensors as grids of numbers (broadcasting, convolution) in ``grids.py``, the others here.
To add a diagram: write a function ``draw_<name>() -> Figure`` and add it to ``DIAGRAMS``.
``tests/test_assets.py`` checks that every diagram is drawn, embedded and current.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from drawing import (
    ASSETS,
    BLUE,
    BLUE_LIGHT,
    DPI,
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
    STYLE,
    TITLE,
    arrow,
    box,
    canvas,
    cell_grid,
    node,
    padlock,
    plt,
    save,
)
from grids import draw_broadcasting, draw_convolution
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

# ---------------------------------------------------------------------------------------------
# The diagrams
# ---------------------------------------------------------------------------------------------


def draw_neuron() -> Figure:
    """A single neuron: inputs and bias, weighted edges, a sum, an activation, the output."""
    fig, ax = canvas(9.0, 4.4, (0, 18), (-0.2, 8.6))

    ax.text(9, 8.1, "A single neuron", ha="center", va="center", fontsize=TITLE,
            fontweight="bold")

    sum_xy = (8.2, 4.2)
    inputs = [("$x_1$", 6.6, "$w_1$"), ("$x_2$", 4.9, "$w_2$"), ("$x_3$", 3.2, "$w_3$")]
    for text, y, w in inputs:
        node(ax, (2.0, y), text, r=0.55)
        arrow(ax, (2.55, y), (sum_xy[0] - 0.72, sum_xy[1] + (y - sum_xy[1]) * 0.12), color=BLUE)
        # weight label beside its edge, a little under halfway along
        ex, ey = sum_xy[0] - 2.0, sum_xy[1] - y
        norm = np.hypot(ex, ey)
        lx, ly = 2.0 + ex * 0.4 - ey / norm * 0.4, y + ey * 0.4 + ex / norm * 0.4
        ax.text(lx, ly, w, ha="center", va="center", fontsize=LABEL, color=BLUE)

    # bias
    node(ax, (2.0, 1.3), "$b$", r=0.55, edge=ORANGE, face=ORANGE_LIGHT)
    arrow(ax, (2.55, 1.35), (sum_xy[0] - 0.6, sum_xy[1] - 0.45), color=ORANGE)
    ax.text(4.5, 2.75, "bias", ha="center", va="center", fontsize=LABEL, color=ORANGE,
            rotation=np.degrees(np.arctan2(2.4, 5.05)) * 0.95, rotation_mode="anchor")
    ax.text(2.0, 0.25, "inputs and bias", ha="center", va="center", fontsize=SMALL, color=GREY)

    # summation
    node(ax, sum_xy, r"$\Sigma$", r=0.75, size=TITLE + 5)
    ax.text(sum_xy[0], sum_xy[1] - 1.35, r"$z = \sum_i w_i x_i + b$", ha="center", va="center",
            fontsize=SMALL)
    ax.text(sum_xy[0], sum_xy[1] + 1.15, "weighted sum", ha="center", va="center",
            fontsize=SMALL, color=GREY)

    # activation
    act_xy = (12.0, 4.2)
    arrow(ax, (sum_xy[0] + 0.75, 4.2), (act_xy[0] - 0.95, 4.2))
    ax.text((sum_xy[0] + act_xy[0]) / 2 - 0.1, 4.5, "$z$", ha="center", va="bottom",
            fontsize=LABEL)
    box(ax, act_xy, 1.8, 1.5, "", edge=GREEN, face=GREEN_LIGHT)
    ax.text(act_xy[0], 4.55, "$f$", ha="center", va="center", fontsize=TITLE + 2)
    zs = np.linspace(-4, 4, 60)
    ax.plot(act_xy[0] + zs * 0.17, 3.65 + 0.6 / (1 + np.exp(-zs * 1.4)), color=GREEN, lw=1.6,
            zorder=5)
    ax.text(act_xy[0], act_xy[1] + 1.15, "activation", ha="center", va="center",
            fontsize=SMALL, color=GREY)
    ax.text(act_xy[0], act_xy[1] - 1.3, "e.g. sigmoid, ReLU", ha="center", va="center",
            fontsize=SMALL, color=GREY)

    # output
    out_xy = (15.6, 4.2)
    arrow(ax, (act_xy[0] + 0.95, 4.2), (out_xy[0] - 0.6, 4.2))
    node(ax, out_xy, "$y$", r=0.55, edge=INK, face="white")
    ax.text(out_xy[0], out_xy[1] + 1.15, "output", ha="center", va="center", fontsize=SMALL,
            color=GREY)

    ax.text(12.0, 1.0, r"$y = f\left(\sum_i\, w_i x_i + b\right)$", ha="center", va="center",
            fontsize=TITLE + 2,
            bbox=dict(boxstyle="round,pad=0.4", facecolor="white", edgecolor=GREY))
    return fig


def draw_tensor_dimensions() -> Figure:
    """Scalar, vector, matrix and 3-D tensor as grids of cells, labelled with their shapes."""
    fig, ax = canvas(9.6, 3.7, (0, 24), (0.2, 9.45))
    c = 0.9  # cell size
    top = 6.4  # top edge of the grids
    label_y = 1.6

    ax.text(12, 8.85, "Tensors by number of dimensions", ha="center", va="center",
            fontsize=TITLE, fontweight="bold")

    def caption(x, name, shape, ndim):
        ax.text(x, label_y + 0.9, name, ha="center", va="center", fontsize=LABEL,
                fontweight="bold")
        ax.text(x, label_y, f"shape {shape}", ha="center", va="center", fontsize=LABEL,
                family="DejaVu Sans Mono")
        ax.text(x, label_y - 0.8, f"ndim = {ndim}", ha="center", va="center", fontsize=SMALL,
                color=GREY, family="DejaVu Sans Mono")

    # scalar
    x = 2.0
    cell_grid(ax, x - c / 2, top - 1.35 + c / 2, 1, 1, c, values=[[7]])
    caption(x, "scalar", "()", 0)

    # vector
    x = 7.1
    cell_grid(ax, x - 2 * c, top - 1.35 + c / 2, 1, 4, c, values=[[3, 1, 4, 1]])
    caption(x, "vector", "(4,)", 1)

    # matrix
    x = 13.0
    vals = np.arange(12).reshape(3, 4)
    cell_grid(ax, x - 2 * c, top - 0.45, 3, 4, c, values=vals)
    caption(x, "matrix", "(3, 4)", 2)

    # 3-D tensor: two 3x4 slices, the back one offset up and right
    x = 19.6
    dx, dy = 0.9, 0.9
    x0, y0 = x - 2 * c - dx / 2, top - 0.45 - dy / 2 + 0.45
    cell_grid(ax, x0 + dx, y0 + dy, 3, 4, c, face="#a9c2e3", edge=BLUE, zorder=2)
    for px, py in [(0, 0), (4 * c, 0), (4 * c, -3 * c), (0, -3 * c)]:
        ax.plot([x0 + px, x0 + px + dx], [y0 + py, y0 + py + dy], color=BLUE, lw=1.2, zorder=1)
    cell_grid(ax, x0, y0, 3, 4, c, values=vals + 12, zorder=4)
    caption(x, "3-D tensor", "(2, 3, 4)", 3)
    ax.text(x0 + 2 * c + dx, y0 + dy + 0.35, "2 slices, each (3, 4)", ha="center",
            va="bottom", fontsize=SMALL, color=GREY)
    return fig


def draw_mlp() -> Figure:
    """A multilayer perceptron 784 -> 256 -> 128 -> 10 with softmax and weight shapes."""
    fig, ax = canvas(10.0, 5.6, (0, 25), (-0.8, 13.2))

    ax.text(12.5, 12.7, "A multilayer perceptron for 28×28 images (MNIST)", ha="center",
            va="center", fontsize=TITLE, fontweight="bold")

    # (x, label, size, shown nodes above the ellipsis, colour pair, activation below)
    layers = [
        (2.0, "input", 784, 4, (GREY, GREY_LIGHT), "flattened\npixels"),
        (7.5, "hidden 1", 256, 4, (BLUE, BLUE_LIGHT), "ReLU"),
        (13.0, "hidden 2", 128, 3, (BLUE, BLUE_LIGHT), "ReLU"),
        (18.5, "output", 10, 3, (ORANGE, ORANGE_LIGHT), "logits"),
    ]
    r = 0.42
    centre_y = 6.0
    positions = []
    for x, _name, _n, shown, _col, _act in layers:
        gap = 1.2
        ys = [centre_y + (shown - 1 - i) * gap - (shown - 1) * gap / 2 + gap / 2
              for i in range(shown)]
        ys.append(ys[-1] - 2 * gap)  # the last node, below the ellipsis
        positions.append((x, ys))

    # connections first, under the nodes
    for (x1, ys1), (x2, ys2) in itertools.pairwise(positions):
        for y1 in ys1:
            for y2 in ys2:
                ax.plot([x1, x2], [y1, y2], color="#c8c8c8", lw=0.7, zorder=1)

    for (x, name, n, _visible, (edge, face), act), (_, ys) in zip(layers, positions, strict=True):
        for y in ys:
            ax.add_patch(Circle((x, y), r, facecolor=face, edgecolor=edge, lw=1.6, zorder=3))
        ax.text(x, (ys[-2] + ys[-1]) / 2, "⋮", ha="center", va="center", fontsize=TITLE + 3,
                color=edge)
        ax.text(x, 10.9, name, ha="center", va="center", fontsize=LABEL, fontweight="bold")
        ax.text(x, 10.15, f"{n} units", ha="center", va="center", fontsize=SMALL)
        ax.text(x, ys[-1] - 1.0, act, ha="center", va="top", fontsize=SMALL, color=GREY)

    # weight shapes between the layers
    shapes = [r"$W_1$: 784×256", r"$W_2$: 256×128", r"$W_3$: 128×10"]
    for ((x1, _), (x2, _)), text in zip(itertools.pairwise(positions), shapes, strict=True):
        ax.text((x1 + x2) / 2, 0.0, text, ha="center", va="center", fontsize=SMALL,
                bbox=dict(boxstyle="round,pad=0.3", facecolor="white", edgecolor=GREY))

    # softmax and probabilities
    sx = 21.9
    out_ys = positions[-1][1]
    mid_y = (out_ys[0] + out_ys[-1]) / 2
    ax.plot([18.5 + r + 0.25] * 2, [out_ys[-1], out_ys[0]], color=ORANGE, lw=1.6)
    box(ax, (sx, mid_y + 1.3), 1.9, 1.0, "softmax", edge=ORANGE, face="white", size=SMALL)
    arrow(ax, (18.5 + r + 0.25, mid_y + 1.3), (sx - 1.05, mid_y + 1.3), color=ORANGE)
    arrow(ax, (sx, mid_y + 0.7), (sx, mid_y + 0.05), color=ORANGE)
    probs = [0.02, 0.05, 0.81, 0.12]
    for i, p in enumerate(probs):
        y = mid_y - 0.35 - i * 0.55
        ax.add_patch(Rectangle((sx - 0.95, y - 0.18), 1.9 * p, 0.36, facecolor=ORANGE,
                               edgecolor="none", zorder=3))
        ax.add_patch(Rectangle((sx - 0.95, y - 0.18), 1.9, 0.36, facecolor="none",
                               edgecolor=ORANGE, lw=0.8, zorder=3))
    ax.text(sx, mid_y - 2.5, "10 probabilities\nsumming to 1", ha="center", va="top",
            fontsize=SMALL, color=GREY)
    return fig


def draw_gradient_descent() -> Figure:
    """Gradient descent on a 1-D loss curve and on a 2-D contour plot."""
    with plt.rc_context({"axes.spines.top": False, "axes.spines.right": False}):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.6, 4.2), dpi=DPI,
                                       gridspec_kw={"width_ratios": [1.15, 1]})

    # --- 1-D: L(w) = (w - 1)^2 + 0.5, steps w <- w - lr * dL/dw
    def loss(w):
        return (w - 1.0) ** 2 + 0.5

    lr = 0.3
    ws = [-2.2]
    for _ in range(6):
        ws.append(ws[-1] - lr * 2 * (ws[-1] - 1.0))
    ws = np.array(ws)
    grid = np.linspace(-2.8, 4.0, 200)
    ax1.plot(grid, loss(grid), color=BLUE, lw=2.2, zorder=1)
    for a, b in itertools.pairwise(ws):
        ax1.add_patch(FancyArrowPatch((a, loss(a)), (b, loss(b)), arrowstyle="-|>",
                                      mutation_scale=13, color=ORANGE, lw=1.6,
                                      connectionstyle="arc3,rad=-0.25", shrinkA=5, shrinkB=5,
                                      zorder=3))
    ax1.scatter(ws, loss(ws), s=42, color=ORANGE, edgecolor="white", linewidth=1.0, zorder=4)
    ax1.scatter([1.0], [0.5], s=120, marker="*", color=GREEN, zorder=5)
    ax1.annotate("minimum", (1.0, 0.5), xytext=(2.25, 1.0), fontsize=SMALL, color=GREEN,
                 arrowprops=dict(arrowstyle="-", color=GREEN, lw=1.0))
    ax1.annotate("start", (ws[0], loss(ws[0])), xytext=(ws[0] + 0.35, loss(ws[0]) + 0.9),
                 fontsize=SMALL, color=ORANGE)

    # tangent at the start and the size of the first step
    w0, slope = ws[0], 2 * (ws[0] - 1.0)
    t = np.linspace(w0 - 0.5, w0 + 0.95, 2)
    ax1.plot(t, loss(w0) + slope * (t - w0), color=RED, lw=1.4, ls="--", zorder=2)
    ax1.text(w0 - 0.75, loss(w0) - 3.6, "slope\n$dL/dw$", fontsize=SMALL, color=RED,
             ha="center", va="top")
    y_bar = -0.9
    ax1.annotate("", (ws[1], y_bar), (ws[0], y_bar),
                 arrowprops=dict(arrowstyle="<|-|>", color=INK, lw=1.2, mutation_scale=10,
                                 shrinkA=0, shrinkB=0))
    for w in ws[:2]:
        ax1.plot([w, w], [y_bar, loss(w)], color=GREY, lw=0.8, ls=":", zorder=0)
    ax1.text((ws[0] + ws[1]) / 2, y_bar - 0.35, "step = learning rate × slope",
             ha="left", va="top", fontsize=SMALL)
    ax1.set_xlim(-3.5, 4.1)
    ax1.set_ylim(-2.3, 12.0)
    ax1.set_xlabel("weight $w$")
    ax1.set_ylabel("loss $L(w)$")
    ax1.set_xticks([])
    ax1.set_yticks([])
    ax1.set_title("1 weight", fontsize=LABEL)
    ax1.text(1.4, 11.6, r"$w \leftarrow w - \eta\, \frac{dL}{dw}$", ha="center", va="top",
             fontsize=LABEL + 1,
             bbox=dict(boxstyle="round,pad=0.35", facecolor="white", edgecolor=GREY))
    ax1.text(1.4, 9.5, r"$\eta$ = learning rate", ha="center", va="top", fontsize=SMALL,
             color=GREY)

    # --- 2-D: an elongated bowl, contours and a zig-zagging descent
    a, b = 1.0, 6.0  # curvatures along w1 and w2

    def loss2(w1, w2):
        return 0.5 * (a * w1 ** 2 + b * w2 ** 2)

    g1, g2 = np.meshgrid(np.linspace(-4, 4, 200), np.linspace(-2.2, 2.2, 120))
    levels = [0.25, 1, 2.25, 4, 6.25, 9, 12.25]
    ax2.contourf(g1, g2, loss2(g1, g2), levels=[0] + levels + [40],
                 colors=["#eef3fa", "#e3ecf7", "#d6e3f3", "#c8d9ee", "#b9cee9", "#a9c2e3",
                         "#98b5dc", "#88a9d6"])
    ax2.contour(g1, g2, loss2(g1, g2), levels=levels, colors=BLUE, linewidths=0.8)
    lr2 = 0.28
    path = [np.array([-3.6, 1.6])]
    for _ in range(12):
        w = path[-1]
        path.append(w - lr2 * np.array([a * w[0], b * w[1]]))
    path = np.array(path)
    for p, q in itertools.pairwise(path):
        ax2.add_patch(FancyArrowPatch(tuple(p), tuple(q), arrowstyle="-|>", mutation_scale=11,
                                      color=ORANGE, lw=1.5, shrinkA=3, shrinkB=3, zorder=3))
    ax2.scatter(path[:, 0], path[:, 1], s=22, color=ORANGE, edgecolor="white", linewidth=0.8,
                zorder=4)
    ax2.scatter([0], [0], s=150, marker="*", color=GREEN, zorder=5)
    ax2.set_xlabel("weight $w_1$")
    ax2.set_ylabel("weight $w_2$")
    ax2.set_xticks([])
    ax2.set_yticks([])
    ax2.set_title("2 weights: contours of the loss", fontsize=LABEL)
    ax2.set_aspect("equal")

    fig.suptitle("Gradient descent: step downhill, against the gradient", fontsize=TITLE,
                 fontweight="bold")
    fig.tight_layout()
    return fig


def draw_backpropagation() -> Figure:
    """Forward pass x -> L1 -> S -> L2 -> loss on top, backward gradients (chain rule) below."""
    fig, ax = canvas(10.0, 5.0, (0, 25), (-0.2, 12.3))

    ax.text(12.5, 11.7, "Backpropagation: forward pass, then gradients flow back",
            ha="center", va="center", fontsize=TITLE, fontweight="bold")

    y = 7.0
    h = 1.7
    # (centre x, text, index of its parameters W_k, b_k, colours, width)
    nodes = [
        (1.1, "$x$", None, (GREY, GREY_LIGHT), 1.2),
        (5.3, "$L_1$\nLinear", "1", (BLUE, BLUE_LIGHT), 2.2),
        (10.6, "$S$\nsigmoid", None, (GREEN, GREEN_LIGHT), 2.2),
        (15.9, "$L_2$\nLinear", "2", (BLUE, BLUE_LIGHT), 2.2),
        (21.9, r"loss $\ell$", None, (RED, RED_LIGHT), 2.6),
    ]
    for x, text, k, (edge, face), w in nodes:
        box(ax, (x, y), w, h, text, edge=edge, face=face, size=LABEL, linespacing=1.4)
        if k:
            ax.text(x, y + h / 2 + 0.25, f"$W_{k}, b_{k}$", ha="center", va="bottom",
                    fontsize=SMALL, color=edge)
            # the gradient each Linear layer's parameters receive
            arrow(ax, (x, y - h / 2 - 0.1), (x, y - 2.6), color=ORANGE, lw=1.4)
            ax.text(x, y - 3.35, rf"$\frac{{\partial \ell}}{{\partial W_{k}}}$",
                    ha="center", va="center", fontsize=LABEL + 3, color=ORANGE)

    fwd = [r"$x$", r"$z_1 = x W_1 + b_1$", r"$h = \sigma(z_1)$", r"$z_2 = h W_2 + b_2$"]
    bwd = [None, r"$\frac{\partial \ell}{\partial z_1}$", r"$\frac{\partial \ell}{\partial h}$",
           r"$\frac{\partial \ell}{\partial z_2}$"]
    for i, ((x1, _, _, _, w1), (x2, _, _, _, w2)) in enumerate(itertools.pairwise(nodes)):
        a, b = x1 + w1 / 2 + 0.1, x2 - w2 / 2 - 0.1
        # forward, above the middle of the boxes
        arrow(ax, (a, y + 0.4), (b, y + 0.4), color=BLUE)
        ax.text((a + b) / 2, y + 0.75, fwd[i], ha="center", va="bottom", fontsize=SMALL,
                color=BLUE)
        # backward, below the middle of the boxes
        if bwd[i] is not None:
            arrow(ax, (b, y - 0.4), (a, y - 0.4), color=ORANGE)
            ax.text((a + b) / 2, y - 0.75, bwd[i], ha="center", va="top",
                    fontsize=LABEL + 3, color=ORANGE)

    ax.text(0.5, 10.1, "forward pass →", ha="left", va="center", fontsize=LABEL,
            color=BLUE, fontweight="bold")
    ax.text(0.5, 9.3, "loss = loss_fn(model(x), y)", ha="left", va="center", fontsize=SMALL,
            color=BLUE, family="DejaVu Sans Mono")
    ax.text(24.5, 4.1, "← backward pass", ha="right", va="center", fontsize=LABEL,
            color=ORANGE, fontweight="bold")
    ax.text(24.5, 3.3, "loss.backward()", ha="right", va="center", fontsize=SMALL,
            color=ORANGE, family="DejaVu Sans Mono")
    ax.text(12.5, 1.0,
            r"$\frac{\partial \ell}{\partial W_1} = "
            r"\frac{\partial \ell}{\partial z_2}\cdot"
            r"\frac{\partial z_2}{\partial h}\cdot"
            r"\frac{\partial h}{\partial z_1}\cdot"
            r"\frac{\partial z_1}{\partial W_1}$"
            "     chain rule: multiply the local gradients",
            ha="center", va="center", fontsize=LABEL + 2,
            bbox=dict(boxstyle="round,pad=0.4", facecolor="white", edgecolor=ORANGE))
    return fig


def draw_overfitting() -> Figure:
    """Training loss keeps falling, validation loss turns up; early stopping at its minimum."""
    epochs = np.arange(1, 41)
    train = 0.08 + 1.6 * np.exp(-epochs / 7.0)
    val = 0.30 + 1.5 * np.exp(-epochs / 6.0) + 0.0004 * epochs ** 2
    best = int(epochs[np.argmin(val)])

    with plt.rc_context({"axes.spines.top": False, "axes.spines.right": False}):
        fig, ax = plt.subplots(figsize=(9.0, 4.6), dpi=DPI)
    ax.axvspan(best, epochs[-1] + 1, color=RED_LIGHT, alpha=0.55, lw=0, zorder=0)
    ax.plot(epochs, train, color=BLUE, lw=2.4, label="training loss")
    ax.plot(epochs, val, color=ORANGE, lw=2.4, label="validation loss")
    ax.axvline(best, color=GREEN, lw=1.6, ls="--", zorder=1)
    ax.scatter([best], [val[best - 1]], s=70, color=GREEN, zorder=4)
    ax.annotate(f"best epoch ({best}):\nstop early, keep these weights",
                (best, val[best - 1]), xytext=(best - 7.5, 1.45), fontsize=SMALL, color=GREEN,
                ha="center",
                arrowprops=dict(arrowstyle="-|>", color=GREEN, lw=1.2, mutation_scale=12,
                                connectionstyle="arc3,rad=-0.2"))
    ax.text(best + (epochs[-1] + 1 - best) / 2, 1.55, "overfitting:\nvalidation loss rises",
            ha="center", va="center", fontsize=SMALL, color=RED)
    ax.text(3.0, 0.2, "underfitting:\nboth still falling", ha="left", va="center",
            fontsize=SMALL, color=GREY)
    ax.set_xlim(0, epochs[-1] + 1)
    ax.set_ylim(0, 1.9)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yticks([])
    ax.legend(loc="upper right", frameon=False, bbox_to_anchor=(1.0, 0.75))
    ax.set_title("Overfitting and early stopping", fontsize=TITLE, fontweight="bold")
    fig.tight_layout()
    return fig


def draw_transfer_learning() -> Figure:
    """A frozen pretrained backbone (ImageNet features) feeding a new trainable cat/dog head."""
    fig, ax = canvas(10.0, 4.1, (0, 25), (1.3, 11.55))

    ax.text(12.5, 11.0, "Transfer learning: reuse a pretrained backbone, train a new head",
            ha="center", va="center", fontsize=TITLE, fontweight="bold")
    cy = 5.6

    # input image: a small pixel grid
    rng = np.random.default_rng(0)
    px = 0.36
    shade = rng.uniform(0.15, 0.85, size=(8, 6))
    for i in range(8):
        for j in range(6):
            ax.add_patch(Rectangle((0.6 + j * px, cy + 1.44 - i * px), px, px,
                                   facecolor=plt.cm.Blues(shade[i, j] * 0.8), edgecolor="white",
                                   lw=0.5))
    ax.text(1.68, cy - 1.8, "image\n3×224×224", ha="center", va="top", fontsize=SMALL)

    # backbone: conv blocks that get shorter and deeper, greyed out
    bx = 5.0
    blocks = [(0.55, 4.4), (0.75, 3.7), (0.95, 3.0), (1.15, 2.3), (1.35, 1.6)]
    x = bx
    arrow(ax, (3.0, cy), (bx - 0.2, cy))
    for w, h in blocks:
        ax.add_patch(FancyBboxPatch((x, cy - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.1",
                                    facecolor=GREY_LIGHT, edgecolor=GREY, lw=1.5, zorder=3))
        x += w + 0.35
    bx_end = x - 0.35
    ax.add_patch(FancyBboxPatch((bx - 0.45, cy - 2.9), bx_end - bx + 0.9, 5.8,
                                boxstyle="round,pad=0,rounding_size=0.3", facecolor="none",
                                edgecolor=GREY, lw=1.3, ls="--", zorder=2))
    mid = (bx + bx_end) / 2
    ax.text(mid, cy + 4.15, "pretrained backbone", ha="center", va="center", fontsize=LABEL,
            fontweight="bold", color=INK)
    ax.text(mid, cy + 3.45, "ImageNet features (EfficientNet-Lite0)", ha="center", va="center",
            fontsize=SMALL, color=GREY)
    padlock(ax, (bx_end - 0.3, cy + 1.9), size=0.8)
    ax.text(mid, cy - 3.5, "frozen: requires_grad = False", ha="center", va="center",
            fontsize=SMALL, color=GREY, family="DejaVu Sans Mono")

    # feature vector
    fx = bx_end + 1.9
    arrow(ax, (bx_end + 0.5, cy), (fx - 0.45, cy))
    for i in range(7):
        ax.add_patch(Rectangle((fx - 0.25, cy + 1.75 - i * 0.5), 0.5, 0.5,
                               facecolor=GREY_LIGHT, edgecolor=GREY, lw=1.0, zorder=3))
    ax.text(fx, cy - 2.2, "1280\nfeatures", ha="center", va="top", fontsize=SMALL)

    # new head
    hx = fx + 3.8
    arrow(ax, (fx + 0.45, cy), (hx - 2.15, cy), color=GREEN)
    box(ax, (hx, cy), 4.2, 1.4, "nn.Linear(1280, 2)", edge=GREEN, face=GREEN_LIGHT,
         size=SMALL)
    ax.text(hx, cy + 1.5, "new head", ha="center", va="center", fontsize=LABEL,
            fontweight="bold", color=GREEN)
    ax.text(hx, cy - 3.5, "trainable: requires_grad = True", ha="center", va="center",
            fontsize=SMALL, color=GREEN, family="DejaVu Sans Mono")

    # two classes
    ox = hx + 3.8
    for dy, name, p in [(0.9, "cat", 0.92), (-0.9, "dog", 0.08)]:
        arrow(ax, (hx + 2.15, cy + dy * 0.3), (ox - 0.6, cy + dy), color=GREEN, lw=1.4)
        node(ax, (ox, cy + dy), "", r=0.5, edge=GREEN, face="white")
        ax.text(ox, cy + dy, name, ha="center", va="center", fontsize=SMALL)
        ax.text(ox + 0.75, cy + dy, f"{p:.2f}", ha="left", va="center", fontsize=SMALL,
                color=GREY)
    ax.text(ox + 0.35, cy - 2.2, "2 classes", ha="center", va="top", fontsize=SMALL)
    return fig


DIAGRAMS: dict[str, Callable[[], Figure]] = {
    "neuron": draw_neuron,
    "tensor-dimensions": draw_tensor_dimensions,
    "broadcasting": draw_broadcasting,
    "mlp": draw_mlp,
    "gradient-descent": draw_gradient_descent,
    "backpropagation": draw_backpropagation,
    "overfitting": draw_overfitting,
    "convolution": draw_convolution,
    "transfer-learning": draw_transfer_learning,
}



def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="diagrams to draw (default: all); e.g. neuron or neuron.png")
    parser.add_argument("--outdir", type=Path, default=ASSETS,
                        help="folder to write the PNG files to (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the diagram names and exit")
    args = parser.parse_args(argv)

    if args.list:
        print("\n".join(DIAGRAMS))
        return 0
    names = [n.removesuffix(".png") for n in args.names] or list(DIAGRAMS)
    unknown = [n for n in names if n not in DIAGRAMS]
    if unknown:
        parser.error(f"unknown diagram(s) {', '.join(unknown)}; choose from {', '.join(DIAGRAMS)}")

    args.outdir.mkdir(parents=True, exist_ok=True)
    for name in names:
        with plt.rc_context(STYLE):
            fig = DIAGRAMS[name]()
            path = args.outdir / f"{name}.png"
            save(fig, path)
        print(f"wrote {_shown(path)} ({path.stat().st_size / 1024:.1f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
