"""Real services for tests, started as local subprocesses on 127.0.0.1 and torn down afterwards:

    PostgreSQL   initdb + pg_ctl from Debian's ``postgresql`` package, in a temp folder, run as
                 an unprivileged account (``postgres``, else ``nobody``) when the tests run as
                 root; trust authentication, a free port on 127.0.0.1, its socket in the folder.
    Dask         ``dask scheduler`` and N ``dask worker`` processes (one process, one thread
                 each) with this venv's Python, the repository importable on the workers.

Context managers (usable from any script)::

    with start_postgres() as pg:            # PostgresServer
        url = pg.create_database()          # 'postgresql+psycopg2://course@127.0.0.1:PORT/db_1'
    with start_dask_cluster(2) as cluster:  # DaskCluster
        client = distributed.Client(cluster.address)
        cluster.kill_worker(0)              # SIGKILL to that worker's process group

pytest fixtures (import them into a test module, or list this module in ``pytest_plugins``)::

    postgres_server       session   PostgresServer, started once
    postgres_url          session   URL of a database created once for the session
    postgres_db_factory   function  callable(name=None) -> URL of a new database, dropped after the test
    dask_cluster          function  DaskCluster with two workers, stopped after the test

Processes started here get SIGKILL when the thread that started them ends (PR_SET_PDEATHSIG):
start a cluster from the main thread, or from a thread that outlives it. Workers whose
scheduler is gone stop by themselves after 30 s (``--death-timeout``). PostgreSQL is a daemon:
only ``stop_postgres`` (run on exit) stops it.

A missing PostgreSQL is a skip with a one-line reason, except in CI (CI=true) or with
REQUIRE_SERVICES=1, where it is a failure. Dask comes with the venv and is always required.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOCALHOST = "127.0.0.1"


def required() -> bool:
    """Whether a missing service fails the tests instead of skipping them."""
    return (os.environ.get("CI", "").lower() in ("1", "true", "yes")
            or os.environ.get("REQUIRE_SERVICES") == "1")


def skip_or_fail(reason: str) -> None:
    if required():
        pytest.fail(f"{reason} (required: CI or REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry if it is taken)."""
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In a child before exec: its own process group, and SIGKILL when the test process dies."""
    os.setsid()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

PG_USER = "course"  # the database superuser initdb creates (no password: trust authentication)


def postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: from PATH, else the newest
    /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    candidates = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)

    def version(p: Path) -> tuple:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def unprivileged_account() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as: None when the tests do not run as root (they run it
    themselves); as root, ``postgres`` (created by Debian's package) or else ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists: "
                       "PostgreSQL refuses to run as root")


def _as_account(account: pwd.struct_passwd | None) -> list[str]:
    if account is None:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
    return ["runuser", "-u", account.pw_name, "--"]


@dataclass
class PostgresServer:
    """A running server; ``url()`` and ``create_database()`` give SQLAlchemy URLs."""

    bindir: Path
    folder: Path
    port: int
    account: pwd.struct_passwd | None
    host: str = LOCALHOST
    user: str = PG_USER
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres"):
        """A psycopg2 connection in autocommit mode (CREATE/DROP DATABASE need it)."""
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=database,
                                connect_timeout=10)
        conn.autocommit = True
        return conn

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE ``name`` (default: db_1, db_2, ...); returns its URL."""
        name = name or f"db_{next(self._names)}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"database names here are lower-case identifiers, not {name!r}")
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE, closing what is still connected (nbgrader's Gradebook.close() leaves
        its connection pool open)."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_account(self.account), str(self.bindir / "pg_ctl"), "-D", str(self.data),
                               *args], env=self._env(), capture_output=True, text=True, timeout=timeout,
                              check=False)

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(HOME=str(self.folder), LC_ALL="C", LANG="C", TZ="UTC")
        return env

    def log_tail(self, n: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return "(no server log)"


SERVER_SETTINGS = f"""
# written by tests/services.py: local only, fast and disposable
listen_addresses = '{LOCALHOST}'
unix_socket_directories = '{{folder}}'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 50
"""


@contextlib.contextmanager
def start_postgres(base: str | None = None, timeout: int = 30) -> Iterator[PostgresServer]:
    """Start a throw-away PostgreSQL server; stop it (``pg_ctl stop -m fast``) and delete its
    folder on exit. ``base``: where the temp folder goes (default: the system temp folder,
    which the unprivileged account must be able to enter, as /tmp is)."""
    bindir = postgres_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL's initdb/pg_ctl were not found on PATH or under /usr/lib/postgresql")
    account = unprivileged_account()
    folder = Path(tempfile.mkdtemp(prefix="pg-", dir=base))
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    server = PostgresServer(bindir, folder, 0, account)
    started = False
    try:
        init = subprocess.run(
            [*_as_account(account), str(bindir / "initdb"), "-D", str(server.data), "--auth=trust",
             f"--username={PG_USER}", "--encoding=UTF8", "--locale=C", "--no-sync"],
            env=server._env(), capture_output=True, text=True, timeout=120, check=False)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout[-2000:]}\n{init.stderr[-2000:]}")
        with open(server.data / "postgresql.conf", "a") as conf:
            conf.write(SERVER_SETTINGS.format(folder=folder))
        for _attempt in range(3):  # another process may take the free port before the server does
            server.port = free_port()
            start = server.pg_ctl("-l", str(server.log), "-w", "-t", str(timeout), "-o", f"-p {server.port}",
                                  "start", timeout=timeout + 30)
            if start.returncode == 0:
                started = True
                break
            if "already in use" not in server.log_tail(50):
                break
        if not started:
            raise RuntimeError(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{server.log_tail()}")
        yield server
    finally:
        if started:
            stop_postgres(server)
        shutil.rmtree(folder, ignore_errors=True)


def stop_postgres(server: PostgresServer) -> None:
    """pg_ctl stop -m fast (bounded), then -m immediate, then SIGKILL to the postmaster."""
    for mode in ("fast", "immediate"):
        with contextlib.suppress(subprocess.TimeoutExpired):
            if server.pg_ctl("-m", mode, "-w", "-t", "30", "stop", timeout=45).returncode == 0:
                return
    with contextlib.suppress(OSError, ValueError):
        pid = int((server.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------

# Per worker process. The worker only coordinates: each submission runs in its own sandboxed
# kernel, a child process with its own limit (GRADING_MEMORY), which the worker's limit
# does not count. On 24 GB / 2 cores, 2 GiB leaves the kernels most of the memory.
WORKER_MEMORY = "2GiB"


@dataclass
class DaskCluster:
    """A scheduler and its workers, each a subprocess in its own process group."""

    address: str
    folder: Path
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]
    names: list[str]

    def client(self, **kwargs):
        import distributed

        return distributed.Client(self.address, **kwargs)

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` and everything it started (a machine that dies mid-task)."""
        _kill_tree(self.workers[i])

    def kill_a_busy_worker(self, client) -> str | None:
        """SIGKILL a worker that is running a task now; its name, or None when none is busy.
        The worker's name is asked of the worker itself: the client's copy of the scheduler's
        worker list is refreshed only now and then, and may not hold it yet."""
        busy = [address for address, keys in client.processing().items() if keys]
        if not busy:
            return None
        try:
            name = client.run(lambda dask_worker: dask_worker.name, workers=busy[:1])[busy[0]]
        except Exception:  # noqa: BLE001 - it went away meanwhile: look again
            return None
        if name not in self.names:
            return None
        self.kill_worker(self.names.index(name))
        return name

    def log(self, name: str) -> str:
        """The output of ``scheduler`` or a worker (by name, e.g. 'worker-0') so far."""
        with contextlib.suppress(OSError):
            return (self.folder / f"{name}.log").read_text(errors="replace")
        return ""


def _descendants(proc: subprocess.Popen) -> list:
    import psutil

    with contextlib.suppress(psutil.Error):
        return psutil.Process(proc.pid).children(recursive=True)
    return []


def _kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal a process's group and any descendant that left it (e.g. with setsid); reap it."""
    import psutil

    children = _descendants(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.send_signal(sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    psutil.wait_procs(children, timeout=10)


def _stop(procs: list[subprocess.Popen], grace: float = 5) -> None:
    """SIGTERM to each process group, then SIGKILL to whatever is left after ``grace`` seconds."""
    trees = [(p, _descendants(p)) for p in procs]
    for p, _ in trees:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p, _ in trees:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
    for p, _children in trees:
        _kill_tree(p)  # also reaps children a graceful exit left behind


def dask_env(extra: dict | None = None) -> dict:
    """Environment for scheduler and workers: the one nbgrader runs in (this venv first on PATH,
    the repository on PYTHONPATH: workers import ``instructor``)."""
    from instructor.course import nbgrader_env

    return nbgrader_env(extra)


@contextlib.contextmanager
def start_dask_cluster(n_workers: int = 2, *, memory_limit: str = WORKER_MEMORY, timeout: float = 60,
                       env: dict | None = None, base: str | None = None,
                       worker_args: tuple[str, ...] = ()) -> Iterator[DaskCluster]:
    """``dask scheduler`` and ``n_workers`` ``dask worker`` processes on 127.0.0.1 (one process and
    one thread each, nanny included, no dashboards), started with this venv's Python. Waits (at
    most ``timeout`` seconds) until every worker is registered; stops them all on exit."""
    import distributed

    folder = Path(tempfile.mkdtemp(prefix="dask-", dir=base))
    env = dask_env(env)
    procs: list[subprocess.Popen] = []

    def spawn(name: str, args: list[str]) -> subprocess.Popen:
        with open(folder / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
                                    cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - only setsid and prctl
        procs.append(proc)
        return proc

    scheduler_file = folder / "scheduler.json"
    try:
        # --no-dashboard leaves a small HTTP server (health, metrics) on 0.0.0.0: bind it to localhost
        local_http = ["--no-dashboard", "--dashboard-address", f"{LOCALHOST}:0"]
        scheduler = spawn("scheduler", ["scheduler", "--host", LOCALHOST, "--port", "0", *local_http,
                                        "--scheduler-file", str(scheduler_file)])
        deadline = time.monotonic() + timeout
        address = None
        while address is None:
            if scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited ({scheduler.returncode}):\n"
                                   f"{(folder / 'scheduler.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dask scheduler did not start in {timeout} s")
            with contextlib.suppress(OSError, ValueError, KeyError):
                address = json.loads(scheduler_file.read_text())["address"]
            time.sleep(0.1)

        names = [f"worker-{i}" for i in range(n_workers)]
        workers = [spawn(name, ["worker", address, "--name", name, "--host", LOCALHOST, "--nworkers", "1",
                                "--nthreads", "1", *local_http, "--memory-limit", memory_limit,
                                "--local-directory", str(folder / name),
                                # an orphaned worker (scheduler gone) shuts itself down
                                "--death-timeout", "30", *worker_args])
                   for name in names]
        cluster = DaskCluster(address, folder, scheduler, workers, names)
        with distributed.Client(address, timeout=max(1.0, deadline - time.monotonic())) as client:
            while True:
                registered = {w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}
                if registered >= set(names):
                    break
                dead = [n for n, p in zip(names, workers, strict=True) if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"dask worker {dead[0]} exited:\n{cluster.log(dead[0])[-3000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {sorted(registered)} of {names} registered in {timeout} s")
                time.sleep(0.1)
        yield cluster
    finally:
        _stop(procs[1:])  # workers first: they would otherwise try to reconnect
        _stop(procs[:1])
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------
# pytest fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole test session (skipped, or failed in CI, without one)."""
    if postgres_bindir() is None:
        skip_or_fail("PostgreSQL is not installed (initdb/pg_ctl not found; "
                     "`apt-get install -y postgresql` provides them)")
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of a database created once for the session."""
    return postgres_server.create_database("session_db")


@pytest.fixture
def postgres_db_factory(postgres_server: PostgresServer) -> Iterator[Callable[..., str]]:
    """``make(name=None) -> URL``: a new database each call, dropped when the test ends."""
    made = []

    def make(name: str | None = None) -> str:
        url = postgres_server.create_database(name)
        made.append(url.rsplit("/", 1)[1])
        return url

    yield make
    for name in made:
        postgres_server.drop_database(name)


@pytest.fixture
def dask_cluster() -> Iterator[DaskCluster]:
    """A scheduler and two workers on 127.0.0.1 for one test (so it may kill a worker)."""
    with start_dask_cluster(2) as cluster:
        yield cluster
