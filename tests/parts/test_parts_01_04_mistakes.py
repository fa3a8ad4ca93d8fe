"""Classic mistakes in Parts 1-4 get a visible test message that names them.

Each case runs, in this process (no kernel), the part's import cell, the learner's answers
(the solution's, with one answer replaced by a typical mistake) and the test cell as the
learner sees it (hidden tests removed, as nbgrader releases it). The test cell must fail with
an AssertionError whose message names the mistake. Honest variants of an answer (a plain
``tqdm`` progress bar, prints, warnings) must pass, and a mistake in one exercise must not fail
the test of another.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from instructor.course import ROOT

_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n", re.S | re.M)


def _notebook(part: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)


def _cell(nb, grade_id: str) -> str:
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source
    raise KeyError(grade_id)


def _python(source: str) -> str:
    """A cell's source as plain Python: IPython magics dropped, solution markers removed."""
    lines = [line for line in source.splitlines()
             if not line.lstrip().startswith("%") and line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
    return "\n".join(lines) + "\n"


def visible(test_source: str) -> str:
    """The test cell as released to learners: the hidden block removed, like nbgrader does."""
    return _HIDDEN.sub("", test_source + "\n")


def run_cells(part: str, answers: dict[str, str], test_id: str, hidden: bool = False) -> dict:
    """Run the import cell, the answers (grade id -> source; the solution's by default) and
    the test cell ``test_id`` in one namespace; returns the namespace."""
    nb = _notebook(part)
    codes = [c for c in nb.cells if c.cell_type == "code"]
    imports = codes[1].source  # codes[0] is the course setup cell
    namespace: dict = {"__name__": "__main__"}
    exec(compile(_python(imports), f"{part}:imports", "exec"), namespace)
    for grade_id, source in answers.items():
        exec(compile(_python(source if source is not None else _cell(nb, grade_id)), grade_id, "exec"), namespace)
    test = _cell(nb, test_id)
    exec(compile(_python(test if hidden else visible(test)), test_id, "exec"), namespace)
    return namespace


def message_of(part: str, answers: dict[str, str], test_id: str) -> str:
    with pytest.raises(AssertionError) as info:
        run_cells(part, answers, test_id)
    return str(info.value)


# ----------------------------------------------------------------------------- Part 1

P1 = "01-tensors"
SIGMOID = "def activation(x):\n    return 1 / (1 + torch.exp(-x))\n"


def test_p1_view_on_a_transpose_is_named():
    msg = message_of(P1, {"columns_first": "def columns_first(x):\n    return x.T.view(-1)\n"}, "test_columns_first")
    assert "not contiguous" in msg and "reshape" in msg, msg


def test_p1_view_taken_for_a_transpose_is_named():
    msg = message_of(P1, {"columns_first": "def columns_first(x):\n"
                                           "    return x.view(x.shape[1], x.shape[0]).reshape(-1)\n"},
                     "test_columns_first")
    assert "do not transpose" in msg, msg


def test_p1_missing_hidden_activation_is_named():
    wrong = "def multilayer(features, W1, B1, W2, B2):\n    return activation((features @ W1 + B1) @ W2 + B2)\n"
    msg = message_of(P1, {"activation": SIGMOID, "multilayer": wrong}, "test_multilayer")
    assert "hidden layer needs its activation" in msg, msg


def test_p1_a_wrong_activation_costs_only_its_own_exercise():
    wrong = "def activation(x):\n    return torch.exp(-x)\n"
    assert message_of(P1, {"activation": wrong}, "test_activation")
    for answer, test in [("neuron", "test_neuron"), ("multilayer", "test_multilayer")]:
        namespace = run_cells(P1, {"activation": wrong, answer: None}, test, hidden=True)
        assert namespace["activation"] is not None and namespace["activation"](torch_zero()) == 1.0, \
            "the test must give the learner's activation back"


@pytest.mark.parametrize(("answer", "named"), [
    ("return images[(labels == k).nonzero()]", "nonzero() gives (n, 1) indices"),
    ("return labels[labels == k]", "expected those images, shape (3, 2, 2)"),
    ("return images[labels != k]", "expected those images, shape (3, 2, 2)"),
    ("return images[:3]", "expected images 0, 2 and 4"),
])
def test_p1_mask_mistakes_are_named(answer, named):
    msg = message_of(P1, {"examples_of": f"def examples_of(images, labels, k):\n    {answer}\n"}, "test_examples_of")
    assert named in msg, msg


def test_p1_mask_answer_with_other_names_passes():
    honest = "def examples_of(images, labels, k):\n    keep = labels.eq(k)\n    return images[keep].clone()\n"
    run_cells(P1, {"examples_of": honest}, "test_examples_of", hidden=True)


@pytest.mark.parametrize("answer", ["return torch.sigmoid(x)", "return x.sigmoid()",
                                    "return torch.special.expit(x)", "return torch.nn.Sigmoid()(x)",
                                    "import torch.nn.functional as F\n    return F.sigmoid(x)"])
def test_p1_activation_that_calls_the_built_in_sigmoid_is_named(answer):
    for hidden in (False, True):  # the learner sees the message; grading keeps the same guard
        with pytest.raises(AssertionError) as info:
            run_cells(P1, {"activation": f"def activation(x):\n    {answer}\n"}, "test_activation", hidden=hidden)
        assert "torch.sigmoid is what you are re-creating" in str(info.value), info.value


@pytest.mark.parametrize("answer", [
    "return tuple(torch.broadcast_shapes(a, b))",
    "return tuple((torch.zeros(a) + torch.zeros(b)).shape)",
    "import torch as t\n    return tuple(getattr(t, 'broadcast_' + 'shapes')(a, b))",
    # under other names: NumPy's rule, other factories, ATen's operators, the private spelling
    "import numpy\n    return tuple(numpy.broadcast_shapes(a, b))",
    "return tuple((torch.full(a, 0.0) + torch.full(b, 0.0)).shape)",
    "return tuple(torch.ops.aten.add(torch.ops.aten.rand(a), torch.ops.aten.rand(b)).shape)",
    "import numpy\n    return (numpy.empty(a) + numpy.empty(b)).shape",
    # another library's rule: ONNX's shape inference for an Add node (no torch, no NumPy runs)
    "from onnx import TensorProto as T, helper as h, shape_inference as si\n"
    "    io = [h.make_tensor_value_info(n, T.FLOAT, list(s)) for n, s in (('x', a), ('y', b))]\n"
    "    g = h.make_graph([h.make_node('Add', ['x', 'y'], ['z'])], 'g', io, "
    "[h.make_tensor_value_info('z', T.FLOAT, None)])\n"
    "    out = si.infer_shapes(h.make_model(g), strict_mode=True).graph.output[0]\n"
    "    return tuple(d.dim_value for d in out.type.tensor_type.shape.dim)",
])
def test_p1_broadcast_shape_that_asks_torch_is_named(answer):
    wrong = f"def broadcast_shape(a, b):\n    try:\n        {answer.replace(chr(10), chr(10) + '    ')}\n" \
            "    except RuntimeError:\n        return None\n"
    for hidden in (False, True):
        with pytest.raises(AssertionError) as info:
            run_cells(P1, {"broadcast_shape": wrong}, "test_broadcast_shape", hidden=hidden)
        assert "torch.broadcast_shapes (or NumPy's, or adding two tensors or arrays of those shapes) is what you " \
            "are re-creating, and no other library may work it out for you" in str(info.value), info.value


def test_p1_the_visible_multilayer_test_spells_no_answer_and_names_the_value():
    """The near-miss and the right value are stored numbers, not the forward pass written out."""
    test = visible(_cell(_notebook(P1), "test_multilayer"))
    assert "torch.sigmoid(torch.sigmoid(" not in test and "@ w2" not in test, test
    wrong = "def multilayer(features, W1, B1, W2, B2):\n    return activation(features @ W1 @ W2 + B2)\n"
    msg = message_of(P1, {"activation": SIGMOID, "multilayer": wrong}, "test_multilayer")
    assert "expected 0.3171" in msg, msg


def test_p1_a_view_of_the_transpose_gets_the_hint_without_the_raw_error_first():
    with pytest.raises(AssertionError) as info:
        run_cells(P1, {"columns_first": "def columns_first(x):\n    return x.T.view(-1)\n"}, "test_columns_first")
    assert info.value.__cause__ is None and info.value.__suppress_context__, "raise the hint from None"


def test_p1_a_reference_answer_that_returns_the_tests_expected_value_fails_the_hidden_test():
    """The hidden test calls broadcast_shape before it works out what to compare with."""
    oracle = ("def broadcast_shape(a, b):\n"
              "    found = globals().get('expected', 'unset')\n"
              "    return (64, 2) if a == (64, 2) else (5, 3) if a in ((5, 3), (5, 1)) and b != (5,) else None "
              "if b == (5,) else found\n")
    run_cells(P1, {"broadcast_shape": oracle}, "test_broadcast_shape")  # the visible cases: literals
    with pytest.raises(AssertionError):
        run_cells(P1, {"broadcast_shape": oracle}, "test_broadcast_shape", hidden=True)


def torch_zero():
    import torch

    return torch.tensor(0.0)


# ----------------------------------------------------------------------------- Part 2

P2 = "02-neural-networks"


def test_p2_missing_relus_are_named():
    no_relu = '''
class ReLUNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        return F.softmax(self.fc3(self.fc2(self.fc1(x))), dim=1)
'''
    msg = message_of(P2, {"relu_network": no_relu}, "test_relu_network")
    assert "F.relu" in msg and "collapse" in msg, msg


def test_p2_softmax_without_keepdim_is_named():
    wrong = "def softmax(x):\n    exp = torch.exp(x)\n    return exp / exp.sum(dim=1)\n"
    msg = message_of(P2, {"softmax": wrong}, "test_softmax")
    assert "keepdim=True" in msg and "(64, 1)" in msg, msg


def test_p2_in_place_initialisation_without_no_grad_is_named():
    wrong = '''
def build_classifier():
    model = nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(784, 128)), ("relu1", nn.ReLU()), ("fc2", nn.Linear(128, 64)), ("relu2", nn.ReLU()),
        ("output", nn.Linear(64, 10)), ("softmax", nn.Softmax(dim=1))]))
    model.fc1.bias.zero_()
    model.fc1.weight.normal_(std=0.01)
    return model
'''
    with pytest.raises(AssertionError) as info:
        run_cells(P2, {"build_classifier": wrong}, "test_build_classifier")
    msg = str(info.value)
    assert "with torch.no_grad():" in msg and "in-place" in msg, msg
    assert info.value.__cause__ is None and info.value.__suppress_context__, "the hint comes first: from None"


@pytest.mark.parametrize("answer", ["return torch.softmax(x, dim=1)", "return x.softmax(dim=1)",
                                    "return F.softmax(x, dim=1)", "return nn.Softmax(dim=1)(x)",
                                    "return torch.log_softmax(x, dim=1).exp()",
                                    "return torch.special.softmax(x, 1)",
                                    # under other names: the private spelling, ATen's operators
                                    "return torch._softmax(x, 1, False)",
                                    "return torch.ops.aten._softmax.default(x, 1, False)",
                                    "return torch.ops.aten.softmax(x, 1)",
                                    "return torch._log_softmax(x, 1, False).exp()"])
def test_p2_softmax_that_calls_the_built_in_is_named(answer):
    for hidden in (False, True):
        with pytest.raises(AssertionError) as info:
            run_cells(P2, {"softmax": f"def softmax(x):\n    {answer}\n"}, "test_softmax", hidden=hidden)
        assert "torch.softmax is what you are re-creating" in str(info.value), info.value


def test_p2_softmax_over_the_wrong_dimension_is_named():
    wrong = "def softmax(x):\n    exp = torch.exp(x)\n    return exp / exp.sum(dim=0, keepdim=True)\n"
    assert "each ROW should sum to 1" in message_of(P2, {"softmax": wrong}, "test_softmax")


def test_p2_the_visible_relu_test_spells_no_forward():
    test = visible(_cell(_notebook(P2), "test_relu_network"))
    assert "net.fc3(" not in test and "torch.relu(" not in test and "torch.softmax(" not in test, test


def test_p2_a_relu_after_the_last_layer_is_caught():
    wrong = '''
class ReLUNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)

    def forward(self, x):
        return F.softmax(F.relu(self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))), dim=1)
'''
    assert "none after fc3" in message_of(P2, {"relu_network": wrong}, "test_relu_network")


def test_p2_relu_network_with_layers_made_in_another_order_passes():
    honest = '''
class ReLUNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc3 = nn.Linear(64, 10)
        self.fc2 = nn.Linear(128, 64)
        self.fc1 = nn.Linear(784, 128)

    def forward(self, x):
        return torch.softmax(self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x))))), dim=1)
'''
    run_cells(P2, {"relu_network": honest}, "test_relu_network", hidden=True)


# ----------------------------------------------------------------------------- Part 3

P3 = "03-training"
TRAIN = '''
def train(model, loader, criterion, optimizer, epochs):
    epoch_losses = []
    for epoch in range(epochs):
        running_loss = 0.0
        for images, labels in tqdm(loader):
            {flatten}
            {zero_grad}
            loss = criterion(model(images), labels)
            loss.backward()
            {step}
            running_loss += loss.item()
        epoch_losses.append(running_loss / len(loader))
        print(f"epoch {{epoch + 1}}: mean loss {{epoch_losses[-1]:.3f}}")
    return epoch_losses
'''


def train_source(flatten=True, zero_grad=True, step=True, header=""):
    return header + TRAIN.format(flatten="images = images.view(images.shape[0], -1)" if flatten else "pass",
                                 zero_grad="optimizer.zero_grad()" if zero_grad else "pass",
                                 step="optimizer.step()" if step else "pass")


def test_p3_missing_zero_grad_is_named():
    msg = message_of(P3, {"train_loop": train_source(zero_grad=False)}, "test_train_loop")
    assert "optimizer.zero_grad()" in msg and "never cleared" in msg, msg


def test_p3_missing_step_is_named():
    msg = message_of(P3, {"train_loop": train_source(step=False)}, "test_train_loop")
    assert "optimizer.step()" in msg and "never change" in msg, msg


def test_p3_forgotten_flatten_is_explained():
    msg = message_of(P3, {"train_loop": train_source(flatten=False)}, "test_train_loop")
    assert "mat1 and mat2" in msg and "flatten" in msg and "images.view(images.shape[0], -1)" in msg, msg


@pytest.mark.parametrize("old, new", [
    # backward() twice in one step
    ("            loss.backward()\n", "            loss.backward()\n            loss.backward()\n"),
    # the loss of the first batch reused for every step: one graph, many backward()s
    ("            loss = criterion(model(images), labels)\n",
     "            loss = loss if epoch or running_loss else criterion(model(images), labels)\n"),
])
def test_p3_backward_through_a_used_graph_is_named_without_retain_graph(old, new):
    wrong = train_source()
    assert old in wrong
    msg = message_of(P3, {"train_loop": wrong.replace(old, new)}, "test_train_loop")
    assert "backward() ran twice through one graph" in msg and "loss.backward() once" in msg, msg
    assert "Do not add retain_graph=True" in msg, msg


def test_p3_fixed_batch_size_is_caught_with_the_flatten_hint():
    wrong = train_source().replace("images.view(images.shape[0], -1)", "images.view(64, -1)")
    msg = message_of(P3, {"train_loop": wrong}, "test_train_loop")
    assert "images.shape[0]" in msg, msg


@pytest.mark.parametrize("norm", ["layer.weight.grad.norm().item()",
                                  "torch.linalg.vector_norm(layer.weight.grad).item()"])
def test_p3_grad_norms_that_forget_the_missing_gradient_are_named(norm):
    wrong = ("def grad_norms(model):\n"
             f"    return [{norm} for layer in model.modules() if isinstance(layer, nn.Linear)]\n")
    msg = message_of(P3, {"grad_norms": wrong}, "test_grad_norms")
    assert ".grad is None" in msg and "0.0" in msg, msg


RELU_NET = """
torch.manual_seed(0)
relu_net = nn.Sequential(nn.Linear(2, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, 3){last})
"""


@pytest.mark.parametrize("last", [", nn.LogSoftmax(dim=1)", ", nn.Softmax(dim=1)"])
def test_p3_relu_net_that_ends_in_a_softmax_is_named(last):
    """From Part 3 on models return logits: a LogSoftmax before CrossEntropyLoss is the old convention."""
    answers = {"grad_norms": None, "hyper": "HIDDEN, STEPS, LR = 50, 500, 0.5\n",
               "relu_spiral": RELU_NET.format(last=last)}
    msg = message_of(P3, answers, "test_relu_spiral")
    assert "return logits" in msg and "LogSoftmax" in msg and "CrossEntropyLoss" in msg, msg


BACKWARD = "            loss.backward()\n"


def test_p3_train_that_calls_helpers_fit_is_named():
    wrong = ("def train(model, loader, criterion, optimizer, epochs):\n"
             "    from helper.train import fit\n"
             "    flat = nn.Sequential(nn.Flatten(), model)\n"
             "    return fit(flat, loader, criterion, optimizer, epochs, device='cpu', progress=False)['train_loss']\n")
    for hidden in (False, True):
        with pytest.raises(AssertionError) as info:
            run_cells(P3, {"train_loop": wrong}, "test_train_loop", hidden=hidden)
        assert "helper.train.fit is what you are re-creating" in str(info.value), info.value


@pytest.mark.parametrize("flatten", [False, True])
def test_p3_train_loop_hints_come_first(flatten):
    """The named mistake is raised from None: no PyTorch traceback above it."""
    wrong = train_source(flatten=flatten)
    if flatten:
        wrong = wrong.replace(BACKWARD, BACKWARD * 2)
    with pytest.raises(AssertionError) as info:
        run_cells(P3, {"train_loop": wrong}, "test_train_loop")
    assert info.value.__cause__ is None and info.value.__suppress_context__, info.value


def test_p3_the_mnist_training_cell_names_the_course_fix_before_pytorchs_advice():
    """The cell that trains on MNIST after Exercise 2: a double backward gets the course's fix, not
    PyTorch's 'specify retain_graph=True'."""
    import torch

    nb = _notebook(P3)
    cell = next(c.source for c in nb.cells if c.get("id") == "b3d9874d")
    wrong = train_source().replace(BACKWARD, BACKWARD * 2)
    namespace = {"__name__": "__main__"}
    codes = [c for c in nb.cells if c.cell_type == "code"]
    exec(compile(_python(codes[1].source), "imports", "exec"), namespace)
    exec(compile(_python(wrong), "train_loop", "exec"), namespace)
    namespace.update(EPOCHS=1, LEARNING_RATE=0.01, MOMENTUM=0.9, trainloader=torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))), batch_size=8))
    with pytest.raises(RuntimeError) as info:
        exec(compile(cell, "b3d9874d", "exec"), namespace)
    msg = str(info.value)
    assert msg.startswith("train (Exercise 2) ran backward() twice") and "not with retain_graph=True" in msg, msg
    assert info.value.__suppress_context__, "the course's message must come first, without PyTorch's advice above it"


