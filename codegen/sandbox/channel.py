"""The host's end of one worker: its process, and the lines on its stdin and stdout.

Lines from the worker start with `W` and hold one JSON message (`ready`,
`result`, `failed`; see `inside/protocol.py`). `LineSplitter` is shared with the bridge socket: a line
longer than its limit is never held whole; its first bytes are kept (a call's id
is at the front) and the rest is counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .inside.protocol import (
    Job,
    ReadyMessage,
    ResultMessage,
    decode_worker_message,
    encode,
    exec_message,
)

__all__ = ["MAX_WORKER_LINE", "LineSplitter", "Oversized", "WorkerDied", "WorkerProcess"]

_HEAD = 512
_CHUNK = 1 << 16
MAX_WORKER_LINE = 16 * 1024 * 1024
"""The longest message a worker may send (a result: 100 kB of stdout and of stderr, a
value, a traceback, each bounded inside): the worker runs in the sandbox, so a larger
line is not held, and fails the execution."""


class WorkerDied(Exception):
    """The worker's process ended (or stopped answering) while it was needed."""


@dataclass
class Oversized:
    """A line longer than its limit: its first bytes and its full size."""

    head: bytes
    size: int


class LineSplitter:
    """Splits a byte stream into lines, each kind (first byte) with its own size limit."""

    def __init__(self, limits: dict[bytes, int], default_limit: int):
        self.limits = limits
        self.default_limit = default_limit
        self.buffer = bytearray()
        self.dropping: Oversized | None = None

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        """The lines completed by `data` (without their newline)."""
        lines: list[bytes | Oversized] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            piece = data[start : end if end >= 0 else len(data)]
            if self.dropping is not None:
                self.dropping.size += len(piece)
            else:
                self.buffer += piece
                limit = self.limits.get(bytes(self.buffer[:1]), self.default_limit)
                if len(self.buffer) > limit:
                    self.dropping = Oversized(bytes(self.buffer[:_HEAD]), len(self.buffer))
                    self.buffer.clear()
            if end < 0:
                return lines
            if self.dropping is not None:
                lines.append(self.dropping)
                self.dropping = None
            else:
                lines.append(bytes(self.buffer))
                self.buffer.clear()
            start = end + 1


class WorkerProcess:
    """A worker process (`runsc run ...`, or a plain interpreter) and its protocol."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ):
        self.command = list(command)
        self.env = env
        self.cwd = cwd
        self.splitter = LineSplitter({}, MAX_WORKER_LINE)
        self.process: asyncio.subprocess.Process | None = None
        self.stderr_tail = bytearray()
        self._ready: asyncio.Future[ReadyMessage] | None = None
        self._result: asyncio.Future[ResultMessage] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.dead = False

    @property
    def pid(self) -> int | None:
        """The pid of the process (the `runsc run` process for a sandbox)."""
        return self.process.pid if self.process else None

    async def start(self, timeout: float) -> ReadyMessage:
        """Start the process and wait for its `ready` message.

        Raises:
            WorkerDied: it exited, failed to prepare, or was not ready in time.
            OSError: the command could not be started.
        """
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        self._tasks = [
            loop.create_task(self._read_stdout(), name="mcp-codegen-worker-stdout"),
            loop.create_task(self._read_stderr(), name="mcp-codegen-worker-stderr"),
        ]
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            raise WorkerDied(
                f"the sandbox was not ready within {timeout:g}s{self._tail()}"
            ) from None

    def _tail(self) -> str:
        text = self.stderr_tail.decode("utf-8", "replace").strip()
        lines = [line for line in text.splitlines() if line.strip()][-6:]
        return (": " + " | ".join(lines)) if lines else ""

    async def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while data := await self.process.stderr.read(_CHUNK):
            self.stderr_tail += data
            del self.stderr_tail[:-8192]

    async def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        try:
            while data := await self.process.stdout.read(_CHUNK):
                for line in self.splitter.feed(data):
                    self._dispatch(line)
                if self.splitter.dropping is not None:  # refused while it streams in
                    self._dispatch(self.splitter.dropping)
        finally:
            self.dead = True
            await asyncio.sleep(0)  # let the stderr reader catch up for the message
            reason = WorkerDied(f"the sandbox's worker exited{self._tail()}")
            for future in (self._ready, self._result):
                if future is not None and not future.done():
                    future.set_exception(reason)

    def _dispatch(self, line: bytes | Oversized) -> None:
        if isinstance(line, Oversized):
            reason = WorkerDied(
                f"the sandbox sent a message of {line.size} bytes, over the limit of "
                f"{MAX_WORKER_LINE}"
            )
            for future in (self._ready, self._result):
                if future is not None and not future.done():
                    future.set_exception(reason)
            return
        message = decode_worker_message(line)
        if message is None:
            return
        if message["type"] == "ready" and self._ready is not None and not self._ready.done():
            self._ready.set_result(message)
        elif message["type"] == "failed" and self._ready is not None and not self._ready.done():
            self._ready.set_exception(
                WorkerDied(f"the sandbox could not start: {message.get('error')}")
            )
        elif message["type"] == "result" and self._result is not None and not self._result.done():
            self._result.set_result(message)

    def send(self, message: Mapping[str, object]) -> None:
        """Write one message to the worker; dropped if it is gone."""
        process = self.process
        if process is None or process.stdin is None or self.dead:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            process.stdin.write(encode(message))

    async def execute(self, job: Job, timeout: float) -> ResultMessage:
        """Hand `job` to the worker and wait (at most `timeout`) for its result.

        Raises:
            WorkerDied: the worker died or did not answer in time.
        """
        if self.dead:
            raise WorkerDied("the sandbox's worker is gone")
        loop = asyncio.get_running_loop()
        self._result = result = loop.create_future()
        self.send(exec_message(job))
        try:
            return await asyncio.wait_for(asyncio.shield(result), timeout)
        except TimeoutError:
            raise WorkerDied("the sandbox stopped answering") from None
        finally:
            # A cancelled caller leaves the future pending for `abandon` to wait on.
            if result.done() and self._result is result:
                self._result = None

    def abandon(self) -> asyncio.Future[ResultMessage] | None:
        """Tell the worker to kill the running job, at once and without awaiting anything.

        Returns the future of the job's result (which says "cancelled" unless the job
        had just ended; it fails if the worker dies), or None when no job is running.
        The worker is idle again once the future is done.
        """
        result = self._result
        if result is None or result.done():
            return None
        self.send({"type": "cancel"})
        return result

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to exit, then make sure the process is gone."""
        process = self.process
        if process is None:
            return
        self.send({"type": "shutdown"})
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            self.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 5)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task

    def kill(self) -> None:
        """SIGKILL the process group of the worker's process at once."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
