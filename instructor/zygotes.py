"""A grading worker's zygotes: the processes its warm kernels are forked from (:mod:`instructor.warm`).

One per kernel configuration (interpreter, the kernel's environment, its preloads: in practice
one per part), at most MAX_ZYGOTES per worker, the least recently started ended first. A zygote
is started with the kernel's environment and nothing of the worker's, in a folder of this worker's
private cache, and ends when the worker does (its stdin is a pipe from the worker).

    attach(config, cache)   point a kernel's config at the zygote for it (started when needed)
    stop_all()              end this worker's zygotes
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import subprocess
import threading
from pathlib import Path

from . import sandbox, warm

MAX_ZYGOTES = 2                   # per worker: the parts graded last
START_TIMEOUT = 300               # seconds for a zygote to import its preloads on a busy machine
_ZYGOTES: dict[str, tuple[subprocess.Popen, str]] = {}   # key -> (process, socket)
_LOCK = threading.Lock()


def zygote_key(config: dict) -> str:
    """What a zygote is made of: the interpreter, the kernel's environment and its preloads."""
    return json.dumps([config["python"], config.get("env", {}), config.get("preload", [])], sort_keys=True)


def start(config: dict, folder: Path, timeout: float = START_TIMEOUT) -> tuple[subprocess.Popen | None, str]:
    """A zygote for ``config`` with its socket in ``folder`` (made private to this user):
    (the process, its socket) or (None, why not)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = str(folder / "zygote.sock")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    proc = subprocess.Popen(
        [config["python"], "-c", warm.ZYGOTE_BOOT, os.path.dirname(os.path.abspath(warm.__file__)), path,
         ",".join(config.get("preload", []))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=sandbox.kernel_env(config, config["python"]),
        cwd=folder, close_fds=True)
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else b""
    answer = json.loads(line) if line.startswith(b"{") else {}
    if "ready" not in answer:
        proc.kill()
        proc.wait()
        return None, answer.get("refused") or f"the zygote did not start (exit {proc.poll()})"
    return proc, path


def attach(config: dict, cache: Path) -> str:
    """Point ``config`` (a cold kernel's, :func:`sandbox.kernel_config`) at this worker's zygote
    for it, started under ``cache`` when there is none: sets ``config["warm"]`` to its socket.
    Returns what happened, for the task's log; the config stays cold where no zygote runs."""
    if config["mode"] != "bwrap":
        return "cold kernel: no sandbox, no warm kernel"
    key = zygote_key(config)
    with _LOCK:
        proc, path = _ZYGOTES.get(key, (None, ""))
        if proc is None or proc.poll() is not None:
            _ZYGOTES.pop(key, None)
            while len(_ZYGOTES) >= MAX_ZYGOTES:
                stop(_ZYGOTES.pop(next(iter(_ZYGOTES)))[0])
            proc, path = start(config, cache / ("zygote-" + hashlib.sha256(key.encode()).hexdigest()[:12]))
            if proc is None:
                return f"cold kernel: {path}"
            _ZYGOTES[key] = (proc, path)
    config["warm"] = path
    return f"warm kernel, forked from zygote {proc.pid}"


def stop(proc: subprocess.Popen) -> None:
    """End a zygote (kernels it forked live on until their own launchers end)."""
    with contextlib.suppress(OSError):
        proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_all() -> None:
    """End this worker's zygotes."""
    with _LOCK:
        while _ZYGOTES:
            stop(_ZYGOTES.popitem()[1][0])
