"""Parts 7-8: a classic mistake fails its own exercise's VISIBLE test with a message that names it,
and costs nothing in any other exercise.

Each test runs a test cell of the solution notebook (hidden tests cut out, as the learner sees it)
against an answer with one mistake, in a namespace built here, on a few tiny photos.
"""

from __future__ import annotations

import ast
import copy
import csv
import re
import tempfile
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchvision import datasets
from torchvision.transforms import v2

from helper.pretrained import head_in_features
from helper.train import evaluate, fit
from instructor.course import ROOT

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)


def graded_cells(part: str) -> dict[str, str]:
    """grade_id -> source, for the cells of a solution notebook that have one."""
    nb = nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source
            for c in nb.cells if "grade_id" in c.metadata.get("nbgrader", {})}


P7 = graded_cells("07-loading-image-data")
P8 = graded_cells("08-transfer-learning")


def visible(source: str) -> str:
    """The test cell as the learner's notebook shows it."""
    return HIDDEN.sub("", source)


def failure(source: str, ns: dict) -> str | None:
    """The AssertionError message the cell stops with, or None when it passes."""
    try:
        exec(source, ns)  # noqa: S102 - runs a cell of the course's own notebook
    except AssertionError as exc:
        return str(exc)
    return None


def answer(source: str, ns: dict, **replace: str) -> dict:
    """Run a solution cell in ns, with each `old=new` text replacement applied first."""
    for old, new in replace.items():
        assert old in source, f"the solution no longer contains {old!r}: update this test"
        source = source.replace(old, new)
    exec(source, ns)  # noqa: S102 - runs a cell of the course's own notebook
    return ns


def swap(source: str, old: str, new: str) -> str:
    assert old in source, f"the solution no longer contains {old!r}: update this test"
    return source.replace(old, new)


# ---------------------------------------------------------------------------
# Part 7
# ---------------------------------------------------------------------------