def test_p3_a_mean_over_images_instead_of_batches_is_named():
    """The visible test's last batch holds 2 images of 42, so weighting by batch size shows."""
    wrong = train_source().replace("running_loss += loss.item()", "running_loss += loss.item() * labels.shape[0]") \
        .replace("running_loss / len(loader)", "running_loss / len(loader.dataset)")
    assert "the exercise asks for the mean per batch" in message_of(P3, {"train_loop": wrong}, "test_train_loop")


def test_p3_the_cells_after_exercise_4_name_it_when_it_is_unfinished():
    nb = _notebook(P3)
    for cell_id in ("fa7076ef", "90d75fea", "7caa9b21"):
        source = next(c.source for c in nb.cells if c.get("id") == cell_id)
        with pytest.raises(AssertionError, match="finish Exercise 4 first"):
            exec(compile(source, cell_id, "exec"), {"__name__": "__main__"})


def test_p4_the_training_cell_names_exercise_1_when_there_is_no_model():
    source = next(c.source for c in _notebook(P4).cells if c.get("id") == "55b9b627")
    with pytest.raises(AssertionError, match="finish Exercise 1 first"):
        exec(compile(source, "55b9b627", "exec"), {"__name__": "__main__"})


def test_p3_grad_norms_in_reverse_order_are_named():
    wrong = ("def grad_norms(model):\n    return [0.0 if layer.weight.grad is None else "
             "layer.weight.grad.norm().item() for layer in model.modules() if isinstance(layer, nn.Linear)][::-1]\n")
    assert "first layer first" in message_of(P3, {"grad_norms": wrong}, "test_grad_norms")


