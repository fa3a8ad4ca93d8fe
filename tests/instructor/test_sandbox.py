"""instructor.sandbox: the launcher jupyter_client runs for a grading kernel, and the pieces of
its configuration that need no bubblewrap to check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from instructor import sandbox


@pytest.mark.parametrize(("path", "parent", "inside"), [
    ("/course/autograded/s1/01", "/course/autograded", True),
    ("/course/autograded", "/course/autograded", False),        # the folder itself is no student's
    ("/course/autograded-x/s1", "/course/autograded", False),   # a name that only starts the same
    ("/course/autograded/../solutions", "/course/autograded", False),
    ("/course/autograded/s1/../../gradebook", "/course/autograded", False),
])
def test_inside_means_strictly_below_after_resolving(path, parent, inside):
    assert sandbox._inside(path, parent) is inside


def test_inside_follows_links(tmp_path):
    (tmp_path / "autograded").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "autograded" / "s1").symlink_to(tmp_path / "elsewhere")
    assert not sandbox._inside(str(tmp_path / "autograded" / "s1"), str(tmp_path / "autograded"))


def test_preload_adds_torchvision_only_for_a_part_that_imports_it():
    assert sandbox.preload_modules(b'{"source": "import torch"}') == ["numpy", "torch"]
    assert sandbox.preload_modules(b'{"source": "from torchvision import datasets"}') == \
        ["numpy", "torch", "torchvision"]


LIMITS = {"cell_timeout": 10, "notebook_timeout": 30, "memory_bytes": 2**30, "cpu_seconds": 60,
          "threads": 2, "processes": 64, "sandbox": "bwrap"}


def test_kernel_config_confines_the_kernel_to_its_scratch_folder(tmp_path):
    helper = tmp_path / "helper"
    helper.mkdir()
    config = sandbox.kernel_config(LIMITS, tmp_path / "scratch", None, ["numpy"], None,
                                   [str(tmp_path), str(tmp_path / "missing")], helper)
    assert config["allowed_parent"] == str(tmp_path / "scratch" / "course" / "autograded")
    assert config["kernel_dir"] == str(tmp_path / "scratch" / "kernel")
    assert config["masked"] == [str(tmp_path)], "only folders that exist are hidden"
    assert [str(helper), "/opt/course/helper"] in config["ro_binds"]
    assert config["env"]["OMP_NUM_THREADS"] == "2" and config["env"]["PYTHONPATH"] == "/opt/course"
    assert "COURSE_DATA" not in config["env"]
    assert config["limits"]["memory_bytes"] == 2**30 and config["limits"]["processes"] == 64
    json.dumps(config)  # written beside the kernelspec: plain data only


def test_kernelspec_runs_this_launcher_with_its_config(tmp_path):
    spec = json.loads((sandbox.write_kernelspec(tmp_path, {"mode": "bwrap"}) / "kernel.json").read_text())
    config_path = tmp_path / "kernels" / sandbox.KERNEL_NAME / "sandbox.json"
    assert spec["argv"][1:] == ["-I", "-S", sandbox.__file__, "launch", "--config", str(config_path),
                                "-f", "{connection_file}"]
    assert json.loads(config_path.read_text()) == {"mode": "bwrap"}
    assert spec["interrupt_mode"] == "message"


def test_bwrap_argv_shares_nothing_but_what_it_is_told(tmp_path):
    config = {"bwrap": "/usr/bin/bwrap", "masked": ["/course"], "ro_binds": [["/opt/py", "/opt/py"]],
              "env": {"SECRET_FROM_CONFIG": "1"}, "limits": {"tmp_bytes": 1024}}
    argv = sandbox.bwrap_argv(config, "/course/autograded/s1/01", ["/run/kernel"], ["/opt/py/bin/python", "-m", "k"])
    assert argv[0] == "/usr/bin/bwrap" and argv[argv.index("--") + 1:] == ["/opt/py/bin/python", "-m", "k"]
    for flag in ("--unshare-all", "--clearenv", "--die-with-parent", "--new-session"):
        assert flag in argv
    pairs = list(zip(argv, argv[1:], argv[2:], strict=False))
    assert ("--bind", "/run/kernel", "/run/kernel") in pairs
    assert ("--ro-bind", "/opt/py", "/opt/py") in pairs
    assert ("--setenv", "HOME", "/tmp") in pairs and ("--setenv", "SECRET_FROM_CONFIG", "1") in pairs
    assert ("--remount-ro", "/", "--chdir") in pairs and argv[argv.index("--chdir") + 1] == "/course/autograded/s1/01"
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert binds == ["/run/kernel"], "nothing else is writable from inside"


def _launch(tmp_path, *args):
    return subprocess.run([sys.executable, sandbox.__file__, *args], cwd=tmp_path, capture_output=True, text=True)


def test_launcher_without_a_config_says_how_to_call_it(tmp_path):
    proc = _launch(tmp_path, "launch", "-f", "x.json")
    assert proc.returncode != 0 and "usage: sandbox.py launch --config RUN.json" in proc.stderr


def test_launcher_without_a_connection_file_refuses(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"allowed_parent": str(tmp_path), "mode": "bwrap"}))
    proc = _launch(tmp_path, "launch", "--config", str(config))
    assert proc.returncode != 0 and "no connection file (-f) given" in proc.stderr


def test_kernel_refuses_to_start_outside_a_student_folder(tmp_path):
    """The launcher only runs student code in a folder under autograded/."""
    import subprocess
    import sys

    from instructor import sandbox

    config = tmp_path / "run.json"
    config.write_text(json.dumps({"allowed_parent": str(tmp_path / "autograded"), "mode": "bwrap"}))
    proc = subprocess.run([sys.executable, sandbox.__file__, "launch", "--config", str(config), "-f", "x.json"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "refusing to start a grading kernel" in proc.stderr


def test_kernelspec_of_a_warm_kernel_runs_warm_py_beside_this_launcher(tmp_path):
    spec = json.loads((sandbox.write_kernelspec(tmp_path, {"mode": "bwrap", "warm": "/z.sock"}) / "kernel.json")
                      .read_text())
    assert spec["argv"][3] == sandbox.__file__.replace("sandbox.py", "warm.py") and spec["argv"][4] == "launch"


def test_kernel_env_is_the_configs_and_the_sandboxs_own(tmp_path):
    env = sandbox.kernel_env({"env": {"A": 1}}, "/opt/py/bin/python")
    assert env == {"A": "1", "HOME": "/tmp", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib",
                   "PATH": "/opt/py/bin:/usr/bin:/bin"}


def test_prepare_shares_only_the_kernel_folder(tmp_path):
    kernel_dir, cwd = tmp_path / "kernel", tmp_path / "autograded" / "s1"
    kernel_dir.mkdir()
    cwd.mkdir(parents=True)
    connection = kernel_dir / "connection.json"
    connection.write_text(json.dumps({"transport": "ipc", "ip": str(kernel_dir / "kernel")}))
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"allowed_parent": str(tmp_path / "autograded"), "mode": "bwrap",
                                  "kernel_dir": str(kernel_dir)}))
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import sandbox; "
            "print(json.dumps(sandbox.prepare(sys.argv[2:])))")
    proc = subprocess.run([sys.executable, "-c", code, str(Path(sandbox.__file__).parent), "--config", str(config),
                           "-f", str(connection), "--x"], cwd=cwd, capture_output=True, text=True)
    _, folder, shared, rest = json.loads(proc.stdout)
    assert (folder, shared, rest) == (str(cwd), [str(kernel_dir)], ["-f", str(connection), "--x"])