@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """A tiny Cat_Dog_data whose TEST split is the larger one, as COURSE_DATA."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 5)):
        for name in ("cat", "dog"):
            folder = tmp_path / "Cat_Dog_data" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}.{i}.jpg")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    return tmp_path / "Cat_Dog_data"


@pytest.fixture
def ns7(data_root) -> dict:
    return {"torch": torch, "nn": nn, "v2": v2, "datasets": datasets, "DataLoader": DataLoader,
            "Dataset": Dataset, "Image": Image, "Path": Path, "csv": csv, "tempfile": tempfile,
            "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "data_dir": data_root, "batch_size": 4}


def test_part7_solutions_pass_every_test_on_a_larger_test_split(ns7):
    """The hidden test that wanted more training than test photos is gone: any split sizes pass."""
    for gid in ("transforms", "test_transforms", "loaders", "test_loaders", "csv_dataset", "test_csv_dataset",
                "small_cnn", "test_small_cnn"):
        source = P7[gid]
        assert failure(source, ns7) is None, gid


@pytest.mark.parametrize("old, new, named", [
    ("v2.ToDtype(torch.float32, scale=True),\n    v2.Normalize(mean, std),\n])\ntest_transforms",
     "v2.ToDtype(torch.float32, scale=True),\n])\ntest_transforms", None),  # train only: hidden test
    ("v2.ToDtype(torch.float32, scale=True),\n    v2.Normalize(mean, std),\n])\n### END",
     "v2.ToDtype(torch.float32),\n    v2.Normalize(mean, std),\n])\n### END", "scale=True"),
    ("v2.ToDtype(torch.float32, scale=True),\n    v2.Normalize(mean, std),\n])\n### END",
     "v2.ToDtype(torch.float32, scale=True),\n])\n### END", "Normalize"),
    ("    v2.Resize(255),\n    v2.CenterCrop(224),", "    v2.RandomResizedCrop(224),", "deterministic"),
    ("    v2.ToImage(),\n    v2.ToDtype(torch.float32, scale=True),\n    v2.Normalize(mean, std),\n])\ntest",
     "    v2.Normalize(mean, std),\n])\ntest", "ToDtype(torch.float32, scale=True)"),
    # ImageNet's statistics where the course's model expects 0.5: named as such, not as missing scaling
    ("v2.ToDtype(torch.float32, scale=True),\n    v2.Normalize(mean, std),\n])\n### END",
     "v2.ToDtype(torch.float32, scale=True),\n    v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),\n])"
     "\n### END", "ImageNet's statistics"),
])
def test_part7_transform_mistakes_are_named(ns7, old, new, named):
    answer(P7["transforms"], ns7, **{old: new})
    message = failure(visible(P7["test_transforms"]), ns7)
    if named is None:  # caught by the hidden tests only: the visible test passes
        assert message is None
        assert "Normalize" in failure(P7["test_transforms"], ns7)
    else:
        assert message is not None and named in message, message
        if named == "ImageNet's statistics":
            assert "scale to [0, 1] before" not in message, message


@pytest.mark.parametrize("old, new, named", [
    ("testloader = DataLoader(test_data, batch_size=batch_size)",
     "testloader = DataLoader(test_data, batch_size=batch_size, shuffle=True)", "should not shuffle"),
    ("trainloader = DataLoader(train_data, batch_size=batch_size, shuffle=True)",
     "trainloader = DataLoader(train_data, batch_size=batch_size)", "should shuffle"),
    ('test_data = datasets.ImageFolder(data_dir / "test", transform=test_transforms)',
     'test_data = datasets.ImageFolder(data_dir / "test", transform=train_transforms)', "test_transforms"),
    ('test_data = datasets.ImageFolder(data_dir / "test"', 'test_data = datasets.ImageFolder(data_dir / "train"',
     "data_dir / 'test'"),
])
def test_part7_loader_mistakes_are_named(ns7, old, new, named):
    answer(P7["transforms"], ns7)
    answer(P7["loaders"], ns7, **{old: new})
    message = failure(visible(P7["test_loaders"]), ns7)
    assert message is not None and named in message, message


def test_part7_wrong_transforms_cost_only_their_own_exercise(ns7):
    """Unnormalised, unscaled transforms fail Exercise 1 but not the loaders' or the CSV data set's tests."""
    ns7["train_transforms"] = ns7["test_transforms"] = v2.Compose(
        [v2.Resize(30), v2.CenterCrop(30), v2.ToImage(), v2.ToDtype(torch.float32)])
    assert failure(P7["test_transforms"], ns7) is not None
    answer(P7["loaders"], ns7)
    answer(P7["csv_dataset"], ns7)
    assert failure(P7["test_loaders"], ns7) is None
    assert failure(P7["test_csv_dataset"], ns7) is None


def test_part7_csv_dataset_without_transform_is_named(ns7):
    answer(P7["csv_dataset"], ns7,
           **{"if self.transform is not None:\n            image = self.transform(image)\n        ": ""})
    message = failure(visible(P7["test_csv_dataset"]), ns7)
    assert message is not None and "self.transform" in message, message


@pytest.mark.parametrize("old, new, named", [
    ("nn.ReLU(), nn.MaxPool2d(2)]", "nn.MaxPool2d(2)]", "ReLU"),
    ("nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)",
     "nn.Flatten(), nn.Linear(channels * 3 * 3, num_classes)", "mat1 and mat2"),
    ("kernel_size=3, padding=1)", "kernel_size=3)", "padding=1"),
])
def test_part7_cnn_mistakes_are_named(ns7, old, new, named):
    answer(P7["small_cnn"], ns7, **{old: new})
    message = failure(visible(P7["test_small_cnn"]), ns7)
    assert message is not None and named in message, message
    if named == "mat1 and mat2":
        assert "AdaptiveMaxPool2d" in message and "Flatten" in message, message


def test_part7_cnn_with_a_fixed_input_channel_fails_a_hidden_test(ns7):
    answer(P7["small_cnn"], ns7, **{"layers, channels = [], in_channels": "layers, channels = [], 1"})
    assert failure(visible(P7["test_small_cnn"]), ns7) is None
    message = failure(P7["test_small_cnn"], ns7)
    assert message is not None and "in_channels" in message, message


def test_part7_loaders_test_names_an_unfinished_exercise_1(ns7):
    """Exercise 2's test says it needs Exercise 1, instead of a NameError."""
    message = failure(visible(P7["test_loaders"]), ns7)
    assert message is not None and "needs Exercise 1 to work first" in message, message
    assert "train_transforms and test_transforms" in message, message


def test_part7_cnn_built_from_nested_blocks_is_named(ns7):
    """The cells after Exercise 4 slice the model (digit_cnn[:9], [:-1]): its test asks for a flat Sequential."""
    answer(P7["small_cnn"], ns7, **{
        "layers += [nn.Conv2d(channels, out_channels, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]":
        "layers += [nn.Sequential(nn.Conv2d(channels, out_channels, kernel_size=3, padding=1), nn.ReLU(), "
        "nn.MaxPool2d(2))]"})
    message = failure(visible(P7["test_small_cnn"]), ns7)
    assert message is not None and "one flat nn.Sequential of the 12 layers" in message, message


# ---------------------------------------------------------------------------
# Part 8
# ---------------------------------------------------------------------------

@pytest.fixture
def ns8() -> dict:
    return {"torch": torch, "nn": nn, "copy": copy, "DataLoader": DataLoader, "Subset": Subset,
            "TensorDataset": TensorDataset, "head_in_features": head_in_features, "fit": fit,
            "evaluate": evaluate}


