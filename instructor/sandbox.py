"""The confined kernel that runs students' code while grading.

nbgrader runs every submitted notebook in a Jupyter kernel. Here that kernel is started
through this file, which sets resource limits and wraps ``python -m ipykernel_launcher`` in
bubblewrap (``bwrap``, Debian package ``bubblewrap``):

- resource limits (inherited by everything the kernel starts): address space (memory),
  CPU seconds, largest file written, open files, no core dumps;
- new user, pid, network, ipc and uts namespaces: no network at all (not even the host's
  localhost), no view of other processes, an unprivileged uid, no capabilities;
- a file system that holds only what the kernel needs, read-only: the system's ``/usr`` and a
  few files of ``/etc``, the Python installation, the course's ``helper`` package and the data
  folder; writable: the student's own folder under ``autograded/``, a small ``/tmp`` and the
  kernel's connection folder. ``solutions/``, the gradebook, ``submitted/``, other students'
  folders and the rest of the repository do not exist inside; the notebook being graded
  (which holds the hidden tests once nbgrader restored them) is replaced by an empty file.

The kernel talks to nbgrader over ZeroMQ *ipc* sockets (Unix sockets in the connection
folder), which cross the network namespace because they are files.

Two halves:

- :func:`write_kernelspec` (used by :mod:`instructor.tasks`) writes a per-run kernelspec
  whose ``argv`` is ``python sandbox.py launch --config RUN.json -f {connection_file}``;
- ``launch`` (run by jupyter_client for every kernel) reads that config and ``exec``s bwrap.

This file imports only the standard library: jupyter_client runs it with the kernel's cwd,
where the ``instructor`` package is not importable.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

KERNEL_NAME = "course-sandbox"
SANDBOX_UID = 65534  # "nobody": the uid the kernel sees inside the sandbox

# /etc entries a Python kernel reads; everything else in /etc stays out of sight.
ETC_ALLOWED = [
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd", "group",
    "nsswitch.conf", "hosts", "host.conf", "fonts", "ssl", "ca-certificates", "alternatives",
    "mime.types", "matplotlibrc", "os-release", "debian_version",
]


# The kernel's entry point when modules are preloaded: import them (a missing one is left to the
# cell that imports it), then run ipykernel exactly as ``python -m ipykernel_launcher`` would.
PRELOAD_LAUNCHER = """import importlib, runpy, sys
for name in sys.argv.pop(1).split(","):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
sys.argv[0] = "ipykernel_launcher"
runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
"""


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces on this machine."""


# ---------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------

def bwrap_path() -> str | None:
    """Where bubblewrap is, or None."""
    return shutil.which("bwrap")


def probe() -> tuple[bool, str]:
    """Can bubblewrap build the sandbox here? (ok, one-line explanation)."""
    bwrap = bwrap_path()
    if bwrap is None:
        return False, ("bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` "
                       "(Debian/Ubuntu) or your distribution's equivalent")
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
           "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
           *_system_binds(), "--proc", "/proc", "--dev", "/dev", "--", "true"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not be run: {exc}"
    if proc.returncode != 0:
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        return False, (f"bwrap cannot create its namespaces here ({why}); typical causes: "
                       "unprivileged user namespaces disabled (sysctl kernel.unprivileged_userns_clone=0, "
                       "AppArmor's restrict_unprivileged_userns) or a container without CAP_SYS_ADMIN")
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.strip()
    return True, f"{version} at {bwrap}: namespaces work"


# ---------------------------------------------------------------------------
# Building the configuration (grading side)
# ---------------------------------------------------------------------------

def _realpaths(paths) -> list[str]:
    out: list[str] = []
    for p in paths:
        if p is None:
            continue
        rp = os.path.realpath(p)
        if os.path.exists(rp) and rp not in out:
            out.append(rp)
    return out


def python_paths() -> list[str]:
    """Folders the kernel's Python needs: the interpreter's installation and the venv."""
    return _realpaths([sys.base_prefix, sys.prefix, sys.exec_prefix,
                       os.path.dirname(os.path.realpath(sys.executable))])


def kernel_python() -> str:
    """The interpreter the kernel runs: this venv's python, by a path that keeps the venv."""
    return os.path.join(os.path.realpath(sys.prefix), "bin", "python")


# Imported by the kernel before it answers (not charged to any cell, never cut halfway by a cell's
# limit): the canaries' own imports, and torchvision where the part uses it.
PRELOAD = ("numpy", "torch")


def preload_modules(source: bytes) -> list[str]:
    """The modules a grading kernel of this part (``source``: its notebook) imports before its first cell."""
    return [*PRELOAD, *(["torchvision"] if b"torchvision" in source else [])]


