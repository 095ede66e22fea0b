"""Stdio servers as processes this process keeps control of, whatever they do.

The SDK's `stdio_client` spawns a server and stops it politely, but a server can
ignore its stdin closing, ignore SIGTERM, fork children that hold its pipes open,
or leave its process group; and waiting on such a process, or on a pipe it holds,
can last forever. So this transport owns the process itself:

- the server starts in a session of its own (its process group is the unit that
  is stopped), with a random tag in its environment that its descendants inherit,
  so one that left the group is still found (the way CI runners find a build's
  leftovers);
- stopping is the MCP shutdown sequence with every wait bounded: stdin closed,
  `EOF_GRACE` to exit, SIGTERM to the group, `TERM_GRACE`, then SIGKILL to the
  group and to every process carrying the tag. It always ends with that SIGKILL,
  so nothing of a server outlives its session, even children of a server that
  exited cleanly;
- the pipes are read and written without blocking and never waited on after the
  stop: a descendant that survived holding them cannot stall anything;
- stdout is read in linear time and a line longer than `max_message_bytes` is
  never held: its size is counted, the rest dropped, and the call it answers gets
  an error at once (its id is read from the line's first or last bytes, where the
  SDKs put it). Answers are hostile input too: they come from calls that sandboxed
  code chose, and the SDK's own reader holds a line whole and joins its pieces in
  a way that grows quadratically with it (a 180 MB result kept a host busy for
  minutes);
- a stdout line that is not JSON-RPC (a server printing a banner) is logged as one
  warning line with the text, never a traceback (`introspect` collects them);
- the leader is not reaped until its group has been killed, so the group id
  cannot have been reused by an unrelated process when the signal is sent.

POSIX only: on Windows the SDK's own transport is used (see `direct.open_client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from .config import ResolvedStdio

if TYPE_CHECKING:
    from mcp.shared.message import SessionMessage

__all__ = [
    "EOF_GRACE",
    "MAX_MESSAGE_BYTES",
    "NOT_MCP_LINE",
    "OVERSIZED_CODE",
    "SERVER_TAG_ENV",
    "TERM_GRACE",
    "ServerProcess",
    "stdio_transport",
]

SERVER_TAG_ENV = "MCP_CODEGEN_SERVER_TAG"
"""Environment variable holding a server's tag; its descendants inherit it."""

EOF_GRACE = 2.0
"""Seconds a server has to exit after its stdin closes, at the end of a healthy session."""

TERM_GRACE = 1.0
"""Seconds between SIGTERM and SIGKILL to the server's process group."""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The default longest line (one JSON-RPC message) a server may send; a longer one is dropped."""

OVERSIZED_CODE = -32001
"""The JSON-RPC error code of the answer that replaces an oversized one."""

NOT_MCP_LINE = "not_mcp_line"
"""The attribute of the log record of a stdout line that is not MCP: the line's text."""

_POLL = 0.02
_READ_CHUNK = 256 * 1024
_EDGE = 512
_ID_FIRST = re.compile(
    rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(\d{1,18}|"[^"\\]{0,200}")'
)
_ID_LAST = re.compile(rb'"id"\s*:\s*(\d{1,18}|"[^"\\]{0,200}")\s*\}\s*$')

logger = logging.getLogger(__name__)


