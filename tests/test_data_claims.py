"""Every number the notebooks state about their data holds on the FULL data sets learners download.

The course's tests run the notebooks on small samples, but learners download MNIST and
Fashion-MNIST (60,000 training and 10,000 test images each) and the cats-and-dogs photos
(3,680 training and 3,669 test, about two dogs for every cat). Each claim below quotes a
notebook's text (a markdown or code cell, found by its id) and says what the number is
computed from. The test

- finds the quote in the solution notebook (edit the prose, and the claim here must follow),
- finds it in the audit, ``docs/data-claims.md`` (one line per data-dependent statement),
- runs the notebook's OWN data cells (imports, settings, loading and splitting) on fake data
  sets with the full sizes and class counts (``tests.fakedata.FULL_SIZES``, blank content: sizes
  and labels are all these claims need) and checks the number against what they compute.

Claims about how well a model learns (a loss, an accuracy) need the real images and are in
the audit as unchecked; claims about run time are measured by ``make bench-learner``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests import fakedata

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ROOT / "docs" / "data-claims.md"
# The fake data this file needs is its own, full-size one (the `full_data` fixture), not the
# session's small one.
pytestmark = pytest.mark.course_data()


@dataclass(frozen=True)
class Claim:
    part: str
    cell: str                  # the id of the cell that states it
    quote: str                 # its words (whitespace-insensitive)
    cells: tuple[str, ...]     # the notebook's code cells that compute it, run in order ("!": a line of code)
    actual: Callable[[dict], object]  # the number, from the namespace those cells leave
    expected: object

    def __str__(self):
        return f"{self.part}:{self.cell}:{self.quote[:40]}"


def share(ns_value) -> float:
    from helper.data import majority_share

    return round(majority_share(ns_value), 2)


P2 = ("6ec874a7", "02eb2275")                   # Part 2: imports, MNIST + loader
P3 = ("3025cc71", "20083f9c")                   # Part 3: imports, MNIST + loader
P4 = ("a40a73b5", "b74a7d1b", "b1609b48")       # Part 4: imports, data, EPOCHS
P5 = ("d8989fe6", "7ac36aa3", "fbf51a00")       # Part 5: imports, settings, data + split
P5_QUICK = ("d8989fe6", "7ac36aa3", "!quick = True", "fbf51a00")  # ... with the quick setting on
P6 = ("828206c5", "498b61dd", "28ed3744")       # Part 6: imports, settings, data + split
P7 = ("008a3573", "d9d57306", "64718c37")       # Part 7: imports, cats_and_dogs(), ImageFolder
P7_TEST = (*P7, "08395174")                     # ... and the tiny-photo train and test sets
P7_DIGITS = ("008a3573", "20150fbd")            # Part 7: the MNIST digits for MLP against CNN
P8 = ("b63e40c6", "!data_dir = cats_and_dogs()", "fe3dac31", "d56440fc", "c723e98b")  # Part 8: data, samples


def mnist_test(ns):
    from torchvision import datasets

    return len(datasets.MNIST(ns["DATA_ROOT"], train=False))


CLAIMS = [
    Claim("02-neural-networks", "810d7361", "MNIST holds 70,000 greyscale images", P2,
          lambda ns: len(ns["trainset"]) + mnist_test(ns), 70_000),
    Claim("02-neural-networks", "f0b05480", "The full training set has 60,000 images.", P2,
          lambda ns: len(ns["trainset"]), 60_000),
    Claim("03-training", "6c9b096a", "On the full MNIST training set (60,000 images:", P3,
          lambda ns: len(ns["trainset"]), 60_000),
    Claim("03-training", "6c9b096a", "938 batches of 64 per epoch, the last one smaller", P3,
          lambda ns: (len(ns["trainloader"]), len(ns["trainset"]) % 64 != 0), (938, True)),
    Claim("04-fashion-mnist", "cd4c7b24", "10,000 images the network never trains on", P4,
          lambda ns: len(ns["testset"]), 10_000),
    Claim("04-fashion-mnist", "d5de78f4", "The full data set has 60,000 training and 10,000 test images.", P4,
          lambda ns: (len(ns["trainset"]), len(ns["testset"])), (60_000, 10_000)),
    Claim("04-fashion-mnist", "b7f8a0d5", "On the full 60,000 images that is 3 epochs (180,000 images seen", P4,
          lambda ns: (len(ns["trainset"]), ns["EPOCHS"], ns["EPOCHS"] * len(ns["trainset"])), (60_000, 3, 180_000)),
    Claim("04-fashion-mnist", "a7baf767", "chance is 10 %", P4,
          lambda ns: share(ns["testset"]), 0.10),
    Claim("05-inference-validation", "a9645759", "48,000 once the validation set is split off", P5,
          lambda ns: (len(ns["full_trainset"]), len(ns["trainset"])), (60_000, 48_000)),
    Claim("05-inference-validation", "6fb5f4d8", "Fifteen epochs over the 48,000 training images", P5,
          lambda ns: (ns["epochs"], len(ns["trainset"])), (15, 48_000)),
    Claim("05-inference-validation", "72eb040e", "This part trains three models on 48,000 images.", P5,
          lambda ns: len(ns["trainset"]), 48_000),
    Claim("05-inference-validation", "72eb040e", "the models then learn from 6,000 of the training images", P5_QUICK,
          lambda ns: len(ns["full_trainset"]), 6_000),
    Claim("05-inference-validation", "a9645759", "`quick = True` keeps 6,000 of the 60,000 training images", P5_QUICK,
          lambda ns: (len(ns["full_trainset"]), len(ns["full_trainset"].dataset)), (6_000, 60_000)),
    Claim("05-inference-validation", "a9645759", "(4,800 for training and 1,200 for validation once split)",
          P5_QUICK, lambda ns: (len(ns["trainset"]), len(ns["valset"])), (4_800, 1_200)),
    Claim("05-inference-validation", "a9645759", "every epoch goes through a tenth of the images", P5_QUICK,
          lambda ns: len(ns["trainset"]) / (len(ns["full_trainset"].dataset) * (1 - ns["val_fraction"])), 0.1),
    Claim("05-inference-validation", "a9645759", "The test set stays whole.", P5_QUICK,
          lambda ns: len(ns["testset"]), 10_000),
    Claim("05-inference-validation", "352696de", "About one in ten, a guess among ten classes.", P5,
          lambda ns: (share(ns["testset"]), len(ns["testset"].classes)), (0.10, 10)),
    Claim("05-inference-validation", "7ea45528", "a validation set of `len(valset)` images (12,000 from", P5,
          lambda ns: len(ns["valset"]), 12_000),
    Claim("06-saving-loading", "fd4d077d", "Fashion-MNIST again, with Part 5's split", P6,
          lambda ns: (len(ns["trainset"]), len(ns["valset"])), (48_000, 12_000)),
    Claim("06-saving-loading", "fd4d077d", "Five epochs over the 48,000 training images", P6,
          lambda ns: (ns["epochs"], len(ns["trainset"])), (5, 48_000)),
    Claim("07-loading-image-data", "9d37a3a4", "the full photos hold about two dogs for every cat", P7_TEST,
          lambda ns: round(ns["pixels_test"].targets.count(1) / ns["pixels_test"].targets.count(0)), 2),
    Claim("07-loading-image-data", "9d37a3a4", 'always saying "dog" is right about 0.68 of the time', P7_TEST,
          lambda ns: (ns["pixels_test"].classes[1], share(ns["pixels_test"])), ("dog", 0.68)),
    Claim("07-loading-image-data", "bda166fa", "(always the more common class: {majority_share(y_test):.2f})",
          P7_TEST, lambda ns: share(ns["pixels_test"]), 0.68),
    Claim("07-loading-image-data", "86db7d7a", "Decoding all 7,349 photos once", P7_TEST,
          lambda ns: len(ns["pixels_train"]) + len(ns["pixels_test"]), 7_349),
    Claim("07-loading-image-data", "83879b46", "the 3,680 training photos of the cats-and-dogs folder", P7,
          lambda ns: len(ns["dataset"]), 3_680),
    Claim("07-loading-image-data", "708ff6da", "the same 6 000 MNIST digits (Part 2's data) for two epochs, "
          "then test both on 2 000", P7_DIGITS,
          lambda ns: (len(ns["digits"]), len(ns["test_digits"])), (6_000, 2_000)),
    Claim("08-transfer-learning", "8a51d584", "a **seeded random subset** of the training photos and at most "
          "`test_photos` test photos", P8,
          lambda ns: (len(ns["train_set"]), len(ns["train_data"]), len(ns["test_set"]), len(ns["test_data"])),
          (320, 3_680, 480, 3_669)),
    # a seeded sample of 480 test photos: about two thirds dogs, as in the whole test set
    Claim("08-transfer-learning", "8617b41e", "always answering the more common class gets", P8,
          lambda ns: 0.62 <= share(ns["test_set"]) <= 0.72, True),
    # fine-tuning: a few batches of a seeded sample, and as many test photos
    Claim("08-transfer-learning", "440258c8", "A few steps on a few dozen photos", (*P8, "c071ca4d", "62e474c2"),
          lambda ns: (len(ns["finetune_loader"]), len(ns["finetune_loader"].dataset),
                      len(ns["finetune_testloader"].dataset)), (3, 48, 48)),
]


def normalise(text: str) -> str:
    return " ".join(text.split())


@functools.cache
def notebook(part: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "solutions" / part / f"{part}.ipynb", as_version=4)


def cell(part: str, cell_id: str):
    found = [c for c in notebook(part).cells if c.get("id") == cell_id]
    assert found, f"{part} has no cell {cell_id} any more: update the claim in {Path(__file__).name}"
    return found[0]


@pytest.fixture(scope="module")
def full_data(tmp_path_factory, monkeypatch_module):
    """Fake data sets with the full sizes and class counts (blank content), as the data root."""
    import helper.data

    root = tmp_path_factory.mktemp("full-size-data")
    fakedata.write_fake_data(root, cheap=True, **fakedata.FULL_SIZES)
    monkeypatch_module.setenv("COURSE_DATA", str(root))
    monkeypatch_module.setattr(helper.data, "DATA_ROOT", str(root))  # what `from helper.data import DATA_ROOT` gets
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def run_cells(full_data):
    """``run_cells(part, ids)``: the namespace left by running those code cells of the solution
    (IPython magics left out), each combination once."""
    import matplotlib

    matplotlib.use("Agg")

    @functools.cache
    def run(part: str, ids: tuple[str, ...]) -> dict:
        ns: dict = {"__name__": f"claims_{part.replace('-', '_')}"}
        for cell_id in ids:
            source = cell_id[1:] if cell_id.startswith("!") else cell(part, cell_id).source
            code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
            exec(compile(code, f"{part}:{cell_id}", "exec"), ns)  # noqa: S102 - the course's own notebook
        return ns

    return run


@pytest.mark.parametrize("claim", CLAIMS, ids=str)
def test_claim_is_stated_in_the_notebook(claim):
    assert normalise(claim.quote) in normalise(cell(claim.part, claim.cell).source), \
        f"{claim.part}, cell {claim.cell} no longer says {claim.quote!r}: update the claim and docs/data-claims.md"


@pytest.mark.parametrize("claim", CLAIMS, ids=str)
def test_claim_is_in_the_audit(claim):
    assert normalise(claim.quote) in normalise(AUDIT.read_text()), \
        f"docs/data-claims.md should list {claim.quote!r} ({claim.part}, cell {claim.cell})"


@pytest.mark.parametrize("claim", CLAIMS, ids=str)
def test_claim_holds_on_full_size_data(claim, run_cells):
    actual = claim.actual(run_cells(claim.part, claim.cells))
    assert actual == claim.expected, \
        (f"{claim.part}, cell {claim.cell}: {claim.quote!r} expects {claim.expected!r}; "
         f"the full-size data gives {actual!r}")


def test_full_size_fake_data_matches_the_real_sets(full_data):
    """The fake full data: the real sets' sizes and class counts, which the claims rest on."""
    from torchvision import datasets

    from helper.data import class_counts

    for name, cls in (("MNIST", datasets.MNIST), ("FashionMNIST", datasets.FashionMNIST)):
        for train, size, counts in zip((True, False), fakedata.FULL_SIZES[name], fakedata.FULL_CLASS_COUNTS[name],
                                       strict=True):
            data = cls(str(full_data), train=train)
            assert len(data) == size
            assert list(class_counts(data).values()) == list(counts)
    assert datasets.FashionMNIST(str(full_data), train=False).targets[0].item() == 9  # an ankle boot (Part 6)
    for split, counts in zip(("train", "test"), fakedata.FULL_SIZES["Cat_Dog_data"], strict=True):
        data = datasets.ImageFolder(full_data / "Cat_Dog_data" / split)
        assert data.classes == ["cat", "dog"] and list(class_counts(data).values()) == list(counts)


def test_every_audited_quote_of_a_checked_line_is_a_claim():
    """Lines of the audit marked as checked here quote a claim of this file."""
    quoted = {normalise(c.quote) for c in CLAIMS}
    for line in AUDIT.read_text().splitlines():
        if line.startswith("|") and "test_data_claims" in line:
            quotes = re.findall(r"«(.+?)»", line)
            assert quotes, f"a line checked by test_data_claims should quote its claim in «...»: {line}"
            for quote in quotes:
                assert normalise(quote) in quoted, f"the audit quotes {quote!r}, which no claim here checks"
