"""helper.data: one data root and one short message when the data can't be had;
the tests' fake data (tests/fakedata.py): files torchvision reads that a model can learn."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import datasets, transforms

import helper.data as hd
from instructor.course import ROOT
from tests import fakedata

# The course's data is not read here; the fake data tests ask the `fake_data` fixture.
pytestmark = pytest.mark.course_data()


def test_data_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    assert hd.data_root() == tmp_path
    monkeypatch.delenv("COURSE_DATA")
    assert hd.data_root() == Path("~/.pytorch").expanduser()


def test_idx_round_trip_through_torchvision_reader(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([3, 1, 4, 1, 5], dtype=torch.uint8)
    fakedata.write_idx(tmp_path / "img", images.numpy())
    fakedata.write_idx(tmp_path / "lbl", labels.numpy())
    assert torch.equal(read_image_file(str(tmp_path / "img")), images)
    assert torch.equal(read_label_file(str(tmp_path / "lbl")), labels.long())


@pytest.mark.parametrize("cls", [datasets.MNIST, datasets.FashionMNIST])
def test_fake_idx_data_loads_with_canonical_call(fake_data, cls):
    # download=True must find the files and never touch the network.
    fake_root = fake_data(cls.__name__)
    train = cls(str(fake_root), download=True, train=True, transform=transforms.ToTensor())
    test = cls(str(fake_root), download=True, train=False, transform=transforms.ToTensor())
    assert (len(train), len(test)) == ((6000, 2000) if cls is datasets.MNIST else (1200, 300))
    if cls is datasets.FashionMNIST:
        assert test[0][1] == 9, "the first test image is an ankle boot, as in Fashion-MNIST"
    image, label = train[0]
    assert image.shape == (1, 28, 28) and 0 <= label < 10
    assert set(train.targets.tolist()) == set(range(10)), "every class appears"


def test_fake_cats_and_dogs_layout(fake_data):
    fake_root = fake_data("Cat_Dog_data")
    for split, n in (("train", 80), ("test", 30)):
        folder = datasets.ImageFolder(str(fake_root / "Cat_Dog_data" / split))
        assert folder.classes == ["cat", "dog"]
        assert len(folder) == 2 * n
        img, _ = folder[0]
        assert img.mode == "RGB"
    assert hd.cats_and_dogs(fake_root, download=False) == fake_root / "Cat_Dog_data"


def _train_and_score(train, test, in_features, epochs, seed=0):
    """A tiny MLP trained for a few seconds; returns test accuracy."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(in_features, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    x, y = next(iter(torch.utils.data.DataLoader(test, batch_size=len(test))))
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("cls, epochs, floor", [(datasets.MNIST, 3, 0.6), (datasets.FashionMNIST, 5, 0.7)])
def test_fake_idx_data_is_learnable(fake_data, cls, epochs, floor):
    fake_root = fake_data(cls.__name__)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train = cls(str(fake_root), train=True, transform=tf)
    test = cls(str(fake_root), train=False, transform=tf)
    train = torch.utils.data.Subset(train, range(min(len(train), 3000)))  # a few seconds
    acc = _train_and_score(train, test, 784, epochs)
    assert acc > floor, f"{cls.__name__} fake data: test accuracy {acc:.2f} (chance is 0.10)"


def test_fake_cats_and_dogs_are_learnable(fake_data):
    fake_root = fake_data("Cat_Dog_data")
    tf = transforms.Compose([transforms.Resize((16, 16)), transforms.ToTensor()])
    train = datasets.ImageFolder(str(fake_root / "Cat_Dog_data" / "train"), transform=tf)
    test = datasets.ImageFolder(str(fake_root / "Cat_Dog_data" / "test"), transform=tf)
    acc = _train_and_score(train, test, 3 * 16 * 16, epochs=10)
    assert acc > 0.85, f"cats vs dogs fake data: test accuracy {acc:.2f} (chance is 0.50)"


