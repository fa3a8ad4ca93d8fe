"""instructor.zygotes: a worker keeps one zygote per kernel configuration, a few at most, and
leaves a kernel cold where it has none. (tests/instructor/test_warm.py starts kernels from one.)"""

from __future__ import annotations

import pytest

from instructor import sandbox, zygotes
from instructor.course import ROOT

LIMITS = {"cell_timeout": 10, "notebook_timeout": 30, "memory_bytes": 2**30, "cpu_seconds": 60,
          "threads": 1, "processes": 64, "sandbox": "bwrap", "warm": True}


def config(tmp_path, preload, mode="bwrap"):
    return sandbox.kernel_config({**LIMITS, "sandbox": mode}, tmp_path / "scratch", None, preload, None, [],
                                 ROOT / "helper")


def test_the_key_is_the_interpreter_environment_and_preloads(tmp_path):
    assert zygotes.zygote_key(config(tmp_path, ["numpy"])) == zygotes.zygote_key(config(tmp_path / "x", ["numpy"]))
    assert zygotes.zygote_key(config(tmp_path, ["numpy"])) != zygotes.zygote_key(config(tmp_path, ["json"]))
    other = config(tmp_path, ["numpy"])
    other["env"]["OMP_NUM_THREADS"] = "4"
    assert zygotes.zygote_key(other) != zygotes.zygote_key(config(tmp_path, ["numpy"]))


def test_without_a_sandbox_the_kernel_stays_cold(tmp_path):
    cold = config(tmp_path, ["json"], mode="rlimits")
    assert zygotes.attach(cold, tmp_path).startswith("cold kernel") and "warm" not in cold
    assert not list(tmp_path.glob("zygote-*")), "no zygote started"


@pytest.fixture
def no_zygotes():
    zygotes.stop_all()
    yield
    zygotes.stop_all()


def test_one_zygote_per_configuration_a_few_at_most(tmp_path, no_zygotes):
    first = config(tmp_path, ["json"])
    assert zygotes.attach(first, tmp_path).startswith("warm kernel")
    again = config(tmp_path, ["json"])
    zygotes.attach(again, tmp_path)
    assert again["warm"] == first["warm"], "the same configuration shares its zygote"
    (proc, _), = zygotes._ZYGOTES.values()
    for preload in (["csv"], ["shlex"]):
        zygotes.attach(config(tmp_path, preload), tmp_path)
    assert len(zygotes._ZYGOTES) == zygotes.MAX_ZYGOTES
    assert proc.poll() is not None, "the least recently started zygote was ended"


def test_a_dead_zygote_is_replaced(tmp_path, no_zygotes):
    first = config(tmp_path, ["json"])
    zygotes.attach(first, tmp_path)
    (proc, _), = zygotes._ZYGOTES.values()
    proc.kill()
    proc.wait()
    zygotes.attach(config(tmp_path, ["json"]), tmp_path)
    (replacement, _), = zygotes._ZYGOTES.values()
    assert replacement.pid != proc.pid and replacement.poll() is None


def test_a_zygote_ends_with_its_worker(tmp_path, no_zygotes):
    proc, why = zygotes.start(config(tmp_path, ["json"]), tmp_path / "z")
    assert proc is not None, why
    proc.stdin.close()  # what the worker's exit does to the pipe
    assert proc.wait(timeout=30) == 0
