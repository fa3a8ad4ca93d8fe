"""The course's one training loop and one evaluation loop.

Learners write these loops themselves in Parts 3 and 5; later parts import them::

    from helper.train import fit, evaluate, get_device
    history = fit(model, trainloader, criterion, optimizer, epochs=5, val_loader=valloader)
    plot_history(history)      # train_loss, val_loss, val_accuracy per epoch

    # early stopping: keep the weights of the epoch with the lowest validation loss,
    # and stop once it has not improved for 5 epochs
    history = fit(model, trainloader, criterion, optimizer, epochs=30,
                  val_loader=valloader, keep_best=True, patience=5)

    # TensorBoard: the same numbers, per epoch, under the tags in TAGS
    from torch.utils.tensorboard import SummaryWriter
    with SummaryWriter("runs/dropout-0.2") as writer:
        fit(model, trainloader, criterion, optimizer, epochs=5, val_loader=valloader,
            writer=writer, log_grad_norms=True)

The validation loader holds data split off the training set (``random_split``): it
chooses the epoch and the settings; the test set is measured once, at the very end.
Nothing here reads a global: model, data, loss, optimizer and device come in as
arguments, and a history dict comes out. TensorBoard is imported only by
``read_scalars``; ``fit`` just calls ``writer.add_scalar``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

# History key -> TensorBoard tag. Losses share one chart and accuracies another, so the
# training and validation curves of a run are drawn together.
TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_accuracy": "accuracy/train",
    "val_accuracy": "accuracy/val",
}
GRAD_NORM_TAG = "grad_norm/{name}"  # one per weight matrix, e.g. grad_norm/hidden_layers.0.weight


def get_device(prefer: str | None = None) -> torch.device:
    """The best device available: the current accelerator (CUDA, MPS, XPU, ...), else the CPU.

    Uses ``torch.accelerator`` (PyTorch >= 2.6). ``prefer`` ("cpu", "cuda", "mps") forces
    one; it must exist.
    """
    if prefer is not None:
        return torch.device(prefer)
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        if accelerator.is_available():
            return torch.device(accelerator.current_accelerator())
        return torch.device("cpu")
    if torch.cuda.is_available():  # older PyTorch
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
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode, under
    ``torch.inference_mode()`` (no gradients; tensors made there cannot enter autograd later).

    loader yields (inputs, labels) with labels (B,) class indices; the model returns
    (B, K) logits, and the arg-max of the logits is the prediction.
    Returns {"loss": float (nan without a criterion), "accuracy": float}. The model's
    train/eval mode is restored afterwards.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    try:
        with torch.inference_mode():
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


def _train_epoch(model: nn.Module, loader: Iterable, criterion: Callable,
                 optimizer: torch.optim.Optimizer, device: torch.device | str,
                 progress: bool, desc: str, grad_norms: dict[str, float] | None = None
                 ) -> tuple[float, float]:
    """One pass over ``loader``; returns (mean loss, accuracy) over the training examples.

    With ``grad_norms`` (a dict), adds each weight's gradient norm, averaged over the
    epoch's batches, under the parameter's name.
    """
    model.train()
    total, correct, loss_sum, batches = 0, 0, 0.0, 0
    sums: dict[str, float] = {}
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress)
    for inputs, labels in bar:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        _check_outputs(outputs, labels)
        loss = criterion(outputs, labels)
        loss.backward()
        if grad_norms is not None:
            for name, param in model.named_parameters():
                if param.grad is not None and param.dim() > 1:  # weights, not biases
                    norm = torch.linalg.vector_norm(param.grad).item()
                    sums[name] = sums.get(name, 0.0) + norm
        optimizer.step()
        loss_sum += loss.item() * labels.shape[0]
        correct += (outputs.argmax(dim=1) == labels).sum().item()
        total += labels.shape[0]
        batches += 1
        bar.set_postfix(loss=f"{loss.item():.3f}")
    if total == 0:
        raise ValueError("the training loader yielded no data")
    if grad_norms is not None:
        grad_norms.update({name: value / batches for name, value in sums.items()})
    return loss_sum / total, correct / total


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: Callable,
                    optimizer: torch.optim.Optimizer, device: torch.device | str,
                    progress: bool = True, desc: str = "train") -> float:
    """One pass over ``loader``: zero_grad, forward, loss, backward, step. Returns the mean loss."""
    return _train_epoch(model, loader, criterion, optimizer, device, progress, desc)[0]


def best_epoch(history: dict[str, list[float]]) -> int:
    """The epoch (counting from 1) with the lowest ``history["val_loss"]``; the first on ties.

    This is the epoch whose weights ``fit(..., keep_best=True)`` restores.
    """
    losses = history.get("val_loss") if hasattr(history, "get") else None
    if not losses:
        raise ValueError("history has no val_loss values: pass val_loader to fit")
    return min(range(len(losses)), key=lambda i: (math.isnan(losses[i]), losses[i])) + 1


def fit(model: nn.Module, train_loader: Iterable, criterion: Callable,
        optimizer: torch.optim.Optimizer, epochs: int, device: torch.device | str | None = None,
        val_loader: Iterable | None = None, progress: bool = True, keep_best: bool = False,
        patience: int | None = None, writer=None, log_grad_norms: bool = False
        ) -> dict[str, list[float]]:
    """Train for ``epochs`` epochs; after each, evaluate on ``val_loader`` if given.

    Returns a history dict of per-epoch lists: ``train_loss``, ``seconds`` and, with a
    validation loader, ``val_loss`` and ``val_accuracy``. Draw it with ``helper.plots.plot_history``. The model
    is moved to ``device`` (default: the best available, see ``get_device``).

    Early stopping (both need ``val_loader``):

    - ``keep_best=True``: when training ends, the model gets back the weights of the epoch
      with the lowest validation loss (``best_epoch(history)``); the history still covers
      every epoch that ran. The optimizer's state is left as the last epoch left it.
    - ``patience=N``: stop after N epochs in a row without a new lowest validation loss.

    TensorBoard: with ``writer`` (a ``torch.utils.tensorboard.SummaryWriter``, or anything
    with ``add_scalar(tag, value, step)``), each epoch's numbers are logged under the tags
    in ``TAGS`` with the epoch (from 1) as the step, the training accuracy (measured on the
    fly during the epoch, dropout on) included; ``log_grad_norms=True`` adds each
    weight's gradient norm, averaged over the epoch, under ``grad_norm/<parameter name>``.
    The writer is flushed at the end, not closed: the caller owns it.
    """
    if epochs < 1:
        raise ValueError(f"epochs should be at least 1, got {epochs}")
    if (keep_best or patience is not None) and val_loader is None:
        raise ValueError("keep_best and patience judge epochs by their validation loss: pass val_loader")
    if patience is not None and patience < 1:
        raise ValueError(f"patience should be at least 1 epoch, got {patience}")
    if log_grad_norms and writer is None:
        raise ValueError("log_grad_norms logs to TensorBoard: pass writer=SummaryWriter(...)")
    device = get_device() if device is None else torch.device(device)
    model.to(device)
    history: dict[str, list[float]] = {"train_loss": [], "seconds": []}
    if val_loader is not None:
        history.update(val_loss=[], val_accuracy=[])
    best_loss, best_state, since_best = math.inf, None, 0
    epoch_bar = tqdm(range(1, epochs + 1), desc="epochs", disable=not progress)
    for epoch in epoch_bar:
        start = time.perf_counter()
        grad_norms: dict[str, float] | None = {} if log_grad_norms else None
        train_loss, train_acc = _train_epoch(model, train_loader, criterion, optimizer, device,
                                             progress, f"epoch {epoch}", grad_norms)
        history["train_loss"].append(train_loss)
        postfix = {"train_loss": f"{train_loss:.3f}"}
        if val_loader is not None:
            result = evaluate(model, val_loader, criterion, device)
            history["val_loss"].append(result["loss"])
            history["val_accuracy"].append(result["accuracy"])
            postfix.update(val_loss=f"{result['loss']:.3f}", val_acc=f"{result['accuracy']:.3f}")
        history["seconds"].append(time.perf_counter() - start)
        epoch_bar.set_postfix(postfix)
        if writer is not None:
            scalars = {key: values[-1] for key, values in history.items() if key in TAGS}
            scalars["train_accuracy"] = train_acc
            for key, value in scalars.items():
                writer.add_scalar(TAGS[key], value, epoch)
            for name, norm in (grad_norms or {}).items():
                writer.add_scalar(GRAD_NORM_TAG.format(name=name), norm, epoch)
        if val_loader is not None:
            if result["loss"] < best_loss:
                best_loss, since_best = result["loss"], 0
                if keep_best:  # a copy: the live tensors keep changing as training goes on
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
            if patience is not None and since_best >= patience:
                break
    if writer is not None:
        writer.flush()
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    return history


def read_scalars(run_dir: str | Path) -> dict[str, list[float]]:
    """Read back the scalars a run logged to TensorBoard, as a history-like dict.

    run_dir: the folder a ``SummaryWriter`` wrote its event files to. Returns
    {tag: [value, ...]} in step order, e.g. ``{"loss/train": [...], "loss/val": [...]}``,
    which ``helper.plots.plot_history`` can draw. Imports TensorBoard (only here).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no TensorBoard run folder at {run_dir}")
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every value
    events.Reload()
    return {tag: [e.value for e in sorted(events.Scalars(tag), key=lambda e: e.step)]
            for tag in events.Tags()["scalars"]}