def test_p3_the_visible_grad_norms_test_computes_no_norm():
    test = visible(_cell(_notebook(P3), "test_grad_norms"))
    assert "vector_norm" not in test and ".norm(" not in test, test


def _spiral_namespace(nb) -> dict:
    """Part 3's imports, a small spiral (X, y) and its training helpers (train_spiral), as the
    notebook has them before Exercise 4."""
    namespace = {"__name__": "__main__"}
    codes = [c for c in nb.cells if c.cell_type == "code"]
    exec(compile(_python(codes[1].source), "imports", "exec"), namespace)
    namespace["X"], namespace["y"] = namespace["make_spiral"](10, seed=0)
    helpers = next(c.source for c in nb.cells if c.get("id") == "de1e6fb2")
    exec(compile(helpers, "de1e6fb2", "exec"), namespace)
    return namespace


def test_p3_an_unfinished_grad_norms_is_named_by_exercise_4s_test():
    """train_spiral calls Exercise 3's grad_norms: Exercise 4's test names Exercise 3, not a NameError."""
    stub = "def grad_norms(model):\n    raise NotImplementedError()\n"
    answers = {"grad_norms": stub, "hyper": "HIDDEN, STEPS, LR = 50, 500, 0.5\n",
               "relu_spiral": RELU_NET.format(last="") + "relu_history = train_spiral(relu_net, X, y, STEPS, LR)\n"}
    nb = _notebook(P3)
    namespace = _spiral_namespace(nb)
    for grade_id, source in answers.items():
        try:
            exec(compile(_python(source), grade_id, "exec"), namespace)
        except NotImplementedError:
            assert grade_id == "relu_spiral"
    with pytest.raises(AssertionError) as info:
        exec(compile(_python(visible(_cell(nb, "test_relu_spiral"))), "test_relu_spiral", "exec"), namespace)
    assert "Finish Exercise 3" in str(info.value), info.value


