"""Formulas a feedback page shows without a network: the ``$...$`` and ``$$...$$`` of a markdown
cell turned into MathML, which browsers draw themselves (Chromium from 109, Firefox, Safari).
nbconvert's pages would otherwise fetch MathJax from a CDN to typeset them, so a learner who
opens their page offline reads raw LaTeX.

    markdown = offline_math(cell.source)      # the cell's text, its formulas as <math> elements

Code (fenced blocks and inline spans) and escaped dollars (``\\$``) are left as they are, and so
is a formula the converter cannot read: it stays the text the learner wrote.
"""

from __future__ import annotations

import re

# A fenced block or an inline code span (kept as written), or a formula: $$...$$ over lines, or
# $...$ within one line, not starting or ending with a space (a price like "$5 and $6" is no formula).
_PIECES = re.compile(r"(?P<code>^[ \t]*(?P<fence>```|~~~).*?^[ \t]*(?P=fence)[ \t]*$|(?P<ticks>`+).+?(?P=ticks))"
                     r"|(?<![\\$])\$\$(?P<block>.+?)\$\$"
                     r"|(?<![\\$])\$(?P<inline>[^\s$](?:[^$\n]*?[^\s$\\])?)\$(?![$\d])",
                     re.S | re.M)


_MATHML = frozenset({"math", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac",
                     "msqrt", "mroot", "mstyle", "merror", "mpadded", "mphantom", "mfenced", "menclose", "munder",
                     "mover", "munderover", "mtable", "mtr", "mtd", "mlabeledtr", "mmultiscripts", "mprescripts",
                     "none", "semantics", "annotation", "maligngroup", "malignmark"})
_TAG = re.compile(r"<\s*/?\s*([^\s>/]+)")


def formula(tex: str, block: bool = False) -> str | None:
    """``tex`` as one line of MathML, or None where the converter cannot read it, or where what
    it wrote holds anything but MathML (``\\text{<script>...}`` is copied through as it is)."""
    from latex2mathml.converter import convert

    try:
        out = convert(tex.strip(), display="block" if block else "inline").replace("\n", "")
    except Exception:  # noqa: BLE001 - the converter's errors are many; the text stays as written
        return None
    return out if all(tag in _MATHML for tag in _TAG.findall(out)) else None


def offline_math(markdown: str) -> str:
    """``markdown`` with each formula outside code as a MathML element (see the module's docstring)."""
    def swap(match: re.Match) -> str:
        if match["code"] is not None:
            return match[0]
        block = match["block"] is not None
        return formula(match["block"] if block else match["inline"], block) or match[0]

    return _PIECES.sub(swap, markdown)