class ServerProcess:
    """One stdio server's process: its group, its tag, and how it ended.

    `ended` is set when the server's side of the session ends: its stdout closed
    or its process exited. `kill()` may be called at any time and any number of
    times; it only sends signals, so it is safe while the session still runs.
    """

    def __init__(self, params: ResolvedStdio, errlog: TextIO, base_env: dict[str, str]):
        self.tag = secrets.token_hex(12)
        env = base_env | params.env | {SERVER_TAG_ENV: self.tag}
        self._popen = subprocess.Popen(
            [params.command, *params.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env=env,
            cwd=params.cwd,
            start_new_session=True,  # its own group: the unit that stop() and kill() signal
            close_fds=True,
        )
        self.pid = self._popen.pid
        self.ended = asyncio.Event()
        self._killed = False
        assert self._popen.stdin is not None and self._popen.stdout is not None
        self.stdin_fd = self._popen.stdin.fileno()
        self.stdout_fd = self._popen.stdout.fileno()
        os.set_blocking(self.stdin_fd, False)
        os.set_blocking(self.stdout_fd, False)

    @property
    def returncode(self) -> int | None:
        """The exit status once the server has exited (negative: killed by that signal)."""
        if self._popen.returncode is not None or self._killed or not hasattr(os, "waitid"):
            return self._popen.poll()
        # Look without reaping: until kill() has run, the zombie keeps the group id reserved.
        try:
            found = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self._popen.poll()
        if found is None or found.si_pid == 0:
            return None
        return found.si_status if found.si_code == os.CLD_EXITED else -found.si_status

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the server's whole process group (a no-op once it is killed)."""
        if not self._killed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL the server's group and every process that carries its tag."""
        if not self._killed:
            self.signal_group(signal.SIGKILL)
            _kill_tagged(self.tag)
            self._killed = True
        self.ended.set()

    def close(self) -> None:
        """Kill, close the pipes and reap the leader (once nothing waits on the pipes)."""
        self.kill()
        for stream in (self._popen.stdin, self._popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._popen.poll()  # a leader not reaped yet is reaped by subprocess later

    async def stop(self, *, polite: bool) -> None:
        """End the server within `EOF_GRACE + TERM_GRACE` seconds at most, then `kill()` it.

        `polite`: close its stdin and give it `EOF_GRACE` to exit first (a healthy
        session's end); otherwise go straight to SIGTERM (a failure or a deadline).
        """
        try:
            if polite:
                with contextlib.suppress(OSError):
                    assert self._popen.stdin is not None
                    self._popen.stdin.close()
                await self.wait_exit(EOF_GRACE)
            if self.returncode is None:
                self.signal_group(signal.SIGTERM)
                await self.wait_exit(TERM_GRACE)
        finally:
            self.kill()
        await self.wait_exit(1.0)  # the exit status, for messages; SIGKILL is quick

    async def wait_exit(self, seconds: float) -> bool:
        """Wait up to `seconds` for the server's exit; whether it has exited."""
        deadline = time.monotonic() + seconds
        while self.returncode is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL)
        return True


def _kill_tagged(tag: str) -> None:
    """SIGKILL every process whose environment holds the tag (Linux; elsewhere a no-op)."""
    marker = f"{SERVER_TAG_ENV}={tag}".encode()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    me = os.getpid()
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as file:
                environ = file.read()
        except OSError:  # gone, or another user's
            continue
        if marker in environ.split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)


