"""helper.plots.plot_grad_flow: one line per layer on a log scale, inputs untouched,
wrong inputs explained."""

import matplotlib

matplotlib.use("Agg")

import warnings  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helper.plots import plot_grad_flow  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _lines(fig):
    ax = fig.axes[0]
    return ax, ax.get_lines()


def test_list_of_steps_one_line_per_layer_log_scale():
    history = [[0.01, 1.0], [0.02, 0.5], [0.005, 0.25]]  # 3 steps, 2 layers
    fig = plot_grad_flow(history, layer_names=["fc1", "fc2"], title="sigmoid")
    ax, lines = _lines(fig)
    assert len(lines) == 2
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fc1", "fc2"]
    assert np.allclose(lines[0].get_ydata(), [0.01, 0.02, 0.005])
    assert np.allclose(lines[1].get_xdata(), [1, 2, 3])
    assert ax.get_title() == "sigmoid"


@pytest.mark.parametrize("make", [np.array, torch.tensor])
def test_arrays_and_tensors_are_left_untouched(make):
    history = make([[0.1, 0.2, 0.3], [0.0, 0.5, 0.6]])
    before = history.copy() if isinstance(history, np.ndarray) else history.clone()
    fig = plot_grad_flow(history)
    _, lines = _lines(fig)
    assert [line.get_label() for line in lines] == ["layer 1", "layer 2", "layer 3"]
    assert (history == before).all()
    assert lines[0].get_ydata()[1] > 0, "a zero gradient is drawn at the bottom, not dropped"


def test_nested_list_is_not_mutated_and_grad_tensor_accepted():
    history = [[0.1, 0.2], [0.3, 0.4]]
    plot_grad_flow(history)
    assert history == [[0.1, 0.2], [0.3, 0.4]]
    t = torch.rand(5, 2, requires_grad=True)
    plot_grad_flow(t)
    assert t.grad is None


def test_dict_of_layers_uses_its_keys():
    fig = plot_grad_flow({"first": [0.1, 0.2], "last": torch.tensor([1.0, 2.0])})
    ax, lines = _lines(fig)
    assert [line.get_label() for line in lines] == ["first", "last"]
    assert np.allclose(lines[1].get_ydata(), [1.0, 2.0])


def test_draws_on_given_axes():
    fig, axes = plt.subplots(1, 2)
    out = plot_grad_flow([[1.0, 2.0]], ax=axes[1])
    assert out is fig and len(axes[1].get_lines()) == 2 and not axes[0].get_lines()


def test_all_zeros_draw_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_grad_flow(np.zeros((4, 2)))


@pytest.mark.parametrize("history, kwargs, message", [
    ([0.1, 0.2, 0.3], {}, "one value per layer at every step"),
    ([[0.1, 0.2], [0.3]], {}, "every step the same length"),
    ([], {}, "empty"),
    ({}, {}, "empty dict"),
    ({"a": [1.0, 2.0], "b": [1.0]}, {}, "one value per step"),
    ([[0.1, -0.2]], {}, "cannot be negative"),
    ([[0.1, float("nan")]], {}, "NaN"),
    ([[0.1, 0.2]], {"layer_names": ["only one"]}, "2 layers in grad_history but 1 layer names"),
    (np.zeros((2, 2, 2)), {}, "shape \\(steps, layers\\)"),
])
def test_wrong_inputs_are_explained(history, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_grad_flow(history, **kwargs)
