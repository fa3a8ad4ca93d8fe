"""The course diagrams' shared look: palette, fonts, drawing helpers and the PNG writer.

``assets/draw.py`` (the command line and most diagrams) and ``assets/grids.py`` (diagrams of
tensors as grids of cells) draw with these, so that every figure has the same colours, font
sizes and line widths, and is saved the same way. It selects matplotlib's Agg backend (files
only, no window) before pyplot is imported: the diagrams take ``plt`` from here.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle, Wedge  # noqa: E402
from PIL import Image  # noqa: E402

ASSETS = Path(__file__).resolve().parent
DPI = 100

# One palette for every diagram: a strong colour for lines and text, a light one for fills.
BLUE, BLUE_LIGHT = "#2f6db5", "#dbe7f6"
ORANGE, ORANGE_LIGHT = "#d9731f", "#fbe6d3"
GREEN, GREEN_LIGHT = "#2e8b57", "#d7efdf"
RED, RED_LIGHT = "#c0392b", "#f6dbd8"
GREY, GREY_LIGHT = "#7f7f7f", "#e6e6e6"
INK = "#222222"

# One set of font sizes.
TITLE, LABEL, SMALL = 15, 13, 11

STYLE = {
    "font.family": "DejaVu Sans",  # bundled with matplotlib: same glyphs on every machine
    "mathtext.fontset": "dejavusans",
    "font.size": LABEL,
    "text.color": INK,
    "axes.labelcolor": INK,
    "axes.edgecolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "axes.titlesize": TITLE,
    "axes.labelsize": LABEL,
    "xtick.labelsize": SMALL,
    "ytick.labelsize": SMALL,
    "legend.fontsize": SMALL,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "path.simplify": True,
}


# ---------------------------------------------------------------------------------------------
# Small drawing helpers
# ---------------------------------------------------------------------------------------------


def canvas(width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]):
    """A blank figure of ``width`` x ``height`` inches whose single axes spans the whole figure.

    Data coordinates run over ``xlim`` x ``ylim`` with equal aspect, axes hidden, so a diagram
    is laid out in its own units.  Returns ``(fig, ax)``.
    """
    fig = plt.figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def node(ax: Axes, xy, text: str, r: float = 0.35, edge=BLUE, face=BLUE_LIGHT, size=LABEL,
          **kw):
    """A labelled circle centred at ``xy``."""
    ax.add_patch(Circle(xy, r, facecolor=face, edgecolor=edge, linewidth=1.8, zorder=3))
    ax.text(*xy, text, ha="center", va="center", fontsize=size, zorder=4, **kw)


def box(ax: Axes, xy, w: float, h: float, text: str = "", edge=BLUE, face=BLUE_LIGHT,
         size=LABEL, pad: float = 0.02, lw: float = 1.8, **kw):
    """A rounded box centred at ``xy`` with ``text`` in the middle."""
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle=f"round,pad={pad},rounding_size=0.12",
                                facecolor=face, edgecolor=edge, linewidth=lw, zorder=3))
    if text:
        ax.text(x, y, text, ha="center", va="center", fontsize=size, zorder=4, **kw)


def arrow(ax: Axes, start, end, color=INK, lw: float = 1.8, style: str = "-|>",
           shrink: float = 0.0, rad: float = 0.0, **kw):
    """An arrow from ``start`` to ``end`` (data coordinates)."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=16, color=color,
                                 linewidth=lw, shrinkA=shrink, shrinkB=shrink,
                                 connectionstyle=f"arc3,rad={rad}", zorder=2, **kw))


def cell_grid(ax: Axes, x0: float, y0: float, rows: int, cols: int, cell: float = 0.5,
          face=BLUE_LIGHT, edge=BLUE, values=None, zorder: int = 3):
    """A ``rows`` x ``cols`` grid of square cells with its top-left corner at ``(x0, y0)``.

    ``values``: optional ``(rows, cols)`` array of numbers written in the cells.
    """
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(Rectangle((x0 + j * cell, y0 - (i + 1) * cell), cell, cell,
                                   facecolor=face, edgecolor=edge, linewidth=1.4, zorder=zorder))
            if values is not None:
                ax.text(x0 + (j + 0.5) * cell, y0 - (i + 0.5) * cell, f"{values[i][j]:g}",
                        ha="center", va="center", fontsize=SMALL, zorder=zorder + 1)


def padlock(ax: Axes, xy, size: float = 0.5, color=GREY):
    """A padlock icon (body + shackle) centred at ``xy``, ``size`` wide."""
    x, y = xy
    w, h = size, size * 0.75
    ax.add_patch(Wedge((x, y + h / 2 - 0.02 * size), size * 0.32, 0, 180, width=size * 0.1,
                       facecolor=color, edgecolor=color, zorder=6))
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle=f"round,pad=0,rounding_size={size * 0.1}",
                                facecolor=color, edgecolor=color, zorder=6))
    ax.add_patch(Circle((x, y + h * 0.05), size * 0.09, facecolor="white", zorder=7))
    ax.add_patch(Rectangle((x - size * 0.03, y - h * 0.3), size * 0.06, h * 0.35,
                           facecolor="white", edgecolor="none", zorder=7))


def save(fig: Figure, path: Path) -> None:
    """Write ``fig`` to ``path`` as a small PNG whose bytes are the same on every run.

    matplotlib renders the figure (``metadata={"Software": None}``: no version string);
    Pillow, which matplotlib itself depends on, then stores it as a 256-colour palette image,
    about a third of the size of matplotlib's RGBA output at no visible cost for flat-coloured
    diagrams (these files are embedded in notebooks as base64).  No dithering and no
    timestamps, so the result is deterministic.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    buffer.seek(0)
    with Image.open(buffer) as rendered:
        image = rendered.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    image.save(path, format="png", optimize=True, dpi=(DPI, DPI))