async def _wait_fd(fd: int, *, writable: bool) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if writable:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _read_some(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            await _wait_fd(fd, writable=False)


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await _wait_fd(fd, writable=True)
            continue
        view = view[written:]


def _parse_line(line: bytes) -> SessionMessage | Exception:
    import mcp_types as types
    from mcp.shared.message import SessionMessage

    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:  # the session reports it; the server may go on
        text = line.decode("utf-8", "replace")
        logger.warning(
            "a server wrote text that is not MCP to stdout: %r",
            text[:200],
            extra={NOT_MCP_LINE: text},
        )
        return exc


def _oversized_answer(head: bytes, tail: bytes, size: int, limit: int) -> SessionMessage | None:
    """An error answer to the call an oversized line answers; None if no id is found."""
    import mcp_types as types
    from mcp.shared.message import SessionMessage

    found = _ID_FIRST.match(head) or _ID_LAST.search(tail)
    if found is None:
        return None
    raw = found.group(1).decode("utf-8", "replace")
    request_id: int | str = int(raw) if raw.isdigit() else raw.strip('"')
    message = (
        f"the server's answer is {size} bytes or more, over the limit of {limit}; it was dropped"
    )
    error = types.JSONRPCError(
        jsonrpc="2.0", id=request_id, error=types.ErrorData(code=OVERSIZED_CODE, message=message)
    )
    return SessionMessage(error)


class _LineReader:
    """Splits stdout into lines in linear time, holding at most `limit` bytes of one.

    A longer line is dropped as it streams in: only its size and its first and
    last `_EDGE` bytes are kept, to find the id of the call it answers.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._parts: list[bytes] = []
        self._size = 0
        self._tail = b""
        self._dropping = False

    def feed(self, chunk: bytes) -> list[SessionMessage | Exception]:
        """The messages completed by `chunk`, in order."""
        out: list[SessionMessage | Exception] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start : end if end >= 0 else len(chunk)]
            self._size += len(piece)
            if self._dropping:
                self._tail = (self._tail + piece)[-_EDGE:]
            else:
                self._parts.append(piece)
                if self._size > self.limit:
                    held = b"".join(self._parts)
                    self._parts, self._tail = [held[:_EDGE]], held[-_EDGE:]
                    self._dropping = True
            if end < 0:
                return out
            if self._dropping:
                answer = _oversized_answer(self._parts[0], self._tail, self._size, self.limit)
                if answer is not None:  # else nothing waits on it that can be named
                    out.append(answer)
            else:
                line = b"".join(self._parts)
                if line.strip():
                    out.append(_parse_line(line))
            self._parts, self._size, self._tail, self._dropping = [], 0, b"", False
            start = end + 1


@contextlib.asynccontextmanager
async def stdio_transport(
    params: ResolvedStdio,
    *,
    errlog: TextIO,
    on_start: Callable[[ServerProcess], None] | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> AsyncIterator[tuple[Any, Any]]:
    """Start `params` and yield the (read stream, write stream) pair an SDK `Client` takes.

    `on_start` receives the `ServerProcess` as soon as it exists, so a caller can
    watch it (`ended`) or kill it from outside. A message over `max_message_bytes`
    is dropped and the call it answers fails at once. On exit the server is stopped
    (politely after a clean exit, at once after an exception or a cancellation)
    and killed, within `EOF_GRACE + TERM_GRACE` seconds and a little more.

    Raises:
        OSError: the command cannot be started.
    """
    from mcp.client.stdio import get_default_environment
    from mcp.shared.message import SessionMessage

    process = ServerProcess(params, errlog, get_default_environment())
    try:
        if on_start is not None:
            on_start(process)
        to_session, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, from_session = anyio.create_memory_object_stream[SessionMessage](0)
        writer_scope = anyio.CancelScope()
        writer_done = anyio.Event()

        async def read_stdout() -> None:
            lines = _LineReader(max_message_bytes)
            try:
                async with to_session:
                    while True:
                        chunk = await _read_some(process.stdout_fd)
                        if not chunk:
                            return
                        for message in lines.feed(chunk):
                            await to_session.send(message)
            except (OSError, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            finally:
                process.ended.set()

        async def write_stdin() -> None:
            try:
                with writer_scope:
                    async with from_session:
                        async for message in from_session:
                            text = message.message.model_dump_json(
                                by_alias=True, exclude_unset=True
                            )
                            await _write_all(process.stdin_fd, text.encode("utf-8") + b"\n")
            except (OSError, anyio.ClosedResourceError, anyio.BrokenResourceError):
                # The server stopped reading: end the session rather than let a request wait.
                await to_session.aclose()
            finally:
                writer_done.set()

        async def watch_exit() -> None:
            # A server that exits while a descendant holds its stdout never sends EOF.
            while process.returncode is None:
                await anyio.sleep(0.25)
            await anyio.sleep(0.25)  # time for the reader to deliver what it wrote last
            process.ended.set()
            await to_session.aclose()

        polite = False
        async with anyio.create_task_group() as group:
            group.start_soon(read_stdout)
            group.start_soon(write_stdin)
            group.start_soon(watch_exit)
            try:
                yield read_stream, write_stream
                polite = True
            finally:
                with anyio.CancelScope(shield=True):
                    # Nothing may wait on stdin when it closes: stop the writer first.
                    await write_stream.aclose()
                    writer_scope.cancel()
                    with anyio.move_on_after(1.0):
                        await writer_done.wait()
                    await process.stop(polite=polite)
                    await read_stream.aclose()
                group.cancel_scope.cancel()
    finally:
        process.close()  # after the tasks: no pipe is closed under a task waiting on it
