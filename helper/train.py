"""The course's one training loop and one evaluation loop.

Learners write these loops themselves in Parts 3 and 5; later parts import them::

    from helper.train import fit, evaluate, get_device
    history = fit(model, trainloader, criterion, optimizer, epochs=5, val_loader=testloader)
    plot_history(history)

    # early stopping: keep the weights of the epoch with the lowest test loss
    history = fit(model, trainloader, criterion, optimizer, epochs=30,
                  val_loader=testloader, keep_best=True, patience=5)

Nothing here reads a global: model, data, loss, optimizer and device come in as
arguments, and a history dict comes out.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm


def get_device(prefer: str | None = None) -> torch.device:
    """The best device available: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` ("cpu", "cuda", "mps") forces one; it must exist.
    """
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _check_outputs(outputs: torch.Tensor, labels: torch.Tensor) -> None:
    if outputs.dim() != 2 or outputs.shape[0] != labels.shape[0]:
        raise ValueError(f"the model should return (batch, classes) scores, got {tuple(outputs.shape)} "
                         f"for a batch of {labels.shape[0]} labels")


def evaluate(model: nn.Module, loader: Iterable, criterion: Callable | None = None,
             device: torch.device | str | None = None, progress: bool = False) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode, without gradients.

    loader yields (inputs, labels) with labels (B,) class indices; the model returns
    (B, K) scores (logits or log-probabilities: the arg-max is the same).
    Returns {"loss": float (nan without a criterion), "accuracy": float}. The model's
    train/eval mode is restored afterwards.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    try:
        with torch.no_grad():
            for inputs, labels in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
                inputs, labels = inputs.to(device), labels.to(device)
                outputs = model(inputs)
                _check_outputs(outputs, labels)
                if criterion is not None:
                    loss_sum += criterion(outputs, labels).item() * labels.shape[0]
                correct += (outputs.argmax(dim=1) == labels).sum().item()
                total += labels.shape[0]
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("the loader yielded no data")
    return {"loss": loss_sum / total if criterion is not None else float("nan"),
            "accuracy": correct / total}


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: Callable,
                    optimizer: torch.optim.Optimizer, device: torch.device | str,
                    progress: bool = True, desc: str = "train") -> float:
    """One pass over ``loader``: zero_grad, forward, loss, backward, step. Returns the mean loss."""
    model.train()
    total, loss_sum = 0, 0.0
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress)
    for inputs, labels in bar:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        _check_outputs(outputs, labels)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * labels.shape[0]
        total += labels.shape[0]
        bar.set_postfix(loss=f"{loss.item():.3f}")
    if total == 0:
        raise ValueError("the training loader yielded no data")
    return loss_sum / total


def best_epoch(history: dict[str, list[float]]) -> int:
    """The epoch (counting from 1) with the lowest ``history["test_loss"]``; the first on ties.

    This is the epoch whose weights ``fit(..., keep_best=True)`` restores.
    """
    losses = history.get("test_loss") if hasattr(history, "get") else None
    if not losses:
        raise ValueError("history has no test_loss values: pass val_loader to fit")
    return min(range(len(losses)), key=lambda i: (math.isnan(losses[i]), losses[i])) + 1


def fit(model: nn.Module, train_loader: Iterable, criterion: Callable,
        optimizer: torch.optim.Optimizer, epochs: int, device: torch.device | str | None = None,
        val_loader: Iterable | None = None, progress: bool = True, keep_best: bool = False,
        patience: int | None = None) -> dict[str, list[float]]:
    """Train for ``epochs`` epochs; after each, evaluate on ``val_loader`` if given.

    Returns a history dict of per-epoch lists: ``train_loss``, ``seconds`` and, with a
    validation loader, ``test_loss`` and ``test_accuracy``. Draw it with
    ``helper.plots.plot_history``. The model is moved to ``device`` (default: the best
    available, see ``get_device``).

    Early stopping (both need ``val_loader``):

    - ``keep_best=True``: when training ends, the model gets back the weights of the epoch
      with the lowest test loss (``best_epoch(history)``); the history still covers every
      epoch that ran. The optimizer's state is left as the last epoch left it.
    - ``patience=N``: stop after N epochs in a row without a new lowest test loss.
    """
    if epochs < 1:
        raise ValueError(f"epochs should be at least 1, got {epochs}")
    if (keep_best or patience is not None) and val_loader is None:
        raise ValueError("keep_best and patience judge epochs by their test loss: pass val_loader")
    if patience is not None and patience < 1:
        raise ValueError(f"patience should be at least 1 epoch, got {patience}")
    device = get_device() if device is None else torch.device(device)
    model.to(device)
    history: dict[str, list[float]] = {"train_loss": [], "seconds": []}
    if val_loader is not None:
        history.update(test_loss=[], test_accuracy=[])
    best_loss, best_state, since_best = math.inf, None, 0
    epoch_bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress)
    for epoch in epoch_bar:
        start = time.perf_counter()
        train_loss = train_one_epoch(model, train_loader, criterion, optimizer, device,
                                     progress=progress, desc=f"epoch {epoch}")
        history["train_loss"].append(train_loss)
        postfix = {"train_loss": f"{train_loss:.3f}"}
        if val_loader is not None:
            result = evaluate(model, val_loader, criterion, device)
            history["test_loss"].append(result["loss"])
            history["test_accuracy"].append(result["accuracy"])
            postfix.update(test_loss=f"{result['loss']:.3f}", test_acc=f"{result['accuracy']:.3f}")
        history["seconds"].append(time.perf_counter() - start)
        epoch_bar.set_postfix(postfix)
        if val_loader is not None:
            if result["loss"] < best_loss:
                best_loss, since_best = result["loss"], 0
                if keep_best:  # a copy: the live tensors keep changing as training goes on
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
            if patience is not None and since_best >= patience:
                break
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    return history
