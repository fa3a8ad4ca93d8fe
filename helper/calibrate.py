"""How long each part takes on this machine: a few seconds of the parts' kind of work, timed.

The course measured how long each part takes a learner on a 2-core CPU (``make bench-learner``,
``docs/times.toml``'s ``learner`` group, copied below as ``LEARNER_SECONDS``). On the same
machine, the same day, it timed a small workload of the kind the parts do (``REFERENCE_SECONDS``):
images through torchvision's transforms and a ``DataLoader``, training steps of an MLP on
MNIST-sized batches, training steps of a small CNN on colour images. Timing that workload here
gives the factor by which this machine is slower (above 1) or faster (below 1)::

    expected time of a part here = LEARNER_SECONDS[part] * (seconds here / REFERENCE_SECONDS)

The workload runs on the CPU, where the measured times were taken: with a GPU, the parts that
train on it take less than the estimate (their data loading stays on the CPU). It runs on one
thread and is timed in CPU time (``time.process_time``), which other programs running at the
same time change little (a few percent at a load average of 12 on 2 cores, where the wall-clock
time of the same work doubles); each piece runs ``repeats`` times and its quickest run is kept.
The estimates are what a machine doing nothing else takes: the parts' work is mostly on one core
(loading and transforming images, Python, small layers), so a core's speed is what differs.

A calibration is kept for a week in ``~/.cache/intro-pytorch/calibration.json`` (or
``$XDG_CACHE_HOME``), for this machine and PyTorch only: the notebooks' first cell reads it
rather than measuring again. ``python -m helper.calibrate`` measures and prints the table.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Generated from docs/times.toml (group "learner"); tests/helper/test_calibrate.py keeps it in
# step and prints the new table when the measured times change. Seconds on 2 CPU cores.
# --- times:begin learner ---
LEARNER_SECONDS: dict[str, float] = {
    "01-tensors": 2.8,
    "02-neural-networks": 4.6,
    "03-training": 29.0,
    "04-fashion-mnist": 23.0,
    "05-inference-validation": 287.4,
    "06-saving-loading": 79.0,
    "07-loading-image-data": 28.3,
    "08-transfer-learning": 30.0,
}
# Parts that offer a smaller setting: (the setting's line, seconds with it).
QUICK: dict[str, tuple[str, float]] = {
    "05-inference-validation": ("quick = True", 31.5),
}
# --- times:end learner ---

# The workload below, on the machine and day the learner times were measured (docs/times.toml,
# group "calibration", says how); tests/helper/test_calibrate.py keeps the two in step.
REFERENCE_SECONDS = 0.403
CACHE_DAYS = 7


# --- the workload ------------------------------------------------------------------------------

def workload(scale: float = 1.0) -> dict[str, Callable[[], None]]:
    """The pieces of work timed, by name, each a function that does it once (0.1-0.25 s of CPU
    time each on the course's machine); ``scale`` shrinks or grows the work (tests use less)."""
    import numpy as np
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision.transforms import v2

    generator = torch.Generator().manual_seed(0)
    digits = np.random.default_rng(0).integers(0, 256, (max(64, int(4096 * scale)), 28, 28), dtype=np.uint8)
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.5,), (0.5,))])

    class Digits(torch.utils.data.Dataset):  # what torchvision's MNIST does per image
        def __len__(self):
            return len(digits)

        def __getitem__(self, i):
            return transform(Image.fromarray(digits[i])), i % 10

    def loading():
        for _ in DataLoader(Digits(), batch_size=64, shuffle=True, generator=generator):
            pass

    def steps(model, x, y, optimizer, n):
        def run():
            for _ in range(n):
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
        return run

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                        nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    cnn = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(32 * 16 * 16, 2))
    return {
        "loading": loading,
        "mlp": steps(mlp, torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)),
                     torch.optim.SGD(mlp.parameters(), lr=0.01, momentum=0.9), max(1, int(100 * scale))),
        "cnn": steps(cnn, torch.randn(32, 3, 64, 64), torch.randint(0, 2, (32,)),
                     torch.optim.Adam(cnn.parameters()), max(1, int(4 * scale))),
    }


