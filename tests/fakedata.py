"""Small, learnable fake data sets in torchvision's on-disk formats, for the tests.

Each data set is built on its own, once per folder, only when something asks for it::

    ensure(root, "MNIST")          # root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
    ensure(root, "FashionMNIST")   # root/FashionMNIST/raw/... (one silhouette per class)
    ensure(root, "Cat_Dog_data")   # root/Cat_Dog_data/{train,test}/{cat,dog}/*.jpg

``needed_by(text)`` says which of them a notebook or test file loads.

``FULL_SIZES`` are the sizes of the real, full data sets that learners download, with their
class balance (``FULL_CLASS_COUNTS``): ``ensure(root, name, sizes=FULL_SIZES[name])`` builds a
fake data set as large as the real one (MNIST and Fashion-MNIST in seconds, the cat and dog
photos in about ten), for timing the notebooks as a learner runs them (``make bench-learner``).
``cheap=True`` writes the same counts and labels with blank content (IDX files of zeros, one
tiny JPEG copied): what ``tests/test_data_claims.py`` needs to check sizes, splits and class
shares in a second. Command line (all of them)::

    python -m tests.fakedata DIR [--seed N] [--full] [--cheap]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np

from helper.data import CAT_DOG_CLASSES

# (train, test) images; for Cat_Dog_data, images per class. MNIST's test set is as large as the
# real sample's (Part 7 prints the shape of its first 2,000 test digits).
SIZES: dict[str, tuple] = {"MNIST": (6000, 2000), "FashionMNIST": (1200, 300), "Cat_Dog_data": (80, 30)}
DATASETS = tuple(SIZES)
# The real data sets as learners download them. MNIST and Fashion-MNIST: (train, test) images.
# Cat_Dog_data (helper.data.cats_and_dogs builds it from Oxford-IIIT Pet: trainval -> train,
# test -> test): ((cats, dogs) in train, (cats, dogs) in test). Oxford-IIIT Pet has 3,680 trainval
# and 3,669 test photos, 2,371 cats and 4,978 dogs in all (12 cat and 25 dog breeds, about 100
# trainval photos per breed); the split of each species between trainval and test below follows
# those totals (an exact count needs the download).
FULL_SIZES: dict[str, tuple] = {
    "MNIST": (60_000, 10_000),
    "FashionMNIST": (60_000, 10_000),
    "Cat_Dog_data": ((1_188, 2_492), (1_183, 2_486)),
}
# Images per class, (train, test), of the real data: MNIST's digits are not quite balanced,
# Fashion-MNIST's classes are exactly.
FULL_CLASS_COUNTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "MNIST": ((5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
              (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)),
    "FashionMNIST": ((6000,) * 10, (1000,) * 10),
    "Cat_Dog_data": FULL_SIZES["Cat_Dog_data"],
}
# What loads each data set in a notebook or test: torchvision's call, or the course's helper.
_LOADS = {
    "MNIST": re.compile(r"\bMNIST\("),
    "FashionMNIST": re.compile(r"\bFashionMNIST\("),
    "Cat_Dog_data": re.compile(r"\bcats_and_dogs\(\)|\bCat_Dog_data\b"),
}


def needed_by(text: str) -> set[str]:
    """The names of the data sets (``DATASETS``) that ``text`` (a notebook's or test's source) loads."""
    return {name for name, pattern in _LOADS.items() if pattern.search(text)}


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array of any shape, e.g. images (N, 28, 28) or labels (N,), in the IDX
    format that MNIST's raw files use."""
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


def _labels(n: int, rng: np.random.Generator, first: int | None,
            counts: tuple[int, ...] | None = None) -> np.ndarray:
    """``n`` labels 0-9: drawn at random, or exactly ``counts[k]`` of class ``k`` in random
    order; ``first``: the first label (with ``counts``, swapped in from later on)."""
    if counts is None:
        labels = rng.integers(0, 10, n).astype(np.uint8)
        if first is not None:
            labels[0] = first
        return labels
    if sum(counts) != n:
        raise ValueError(f"class counts {counts} add up to {sum(counts)}, not {n}")
    labels = rng.permutation(np.repeat(np.arange(len(counts), dtype=np.uint8), counts))
    if first is not None and labels[0] != first:
        swap = int(np.flatnonzero(labels == first)[0])
        labels[0], labels[swap] = labels[swap], labels[0]
    return labels


def _class_counts(name: str, sizes: tuple) -> tuple | None:
    """The real class counts of ``name`` when ``sizes`` are its full sizes, else None (random)."""
    return FULL_CLASS_COUNTS[name] if tuple(sizes) == FULL_SIZES[name] else None