@pytest.mark.parametrize(("history", "named"), [
    ("relu_history = []", "one entry per training step (500)"),
    ("relu_history = [type(m) for m in relu_net.modules()]", "one entry per training step (500)"),
    # the right shape, made up: the visible test passes, the hidden one compares with the gradients
    # training left on relu_net
    ("relu_history = [[1.0] * 5] * STEPS", "what train_spiral returned for relu_net"),
])
def test_p3_a_relu_history_that_is_not_the_training_history_is_named(history, named):
    """Exercise 4 keeps train_spiral's gradient history for the plot that follows: any other list is
    named (its length and shape by the visible test, made-up values by the hidden one)."""
    nb = _notebook(P3)
    namespace = _spiral_namespace(nb)
    answers = {"grad_norms": _cell(nb, "grad_norms"), "hyper": "HIDDEN, STEPS, LR = 50, 500, 0.5\n",
               "relu_spiral": RELU_NET.format(last="") + "train_spiral(relu_net, X, y, STEPS, LR)\n" + history}
    for grade_id, source in answers.items():
        exec(compile(_python(source), grade_id, "exec"), namespace)
    with pytest.raises(AssertionError, match=re.escape(named)):
        exec(compile(_python(_cell(nb, "test_relu_spiral")), "test_relu_spiral", "exec"), namespace)