def test_fake_data_is_reproducible(tmp_path):
    sizes = {"MNIST": (20, 5), "FashionMNIST": (20, 5), "Cat_Dog_data": (2, 1)}
    a = fakedata.write_fake_data(tmp_path / "a", seed=3, **sizes)
    b = fakedata.write_fake_data(tmp_path / "b", seed=3, **sizes)
    for f in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_fake_data_sets_are_built_one_at_a_time(tmp_path):
    fakedata.ensure(tmp_path, "FashionMNIST", sizes=(10, 5))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FashionMNIST"]
    before = (tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").stat().st_mtime_ns
    fakedata.ensure(tmp_path, "FashionMNIST", sizes=(10, 5))
    after = (tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").stat().st_mtime_ns
    assert before == after, "a data set that is already there is not written again"
    with pytest.raises(ValueError, match="unknown data set"):
        fakedata.ensure(tmp_path, "CIFAR10")


def test_needed_by_finds_the_data_sets_a_notebook_loads():
    assert fakedata.needed_by("datasets.MNIST(DATA_ROOT, download=True)") == {"MNIST"}
    assert fakedata.needed_by("datasets.FashionMNIST(DATA_ROOT)\n# Fashion-MNIST") == {"FashionMNIST"}
    assert fakedata.needed_by("data_dir = cats_and_dogs()") == {"Cat_Dog_data"}
    assert fakedata.needed_by("Tensors: no data set here") == set()


# --- when the data is missing and the network is unreachable -------------------------

NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
              "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
              "no_proxy": "", "NO_PROXY": ""}


def test_download_cli_offline_gives_one_short_message(tmp_path):
    env = {**os.environ, **NO_NETWORK, "COURSE_DATA": str(tmp_path / "empty")}
    run = subprocess.run([sys.executable, "-m", "helper.data", "download"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120)
    assert run.returncode == 1
    assert "make data" in run.stderr and "COURSE_DATA" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) <= 4, run.stderr


def test_cats_and_dogs_missing_without_download(tmp_path):
    with pytest.raises(hd.DataUnavailableError, match="make data"):
        hd.cats_and_dogs(tmp_path, download=False)


def test_notebook_shows_short_hint_instead_of_traceback(tmp_path, kernel):
    """In a real kernel: the canonical torchvision call, no data, no network."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import helper.data\nhelper.data.install_offline_hint()"),
        nbformat.v4.new_code_cell("from torchvision import datasets\nfrom helper.data import DATA_ROOT\n"
                                  "datasets.MNIST(DATA_ROOT, download=True, train=True)"),
        nbformat.v4.new_code_cell("raise RuntimeError('an ordinary bug')"),
    ])
    env = {**os.environ, **NO_NETWORK, "COURSE_DATA": str(tmp_path / "empty")}
    old = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    [error] = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    text = "\n".join(error.traceback)
    assert "make data" in text and "COURSE_DATA" in text
    assert len(text.splitlines()) <= 4, text
    [ordinary] = [o for o in nb.cells[2].outputs if o.output_type == "error"]
    assert "an ordinary bug" in ordinary.evalue and len(ordinary.traceback) > 1


def test_majority_share_reads_labels_without_loading_images(tmp_path):
    """majority_share: the share of the most common class, from targets, subsets, tensors or lists."""
    from helper.data import class_counts, labels_of, majority_share

    fakedata.ensure(tmp_path, "Cat_Dog_data", sizes=((2, 6), (1, 3)), cheap=True)
    folder = datasets.ImageFolder(tmp_path / "Cat_Dog_data" / "train")
    assert class_counts(folder) == {0: 2, 1: 6} and majority_share(folder) == 0.75
    subset = torch.utils.data.Subset(folder, [0, 1, 2])  # both cats and one dog
    assert labels_of(subset) == [0, 0, 1] and majority_share(subset) == 2 / 3
    pairs = torch.utils.data.TensorDataset(torch.zeros(4, 2), torch.tensor([3, 3, 3, 1]))
    assert majority_share(pairs) == 0.75 and majority_share([5, 6]) == 0.5
    with pytest.raises(ValueError, match="empty"):
        majority_share([])



class _OwnGenerator(torch.utils.data.Dataset):
    """Four items, each a draw from the data set's own NumPy generator."""

    def __init__(self):
        import numpy as np

        self.rng = np.random.default_rng(0)

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return self.rng.random()


def _batches(seed: int | None, init) -> list[list[float]]:
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(_OwnGenerator(), batch_size=2, num_workers=2, worker_init_fn=init,
                                         generator=generator, multiprocessing_context="fork")
    return [batch.tolist() for batch in loader]


@pytest.mark.skipif(sys.platform == "win32", reason="fork start method")
def test_seed_worker_gives_each_worker_its_own_draws_and_a_seed_repeats_them():
    copies = _batches(0, None)
    assert copies[0] == copies[1], "without seed_worker both workers copy the same dataset.rng"
    seeded = _batches(0, hd.seed_worker)
    assert seeded[0] != seeded[1], "seed_worker should give each worker a generator of its own"
    assert _batches(0, hd.seed_worker) == seeded, "the same loader seed should give the same draws"
    assert _batches(1, hd.seed_worker) != seeded, "another loader seed should give other draws"


def test_seed_worker_outside_a_worker_says_where_it_belongs():
    with pytest.raises(RuntimeError, match="worker_init_fn=seed_worker"):
        hd.seed_worker(0)
