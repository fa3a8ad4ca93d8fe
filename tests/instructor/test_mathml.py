"""instructor.mathml: a feedback page's formulas as MathML, drawn by the browser without a network.
Every formula the course's notebooks hold converts; code, prices and escaped dollars stay as
written; a formula whose conversion would carry anything but MathML stays the learner's text."""

from __future__ import annotations

import re

import nbformat
import pytest

from instructor.course import ROOT, existing_parts
from instructor.mathml import formula, offline_math

_FORMULA = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)


def _formulas() -> list[tuple[str, str]]:
    found = []
    for part in existing_parts():
        nb = nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)
        found += [(part, tex) for cell in nb.cells if cell.cell_type == "markdown"
                  for tex in _FORMULA.findall(cell.source)]
    return found


def test_every_formula_of_the_course_becomes_mathml():
    found = _formulas()
    assert len(found) >= 40, "the notebooks' formulas were not found"
    unread = [(part, tex) for part, tex in found if formula(tex.strip("$"), tex.startswith("$$")) is None]
    assert not unread, unread
    for _, tex in found:
        out = offline_math(f"so {tex} holds")
        assert out.startswith("so <math ") and out.endswith("</math> holds") and "$" not in out, out


@pytest.mark.parametrize("text", [
    "It costs $5 and $6.",                            # a price, twice: no formula
    "in code `$x$` the dollars stay",
    "```python\nprint(f'${x}$')\n```",
    r"an escaped \$x$ stays",
    r"$\frac{1}{$ is not a formula the converter can read",
    r"$\text{<img src=x onerror=alert(1)>}$",          # copied through as HTML by the converter: kept as text
])
def test_what_is_no_formula_stays_as_written(text):
    assert offline_math(text) == text


def test_inline_and_display_formulas():
    inline = offline_math(r"the sigmoid $\sigma(x) = \dfrac{1}{1 + e^{-x}}$ squashes")
    assert 'display="inline"' in inline and "<mfrac>" in inline and "&#x003C3;" in inline
    block = offline_math("the loss\n\n$$\n\\ell = -\\sum_i y_i \\ln p_i\n$$\n\nis")
    assert block.count('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">') == 1
    assert "\n" not in block.split("\n\n")[1], "one line: markdown keeps it whole"