def fingerprint() -> dict[str, str]:
    """What a calibration holds for: this machine, its CPUs, this Python and this PyTorch."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "none"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"machine": platform.node(), "cpu": platform.machine(), "cpus": str(cpus),
            "python": platform.python_version(), "torch": torch_version}


@dataclass(frozen=True)
class Calibration:
    """The workload's time on one machine: ``seconds``, the sum of each piece's quickest run."""

    seconds: float
    pieces: dict[str, float]
    date: str  # ISO date and time, UTC
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def factor(self) -> float:
        """How many times slower than the reference machine (0.5: twice as fast)."""
        return self.seconds / REFERENCE_SECONDS


def measure(repeats: int = 5, clock: Callable[[], float] = time.process_time,
            work: dict[str, Callable[[], None]] | None = None) -> Calibration:
    """Time each piece of ``work`` (default ``workload()``) ``repeats`` times on one CPU thread;
    keep each piece's quickest run. ``clock``: seconds, by default this process's CPU time
    (tests pass a fake)."""
    import torch

    if repeats < 1:
        raise ValueError(f"repeats should be at least 1, got {repeats}")
    work = workload() if work is None else work
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for run in work.values():  # once untimed: first calls pay for setting up
            run()
        pieces = {}
        for name, run in work.items():
            times = []
            for _ in range(repeats):
                start = clock()
                run()
                times.append(clock() - start)
            pieces[name] = min(times)
    finally:
        torch.set_num_threads(threads)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Calibration(sum(pieces.values()), pieces, now, fingerprint())


# --- kept for a week ---------------------------------------------------------------------------

def cache_path() -> Path:
    """``$XDG_CACHE_HOME/intro-pytorch/calibration.json``, by default under ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()
    return Path(base) / "intro-pytorch" / "calibration.json"


def save(calibration: Calibration, path: Path | None = None) -> None:
    """Keep ``calibration`` for later (a folder that cannot be written: nothing kept, no error)."""
    path = path or cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(calibration), indent=1) + "\n")
    except OSError:
        pass


def load(path: Path | None = None, now: datetime.datetime | None = None) -> Calibration | None:
    """The kept calibration if it is under ``CACHE_DAYS`` old and was measured on this machine
    with this PyTorch (``fingerprint()``); else None."""
    path = path or cache_path()
    try:
        kept = Calibration(**json.loads(path.read_text()))
        measured = datetime.datetime.fromisoformat(kept.date)
    except (OSError, ValueError, TypeError):
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if kept.machine != fingerprint() or not datetime.timedelta(0) <= now - measured < datetime.timedelta(CACHE_DAYS):
        return None
    return kept


def calibration(refresh: bool = False, path: Path | None = None) -> Calibration:
    """The kept calibration, or (none kept, or ``refresh``) a new one, measured and kept."""
    kept = None if refresh else load(path)
    if kept is not None:
        return kept
    measured = measure()
    save(measured, path)
    return measured


# --- estimates ---------------------------------------------------------------------------------

def expected_seconds(part: str, calibration: Calibration, quick: bool = False) -> float:
    """``part``'s expected time on the calibrated machine, in seconds (``quick``: with its
    smaller setting, which only some parts have: ``QUICK``)."""
    if part not in LEARNER_SECONDS:
        raise ValueError(f"unknown part {part!r}; the parts are {', '.join(LEARNER_SECONDS)}")
    if quick and part not in QUICK:
        raise ValueError(f"{part} has no smaller setting; parts with one: {', '.join(QUICK)}")
    measured = QUICK[part][1] if quick else LEARNER_SECONDS[part]
    return measured * calibration.factor


def duration(seconds: float) -> str:
    """``4.9 s``, ``97 s``, ``3.3 min``: seconds as docs/times.md shows them (minutes from 120 s)."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def part_estimate(part: str, calibration: Calibration) -> str:
    """``about 1.6 min`` (and ``, 3.3 min with quick = True`` where the part has that setting)."""
    text = f"about {duration(expected_seconds(part, calibration))}"
    if part in QUICK:
        text += f", {duration(expected_seconds(part, calibration, quick=True))} with `{QUICK[part][0]}`"
    return text


def speed(calibration: Calibration) -> str:
    """One phrase: this machine against the reference, e.g. ``2.0 times slower than``."""
    factor = calibration.factor
    if 0.9 <= factor <= 1.1:
        return "about as fast as"
    return f"{factor:.1f} times slower than" if factor > 1 else f"{1 / factor:.1f} times faster than"


def main(argv: list[str] | None = None) -> int:
    """``python -m helper.calibrate [--refresh]``: each part's expected time on this machine."""
    refresh = "--refresh" in (argv if argv is not None else sys.argv[1:])
    cal = calibration(refresh=refresh)
    print(f"calibration: {cal.seconds:.2f} s ({', '.join(f'{k} {v:.3f} s' for k, v in cal.pieces.items())}), "
          f"reference {REFERENCE_SECONDS:.2f} s: this machine is {speed(cal)} the course's 2-core one")
    for part in LEARNER_SECONDS:
        print(f"{part:26} {part_estimate(part, cal)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
