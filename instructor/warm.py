"""Warm grading kernels: PyTorch imported once per worker, each submission's kernel forked from it
into that submission's own sandbox, the same sandbox a cold kernel gets.

Each worker keeps, per kernel configuration, a *zygote* (:mod:`instructor.zygotes`): Python started
with the kernel's environment and nothing of the worker's, that imports the kernel's preloads and
ipykernel, starts no thread, never runs submitted code and answers on a Unix socket in the worker's
private folder. Per submission, jupyter_client runs this file's ``launch``: the cold launcher's
checks, limits, control group and pid file, then bubblewrap with the cold kernel's exact command
line around a *holder* that only waits, whose namespaces go to the zygote as descriptors. The
zygote forks a child that takes the limits and the control group, enters those namespaces, drops
every capability and forks the kernel into the sandbox's pid namespace; before any submitted code
the kernel checks who and where it is, takes the kernel's environment, folder and umask, reseeds
the generators, forgets this module and runs ipykernel as the cold kernel does; where any of this
fails, ``launch`` starts the cold kernel. Why this isolates: docs/grading-safety.md#warm-kernels.

This file imports only the standard library: jupyter_client runs it by its path, as sandbox.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib
import itertools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

NS_GET_PARENT = 0xB702                           # ioctl on a namespace descriptor: its parent user namespace
NAMESPACES = ("mnt", "ipc", "uts", "net", "cgroup", "pid")  # entered after the outer user namespace
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 1, 24, 38, 47, 4
CAPABILITY_VERSION_3 = 0x20080522
# What ipykernel_launcher imports, and what its start imports on top (the debugger's debugpy, the
# shell's history database): ~40 ms a kernel, paid once in the zygote instead.
WARM_IMPORTS = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "IPython.core.debugger",
                "IPython.core.completerlib", "IPython.extensions.storemagic", "sqlite3")
HOLDER = ["/bin/sh", "-c", "echo ready; read line"]  # the sandbox's first process: waits for EOF
_IMPORTED_ENV: dict[str, str] = {}               # in a zygote: what its imports added to the environment
ZYGOTE_BOOT = """import sys
sys.path.insert(0, sys.argv[1])
import warm
kernel = warm.serve(sys.argv[2], sys.argv[3].split(",") if sys.argv[3] else [])
warm.become(kernel)
"""


class WarmUnavailable(RuntimeError):
    """The warm path cannot start this kernel; the cold one can."""


def _siblings():
    """sandbox and limits, from beside this file: jupyter_client runs it by its path (the
    launcher), so does the zygote; the instructor package is not importable there."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import limits  # noqa: PLC0415 - standard-library-only siblings, imported by path
    import sandbox  # noqa: PLC0415
    return sandbox, limits


# System calls Python 3.11 does not wrap

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setns(fd: int, what: str) -> None:
    _check(_libc.setns(fd, 0), f"setns({what})")


def _prctl(option: int, arg: int = 0, arg2: int = 0) -> None:
    _check(_libc.prctl(option, *(ctypes.c_ulong(a) for a in (arg, arg2, 0, 0))), f"prctl({option})")


