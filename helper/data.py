"""Where the course's data lives, how to fetch it, and small fake copies for tests.

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
    python -m helper.data fake DIR          # small learnable fake data in the same formats
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import URLError

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: `import helper.data` stays light
    import torch

ENV_VAR = "COURSE_DATA"
DEFAULT_ROOT = Path("~/.pytorch").expanduser()

MNIST_CLASSES = [str(d) for d in range(10)]
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
    if isinstance(exc, OSError) and isinstance(getattr(exc, "reason", None), OSError):
        return True
    return False


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
# Fake data in torchvision's on-disk formats (for tests)
# ---------------------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format that MNIST's raw files use."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim  # 0x08: unsigned byte
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())


def _font(size: int):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the bitmap font
        return ImageFont.load_default()


def _fake_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Digits drawn with a font at random size, offset, angle and stroke, plus noise."""
    from PIL import Image, ImageDraw

    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    fonts = {s: _font(s) for s in (18, 20, 22)}
    for i, y in enumerate(labels):
        canvas = Image.new("L", (40, 40), 0)
        draw = ImageDraw.Draw(canvas)
        font = fonts[int(rng.choice(list(fonts)))]
        dx, dy = rng.integers(-2, 3, 2)
        draw.text((20 + dx, 20 + dy), str(y), fill=255, font=font, anchor="mm",
                  stroke_width=int(rng.integers(1, 3)), stroke_fill=255)
        canvas = canvas.rotate(float(rng.uniform(-10, 10)), resample=Image.BILINEAR)
        img = np.asarray(canvas.crop((6, 6, 34, 34)), np.float32)
        img += rng.normal(0, 8, img.shape)
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return images, labels


def _fake_fashion(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Crude silhouettes, one per Fashion-MNIST class, jittered in size and place."""
    from PIL import Image, ImageDraw

    shapes = {  # polygons on a 28x28 grid, roughly the garment's outline
        0: [(6, 6), (22, 6), (26, 11), (21, 13), (20, 24), (8, 24), (7, 13), (2, 11)],
        1: [(9, 3), (19, 3), (20, 25), (16, 25), (14, 10), (12, 25), (8, 25)],
        2: [(7, 5), (21, 5), (26, 24), (22, 24), (20, 14), (20, 25), (8, 25), (8, 14), (6, 24), (2, 24)],
        3: [(11, 3), (17, 3), (19, 12), (23, 25), (5, 25), (9, 12)],
        4: [(6, 4), (22, 4), (25, 25), (21, 25), (20, 16), (20, 26), (8, 26), (8, 16), (7, 25), (3, 25)],
        5: [(3, 17), (25, 15), (25, 20), (3, 21)],
        6: [(7, 5), (14, 8), (21, 5), (25, 14), (20, 14), (20, 25), (8, 25), (8, 14), (3, 14)],
        7: [(3, 14), (14, 13), (25, 17), (25, 21), (3, 21)],
        8: [(4, 10), (24, 10), (24, 24), (4, 24)],
        9: [(9, 4), (17, 4), (18, 15), (25, 19), (25, 24), (7, 24)],
    }
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, y in enumerate(labels):
        s = rng.uniform(0.8, 1.1)
        dx, dy = rng.uniform(-2, 2, 2)
        pts = [(14 + (x - 14) * s + dx, 14 + (v - 14) * s + dy) for x, v in shapes[int(y)]]
        canvas = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(canvas)
        draw.polygon(pts, fill=int(rng.integers(120, 256)))
        if y == 8:  # a bag has a handle
            draw.arc((9 + dx, 3 + dy, 19 + dx, 15 + dy), 180, 360, fill=200, width=2)
        img = np.asarray(canvas, np.float32) + rng.normal(0, 10, (28, 28))
        images[i] = np.clip(img, 0, 255).astype(np.uint8)
    return images, labels


def _fake_pet(label: int, rng: np.random.Generator):
    """A 'cat' is a warm image with big round blobs, a 'dog' a cool one with stripes."""
    from PIL import Image, ImageDraw

    w, h = (int(v) for v in rng.integers(96, 200, 2))
    base = (200, 120, 60) if label == 0 else (60, 110, 190)
    jitter = rng.integers(-30, 31, 3)
    img = Image.new("RGB", (w, h), tuple(int(np.clip(b + j, 0, 255)) for b, j in zip(base, jitter)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 7))):
        x, y = rng.integers(0, w), rng.integers(0, h)
        r = int(rng.integers(10, 30))
        shade = tuple(int(v) for v in rng.integers(0, 256, 3))
        if label == 0:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=shade)
        else:
            draw.rectangle((0, y, w, y + r // 3), fill=shade)
    arr = np.asarray(img, np.float32) + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def write_fake_data(root: Path | str, seed: int = 0, mnist: tuple[int, int] = (6000, 1000),
                    fashion: tuple[int, int] = (1200, 300),
                    cats_dogs: tuple[int, int] = (80, 30)) -> Path:
    """Write small, learnable fake data sets under ``root`` in torchvision's layouts.

    - ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (drawn digits)
    - ``root/FashionMNIST/raw/...`` (one silhouette per class)
    - ``root/Cat_Dog_data/{train,test}/{cat,dog}/*.jpg``

    ``mnist`` and ``fashion`` are (train, test) image counts; ``cats_dogs`` is
    (train, test) images per class. Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for name, make, sizes in (("MNIST", _fake_digits, mnist), ("FashionMNIST", _fake_fashion, fashion)):
        raw = root / name / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for prefix, n in zip(("train", "t10k"), sizes):
            images, labels = make(n, rng)
            write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    for split, n in zip(("train", "test"), cats_dogs):
        for label, name in enumerate(CAT_DOG_CLASSES):
            folder = root / "Cat_Dog_data" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _fake_pet(label, rng).save(folder / f"{name}.{i}.jpg", quality=90)
    return root


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
    parser = argparse.ArgumentParser(prog="python -m helper.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch every data set the course uses")
    dl.add_argument("--root", help=f"data root (default: ${ENV_VAR} or {DEFAULT_ROOT})")
    fake = sub.add_parser("fake", help="write small learnable fake data sets")
    fake.add_argument("dir")
    fake.add_argument("--seed", type=int, default=0)
    sub.add_parser("where", help="print the data root in use")
    args = parser.parse_args(argv)
    if args.command == "download":
        try:
            download_all(args.root)
        except DataUnavailableError as exc:
            print(exc, file=sys.stderr)
            return 1
    elif args.command == "fake":
        print(write_fake_data(args.dir, seed=args.seed))
    else:
        print(data_root())
    return 0


if __name__ == "__main__":
    sys.exit(main())
