"""helper.datacheck: each data set present and complete, on fake files in a temporary data root:
missing, half-downloaded, cut short, half-built, and whole (fake data sets of the course's own
layout, from tests/fakedata.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helper import datacheck
from helper.datacheck import check_cats_and_dogs, check_data, check_idx_set, idx_items
from instructor.course import PART_NAMES, ROOT
from tests import fakedata


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """A data root with every data set, blank content at the fake sizes (cheap to build)."""
    return fakedata.write_fake_data(tmp_path_factory.mktemp("data"), cheap=True)


@pytest.fixture
def copy_of(whole, tmp_path):
    """copy_of(name): a fresh data root holding a copy of data set ``name``, to damage."""
    import shutil

    def copy(name: str) -> Path:
        shutil.copytree(whole / name, tmp_path / name)
        return tmp_path
    return copy


def test_every_data_set_missing_says_so_with_the_command_and_the_download_size(tmp_path):
    checks = check_data(tmp_path)
    assert [c.name for c in checks] == ["MNIST", "FashionMNIST", "Cat_Dog_data"]
    for check, size in zip(checks, ("11 MB", "30 MB", "800 MB"), strict=True):
        assert not check.ok and "not downloaded" in check.found
        assert "make data" in check.fix and size in check.fix
        assert check.line().startswith(f"PROBLEM  {check.name}: ") and "Fix: " in check.line()


def test_whole_data_sets_pass_with_their_sizes(whole):
    mnist, fashion, cats = check_data(whole)
    assert mnist.ok and mnist.found.startswith("6,000 training and 2,000 test images")
    assert fashion.ok and "1,200 training and 300 test images" in fashion.found
    assert cats.ok and cats.found.startswith("160 training and 60 test photos")
    assert "a sample: the full set has 60,000 and 10,000" in mnist.found  # smaller than the real one
    assert mnist.line().startswith("ok       MNIST: ")


def test_full_sized_sets_are_not_called_a_sample():
    assert datacheck._sizes("MNIST", 60_000, 10_000, "images") == "60,000 training and 10,000 test images"


def test_idx_items_reads_the_header_and_checks_the_size(tmp_path):
    import numpy as np

    path = tmp_path / "images"
    fakedata.write_idx(path, np.zeros((5, 28, 28)))
    assert idx_items(path, 3) == 5
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="its header announces 5 items"):
        idx_items(path, 3)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="not even a header"):
        idx_items(path, 3)
    path.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + bytes(8 + 5))  # labels, read as images
    with pytest.raises(ValueError, match="not an IDX file"):
        idx_items(path, 3)


def test_a_download_stopped_before_unpacking_is_half_downloaded(copy_of):
    root = copy_of("MNIST")
    raw = root / "MNIST" / "raw"
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b")
    check = check_idx_set(root, "MNIST")
    assert not check.ok and check.found == "half-downloaded: t10k-labels-idx1-ubyte.gz is there, not unpacked."
    assert check.fix.startswith(f"delete {raw}, then run `make data`")


def test_a_missing_file_beside_others_is_half_downloaded(copy_of):
    root = copy_of("FashionMNIST")
    (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").unlink()
    check = check_idx_set(root, "FashionMNIST")
    assert not check.ok and "half-downloaded: train-images-idx3-ubyte is missing" in check.found


def test_a_file_cut_short_is_found(copy_of):
    root = copy_of("MNIST")
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[: 16 + 784 * 100])
    check = check_idx_set(root, "MNIST")
    assert not check.ok and "cut short or damaged" in check.found and "6,000 items" in check.found
    assert "delete" in check.fix and "make data" in check.fix


def test_images_and_labels_must_agree(copy_of):
    import numpy as np

    root = copy_of("MNIST")
    fakedata.write_idx(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.zeros(7))
    check = check_idx_set(root, "MNIST")
    assert not check.ok and check.found == "t10k files disagree: 2,000 images, 7 labels."


def test_cats_and_dogs_half_built_or_half_downloaded(tmp_path):
    (tmp_path / "Cat_Dog_data.partial" / "train").mkdir(parents=True)
    check = check_cats_and_dogs(tmp_path)
    assert not check.ok and check.found.startswith("half-built") and "make data" in check.fix
    (tmp_path / "Cat_Dog_data.partial" / "train").rmdir()
    (tmp_path / "Cat_Dog_data.partial").rmdir()
    (tmp_path / "oxford-iiit-pet" / "images").mkdir(parents=True)
    check = check_cats_and_dogs(tmp_path)
    assert not check.ok and check.found.startswith("half-downloaded")
    assert check.fix.startswith(f"delete {tmp_path / 'oxford-iiit-pet'}, then")


def test_a_photo_cut_short_or_a_class_without_photos_is_found(copy_of):
    root = copy_of("Cat_Dog_data")
    photo = root / "Cat_Dog_data" / "test" / "dog" / "dog.3.jpg"
    photo.write_bytes(photo.read_bytes()[:-10])
    check = check_cats_and_dogs(root)
    assert not check.ok and check.found == f"1 photo(s) cut short or empty, e.g. {photo}."
    photo.write_bytes(b"")
    assert "cut short or empty" in check_cats_and_dogs(root).found
    for p in (root / "Cat_Dog_data" / "train" / "cat").iterdir():
        p.unlink()
    check = check_cats_and_dogs(root)
    assert not check.ok and check.found == f"incomplete: no photos in {root / 'Cat_Dog_data' / 'train' / 'cat'}."


def test_part_data_says_what_each_notebook_loads():
    assert set(datacheck.PART_DATA) == set(PART_NAMES)
    for part in PART_NAMES:
        text = (ROOT / "solutions" / part / f"{part}.ipynb").read_text()
        assert set(datacheck.PART_DATA[part]) == fakedata.needed_by(text), part


def test_full_sizes_are_the_real_data_sets():
    for name, sizes in fakedata.FULL_SIZES.items():
        as_counts = tuple(sum(s) if isinstance(s, tuple) else s for s in sizes)
        assert datacheck.FULL_SIZES[name] == as_counts, name
    assert set(datacheck.DOWNLOAD) == set(datacheck.NEEDS_BYTES) == set(datacheck.DATASETS) == set(fakedata.DATASETS)
