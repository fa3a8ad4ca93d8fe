"""Plots used across the course.

Every function here reads its inputs and never changes them: tensors are copied
(``detach().cpu()``) before any reshape. Wrong shapes fail with a message that says
what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

# ImageNet statistics, the usual ``Normalize`` for pretrained torchvision models.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} should be a torch.Tensor or numpy array, got {type(x).__name__}")
    return x.detach().cpu().clone()


def _image_hwc(img: torch.Tensor, name: str = "img") -> np.ndarray:
    """(C, H, W), (H, W) or a flat square image -> (H, W) or (H, W, 3) numpy array."""
    if img.dim() == 1:
        side = int(round(img.numel() ** 0.5))
        if side * side != img.numel():
            raise ValueError(f"{name} is flat with {img.numel()} values, which is not a square image; "
                             "pass (1, 28, 28), (28, 28) or 784 values")
        return img.reshape(side, side).float().numpy()
    if img.dim() == 4 and img.shape[0] == 1:
        img = img[0]
    if img.dim() == 2:
        return img.float().numpy()
    if img.dim() == 3 and img.shape[0] == 1:
        return img[0].float().numpy()
    if img.dim() == 3 and img.shape[0] == 3:
        return img.permute(1, 2, 0).float().numpy()
    raise ValueError(f"expected {name} of shape (1, H, W), (3, H, W), (H, W) or (H*W,), "
                     f"got {tuple(img.shape)}; for a batch, pick one image with images[0]")


def view_classify(img, probs, classes: Sequence[str] | None = None, title: str | None = None,
                  logits: bool = False):
    """Show an image next to a bar chart of its predicted class probabilities.

    img:     one image, (1, 28, 28), (28, 28), (784,) or (3, H, W); a batch of one is fine
    probs:   (K,) or (1, K) probabilities (``torch.softmax(logits, dim=1)``), or, with
             ``logits=True``, the model's logits, which are turned into probabilities here
    classes: K class names; default ``0 .. K-1`` (MNIST digits). Use
             ``helper.data.FASHION_CLASSES`` for Fashion-MNIST.
    Returns the matplotlib figure. Log-probabilities (a model that ends in LogSoftmax) are
    refused with a message: from Part 3 on, models return logits.
    """
    img = _as_tensor(img, "img")
    probs = _as_tensor(probs, "logits" if logits else "probs").float()
    if probs.dim() == 2 and probs.shape[0] == 1:
        probs = probs[0]
    if probs.dim() != 1:
        raise ValueError(f"expected {'logits' if logits else 'probabilities'} of shape (K,) or (1, K) for ONE "
                         f"image, got {tuple(probs.shape)}; pass ps[0] to show the first image of a batch")
    k = probs.shape[0]
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    if len(classes) != k:
        raise ValueError(f"got {k} probabilities but {len(classes)} class names")
    sums_to_one = abs(float(probs.sum()) - 1) <= 1e-3
    log_probabilities = bool((probs <= 1e-6).all()) and abs(float(probs.exp().sum()) - 1) <= 1e-3
    if log_probabilities and not sums_to_one:
        raise ValueError("these look like log-probabilities (all <= 0, their exp sums to 1): the model ends in "
                         "LogSoftmax. From Part 3 on models return logits (CrossEntropyLoss applies the "
                         "log-softmax itself): drop the LogSoftmax and pass torch.softmax(logits, dim=1)")
    if logits:
        if probs.min() >= -1e-6 and sums_to_one:
            raise ValueError("logits=True, but these are probabilities already (none negative, they sum to 1): "
                             "pass them without logits=True, or, if the model ends in a softmax, drop it so that "
                             "it returns logits")
        probs = torch.softmax(probs, dim=0)
    elif probs.min() < -1e-6 or not sums_to_one:
        raise ValueError(f"probs should be probabilities, none negative and summing to 1 (these sum to "
                         f"{float(probs.sum()):.3g}). A model's raw outputs are logits: pass "
                         "torch.softmax(logits, dim=1), or view_classify(img, logits, logits=True)")
    image = _image_hwc(img)

    fig, (ax1, ax2) = plt.subplots(figsize=(6, 9 * max(k, 4) / 20 + 1), ncols=2)
    ax1.imshow(image, cmap="gray" if image.ndim == 2 else None)
    ax1.axis("off")
    if title:
        ax1.set_title(title)
    ax2.barh(np.arange(k), probs.numpy())
    ax2.set_aspect(0.1)
    ax2.set_yticks(np.arange(k))
    ax2.set_yticklabels(classes, size="small")
    ax2.invert_yaxis()
    ax2.set_title("Class probability")
    ax2.set_xlim(0, 1.1)
    fig.tight_layout()
    return fig


def denormalize(img: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo ``transforms.Normalize(mean, std)`` on a (C, H, W) tensor; returns a new tensor."""
    img = _as_tensor(img, "img")
    c = img.shape[0]
    if len(mean) not in (1, c) or len(std) not in (1, c):
        raise ValueError(f"mean/std have {len(mean)}/{len(std)} values for an image with {c} channels")
    m = torch.tensor(mean, dtype=img.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=img.dtype).view(-1, 1, 1)
    return img * s + m


