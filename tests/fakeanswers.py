"""Fake answers for the similarity benchmark and tests: a synthetic class of honestly independent
answers to four of the course's exercises, with planted copies.

    synthetic_class(part, students, copies=0.1, seed=0) -> (sources, family)
    write_class(course, part, {student: answer}, scaffold)    a course folder of submissions

For Part 3's training loop, Part 4's model, criterion and optimizer, Part 5's accuracy and Part
6's save_checkpoint the writer draws each *structural* choice on its own (which library call or
idiom computes each step, loops or tensor operations, a helper function or not, optional checks,
hidden sizes, the optimizer, ...) and each *cosmetic* one (names, comments, print messages, blank
lines, the order of statements that do not depend on each other). No two independent answers make
the same structural choices: they are different programs, not the same text renamed. A planted
copy keeps the structure of the answer it copies and draws new cosmetics (every name, comment,
message, blank line and independent order changes) plus one to three statements of dead code.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

# ---------------------------------------------------------------------------
# A tiny program writer: structural choices from one generator, cosmetics from another
# ---------------------------------------------------------------------------

NAMES = {
    "pred": ["pred", "preds", "predicted", "top_class", "guess", "y_hat", "classes", "best", "choice", "winner"],
    "eq": ["equals", "correct", "hits", "matches", "same", "right", "ok", "is_right", "good", "agree"],
    "n": ["n", "total", "count", "size", "num", "batch_size", "how_many", "m", "length", "n_items"],
    "ps": ["ps", "probs", "p", "probabilities", "prob", "exp_ps", "likelihood", "scores", "soft", "dist"],
    "x": ["images", "x", "inputs", "batch", "imgs", "data", "xb", "pics", "features", "samples"],
    "y": ["labels", "y", "targets", "yb", "truth", "classes_true", "answers", "lbl", "gt", "target"],
    "out": ["output", "out", "logits", "log_ps", "scores", "result", "pred_out", "logps", "y_pred", "forward_out"],
    "loss": ["loss", "batch_loss", "l", "cost", "err", "objective", "the_loss", "step_loss", "value", "j"],
    "run": ["running_loss", "total_loss", "epoch_loss", "acc_loss", "sum_loss", "tot", "s", "loss_sum", "cum", "agg"],
    "hist": ["losses", "history", "epoch_losses", "curve", "record", "out_losses", "per_epoch", "log", "means", "hist"],
    "e": ["epoch", "e", "ep", "i", "epoch_idx", "k", "it", "round_", "pass_", "t"],
    "seen": ["seen", "batches", "steps", "nb", "count_batches", "done", "num_batches", "visited", "b", "iters"],
    "ckpt": ["checkpoint", "ckpt", "state", "payload", "blob", "to_save", "saved", "bundle", "record", "data"],
    "model": ["model", "net", "classifier", "network", "clf", "mlp", "fashion_net", "my_model", "the_net", "m"],
    "layers": ["layers", "modules", "stack", "parts", "blocks", "seq", "items", "pieces", "body", "chain"],
    "h": ["hidden", "sizes", "widths", "units", "dims", "hidden_sizes", "hs", "layer_sizes", "neurons", "shape"],
    "helper": ["_flat", "flatten_batch", "prep", "_prepare", "to_vectors", "reshape_batch", "_f", "squash", "vec",
               "pre"],
    "dead": ["unused", "tmp", "debug", "dummy", "scratch", "spare", "old", "backup", "temp_val", "junk"],
}
COMMENTS = ["# compute it", "# TODO: check", "# forward pass", "# the main step", "# as in the lecture",
            "# see the docs", "# keep this", "# works", "# helper", "# update", "# careful with shapes",
            "# done", "# per batch", "# faster", "# note", "# simple version"]
MESSAGES = ["epoch {e}: loss {v:.3f}", "Epoch {e} - {v:.4f}", "[{e}] mean loss = {v:.3f}", "e{e} {v}",
            "after epoch {e} the loss is {v:.3f}", "loss({e})={v:.2f}"]


@dataclass
class Writer:
    """Writes one answer: ``pick`` draws a structural choice (recorded), names and cosmetics come
    from a separate generator."""

    structure: random.Random
    cosmetic: random.Random
    disguise: bool = False
    choices: list = field(default_factory=list)
    names: dict = field(default_factory=dict)

    def pick(self, options):
        i = self.structure.randrange(len(options))
        self.choices.append(i)
        return options[i]

    def yes(self, p: float = 0.5) -> bool:
        return self.pick([False, True]) if p == 0.5 else bool(self.pick([False] * 4 + [True] * int(4 * p / (1 - p))))

    def name(self, role: str) -> str:
        if role not in self.names:
            used = set(self.names.values())
            self.names[role] = self.cosmetic.choice([n for n in NAMES[role] if n not in used])
        return self.names[role]

    def shuffled(self, *groups: list[str]) -> list[str]:
        """Statements (each a list of lines) that do not depend on each other, in a random order."""
        groups = [g for g in groups if g]
        self.cosmetic.shuffle(groups)
        return [line for g in groups for line in g]

    def comment(self) -> list[str]:
        return [self.cosmetic.choice(COMMENTS)] if self.cosmetic.random() < 0.3 else []

    def message(self, e: str, v: str) -> str:
        return "f" + json.dumps(self.cosmetic.choice(MESSAGES).replace("{e}", "{" + e + "}").replace("{v", "{" + v))

    def dead(self) -> str:
        """A statement of dead code (a planted copy's disguise)."""
        d = self.name("dead")
        return self.cosmetic.choice([f"{d} = 0", f"{d} = len({self.anchor})", f"if False:\n    print({d!r})",
                                     f"{d} = [{self.anchor}]", f"_ = {self.anchor}"])

    def finish(self, header: list[str], body: list[str], indent: str = "    ") -> str:
        """The answer cell: ``header`` (the scaffold) then ``body`` indented, with cosmetics."""
        lines = list(header)
        dead_at = set()
        if self.disguise:
            dead_at = {self.cosmetic.randrange(len(body)) for _ in range(self.cosmetic.randint(1, 3))}
        for i, line in enumerate(body):
            margin = indent + line[:len(line) - len(line.lstrip())]
            if i in dead_at and line.strip() and not line.lstrip().startswith(("else", "elif", "except")):
                lines.append(margin + self.dead().replace("\n", "\n" + margin))
            lines += [margin + c for c in self.comment()]
            lines.append(indent + line.replace("\n", "\n" + indent))
            if self.cosmetic.random() < 0.1:
                lines.append("")
        return "\n".join(lines) + "\n"

    anchor: str = "[]"     # what the dead code mentions (an argument of the exercise)


def _ind(lines: list[str], n: int = 1) -> list[str]:
    return ["    " * n + line.replace("\n", "\n" + "    " * n) for line in lines]


# ---------------------------------------------------------------------------
# Part 5: accuracy
# ---------------------------------------------------------------------------

ACCURACY_HEADER = ['def accuracy(log_ps: torch.Tensor, labels: torch.Tensor) -> float:',
                   '    """Share of the batch whose most probable class is the label."""']


def accuracy(w: Writer) -> str:
    p, q, n, lp, y = w.name("pred"), w.name("eq"), w.name("n"), "log_ps", "labels"
    w.anchor = y
    body: list[str] = []
    checks = w.pick([[], [f"assert {lp}.shape[0] == {y}.shape[0]"], [f"assert len({lp}) == len({y}), 'sizes differ'"],
                     [f"if {lp}.dim() != 2:\n    raise ValueError('expected (B, K)')"]])
    fix = w.pick([[], [f"{y} = {y}.view(-1)"], [f"{y} = {y}.reshape(-1)"], [f"{y} = {y}.flatten()"]])
    src = lp
    if w.yes():
        ps = w.name("ps")
        body += [f"{ps} = " + w.pick([f"torch.exp({lp})", f"{lp}.exp()", f"torch.softmax({lp}, dim=1)",
                                        f"F.softmax({lp}, dim=1)"])]
        src = ps
    pred = w.pick([
        [f"_, {p} = {src}.topk(1, dim=1)", f"{p} = {p}.view({y}.shape)"],
        [f"_, {p} = torch.topk({src}, 1, dim=1)", f"{p} = {p}.squeeze(1)"],
        [f"{p} = {src}.topk(1, dim=1)[1][:, 0]"],
        [f"{p} = {src}.argmax(dim=1)"], [f"{p} = torch.argmax({src}, 1)"], [f"{p} = {src}.argmax(1)"],
        [f"{p} = {src}.max(dim=1).indices"], [f"_, {p} = torch.max({src}, 1)"], [f"{p} = {src}.max(1)[1]"],
        [f"{p} = {src}.sort(dim=1, descending=True).indices[:, 0]"],
    ])
    if w.yes(0.3):
        pred = pred + [f"{p} = {p}.cpu()"]
    cmp_ = w.pick([f"{p} == {y}", f"torch.eq({p}, {y})", f"{p}.eq({y})", f"({p} - {y}) == 0", f"{y} == {p}"])
    n_expr = w.pick([f"len({y})", f"{y}.shape[0]", f"{y}.size(0)", f"{y}.numel()", f"{lp}.shape[0]"])
    style = w.pick(["mean", "sum", "loop", "gen", "count"])
    if style == "mean":
        tail = [f"{q} = {cmp_}"] + [w.pick([f"return {q}.float().mean().item()",
                                             f"return torch.mean({q}.float()).item()",
                                             f"return float({q}.double().mean())",
                                             f"return {q}.to(torch.float32).mean().item()"])]
    elif style == "sum":
        tail = [f"{q} = ({cmp_}).sum().item()", f"{n} = {n_expr}", f"return {q} / {n}"]
        if w.yes():
            tail = [f"{q} = torch.sum({cmp_})", f"return float({q}) / {n_expr}"]
    elif style == "loop":
        tail = [f"{q} = 0", f"for a, b in zip({p}.tolist(), {y}.tolist()):",
                w.pick(["    if a == b:\n        " + f"{q} += 1", f"    {q} += int(a == b)", f"    {q} += a == b"]),
                f"return {q} / {n_expr}"]
    elif style == "gen":
        tail = [f"{q} = sum(1 for a, b in zip({p}, {y}) if a == b)", f"return {q} / {n_expr}"]
    else:
        tail = [f"{q} = ({cmp_}).nonzero().shape[0]", f"{n} = {n_expr}", f"return {q} / max({n}, 1)"]
    inner = fix + pred
    if w.yes(0.25):
        body_lines = checks + ["with torch.no_grad():"] + _ind(w.shuffled(*[[x] for x in body + inner])) \
            + _ind(tail)
    else:
        body_lines = checks + w.shuffled(*[[x] for x in body]) + inner + tail
    return w.finish(ACCURACY_HEADER, body_lines)


# ---------------------------------------------------------------------------
# Part 3: the training loop
# ---------------------------------------------------------------------------

TRAIN_HEADER = ['def train(model: nn.Module, loader, criterion, optimizer: optim.Optimizer, epochs: int) -> list:',
                '    """Train `model` on `loader` for `epochs` epochs; return the mean loss of each epoch."""']


def train(w: Writer) -> str:
    x, y, out, loss, run, hist, e, seen = (w.name(r) for r in ("x", "y", "out", "loss", "run", "hist", "e", "seen"))
    w.anchor = "loader"
    flat = w.pick([f"{x} = {x}.view({x}.shape[0], -1)", f"{x} = {x}.reshape({x}.size(0), -1)",
                   f"{x} = {x}.flatten(1)", f"{x} = torch.flatten({x}, start_dim=1)", f"{x} = {x}.view(-1, 784)",
                   f"{x} = {x}.reshape(len({x}), 28 * 28)"])
    helper: list[str] = []
    if w.yes(0.3):
        h = w.name("helper")
        helper = [f"def {h}(t):", "    return " + flat.split(" = ", 1)[1].replace(x, "t")]
        flat = f"{x} = {h}({x})"
    zero = w.pick(["optimizer.zero_grad()", "optimizer.zero_grad(set_to_none=True)", "model.zero_grad()"])
    zero_first = w.yes()
    fwd = w.pick([f"{out} = model({x})", f"{out} = model.forward({x})", f"{out} = model({x}.float())"])
    add_loss = w.pick([f"{run} += {loss}.item()", f"{run} += float({loss})", f"{run} += {loss}.detach().item()",
                       f"{run} = {run} + {loss}.item()"])
    batches = w.pick(["len(loader)", seen])
    count = [f"{seen} += 1"] if batches == seen else []
    iterate = w.pick([f"for {x}, {y} in loader:", f"for {x}, {y} in tqdm(loader):",
                      f"for {x}, {y} in tqdm(loader, desc=f'epoch {{{e} + 1}}'):",
                      f"for _, ({x}, {y}) in enumerate(loader):", f"for batch in loader:\n    {x}, {y} = batch"])
    step = [fwd, f"{loss} = criterion({out}, {y})", f"{loss}.backward()", "optimizer.step()"]
    step = ([zero] + step) if zero_first else (step + [zero])
    inner_pre = [flat] if not w.yes(0.2) else [flat, f"{y} = {y}.long()"]
    if not zero_first:
        inner_pre = [zero] + inner_pre if w.yes(0.2) else inner_pre
    inner = inner_pre + step + w.shuffled([add_loss], count)
    store = w.pick(["append", "prealloc", "dict", "batchlist"])
    mean = f"{run} / {batches}"
    reset = w.shuffled([f"{run} = 0.0" if w.yes() else f"{run} = 0"], [f"{seen} = 0"] if count else [])
    if store == "batchlist":
        inner = inner_pre + step + [f"{run}.append({loss}.item())"]
        reset = [f"{run} = []"]
        mean = w.pick([f"sum({run}) / len({run})", f"statistics.mean({run})", f"float(np.mean({run}))"])
    epoch_loop = w.pick([f"for {e} in range(epochs):", f"for {e} in range(1, epochs + 1):",
                         f"{e} = 0\nwhile {e} < epochs:"])
    if store == "prealloc":
        init, save, ret = [f"{hist} = [0.0] * epochs"], [f"{hist}[{e}] = {mean}"], f"return {hist}"
        if "1, epochs" in epoch_loop:
            save = [f"{hist}[{e} - 1] = {mean}"]
    elif store == "dict":
        init, save, ret = [f"{hist} = {{'loss': []}}"], [f"{hist}['loss'].append({mean})"], f"return {hist}['loss']"
    else:
        init, save, ret = [f"{hist} = []"], [f"{hist}.append({mean})"], f"return {hist}"
    if w.yes(0.4):
        save.append(f"print({w.message(e, hist + '[-1]' if store != 'dict' else mean)})")
    epoch_body = ([] if not w.yes(0.3) else ["model.train()"]) + reset + [iterate] \
        + _ind(inner) + save
    if "while" in epoch_loop:
        epoch_body.append(f"{e} += 1")
    body = helper + init + epoch_loop.split("\n") + _ind(epoch_body) + [ret]
    return w.finish(TRAIN_HEADER, body)


# ---------------------------------------------------------------------------
# Part 4: model, criterion, optimizer
# ---------------------------------------------------------------------------

MODEL_HEADER = ["torch.manual_seed(7)"]
HIDDEN = [[256, 128, 64], [512, 256, 128], [256, 128], [128, 64], [512, 128], [400, 200, 100], [300, 100],
          [512, 256, 128, 64], [256], [1024, 256]]


def _model_class(w: Writer, m: str, widths: list[int], act: str, drop, logsoft: bool) -> list[str]:
    """Part 4's model as an ``nn.Module`` subclass (one of :func:`model`'s styles)."""
    fn = {"nn.ReLU()": "F.relu", "nn.LeakyReLU()": "F.leaky_relu", "nn.ELU()": "F.elu", "nn.GELU()": "F.gelu",
          "nn.Tanh()": "torch.tanh"}[act]
    pairs = enumerate(zip(widths, widths[1:] + [10], strict=True), 1)
    init = ["super().__init__()"] + w.shuffled(*[[f"self.fc{i} = nn.Linear({a}, {b})"] for i, (a, b) in pairs])
    if drop:
        init.append(f"self.drop = nn.Dropout({drop})")
    fwd = [w.pick(["x = x.view(x.shape[0], -1)", "x = x.flatten(1)", "x = torch.flatten(x, 1)"])]
    for i in range(1, len(widths)):
        fwd.append(f"x = {fn}(self.fc{i}(x))" if not drop else f"x = self.drop({fn}(self.fc{i}(x)))")
    fwd.append(f"return F.log_softmax(self.fc{len(widths)}(x), dim=1)" if logsoft
               else f"return self.fc{len(widths)}(x)")
    cls = w.pick(["Classifier", "Net", "FashionNet", "MLP"])
    return [f"class {cls}(nn.Module):", "    def __init__(self):"] + _ind(init, 2) \
        + ["", "    def forward(self, x):"] + _ind(fwd, 2) + [f"{m} = {cls}()"]


def model(w: Writer) -> str:
    m, h, layers = w.name("model"), w.name("h"), w.name("layers")
    w.anchor = "[]"
    sizes = w.pick(HIDDEN)
    act = w.pick(["nn.ReLU()", "nn.LeakyReLU()", "nn.ELU()", "nn.GELU()", "nn.Tanh()"])
    drop = w.pick([None, 0.2, 0.25, 0.3, 0.5])
    logsoft = w.yes()
    style = w.pick(["literal", "loop", "ordered", "class"])
    widths = [784] + sizes
    body: list[str] = []
    if style == "literal":
        items = ["nn.Flatten()"] if w.yes() else []
        for a, b in zip(widths, widths[1:], strict=False):
            items += [f"nn.Linear({a}, {b})", act] + ([f"nn.Dropout({drop})"] if drop else [])
        items += [f"nn.Linear({widths[-1]}, 10)"] + (["nn.LogSoftmax(dim=1)"] if logsoft else [])
        body = [f"{m} = nn.Sequential(" + ",\n    ".join(items) + ")"]
    elif style == "loop":
        body = [f"{h} = [784] + {sizes!r}" if w.yes() else f"{h} = {widths!r}", f"{layers} = [nn.Flatten()]",
                f"for a, b in zip({h}[:-1], {h}[1:]):",
                "    " + w.pick([f"{layers} += [nn.Linear(a, b), {act}]",
                                 f"{layers}.extend([nn.Linear(a, b), {act}])",
                                 f"{layers}.append(nn.Linear(a, b))\n    {layers}.append({act})"])]
        if drop:
            body.append(f"    {layers}.append(nn.Dropout(p={drop}))")
        body += [f"{layers}.append(nn.Linear({h}[-1], 10))"]
        if logsoft:
            body.append(f"{layers}.append(nn.LogSoftmax(dim=1))")
        body.append(f"{m} = nn.Sequential(*{layers})")
    elif style == "ordered":
        items = []
        for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False), 1):
            items += [f"('fc{i}', nn.Linear({a}, {b}))", f"('act{i}', {act})"]
            if drop:
                items.append(f"('drop{i}', nn.Dropout({drop}))")
        items.append(f"('out', nn.Linear({widths[-1]}, 10))")
        if logsoft:
            items.append("('log_softmax', nn.LogSoftmax(dim=1))")
        body = [f"{m} = nn.Sequential(OrderedDict([" + ",\n    ".join(items) + "]))"]
    else:
        body = _model_class(w, m, widths, act, drop, logsoft)
    crit = "nn.NLLLoss()" if logsoft else w.pick(["nn.CrossEntropyLoss()", "torch.nn.CrossEntropyLoss()"])
    lr = w.pick(["0.001", "0.003", "1e-3", "0.01", "3e-4", "0.002"])
    opt = w.pick([f"optim.Adam({m}.parameters(), lr={lr})", f"optim.SGD({m}.parameters(), lr={lr}, momentum=0.9)",
                  f"optim.AdamW({m}.parameters(), lr={lr})", f"torch.optim.Adam(params={m}.parameters(), lr={lr})",
                  f"optim.RMSprop({m}.parameters(), lr={lr})"])
    body += w.shuffled(["criterion = " + crit], [])
    body.append("optimizer = " + opt)
    return w.finish(MODEL_HEADER, body, indent="")


