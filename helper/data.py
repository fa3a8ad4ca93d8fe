"""Where the course's data lives and how to fetch it; a small synthetic data set (spirals).

One data root for everything: ``$COURSE_DATA`` when set, else ``~/.pytorch``.
Under it torchvision's own layouts::

    <root>/MNIST/raw/train-images-idx3-ubyte ...
    <root>/FashionMNIST/raw/...
    <root>/Cat_Dog_data/{train,test}/{cat,dog}/*.jpg

Notebooks keep torchvision's canonical calls::

    from helper.data import DATA_ROOT
    trainset = datasets.MNIST(DATA_ROOT, download=True, train=True, transform=transform)

Command line::

    python -m helper.data download          # everything a learner needs, with progress bars
    python -m helper.data where             # the data root in use

(The tests' fake copies of these data sets live in ``tests/fakedata.py``.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: `import helper.data` stays light
    import torch

ENV_VAR = "COURSE_DATA"
DEFAULT_ROOT = Path("~/.pytorch").expanduser()

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
CAT_DOG_CLASSES = ["cat", "dog"]

OFFLINE_HINT = (
    "The course data is not on this machine and could not be downloaded.\n"
    "Fix: run `make data` once while online (it fetches every data set), "
    f"or set {ENV_VAR} to a folder that already holds the data, then re-run this cell.\n"
    "Data root in use: {root}"
)


class DataUnavailableError(RuntimeError):
    """The data set is missing and could not be downloaded."""


def data_root() -> Path:
    """The course's one data root: ``$COURSE_DATA`` if set, else ``~/.pytorch``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_ROOT


DATA_ROOT = str(data_root())


# ---------------------------------------------------------------------------
# Friendly failures when offline
# ---------------------------------------------------------------------------

def is_download_failure(exc: BaseException) -> bool:
    """True for the errors torchvision raises when a download cannot reach the network."""
    if isinstance(exc, (URLError, DataUnavailableError)):
        return True
    if isinstance(exc, RuntimeError) and str(exc).startswith("Error downloading"):
        return True
    return isinstance(exc, OSError) and isinstance(getattr(exc, "reason", None), OSError)


def _ipython_handler(shell, etype, evalue, tb, tb_offset=None):
    """IPython custom-exception hook: a short fix-it message for download failures."""
    if is_download_failure(evalue):
        shell._showtraceback(etype, evalue, [f"{etype.__name__}: " + OFFLINE_HINT.format(root=data_root())])
    else:  # not ours: IPython's usual traceback
        shell.showtraceback((etype, evalue, tb), tb_offset=tb_offset)