def imshow(image, ax=None, title: str | None = None, normalize: bool = True,
           mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
    """Show one image tensor.

    image:     (3, H, W) RGB or (1, H, W) / (H, W) grey, as a DataLoader gives it
    normalize: True when the tensor went through ``Normalize(mean, std)``; the
               normalisation is undone for display (values are then clipped to [0, 1])
    Returns the matplotlib axes.
    """
    image = _as_tensor(image, "image")
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected one image of shape (3, H, W), (1, H, W) or (H, W), got "
                         f"{tuple(image.shape)}; for a batch, pass images[0]")
    if normalize:
        if image.shape[0] == 1 and len(mean) == 3:
            mean, std = mean[:1], std[:1]
        image = denormalize(image, mean, std)
    arr = np.clip(_image_hwc(image), 0, 1)
    if ax is None:
        _, ax = plt.subplots()
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def show_batch(images, labels=None, classes: Sequence[str] | None = None, n: int = 8,
               ncols: int = 8, normalize: bool = True, mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD):
    """Show the first ``n`` images of a batch in a grid, titled with their labels.

    images: (B, C, H, W) with C = 1 or 3
    labels: (B,) class indices, optional; ``classes`` turns them into names
    Returns the matplotlib figure.
    """
    images = _as_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"expected a batch of shape (B, C, H, W), got {tuple(images.shape)}")
    n = min(n, images.shape[0])
    if labels is not None:
        labels = _as_tensor(labels, "labels")
        if labels.shape[0] < n:
            raise ValueError(f"got {images.shape[0]} images but only {labels.shape[0]} labels")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        title = None
        if labels is not None:
            y = int(labels[i])
            title = classes[y] if classes is not None else str(y)
        imshow(images[i], ax=ax, title=title, normalize=normalize, mean=mean, std=std)
    fig.tight_layout()
    return fig


def plot_history(history: Mapping[str, Sequence[float]], title: str | None = None):
    """Draw training curves from a history dict (what ``helper.train.fit`` returns).

    history: {"train_loss": [...], "test_loss": [...], "test_accuracy": [...], ...};
             keys containing "loss" go on the left axes, "acc" on the right one.
    Returns the matplotlib figure.
    """
    if not isinstance(history, Mapping) or not history:
        raise ValueError("history should be a non-empty dict of lists, e.g. {'train_loss': [...]}")
    losses = {k: v for k, v in history.items() if "loss" in k and len(v)}
    accs = {k: v for k, v in history.items() if "acc" in k and len(v)}
    if not losses and not accs:
        raise ValueError(f"no key with 'loss' or 'acc' in history keys {list(history)}")
    ncols = int(bool(losses)) + int(bool(accs))
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.5), squeeze=False)
    for ax, curves, ylabel in zip(axes[0], [c for c in (losses, accs) if c],
                                  [y for c, y in ((losses, "loss"), (accs, "accuracy")) if c], strict=True):
        for name, values in curves.items():
            ax.plot(range(1, len(values) + 1), list(values), marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm, classes: Sequence[str] | None = None, normalize: bool = False,
                          title: str | None = None):
    """Draw a confusion matrix as a grid of coloured cells with the counts written in.

    cm:        (K, K) counts, rows = true class, columns = predicted class (what
               ``helper.metrics.confusion_matrix`` returns)
    classes:   K class names for the axes; default ``0 .. K-1``
    normalize: divide each row by its sum, so a cell shows the share of the true class
               (the diagonal is then each class's recall)
    Returns the matplotlib figure.
    """
    cm = _as_tensor(cm, "cm").double()
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"expected a square (K, K) confusion matrix, got {tuple(cm.shape)}")
    k = cm.shape[0]
    classes = list(classes) if classes is not None else [str(i) for i in range(k)]
    if len(classes) != k:
        raise ValueError(f"got a {k} x {k} matrix but {len(classes)} class names")
    if normalize:
        rows = cm.sum(dim=1, keepdim=True)
        cm = cm / torch.where(rows > 0, rows, torch.ones_like(rows))
    values = cm.numpy()
    size = max(4.0, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(np.arange(k))
    ax.set_xticklabels(classes, rotation=45, ha="right", size="small")
    ax.set_yticks(np.arange(k))
    ax.set_yticklabels(classes, size="small")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = values.max() / 2 if values.size and values.max() > 0 else 0.5
    for i in range(k):
        for j in range(k):
            text = f"{values[i, j]:.2f}" if normalize else f"{values[i, j]:.0f}"
            ax.text(j, i, text, ha="center", va="center", size="x-small",
                    color="white" if values[i, j] > threshold else "black")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig



def _float_array(values, name: str) -> np.ndarray:
    """A float64 numpy COPY of a tensor, array or (nested) list; the input stays as it was."""
    if isinstance(values, (torch.Tensor, np.ndarray)):
        return _as_tensor(values, name).double().numpy()
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} should hold numbers: a list of steps, each a list with one "
                         "number per layer (every step the same length)") from exc


