"""instructor.settings: the limits of one grading run, from arguments, the GRADING_* environment
and defaults, and whether grading may go ahead without a sandbox."""

from __future__ import annotations

import pytest

from instructor import limits
from instructor.course import GradingError
from instructor.settings import Settings, cpu_count, parse_size
from instructor.settings import require_sandbox as confine_or_refuse

GRADING_VARIABLES = ("GRADING_TIMEOUT", "GRADING_NOTEBOOK_TIMEOUT", "GRADING_MEMORY", "GRADING_CPU",
                     "GRADING_THREADS", "GRADING_SANDBOX", "GRADING_PROCESSES", "GRADING_WARM")


@pytest.fixture
def clean_env(monkeypatch):
    """No GRADING_* variable from the machine running the tests."""
    for name in GRADING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(("text", "expected"), [
    ("6G", 6 * 2**30), ("512M", 512 * 2**20), ("512m", 512 * 2**20), ("1.5G", 3 * 2**29),
    ("2GiB", 2 * 2**30), ("2GB", 2 * 2**30), (" 64K ", 64 * 2**10), ("1073741824", 2**30), ("1T", 2**40)])
def test_parse_size_reads_what_an_instructor_writes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "6 G B x", "-1G", "6X", "1e9", "six"])
def test_parse_size_refuses_anything_else_in_one_line(text):
    with pytest.raises(ValueError, match=r"not a size: .* \(examples: 6G, 512M\)") as caught:
        parse_size(text)
    assert "\n" not in str(caught.value)


def test_arguments_win_over_the_environment_which_wins_over_defaults(clean_env, tmp_path):
    clean_env.setenv("GRADING_TIMEOUT", "30")
    clean_env.setenv("GRADING_MEMORY", "1G")
    clean_env.setenv("GRADING_SANDBOX", "RLIMITS")
    from_env = Settings.resolve(tmp_path, jobs=2)
    assert (from_env.cell_timeout, from_env.notebook_timeout) == (30, 90), "a notebook gets 3 cells' time"
    assert from_env.memory_bytes == 2**30 and from_env.sandbox == "rlimits"
    assert from_env.threads == max(1, cpu_count() // 2) and not from_env.cpu_given
    assert from_env.cpu_seconds == 90 * from_env.threads
    given = Settings.resolve(tmp_path, jobs=2, timeout=5, notebook_timeout=7, memory="2G", cpu=11,
                             sandbox_mode="bwrap", processes=9)
    assert (given.cell_timeout, given.notebook_timeout, given.memory_bytes) == (5, 7, 2 * 2**30)
    assert (given.cpu_seconds, given.cpu_given, given.sandbox, given.processes) == (11, True, "bwrap", 9)


def test_defaults_without_any_setting(clean_env, tmp_path):
    settings = Settings.resolve(tmp_path, jobs=0)
    assert settings.jobs == 1, "at least one job"
    assert settings.cell_timeout == 600 and settings.notebook_timeout == 1800
    assert 0 < settings.memory_bytes <= 8 * 2**30
    assert settings.sandbox == "bwrap" and settings.processes == 512


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("GRADING_SANDBOX", "docker", "GRADING_SANDBOX must be 'bwrap' or 'rlimits', not 'docker'"),
    ("GRADING_MEMORY", "lots", "not a size: 'lots'"),
])
def test_a_bad_setting_is_refused_in_one_line(clean_env, tmp_path, variable, value, message):
    clean_env.setenv(variable, value)
    with pytest.raises((GradingError, ValueError), match=message) as caught:
        Settings.resolve(tmp_path)
    assert "\n" not in str(caught.value)


def test_task_limits_are_plain_data(clean_env, tmp_path):
    lim = Settings.resolve(tmp_path, timeout=4, memory="1G").task_limits()
    assert lim == {"cell_timeout": 4, "notebook_timeout": 12, "memory_bytes": 2**30, "cpu_seconds": lim["cpu_seconds"],
                   "threads": lim["threads"], "processes": 512, "sandbox": "bwrap", "warm": True}
    assert all(isinstance(v, (int, str)) for v in lim.values()), "it travels to workers"


def test_warm_kernels_unless_told_otherwise(clean_env, tmp_path):
    assert Settings.resolve(tmp_path).task_limits()["warm"] is True
    clean_env.setenv("GRADING_WARM", "0")
    assert Settings.resolve(tmp_path).task_limits()["warm"] is False
    clean_env.setenv("GRADING_WARM", "yes")
    with pytest.raises(GradingError, match="GRADING_WARM must be 0 or 1"):
        Settings.resolve(tmp_path)


def test_grading_refuses_without_a_sandbox(monkeypatch, tmp_path):
    """No bubblewrap: refuse by default, grade with limits only when told to, loudly."""
    from instructor import sandbox

    monkeypatch.setattr(sandbox, "probe", lambda: (False, "bwrap is not installed"))
    settings = Settings.resolve(tmp_path, sandbox_mode="bwrap")
    with pytest.raises(GradingError, match="Grading refused.*GRADING_SANDBOX=rlimits"):
        confine_or_refuse(settings)
    said = []
    settings = Settings.resolve(tmp_path, sandbox_mode="rlimits")
    assert "NONE" in confine_or_refuse(settings, said.append)
    assert "WARNING: grading WITHOUT a sandbox" in said[0]


def test_threads_per_kernel_are_the_workers_own_on_a_cluster(monkeypatch, tmp_path):
    """The coordinator's cores say nothing about a remote worker's: on --cluster, each worker's
    GRADING_THREADS (default 1) sets its kernels' threads and the CPU seconds that follow."""

    for name in ("GRADING_THREADS", "GRADING_CPU"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.resolve(tmp_path, jobs=1)
    local = settings.task_limits()
    assert local["threads"] == cpu_count()
    assert local["cpu_seconds"] == settings.notebook_timeout * local["threads"]
    remote = settings.task_limits(cluster=True)
    assert remote["threads"] is None and remote["cpu_seconds"] is None
    assert limits.worker_limits(remote)["threads"] == 1
    monkeypatch.setenv("GRADING_THREADS", "3")  # as set in a worker's environment
    on_worker = limits.worker_limits(remote)
    assert (on_worker["threads"], on_worker["cpu_seconds"]) == (3, settings.notebook_timeout * 3)
    # an explicit CPU limit, or GRADING_THREADS on the coordinator, is the instructor's word: sent as is
    assert Settings.resolve(tmp_path, cpu=100).task_limits(cluster=True)["cpu_seconds"] == 100
    assert Settings.resolve(tmp_path).task_limits(cluster=True)["threads"] == 3
