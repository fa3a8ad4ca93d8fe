"""helper.doctor: each check on a faked setup (versions, accelerators, data roots, disks, Colab),
and the command line as a learner runs it, on an empty data root and on fake data.

Faked, not installed: PyTorch versions (``installed=``), accelerators (a stand-in ``torch``
module), disk usage; a read-only data root is a root below a file (which no user, root
included, can create folders in) and a write probe that fails as a read-only mount does (the
tests run as root, where chmod stops no write)."""

from __future__ import annotations

import errno
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.requirements import Requirement

from helper import calibrate, doctor
from helper.calibrate import Calibration
from instructor.course import ROOT
from tests import fakedata

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def dep(spec: str, version: str | None, tested: str | None = "2.14.1"):
    return doctor.check_dependency(Requirement(spec), version, tested)


# --- Python and the dependencies ---------------------------------------------------------------

def test_a_pytorch_too_old_is_a_problem_with_its_fix():
    check = dep("torch>=2.6", "2.5.1")
    assert not check.ok and check.found == "2.5.1 is too old: the course needs >=2.6."
    assert check.fix == "pip install 'torch>=2.6'."
    assert check.line() == "PROBLEM  torch: 2.5.1 is too old: the course needs >=2.6. Fix: pip install 'torch>=2.6'."


def test_a_pytorch_newer_than_tested_is_untested():
    check = dep("torch>=2.6", "2.15.0")
    assert not check.ok and "newer than 2.14.1, the newest the course was tested with: untested" in check.found
    assert check.fix.startswith("pip install 'torch==2.14.1'")
    assert not dep("torch>=2.6", "2.15.0.dev20261201").ok  # a nightly of the next release too


def test_a_version_above_the_declared_range_is_too_new():
    check = dep("jupyterlab<5,>=4.0", "5.0.1", "4.6.6")
    assert not check.ok and check.found == "5.0.1 is too new: the course needs <5,>=4.0."


def test_the_tested_version_and_its_local_builds_are_ok():
    for version in ("2.14.1", "2.14.1+cu130", "2.14.1+cpu", "2.6.0"):
        check = dep("torch>=2.6", version)
        assert check.ok, version
    assert dep("torch>=2.6", "2.14.1+cpu").line() == "ok       torch: 2.14.1+cpu (>=2.6; tested up to 2.14.1)"


def test_a_missing_dependency_says_how_to_install():
    check = dep("onnx>=1.17", None, "1.23.2")
    assert not check.ok and check.found == "missing (the course needs >=1.17)."
    assert "make install" in check.fix and "pip install 'onnx>=1.17'" in check.fix


def test_check_dependencies_asks_the_installed_versions():
    reqs = [Requirement("torch>=2.6"), Requirement("numpy>=1.24")]
    checks = doctor.check_dependencies(reqs, installed={"torch": "2.4.0"}.get, tested={"torch": "2.14.1"})
    assert [(c.name, c.ok) for c in checks] == [("torch", False), ("numpy", False)]
    assert "too old" in checks[0].found and "missing" in checks[1].found


def test_python_outside_the_range():
    assert doctor.check_python(">=3.10", "3.9.18").line().startswith("PROBLEM  Python: 3.9.18 is outside")
    assert doctor.check_python(">=3.10").ok


def test_the_installed_metadata_and_pyproject_toml_agree():
    """The doctor reads the installed package's metadata (learners have no pyproject.toml);
    pyproject.toml, the one list, must say the same, and read from it gives the same checks."""
    from importlib import metadata

    from_metadata = doctor.requirements(lines=metadata.requires("intro-pytorch"))
    from_pyproject = doctor.requirements(lines=doctor._pyproject_requirements())
    assert [(r.name, r.specifier) for r in from_metadata] == [(r.name, r.specifier) for r in from_pyproject]
    assert [str(r) for r in doctor.requirements()] == [str(r) for r in from_metadata]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["course"]]
    assert [(r.name, r.specifier) for r in from_pyproject] == [(r.name, r.specifier) for r in declared
                                                                 if r.marker is None or r.marker.evaluate()]
    assert doctor.requires_python() == project["requires-python"]


def test_on_colab_only_what_the_notebooks_need():
    names = {r.name for r in doctor.requirements(colab_runtime=True)}
    assert {"torch", "onnx", "tensorboard"} <= names and not {"nbgrader", "jupyterlab", "nbval"} & names
    imported = set()
    for notebook in ROOT.glob("solutions/*/*.ipynb"):
        imported |= set(re.findall(r"(?:^|\\n|\")\s*(?:import|from) ([a-z_]+)", notebook.read_text()))
    course_extra = {r.name for r in doctor.requirements()} - {r.name for r in doctor.requirements(colab_runtime=True)}
    assert not {n.replace("-", "_") for n in course_extra} & imported, "a notebook imports what Colab would miss"


