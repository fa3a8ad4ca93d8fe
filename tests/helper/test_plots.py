"""helper.plots: pictures come out, inputs stay untouched, wrong shapes explain themselves."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helper.data import FASHION_CLASSES  # noqa: E402
from helper.plots import imshow, plot_history, show_batch, view_classify  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.stride() == b.stride() and torch.equal(a, b)


@pytest.mark.parametrize("img_shape", [(1, 28, 28), (28, 28), (784,), (1, 1, 28, 28), (3, 32, 32)])
def test_view_classify_accepts_shapes_and_leaves_inputs_alone(img_shape):
    img = torch.rand(img_shape)
    probs = torch.softmax(torch.randn(1, 10), dim=1)
    img0, probs0 = img.clone(), probs.clone()
    fig = view_classify(img, probs)
    assert _same(img, img0) and _same(probs, probs0), "view_classify changed its inputs"
    ax_img, ax_bar = fig.axes
    assert len(ax_bar.patches) == 10
    heights = [p.get_width() for p in ax_bar.patches]
    assert np.allclose(heights, probs[0].numpy())


def test_view_classify_class_names_and_numpy_input():
    probs = np.full(10, 0.1, dtype=np.float32)
    fig = view_classify(np.zeros((28, 28), np.float32), probs, classes=FASHION_CLASSES)
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == FASHION_CLASSES
    fig = view_classify(torch.rand(3, 8, 8), torch.tensor([0.3, 0.7]), classes=["cat", "dog"])
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["cat", "dog"]


def test_view_classify_does_not_touch_grad_tensors():
    img = torch.rand(1, 28, 28, requires_grad=True)
    logits = torch.randn(1, 10, requires_grad=True)
    view_classify(img, torch.softmax(logits, dim=1))
    assert img.grad is None and img.shape == (1, 28, 28)


@pytest.mark.parametrize("img, probs, message", [
    (torch.rand(1, 28, 28), torch.rand(64, 10).softmax(1), "ONE image"),
    (torch.rand(64, 1, 28, 28), torch.rand(10).softmax(0), "for a batch"),
    (torch.rand(783), torch.rand(10).softmax(0), "not a square image"),
    (torch.rand(1, 28, 28), torch.randn(10).log_softmax(0), "ends in LogSoftmax. From Part 3 on models return logits"),
    (torch.rand(1, 28, 28), torch.randn(10) * 3, r"logits: pass torch\.softmax\(logits, dim=1\)"),
    ("not a tensor", torch.rand(10).softmax(0), "torch.Tensor"),
])
def test_view_classify_explains_wrong_inputs(img, probs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        view_classify(img, probs)


def test_view_classify_takes_logits_when_told():
    logits = torch.randn(1, 10) * 3
    before = logits.clone()
    fig = view_classify(torch.rand(28, 28), logits, logits=True)
    heights = [p.get_width() for p in fig.axes[1].patches]
    assert np.allclose(heights, torch.softmax(logits, dim=1)[0].numpy(), atol=1e-6)
    assert _same(logits, before)


@pytest.mark.parametrize("scores, message", [
    (torch.randn(10).softmax(0), "probabilities already"),  # a model that ends in Softmax
    (torch.randn(10).log_softmax(0), "ends in LogSoftmax"),
])
def test_view_classify_with_logits_names_outputs_that_are_not_logits(scores, message):
    with pytest.raises(ValueError, match=message):
        view_classify(torch.rand(28, 28), scores, logits=True)


def test_view_classify_class_count_mismatch():
    with pytest.raises(ValueError, match="10 probabilities but 2 class names"):
        view_classify(torch.rand(28, 28), torch.rand(10).softmax(0), classes=["a", "b"])


def test_imshow_denormalizes_a_copy():
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    original = torch.rand(3, 16, 16)
    normalized = (original - 0.5) / 0.5
    before = normalized.clone()
    ax = imshow(normalized, mean=mean, std=std)
    shown = ax.get_images()[0].get_array()
    assert np.allclose(np.asarray(shown), original.permute(1, 2, 0).numpy(), atol=1e-6)
    assert _same(normalized, before)


def test_imshow_grey_and_errors():
    ax = imshow(torch.rand(1, 28, 28), normalize=False)
    assert np.asarray(ax.get_images()[0].get_array()).shape == (28, 28)
    with pytest.raises(ValueError, match="images\\[0\\]"):
        imshow(torch.rand(8, 3, 16, 16))


def test_show_batch_grid_and_titles():
    images, labels = torch.rand(10, 3, 16, 16), torch.tensor([0, 1] * 5)
    before = images.clone()
    fig = show_batch(images, labels, classes=["cat", "dog"], n=6, ncols=3, normalize=False)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles == ["cat", "dog", "cat", "dog", "cat", "dog"]
    assert _same(images, before)
    with pytest.raises(ValueError, match="\\(B, C, H, W\\)"):
        show_batch(torch.rand(3, 16, 16))


def test_plot_history_draws_each_curve():
    history = {"train_loss": [1.0, 0.6, 0.4], "test_loss": [1.1, 0.7, 0.8],
               "test_accuracy": [0.5, 0.7, 0.72], "seconds": [1, 1, 1]}
    copy = {k: list(v) for k, v in history.items()}
    fig = plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert {line.get_label() for line in loss_ax.get_lines()} == {"train_loss", "test_loss"}
    assert [line.get_label() for line in acc_ax.get_lines()] == ["test_accuracy"]
    assert history == copy
    with pytest.raises(ValueError, match="loss"):
        plot_history({"seconds": [1.0]})
