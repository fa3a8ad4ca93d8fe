"""The real services the distributed-grading tests run against (tests/services.py): a
PostgreSQL server holding an nbgrader gradebook, and a Dask cluster of separate processes
that keeps going when a worker is killed. Everything listens on 127.0.0.1 only.

PostgreSQL needs Debian's `postgresql` package (`apt-get install -y postgresql`): skipped
without it, except in CI (CI=true) or with REQUIRE_SERVICES=1, where its absence is a failure.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
from pathlib import Path

import distributed
import pytest

from instructor.course import ROOT, db_url, run_nbgrader
from tests.services import start_dask_cluster

PART = "01-tensors"
TASK_SECONDS = 0.5


@pytest.fixture
def venv_on_path(monkeypatch):
    """nbgrader's Gradebook runs `alembic` (from this venv) when it creates a new gradebook."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

def test_server_runs_unprivileged_on_localhost(postgres_server, postgres_url):
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            is_superuser = conn.execute(text("SHOW is_superuser")).scalar()
            listen = conn.execute(text("SHOW listen_addresses")).scalar()
            owner_uid = postgres_server.data.stat().st_uid
    finally:
        engine.dispose()
    assert is_superuser == "on", "the test role should own the server"
    assert listen == "127.0.0.1", f"the server should listen on 127.0.0.1 only, not {listen!r}"
    assert owner_uid != 0, "the data folder must not belong to root (PostgreSQL refuses to run as root)"


def test_gradebook_creates_its_tables(postgres_db_factory, venv_on_path):
    from nbgrader.api import Gradebook, InvalidEntry
    from sqlalchemy import create_engine, inspect

    url = postgres_db_factory()
    with Gradebook(url, course_id="intro-pytorch") as gb:
        gb.add_student("alice", first_name="Alice")
        gb.add_assignment("week-1")
    with Gradebook(url, course_id="intro-pytorch") as gb:  # a second session reads what the first wrote
        assert [s.id for s in gb.students] == ["alice"], "the student written by one session should be read by the next"
        assert [a.name for a in gb.assignments] == ["week-1"]
        # Unlike SQLite, PostgreSQL enforces nbgrader's column sizes: ids of at most 128 characters.
        with pytest.raises(InvalidEntry, match="too long"):
            gb.add_student("x" * 129)
        gb.add_student("bob")  # the session is usable after the refusal
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"student", "assignment", "notebook", "grade_cells", "grade", "alembic_version"} <= tables, tables