def test_part8_test_cells_leave_the_notebooks_backbone_alone(ns8):
    """The TransferModel test freezes a backbone of its own, not the global `backbone`."""
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ns8["backbone"] = backbone
    answer(P8["transfer_model"], ns8)
    assert failure(P8["test_transfer_model"], ns8) is None
    assert ns8["backbone"] is backbone and all(p.requires_grad for p in backbone.parameters())
    assert backbone.training


@pytest.mark.parametrize("old, new, named", [
    ("        super().train(mode)\n        self.backbone.eval()\n", "        super().train(mode)\n", "eval mode"),
    ("        for p in self.backbone.parameters():\n            p.requires_grad = False\n",
     "", "requires_grad = False"),
    ("        self.backbone.eval()\n        return self\n", "        self.backbone.eval()\n",
     "return the model itself"),
    ("        super().train(mode)\n", "", "super().train(mode)"),
])
def test_part8_transfer_model_mistakes_are_named(ns8, old, new, named):
    answer(P8["transfer_model"], ns8, **{old: new})
    message = failure(visible(P8["test_transfer_model"]), ns8)
    assert message is not None and named in message, message


@pytest.mark.parametrize("old, new, named", [
    ("    model.eval()\n", "", "model.eval()"),
    ("    model.train(was_training)\n", "", "mode it was in"),
    ("    with torch.no_grad():\n        for images, labels in loader:\n            features.append(",
     "    if True:\n        for images, labels in loader:\n            features.append(", "torch.no_grad()"),
])
def test_part8_extract_features_mistakes_are_named(ns8, old, new, named):
    """Forgetting eval() fails the VISIBLE test, and the message names it."""
    answer(P8["extract_features"], ns8, **{old: new})
    message = failure(visible(P8["test_extract_features"]), ns8)
    assert message is not None and named in message, message


def test_part8_a_backbone_left_in_train_mode_costs_only_exercise_1(ns8):
    """A TransferModel whose backbone leaves eval mode fails its own test; a correct
    extract_features and train_head still pass theirs, hidden tests included."""
    answer(P8["transfer_model"], ns8,
           **{"        self.backbone.eval()\n        return self\n": "        return self\n"})
    assert failure(P8["test_transfer_model"], ns8) is not None
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone.fc = nn.Linear(8, 2)  # so that head_in_features can read a size
    ns8["model"] = model = ns8["TransferModel"](backbone, 2)
    model.train()
    assert backbone.training, "the broken answer should leave the backbone in train mode"
    ns8["train_features"], ns8["train_labels"] = torch.randn(5, 8), torch.zeros(5, dtype=torch.int64)
    answer(P8["extract_features"], ns8)
    answer(P8["train_head"], ns8)
    assert failure(P8["test_extract_features"], ns8) is None
    assert failure(P8["test_train_head"], ns8) is None


def test_part8_train_head_test_does_not_need_exercise_2(ns8):
    """train_head's tests bring their own features: a missing extract_features costs nothing there."""
    answer(P8["train_head"], ns8)
    assert "train_features" not in ns8 and "extract_features" not in ns8
    assert failure(P8["test_train_head"], ns8) is None


def test_part8_train_head_optimising_nothing_is_caught(ns8):
    answer(P8["train_head"], ns8, **{"torch.optim.Adam(head.parameters(), lr=lr)":
                                     "torch.optim.Adam(head.parameters(), lr=0.0)"})
    message = failure(visible(P8["test_train_head"]), ns8)
    assert message is not None and "lr" in message, message


def test_every_assert_in_a_graded_cell_has_a_message():
    """Feedback never shows a bare AssertionError (hidden tests included)."""
    for part, cells in (("07", P7), ("08", P8)):
        for gid, source in cells.items():
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Assert):
                    assert node.msg is not None, f"part {part}, {gid}, line {node.lineno}: assert without a message"


# Part 8, fine-tuning: Exercise 4 (prepare_fine_tuning) and Exercise 5 (fine_tune)

def test_part8_fine_tuning_tests_need_no_earlier_exercise(ns8):
    """Both fine-tuning tests bring their own model: no TransferModel, features or head needed."""
    answer(P8["prepare_fine_tuning"], ns8)
    answer(P8["fine_tune"], ns8)
    assert "TransferModel" not in ns8 and "extract_features" not in ns8 and "train_head" not in ns8
    assert failure(P8["test_prepare_fine_tuning"], ns8) is None
    assert failure(P8["test_fine_tune"], ns8) is None


