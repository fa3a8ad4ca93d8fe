"""helper.colab: one flag mounts Google Drive on Colab and moves data and checkpoints there;
locally nothing changes. Colab is simulated with a fake ``google.colab`` package."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import pytest

from helper import colab
from instructor import notebooks
from tests.conftest import modules_imported_by


@pytest.fixture
def fake_colab(monkeypatch, tmp_path, restore_helper_data):
    """A stand-in for Colab's ``google.colab`` whose ``drive.mount`` records its calls
    and creates the mount point, as the real one does."""
    calls = []

    def mount(mount_point, *args, **kwargs):
        calls.append((mount_point, args, kwargs))
        (Path(mount_point) / "MyDrive").mkdir(parents=True, exist_ok=True)

    google = types.ModuleType("google")
    google.__path__ = []
    google_colab = types.ModuleType("google.colab")
    google_colab.__path__ = []
    drive = types.ModuleType("google.colab.drive")
    drive.mount = mount
    google.colab, google_colab.drive = google_colab, drive
    for name, module in (("google", google), ("google.colab", google_colab),
                         ("google.colab.drive", drive)):
        monkeypatch.setitem(sys.modules, name, module)
    return calls, tmp_path / "content" / "drive"


@pytest.fixture
def restore_helper_data():
    """use_drive sets COURSE_DATA and reloads helper.data: put both back afterwards."""
    import os

    saved = {var: os.environ.get(var) for var in (colab.DATA_ENV, colab.CHECKPOINTS_ENV)}
    yield
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    import helper.data
    importlib.reload(helper.data)


def test_locally_the_flag_changes_nothing(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv(colab.DATA_ENV, "/somewhere/data")
    monkeypatch.delenv(colab.CHECKPOINTS_ENV, raising=False)
    assert colab.use_drive(False) is None
    assert colab.use_drive(True) is None
    assert "only applies on Colab" in capsys.readouterr().out
    import os
    assert os.environ[colab.DATA_ENV] == "/somewhere/data"
    assert colab.CHECKPOINTS_ENV not in os.environ
    assert colab.checkpoint_dir() == Path("checkpoints")


def test_on_colab_without_the_flag_nothing_is_mounted(fake_colab):
    calls, mount_point = fake_colab
    assert colab.on_colab()
    assert colab.use_drive(False, mount_point=str(mount_point)) is None
    assert calls == []


def test_on_colab_with_the_flag_drive_holds_data_and_checkpoints(fake_colab):
    import os

    import helper.data

    calls, mount_point = fake_colab
    folders = colab.use_drive(True, mount_point=str(mount_point))
    assert [c[0] for c in calls] == [str(mount_point)], "drive.mount called once, at the mount point"
    root = mount_point / "MyDrive" / "intro-pytorch"
    assert folders == {"data": root / "data", "checkpoints": root / "checkpoints"}
    assert all(p.is_dir() for p in folders.values())
    assert os.environ[colab.DATA_ENV] == str(root / "data")
    assert colab.checkpoint_dir() == root / "checkpoints"
    # helper.data was imported before: it is reloaded, so its data root follows
    assert helper.data.data_root() == root / "data"
    assert str(root / "data") == helper.data.DATA_ROOT


def test_the_setup_cell_runs_locally_and_on_a_simulated_colab(fake_colab, monkeypatch):
    """The notebooks' setup cell, executed as is: with USE_DRIVE = True on "Colab" it mounts
    Drive before helper.data reads the data root (the pip install is stubbed out)."""
    import subprocess

    calls, mount_point = fake_colab
    monkeypatch.setattr(colab.use_drive, "__defaults__",
                        (colab.DRIVE_FOLDER, str(mount_point)))
    installs = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: installs.append(a))
    source = notebooks.setup_source("01-tensors")
    assert 'USE_DRIVE = False  # @param {type:"boolean"}' in source, "the flag is a Colab checkbox"
    exec(compile(source, "setup-cell", "exec"), {})  # noqa: S102 - the cell, run as Jupyter would
    assert calls == [] and len(installs) == 1, "flag off: installs the course, mounts nothing"
    exec(compile(source.replace("USE_DRIVE = False", "USE_DRIVE = True"), "setup-cell", "exec"), {})  # noqa: S102
    assert [c[0] for c in calls] == [str(mount_point)]
    import helper.data
    assert str(mount_point / "MyDrive" / "intro-pytorch" / "data") == helper.data.DATA_ROOT


def test_importing_helper_colab_is_light():
    assert modules_imported_by("import helper.colab", ("torch", "helper.data", "google")) == []


def test_helper_data_is_restored_after_the_colab_tests():
    """Runs after the simulated-Colab tests: the data root is this machine's again."""
    import os

    import helper.data
    assert str(helper.data.data_root()) == helper.data.DATA_ROOT
    assert "intro-pytorch" not in os.environ.get(colab.DATA_ENV, "")
