"""Parts 5 and 6: each classic mistake meets a test message that names it, and costs only its
own exercise. The test cells of the solution notebooks run here, in-process, against the
solution's answers with one mistake put in."""

from __future__ import annotations

import re

import matplotlib
import nbformat
import pytest

from instructor.course import part_notebook

matplotlib.use("Agg")

PART5, PART6 = "05-inference-validation", "06-saving-loading"


def _cells(part: str) -> tuple[list, dict[str, str]]:
    nb = nbformat.read(part_notebook(part), as_version=4)
    codes = [c for c in nb.cells if c.cell_type == "code"]
    by_id = {c.metadata["nbgrader"]["grade_id"]: c.source for c in codes
             if c.metadata.get("nbgrader", {}).get("grade_id")}
    return codes, by_id


def _namespace(part: str) -> dict:
    """The part's import cell (the first code cell after the setup cell), run without its magic."""
    codes, _ = _cells(part)
    source = "\n".join(line for line in codes[1].source.splitlines() if not line.startswith("%"))
    namespace: dict = {}
    exec(compile(source, f"{part}-imports", "exec"), namespace)  # noqa: S102 - the notebook's own cell
    return namespace


def _run(namespace: dict, source: str, name: str) -> None:
    exec(compile(source, name, "exec"), namespace)  # noqa: S102 - the notebook's own cell


def _mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"the solution no longer contains {old!r}: update this test"
    return source.replace(old, new)


def _fails_with(namespace: dict, test_source: str, pattern: str) -> str:
    with pytest.raises(AssertionError) as info:
        _run(namespace, test_source, "test cell")
    message = str(info.value)
    assert re.search(pattern, message), f"the message should name the mistake ({pattern}), got: {message}"
    return message


# ----------------------------------------------------------------------------------------------
# Part 5
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def part5():
    _, by_id = _cells(PART5)
    return by_id


def _part5_namespace(by_id: dict, accuracy: str | None = None, loop: str | None = None) -> dict:
    ns = _namespace(PART5)
    _run(ns, accuracy or by_id["accuracy"], "accuracy")
    _run(ns, loop or by_id["train_and_validate"], "train_and_validate")
    return ns


TRAP = ("    equals = top_class.view(labels.shape) == labels", "    equals = top_class == labels")


def test_part5_solution_passes_its_tests(part5):
    ns = _part5_namespace(part5)
    for test in ("test_accuracy", "test_train_and_validate"):
        _run(ns, part5[test], test)
    _run(ns, part5["log_history"], "log_history")
    _run(ns, part5["test_log_history"], "test_log_history")


def test_broadcast_trap_is_named_and_does_not_fail_the_loop(part5):
    """Issue 12: a wrong accuracy costs Exercise 1 only; the correct loop still passes."""
    wrong = _mutate(part5["accuracy"], *TRAP)
    ns = _part5_namespace(part5, accuracy=wrong)
    _fails_with(ns, part5["test_accuracy"], "broadcast trap")
    learners = ns["accuracy"]
    _run(ns, part5["test_train_and_validate"], "test_train_and_validate")  # passes, hidden tests included
    assert ns["accuracy"] is learners, "the test cell puts the learner's accuracy back"


def test_mean_of_booleans_is_named(part5):
    wrong = _mutate(part5["accuracy"], "    return equals.float().mean().item()", "    return equals.mean().item()")
    ns = _part5_namespace(part5, accuracy=wrong)
    _fails_with(ns, part5["test_accuracy"], r"equals\.float\(\)\.mean\(\)")


def test_missing_zero_grad_is_named_in_the_visible_test(part5):
    loop = _mutate(part5["train_and_validate"], "            optimizer.zero_grad()\n", "")
    ns = _part5_namespace(part5, loop=loop)
    visible = part5["test_train_and_validate"].split("### BEGIN HIDDEN TESTS")[0] + "\nfinally:\n    pass\n"
    _fails_with(ns, part5["test_train_and_validate"], r"optimizer\.zero_grad\(\)")
    _fails_with(_part5_namespace(part5, loop=loop), visible, r"optimizer\.zero_grad\(\)")


