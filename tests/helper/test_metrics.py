"""helper.metrics (predictions, confusion matrix, precision, recall) and
helper.plots.plot_confusion_matrix."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn import metrics as skm  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from helper.metrics import confusion_matrix, precision_recall, predict  # noqa: E402
from helper.plots import plot_confusion_matrix  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_confusion_matrix_counts_true_rows_predicted_columns():
    preds = torch.tensor([0, 1, 1, 2, 2, 2])
    labels = torch.tensor([0, 1, 2, 2, 2, 0])
    cm = confusion_matrix(preds, labels, 3)
    assert cm.tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert cm.dtype == torch.int64
    assert cm.sum() == 6 and cm.diagonal().sum() == 4


def test_confusion_matrix_matches_scikit_learn():
    g = torch.Generator().manual_seed(0)
    labels, preds = torch.randint(0, 7, (500,), generator=g), torch.randint(0, 7, (500,), generator=g)
    expected = skm.confusion_matrix(labels.numpy(), preds.numpy(), labels=list(range(7)))
    assert np.array_equal(confusion_matrix(preds, labels, 7).numpy(), expected)


def test_confusion_matrix_rejects_the_top_class_shape_and_bad_indices():
    with pytest.raises(ValueError, match=r"top_class.view\(-1\)"):
        confusion_matrix(torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, dtype=torch.long), 3)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)


def test_precision_recall_match_scikit_learn_including_empty_classes():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 5, (300,), generator=g)
    preds = torch.randint(0, 4, (300,), generator=g)  # class 4 is never predicted
    labels[labels == 3] = 2                           # class 3 never occurs
    precision, recall = precision_recall(confusion_matrix(preds, labels, 5))
    kw = dict(labels=list(range(5)), average=None, zero_division=0)
    assert np.allclose(precision.numpy(), skm.precision_score(labels, preds, **kw))
    assert np.allclose(recall.numpy(), skm.recall_score(labels, preds, **kw))
    assert precision[4] == 0 and recall[3] == 0


def test_precision_recall_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        precision_recall(torch.zeros(3, 4))


def test_predict_collects_in_order_in_eval_mode_and_restores_mode():
    x = torch.randn(10, 3)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))
    model.train()
    preds, labels = predict(model, DataLoader(TensorDataset(x, torch.arange(10) % 4), batch_size=3))
    model.eval()
    assert torch.equal(preds, model(x).argmax(dim=1))
    assert torch.equal(labels, torch.arange(10) % 4)
    model.train()
    predict(model, [(x, torch.zeros(10, dtype=torch.long))])
    assert model.training


def test_predict_runs_under_inference_mode():
    seen = []
    model = nn.Linear(3, 4)
    model.register_forward_hook(lambda module, inputs, output: seen.append(torch.is_inference_mode_enabled()))
    predict(model, [(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))])
    assert seen == [True]


def test_plot_confusion_matrix_writes_counts_and_leaves_input_alone():
    cm = torch.tensor([[5, 1], [2, 7]])
    before = cm.clone()
    fig = plot_confusion_matrix(cm, ["cat", "dog"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["5", "1", "2", "7"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert torch.equal(cm, before)


def test_plot_confusion_matrix_normalized_rows():
    fig = plot_confusion_matrix(np.array([[3, 1], [0, 0]]), normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.75", "0.25", "0.00", "0.00"]


@pytest.mark.parametrize("cm, classes, message", [
    (torch.zeros(3, 4), None, "square"),
    (torch.zeros(3, 3), ["a", "b"], "3 x 3 matrix but 2 class names"),
])
def test_plot_confusion_matrix_explains_wrong_inputs(cm, classes, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(cm, classes)
