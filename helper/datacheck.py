"""Is each data set the parts load present and complete? Looked at on disk, nothing downloaded.

What torchvision and ``helper.data`` leave under the data root (``helper.data.data_root()``)::

    MNIST/raw/{train,t10k}-images-idx3-ubyte, ...-labels-idx1-ubyte   (and the .gz downloads)
    FashionMNIST/raw/...                                              (the same four files)
    Cat_Dog_data/{train,test}/{cat,dog}/*.jpg                         (built from Oxford-IIIT Pet)

An IDX file is complete when its size is what its header announces (4 bytes of magic number,
4 per dimension, one byte per value) and a set's labels are as many as its images. A photo is
complete when it is not empty and ends with JPEG's end-of-image marker. A download cut short
leaves ``.gz`` files without their unpacked copy (MNIST), an ``oxford-iiit-pet`` folder without
``Cat_Dog_data``, or ``Cat_Dog_data.partial`` (the cats-and-dogs build, stopped).
Smaller sets laid out the same way (the CI's sample) pass, with their size said.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from helper.data import CAT_DOG_CLASSES

DATASETS = ("MNIST", "FashionMNIST", "Cat_Dog_data")
# The data sets each part's notebook loads (tests/helper/test_datacheck.py keeps it in step
# with the notebooks).
PART_DATA: dict[str, tuple[str, ...]] = {
    "01-tensors": (),
    "02-neural-networks": ("MNIST",),
    "03-training": ("MNIST",),
    "04-fashion-mnist": ("FashionMNIST",),
    "05-inference-validation": ("FashionMNIST",),
    "06-saving-loading": ("FashionMNIST",),
    "07-loading-image-data": ("MNIST", "Cat_Dog_data"),
    "08-transfer-learning": ("Cat_Dog_data",),
}
# (training, test) items of the full data sets: images, or cat and dog photos.
FULL_SIZES = {"MNIST": (60_000, 10_000), "FashionMNIST": (60_000, 10_000), "Cat_Dog_data": (3_680, 3_669)}
# What `make data` downloads for each, and the free space it needs while it does.
DOWNLOAD = {"MNIST": "11 MB", "FashionMNIST": "30 MB", "Cat_Dog_data": "about 800 MB (Oxford-IIIT Pet)"}
NEEDS_BYTES = {"MNIST": 70_000_000, "FashionMNIST": 90_000_000, "Cat_Dog_data": 1_700_000_000}
GET = "run `make data` (or `python -m helper.data download`) while online"
IDX_PREFIXES = {"train": "training", "t10k": "test"}
JPEG_END = b"\xff\xd9"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: ``ok`` or a problem, what was found, and its fix."""

    name: str
    ok: bool
    found: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"ok       {self.name}: {self.found}"
        return f"PROBLEM  {self.name}: {self.found} Fix: {self.fix}"


def idx_items(path: Path, ndim: int) -> int:
    """How many items the IDX file ``path`` holds (``ndim`` 3: images, 1: labels); ValueError
    saying what is wrong when its size is not what its header announces."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
    if len(head) < 4 + 4 * ndim:
        raise ValueError(f"{path.name} is cut short ({size:,} bytes, not even a header)")
    magic, *dims = struct.unpack(f">I{ndim}I", head)
    if magic != 0x0800 | ndim:
        raise ValueError(f"{path.name} is not an IDX file of unsigned bytes (magic number {magic:#010x})")
    values = 1
    for d in dims:
        values *= d
    expected = 4 + 4 * ndim + values
    if size != expected:
        raise ValueError(f"{path.name} holds {size:,} bytes, its header announces {dims[0]:,} items "
                         f"({expected:,} bytes): cut short or damaged")
    return dims[0]


def check_idx_set(root: Path, name: str) -> Check:
    """MNIST or FashionMNIST under ``root``: its four unpacked IDX files, complete."""
    raw = root / name / "raw"
    fix_redo = f"delete {raw}, then {GET}."
    counts = {}
    for prefix, split in IDX_PREFIXES.items():
        items = []
        for kind, ndim in (("images-idx3", 3), ("labels-idx1", 1)):
            path = raw / f"{prefix}-{kind}-ubyte"
            if not path.is_file():
                if not raw.is_dir() or not any(raw.iterdir()):
                    return Check(name, False, f"not downloaded (no {raw}).",
                                 f"{GET}: it downloads {DOWNLOAD[name]}.")
                gz = path.with_name(path.name + ".gz")
                how = f"{gz.name} is there, not unpacked" if gz.is_file() else f"{path.name} is missing"
                return Check(name, False, f"half-downloaded: {how}.", fix_redo)
            try:
                items.append(idx_items(path, ndim))
            except ValueError as exc:
                return Check(name, False, f"{exc}.", fix_redo)
        if items[0] != items[1]:
            return Check(name, False, f"{prefix} files disagree: {items[0]:,} images, {items[1]:,} labels.", fix_redo)
        counts[split] = items[0]
    return Check(name, True, _sizes(name, counts["training"], counts["test"], "images"))


def _sizes(name: str, train: int, test: int, what: str) -> str:
    text = f"{train:,} training and {test:,} test {what}"
    full = FULL_SIZES[name]
    if (train, test) != full:
        text += f" (a sample: the full set has {full[0]:,} and {full[1]:,})"
    return text


def check_cats_and_dogs(root: Path) -> Check:
    """``Cat_Dog_data`` under ``root``: both splits, both classes, every photo complete."""
    name, target = "Cat_Dog_data", root / "Cat_Dog_data"
    if not target.is_dir():
        partial, pets = target.with_name(target.name + ".partial"), root / "oxford-iiit-pet"
        if partial.exists():
            return Check(name, False, f"half-built: {partial} is what an interrupted build left.",
                         f"{GET}: it starts the build again.")
        if pets.exists():
            return Check(name, False, f"half-downloaded: {pets} is there, {target} is not.",
                         f"delete {pets}, then {GET}.")
        return Check(name, False, f"not downloaded (no {target}).", f"{GET}: it downloads {DOWNLOAD[name]}.")
    fix_redo = f"delete {target}, then {GET}."
    counts = {}
    for split in ("train", "test"):
        counts[split] = 0
        for cls in CAT_DOG_CLASSES:
            folder = target / split / cls
            photos = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
            if not photos:
                return Check(name, False, f"incomplete: no photos in {folder}.", fix_redo)
            broken = [p for p in photos if not _jpeg_complete(p)]
            if broken:
                return Check(name, False, f"{len(broken)} photo(s) cut short or empty, e.g. {broken[0]}.", fix_redo)
            counts[split] += len(photos)
    return Check(name, True, _sizes(name, counts["train"], counts["test"], "photos"))


def _jpeg_complete(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < 4:
                return False
            f.seek(-2, 2)
            return f.read(2) == JPEG_END
    except OSError:
        return False


def check_data(root: Path, names: tuple[str, ...] = DATASETS) -> list[Check]:
    """One check per data set in ``names``, under the data root ``root``."""
    return [check_cats_and_dogs(root) if n == "Cat_Dog_data" else check_idx_set(root, n) for n in names]