def test_p3_honest_loop_with_plain_tqdm_and_prints_passes_quietly(capfd):
    """Plain tqdm writes its bar to stderr, which nbgrader counts as a failed test cell."""
    honest = train_source(header="import sys\nfrom tqdm import tqdm\n").replace(
        "            loss.backward()\n",
        "            loss.backward()\n            print('a note on stderr', file=sys.stderr)\n")
    namespace = run_cells(P3, {"train_loop": honest}, "test_train_loop", hidden=True)
    assert namespace["tqdm"].__module__ == "tqdm.std", "the honest loop uses the plain tqdm"
    err = capfd.readouterr().err
    assert err == "", f"the test cell let the learner's stderr through: {err[:300]!r}"


# ----------------------------------------------------------------------------- Part 4

P4 = "04-fashion-mnist"
MODEL = '''
torch.manual_seed(7)
model = nn.Sequential({flatten}nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10){last})
criterion = {criterion}
optimizer = optim.Adam(model.parameters(), lr=0.001)
'''


def model_source(flatten=True, last="", criterion="nn.CrossEntropyLoss()"):
    return MODEL.format(flatten="nn.Flatten(), " if flatten else "", last=last, criterion=criterion)


def test_p4_honest_model_passes():
    run_cells(P4, {"model_criterion_optimizer": model_source()}, "test_model_criterion_optimizer", hidden=True)


