"""Classification metrics: accuracy, predictions, confusion matrix, precision, recall.

    from helper.metrics import accuracy, predict, confusion_matrix, precision_recall
    accuracy(logits, labels)                              # float: share of the batch right
    preds, labels = predict(model, testloader)            # (N,), (N,)
    cm = confusion_matrix(preds, labels, num_classes=10)  # (10, 10): row = true, column = predicted
    precision, recall = precision_recall(cm)              # (10,) each

Draw the matrix with ``helper.plots.plot_confusion_matrix(cm, classes)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of a batch whose highest-scoring class is the label: the course's one accuracy.

    scores: (B, K) logits, a model's raw output (probabilities work too: the top class is the same)
    labels: (B,) class indices
    Returns a Python float in [0, 1]. The comparison is made between two (B,) tensors:
    a (B, 1) column (what ``topk`` returns) against (B,) labels would broadcast to (B, B).
    Over a whole loader, use ``helper.train.evaluate(model, loader)["accuracy"]``.
    """
    scores, labels = torch.as_tensor(scores), torch.as_tensor(labels)
    if scores.dim() != 2:
        raise ValueError(f"expected scores of shape (B, K), got {tuple(scores.shape)}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"expected labels of shape ({scores.shape[0]},) for scores of shape "
                         f"{tuple(scores.shape)}, got {tuple(labels.shape)}; a (B, 1) column "
                         "compared with (B,) labels would broadcast to (B, B): use labels.view(-1)")
    if scores.shape[0] == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return (scores.argmax(dim=1) == labels.to(scores.device)).float().mean().item()


def predict(model: nn.Module, loader: Iterable, device: torch.device | str | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's predicted class for every example in ``loader``, in eval mode, under
    ``torch.inference_mode()``.

    loader yields (inputs, labels) with labels (B,) class indices; the model returns (B, K)
    logits, and the arg-max of the logits is the prediction. Returns ``(predictions, labels)``, both (N,) int64
    on the CPU, in the loader's order. The model's train/eval mode is restored afterwards.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, targets = [], []
    try:
        with torch.inference_mode():
            for inputs, labels in loader:
                outputs = model(inputs.to(device))
                if outputs.dim() != 2 or outputs.shape[0] != labels.shape[0]:
                    raise ValueError(f"the model should return (batch, classes) scores, got "
                                     f"{tuple(outputs.shape)} for a batch of {labels.shape[0]}")
                preds.append(outputs.argmax(dim=1).cpu())
                targets.append(labels.cpu())
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("the loader yielded no data")
    return torch.cat(preds).long(), torch.cat(targets).long()


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int
                     ) -> torch.Tensor:
    """Count how often each true class was predicted as each class.

    predictions, labels: (N,) class indices in [0, num_classes).
    Returns (num_classes, num_classes) int64: ``cm[i, j]`` = examples of true class i
    predicted as class j. The diagonal holds the correct predictions; rows sum to the
    number of examples of each class.
    """
    predictions, labels = torch.as_tensor(predictions), torch.as_tensor(labels)
    if predictions.shape != labels.shape or predictions.dim() != 1:
        raise ValueError(f"expected predictions and labels of the same shape (N,), got "
                         f"{tuple(predictions.shape)} and {tuple(labels.shape)}; "
                         "for top_class of shape (N, 1), pass top_class.view(-1)")
    for name, t in (("predictions", predictions), ("labels", labels)):
        if t.numel() and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(f"{name} should be class indices in [0, {num_classes}), "
                             f"got values from {int(t.min())} to {int(t.max())}")
    index = labels.long().cpu() * num_classes + predictions.long().cpu()
    return torch.bincount(index, minlength=num_classes ** 2).view(num_classes, num_classes)


def precision_recall(cm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class precision and recall from a confusion matrix (rows true, columns predicted).

    precision[k] = cm[k, k] / cm[:, k].sum(): of the examples predicted as k, the share that are k
    recall[k]    = cm[k, k] / cm[k, :].sum(): of the examples of class k, the share found
    cm: (K, K) counts. Returns two (K,) float tensors; 0 where the denominator is 0 (a class
    never predicted, or absent from the labels), as scikit-learn's ``zero_division=0``.
    """
    cm = torch.as_tensor(cm)
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"expected a square (K, K) confusion matrix, got {tuple(cm.shape)}")
    cm = cm.double()
    hits = cm.diagonal()
    predicted, actual = cm.sum(dim=0), cm.sum(dim=1)
    ones = torch.ones_like(hits)  # stands in for a zero denominator, whose result is set to 0
    precision = torch.where(predicted > 0, hits / torch.where(predicted > 0, predicted, ones), 0.0)
    recall = torch.where(actual > 0, hits / torch.where(actual > 0, actual, ones), 0.0)
    return precision.float(), recall.float()