def drop_capabilities() -> None:
    """Leave no capability in any set: bounding, ambient, inheritable, permitted, effective; and
    no way to gain one (no_new_privs)."""
    for cap in range(int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = struct.pack("Ii", CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(bytes(24))), "capset")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def credentials() -> dict[str, str]:
    """This process's uid, gid, groups, capability sets, no_new_privs and seccomp, as /proc shows them."""
    keys = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
    lines = Path("/proc/self/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines) if k in keys}


# The launcher (runs for every kernel, outside the sandbox)

def _start_holder(sandbox, config: dict, cwd: str, shared: list[str]) -> tuple[subprocess.Popen, int]:
    """bubblewrap with the cold kernel's command line around HOLDER: (the process, the host pid of
    the sandbox's first process) once the holder runs, every mount in place."""
    info_read, info_write = os.pipe()
    argv = sandbox.bwrap_argv(config, cwd, shared, HOLDER)
    argv[1:1] = ["--info-fd", str(info_write)]
    holder = subprocess.Popen(argv, pass_fds=[info_write], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    os.close(info_write)
    with os.fdopen(info_read, "rb") as f:
        raw = f.read()
    ready = holder.stdout.readline()
    holder.stdout.close()
    if not raw or ready != b"ready\n":
        holder.kill()
        raise WarmUnavailable(f"bubblewrap did not start the holder (exit {holder.wait()})")
    return holder, int(json.loads(raw)["child-pid"])


def _send(conn: socket.socket, request: dict, fds: list[int]) -> None:
    data = json.dumps(request).encode() + b"\n"
    sent = socket.send_fds(conn, [data[:1]], fds)
    conn.sendall(data[sent:])


def _lines(conn: socket.socket):
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield json.loads(line)


def warm_kernel(config: dict, cwd: str, shared: list[str], rest: list[str]) -> int:
    """Start this submission's kernel from the zygote at ``config["warm"]`` inside a sandbox built
    as the cold one; returns the kernel's exit code. WarmUnavailable before the kernel runs."""
    sandbox, _ = _siblings()
    holder, init_pid = _start_holder(sandbox, config, cwd, shared)
    fds = []
    try:
        fds = [os.open(f"/proc/{init_pid}/ns/{name}", os.O_RDONLY) for name in ("user", *NAMESPACES)]
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(config["warm"])
    except OSError as exc:
        holder.kill()
        raise WarmUnavailable(f"no zygote ({exc})") from None
    stdio = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            stdio.append(fd)
        except OSError:
            stdio.append(os.open(os.devnull, os.O_RDWR))
    os.umask(umask := os.umask(0o022))  # read, and kept: the kernel takes the launcher's, as a cold one
    request = {"config": config, "cwd": cwd, "argv": rest, "umask": umask}
    with conn:
        _send(conn, request, [*stdio, *fds])
        for fd in fds:
            os.close(fd)
        replies = _lines(conn)
        first = next(replies, {"error": "the zygote closed the connection"})
        if "pid" not in first:
            holder.kill()
            raise WarmUnavailable(first.get("error", "no answer"))
        if config.get("pidfile"):  # the kernel's parent: the notebook time limit kills it
            Path(config["pidfile"]).write_text(str(first["pid"]))
        last = next(replies, {"exit": 1})
    holder.kill()
    return int(last.get("exit", 1))


def launch(argv: list[str]) -> None:
    """``warm.py launch --config RUN.json -f CONNECTION_FILE [kernel args...]``: as sandbox.py's,
    the kernel forked from the worker's zygote where that works, the cold kernel where not."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the worker's end is the kernel's: bwrap's --die-with-parent
    if os.getppid() == 1:  # the worker ended before that
        sys.exit("warm: the grading worker is gone")
    sandbox, _ = _siblings()
    config, cwd, shared, rest = sandbox.prepare(argv)
    if config["mode"] != "bwrap" or not config.get("warm"):
        sandbox.start_kernel(config, cwd, shared, rest)
    sandbox.set_limits(config.get("limits", {}))
    sandbox.confine_submission(config)
    if config.get("pidfile"):
        Path(config["pidfile"]).write_text(str(os.getpid()))
    try:
        sys.exit(warm_kernel(config, cwd, shared, rest))
    except WarmUnavailable as exc:
        sys.stderr.write(f"warm: {exc}; starting a cold kernel\n")
        sandbox.start_kernel(config, cwd, shared, rest)


# The zygote (one per worker and kernel configuration, outside the sandbox)

def serve(path: str, preload: list[str]) -> dict:
    """Import ``preload`` and ipykernel, answer on the Unix socket ``path`` until stdin closes.
    Returns only in a submission's kernel process: what :func:`become` needs."""
    before, number = dict(os.environ), None
    for name in (*preload, "", *WARM_IMPORTS):
        if not name:  # a cold kernel makes the rest after its first threads: a Thread object one makes
            number = threading._counter()  # noqa: SLF001 - (debugpy's) must not shift their names' numbers
        with contextlib.suppress(ImportError, ValueError):
            importlib.import_module(name)
    threading._counter = itertools.count(number).__next__  # noqa: SLF001
    # what they set in the environment (debugpy: PYDEVD_USE_FRAME_EVAL), a cold kernel's imports set too
    _IMPORTED_ENV.update((k, v) for k, v in os.environ.items() if before.get(k) != v)
    # One fork before counting: libraries that keep a thread pool from their import on (OpenBLAS)
    # stop it before a fork and start it again when next used, in the zygote (never) and each kernel.
    if (pid := os.fork()) == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # a fork would copy one thread of a pool that believes in several
        print(json.dumps({"refused": f"{threads} threads after importing {', '.join(preload)}"}), flush=True)
        sys.exit(1)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print(json.dumps({"ready": os.getpid()}), flush=True)
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [], 5.0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if sys.stdin in readable and not os.read(0, 4096):
            sys.exit(0)  # the worker is gone
        if listener in readable:
            conn, _ = listener.accept()
            with conn:
                kernel = _fork_kernel(conn, listener)
            if kernel is not None:
                return kernel


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    conn.settimeout(30)
    data, fds, _, _ = socket.recv_fds(conn, 65536, 16)
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("request cut short")
        data += chunk
    return json.loads(data), fds


def _fork_kernel(conn: socket.socket, listener: socket.socket) -> dict | None:
    """Fork the child that enters the sandbox. None in the zygote; in the kernel, what it runs."""
    try:
        request, fds = _receive(conn)
    except (OSError, ValueError):
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        for fd in fds:
            os.close(fd)
        return None
    try:
        os.close(listener.detach())
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)  # not the worker's pipe
        os.close(devnull)
        return _enter(request, fds[:3], fds[3:], conn)
    except BaseException as exc:  # noqa: BLE001 - reported to the launcher, which starts a cold kernel
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        os._exit(1)


def _join(fds: list[int]) -> None:
    """Enter the sandbox's namespaces: ``fds`` = user, then NAMESPACES. The user namespace that
    owns the others (bubblewrap's outer one) first, then the others, then the inner one where
    ``--disable-userns`` leaves the kernel."""
    inner, rest = fds[0], fds[1:]
    own = os.stat("/proc/self/ns/user").st_ino
    chain = [inner]
    with contextlib.suppress(OSError):
        while os.fstat(chain[-1]).st_ino != own:
            chain.append(fcntl.ioctl(chain[-1], NS_GET_PARENT))
    outer = [fd for fd in reversed(chain) if os.fstat(fd).st_ino != own]
    for fd in outer[:-1]:
        _setns(fd, "user")
    for fd, name in zip(rest, NAMESPACES, strict=True):
        _setns(fd, name)
    if outer:
        _setns(outer[-1], "user")


def _enter(request: dict, stdio: list[int], ns_fds: list[int], conn: socket.socket) -> dict | None:
    """In the forked child: limits, control group, namespaces, no capabilities; fork the kernel
    into the sandbox's pid namespace, report its parent's pid, wait, report its exit."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sandbox, _ = _siblings()
    config = request["config"]
    sandbox.set_limits(config.get("limits", {}))
    sandbox.confine_submission(config)
    with contextlib.suppress(PermissionError):
        os.setgroups([])
    _join(ns_fds)
    drop_capabilities()
    # A session without a terminal, led by this process: the kernel leads none, as a cold kernel
    os.setsid()  # in bubblewrap's does not (ipykernel interrupts the process group it leads)
    pid = os.fork()
    if pid == 0:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        conn.detach()  # closed below with every descriptor but stdin, stdout and stderr
        for number, fd in enumerate(stdio):
            os.dup2(fd, number)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        python = config["python"]
        env = dict(sorted(sandbox.kernel_env(config, python).items()))
        env.update(_IMPORTED_ENV)
        env["PWD"] = request["cwd"]  # as bubblewrap's --chdir sets it
        return {"cwd": request["cwd"], "umask": request["umask"], "argv": request["argv"], "env": env,
                "uid": sandbox.SANDBOX_UID}
    for fd in stdio:
        os.close(fd)
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    os._exit(0)


def namespaces_apart() -> list[str]:
    """The namespaces this process does not share with the sandbox's holder, its second process
    after bubblewrap's init ([]: it is in the sandbox)."""
    try:
        if Path("/proc/2/cmdline").read_bytes().split(b"\0")[:-1] != [a.encode() for a in HOLDER]:
            return ["no holder at pid 2"]
        return [name for name in ("user", *NAMESPACES)
                if os.stat(f"/proc/self/ns/{name}").st_ino != os.stat(f"/proc/2/ns/{name}").st_ino]
    except OSError as exc:
        return [f"cannot tell ({exc})"]


def become(kernel: dict) -> None:
    """The kernel's last steps before ipykernel: check who it is, take the kernel's folder,
    environment and arguments, start random generators afresh, forget this module."""
    import random  # noqa: PLC0415
    import runpy  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    creds = credentials()
    uid = str(kernel["uid"])
    if creds["Uid"].split() != [uid] * 4 or creds["NoNewPrivs"] != "1" or any(
            int(creds[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")):
        sys.stderr.write(f"warm: refusing to run a kernel with these credentials: {creds}\n")
        os._exit(1)
    if outside := namespaces_apart():
        sys.stderr.write(f"warm: refusing to run a kernel outside the sandbox's namespaces: {outside}\n")
        os._exit(1)
    os.chdir(kernel["cwd"])
    os.umask(kernel["umask"])
    os.environ.clear()
    os.environ.update(kernel["env"])
    sys.argv = ["ipykernel_launcher", *kernel["argv"]]
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:  # a fresh process seeds it from the OS: so does each kernel
        sys.modules["torch"].default_generator.seed()
    tempfile.tempdir = None
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p != here]
    for name in ("warm", "sandbox", "limits"):
        sys.modules.pop(name, None)
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    try:
        runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    import atexit  # noqa: PLC0415

    atexit._run_exitfuncs()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "launch":
        launch(sys.argv[2:])
    else:
        sys.exit(__doc__)