@pytest.mark.parametrize("criterion", ["nn.CrossEntropyLoss()", "nn.NLLLoss()"])
def test_p4_softmax_output_is_named(criterion):
    msg = message_of(P4, {"model_criterion_optimizer": model_source(last=", nn.Softmax(dim=1)", criterion=criterion)},
                     "test_model_criterion_optimizer")
    assert "ends in a softmax" in msg and "return logits" in msg and "CrossEntropyLoss" in msg, msg


@pytest.mark.parametrize("criterion", ["nn.CrossEntropyLoss()", "nn.NLLLoss()"])
def test_p4_log_softmax_output_is_named(criterion):
    """The old convention: a model that still ends in LogSoftmax, with either loss."""
    answer = model_source(last=", nn.LogSoftmax(dim=1)", criterion=criterion)
    msg = message_of(P4, {"model_criterion_optimizer": answer}, "test_model_criterion_optimizer")
    assert "nn.LogSoftmax" in msg and "return logits" in msg and "CrossEntropyLoss applies the log-softmax" in msg, msg


def test_p4_nll_loss_on_logits_is_named():
    msg = message_of(P4, {"model_criterion_optimizer": model_source(criterion="nn.NLLLoss()")},
                     "test_model_criterion_optimizer")
    assert "NLLLoss on logits" in msg and "nn.CrossEntropyLoss()" in msg, msg