def kernel_config(lim: dict, scratch: Path, cgroup: dict | None, preload: list[str], data_dir: str | None,
                  masked: list[str], helper: Path) -> dict:
    """What ``launch`` needs for one submission: ``lim`` (a task's limits, the worker's filled in),
    its ``scratch`` folder (the course copy under it, the kernel's folder and pid file), its control
    group's folders, the modules to preload, the data folder, folders to hide and the course's
    ``helper`` package."""
    binds = [[p, p] for p in python_paths()]
    if helper.is_dir():
        binds.append([str(helper), "/opt/course/helper"])
    env = {
        "PYTHONPATH": "/opt/course",
        "MPLBACKEND": "Agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "NBGRADER_EXECUTION": "autograde",
        "LANG": "C.UTF-8",
        "TQDM_MININTERVAL": "5",
        **{f"{name}_NUM_THREADS": str(lim["threads"]) for name in ("OMP", "MKL", "OPENBLAS")},
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks: keep as set
        if os.environ.get(name):
            env[name] = os.environ[name]
    if data_dir and os.path.isdir(data_dir):
        binds.append([data_dir, data_dir])
        env["COURSE_DATA"] = data_dir
    return {
        "mode": lim["sandbox"],
        "bwrap": bwrap_path(),
        "python": kernel_python(),
        "allowed_parent": str(scratch / "course" / "autograded"),
        "masked": [p for p in masked if os.path.isdir(p)],
        "ro_binds": binds,
        "env": env,
        "cgroup": cgroup,
        "pidfile": str(scratch / "kernel.pid"),
        "preload": preload,
        "kernel_dir": str(scratch / "kernel"),
        "limits": {
            "memory_bytes": lim["memory_bytes"],
            "cpu_seconds": lim["cpu_seconds"],
            "file_bytes": 1 * 2**30,
            "open_files": 4096,
            "tmp_bytes": 512 * 2**20,
            "processes": lim["processes"],
        },
    }


def write_kernelspec(jupyter_dir: Path, config: dict) -> Path:
    """Write ``<jupyter_dir>/kernels/course-sandbox/kernel.json`` and the run config beside it.

    jupyter_dir: a folder to put first on JUPYTER_PATH while grading
    config: what ``launch`` needs (:func:`kernel_config`)
    Returns the kernelspec folder.
    """
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    config_path = spec_dir / "sandbox.json"
    config_path.write_text(json.dumps(config, indent=2))
    # A warm kernel (config["warm"]: a zygote's socket) starts through warm.py, beside this file.
    launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "warm.py") if config.get("warm") else \
        os.path.abspath(__file__)
    spec = {
        # The launcher needs only the standard library: -I -S skip the venv's site (~6 ms a kernel).
        "argv": [kernel_python(), "-I", "-S", launcher, "launch", "--config", str(config_path),
                 "-f", "{connection_file}"],
        "display_name": "Python 3 (grading sandbox)",
        "language": "python",
        # Interrupts travel as a message: a SIGINT to the process group would hit bwrap,
        # not the kernel, which runs in its own session.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2))
    return spec_dir


# ---------------------------------------------------------------------------
# Launching (kernel side, runs in the kernel's working directory)
# ---------------------------------------------------------------------------

def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC_ALLOWED:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def set_limits(limits: dict) -> None:
    """Resource limits for this process and everything it starts (soft = hard)."""
    table = {
        "memory_bytes": resource.RLIMIT_AS,
        "cpu_seconds": resource.RLIMIT_CPU,
        "file_bytes": resource.RLIMIT_FSIZE,
        "open_files": resource.RLIMIT_NOFILE,
    }
    for key, which in table.items():
        value = limits.get(key)
        if value:
            resource.setrlimit(which, (int(value), int(value)))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _user_processes(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                count += os.stat(f"/proc/{entry}").st_uid == uid
    return count


def confine_submission(config: dict) -> None:
    """Limits for everything the submission starts, together: join its control group (memory and
    process count, see :mod:`instructor.limits`) or, without one, cap this user's processes."""
    group = config.get("cgroup")
    if group:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import limits  # noqa: PLC0415 - standard-library-only sibling, imported by path

        limits.Group(group).join()
        return
    nproc = config.get("limits", {}).get("processes")
    if nproc and os.getuid() != 0:  # root ignores RLIMIT_NPROC
        cap = _user_processes(os.getuid()) + int(nproc)
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))


def kernel_env(config: dict, python: str) -> dict[str, str]:
    """The kernel's whole environment inside the sandbox (nothing of the launcher's)."""
    env = {key: str(value) for key, value in config.get("env", {}).items()}
    env.update({"HOME": "/tmp", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib",
                "PATH": os.pathsep.join([os.path.dirname(python), "/usr/bin", "/bin"])})
    return env