@pytest.mark.parametrize("old, new, pattern", [
    ("        model.train()\n", "", r"model\.train\(\)"),  # never back to training mode after measuring
    ("        model.eval()\n        val_loss", "        val_loss", r"eval mode \(model\.eval\(\)\)"),
    ("        with torch.inference_mode():\n            for images, labels in valloader:",
     "        if True:\n            for images, labels in valloader:", r"torch\.inference_mode\(\)"),
])
def test_loop_mistakes_are_named(part5, old, new, pattern):
    ns = _part5_namespace(part5, loop=_mutate(part5["train_and_validate"], old, new))
    _fails_with(ns, part5["test_train_and_validate"], pattern)


def test_loop_that_measures_under_no_grad_passes_too(part5):
    """torch.no_grad() (Part 3) is as right as torch.inference_mode() for measuring."""
    loop = _mutate(part5["train_and_validate"], "        with torch.inference_mode():\n",
                   "        with torch.no_grad():\n")
    ns = _part5_namespace(part5, loop=loop)
    _run(ns, part5["test_train_and_validate"], "test_train_and_validate")


@pytest.mark.parametrize("old, new, pattern", [
    ("        return self.fc4(x)", "        return F.log_softmax(self.fc4(x), dim=1)",
     r"log-probabilities.*return logits"),
    ("        return self.fc4(x)", "        return F.softmax(self.fc4(x), dim=1)",
     r"ends in a softmax.*return logits"),
])
def test_dropout_classifier_that_ends_in_a_softmax_is_named(part5, old, new, pattern):
    """The old convention (a log-softmax at the end) is named by the visible test."""
    ns = _namespace(PART5)
    _run(ns, _mutate(part5["dropout_classifier"], old, new), "dropout_classifier")
    visible = part5["test_dropout_classifier"].split("### BEGIN HIDDEN TESTS")[0]
    _fails_with(ns, visible, pattern)


def test_dropout_classifier_without_flatten_is_named(part5):
    ns = _namespace(PART5)
    _run(ns, _mutate(part5["dropout_classifier"], "        x = x.view(x.shape[0], -1)\n", ""), "dropout_classifier")
    visible = part5["test_dropout_classifier"].split("### BEGIN HIDDEN TESTS")[0]
    _fails_with(ns, visible, r"flatten the images in forward first: x = x\.view\(x\.shape\[0\], -1\)")


def test_dropout_classifier_solution_passes(part5):
    ns = _namespace(PART5)
    _run(ns, part5["dropout_classifier"], "dropout_classifier")
    _run(ns, part5["test_dropout_classifier"], "test_dropout_classifier")


@pytest.mark.parametrize("old, new, pattern", [
    ('    tags = {"train_loss": "loss/train", "val_loss": "loss/val", "val_accuracy": "accuracy/val"}',
     '    tags = {key: key for key in ("train_loss", "val_loss", "val_accuracy")}', "not the history keys"),
    ("enumerate(history.get(key, []), start=1)", "enumerate(history.get(key, []))", "counted from 1"),
])
def test_tensorboard_mistakes_are_named(part5, old, new, pattern):
    ns = _part5_namespace(part5)
    _run(ns, _mutate(part5["log_history"], old, new), "log_history")
    _fails_with(ns, part5["test_log_history"], pattern)


def test_accuracy_that_calls_helpers_copy_loses_its_points(part5):
    """An answer one import away: helper.metrics.accuracy is the course's copy of Exercise 1."""
    delegating = (
        "def accuracy(logits, labels):\n"
        "    from helper.metrics import accuracy as course_accuracy\n"
        "    return course_accuracy(logits, labels)\n")
    ns = _part5_namespace(part5, accuracy=delegating)
    visible = part5["test_accuracy"].split("### BEGIN HIDDEN TESTS")[0]
    _fails_with(ns, visible, r"helper\.metrics\.accuracy \(and")
    _fails_with(_part5_namespace(part5, accuracy=delegating), part5["test_accuracy"], r"helper\.metrics\.accuracy")
    through_evaluate = (
        "def accuracy(logits, labels):\n"
        "    from helper.train import evaluate\n"
        "    return evaluate(nn.Identity(), [(logits, labels)], device='cpu')['accuracy']\n")
    _fails_with(_part5_namespace(part5, accuracy=through_evaluate), visible,
                r"helper\.train\.evaluate\) is the course's copy")


