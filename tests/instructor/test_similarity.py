"""Similar answers (`make similarity`, instructor/similarity/): copies found through each
disguise, honest and scaffold-only answers not paired, hostile notebooks reported in one line,
the command line and the class report's section. The report on the graded class is tested with
the class, in test_coordinator.py."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from instructor import report
from instructor.course import ROOT, notebook_in, submission_dir
from instructor.similarity import compare, pages
from tests import bench_similarity, fakeanswers

PART = "05-inference-validation"
GID = "accuracy"
HEADER = ('def accuracy(log_ps: torch.Tensor, labels: torch.Tensor) -> float:\n'
          '    """Share of the batch whose most probable class is the label."""\n')
STUB = HEADER + "    # YOUR CODE HERE\n    raise NotImplementedError()\n"
TRAIN_GID = "train_loop"
TRAIN_HEADER = ("def train(model, loader, criterion, optimizer, epochs):\n"
                '    """Train `model`; return the mean loss of each epoch."""\n')

ORIGINAL = HEADER + '''    history = []
    correct, seen = 0, 0
    for chunk in torch.split(log_ps, 16):
        top_p, top_class = chunk.topk(1, dim=1)
        hits = top_class.view(-1) == labels[seen:seen + len(chunk)]
        correct += int(hits.sum())
        seen += len(chunk)
        history.append(correct / seen)
    # the running share, for a plot later
    print("running accuracy", history[-1])
    return correct / max(seen, 1)
'''
DISGUISES = {
    "renamed": HEADER + '''    trace = []
    good, done = 0, 0
    for piece in torch.split(log_ps, 16):
        p, cls = piece.topk(1, dim=1)
        ok = cls.view(-1) == labels[done:done + len(piece)]
        good += int(ok.sum())
        done += len(piece)
        trace.append(good / done)
    print("running accuracy", trace[-1])
    return good / max(done, 1)
''',
    "reordered": HEADER + '''    seen, correct = 0, 0
    history = []
    for chunk in torch.split(log_ps, 16):
        top_p, top_class = chunk.topk(1, dim=1)
        hits = top_class.view(-1) == labels[seen:seen + len(chunk)]
        seen += len(chunk)
        correct += int(hits.sum())
        history.append(correct / seen)
    print("running accuracy", history[-1])
    return correct / max(seen, 1)
''',
    "comments and whitespace": HEADER + '''    # my own work
    history=[]
    correct,seen=0,0

    for chunk in torch.split(log_ps,16):   # batches of 16
        top_p,top_class=chunk.topk(1,dim=1)
        hits=top_class.view(-1)==labels[seen:seen+len(chunk)]

        correct+=int(hits.sum())
        seen+=len(chunk)  # count
        history.append(correct/seen)
    print("running accuracy",history[-1])
    return correct/max(seen,1)
''',
    "strings": HEADER + '''    history = []
    correct, seen = 0, 0
    for chunk in torch.split(log_ps, 16):
        top_p, top_class = chunk.topk(1, dim=1)
        hits = top_class.view(-1) == labels[seen:seen + len(chunk)]
        correct += int(hits.sum())
        seen += len(chunk)
        history.append(correct / seen)
    print('share so far:', history[-1])
    return correct / max(seen, 1)
''',
    "dead code": HEADER + '''    history = []
    debug = len(labels)
    correct, seen = 0, 0
    for chunk in torch.split(log_ps, 16):
        top_p, top_class = chunk.topk(1, dim=1)
        hits = top_class.view(-1) == labels[seen:seen + len(chunk)]
        if False:
            print("never")
        correct += int(hits.sum())
        seen += len(chunk)
        history.append(correct / seen)
    print("running accuracy", history[-1])
    return correct / max(seen, 1)
''',
}
HONEST = {  # independent answers: other idioms, other structure
    "argmax": HEADER + "    return (log_ps.argmax(dim=1) == labels).float().mean().item()\n",
    "loop": HEADER + '''    right = 0
    for row, label in zip(log_ps.tolist(), labels.tolist()):
        best = max(range(len(row)), key=row.__getitem__)
        right += best == label
    return right / len(labels)
''',
    "max": HEADER + '''    _, predicted = torch.max(log_ps, 1)
    matches = torch.eq(predicted, labels).sum()
    return float(matches) / labels.shape[0]
''',
    "sort": HEADER + '''    order = log_ps.sort(dim=1, descending=True).indices
    first = order[:, 0]
    assert first.shape == labels.shape, "one label per row"
    return first.eq(labels).double().mean().item()
''',
}


def make_class(course: Path, answers: dict[str, str | dict | bytes], stub: dict | None = None) -> Path:
    """A course folder: the released scaffold of PART and one submission per student (a source for
    the accuracy cell, a {grade id: source} dict, or raw bytes for a broken file)."""
    answers = {k: v if isinstance(v, (dict, bytes)) else {GID: v} for k, v in answers.items()}
    return fakeanswers.write_class(course, PART, answers, stub or {GID: STUB})


def pair_set(result) -> set[frozenset]:
    return {frozenset((result.subs[p.a].student, result.subs[p.b].student)) for p in result.pairs}


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def disguised(tmp_path_factory):
    """Five disguised copies of one answer, four honest answers, and two untouched notebooks."""
    answers = {"orig": ORIGINAL, **{name.replace(" ", "_"): text for name, text in DISGUISES.items()},
               **HONEST, "blank1": STUB, "blank2": STUB}
    course = make_class(tmp_path_factory.mktemp("course"), answers)
    return pages.run(course, [PART], say=lambda _: None)[PART], course


@pytest.mark.parametrize("disguise", DISGUISES)
def test_copies_are_found_through_each_disguise(disguised, disguise):
    result, _ = disguised
    student = disguise.replace(" ", "_")
    scores = {p.b if result.subs[p.a].student == "orig" else p.a: p.score for p in result.pairs
              if "orig" in (result.subs[p.a].student, result.subs[p.b].student)}
    found = {result.subs[i].student: s for i, s in scores.items()}
    assert student in found, f"the copy with {disguise} changed was not paired with its original: {found}"
    assert found[student] >= 0.8, f"{disguise}: score {found[student]}"


def test_honest_and_scaffold_only_answers_are_not_paired(disguised):
    result, _ = disguised
    copies = {"orig"} | {name.replace(" ", "_") for name in DISGUISES}
    wrong = [pair for pair in pair_set(result) if not pair <= copies]
    assert not wrong, f"independent answers were paired: {wrong}"
    assert len(result.clusters) == 1 and {result.subs[i].student for i in result.clusters[0]} == copies


def test_side_by_side_page_marks_the_matching_lines(disguised):
    result, course = disguised
    page = (course / "report" / "similarity" / PART / "index.html").read_text()
    assert "Nothing here changes a grade" in page
    assert page.count("id='pair-") == len(result.pairs)
    assert "<span class='match'>" in page and "hits.sum()" in page
    rows = read(course / "report" / "similarity" / PART / "pairs.csv")
    assert len(rows) == len(result.pairs) and all(float(r["score"]) >= compare.THRESHOLD for r in rows)
    assert rows == sorted(rows, key=lambda r: -float(r["score"]))
    clusters = read(course / "report" / "similarity" / PART / "clusters.csv")
    assert [int(c["size"]) for c in clusters] == [1 + len(DISGUISES)]


def test_short_answers_everybody_writes_alike_do_not_make_pairs(tmp_path):
    """A one-line answer written the same way by much of the class weighs nothing; identical
    one-liners by two students are not enough evidence either."""
    one_liner = HEADER + "    return (log_ps.argmax(dim=1) == labels).float().mean().item()\n"
    answers = {f"s{i}": one_liner for i in range(12)}
    answers.update({"view1": HEADER + "    x = log_ps.view(-1)\n    return float(x[0])\n",
                    "view2": HEADER + "    y = log_ps.view(-1)\n    return float(y[0])\n"})
    answers.update(HONEST)
    result = pages.run(make_class(tmp_path, answers), [PART], say=lambda _: None)[PART]
    assert not result.pairs, [(result.subs[p.a].student, result.subs[p.b].student, p.score) for p in result.pairs]


def test_scaffold_with_code_is_not_evidence(tmp_path):
    """The released cell's own code (here a loop skeleton every learner starts from) is taken out:
    two learners who only filled in a different line are not paired."""
    scaffold = TRAIN_HEADER + ("    losses = []\n    for epoch in range(epochs):\n        total = 0.0\n"
                               "        for images, labels in loader:\n            optimizer.zero_grad()\n"
                               "            # YOUR CODE HERE\n            raise NotImplementedError()\n"
                               "        losses.append(total / len(loader))\n    return losses\n")
    filled = {
        "a": scaffold.replace("raise NotImplementedError()", "loss = criterion(model(images.flatten(1)), labels)\n"
                              "            loss.backward()\n            optimizer.step()\n"
                              "            total += loss.item()"),
        "b": scaffold.replace("raise NotImplementedError()", "out = model.forward(images.view(len(images), -1))\n"
                              "            cost = criterion(out, labels)\n            cost.backward()\n"
                              "            optimizer.step()\n            total = total + float(cost)"),
        "c": scaffold, "d": scaffold,   # untouched
    }
    course = make_class(tmp_path, {k: {TRAIN_GID: v} for k, v in filled.items()}, stub={TRAIN_GID: scaffold})
    result = pages.run(course, [PART], say=lambda _: None)[PART]
    assert not result.pairs, [(result.subs[p.a].student, result.subs[p.b].student, p.score) for p in result.pairs]
    assert all(not fps for s in result.subs if s.student in "cd" for fps in s.prints.values())


def test_hostile_notebooks_give_one_line_and_the_rest_is_compared(tmp_path):
    answers = {"orig": ORIGINAL, "copy": DISGUISES["renamed"], "honest": HONEST["max"],
               "notjson": b"\x00\xff this is not a notebook {",
               "huge": HEADER + "    x = 1\n" * 20_000,
               "syntax": ORIGINAL.replace("for chunk in", "for chunk in in"),
               "syntax_copy": DISGUISES["renamed"].replace("for piece in", "for piece in in"),
               "deep": HEADER + "    return " + "(" * 5000 + "1" + ")" * 5000 + "\n",
               "list": b"[1, 2, 3]",
               "nometa": b'{"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}}]}'}
    course = make_class(tmp_path, answers)
    (submission_dir(course, "link", PART)).mkdir(parents=True)
    notebook_in(submission_dir(course, "link", PART), PART).symlink_to(
        notebook_in(submission_dir(course, "orig", PART), PART))
    (course / "submitted" / ".logs" / PART).mkdir(parents=True)   # a hidden folder is nobody's work
    result = pages.run(course, [PART], say=lambda _: None)[PART]
    assert {frozenset(("orig", "copy")), frozenset(("syntax", "syntax_copy"))} == pair_set(result), \
        "answers that do not parse are still compared (token by token): copies of a broken answer are paired"
    problems = {r["student"]: r["reason"] for r in read(course / "report" / "similarity" / PART / "problems.csv")}
    assert "not JSON" in problems["notjson"]
    assert "characters (limit" in problems["huge"]
    assert "does not parse (line" in problems["syntax"]
    assert "token by token" in problems["deep"]
    assert "not a notebook" in problems["list"]
    assert "no answer cell" in problems["nometa"]
    assert "symbolic link" in problems["link"]
    assert all("\n" not in reason and len(reason) <= 300 for reason in problems.values())
    assert not {"orig", "copy", "honest"} & set(problems)
    assert sorted(s.student for s in result.subs) == sorted([*answers, "link"]), \
        "every submission is in the report, readable or not"


def test_command_line(tmp_path):
    """`python -m instructor similarity --part P` (what `make similarity PART=P` runs)."""
    course = make_class(tmp_path, {"orig": ORIGINAL, "copy": DISGUISES["reordered"], "honest": HONEST["loop"]})
    (course / "nbgrader_config.py").write_text("")
    proc = subprocess.run([sys.executable, "-m", "instructor", "--course", str(course), "similarity", "--part", PART,
                           "--out", "sim"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{PART}: 3 submission(s), 1 similar pair(s), 1 cluster(s), 0 problem(s)" in proc.stdout
    rows = read(course / "sim" / PART / "pairs.csv")
    assert [{r["student_a"], r["student_b"]} for r in rows] == [{"orig", "copy"}]
    bad = subprocess.run([sys.executable, "-m", "instructor", "--course", str(course), "similarity", "--part", "99-x"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and "unknown part" in bad.stderr


def test_class_report_has_the_section(tmp_path):
    """`make report` links each part's similarity page; the gradebook is not touched by it."""
    from tests.instructor.test_report import new_course

    course = new_course(tmp_path)
    make_class(course, {"orig": ORIGINAL, "copy": DISGUISES["strings"], "honest": HONEST["sort"]})
    before = (course / "gradebook.db").read_bytes()
    index = report.build(course, say=lambda *_: None)
    page = index.read_text()
    assert "<h2>Similar answers</h2>" in page and f"similarity/{PART}/index.html" in page
    assert (index.parent / "similarity" / PART / "index.html").exists()
    assert (course / "gradebook.db").read_bytes() == before, "the similarity report must not change grades"


def test_generator_smoke():
    """The benchmark's generator: every answer parses, independent ones differ, copies are planted."""
    import ast

    for part in fakeanswers.EXERCISES:
        sources, family = fakeanswers.synthetic_class(part, 40, copies=0.1, seed=3)
        assert len(sources) == 40 and len(set(family)) == 36
        for text in sources:
            ast.parse(text)
    r = bench_similarity.measure("05-inference-validation", 60, 0.1, 0, compare.THRESHOLD)
    assert r["copies"] == 6 and r["found"] >= 5 and r["false_positive_rate"] <= 0.05, r