def plot_grad_flow(grad_history, layer_names: Sequence[str] | None = None,
                   title: str | None = None, ax=None):
    """Draw how large each layer's gradient was at every training step, on a log scale.

    grad_history: (T, L) gradient sizes for T training steps and L layers, first layer
                  first: a list of T lists of L floats (what a ``grad_norms(model)`` called
                  after each ``backward()`` gives), a numpy array or a tensor; or a dict
                  {layer name: T values}. Values are >= 0: norms
                  (``torch.linalg.vector_norm(grad)``) or mean absolute values.
    layer_names:  L names for the legend; default the dict's keys, else "layer 1" .. "layer L"
    title:        optional title; ax: matplotlib axes to draw on (default: a new figure)
    Returns the matplotlib figure.

    A vanishing gradient shows as the first layer's line far below the last layer's: its
    weights barely change, however long you train.
    """
    if isinstance(grad_history, Mapping):
        if not grad_history:
            raise ValueError("grad_history is an empty dict; expected {layer name: [one value per step]}")
        columns = {str(k): _float_array(v, f"grad_history[{k!r}]") for k, v in grad_history.items()}
        shapes = {k: c.shape for k, c in columns.items()}
        if any(len(shape) != 1 for shape in shapes.values()) or len(set(shapes.values())) != 1:
            raise ValueError(f"every layer in grad_history should have one value per step, got shapes {shapes}")
        values = np.stack(list(columns.values()), axis=1)
        if layer_names is None:
            layer_names = list(columns)
    else:
        values = _float_array(grad_history, "grad_history")
    if values.size == 0:
        raise ValueError(f"grad_history is empty (shape {values.shape}): record one value per layer "
                         "at every training step")
    if values.ndim == 1:
        raise ValueError(f"expected grad_history of shape (steps, layers), got 1-D with {values.shape[0]} "
                         "values; record a list with one value per layer at every step")
    if values.ndim != 2:
        raise ValueError(f"expected grad_history of shape (steps, layers), got {values.shape}")
    steps, layers = values.shape
    if not np.isfinite(values).all():
        raise ValueError("grad_history holds NaN or infinite values: the training diverged "
                         "(try a smaller learning rate)")
    if (values < 0).any():
        raise ValueError("gradient sizes cannot be negative: record a norm "
                         "(torch.linalg.vector_norm(grad)) or "
                         "a mean absolute value (grad.abs().mean()), not the raw gradient")
    names = [str(n) for n in layer_names] if layer_names is not None else \
        [f"layer {i + 1}" for i in range(layers)]
    if len(names) != layers:
        raise ValueError(f"got {layers} layers in grad_history but {len(names)} layer names")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    colors = plt.cm.viridis(np.linspace(0, 0.85, layers))
    # Zeros (a layer with no gradient at all) have no logarithm: draw them at the bottom.
    floor = values[values > 0].min() / 10 if (values > 0).any() else 1e-12
    for i in range(layers):
        ax.plot(np.arange(1, steps + 1), np.maximum(values[:, i], floor), color=colors[i], label=names[i])
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient size")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