def test_loop_that_calls_helpers_fit_loses_its_points(part5):
    """helper.train.fit and evaluate are the course's version of Exercise 2."""
    delegating = (
        "def train_and_validate(model, trainloader, valloader, criterion, optimizer, epochs):\n"
        "    from helper.train import fit\n"
        "    h = fit(model, trainloader, criterion, optimizer, epochs=epochs, val_loader=valloader)\n"
        "    return {key: h[key] for key in ('train_loss', 'val_loss', 'val_accuracy')}\n")
    ns = _part5_namespace(part5, loop=delegating)
    _fails_with(ns, part5["test_train_and_validate"], r"write the loop yourself: helper\.train's fit and evaluate")


def test_loss_averaged_per_batch_is_named_in_the_visible_test(part5):
    """The visible test's last batch is smaller (22 of 150), so a mean of batch means fails it."""
    loop = _mutate(part5["train_and_validate"],
                   "            train_loss += loss.item() * len(labels)\n            seen += len(labels)\n",
                   "            train_loss += loss.item()\n            seen += 1\n")
    visible = part5["test_train_and_validate"].split("### BEGIN HIDDEN TESTS")[0] + "\nfinally:\n    pass\n"
    _fails_with(_part5_namespace(part5, loop=loop), visible, r"train_loss is 1\.18231, the mean of the five batches")


# ----------------------------------------------------------------------------------------------
# Part 6: the ONNX export exercise
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def part6():
    _, by_id = _cells(PART6)
    ns = _namespace(PART6)
    _run(ns, "from torch.export import Dim", "Dim")
    return ns, by_id


def test_part6_export_solution_passes(part6):
    ns, by_id = part6
    ns = dict(ns)
    _run(ns, by_id["export_onnx"], "export_onnx")
    _run(ns, by_id["test_export_onnx"], "test_export_onnx")


@pytest.mark.parametrize("old, new, pattern", [
    ("    model.eval()\n", "", "exported in training mode"),
    ("dynamic_shapes=({0: Dim(\"batch\")},),", "", "batch size was fixed"),
    ("input_names=[input_name]", 'input_names=["x"]', "input is named"),
])
def test_export_mistakes_are_named(part6, old, new, pattern):
    ns, by_id = part6
    ns = dict(ns)
    _run(ns, _mutate(by_id["export_onnx"], old, new), "export_onnx")
    _fails_with(ns, by_id["test_export_onnx"], pattern)


# ----------------------------------------------------------------------------------------------
# Part 6: save_checkpoint and load_checkpoint
# ----------------------------------------------------------------------------------------------

def _part6_checkpoint_namespace(part6, save: str | None = None) -> dict:
    ns, by_id = part6
    ns = dict(ns)
    _run(ns, "torch.manual_seed(0)\nmodel = Network(784, 10, [512, 256, 128], drop_p=0.2)\n"
             "optimizer = optim.Adam(model.parameters(), lr=0.001)\n", "trained model")
    _run(ns, by_id["architecture"], "architecture")
    _run(ns, save or by_id["save_checkpoint"], "save_checkpoint")
    return ns


def test_part6_checkpoint_solutions_pass(part6):
    ns = _part6_checkpoint_namespace(part6)
    _, by_id = part6
    for cell in ("test_save_checkpoint", "load_checkpoint", "test_load_checkpoint"):
        _run(ns, by_id[cell], cell)


