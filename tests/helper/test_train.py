"""helper.train: the course's one loop trains, evaluates, stops early, keeps the best weights
and logs to TensorBoard; helper.metrics.accuracy is the course's one accuracy."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

from helper.metrics import accuracy
from helper.train import (
    TAGS,
    best_epoch,
    evaluate,
    fit,
    get_device,
    read_scalars,
    train_one_epoch,
)
from tests.conftest import modules_imported_by


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
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))  # logits


def test_fit_signature_keeps_its_original_arguments_first():
    """Parts 6-8 call fit positionally up to device; the new options come last."""
    params = list(inspect.signature(fit).parameters)
    assert params[:8] == ["model", "train_loader", "criterion", "optimizer", "epochs", "device",
                          "val_loader", "progress"]
    assert params[8:] == ["keep_best", "patience", "writer", "log_grad_norms"]


def test_fit_learns_and_records_history(loaders):
    train, test = loaders
    model = _model()
    history = fit(model, train, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05), epochs=4,
                  device="cpu", val_loader=test, progress=False)
    assert set(history) == {"train_loss", "seconds", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert model.training, "fit leaves the model in train mode"


def test_fit_without_validation(loaders):
    train, _ = loaders
    model = _model()
    history = fit(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=2,
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


def test_keep_best_restores_the_weights_of_the_lowest_validation_loss():
    model, history = _scripted_fit([0.0, 2.0, 1.0, -1.0], keep_best=True)
    assert best_epoch(history) == 2
    assert model.w.item() == 2.0, "the weights of epoch 2 (lowest test loss) are restored"
    assert len(history["val_loss"]) == 4


def test_without_keep_best_the_last_weights_stay():
    model, _ = _scripted_fit([0.0, 2.0, 1.0, -1.0])
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
        fit(model, train, nn.CrossEntropyLoss(), opt, epochs=1, device="cpu", keep_best=True, progress=False)
    with pytest.raises(ValueError, match="val_loader"):
        fit(model, train, nn.CrossEntropyLoss(), opt, epochs=1, device="cpu", patience=3, progress=False)


def test_keep_best_copies_the_state_rather_than_aliasing_it(loaders):
    """With a real optimizer the restored weights are those of the best epoch, not the last."""
    train, test = loaders
    model = _model()
    history = fit(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.5), epochs=6,
                  device="cpu", val_loader=test, progress=False, keep_best=True)
    restored = evaluate(model, test, nn.CrossEntropyLoss())
    assert restored["loss"] == pytest.approx(min(history["val_loss"]), rel=1e-6)


def test_best_epoch():
    assert best_epoch({"val_loss": [0.5, 0.3, 0.3, 0.4]}) == 2
    assert best_epoch({"val_loss": [float("nan"), 0.9]}) == 2
    with pytest.raises(ValueError, match="val_loader"):
        best_epoch({"train_loss": [1.0]})


def test_evaluate_restores_mode_and_train_one_epoch_returns_mean_loss(loaders):
    train, test = loaders
    model = _model().eval()
    result = evaluate(model, test, nn.CrossEntropyLoss())
    assert not model.training and 0 <= result["accuracy"] <= 1
    loss = train_one_epoch(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0),
                           "cpu", progress=False)
    assert loss == pytest.approx(evaluate(model, train, nn.CrossEntropyLoss())["loss"], rel=1e-5)


class _ModeSpy(nn.Module):
    """Logits of a linear layer; records whether each call ran under torch.inference_mode()."""

    def __init__(self):
        super().__init__()
        self.fc, self.inference = nn.Linear(2, 2), []

    def forward(self, x):
        self.inference.append(torch.is_inference_mode_enabled())
        return self.fc(x)


def test_evaluate_runs_under_inference_mode_and_training_still_works(loaders):
    """evaluate measures under torch.inference_mode(); fit's training steps after it are unaffected."""
    train, test = loaders
    torch.manual_seed(0)
    model = _ModeSpy()
    evaluate(model, test, nn.CrossEntropyLoss())
    assert model.inference and all(model.inference)
    model.inference.clear()
    fit(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=2, device="cpu",
        val_loader=test, progress=False)
    assert model.inference == ([False] * len(train) + [True] * len(test)) * 2


