"""The grading kernel's manager and client (instructor.kernels): a real kernel is ready when they
say so, a dead one is reported, a killed one is waited for with the short poll; and the IOPub
wait reads the kernel's welcome and statuses as the kernel sends them."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

import pytest

from instructor import kernels

pytestmark = pytest.mark.kernel


@pytest.fixture
def short_dir():
    """A folder with a short path: a Unix socket's path is limited to ~100 characters."""
    folder = tempfile.mkdtemp(prefix="k-", dir="/tmp")
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _manager(folder: Path, kernel_name: str = "python3") -> kernels.GradingKernelManager:
    return kernels.GradingKernelManager(kernel_name=kernel_name, transport="ipc", ip=str(folder / "kernel"),
                                        connection_file=str(folder / "connection.json"))


async def _output_of(client, code: str) -> str:
    """What ``code`` prints, read from IOPub until the request's idle status."""
    request = client.execute(code)
    text = ""
    while True:
        msg = await client.iopub_channel.get_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != request:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return text


def test_a_real_kernel_is_ready_with_iopub_connected_and_is_killed_with_the_short_poll(short_dir):
    async def run():
        km = _manager(short_dir)
        await km.start_kernel()
        client = km.client()
        assert isinstance(client, kernels.GradingKernelClient)
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            # ready means IOPub delivers: the first request's output comes, nothing was lost
            assert await _output_of(client, "print(6 * 7)") == "42\n"
        finally:
            client.stop_channels()
        polls = []
        wait = km._async_wait

        async def counted(pollinterval: float = kernels.POLL) -> None:
            polls.append(pollinterval)
            await wait(pollinterval)

        km._async_wait = counted
        await km.shutdown_kernel(now=True)
        assert not await km.is_alive()
        # jupyter_client waits for the killed kernel through this method: renamed, the poll would be 0.1 s again
        assert polls, "shutdown_kernel(now=True) did not wait through GradingKernelManager._async_wait"

    asyncio.run(run())


def test_a_kernel_that_dies_before_answering_is_reported(short_dir, monkeypatch):
    spec = short_dir / "kernels" / "dies"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-c", "import sys; sys.exit(3)", "{connection_file}"],
        "display_name": "dies", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(short_dir))

    async def run():
        km = _manager(short_dir, "dies")
        await km.start_kernel()
        client = km.client()
        client.start_channels()
        try:
            with pytest.raises(RuntimeError, match="Kernel died before replying to kernel_info"):
                await client.wait_for_ready(timeout=60)
        finally:
            client.stop_channels()
            await km.cleanup_resources()

    asyncio.run(run())


class _IOPub:
    """IOPub as a kernel sends it: ``messages`` in order, then silence."""

    def __init__(self, messages: list[dict]):
        self.messages = messages

    async def get_msg(self, timeout: float | None = None) -> dict:
        if self.messages:
            return self.messages.pop(0)
        await asyncio.sleep(timeout or 0)
        raise Empty


class _Client:
    """What GradingKernelClient._idle_after uses of a client: IOPub and kernel_info requests."""

    def __init__(self, messages: list[dict]):
        self.iopub_channel = _IOPub(messages)
        self.sent: list[str] = []

    def kernel_info(self) -> str:
        self.sent.append(f"info-{len(self.sent) + 2}")
        return self.sent[-1]


def _status(state: str, parent: str) -> dict:
    return {"msg_type": "status", "content": {"execution_state": state}, "parent_header": {"msg_id": parent}}


def _idle_after(client: _Client, asked: set[str]) -> bool:
    return asyncio.run(kernels.GradingKernelClient._idle_after(client, asked, time.monotonic() + 30))


def test_the_requests_idle_status_ends_the_wait_and_others_do_not():
    client = _Client([_status("busy", "info-1"), _status("idle", "other"), _status("idle", "info-1")])
    assert _idle_after(client, {"info-1"}) and not client.sent and not client.iopub_channel.messages


def test_the_kernels_welcome_asks_again_at_once():
    """The subscription began after the first request's statuses went: the second request's idle ends the wait."""
    welcome = {"msg_type": "iopub_welcome", "content": {}, "parent_header": {}}
    client = _Client([welcome, _status("busy", "info-2"), _status("idle", "info-2")])
    assert _idle_after(client, {"info-1"}) and client.sent == ["info-2"]


def test_silence_on_iopub_means_not_connected_yet():
    client = _Client([_status("busy", "info-1")])
    assert not _idle_after(client, {"info-1"})


def test_the_grading_run_starts_its_kernels_with_this_manager(short_dir):
    import nbformat

    from instructor.preprocessors import SupervisedExecute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    seen = []
    execute = SupervisedExecute(kernel_name="python3", shutdown_kernel="immediate",
                                on_notebook_start=lambda notebook: seen.append((type(execute.km), type(execute.kc))))
    nb, _ = execute.preprocess(nb, {"metadata": {"path": str(short_dir)}})
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    assert seen == [(kernels.GradingKernelManager, kernels.GradingKernelClient)]


def _early_config(key: str):
    from traitlets.config import Config

    cfg = Config()
    cfg.Execute.kernel_name = "python3"
    cfg.Execute.shutdown_kernel = "immediate"
    cfg.SupervisedExecute.early = key
    return cfg


def test_a_kernel_started_early_is_the_one_execute_runs_the_notebook_in(short_dir):
    import nbformat

    from instructor import preprocessors

    cfg = _early_config("early-1")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.getpid(), os.getcwd())")])
    folder = short_dir / "autograded" / "s1" / "p1"
    with preprocessors.start_early(cfg, folder):
        km = preprocessors._EARLY["early-1"]
        started = km.provisioner.process.pid
        assert asyncio.run(km.is_alive()) and folder.is_dir()
        nb, _ = preprocessors.SupervisedExecute(config=cfg).preprocess(nb, {"metadata": {"path": str(folder)}})
        assert "early-1" not in preprocessors._EARLY, "Execute did not adopt the kernel"
    pid, cwd = nb.cells[0].outputs[0]["text"].split()
    assert int(pid) == started and cwd == str(folder), "the notebook ran in another kernel than the early one"
    assert not km.has_kernel, "Execute's immediate shutdown did not end the adopted kernel"


def test_an_early_kernel_nbgrader_never_reached_is_killed(short_dir):
    from instructor import preprocessors

    cfg = _early_config("early-2")
    with pytest.raises(ValueError, match="nbgrader stopped"), preprocessors.start_early(cfg, short_dir / "graded"):
        km = preprocessors._EARLY["early-2"]
        process = km.provisioner.process
        raise ValueError("nbgrader stopped before its Execute step")
    assert process.poll() is not None and "early-2" not in preprocessors._EARLY


def test_a_kernel_that_cannot_start_early_is_left_to_execute(short_dir):
    from instructor import preprocessors

    cfg = _early_config("early-3")
    cfg.Execute.kernel_name = "no-such-kernel"
    with preprocessors.start_early(cfg, short_dir / "graded"):
        assert "early-3" not in preprocessors._EARLY