def install_offline_hint() -> None:
    """Show one short fix-it message instead of a long traceback when a download fails.

    Call it once in a notebook (the setup cell does). The cell still fails, as it
    should; only what the learner reads changes. Does nothing outside IPython.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    # torchvision raises RuntimeError or URLError when a download fails (and
    # DataUnavailableError is a RuntimeError); any other error keeps its usual traceback.
    shell.set_custom_exc((RuntimeError, URLError, ConnectionError), _ipython_handler)


# ---------------------------------------------------------------------------
# Downloads for learners
# ---------------------------------------------------------------------------

def download_mnist(root: Path | str | None = None) -> None:
    """Fetch MNIST and Fashion-MNIST (train and test) with torchvision, checksums included."""
    from torchvision import datasets

    root = str(root or data_root())
    for cls in (datasets.MNIST, datasets.FashionMNIST):
        for train in (True, False):
            try:
                cls(root, train=train, download=True)
            except Exception as exc:  # noqa: BLE001 - re-raised with the fix in the message
                if is_download_failure(exc):
                    raise DataUnavailableError(OFFLINE_HINT.format(root=root)) from exc
                raise


def cats_and_dogs(root: Path | str | None = None, download: bool = True) -> Path:
    """Path to ``<root>/Cat_Dog_data`` (``train/`` and ``test/``, each with ``cat/`` and ``dog/``).

    Built once, then reused: when the folder is already in the data root, it is returned
    at once, nothing downloaded or rebuilt. On Colab, where the default root vanishes with
    the session, point ``COURSE_DATA`` at a folder that lasts (e.g. on Google Drive) to
    build it only once.

    When the folder is missing and ``download`` is true, it is built from torchvision's
    ``OxfordIIITPet`` (checksummed download of ~800 MB; trainval -> train, test -> test;
    binary cat/dog labels; photos shrunk to a short side of 256 px), with a progress bar.
    The Oxford-IIIT Pet files are deleted afterwards if this call downloaded them.
    Raises ``DataUnavailableError`` with the fix when the folder cannot be built.
    """
    root = Path(root or data_root())
    target = root / "Cat_Dog_data"
    if _has_class_folders(target):
        return target
    if not download:
        raise DataUnavailableError(OFFLINE_HINT.format(root=root))
    pets = root / "oxford-iiit-pet"  # where torchvision's OxfordIIITPet keeps its files
    had_pets = pets.exists()
    try:
        _build_cats_and_dogs(root, target)
    except Exception as exc:  # re-raised, with the fix when it is a download failure
        if is_download_failure(exc):
            raise DataUnavailableError(OFFLINE_HINT.format(root=root)) from exc
        raise
    if not had_pets:
        shutil.rmtree(pets, ignore_errors=True)  # 1.6 GB of archives and photos, no longer needed
    print(f"Built {target}; later calls reuse it.")
    return target


def _has_class_folders(target: Path) -> bool:
    return all((target / split / c).is_dir() and any((target / split / c).iterdir())
               for split in ("train", "test") for c in CAT_DOG_CLASSES)


def _build_cats_and_dogs(root: Path, target: Path, short_side: int = 256) -> None:
    from torchvision import datasets
    from tqdm.auto import tqdm

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for split, tv_split in (("train", "trainval"), ("test", "test")):
        pets = datasets.OxfordIIITPet(str(root), split=tv_split,
                                      target_types="binary-category", download=True)
        counts = {c: 0 for c in CAT_DOG_CLASSES}
        for i in tqdm(range(len(pets)), desc=f"Cat_Dog_data/{split}", unit="img"):
            img, label = pets[i]
            name = CAT_DOG_CLASSES[label]
            img = img.convert("RGB")
            scale = short_side / min(img.size)
            if scale < 1:
                img = img.resize((round(img.width * scale), round(img.height * scale)))
            out = partial / split / name / f"{name}.{counts[name]}.jpg"
            out.parent.mkdir(parents=True, exist_ok=True)
            img.save(out, quality=90)
            counts[name] += 1
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # appears whole or not at all


def download_all(root: Path | str | None = None) -> None:
    """Everything a learner needs before going offline (``make data``)."""
    root = Path(root or data_root())
    print(f"Data root: {root}")
    download_mnist(root)
    cats_and_dogs(root)
    # The pretrained weights ship inside a pip package: nothing to download here,
    # but check now that they load rather than failing later in Part 8.
    from helper.pretrained import pretrained_weights_path
    print(f"Pretrained weights: {pretrained_weights_path()}")
    print("All course data is ready.")


# ---------------------------------------------------------------------------
# What a data set holds: class counts and the majority share (a classifier's floor)
# ---------------------------------------------------------------------------

def labels_of(data) -> list[int]:
    """The class index of every item of ``data``, in order, without loading a single image.

    data: a torchvision data set with ``targets`` (``MNIST``, ``FashionMNIST``, ``ImageFolder``),
    a ``Subset`` of one (or of a ``random_split``), a ``TensorDataset`` whose last tensor holds
    the labels, or the labels themselves (a 1-D tensor, array or list of ints).
    """
    from torch.utils.data import Subset, TensorDataset

    if isinstance(data, Subset):
        inner = labels_of(data.dataset)
        return [inner[i] for i in data.indices]
    if isinstance(data, TensorDataset):
        data = data.tensors[-1]
    elif hasattr(data, "targets"):
        data = data.targets
    return [int(v) for v in (data.tolist() if hasattr(data, "tolist") else data)]


def class_counts(data) -> dict[int, int]:
    """Items per class index, ``{class: count}`` in class order; ``data`` as for ``labels_of``."""
    counts: dict[int, int] = {}
    for label in labels_of(data):
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def majority_share(data) -> float:
    """The share of the most common class in ``data`` (as for ``labels_of``): the accuracy of
    always answering that class, the floor any classifier must beat. It is 1 / (number of
    classes) only when the classes are balanced: 0.10 on Fashion-MNIST, but about 0.68 (dogs)
    on the full cats-and-dogs photos."""
    counts = class_counts(data)
    if not counts:
        raise ValueError("no labels: the data set is empty")
    return max(counts.values()) / sum(counts.values())


# ---------------------------------------------------------------------------
# Reproducible loading: seeding DataLoader workers (Part 7)
# ---------------------------------------------------------------------------

def seed_worker(worker_id: int) -> None:
    """A ``DataLoader``'s ``worker_init_fn``: seed this worker's random generators from its seed.

    Each worker process gets the seed ``base + worker_id``, ``base`` drawn from the loader's
    ``generator`` (``torch.utils.data.get_worker_info().seed``); PyTorch seeds its own generator
    (which torchvision's random transforms use) with it. This function seeds, from the same
    seed, the generators a data set may draw from besides: Python's ``random``, NumPy's global
    one, and a ``numpy.random.Generator`` the data set keeps as ``dataset.rng``, replaced by a
    new one. Without that, every worker starts with a copy of the same ``dataset.rng`` and
    draws the same "random" numbers as the others.

    Defined in a module, not a notebook, so that workers started by *spawn* or *forkserver*
    (macOS, Windows, Python 3.14 on Linux) can import it. ``worker_id``: 0 .. num_workers - 1.
    """
    import random

    import torch.utils.data

    info = torch.utils.data.get_worker_info()
    if info is None:
        raise RuntimeError("seed_worker runs inside a DataLoader worker: pass it as "
                           "DataLoader(..., num_workers=2, worker_init_fn=seed_worker)")
    random.seed(info.seed)
    np.random.seed(info.seed % 2**32)
    if isinstance(getattr(info.dataset, "rng", None), np.random.Generator):
        info.dataset.rng = np.random.default_rng(info.seed)


# ---------------------------------------------------------------------------
# A small synthetic data set: interleaved spirals (Part 3; Part 7's custom Dataset)
# ---------------------------------------------------------------------------

def make_spiral(n_per_class: int, n_classes: int = 3, noise: float = 0.2,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Points on ``n_classes`` interleaved spiral arms in the plane (cs231n's toy data set).

    Arm ``k`` runs from the origin (radius 0) out to radius 1 while its angle sweeps 4
    radians, starting at ``4 k``; ``noise`` is the standard deviation of Gaussian noise
    added to each angle. No straight line separates the arms: a linear classifier gets
    about 50 % right with 3 classes, a small ReLU network nearly 100 %.

    n_per_class: points per arm (>= 1); n_classes: number of arms (>= 2);
    seed: the same seed gives the same points (a NumPy generator, global state untouched).
    Returns ``(X, y)``: ``X`` a (N, 2) float32 tensor of coordinates in [-1, 1], ``y`` a (N,)
    int64 tensor of class indices 0 .. n_classes - 1, ordered by class (shuffle when you
    batch), with N = n_per_class * n_classes.
    """
    import torch

    if int(n_per_class) != n_per_class or n_per_class < 1:
        raise ValueError(f"n_per_class should be a positive integer, got {n_per_class!r}")
    if int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"n_classes should be an integer >= 2, got {n_classes!r}")
    if noise < 0:
        raise ValueError(f"noise is a standard deviation and cannot be negative, got {noise}")
    n_per_class, n_classes = int(n_per_class), int(n_classes)
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)
    xs, ys = [], []
    for k in range(n_classes):
        angle = np.linspace(4.0 * k, 4.0 * (k + 1), n_per_class) + rng.normal(0.0, noise, n_per_class)
        xs.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        ys.append(np.full(n_per_class, k))
    X = torch.from_numpy(np.concatenate(xs).astype(np.float32))
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
    return X, y


def main(argv: list[str] | None = None) -> int:
    """``python -m helper.data download|where``; returns the exit status (1: data unavailable)."""
    parser = argparse.ArgumentParser(prog="python -m helper.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch every data set the course uses")
    dl.add_argument("--root", help=f"data root (default: ${ENV_VAR} or {DEFAULT_ROOT})")
    sub.add_parser("where", help="print the data root in use")
    args = parser.parse_args(argv)
    if args.command == "download":
        try:
            download_all(args.root)
        except DataUnavailableError as exc:
            print(exc, file=sys.stderr)
            return 1
    else:
        print(data_root())
    return 0


if __name__ == "__main__":
    sys.exit(main())
