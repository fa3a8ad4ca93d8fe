"""The course's fully-connected classifier (Parts 5-6)::

    from helper.models import Network
    model = Network(784, 10, hidden_layers=[256, 128, 64], drop_p=0.2)
    logits = model(images)                   # (B, 1, 28, 28) or (B, 784) -> (B, 10) logits

The pretrained network of Part 8 lives in ``helper.pretrained``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------
# A configurable fully-connected classifier (Parts 5-6)
# ---------------------------------------------------------------------------

class Network(nn.Module):
    """A fully-connected classifier: [Linear -> ReLU -> Dropout] per hidden layer, then a
    Linear output layer that gives the logits (no softmax).

    Args:
        input_size: number of input features, e.g. 784 for 28 x 28 images.
        output_size: number of classes, e.g. 10.
        hidden_layers: sizes of the hidden layers, e.g. ``[256, 128, 64]``; ``[]`` gives
            a single linear layer (multinomial logistic regression).
        drop_p: dropout probability after each hidden layer, in [0, 1).

    Forward: images ``(B, C, H, W)`` with C * H * W == input_size, or flat ``(B, input_size)``
    -> logits ``(B, output_size)``, raw scores: pair it with ``nn.CrossEntropyLoss``, which
    applies the log-softmax itself; ``torch.softmax(logits, dim=1)`` gives probabilities and
    ``logits.argmax(dim=1)`` the predicted class.

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
            nn.Linear(n_in, n_out) for n_in, n_out in itertools.pairwise(sizes))
        self.output = nn.Linear(sizes[-1], output_size)
        self.dropout = nn.Dropout(p=drop_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` or flat inputs ``(B, input_size)`` -> logits ``(B, output_size)``."""
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
        return self.output(x)
