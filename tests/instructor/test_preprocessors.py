"""instructor.preprocessors: what nbgrader's autograde and feedback pipelines run besides its
own steps, each on a small notebook made here, no kernel needed."""

from __future__ import annotations

import json

import nbformat

from instructor import preprocessors
from instructor.course import locked_ids
from instructor.integrity import canaries, scanner
from tests.cheats import CHEATS
from tests.instructor.small_notebooks import small_notebook, with_cell

v4 = nbformat.v4
GRADED = {"nbgrader": {"grade": True, "solution": False, "locked": True, "points": 1, "grade_id": "test_x",
                       "schema_version": 3}}


def one_cell(*outputs, source="print('hi')", metadata=None):
    """A notebook of one code cell holding ``outputs``."""
    cell = v4.new_code_cell(source, metadata=metadata or {})
    cell.outputs = list(outputs)
    return v4.new_notebook(cells=[cell])


def test_limit_output_size_cuts_one_huge_line_and_drops_a_huge_image():
    stream = v4.new_output("stream", name="stdout", text="x" * 500)
    image = v4.new_output("display_data", data={"image/png": "A" * 500, "text/html": "<b>" + "y" * 500})
    error = v4.new_output("error", ename="ValueError", evalue="z" * 500, traceback=[])
    nb, _ = preprocessors.LimitOutputSize(max_chars=100)(one_cell(stream, image, error), {})
    stream, image, error = nb.cells[0].outputs
    assert stream.text.startswith("x" * 100) and "Output truncated (500 characters)" in stream.text
    assert "image/png" not in image.data and image.data["text/plain"] == "[image/png output removed: 500 characters]"
    assert len(image.data["text/html"]) < 200 and len(error.evalue) < 200


def test_limit_output_size_leaves_small_outputs_alone():
    stream = v4.new_output("stream", name="stdout", text="fine\n")
    nb, _ = preprocessors.LimitOutputSize(max_chars=100)(one_cell(stream), {})
    assert nb.cells[0].outputs[0].text == "fine\n"


def test_harmless_stderr_becomes_stdout_but_an_error_stays():
    warning = v4.new_output("stream", name="stderr", text="100%|####| progress\n")
    error = v4.new_output("error", ename="AssertionError", evalue="wrong", traceback=[])
    nb, _ = preprocessors.HarmlessStderr()(one_cell(warning, error, metadata=GRADED), {})
    assert [o.get("name") for o in nb.cells[0].outputs] == ["stdout", None]
    assert nb.cells[0].outputs[1].output_type == "error"


def test_the_autograde_pipeline_swaps_executing_and_saving():
    """nbgrader's steps, but the kernel runs between the canaries and the coordinator saves scores."""
    from nbgrader.preprocessors import AssignLatePenalties, Execute, LimitOutput, SaveAutoGrades

    pipeline = preprocessors.autograde_pipeline()
    i = pipeline.index(preprocessors.SupervisedExecute)
    assert pipeline[i - 1:i + 2] == [preprocessors.InsertCanaries, preprocessors.SupervisedExecute,
                                     preprocessors.CheckCanaries]
    assert preprocessors.LimitOutputSize in pipeline and preprocessors.HarmlessStderr in pipeline
    assert not {Execute, LimitOutput, SaveAutoGrades, AssignLatePenalties} & set(pipeline)


def test_canary_preprocessors_insert_check_and_remove(tmp_path):
    """The preprocessors nbgrader's pipeline runs (instructor.preprocessors), around what the
    grading task scans first."""
    nb = with_cell(small_notebook(), CHEATS["torch_allclose"])[0]
    findings = scanner.scan_notebook(nb, locked_ids(nb))
    assert [f.line for f in findings] == [1] and "torch.allclose" in findings[0].reason
    secret, verdict = canaries.new_secret(), tmp_path / "canaries.json"
    nb, resources = preprocessors.InsertCanaries(secret=secret)(nb, {})
    marked = [c for c in nb.cells if canaries.is_canary(c, secret)]
    assert marked, "InsertCanaries must run when nbgrader registers it (enabled by default)"
    for j, cell in enumerate(marked):   # what an honest kernel prints
        canary = canaries._canary(secret, j // 2)
        cell.execution_count = j + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=canary.token + "\n") if j % 2 == 0 else
                        nbformat.v4.new_output("error", ename="AssertionError", evalue=canary.message, traceback=[])]
    nb, resources = preprocessors.CheckCanaries(secret=secret, verdict_path=str(verdict))(nb, resources)
    assert json.loads(verdict.read_text())["reason"] is None
    assert not any(canaries.CANARY_KEY in c.metadata for c in nb.cells)
