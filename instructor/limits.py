"""Limits for a whole submission (every process it starts), not just one process.

A grading kernel can fork: resource limits (``setrlimit``) bound each process on its own, so four
processes under an 8 GiB address-space limit can still take 32 GiB together, and ``RLIMIT_NPROC``
is not enforced for root. A control group bounds them all at once:

- ``pids``: processes and threads of the submission together (a fork loop stops at the limit);
- ``memory``: resident memory of the submission together (the kernel's out-of-memory killer picks
  a process of THIS submission when it goes over, never an honest neighbour or the grader);
- CPU accounting (v2's ``cpu.stat``, v1's ``cpuacct``): the CPU time the submission used, all its
  processes together, which the grading run's cell limit counts (:func:`Group.cpu_seconds`):
  a busy machine stretches wall time, not CPU time, so a verdict does not depend on the load.

Both cgroup v2 (one unified hierarchy, ``memory.max``/``pids.max``) and v1 (one hierarchy per
controller, ``memory.limit_in_bytes``/``pids.max``) are handled. Creating groups needs write access
to the hierarchy: root, or a delegated subtree (systemd's ``Delegate=yes``). Where that is missing,
:func:`available` says why and grading falls back to per-process limits plus a process count per
user (see docs/grading-safety.md).

This file imports only the standard library: :mod:`instructor.sandbox` uses it in the kernel's
launcher.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_NAME = "course-grading"


def _own_paths() -> dict[str, str]:
    """controller name ('' for v2) -> this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return paths
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _v2_base() -> Path | None:
    unified = CGROUP_ROOT / "unified" if (CGROUP_ROOT / "unified" / "cgroup.controllers").exists() else CGROUP_ROOT
    controllers = unified / "cgroup.controllers"
    if not controllers.exists():
        return None
    wanted = {"memory", "pids"}
    if not wanted <= set(controllers.read_text().split()):
        return None
    return unified / _own_paths().get("", "/").lstrip("/")


def _v1_bases() -> dict[str, Path] | None:
    own = _own_paths()
    bases = {}
    for name in ("memory", "pids"):
        mount = CGROUP_ROOT / name
        if not (mount / "cgroup.procs").exists() or name not in own:
            return None
        bases[name] = mount / own[name].lstrip("/")
    return bases


def _v1_cpuacct_base() -> Path | None:
    own = _own_paths()
    for mount in (CGROUP_ROOT / "cpuacct", CGROUP_ROOT / "cpu,cpuacct"):
        if (mount / "cpuacct.usage").exists() and "cpuacct" in own:
            return mount / own["cpuacct"].lstrip("/")
    return None