@pytest.mark.parametrize("old, new, pattern", [
    # the model object instead of its state_dict: torch.load(weights_only=True) refuses it
    ("    torch.save(checkpoint, path)", "    torch.save(model, path)",
     r"you saved the whole model object.*state_dict"),
    ('"state_dict": model.state_dict(),', '"state_dict": model,', r"you saved the whole model object"),
    ('"optimizer_state": optimizer.state_dict(),', '"optimizer_state": optimizer,',
     r"you saved the optimizer object"),
])
def test_part6_saving_objects_is_named_without_the_weights_only_false_advice(part6, old, new, pattern):
    _, by_id = part6
    ns = _part6_checkpoint_namespace(part6, save=_mutate(by_id["save_checkpoint"], old, new))
    message = _fails_with(ns, by_id["test_save_checkpoint"].split("### BEGIN HIDDEN TESTS")[0], pattern)
    assert "Do not pass weights_only=False" in message and "will likely succeed" not in message, message


def test_part6_a_wrong_save_checkpoint_costs_only_its_own_exercise(part6):
    """test_load_checkpoint (hidden tests included) passes with a correct load_checkpoint and a wrong save."""
    _, by_id = part6
    ns = _part6_checkpoint_namespace(part6, save=_mutate(by_id["save_checkpoint"], "    torch.save(checkpoint, path)",
                                                          "    torch.save(model, path)"))
    _run(ns, by_id["load_checkpoint"], "load_checkpoint")
    _run(ns, by_id["test_load_checkpoint"], "test_load_checkpoint")


def test_part6_a_broken_architecture_is_named_by_exercise_2s_test(part6):
    """Exercise 2's test says it needs Exercise 1 instead of showing its raw NotImplementedError;
    Exercise 3's test (hidden tests included) does not need Exercise 1 or 2 at all."""
    _, by_id = part6
    ns = _part6_checkpoint_namespace(part6)
    _run(ns, "def architecture(model):\n    raise NotImplementedError()\n", "architecture not done")
    _fails_with(ns, by_id["test_save_checkpoint"].split("### BEGIN HIDDEN TESTS")[0], r"needs Exercise 1 to work first")
    _run(ns, "def save_checkpoint(model, optimizer, epoch, path):\n    raise NotImplementedError()\n", "save not done")
    _run(ns, by_id["load_checkpoint"], "load_checkpoint")
    _run(ns, by_id["test_load_checkpoint"], "test_load_checkpoint")


@pytest.mark.parametrize("old, new, pattern", [
    ("    model.load_state_dict(checkpoint[\"state_dict\"])\n", "", r"identical outputs"),
    ("    optimizer.load_state_dict(checkpoint[\"optimizer_state\"])\n", "", r"load the optimizer's state dict"),
])
def test_part6_load_checkpoint_mistakes_are_named(part6, old, new, pattern):
    _, by_id = part6
    ns = _part6_checkpoint_namespace(part6)
    _run(ns, _mutate(by_id["load_checkpoint"], old, new), "load_checkpoint")
    _fails_with(ns, by_id["test_load_checkpoint"].split("### BEGIN HIDDEN TESTS")[0], pattern)


def test_part6_load_checkpoint_with_fixed_sizes_is_named_before_the_size_mismatch_list(part6):
    _, by_id = part6
    ns = _part6_checkpoint_namespace(part6)
    fixed = _mutate(by_id["load_checkpoint"], 'Network(**checkpoint["architecture"])',
                    "Network(784, 10, [512, 256, 128])")
    _run(ns, fixed, "load_checkpoint")
    message = _fails_with(ns, by_id["test_load_checkpoint"].split("### BEGIN HIDDEN TESTS")[0],
                          r"Network\(\*\*checkpoint\['architecture'\]\), not from fixed sizes")
    assert "size mismatch" not in message


def _part6_cell(cell_id: str) -> str:
    nb = nbformat.read(part_notebook(PART6), as_version=4)
    return next(c.source for c in nb.cells if c.get("id") == cell_id)