@pytest.mark.parametrize("old, new, named", [
    # everything unfrozen
    ("    for p in last_block.parameters():\n        p.requires_grad = True",
     "    for p in model.backbone.parameters():\n        p.requires_grad = True", "whole backbone"),
    # the same learning rate everywhere
    ('{"params": last_block.parameters(), "lr": lr / 10}', '{"params": last_block.parameters(), "lr": lr}',
     "same learning rate"),
    # the optimizer built over frozen parameters
    ('{"params": last_block.parameters(), "lr": lr / 10}', '{"params": model.backbone.parameters(), "lr": lr / 10}',
     "frozen parameters"),
    # the block left frozen, and so left out of an optimizer of trainable parameters
    ("    for p in last_block.parameters():\n        p.requires_grad = True\n", "", "unfreeze every parameter"),
    # one group for everything
    ('torch.optim.Adam([\n        {"params": model.head.parameters(), "lr": lr},\n'
     '        {"params": last_block.parameters(), "lr": lr / 10},\n    ])',
     "torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)", "two parameter groups"),
    # no scheduler
    ("    return optimizer, scheduler\n", "    return optimizer, None\n", "scheduler"),
    # a scheduler that does not move in `steps` steps
    ("CosineAnnealingLR(optimizer, T_max=steps)", "StepLR(optimizer, step_size=30)", "lower the learning rates"),
])
def test_part8_prepare_fine_tuning_mistakes_are_named(ns8, old, new, named):
    answer(P8["prepare_fine_tuning"], ns8, **{old: new})
    message = failure(visible(P8["test_prepare_fine_tuning"]), ns8)
    assert message is not None and named in message, message


def test_part8_another_schedule_fails_a_hidden_test(ns8):
    """A StepLR that lowers the lr at every step passes the visible test; the hidden test asks for the cosine."""
    answer(P8["prepare_fine_tuning"], ns8,
           **{"CosineAnnealingLR(optimizer, T_max=steps)": "StepLR(optimizer, step_size=1, gamma=0.5)"})
    assert failure(visible(P8["test_prepare_fine_tuning"]), ns8) is None
    message = failure(P8["test_prepare_fine_tuning"], ns8)
    assert message is not None and "cosine" in message, message


@pytest.mark.parametrize("old, new, named", [
    ("        scheduler.step()\n", "", "scheduler.step()"),                              # forgot scheduler.step()
    ("        scheduler.step()\n        losses.append(loss.item())\n    return losses",  # once per epoch
     "        losses.append(loss.item())\n    scheduler.step()\n    return losses", "once per batch"),
    ("    model.train()\n", "", "model.train()"),
    ("losses.append(loss.item())", "losses.append(loss)", "loss.item()"),
    ("        optimizer.step()\n        scheduler", "        scheduler", "optimizer.step()"),
])
def test_part8_fine_tune_mistakes_are_named(ns8, old, new, named):
    answer(P8["fine_tune"], ns8, **{old: new})
    with warnings.catch_warnings():  # scheduler.step() without optimizer.step() warns, as it should
        warnings.simplefilter("ignore", UserWarning)
        message = failure(visible(P8["test_fine_tune"]), ns8)
    assert message is not None and named in message, message


@pytest.mark.parametrize("old, new, named", [
    ("        optimizer.zero_grad()\n", "", "zero_grad"),
    ("    model.to(device)\n", "", "model.to(device)"),
])
def test_part8_fine_tune_mistakes_fail_a_hidden_test(ns8, old, new, named):
    """Gradients that pile up, or a model never moved: the visible test cannot tell, the hidden one names it."""
    answer(P8["fine_tune"], ns8, **{old: new})
    assert failure(visible(P8["test_fine_tune"]), ns8) is None
    message = failure(P8["test_fine_tune"], ns8)
    assert message is not None and named in message, message


def test_part8_fine_tune_that_calls_helpers_loop_loses_its_points(ns8):
    """Exercise 5 is the loop fit runs: an answer that hands the work to helper.train is named, visible and hidden."""
    ns8["fine_tune"] = None
    exec("def fine_tune(model, loader, criterion, optimizer, scheduler, device):\n"  # noqa: S102 - a learner's answer
         "    from helper.train import fit\n"
         "    history = fit(model, loader, criterion, optimizer, epochs=1, device=device)\n"
         "    for _ in loader:\n"
         "        scheduler.step()\n"
         "    return [history['train_loss'][0]] * len(loader)\n", ns8)
    for source in (visible(P8["test_fine_tune"]), P8["test_fine_tune"]):
        message = failure(source, ns8)
        assert message is not None and "helper.train's fit and train_one_epoch" in message, message


def test_part8_extract_features_test_gives_the_model_back_in_eval_mode_reported(ns8):
    """The mode is read right after extract_features returns, before the test puts the model in eval mode."""
    answer(P8["extract_features"], ns8, **{"    model.train(was_training)\n": ""})
    message = failure(visible(P8["test_extract_features"]), ns8)
    assert message is not None and "model.train(was_training)" in message, message