def test_tested_versions_are_requirements_txt_pins():
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith(("#", " ")))
    direct = {r.name for r in doctor.requirements()} | {"tomli"}
    assert set(doctor.TESTED) == direct
    assert {name: pins[name] for name in direct} == doctor.TESTED, "copy requirements.txt's pins into TESTED"


# --- the accelerator ---------------------------------------------------------------------------

def fake_torch(cuda=False, mps=False, fails=False):
    def ones(n, device):
        if fails:
            raise RuntimeError("CUDA error: no kernel image is available for execution on the device\nmore")
        return SimpleNamespace(mul=lambda k: SimpleNamespace(sum=lambda: SimpleNamespace(item=lambda: n * k)))
    return SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: cuda, get_device_name=lambda i: "Fake GPU"),
                           backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)),
                           ones=ones, version=SimpleNamespace(cuda=None), __version__="2.14.1+cpu")


def test_no_accelerator_is_fine(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    check = doctor.check_accelerator(fake_torch())
    assert check.ok and check.found.startswith("none (CPU only)")


def test_an_accelerator_found_and_used():
    assert doctor.check_accelerator(fake_torch(cuda=True)).found == "CUDA (Fake GPU), PyTorch computes on it"
    assert doctor.check_accelerator(fake_torch(mps=True)).found == "MPS (MPS), PyTorch computes on it"


def test_an_accelerator_pytorch_cannot_use():
    check = doctor.check_accelerator(fake_torch(cuda=True, fails=True))
    assert not check.ok and "RuntimeError: CUDA error: no kernel image" in check.found and "more" not in check.found


def test_a_gpu_with_a_cpu_only_pytorch(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    check = doctor.check_accelerator(fake_torch())
    assert not check.ok and "built for the CPU only" in check.found and "pytorch.org" in check.fix


def test_the_real_accelerator_check_runs():
    assert doctor.check_accelerator().name == "accelerator"


# --- the data root, the disk, Drive ------------------------------------------------------------

def test_a_data_root_below_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    check = doctor.check_writable(tmp_path / "file" / "data")
    assert not check.ok and check.found.endswith("is a file.") and "COURSE_DATA" in check.fix


def test_a_read_only_data_root_is_refused(tmp_path):
    def read_only(folder):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    check = doctor.check_writable(tmp_path, probe=read_only)
    assert not check.ok and check.found == f"{tmp_path} cannot be written to (Read-only file system)."


def test_a_writable_data_root(tmp_path):
    assert doctor.check_writable(tmp_path).found == f"{tmp_path} is writable"
    later = doctor.check_writable(tmp_path / "a" / "b")
    assert later.ok and later.found.endswith(f"(will be created in {tmp_path})")
    assert list(tmp_path.iterdir()) == []  # the probe left nothing


def test_disk_space_counts_the_missing_data_sets(tmp_path):
    def usage(free):
        return lambda folder: SimpleNamespace(free=free)
    check = doctor.check_disk(tmp_path, ["Cat_Dog_data"], usage(1_000_000_000))
    assert not check.ok and "1.0 GB free" in check.found and "2.2 GB needed for Cat_Dog_data" in check.found
    assert doctor.check_disk(tmp_path, [], usage(1_000_000_000)).ok


def test_drive_on_colab(tmp_path):
    mount = str(tmp_path / "drive")
    assert doctor.check_drive(True, False, tmp_path) is None  # not on Colab: no line
    assert doctor.check_drive(False, True, tmp_path, mount).ok
    check = doctor.check_drive(True, True, tmp_path, mount)
    assert not check.ok and "not mounted" in check.found and "USE_DRIVE" in check.fix
    assert not doctor.check_drive(False, True, Path(mount) / "MyDrive/intro-pytorch/data", mount).ok
    (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
    assert doctor.check_drive(True, True, tmp_path, mount).ok


# --- --online, against this machine only --------------------------------------------------------

def test_online_says_which_host_fails():
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    try:
        live, dead = f"http://127.0.0.1:{server.server_port}", f"http://localhost:{dead_port}"
        checks = doctor.check_hosts({"MNIST": [f"{live}/mnist/x.gz", f"{dead}/mnist/x.gz"],
                                     "Cat_Dog_data": [f"{dead}/pets.tar.gz"]}, timeout=2)
    finally:
        server.shutdown()
    assert [(c.name, c.ok) for c in checks] == [(f"host 127.0.0.1:{server.server_port}", True),
                                                (f"host localhost:{dead_port}", True),
                                                (f"host localhost:{dead_port}", False)]
    assert checks[0].found == "MNIST's download host answers"
    assert "mirror does not answer" in checks[1].found and "falls back" in checks[1].found  # the other one does
    assert checks[2].found.startswith("Cat_Dog_data's download host does not answer (") and "make data" in checks[2].fix


def test_no_network_request_without_online(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network request without --online")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(doctor.urllib.request, "urlopen", no_network)
    names = [c.name for c in doctor.run_checks(root=tmp_path, online=False)]
    assert "MNIST" in names and "disk space" in names and not any(n.startswith("host ") for n in names)


def test_download_hosts_are_torchvisions():
    hosts = doctor.download_hosts()
    assert set(hosts) == {"MNIST", "FashionMNIST", "Cat_Dog_data"} and all(hosts.values())


# --- the command line and the notebooks' line ---------------------------------------------------

def kept_calibration(cache: Path, factor: float) -> None:
    """A calibration of this machine kept in ``cache``: no measuring in the command below."""
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    calibrate.save(Calibration(factor * calibrate.REFERENCE_SECONDS, {"loading": 1.0}, now,
                               calibrate.fingerprint()), cache / "intro-pytorch" / "calibration.json")


def doctor_cli(data: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_DATA": str(data), "XDG_CACHE_HOME": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "helper.doctor", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_fresh_clone_without_data_lists_every_data_set_and_fails(tmp_path):
    kept_calibration(tmp_path / "cache", 2.0)
    run = doctor_cli(tmp_path / "data", tmp_path / "cache")
    assert run.returncode == 1, run.stdout + run.stderr
    for name in ("MNIST", "FashionMNIST", "Cat_Dog_data"):
        assert re.search(rf"^PROBLEM  {name}: not downloaded .* Fix: run `make data`", run.stdout, re.M), run.stdout
    assert run.stdout.rstrip().endswith("3 problem(s): fix them from the top, then run this again.")
    # the times, scaled by the kept calibration: a machine twice as slow as the reference
    assert "2.0 times slower than the course's 2-core machine" in run.stdout
    assert f"about {calibrate.duration(2 * calibrate.LEARNER_SECONDS['03-training'])}" in run.stdout


def test_with_the_data_in_place_every_check_passes(tmp_path):
    data = fakedata.write_fake_data(tmp_path / "data", cheap=True)
    run = doctor_cli(data, tmp_path / "cache", "--no-times")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert all(line.startswith("ok       ") for line in lines[:-2]) and lines[-1] == "All checks ok."
    assert "Each part on this machine" not in run.stdout


def test_part_line_prints_one_line_from_the_kept_calibration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    kept_calibration(tmp_path / "cache", 1.0)
    monkeypatch.setattr(calibrate, "measure", lambda: pytest.fail("measured again within the week"))
    fakedata.ensure(tmp_path / "data", "MNIST", cheap=True)
    doctor.part_line("07-loading-image-data", root=tmp_path / "data")
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and line.endswith(". If anything fails: python -m helper.doctor\n")
    seconds = calibrate.LEARNER_SECONDS  # a calibration equal to the reference: the measured times
    assert line.startswith(f"07-loading-image-data: about {calibrate.duration(seconds['07-loading-image-data'])} "
                           "on this machine's CPU; data: MNIST ready; Cat_Dog_data not ready (the data cell "
                           "downloads it).")
    doctor.part_line("05-inference-validation", root=tmp_path / "data")
    quick = calibrate.duration(calibrate.QUICK["05-inference-validation"][1])
    assert capsys.readouterr().out.startswith(
        f"05-inference-validation: about {calibrate.duration(seconds['05-inference-validation'])}, {quick} "
        "with `quick = True` on this machine's CPU; data: FashionMNIST not ready")
    doctor.part_line("01-tensors", root=tmp_path / "data")
    assert capsys.readouterr().out == f"01-tensors: about {calibrate.duration(seconds['01-tensors'])} on this " \
        "machine's CPU. If anything fails: python -m helper.doctor\n"


def test_part_line_is_silent_while_nbgrader_grades(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(calibrate, "measure", lambda: pytest.fail("calibrated while grading"))
    doctor.part_line("03-training")
    assert capsys.readouterr().out == ""
