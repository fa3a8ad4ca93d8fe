"""tests/bench_learner.py's --set: the setting a learner would change, changed the same way."""

from __future__ import annotations

import nbformat
import pytest

from instructor.course import ROOT
from tests.bench_learner import apply_settings

pytestmark = pytest.mark.course_data()


def test_set_rewrites_the_settings_line_and_keeps_its_comment():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("quick = False in prose is not a setting"),
        nbformat.v4.new_code_cell("epochs = 15\nquick = False  # True: a quarter\nquickly = 3"),
    ])
    apply_settings(nb, {"quick": "True", "epochs": "2"})
    assert nb.cells[0].source == "quick = False in prose is not a setting"
    assert nb.cells[1].source == "epochs = 2\nquick = True  # True: a quarter\nquickly = 3"


def test_set_refuses_a_name_the_notebook_does_not_set():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("epochs = 15")])
    with pytest.raises(SystemExit, match="no line 'quick = ...'"):
        apply_settings(nb, {"quick": "True"})


def test_part_5_has_the_quick_setting_it_is_timed_with():
    part = "05-inference-validation"
    nb = nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)
    apply_settings(nb, {"quick": "True"})
    assert sum("quick = True  #" in c.source for c in nb.cells if c.cell_type == "code") == 1
