"""helper.train: the course's one loop trains, evaluates, stops early and keeps the best weights."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from helper.train import best_epoch, evaluate, fit, train_one_epoch


def _blobs(n: int, seed: int) -> TensorDataset:
    """Two well separated Gaussian blobs in 2-D, labels 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    centers = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])
    return TensorDataset(centers[labels] + torch.randn(n, 2, generator=g), labels)


@pytest.fixture
def loaders():
    train = DataLoader(_blobs(256, 0), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    test = DataLoader(_blobs(128, 1), batch_size=32)
    return train, test


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2), nn.LogSoftmax(dim=1))


def test_fit_signature_keeps_its_original_arguments_first():
    """Parts 6-8 call fit positionally up to device; the new options come last."""
    params = list(inspect.signature(fit).parameters)
    assert params[:8] == ["model", "train_loader", "criterion", "optimizer", "epochs", "device",
                          "val_loader", "progress"]
    assert params[8:] == ["keep_best", "patience"]


def test_fit_learns_and_records_history(loaders):
    train, test = loaders
    model = _model()
    history = fit(model, train, nn.NLLLoss(), optim.Adam(model.parameters(), lr=0.05), epochs=4,
                  device="cpu", val_loader=test, progress=False)
    assert set(history) == {"train_loss", "seconds", "test_loss", "test_accuracy"}
    assert all(len(v) == 4 for v in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["test_accuracy"][-1] > 0.9
    assert model.training, "fit leaves the model in train mode"


def test_fit_without_validation(loaders):
    train, _ = loaders
    model = _model()
    history = fit(model, train, nn.NLLLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=2,
                  device="cpu", progress=False)
    assert set(history) == {"train_loss", "seconds"}


class _Scripted(nn.Module):
    """Scores (w, -w) for every input: with every label 0, the loss falls as w grows."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.cat([self.w, -self.w]).expand(x.shape[0], 2)


class _ScriptedStep(torch.optim.SGD):
    """An 'optimizer' whose step sets the weight to the next value of a script."""

    def __init__(self, params, values):
        super().__init__(params, lr=0.0)
        self.values = iter(values)

    def step(self, closure=None):
        with torch.no_grad():
            self.param_groups[0]["params"][0].fill_(next(self.values))


def _scripted_fit(weights, **kwargs):
    """fit() where epoch i ends with the weight weights[i-1] (one batch per epoch)."""
    model = _Scripted()
    loader = DataLoader(TensorDataset(torch.zeros(8, 1), torch.zeros(8, dtype=torch.long)),
                        batch_size=8)
    history = fit(model, loader, nn.CrossEntropyLoss(), _ScriptedStep(model.parameters(), weights),
                  epochs=len(weights), device="cpu", val_loader=loader, progress=False, **kwargs)
    return model, history


def test_keep_best_restores_the_weights_of_the_lowest_test_loss():
    model, history = _scripted_fit([0.0, 2.0, 1.0, -1.0], keep_best=True)
    assert best_epoch(history) == 2
    assert model.w.item() == 2.0, "the weights of epoch 2 (lowest test loss) are restored"
    assert len(history["test_loss"]) == 4


def test_without_keep_best_the_last_weights_stay():
    model, history = _scripted_fit([0.0, 2.0, 1.0, -1.0])
    assert model.w.item() == -1.0


def test_patience_stops_after_n_epochs_without_improvement():
    model, history = _scripted_fit([0.0, 2.0, 1.0, 1.5, 3.0, 4.0], patience=2, keep_best=True)
    assert len(history["train_loss"]) == 4, "epochs 3 and 4 do not beat epoch 2: stop after 4"
    assert model.w.item() == 2.0


def test_early_stopping_needs_a_validation_loader(loaders):
    train, _ = loaders
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="val_loader"):
        fit(model, train, nn.NLLLoss(), opt, epochs=1, device="cpu", keep_best=True, progress=False)
    with pytest.raises(ValueError, match="val_loader"):
        fit(model, train, nn.NLLLoss(), opt, epochs=1, device="cpu", patience=3, progress=False)


def test_keep_best_copies_the_state_rather_than_aliasing_it(loaders):
    """With a real optimizer the restored weights are those of the best epoch, not the last."""
    train, test = loaders
    model = _model()
    history = fit(model, train, nn.NLLLoss(), optim.SGD(model.parameters(), lr=0.5), epochs=6,
                  device="cpu", val_loader=test, progress=False, keep_best=True)
    restored = evaluate(model, test, nn.NLLLoss())
    assert restored["loss"] == pytest.approx(min(history["test_loss"]), rel=1e-6)


def test_best_epoch():
    assert best_epoch({"test_loss": [0.5, 0.3, 0.3, 0.4]}) == 2
    assert best_epoch({"test_loss": [float("nan"), 0.9]}) == 2
    with pytest.raises(ValueError, match="val_loader"):
        best_epoch({"train_loss": [1.0]})


def test_evaluate_restores_mode_and_train_one_epoch_returns_mean_loss(loaders):
    train, test = loaders
    model = _model().eval()
    result = evaluate(model, test, nn.NLLLoss())
    assert not model.training and 0 <= result["accuracy"] <= 1
    loss = train_one_epoch(model, train, nn.NLLLoss(), optim.SGD(model.parameters(), lr=0.0),
                           "cpu", progress=False)
    assert loss == pytest.approx(evaluate(model, train, nn.NLLLoss())["loss"], rel=1e-5)
