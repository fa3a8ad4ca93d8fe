"""Colab with Google Drive: keep the course data and your checkpoints across Colab sessions.

A Colab machine is wiped when its session ends, and with it every downloaded data set and
saved model. With Drive mounted, both can live in a folder of your Drive instead::

    import helper.colab
    folders = helper.colab.use_drive(True)   # the notebooks' setup cell does this for you
    folders["data"]         # /content/drive/MyDrive/intro-pytorch/data, now COURSE_DATA
    folders["checkpoints"]  # /content/drive/MyDrive/intro-pytorch/checkpoints

Everywhere but on Colab, and on Colab without the flag, nothing changes: the data root
stays ``$COURSE_DATA`` or ``~/.pytorch`` (see ``helper.data``) and checkpoints go to
``./checkpoints``. The folders are told to later code through two environment variables,
``COURSE_DATA`` (read by ``helper.data``) and ``COURSE_CHECKPOINTS``.

This module imports nothing heavy and not ``helper.data``: the setup cell calls it before
``helper.data`` reads the data root.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

DATA_ENV = "COURSE_DATA"                # the variable helper.data reads
CHECKPOINTS_ENV = "COURSE_CHECKPOINTS"
MOUNT_POINT = "/content/drive"          # where Colab mounts Drive
DRIVE_FOLDER = "MyDrive/intro-pytorch"  # under the mount point: "My Drive" in the Drive web page


def on_colab() -> bool:
    """True inside a Colab runtime (its ``google.colab`` module is loaded at start-up)."""
    return "google.colab" in sys.modules


def checkpoint_dir() -> Path:
    """Where to keep checkpoints: ``$COURSE_CHECKPOINTS`` if set, else ``./checkpoints``."""
    env = os.environ.get(CHECKPOINTS_ENV)
    return Path(env).expanduser() if env else Path("checkpoints")


def use_drive(enabled: bool = True, folder: str = DRIVE_FOLDER,
              mount_point: str = MOUNT_POINT) -> dict[str, Path] | None:
    """On Colab with ``enabled``: mount Google Drive and keep data and checkpoints in it.

    enabled:     the learner's opt-in flag (``USE_DRIVE`` in the setup cell); False does nothing.
    folder:      the course folder, relative to the mount point (``MyDrive/...``).
    mount_point: where Drive is mounted (Colab's usual ``/content/drive``).

    Mounts Drive (Colab asks for permission the first time), creates
    ``<mount_point>/<folder>/data`` and ``.../checkpoints``, and points ``COURSE_DATA`` and
    ``COURSE_CHECKPOINTS`` at them. If ``helper.data`` was imported before (the setup cell
    is run a second time), it is reloaded so that ``helper.data.DATA_ROOT`` follows.
    Returns {"data": Path, "checkpoints": Path}, or None when nothing was changed: not
    enabled, or not on Colab (locally the flag is ignored, with a note).
    """
    if not enabled:
        return None
    if not on_colab():
        print("USE_DRIVE only applies on Colab: here the data stays in "
              f"{os.environ.get(DATA_ENV) or '~/.pytorch'}.")
        return None
    from google.colab import drive  # Colab's own module

    drive.mount(mount_point)
    root = Path(mount_point) / folder
    folders = {"data": root / "data", "checkpoints": root / "checkpoints"}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    os.environ[DATA_ENV] = str(folders["data"])
    os.environ[CHECKPOINTS_ENV] = str(folders["checkpoints"])
    if "helper.data" in sys.modules:  # DATA_ROOT is read when helper.data is imported
        importlib.reload(sys.modules["helper.data"])
    print(f"Google Drive mounted: data in {folders['data']}, checkpoints in {folders['checkpoints']}")
    return folders