def tree_cpu_seconds(root: int) -> float | None:
    """CPU seconds of process ``root`` and its live descendants (and the children they waited
    for), from /proc: the fallback where the submission has no control group."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    if root not in times:
        return None
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += children.get(pid, [])
    return total


def tree_threads(root: int) -> list[int]:
    """Thread ids of process ``root`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    tids, todo = [], [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            tids += [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        todo += children.get(pid, [])
    return tids


def _running(tids: list[int]) -> bool:
    """Whether any of these threads is running or ready to run (state R)."""
    for tid in tids:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "R":
                return True
    return False


class SubmissionClock:
    """Seconds a submission has used, counted so that a busy machine does not stretch them.

    Sampled at each :meth:`read`: while any thread of the submission is running (or ready to run
    and waiting for a core), the clock advances by the CPU seconds it got per allowed thread,
    never faster than the wall clock; while every thread waits (sleep, I/O, the grader between two
    cells), it advances with the wall clock. On an idle machine it reads (about) wall time; on a
    loaded one a computing cell still needs the same CPU to reach its limit, and a sleeping one
    the same seconds. ``group``: the submission's :class:`Group`, or None to follow the process
    tree of the pid in ``pid_file``."""

    def __init__(self, group: Group | None, pid_file: str = "", threads: int = 1):
        self.group, self.pid_file, self.threads = group, pid_file, max(1, threads)
        self.elapsed = 0.0
        self._wall, self._cpu = time.monotonic(), self._cpu_seconds()

    def _root(self) -> int | None:
        try:
            return int(Path(self.pid_file).read_text())
        except (OSError, ValueError):
            return None

    def _cpu_seconds(self) -> float:
        used = self.group.cpu_seconds() if self.group is not None else None
        if used is None and (root := self._root()) is not None:
            used = tree_cpu_seconds(root)
        return used or 0.0

    def _tids(self) -> list[int]:
        if self.group is not None:
            return self.group.threads()
        root = self._root()
        return tree_threads(root) if root is not None else []

    def read(self) -> float:
        """Seconds on this clock since it was made."""
        wall, cpu = time.monotonic(), self._cpu_seconds()
        dt, dcpu = wall - self._wall, max(0.0, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        self.elapsed += min(dt, dcpu / self.threads) if _running(self._tids()) else dt
        return self.elapsed


@dataclass
class Group:
    """One submission's control group(s). ``dirs``: controller -> folder ('' for v2)."""

    dirs: dict[str, str]

    @property
    def version(self) -> int:
        """2 for the unified hierarchy, 1 for one hierarchy per controller."""
        return 2 if "" in self.dirs else 1

    def join(self, pid: int | None = None) -> None:
        """Move ``pid`` (default: this process) into the group; children inherit it."""
        for folder in set(self.dirs.values()):
            Path(folder, "cgroup.procs").write_text(str(pid or os.getpid()))

    def events(self) -> dict[str, int]:
        """How often each limit was hit: {'pids': refused forks, 'oom_kill': processes killed}."""
        out = {"pids": 0, "oom_kill": 0}
        pids_dir = Path(self.dirs.get("", self.dirs.get("pids", "")))
        mem_dir = Path(self.dirs.get("", self.dirs.get("memory", "")))
        out["pids"] = _read_key(pids_dir / "pids.events", "max")
        if self.version == 2:
            out["oom_kill"] = _read_key(mem_dir / "memory.events", "oom_kill")
        else:
            out["oom_kill"] = _read_key(mem_dir / "memory.oom_control", "oom_kill")
        return out

    def cpu_seconds(self) -> float | None:
        """CPU seconds used so far by every process of the group, dead ones included (None: no
        CPU accounting for this group)."""
        if self.version == 2:
            usec = _read_key(Path(self.dirs[""]) / "cpu.stat", "usage_usec", default=-1)
            return usec / 1e6 if usec >= 0 else None
        if "cpuacct" not in self.dirs:
            return None
        try:
            return int(Path(self.dirs["cpuacct"], "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def threads(self) -> list[int]:
        """The thread ids of every process in the group."""
        tids: set[int] = set()
        for folder in set(self.dirs.values()):
            for name in ("cgroup.threads", "tasks"):
                with contextlib.suppress(OSError):
                    tids.update(int(t) for t in Path(folder, name).read_text().split())
        return sorted(tids)

    def processes(self) -> list[int]:
        """The pids of every process in the group."""
        pids: set[int] = set()
        for folder in set(self.dirs.values()):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in Path(folder, "cgroup.procs").read_text().split())
        return sorted(pids)

    def destroy(self) -> None:
        """Kill whatever is left in the group and remove it."""
        for _ in range(50):
            left = self.processes()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for folder in set(self.dirs.values()):
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def worker_limits(lim: dict) -> dict:
    """A task's limits ``lim`` with what the coordinator left to the worker filled in: threads per
    kernel from this worker's GRADING_THREADS (default 1), CPU seconds = notebook timeout x threads."""
    lim = dict(lim)
    lim["threads"] = lim.get("threads") or int(os.environ.get("GRADING_THREADS") or 1)
    lim["cpu_seconds"] = lim.get("cpu_seconds") or lim["notebook_timeout"] * lim["threads"]
    return lim


def kill_submission(group: Group | None, pid_file: str = "") -> None:
    """Kill every process of a submission now: its group's, and the launcher in ``pid_file``
    (bwrap: ``--die-with-parent`` takes the sandbox with it)."""
    pids = group.processes() if group is not None else []
    with contextlib.suppress(OSError, ValueError), open(pid_file) as f:
        pids.append(int(f.read()))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _read_key(path: Path, key: str, default: int = 0) -> int:
    try:
        m = re.search(rf"^{key} (\d+)$", path.read_text(), re.MULTILINE)
    except OSError:
        return default
    return int(m[1]) if m else default


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def create(memory_bytes: int, max_pids: int, name: str | None = None) -> Group:
    """A new group with these limits. Raises OSError when cgroups cannot be written here."""
    name = name or f"job-{uuid.uuid4().hex[:12]}"
    base = _v2_base()
    if base is not None and os.access(base, os.W_OK):
        parent = base / GROUP_NAME
        parent.mkdir(exist_ok=True)
        # v2: a group's controllers must be enabled in its parent's subtree_control
        _write(parent / "cgroup.subtree_control", "+memory +pids")
        folder = parent / name
        folder.mkdir()
        _write(folder / "memory.max", str(memory_bytes))
        if (folder / "memory.swap.max").exists():
            _write(folder / "memory.swap.max", "0")
        _write(folder / "pids.max", str(max_pids))
        return Group({"": str(folder)})
    bases = _v1_bases()
    if bases is None:
        raise OSError("no cgroup hierarchy with the memory and pids controllers is mounted")
    dirs = {}
    try:
        for controller, b in bases.items():
            folder = b / GROUP_NAME / name
            folder.mkdir(parents=True)
            dirs[controller] = str(folder)
        _write(Path(dirs["memory"]) / "memory.limit_in_bytes", str(memory_bytes))
        memsw = Path(dirs["memory"]) / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            _write(memsw, str(memory_bytes))
        _write(Path(dirs["pids"]) / "pids.max", str(max_pids))
        cpu = _v1_cpuacct_base()
        if cpu is not None:  # accounting only: without it the cell limit counts the kernel's own CPU
            with contextlib.suppress(OSError):
                (cpu / GROUP_NAME / name).mkdir(parents=True)
                dirs["cpuacct"] = str(cpu / GROUP_NAME / name)
    except OSError:
        Group(dirs).destroy()
        raise
    return Group(dirs)


def available() -> tuple[bool, str]:
    """Can this process create per-submission groups? (ok, one-line explanation)."""
    try:
        group = create(256 * 2**20, 16, name=f"probe-{os.getpid()}")
    except OSError as exc:
        return False, f"cgroups not writable here ({exc.strerror or exc})"
    version = group.version
    group.destroy()
    return True, f"cgroup v{version} memory and pids controllers"
