"""helper.models.Network: a configurable fully-connected classifier, cheap to import."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helper.models import Network
from tests.conftest import modules_imported_by


def test_importing_network_does_not_import_timm_or_torchvision():
    """timm costs seconds to import; Parts 5-6 need only Network."""
    assert modules_imported_by("from helper.models import Network", ("timm", "torchvision")) == []


def test_layers_follow_the_arguments():
    model = Network(784, 10, [256, 128, 64], drop_p=0.3)
    assert isinstance(model.hidden_layers, nn.ModuleList)
    shapes = [(layer.in_features, layer.out_features) for layer in model.hidden_layers]
    assert shapes == [(784, 256), (256, 128), (128, 64)]
    assert (model.output.in_features, model.output.out_features) == (64, 10)
    assert model.dropout.p == 0.3
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10


def test_state_dict_keys():
    keys = list(Network(4, 3, [5, 6]).state_dict())
    assert keys == ["hidden_layers.0.weight", "hidden_layers.0.bias", "hidden_layers.1.weight",
                    "hidden_layers.1.bias", "output.weight", "output.bias"]


def _hidden(model: Network, x: torch.Tensor) -> torch.Tensor:
    h = x.flatten(start_dim=1)
    for layer in model.hidden_layers:
        h = torch.relu(layer(h))
    return h


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (5, 784), (1, 28, 28)])
def test_forward_gives_logits_and_leaves_input_alone(shape):
    torch.manual_seed(0)
    model = Network(784, 10, [32, 16])
    x = torch.rand(shape)
    before = x.clone()
    out = model(x)
    assert out.shape == (shape[0], 10)
    assert (out > 0).any(), "logits: no log-softmax at the end (log-probabilities are never positive)"
    assert not torch.allclose(out.exp().sum(dim=1), torch.ones(shape[0]), atol=1e-3)
    model.eval()
    assert torch.allclose(model(x), model.output(_hidden(model, x)), atol=1e-6), "the output layer's raw scores"
    assert x.shape == before.shape and torch.equal(x, before)


def test_no_hidden_layers_is_a_linear_classifier():
    model = Network(3, 2, [])
    assert len(model.hidden_layers) == 0
    x = torch.randn(4, 3)
    assert torch.allclose(model(x), model.output(x))


def test_dropout_is_active_in_train_mode_only():
    torch.manual_seed(0)
    model = Network(20, 4, [64, 64], drop_p=0.5)
    x = torch.randn(8, 20)
    assert not torch.allclose(model(x), model(x)), "train mode: dropout makes two passes differ"
    model.eval()
    assert torch.equal(model(x), model(x)), "eval mode: deterministic"
    h = x
    for layer in model.hidden_layers:
        h = torch.relu(layer(h))
    assert torch.allclose(model(x), model.output(h), atol=1e-6)


def test_hidden_layers_argument_is_not_changed():
    sizes = [8, 4]
    Network(3, 2, sizes)
    assert sizes == [8, 4]


@pytest.mark.parametrize("args, message", [
    ((784, 10, 256), "list of positive layer sizes"),
    ((784, 10, [256, 0]), "list of positive layer sizes"),
    ((784, 0, [256]), "output_size should be a positive int"),
    ((784.0, 10, [256]), "input_size should be a positive int"),
    ((784, 10, [256], 1.0), r"drop_p is a probability in \[0, 1\)"),
])
def test_bad_arguments_explain_themselves(args, message):
    with pytest.raises(ValueError, match=message):
        Network(*args)


@pytest.mark.parametrize("shape", [(5, 3, 32, 32), (28, 28), (784,)])
def test_wrong_input_size_says_what_was_expected(shape):
    with pytest.raises(ValueError, match="784 features"):
        Network(784, 10, [16])(torch.rand(shape))
