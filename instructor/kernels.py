"""The grading kernel's manager and client: jupyter_client's, less the waits that cost every
submission time and decide nothing.

- Connect: the client's sockets usually connect before the kernel has bound its own, and ZeroMQ
  tries again every 0.1 s; :class:`GradingKernelClient` tries every ``RECONNECT_MS``.
- Ready: jupyter_client's ``wait_for_ready`` ends by reading IOPub until 0.2 s pass without a
  message. Here it reads until the kernel's ``idle`` status for one of its ``kernel_info``
  requests: the last message such a request makes, and proof that IOPub is connected. Where the
  kernel's welcome on IOPub says the subscription has only just begun (an earlier request's
  status may have gone before it), it asks once more at once instead of waiting.
- Killed: ``shutdown_kernel(now=True)`` polls the dead kernel's process every 0.1 s.
  :class:`GradingKernelManager` polls it every ``POLL`` seconds (the callers' time limits are kept).

Together these were ~0.3-0.4 s of a warm submission's time beyond its cells.
"""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type, default

POLL = 0.005          # seconds between two looks at a killed kernel's process
RECONNECT_MS = 5      # milliseconds between two tries to connect a socket to the kernel's
IOPUB_QUIET = 0.2     # seconds without an IOPub message that mean it is not connected (jupyter_client's)


class GradingKernelClient(AsyncKernelClient):
    """An asynchronous kernel client whose sockets retry quickly and whose ``wait_for_ready``
    returns once the kernel has answered ``kernel_info`` and IOPub has delivered that request's
    ``idle`` status."""

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)  # the default for its sockets
        return context

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Ask for ``kernel_info`` until the kernel answers on the shell channel and the idle status of
        one of those requests comes on IOPub; RuntimeError if the kernel dies or ``timeout`` passes."""
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            asked = {self.kernel_info()}
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply" \
                    and await self._idle_after(asked, deadline):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    async def _idle_after(self, asked: set[str], deadline: float) -> bool:
        """Read IOPub until the idle status of a request in ``asked`` (True), or until it stays quiet
        for IOPUB_QUIET seconds: not connected yet (False). On the kernel's welcome, ask again."""
        while time.monotonic() <= deadline:
            try:
                msg = await self.iopub_channel.get_msg(timeout=IOPUB_QUIET)
            except Empty:
                return False
            if msg["msg_type"] == "iopub_welcome":
                asked.add(self.kernel_info())   # its reply on the shell channel is left unread, as nbclient does
            elif msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle" \
                    and msg["parent_header"].get("msg_id") in asked:
                return True
        return False


class GradingKernelManager(AsyncKernelManager):
    """An asynchronous kernel manager that makes :class:`GradingKernelClient` clients and waits
    for a killed kernel with a short poll."""

    client_class = DottedObjectName("instructor.kernels.GradingKernelClient", config=True)
    client_factory = Type(GradingKernelClient, klass=AsyncKernelClient, config=True)

    async def _async_wait(self, pollinterval: float = POLL) -> None:
        while await self._async_is_alive():
            await asyncio.sleep(min(pollinterval, POLL))
