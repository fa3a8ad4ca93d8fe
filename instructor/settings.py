"""How one grading run confines and times student code, and whether this machine can confine it.

Limits, from the environment or the command line (command line wins):

    GRADING_TIMEOUT           seconds one cell may run (default: c.Execute.timeout in
                              nbgrader_config.py, 600: Part 8 trains for minutes on a CPU)
    GRADING_NOTEBOOK_TIMEOUT  wall-clock seconds for a whole notebook (default 3 x the cell
                              timeout: a student can add cells, each just under the limit)
    GRADING_MEMORY            address space per kernel, e.g. 6G (default: min(8G, 3/4 of RAM / JOBS))
    GRADING_CPU               CPU seconds per kernel (default: notebook timeout x threads)
    GRADING_THREADS           threads per kernel (default: cores / JOBS on a local cluster; on
                              --cluster, read on each worker from ITS environment, default 1)
    GRADING_SANDBOX           bwrap (default: refuse to grade without it) or rlimits (grade
                              with resource limits only, NOT confined: see docs/grading-safety.md)
    GRADING_WARM              1 (default): start each kernel from a zygote that has PyTorch imported,
                              in the same sandbox (instructor.warm); 0: a cold kernel each time
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import limits, sandbox
from .course import GradingError, configured_timeout


def parse_size(text: str) -> int:
    """'6G', '512M', '1073741824' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 6G, 512M)")
    return int(float(m[1]) * 1024 ** " KMGT".index(m[2].upper() or " "))


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def total_memory() -> int:
    """Physical memory of this machine, in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass
class Settings:
    """How one grading run confines and times student code."""

    jobs: int = 1
    cell_timeout: int = 600
    notebook_timeout: int = 1800
    memory_bytes: int = 8 * 2**30
    cpu_seconds: int = 3600
    threads: int = 1
    processes: int = 512        # processes and threads of one submission, all together
    sandbox: str = "bwrap"
    data_dir: str | None = None
    cpu_given: bool = False     # cpu_seconds was set (argument or GRADING_CPU), not derived from threads
    warm: bool = True           # kernels forked from a zygote with the preloads imported (GRADING_WARM)

    @classmethod
    def resolve(cls, course: Path, jobs: int = 1, timeout: int | None = None,
                notebook_timeout: int | None = None, memory: str | None = None,
                cpu: int | None = None, sandbox_mode: str | None = None,
                processes: int | None = None) -> Settings:
        """Settings from the arguments, else the GRADING_* environment variables, else defaults (module docstring)."""
        env = os.environ
        jobs = max(1, int(jobs))
        cell = int(timeout or env.get("GRADING_TIMEOUT") or configured_timeout(course) or 600)
        whole = int(notebook_timeout or env.get("GRADING_NOTEBOOK_TIMEOUT") or 3 * cell)
        threads = int(env.get("GRADING_THREADS") or max(1, cpu_count() // jobs))
        mem = memory or env.get("GRADING_MEMORY")
        mem_bytes = parse_size(mem) if mem else min(8 * 2**30, int(total_memory() * 0.75 / jobs))
        mode = (sandbox_mode or env.get("GRADING_SANDBOX") or "bwrap").lower()
        if mode not in ("bwrap", "rlimits"):
            raise GradingError(f"GRADING_SANDBOX must be 'bwrap' or 'rlimits', not {mode!r}")
        warm = env.get("GRADING_WARM", "1").strip()
        if warm not in ("0", "1"):
            raise GradingError(f"GRADING_WARM must be 0 or 1, not {warm!r}")
        from helper.data import data_root  # a course library: read where the course runs

        return cls(jobs=jobs, cell_timeout=cell, notebook_timeout=whole, memory_bytes=mem_bytes,
                   cpu_seconds=int(cpu or env.get("GRADING_CPU") or whole * threads),
                   threads=threads, processes=int(processes or env.get("GRADING_PROCESSES") or 512),
                   sandbox=mode, data_dir=os.path.realpath(data_root()),
                   cpu_given=bool(cpu or env.get("GRADING_CPU")), warm=warm == "1")

    def task_limits(self, cluster: bool = False) -> dict:
        """What a grading task needs to confine one submission (plain data: it travels to workers).
        On a ``cluster`` the cores are the worker's, not this machine's: threads per kernel (and the
        CPU seconds derived from them) are left to the worker (``GRADING_THREADS`` there, default 1)."""
        remote = cluster and "GRADING_THREADS" not in os.environ
        return {"cell_timeout": self.cell_timeout, "notebook_timeout": self.notebook_timeout,
                "memory_bytes": self.memory_bytes,
                "cpu_seconds": None if remote and not self.cpu_given else self.cpu_seconds,
                "threads": None if remote else self.threads, "processes": self.processes, "sandbox": self.sandbox,
                "warm": self.warm}


def require_sandbox(settings: Settings, say=print) -> str:
    """Check bubblewrap; refuse (GradingError) or warn loudly. Returns the status line."""
    ok, message = sandbox.probe()
    if ok:
        cg_ok, cg_message = limits.available()
        per_submission = (f"per-submission limits: {cg_message}" if cg_ok else
                          f"per-submission limits UNAVAILABLE ({cg_message}): memory is limited per process, "
                          "processes per user (see docs/grading-safety.md)")
        return f"sandbox: bubblewrap ({message}); {per_submission}"
    if settings.sandbox == "rlimits":
        banner = "!" * 78
        say(f"{banner}\n!! WARNING: grading WITHOUT a sandbox: {message}\n"
            "!! Student code runs with resource limits only: it can read solutions/ and the\n"
            "!! gradebook, write anywhere this user can, and use the network.\n"
            f"{banner}")
        return f"sandbox: NONE (resource limits only): {message}"
    raise GradingError(
        f"cannot confine student code: {message}.\n"
        "Grading refused. Install bubblewrap, or accept the risk explicitly with "
        "GRADING_SANDBOX=rlimits (see docs/grading-safety.md).")


def confinement() -> tuple[bool, list[str]]:
    """(confined, lines): what ``python -m instructor check`` says about this machine."""
    ok, message = sandbox.probe()
    if not ok:
        return False, ["!" * 78, f"!! NOT CONFINED: {message}",
                       "!! `make autograde` refuses to grade; GRADING_SANDBOX=rlimits grades anyway with",
                       "!! resource limits only (student code can then read solutions/ and the gradebook).",
                       "!" * 78]
    cg_ok, cg_message = limits.available()
    return True, [f"OK: student code will run confined: {message}",
                  ("OK: per-submission memory and process limits: " if cg_ok else
                   "WARNING: no per-submission limits (per-process only): ") + cg_message]
