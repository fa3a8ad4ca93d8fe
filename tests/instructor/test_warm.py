"""instructor.warm: a kernel forked from a zygote is confined exactly as a cold one, nothing one
submission leaves behind reaches the next, and its results match a cold kernel's bit for bit.

Every kernel here starts the way a grading task starts it (sandbox.kernel_config, the kernelspec,
jupyter_client with ipc sockets, the submission's control group where this machine has them);
the warm ones from one zygote, shared by the whole module like a worker's."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from instructor import limits, sandbox, warm, zygotes
from instructor.course import ROOT
from tests.conftest import require_sandbox

pytestmark = pytest.mark.kernel

LIMITS = {"cell_timeout": 60, "notebook_timeout": 300, "memory_bytes": 6 * 2**30, "cpu_seconds": 600,
          "threads": 1, "processes": 128, "sandbox": "bwrap", "warm": True}
PRELOAD = ["numpy", "torch"]

# What a kernel can tell about itself, printed as one JSON line.
REPORT = r'''
import json, os, random, sys, threading, torch, numpy


def _target(link):
    try:
        return os.readlink(link)
    except OSError:
        return None

def _opens(path):
    try:
        open(path).close()
        return True
    except OSError:
        return False

creds = {k: v.strip() for k, _, v in (l.partition(":") for l in open("/proc/self/status").read().splitlines())
         if k in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")}
print(json.dumps({
    "creds": creds, "env": dict(os.environ), "cwd": os.getcwd(), "files": sorted(os.listdir(".")),
    "tmp": sorted(os.listdir("/tmp")), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "fds": {n: _target(f"/proc/self/fd/{n}") for n in os.listdir("/proc/self/fd")},
    "threads": sorted(t.name for t in threading.enumerate()),
    "torch_add": repr(torch.add), "json_module": getattr(sys.modules["json"], "__file__", None),
    "cached": hasattr(torch, "_left_behind"), "torch_threads": torch.get_num_threads(),
    "torch_seed": torch.initial_seed(), "rand": torch.rand(4).tolist(),
    "net": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None,
    "umask": os.umask(0o022), "modules": sorted(m for m in ("warm", "sandbox", "limits") if m in sys.modules),
    "uts": os.uname().nodename, "leads": [os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid()],
    "tty": os.path.exists("/dev/tty") and _opens("/dev/tty"),
}))
'''

# Deterministic work a grading cell might do: its printed result must not depend on warm or cold.
COMPUTE = r'''
import torch, numpy
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
for _ in range(5):
    opt.zero_grad(); loss = torch.nn.functional.cross_entropy(model(x), y); loss.backward(); opt.step()
rng = numpy.random.default_rng(0)
print(loss.item().hex(), [p.detach().double().sum().item().hex() for p in model.parameters()],
      (rng.standard_normal((50, 50)) @ rng.standard_normal((50, 50))).sum().hex())
'''

# A submission that leaves everything it can behind.
LEAVE_BEHIND = r'''
import json, os, random, subprocess, sys, threading, time, torch, numpy, types
torch.add = lambda *a, **k: "patched"
sys.modules["json"] = types.ModuleType("json")
open("left.txt", "w").write("x")
open("/tmp/left.txt", "w").write("x")
threading.Thread(target=time.sleep, args=(600,), name="left-behind", daemon=False).start()
child = subprocess.Popen(["sleep", "600"])
os.environ["LEFT_BEHIND"] = "1"
random.seed(123); numpy.random.seed(123); torch.manual_seed(123)
torch._left_behind = torch.ones(1000)
torch.set_num_threads(3)
print("left", child.pid)
'''


class Kernel:
    """One grading kernel as a task starts it, in its own scratch folder under ``root``."""

    def __init__(self, root: Path, zygote: str | None):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self.scratch = root / f"job-{uuid.uuid4().hex[:8]}"
        self.cwd = self.scratch / "course" / "autograded" / "s1" / "p1"
        self.cwd.mkdir(parents=True)
        (self.scratch / "kernel").mkdir()
        try:
            self.group = limits.create(LIMITS["memory_bytes"], LIMITS["processes"])
        except OSError:
            self.group = None
        config = sandbox.kernel_config(LIMITS, self.scratch, self.group.dirs if self.group else None, PRELOAD,
                                       None, [str(self.scratch / "course")], ROOT / "helper")
        if zygote:
            config["warm"] = zygote
        spec_dir = sandbox.write_kernelspec(self.scratch / "jupyter", config)
        self.km = KernelManager(kernel_name=sandbox.KERNEL_NAME,
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]))
        self.km.transport, self.km.ip = "ipc", str(self.scratch / "kernel" / "kernel")
        self.km.connection_file = str(self.scratch / "kernel" / "connection.json")
        self.km.start_kernel(cwd=str(self.cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=300)

    def run(self, code: str) -> str:
        out: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(f"ERROR {msg['content']['ename']}: {msg['content']['evalue']}\n")

        self.kc.execute_interactive(code, output_hook=hook, timeout=120)
        return "".join(out)

    def report(self) -> dict:
        return json.loads(self.run(REPORT).strip().splitlines()[-1])

    def close(self) -> None:
        """As a grading task ends a kernel: killed, its group destroyed."""
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        if self.group is not None:
            self.group.destroy()


@contextlib.contextmanager
def kernel(root: Path, zygote: str | None = None):
    k = Kernel(root, zygote)
    try:
        yield k
    finally:
        k.close()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    require_sandbox()
    root = tmp_path_factory.mktemp("warm")
    config = sandbox.kernel_config(LIMITS, root / "scratch", None, PRELOAD, None, [], ROOT / "helper")
    proc, path = zygotes.start(config, root / "zygote")
    assert proc is not None, path
    yield path
    zygotes.stop(proc)


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    """What a cold kernel reports and computes."""
    require_sandbox()
    with kernel(tmp_path_factory.mktemp("cold")) as k:
        return k.report(), k.run(COMPUTE)


@pytest.fixture(scope="module")
def after_a_hostile_neighbour(zygote, tmp_path_factory):
    """A warm kernel's report and computation, started after another warm kernel of the same
    zygote left everything it could behind (and was ended as a grading task ends it)."""
    root = tmp_path_factory.mktemp("neighbours")
    with kernel(root, zygote) as first:
        assert first.run(LEAVE_BEHIND).startswith("left"), "the hostile submission ran"
        assert first.run("import os; print(os.getuid())").strip() == str(sandbox.SANDBOX_UID)
    with kernel(root, zygote) as second:
        return second.report(), second.run(COMPUTE)


def test_a_warm_kernel_has_the_cold_kernels_credentials(cold, after_a_hostile_neighbour):
    """Same uid, gid, groups, no capabilities, no_new_privs; the bounding set empty (the cold
    kernel's is only ever narrowed)."""
    warm_creds, cold_creds = after_a_hostile_neighbour[0]["creds"], cold[0]["creds"]
    assert {k: v for k, v in warm_creds.items() if k != "CapBnd"} == \
        {k: v for k, v in cold_creds.items() if k != "CapBnd"}
    assert int(warm_creds["CapBnd"], 16) == 0
    assert warm_creds["NoNewPrivs"] == "1" and int(warm_creds["CapEff"], 16) == 0


def test_a_warm_kernel_sees_what_a_cold_one_sees(cold, after_a_hostile_neighbour):
    """Its environment, folder, processes, descriptors (kinds: their numbers depend on timing), network,
    host name, no terminal, no session or process group of its own (ipykernel interrupts a group it
    leads: a cold kernel's children are never interrupted with it)."""
    w, c = after_a_hostile_neighbour[0], cold[0]
    for report in (w, c):  # each in its own scratch folder
        assert report["env"].pop("PWD") == report["cwd"] and report["cwd"].endswith("/course/autograded/s1/p1")
    kinds = [_fd_kinds(report) for report in (w, c)]
    # IPython's history database (in the sandbox's /tmp) is open or not depending on its thread's timing
    extra = {k for k in kinds[0] - kinds[1] if not k.startswith("/tmp/.ipython/")}
    assert not extra, f"descriptors a cold kernel does not have: {extra}"
    assert [re.sub(r"\d+", "", w["fds"][n]) for n in "012"] == [re.sub(r"\d+", "", c["fds"][n]) for n in "012"], \
        "stdin, stdout and stderr are what a cold kernel's are"
    for key in ("env", "files", "tmp", "net", "umask", "uts", "leads", "tty", "threads", "torch_threads"):
        assert w[key] == c[key], f"{key}: warm {w[key]!r}, cold {c[key]!r}"
    assert len(w["pids"]) <= len(c["pids"]) + 1, f"the sandbox's processes only: {w['pids']} (cold {c['pids']})"
    assert w["modules"] == [], "the zygote's own modules are gone before the learner's code runs"


def _fd_kinds(report: dict) -> set[str]:
    """What a kernel's descriptors are open on, with numbers and its own scratch folder left out."""
    job = report["cwd"].removesuffix("/course/autograded/s1/p1")
    return {re.sub(r"\[\d+\]", "", target).replace(job, "JOB") for target in report["fds"].values() if target}


def test_nothing_a_submission_leaves_reaches_the_next(after_a_hostile_neighbour):
    """A patched torch function, a sys.modules entry, files, a thread, a process, a variable, the
    RNG states, a cached tensor, torch.set_num_threads: none of them in the next kernel."""
    after = after_a_hostile_neighbour[0]
    assert after["torch_add"].startswith("<built-in method add of type object")
    assert after["json_module"] and after["json_module"].endswith("json/__init__.py")
    assert after["files"] == [] and "left.txt" not in after["tmp"]
    assert "left-behind" not in after["threads"]
    assert "LEFT_BEHIND" not in after["env"]
    assert not after["cached"]
    assert after["torch_threads"] == LIMITS["threads"]
    assert after["torch_seed"] != 123


def test_results_match_a_cold_kernel_bit_for_bit(cold, after_a_hostile_neighbour):
    """Seeded training and NumPy work print the same bits (as float.hex) warm and cold."""
    assert after_a_hostile_neighbour[1] == cold[1] and cold[1].strip(), (after_a_hostile_neighbour[1], cold[1])


def test_generators_are_seeded_afresh_for_each_kernel(zygote, tmp_path):
    """As in a fresh process: Python's, NumPy's and PyTorch's global generators differ between
    two kernels forked from one zygote."""
    draws = []
    for _ in range(2):
        with kernel(tmp_path, zygote) as k:
            draws.append(k.run("import random, numpy, torch\nprint(random.random(), numpy.random.random(), "
                               "torch.rand(1).item(), torch.initial_seed())"))
    first, second = (d.split() for d in draws)
    assert all(a != b for a, b in zip(first, second, strict=True)), draws


def test_a_warm_kernel_has_no_network_and_cannot_nest_a_user_namespace(zygote, tmp_path):
    code = r'''
import ctypes, socket
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2); print("connected")
except OSError as exc:
    print("no network", type(exc).__name__)
libc = ctypes.CDLL(None, use_errno=True)
print("unshare", libc.unshare(0x10000000), ctypes.get_errno() != 0)
try:
    open("/opt/course/helper/x.py", "w"); print("wrote")
except OSError as exc:
    print("read-only", type(exc).__name__)
'''
    with kernel(tmp_path, zygote) as k:
        out = k.run(code)
    assert "no network" in out and "connected" not in out, out
    assert "unshare -1 True" in out, out
    assert "read-only" in out, out


def test_the_kernel_is_in_its_submissions_control_group_and_dies_with_its_launcher(zygote, tmp_path):
    with kernel(tmp_path, zygote) as k:
        inside = int(k.run("import os; print(os.getpid())"))
        group, launcher = k.group, k.km.provisioner.process
        if group is not None:
            nspids = []
            for pid in group.processes():
                with contextlib.suppress(OSError):
                    status = Path(f"/proc/{pid}/status").read_text()
                    nspids += [line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")]
            assert any(len(ids) > 1 and int(ids[-1]) == inside for ids in nspids), nspids
    assert launcher.poll() is not None
    if group is not None:
        assert group.processes() == []


def test_without_its_zygote_the_launcher_starts_a_cold_kernel(tmp_path):
    require_sandbox()
    with kernel(tmp_path, str(tmp_path / "no-such.sock")) as k:
        assert k.run("print(6 * 7)").strip() == "42"


def test_a_zygote_with_threads_is_refused(tmp_path):
    """A fork copies one thread: a zygote whose imports leave a thread running is never used."""
    require_sandbox()
    config = sandbox.kernel_config(LIMITS, tmp_path / "scratch", None, ["threading"], None, [], ROOT / "helper")
    config["env"]["PYTHONSTARTUP"] = ""
    boot = warm.ZYGOTE_BOOT.replace("kernel = warm.serve", "import threading, time\n"
                                    "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
                                    "kernel = warm.serve")
    saved, warm.ZYGOTE_BOOT = warm.ZYGOTE_BOOT, boot
    try:
        proc, why = zygotes.start(config, tmp_path / "z")
    finally:
        warm.ZYGOTE_BOOT = saved
    assert proc is None and "2 threads" in why, why
    assert os.path.exists(tmp_path / "z")


def test_outside_the_sandbox_a_process_is_told_apart():
    """The kernel's last check before submitted code runs: this test process is in no sandbox."""
    assert warm.namespaces_apart() != []


# A grading worker that starts a warm kernel, says where it is, and waits to be killed.
WORKER = r'''
import json, sys, time
from pathlib import Path
from tests.instructor import test_warm
k = test_warm.Kernel(Path(sys.argv[1]), sys.argv[2])
print(json.dumps({"launcher": k.km.provisioner.process.pid, "group": k.group.dirs if k.group else None}), flush=True)
time.sleep(600)
'''


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_warm_kernel_ends_with_its_worker(zygote, tmp_path):
    """A worker killed mid-task (SIGKILL) takes its kernels with it, as bubblewrap's
    --die-with-parent does for a cold kernel: the launcher, the sandbox, the kernel."""
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), zygote], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        started = next(json.loads(line) for line in worker.stdout if line.startswith("{"))  # the kernel prints too
    finally:
        worker.kill()
    worker.wait()
    group = limits.Group(started["group"]) if started["group"] else None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (_alive(started["launcher"]) or (group and group.processes())):
        time.sleep(0.2)
    try:
        assert not _alive(started["launcher"]), "the launcher outlived its worker"
        assert group is None or group.processes() == [], "processes of the submission outlived its worker"
    finally:
        if group is not None:
            group.destroy()