# ---------------------------------------------------------------------------
# Part 6: save_checkpoint
# ---------------------------------------------------------------------------

SAVE_HEADER = ["def save_checkpoint(model: Network, optimizer: optim.Optimizer, epoch: int, path) -> None:",
               '    """Save architecture, weights, optimizer (name and state) and epoch to `path`."""']


def save(w: Writer) -> str:
    c = w.name("ckpt")
    w.anchor = "path"
    name = w.pick(["type(optimizer).__name__", "optimizer.__class__.__name__", "optimizer.__class__.__qualname__",
                   "str(type(optimizer).__name__)"])
    arch = w.pick(["architecture(model)", "dict(architecture(model))",
                   "{'input_size': model.hidden_layers[0].in_features, 'output_size': model.output.out_features, "
                   "'hidden_layers': [l.out_features for l in model.hidden_layers], 'drop_p': model.dropout.p}"])
    weights = w.pick(["model.state_dict()", "{k: v.cpu() for k, v in model.state_dict().items()}",
                      "copy.deepcopy(model.state_dict())", "OrderedDict(model.state_dict())"])
    ostate = w.pick(["optimizer.state_dict()", "copy.deepcopy(optimizer.state_dict())"])
    ep = w.pick(["epoch", "int(epoch)"])
    entries = [("architecture", arch), ("state_dict", weights), ("optimizer", name),
               ("optimizer_state", ostate), ("epoch", ep)]
    body: list[str] = []
    path = "path"
    if w.yes(0.4):
        p = w.pick(["Path(path)", "os.fspath(path)", "str(path)", "pathlib.Path(path)"])
        body.append(f"target = {p}")
        path = "target"
        if w.yes() and "ath(" in p:
            body.append("target.parent.mkdir(parents=True, exist_ok=True)")
    form = w.pick(["literal", "dict", "steps", "update"])
    if form == "literal":
        body.append(f"{c} = {{" + ", ".join(f"'{k}': {v}" for k, v in entries) + "}")
    elif form == "dict":
        body.append(f"{c} = dict(" + ", ".join(f"{k}={v}" for k, v in entries) + ")")
    elif form == "steps":
        body.append(f"{c} = {{}}")
        body += w.shuffled(*[[f"{c}['{k}'] = {v}"] for k, v in entries])
    else:
        body.append(f"{c} = {{'epoch': {ep}}}")
        body.append(f"{c}.update(" + ", ".join(f"{k}={v}" for k, v in entries[:-1]) + ")")
    body.append(w.pick([f"torch.save({c}, {path})", f"torch.save(obj={c}, f={path})",
                        f"with open({path}, 'wb') as fh:\n    torch.save({c}, fh)"]))
    if w.yes(0.3):
        body.append(w.pick(["return None", f"print('saved to', {path})",
                            f"print(f'saved epoch {{epoch}} to {{{path}}}')"]))
    return w.finish(SAVE_HEADER, body)