def bwrap_argv(config: dict, cwd: str, shared: list[str], kernel_argv: list[str]) -> list[str]:
    """The full bwrap command line that runs ``kernel_argv`` confined to ``cwd``."""
    limits = config.get("limits", {})
    tmp_size = str(int(limits.get("tmp_bytes") or 256 * 2**20))
    args = [config.get("bwrap") or "bwrap",
            "--unshare-all", "--unshare-user", "--disable-userns",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "grading",
            "--die-with-parent", "--new-session", "--clearenv",
            *_system_binds(),
            "--proc", "/proc", "--dev", "/dev",
            "--size", tmp_size, "--tmpfs", "/tmp",
            "--size", tmp_size, "--tmpfs", "/dev/shm"]
    # The course folder (which may well lie under /tmp) becomes an empty read-only folder that
    # only holds the mount points below: nothing of the real one shows, nothing can be written.
    masked = config.get("masked", [])
    for path in masked:
        args += ["--perms", "0755", "--tmpfs", path]
    for src, dest in config.get("ro_binds", []):
        args += ["--ro-bind", src, dest]
    for path in shared:  # the connection file and the kernel's ipc sockets
        args += ["--bind", path, path]
    # The kernel's working folder is a fresh, size-limited tmpfs at the path of the student's
    # folder: what student code writes there (files, links, FIFOs, thousands of files) lives and
    # dies with the sandbox and never reaches a disk that a process outside it walks. The graded
    # notebook itself (which holds the hidden tests) is not in it.
    args += ["--size", tmp_size, "--perms", "0777", "--tmpfs", cwd]
    for key, value in sorted(kernel_env(config, kernel_argv[0]).items()):
        args += ["--setenv", key, str(value)]
    # The root itself (mount points bwrap made for the binds above) is read-only too.
    for path in masked:
        args += ["--remount-ro", path]
    args += ["--remount-ro", "/", "--chdir", cwd, "--", *kernel_argv]
    return args


def _inside(path: str, parent: str) -> bool:
    path, parent = os.path.realpath(path), os.path.realpath(parent)
    return os.path.commonpath([path, parent]) == parent and path != parent


def prepare(argv: list[str]) -> tuple[dict, str, list[str], list[str]]:
    """Check ``launch``'s arguments: (config, the kernel's folder, the folders bwrap shares with it,
    the kernel's own arguments). Exits with the reason where a kernel must not start."""
    if len(argv) < 2 or argv[0] != "--config":
        sys.exit("usage: sandbox.py launch --config RUN.json -f CONNECTION_FILE [...]")
    config = json.loads(Path(argv[1]).read_text())
    rest = argv[2:]
    if "-f" not in rest:
        sys.exit("sandbox: no connection file (-f) given")
    connection_file = os.path.realpath(rest[rest.index("-f") + 1])
    cwd = os.path.realpath(os.getcwd())
    allowed = config["allowed_parent"]
    if not _inside(cwd, allowed):
        sys.exit(f"sandbox: refusing to start a grading kernel in {cwd}: "
                 f"student code only runs in a student's folder under {allowed}")
    if config["mode"] != "bwrap":
        return config, cwd, [], rest
    info = json.loads(Path(connection_file).read_text())
    if info.get("transport") != "ipc" or not os.path.isabs(info.get("ip", "")):
        sys.exit("sandbox: the grading kernel has no network; it needs "
                 "KernelManager.transport='ipc' with an absolute KernelManager.ip")
    shared = sorted({os.path.dirname(connection_file), os.path.dirname(os.path.realpath(info["ip"]))})
    kernel_dir = os.path.realpath(config.get("kernel_dir") or "/nonexistent")
    if any(path != kernel_dir for path in shared):
        sys.exit(f"sandbox: the kernel's connection file and sockets must be in {kernel_dir}, "
                 f"not {', '.join(shared)}: that folder is shared with the sandbox")
    return config, cwd, shared, rest


def start_kernel(config: dict, cwd: str, shared: list[str], rest: list[str]) -> None:
    """Limits, control group and pid file, then exec the cold kernel: python in bwrap (or, in mode
    "rlimits", python with the limits only)."""
    kernel_argv = [config["python"], "-m", "ipykernel_launcher", *rest]
    if config.get("preload"):
        kernel_argv = [config["python"], "-c", PRELOAD_LAUNCHER, ",".join(config["preload"]), *rest]
    set_limits(config.get("limits", {}))
    confine_submission(config)
    if config.get("pidfile"):  # the grading task kills this process when the notebook runs out of time
        Path(config["pidfile"]).write_text(str(os.getpid()))
    if config["mode"] == "bwrap":
        os.execv(config.get("bwrap") or bwrap_path(), bwrap_argv(config, cwd, shared, kernel_argv))
    # mode "rlimits": the operator accepted running without a sandbox (see docs/grading-safety.md).
    sys.stderr.write("sandbox: WARNING: no bubblewrap sandbox, resource limits only\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADING_")}
    env.update(config.get("env", {}))
    os.execve(kernel_argv[0], kernel_argv, env)


def launch(argv: list[str]) -> None:
    """``sandbox.py launch --config RUN.json -f CONNECTION_FILE [kernel args...]``: exec the kernel."""
    start_kernel(*prepare(argv))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "launch":
        launch(sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == "probe":
        ok, msg = probe()
        print(("OK: " if ok else "UNAVAILABLE: ") + msg)
        sys.exit(0 if ok else 1)
    else:
        sys.exit(__doc__)
