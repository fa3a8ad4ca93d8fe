"""helper.data.make_spiral: shapes and dtypes, reproducible, and a data set that a
linear model cannot separate but a small ReLU network can."""

import numpy as np
import pytest
import torch
from torch import nn

from helper.data import make_spiral


def test_shapes_dtypes_and_classes():
    X, y = make_spiral(50)
    assert X.shape == (150, 2) and X.dtype == torch.float32
    assert y.shape == (150,) and y.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.tensor([50, 50, 50]))
    assert X.abs().max() <= 1.0 + 1e-6
    X5, y5 = make_spiral(7, n_classes=5, noise=0.0)
    assert X5.shape == (35, 2) and set(y5.tolist()) == set(range(5))
    assert torch.allclose(X5.norm(dim=1)[:7], torch.linspace(0, 1, 7), atol=1e-6), "radius runs 0 -> 1"


def test_reproducible_and_seeded_independently_of_global_state():
    torch.manual_seed(0)
    np.random.seed(0)
    a = make_spiral(30, seed=4)
    torch.manual_seed(1)
    np.random.seed(1)
    b = make_spiral(30, seed=4)
    c = make_spiral(30, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    state = np.random.get_state()[1].copy()
    make_spiral(10)
    assert (np.random.get_state()[1] == state).all(), "make_spiral must not touch NumPy's global seed"


@pytest.mark.parametrize("kwargs, message", [
    ({"n_per_class": 0}, "positive integer"),
    ({"n_per_class": 2.5}, "positive integer"),
    ({"n_per_class": 10, "n_classes": 1}, ">= 2"),
    ({"n_per_class": 10, "noise": -0.1}, "cannot be negative"),
])
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_spiral(**kwargs)


def _accuracy(model, X, y, steps=600, lr=0.5):
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    with torch.no_grad():
        return (model(X).argmax(1) == y).float().mean().item()


def test_not_linearly_separable_but_learnable():
    X, y = make_spiral(100, seed=0)
    torch.manual_seed(0)
    linear = _accuracy(nn.Linear(2, 3), X, y)
    torch.manual_seed(0)
    mlp = _accuracy(nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 3)), X, y)
    assert linear < 0.65, f"a linear model should fail on spirals, got {linear:.2f}"
    assert mlp > 0.9, f"a small ReLU network should separate the spirals, got {mlp:.2f}"