def test_p4_missing_flatten_is_explained():
    msg = message_of(P4, {"model_criterion_optimizer": model_source(flatten=False)}, "test_model_criterion_optimizer")
    assert "mat1 and mat2" in msg and "nn.Flatten()" in msg, msg


def test_p4_accuracy_of_the_last_batch_only_is_named():
    wrong = '''
def loader_accuracy(model, loader):
    with torch.inference_mode():
        for images, labels in loader:
            share = (model(images).argmax(dim=1) == labels).float().mean().item()
    return share
'''
    msg = message_of(P4, {"loader_accuracy": wrong}, "test_loader_accuracy")
    assert "last batch only" in msg, msg


def test_p4_accuracy_averaged_over_batches_is_named():
    """The visible test's batches are 4, 4 and 2 images: a mean of the batches' shares is off."""
    wrong = '''
def loader_accuracy(model, loader):
    shares = []
    with torch.inference_mode():
        for images, labels in loader:
            shares.append((model(images).argmax(dim=1) == labels).float().mean().item())
    return sum(shares) / len(shares)
'''
    msg = message_of(P4, {"loader_accuracy": wrong}, "test_loader_accuracy")
    assert "mean of the three batches' accuracies" in msg, msg


@pytest.mark.parametrize("answer", [
    "from helper.train import evaluate\n    return evaluate(model, loader)['accuracy']",
    "import helper.metrics as m\n    p, t = m.predict(model, loader)\n    return (p == t).float().mean().item()",
    "from helper.metrics import accuracy\n    xs, ys = zip(*loader)\n"
    "    return accuracy(torch.cat([model(x) for x in xs]), torch.cat(ys))",
])
def test_p4_accuracy_that_hands_the_loop_to_helper_is_named(answer):
    for hidden in (False, True):
        with pytest.raises(AssertionError) as info:
            run_cells(P4, {"loader_accuracy": f"def loader_accuracy(model, loader):\n    {answer}\n"},
                      "test_loader_accuracy", hidden=hidden)
        assert "helper.train.evaluate (and helper.metrics' accuracy and predict) is what you are re-creating" \
            in str(info.value), info.value


def test_p4_the_trained_model_test_names_exercise_1_when_there_is_no_model():
    msg = message_of(P4, {}, "test_trained_model")
    assert "finish Exercise 1" in msg, msg


def test_p4_the_trained_model_test_holds_no_accuracy_loop():
    test = visible(_cell(_notebook(P4), "test_trained_model"))
    assert "argmax" not in test and "for " not in test, test


def test_p4_a_model_that_cannot_flatten_gets_the_hint_first():
    with pytest.raises(AssertionError) as info:
        run_cells(P4, {"model_criterion_optimizer": model_source(flatten=False)}, "test_model_criterion_optimizer")
    assert info.value.__cause__ is None and info.value.__suppress_context__, "raise the hint from None"


PROBABILITIES = '''
def probabilities(model, images):
    with torch.inference_mode():
        logits = model(images)
    return {result}
'''