def test_history_uses_validation_names_not_test(loaders):
    """The loader passed as val_loader is a validation split: the history says so."""
    train, val = loaders
    model = _model()
    history = fit(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=1,
                  device="cpu", val_loader=val, progress=False)
    assert not any(key.startswith("test") for key in history), sorted(history)
    with pytest.raises(ValueError, match="val_loss"):
        best_epoch({"test_loss": [1.0]})


class _RecordingWriter:
    """Stands in for a SummaryWriter: records add_scalar calls."""

    def __init__(self):
        self.scalars, self.flushed = [], 0

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, float(value), step))

    def flush(self):
        self.flushed += 1


def test_fit_logs_each_epoch_under_stable_tags(loaders):
    train, val = loaders
    model = _model()
    writer = _RecordingWriter()
    history = fit(model, train, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05), epochs=3,
                  device="cpu", val_loader=val, progress=False, writer=writer)
    assert TAGS == {"train_loss": "loss/train", "val_loss": "loss/val",
                    "train_accuracy": "accuracy/train", "val_accuracy": "accuracy/val"}
    by_tag = {}
    for tag, value, step in writer.scalars:
        by_tag.setdefault(tag, []).append((step, value))
    assert set(by_tag) == set(TAGS.values())
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert by_tag[TAGS[key]] == [(e + 1, pytest.approx(v)) for e, v in enumerate(history[key])]
    assert all(0 <= v <= 1 for _, v in by_tag["accuracy/train"])
    assert writer.flushed >= 1


def test_fit_without_validation_logs_training_only(loaders):
    train, _ = loaders
    writer = _RecordingWriter()
    model = _model()
    fit(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=2, device="cpu",
        progress=False, writer=writer)
    assert {tag for tag, _, _ in writer.scalars} == {"loss/train", "accuracy/train"}


def test_gradient_norms_per_weight_matrix(loaders):
    train, _ = loaders
    writer = _RecordingWriter()
    model = _model()
    fit(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=2, device="cpu",
        progress=False, writer=writer, log_grad_norms=True)
    norms = [(tag, v, step) for tag, v, step in writer.scalars if tag.startswith("grad_norm/")]
    assert {tag for tag, _, _ in norms} == {"grad_norm/0.weight", "grad_norm/2.weight"}
    assert sorted({step for _, _, step in norms}) == [1, 2]
    assert all(v > 0 for _, v, _ in norms)
    with pytest.raises(ValueError, match="writer"):
        fit(model, train, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), epochs=1,
            device="cpu", progress=False, log_grad_norms=True)


def test_tensorboard_round_trip(loaders, tmp_path):
    """A real SummaryWriter: the event files read back (EventAccumulator) give the history."""
    from torch.utils.tensorboard import SummaryWriter

    train, val = loaders
    model = _model()
    with SummaryWriter(tmp_path / "run") as writer:
        history = fit(model, train, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05),
                      epochs=3, device="cpu", val_loader=val, progress=False, writer=writer)
    scalars = read_scalars(tmp_path / "run")
    assert set(scalars) == set(TAGS.values())
    assert scalars["loss/val"] == pytest.approx(history["val_loss"], rel=1e-6)
    assert scalars["accuracy/val"] == pytest.approx(history["val_accuracy"], rel=1e-6)
    with pytest.raises(FileNotFoundError):
        read_scalars(tmp_path / "no-such-run")


def test_importing_helper_train_does_not_import_tensorboard():
    assert modules_imported_by("import helper.train", ("tensorboard",)) == []


def test_get_device_uses_torch_accelerator(monkeypatch):
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda: torch.device("xpu"))
    assert get_device() == torch.device("xpu")


def test_accuracy_is_the_share_of_right_top_classes():
    scores = torch.tensor([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3]])
    labels = torch.tensor([2, 0, 0, 1])
    before = scores.clone()
    assert accuracy(scores.log(), labels) == pytest.approx(0.75)
    assert isinstance(accuracy(scores, labels), float)
    assert torch.equal(scores, before)
    with pytest.raises(ValueError, match=r"\(B, B\)"):
        accuracy(scores, labels.view(-1, 1))
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        accuracy(scores[0], labels[:1])