def _fake_digits(n: int, rng: np.random.Generator, first: int | None = None,
                 counts: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Digits drawn with a font at random size, offset, angle and stroke, plus noise; ``first``:
    the first image's label (default random); ``counts``: images per class (default random)."""
    from PIL import Image, ImageDraw

    labels = _labels(n, rng, first, counts)
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


def _fake_fashion(n: int, rng: np.random.Generator, first: int | None = None,
                  counts: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crude silhouettes, one per Fashion-MNIST class, jittered in size and place; ``first``: the
    first image's label (default random); ``counts``: images per class. As in the real data, the
    first test image is an ankle boot (label 9): Part 6 saves it, prints its class and has two
    runtimes classify it."""
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
    labels = _labels(n, rng, first, counts)
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
    img = Image.new("RGB", (w, h), tuple(int(np.clip(b + j, 0, 255)) for b, j in zip(base, jitter, strict=True)))
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


def _blank(n: int, rng: np.random.Generator, first: int | None = None,
           counts: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Blank 28x28 images (zeros) with the labels the drawn ones would have: sizes and class
    shares without the cost of drawing."""
    return np.zeros((n, 28, 28), np.uint8), _labels(n, rng, first, counts)


def _per_class(n) -> tuple[int, ...]:
    """Photos per class of one split: an int (the same for cat and dog) or (cats, dogs)."""
    return (int(n),) * len(CAT_DOG_CLASSES) if np.isscalar(n) else tuple(int(v) for v in n)


def _write(folder: Path, name: str, sizes: tuple, rng: np.random.Generator, cheap: bool = False) -> None:
    """Data set ``name`` into ``folder`` (which stands for ``root/name``); ``cheap``: blank content."""
    if name == "Cat_Dog_data":
        tiny = None
        if cheap:  # one small valid JPEG, copied: ImageFolder lists files, it opens only what is read
            import io

            buffer = io.BytesIO()
            _fake_pet(0, rng).resize((8, 8)).save(buffer, format="JPEG")
            tiny = buffer.getvalue()
        for split, n in zip(("train", "test"), sizes, strict=True):
            for label, (cls, count) in enumerate(zip(CAT_DOG_CLASSES, _per_class(n), strict=True)):
                (folder / split / cls).mkdir(parents=True)
                for i in range(count):
                    path = folder / split / cls / f"{cls}.{i}.jpg"
                    if tiny is not None:
                        path.write_bytes(tiny)
                    else:
                        _fake_pet(label, rng).save(path, quality=90)
        return
    make = _blank if cheap else _fake_digits if name == "MNIST" else _fake_fashion
    counts = _class_counts(name, sizes)
    (folder / "raw").mkdir(parents=True)
    for i, (prefix, n) in enumerate(zip(("train", "t10k"), sizes, strict=True)):
        images, labels = make(n, rng, first=9 if (name, prefix) == ("FashionMNIST", "t10k") else None,
                              counts=None if counts is None else counts[i])
        write_idx(folder / "raw" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels)


def ensure(root: Path | str, name: str, seed: int = 0, sizes: tuple | None = None, cheap: bool = False) -> Path:
    """Build fake data set ``name`` (one of ``DATASETS``) under ``root`` unless it is there.

    ``sizes``: (train, test) image counts, default ``SIZES``; for ``Cat_Dog_data`` per class,
    each an int (as many cats as dogs) or a pair (cats, dogs). ``FULL_SIZES[name]`` gives the
    real data set's sizes and class counts. ``cheap``: the same files, counts and labels with
    blank content (not learnable), in a fraction of the time.
    The same seed gives the same files; each data set has its own random stream, so building
    one never changes another. The folder appears whole or not at all. Returns ``root``.
    """
    if name not in SIZES:
        raise ValueError(f"unknown data set {name!r}; fake data sets are {', '.join(DATASETS)}")
    root = Path(root)
    target = root / name
    if target.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    # Test processes running side by side (pytest -n) share one folder: one builds, the others
    # wait for it under a lock on the folder itself and then find the data set there.
    fd = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not target.exists():
            partial = root / f".{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            _write(partial, name, sizes or SIZES[name], np.random.default_rng([seed, DATASETS.index(name)]), cheap)
            partial.rename(target)
    finally:
        os.close(fd)  # releases the lock
    return root


def write_fake_data(root: Path | str, seed: int = 0, cheap: bool = False, **sizes: tuple) -> Path:
    """Every fake data set under ``root`` (see ``ensure``); ``sizes`` by data set name,
    e.g. ``MNIST=(20, 5)``. Returns ``root``."""
    for name in DATASETS:
        ensure(root, name, seed, sizes.get(name), cheap)
    return Path(root)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.fakedata DIR [--seed N] [--full] [--cheap]``: write every fake data set into DIR."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakedata", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full", action="store_true", help="as large as the real data sets (FULL_SIZES)")
    parser.add_argument("--cheap", action="store_true", help="blank content: sizes and labels only")
    args = parser.parse_args(argv)
    sizes = FULL_SIZES if args.full else {}
    print(write_fake_data(args.dir, seed=args.seed, cheap=args.cheap, **sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