@pytest.mark.parametrize("result, named", [
    ("torch.log_softmax(logits, dim=1)", "never negative"),      # the old log-probabilities
    ("torch.exp(logits)", "torch.exp alone"),                    # the old torch.exp(logps), on logits
    ("torch.softmax(logits, dim=0)", "softmax over dim=0"),      # across the batch
    ("logits", "never negative"),                                # no softmax at all
])
def test_p4_probabilities_mistakes_are_named(result, named):
    msg = message_of(P4, {"probabilities": PROBABILITIES.format(result=result)}, "test_probabilities")
    assert named in msg, msg


def test_p4_probabilities_under_no_grad_passes_too():
    honest = PROBABILITIES.format(result="torch.softmax(logits, dim=1)").replace("torch.inference_mode()",
                                                                                  "torch.no_grad()")
    run_cells(P4, {"probabilities": honest}, "test_probabilities", hidden=True)


def test_p4_a_broken_probabilities_costs_only_its_own_exercise():
    broken = "def probabilities(model, images):\n    raise NotImplementedError()\n"
    namespace = run_cells(P4, {"probabilities": broken, "loader_accuracy": None}, "test_loader_accuracy", hidden=True)
    with pytest.raises(NotImplementedError):
        namespace["probabilities"](None, None)


PRECISION_RECALL = '''
def precision_recall(cm):
    hits, predicted, actual = {cast}.diagonal(), cm.sum(dim=0), cm.sum(dim=1)  # column, row sums
    return {result}
'''


@pytest.mark.parametrize("cast, result, named", [
    ("cm.float()", "hits / actual.clamp(min=1), hits / predicted.clamp(min=1)", "divides by the COLUMN sum"),
    ("cm.float()", "hits / predicted, hits / actual", "not nan"),  # 0 / 0 for a class never seen
    ("cm", "hits // predicted.clamp(min=1), hits // actual.clamp(min=1)", "float tensors"),
])
def test_p4_precision_recall_mistakes_are_named(cast, result, named):
    msg = message_of(P4, {"precision_recall": PRECISION_RECALL.format(cast=cast, result=result)},
                     "test_precision_recall")
    assert named in msg, msg


@pytest.mark.parametrize("answer", ["return helper.metrics.precision_recall(cm)",
                                    "from helper.metrics import precision_recall as pr\n    return pr(cm.clone())"])
def test_p4_precision_recall_that_calls_helper_is_named(answer):
    for hidden in (False, True):
        with pytest.raises(AssertionError) as info:
            run_cells(P4, {"precision_recall": f"import helper.metrics\ndef precision_recall(cm):\n    {answer}\n"},
                      "test_precision_recall", hidden=hidden)
        assert "helper.metrics.precision_recall is what you are re-creating" in str(info.value), info.value


def test_p4_precision_recall_with_nan_to_num_passes_too():
    honest = PRECISION_RECALL.format(cast="cm.float()",
                                     result="torch.nan_to_num(hits / predicted), torch.nan_to_num(hits / actual)")
    run_cells(P4, {"precision_recall": honest}, "test_precision_recall", hidden=True)


# ----------------------------------------------------------------------------- every part

WRONG_FIXES = ("weights_only=False", "retain_graph=True")  # what PyTorch's own messages suggest


def test_no_test_message_recommends_a_wrong_fix():
    """A test cell may name weights_only=False or retain_graph=True only to warn against it.

    Saving the model object surfaces as PyTorch's weights_only error and a second backward() as
    'specify retain_graph=True'; both fixes hide the real mistake. Every string constant in a
    graded test cell (the messages) that mentions one must say not to use it.
    """
    import ast

    parts = sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists())
    mentions = 0
    for part in parts:
        for cell in _notebook(part).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if not grade_id.startswith("test_"):
                continue
            for node in ast.walk(ast.parse(_python(cell.source))):
                if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                    continue
                for fix in WRONG_FIXES:
                    for found in re.finditer(re.escape(fix), node.value):
                        mentions += 1
                        before = node.value[max(0, found.start() - 25):found.start()].lower()
                        assert re.search(r"\b(not|never|without)\b", before), \
                            f"{part}, {grade_id}: a message recommends {fix}: {node.value!r}"
    assert mentions >= 2, "the warnings against weights_only=False and retain_graph=True are gone"