def test_databases_from_the_factory_are_separate(postgres_server, postgres_db_factory):
    first, second = postgres_db_factory(), postgres_db_factory("named_db")
    assert first != second and second.endswith("/named_db")
    with postgres_server.connect(first.rsplit("/", 1)[1]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (x int)")
    with postgres_server.connect(second.rsplit("/", 1)[1]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
        assert cur.fetchone() == (0,), "a new database should start empty"


@pytest.mark.skipif(not (ROOT / "solutions" / PART).is_dir(), reason=f"{PART} not written yet")
def test_release_and_export_with_a_postgresql_gradebook(postgres_db_factory, tmp_path, venv_on_path):
    from nbgrader.api import Gradebook

    url = postgres_db_factory()
    course = tmp_path / "course"
    course.mkdir()
    config = (ROOT / "nbgrader_config.py").read_text()
    (course / "nbgrader_config.py").write_text(config + f"\nc.CourseDirectory.db_url = {url!r}\n")
    shutil.copytree(ROOT / "solutions" / PART, course / "solutions" / PART)
    assert db_url(course) == url, "instructor.grading should read db_url from the course config"

    def nbgrader(*args):
        proc = run_nbgrader([*args, "--log-level=ERROR"], course, capture_output=True, text=True,
                                    timeout=300)
        assert proc.returncode == 0, f"nbgrader {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    nbgrader("generate_assignment", PART)
    with Gradebook(url, course_id="intro-pytorch") as gb:
        gb.add_student("alice")
    nbgrader("export", "--to", "grades.csv")

    assert not (course / "gradebook.db").exists(), "nbgrader wrote a SQLite gradebook instead of using db_url"
    assert (course / "notebooks" / PART / f"{PART}.ipynb").exists(), "the release should be written"
    with Gradebook(url, course_id="intro-pytorch") as gb:
        notebook = gb.find_notebook(PART, PART)
        points = sum(cell.max_score for cell in notebook.grade_cells)
        assert notebook.grade_cells, "the release should record the graded cells in PostgreSQL"
    with open(course / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["assignment"], r["student_id"]) for r in rows] == [(PART, "alice")], rows
    assert float(rows[0]["max_score"]) == points, "export should read the points from PostgreSQL"
    assert float(rows[0]["raw_score"]) == 0, "a student who submitted nothing scores 0"


# ---------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------

def worker_name(_i: int) -> str:
    from distributed import get_worker

    time.sleep(0.2)
    return get_worker().name


def marked_task(i: int, folder: str) -> str:
    """Leaves a marker when it starts, then works for TASK_SECONDS; returns where it ran."""
    from distributed import get_worker

    name = get_worker().name
    Path(folder, f"started-{i}-{name}").touch()
    time.sleep(TASK_SECONDS)
    return name


def listening_addresses(procs) -> set[str]:
    """IP addresses that ``procs`` and their descendants accept connections on."""
    import psutil

    found = set()
    for proc in procs:
        p = psutil.Process(proc.pid)
        for q in (p, *p.children(recursive=True)):
            connections = q.net_connections if hasattr(q, "net_connections") else q.connections
            found |= {c.laddr.ip for c in connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    return found


def test_tasks_run_on_both_workers(dask_cluster):
    with dask_cluster.client() as client:
        names = client.gather(client.map(worker_name, range(8), pure=False))
        paths = client.run(lambda: __import__("instructor").__file__)
    listening = listening_addresses([dask_cluster.scheduler, *dask_cluster.workers])
    assert listening == {"127.0.0.1"}, f"the cluster should listen on 127.0.0.1 only, not {listening}"
    assert set(names) == {"worker-0", "worker-1"}, f"both workers should take tasks, got {names}"
    assert len(paths) == 2, paths
    for path in paths.values():
        assert Path(path).parent == ROOT / "instructor", \
            f"workers import this repository's instructor, not {path}"


def test_tasks_of_a_killed_worker_finish_on_the_other(tmp_path):
    """SIGKILL a worker while it runs a task: every task still finishes, on the survivor, and
    stopping the cluster leaves no process behind."""
    import psutil

    n = 6
    with start_dask_cluster(2) as cluster:
        procs = [psutil.Process(p.pid) for p in (cluster.scheduler, *cluster.workers)]
        procs += [c for p in procs for c in p.children(recursive=True)]
        with cluster.client() as client:
            futures = client.map(marked_task, range(n), folder=str(tmp_path), pure=False)
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob("started-*-worker-1")):
                assert time.monotonic() < deadline, "worker-1 never started a task"
                time.sleep(0.02)
            killed = {p.name.split("-")[1] for p in tmp_path.glob("started-*-worker-1")}
            cluster.kill_worker(1)
            distributed.wait(futures, timeout=60)
            results = client.gather(futures)
            alive = {w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}
        assert cluster.workers[1].poll() is not None, "worker-1 should be dead"
        folder = cluster.folder

    assert alive == {"worker-0"}, alive
    assert results == ["worker-0"] * n, f"every task should end on the surviving worker: {results}"
    rerun = {p.name.split("-")[1] for p in tmp_path.glob("started-*-worker-0")}
    assert killed <= rerun, f"tasks {killed - rerun} started on the killed worker and were never run again"
    assert len(procs) >= 5, "a scheduler, and a nanny and a worker process per worker"
    _, left = psutil.wait_procs(procs, timeout=10)
    assert not left, f"still running after the cluster stopped: {[p.pid for p in left]}"
    assert not folder.exists(), "the cluster's temp folder should be removed"