def _part6_after_exercises(part6, tmp_path, save: str | None = None, load: str | None = None) -> dict:
    """The namespace of a learner who reached the cells after Exercise 3, with a small model."""
    _, by_id = part6
    ns = _part6_checkpoint_namespace(part6, save=save)
    _run(ns, load or by_id["load_checkpoint"], "load_checkpoint")
    _run(ns, f"folder = Path({str(tmp_path)!r})\nepochs = 5\ndevice = torch.device('cpu')\n"
             "import tempfile\n", "settings")
    _run(ns, "model(torch.randn(4, 1, 28, 28)).sum().backward()\noptimizer.step()\n", "one step")
    return ns


def test_part6_a_whole_model_saved_is_named_after_the_exercise_not_weights_only_false(part6, tmp_path):
    """The cell that loads the learner's checkpoint names Exercise 2's fix before PyTorch's advice."""
    _, by_id = part6
    whole = _mutate(by_id["save_checkpoint"], "    torch.save(checkpoint, path)", "    torch.save(model, path)")
    ns = _part6_after_exercises(part6, tmp_path, save=whole)
    with pytest.raises(RuntimeError) as info:
        _run(ns, _part6_cell("b9717247"), "load the checkpoint")
    message = str(info.value)
    assert "save_checkpoint (Exercise 2) must save model.state_dict()" in message, message
    assert "will likely succeed" not in message and info.value.__suppress_context__


def test_part6_a_wrong_architecture_is_named_before_the_size_mismatch_list(part6, tmp_path):
    _, by_id = part6
    ns = _part6_after_exercises(part6, tmp_path)
    _run(ns, _part6_cell("b9717247"), "load the checkpoint")
    ns["checkpoint"]["architecture"]["hidden_layers"] = [512, 256, 64]  # what a wrong architecture() wrote
    with pytest.raises(RuntimeError, match=r"architecture\(\) \(Exercise 1\) should read the sizes"):
        _run(ns, _part6_cell("a2ae1817"), "rebuild")


def test_part6_an_optimizer_without_its_state_is_named_not_a_bare_key_error(part6, tmp_path):
    _, by_id = part6
    no_state = _mutate(by_id["load_checkpoint"], "    optimizer.load_state_dict(checkpoint[\"optimizer_state\"])\n", "")
    ns = _part6_after_exercises(part6, tmp_path, load=no_state)
    _run(ns, _part6_cell("b9717247"), "save the checkpoint")
    with pytest.raises(RuntimeError, match=r"optimizer came back without Adam's running averages.*Exercise 3"):
        _run(ns, _part6_cell("a11d15c6"), "load on the CPU")


def test_part5_dropout_classifier_without_flatten_is_named_first(part5):
    """The message is raised from None: no PyTorch traceback above it."""
    ns = _namespace(PART5)
    _run(ns, _mutate(part5["dropout_classifier"], "        x = x.view(x.shape[0], -1)\n", ""), "dropout_classifier")
    with pytest.raises(AssertionError) as info:
        _run(ns, part5["test_dropout_classifier"].split("### BEGIN HIDDEN TESTS")[0], "test_dropout_classifier")
    assert info.value.__suppress_context__ and info.value.__cause__ is None


def _part5_cell(cell_id: str) -> str:
    nb = nbformat.read(part_notebook(PART5), as_version=4)
    return next(c.source for c in nb.cells if c.get("id") == cell_id)


def test_part5_tensorboard_cells_name_the_unfinished_exercise(tmp_path):
    """Not 'no TensorBoard run folder': the cells after Exercise 4 say which exercise to finish."""
    ns = _namespace(PART5)
    ns.update(logdir=tmp_path, history_dropout={"train_loss": [1.0]})
    with pytest.raises(NameError, match="history does not exist: the training cell that makes it failed. "
                                        "Finish Exercise 2"):
        _run(ns, _part5_cell("aa477646"), "log the two runs")
    with pytest.raises(RuntimeError, match=r"no validation loss logged for \['no-dropout', 'dropout-0\.2', "
                                           r"'network-early-stopping'\].*needs Exercises 2, 3 and 4"):
        _run(ns, _part5_cell("23f2352e"), "read the runs back")