STUB = "\n    # YOUR CODE HERE\n    raise NotImplementedError()"
EXERCISES = {  # part -> (grade id, generator, scaffold cell)
    "03-training": ("train_loop", train, "\n".join(TRAIN_HEADER) + STUB),
    "04-fashion-mnist": ("model_criterion_optimizer", model, "\n".join(MODEL_HEADER) + STUB.replace("    ", "")),
    "05-inference-validation": ("accuracy", accuracy, "\n".join(ACCURACY_HEADER) + STUB),
    "06-saving-loading": ("save_checkpoint", save, "\n".join(SAVE_HEADER) + STUB),
}


def _distance(a: list[int], b: tuple[int, ...]) -> int:
    """How many structural choices two answers make differently (a choice one of them never made counts)."""
    return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))


def synthetic_class(part: str, students: int, copies: float = 0.1, seed: int = 0,
                    distinct: bool = True) -> tuple[list[str], list[int]]:
    """``students`` answers to ``part``'s exercise: independent ones and about ``copies`` of them
    planted copies. Returns (sources, family): answers with the same family number are copies of
    one another. No two independent answers make the same structural choices; with ``distinct``
    (quadratic: for classes of hundreds) any two differ in at least two of them."""
    _, make, _ = EXERCISES[part]
    rng = random.Random(f"{part}-{seed}")
    n_copies = round(students * copies)
    sources, family, plans, seen = [], [], [], set()
    while len(sources) < students - n_copies:
        s = rng.getrandbits(64)
        w = Writer(random.Random(s), random.Random(rng.getrandbits(64)))
        text = make(w)
        if tuple(w.choices) in seen or (distinct and any(_distance(w.choices, c) < 2 for c in seen)):
            continue  # the same program again, or one choice away from one: not an independent answer
        seen.add(tuple(w.choices))
        plans.append(s)
        family.append(len(sources))
        sources.append(text)
    for _ in range(n_copies):
        original = rng.randrange(len(plans))
        w = Writer(random.Random(plans[original]), random.Random(rng.getrandbits(64)), disguise=True)
        sources.append(make(w))
        family.append(original)
    order = list(range(len(sources)))
    rng.shuffle(order)
    return [sources[i] for i in order], [family[i] for i in order]


def notebook(cells: dict[str, str]) -> dict:
    """A notebook of answer cells ({grade id: source}), with nbgrader's metadata."""
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": gid, "execution_count": None, "outputs": [], "source": source,
         "metadata": {"nbgrader": {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3,
                                   "solution": True, "task": False}}} for gid, source in cells.items()]}


def write_class(course: Path, part: str, answers: dict[str, dict[str, str] | bytes], scaffold: dict[str, str]) -> Path:
    """A course folder: ``part``'s released notebook (``scaffold``: {grade id: source}) and one
    submission per student (its answer cells, or raw bytes for a file that is not a notebook)."""
    released = course / "notebooks" / part / f"{part}.ipynb"
    released.parent.mkdir(parents=True, exist_ok=True)
    released.write_text(json.dumps(notebook(scaffold)))
    for student, answer in answers.items():
        path = course / "submitted" / student / part / f"{part}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(answer if isinstance(answer, bytes) else json.dumps(notebook(answer)).encode())
    return course
