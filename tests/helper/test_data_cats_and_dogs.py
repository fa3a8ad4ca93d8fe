"""helper.data.cats_and_dogs: Cat_Dog_data built from torchvision's OxfordIIITPet, offline.

A tiny Oxford-IIIT Pet folder in torchvision's on-disk format (``oxford-iiit-pet/images/*.jpg``,
``annotations/{trainval,test}.txt``) stands in for the real 800 MB download, so the
arrangement into ``Cat_Dog_data/{train,test}/{cat,dog}`` is exercised without the network.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from PIL import Image
from torchvision import datasets
from torchvision.datasets import oxford_iiit_pet

import helper.data as hd

# image id, species (1 cat, 2 dog), split, size, PIL mode
PETS = [
    ("Abyssinian_1", 1, "trainval", (600, 400), "RGB"),   # large: shrunk to a short side of 256
    ("Abyssinian_2", 1, "trainval", (120, 90), "L"),      # small and grey: kept size, made RGB
    ("Bombay_7", 1, "test", (300, 500), "RGB"),
    ("beagle_3", 2, "trainval", (200, 150), "RGB"),
    ("beagle_4", 2, "trainval", (500, 260), "CMYK"),
    ("pug_11", 2, "trainval", (90, 90), "RGB"),
    ("pug_12", 2, "test", (256, 300), "RGB"),
]


def write_fake_oxford_pet(root: Path, pets=PETS) -> Path:
    """The files torchvision's OxfordIIITPet reads, for ``pets``; returns its folder."""
    base = root / "oxford-iiit-pet"
    (base / "images").mkdir(parents=True)
    (base / "annotations").mkdir()
    rng = np.random.default_rng(0)
    lines = {"trainval": [], "test": []}
    for breed_id, (image_id, species, split, (w, h), mode) in enumerate(pets, start=1):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).convert(mode).save(base / "images" / f"{image_id}.jpg")
        # <image id> <class id 1..37> <species 1 cat / 2 dog> <breed id>
        lines[split].append(f"{image_id} {breed_id} {species} {breed_id}")
    for split, rows in lines.items():
        (base / "annotations" / f"{split}.txt").write_text("\n".join(rows) + "\n")
    return base


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if torchvision tries to download the Oxford-IIIT Pet archives."""
    def refuse(*args, **kwargs):
        raise AssertionError("the test tried to download Oxford-IIIT Pet")
    monkeypatch.setattr(oxford_iiit_pet, "download_and_extract_archive", refuse)


def test_builds_class_folders_from_oxford_pet(tmp_path, no_network):
    write_fake_oxford_pet(tmp_path)
    target = hd.cats_and_dogs(tmp_path)
    assert target == tmp_path / "Cat_Dog_data"
    assert (tmp_path / "oxford-iiit-pet").is_dir(), "files that were there before the call are kept"
    counts = {(split, c): len(list((target / split / c).glob("*.jpg")))
              for split in ("train", "test") for c in ("cat", "dog")}
    assert counts == {("train", "cat"): 2, ("train", "dog"): 3, ("test", "cat"): 1, ("test", "dog"): 1}
    assert not (tmp_path / "Cat_Dog_data.partial").exists()

    train = datasets.ImageFolder(str(target / "train"))
    assert train.classes == ["cat", "dog"] and len(train) == 5
    for path, _ in train.samples:
        with Image.open(path) as img:
            assert img.mode == "RGB", path
            assert min(img.size) <= 256, path
    sizes = {Path(p).name: Image.open(p).size for p, _ in train.samples}
    assert sizes["cat.0.jpg"] == (384, 256), "600x400 is shrunk to a short side of 256, aspect kept"
    assert sizes["cat.1.jpg"] == (120, 90), "small photos keep their size"


def test_second_call_reuses_the_folder(tmp_path, no_network):
    """Once built, the folder is returned as it is: no download, no rebuild, no change."""
    base = write_fake_oxford_pet(tmp_path)
    first = hd.cats_and_dogs(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*.jpg")}
    shutil.rmtree(base)  # nothing left to build from: only the built folder can answer
    assert hd.cats_and_dogs(tmp_path) == first
    assert hd.cats_and_dogs(tmp_path, download=False) == first
    assert {p: p.stat().st_mtime_ns for p in first.rglob("*.jpg")} == stamps, "the photos were rewritten"


def test_a_folder_in_the_data_root_is_reused(tmp_path, no_network, monkeypatch):
    """On Colab, COURSE_DATA on Google Drive keeps the built folder between sessions."""
    write_fake_oxford_pet(tmp_path / "first-session")
    built = hd.cats_and_dogs(tmp_path / "first-session")
    drive = tmp_path / "drive" / "course-data"
    shutil.copytree(built, drive / "Cat_Dog_data")
    monkeypatch.setenv(hd.ENV_VAR, str(drive))
    assert hd.cats_and_dogs() == drive / "Cat_Dog_data"


def test_the_download_is_deleted_once_built(tmp_path, monkeypatch, capsys):
    """The ~1.6 GB of Oxford-IIIT Pet files go once Cat_Dog_data exists (kept if they were there before)."""
    def fake_download(url, download_root, **kwargs):
        base = Path(download_root)
        if not (base / "images").exists():
            write_fake_oxford_pet(base.parent)
    monkeypatch.setattr(oxford_iiit_pet, "download_and_extract_archive", fake_download)
    target = hd.cats_and_dogs(tmp_path)
    assert len(list(target.rglob("*.jpg"))) == len(PETS)
    assert not (tmp_path / "oxford-iiit-pet").exists(), "the downloaded files should be deleted"
    assert "later calls reuse it" in capsys.readouterr().out


def test_offline_download_failure_names_the_fix(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(oxford_iiit_pet, "download_and_extract_archive", unreachable)
    with pytest.raises(hd.DataUnavailableError) as info:
        hd.cats_and_dogs(tmp_path)
    message = str(info.value)
    assert "make data" in message and "COURSE_DATA" in message and str(tmp_path) in message
    assert not (tmp_path / "Cat_Dog_data").exists()


def test_a_failed_build_leaves_no_half_folder(tmp_path, no_network):
    """Cat_Dog_data appears whole or not at all; the next attempt starts afresh."""
    base = write_fake_oxford_pet(tmp_path)
    missing = base / "images" / "pug_12.jpg"  # the last test image: the build fails near the end
    missing.rename(tmp_path / "aside.jpg")
    with pytest.raises(FileNotFoundError):
        hd.cats_and_dogs(tmp_path)
    assert not (tmp_path / "Cat_Dog_data").exists()
    (tmp_path / "aside.jpg").rename(missing)
    target = hd.cats_and_dogs(tmp_path)
    assert len(list(target.rglob("*.jpg"))) == len(PETS)
    assert not (tmp_path / "Cat_Dog_data.partial").exists()
