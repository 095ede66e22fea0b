"""serve's stdin and stdout, read and written on the event loop.

The SDK's `stdio_server` wraps both in `anyio.wrap_file`: every line read, every
write and every flush is a hand-over to a worker thread and back (three per
request, 0.3-0.6 ms each on two busy cores). When stdin and stdout are pipes or
sockets (as an MCP client starts a server), `event_loop_stdio` gives it streams
that asyncio reads and writes directly instead, with the same protection the SDK
gives its own: while serving, fd 0 reads the null device and fd 1 goes to
stderr, so handlers and child processes cannot read the client's messages or
write into the protocol; both are restored on exit. Otherwise (a terminal, a
file) it yields None and the SDK's own streams are used.

A line longer than `MAX_LINE_BYTES` is dropped (the SDK answers the garbage left
in its place as a parse error) rather than held whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["MAX_LINE_BYTES", "LineReader", "LineWriter", "event_loop_stdio"]

MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest message from the client (the largest code, JSON-escaped, fits many times)."""


class LineReader:
    """stdin as the SDK iterates it: `async for line in reader` (text lines)."""

    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader

    def __aiter__(self) -> LineReader:
        return self

    async def __anext__(self) -> str:
        try:
            line = await self._reader.readline()
        except ValueError:  # over the limit: dropped, and said to be no JSON
            return "\n"
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", "replace")


class LineWriter:
    """stdout as the SDK writes it: `await write(text)`, then `await flush()`."""

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer

    async def write(self, text: str) -> None:
        """Queue `text` (written at once when the pipe has room)."""
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        """Wait until the pipe took what was written (flow control).

        Raises:
            ConnectionError: the client closed its end.
        """
        await self._writer.drain()


def _streamable(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@dataclass
class _Claimed:
    stdin: int
    stdout: int


def _claim() -> _Claimed:
    """Private copies of fd 0 and 1; the null device on 0 and stderr on 1 meanwhile.

    Raises:
        OSError: a descriptor cannot be copied or replaced.
    """
    private_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    try:
        private_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:
        os.close(private_in)
        raise
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
    except OSError:
        os.dup2(private_in, 0)
        os.dup2(private_out, 1)
        raise
    finally:
        os.close(null)
    return _Claimed(private_in, private_out)


def _release(claimed: _Claimed) -> None:
    with contextlib.suppress(OSError):
        os.dup2(claimed.stdin, 0)
    with contextlib.suppress(OSError):
        os.dup2(claimed.stdout, 1)


@contextlib.asynccontextmanager
async def event_loop_stdio() -> AsyncIterator[tuple[LineReader, LineWriter] | None]:
    """stdin and stdout for `mcp.server.stdio.stdio_server(stdin, stdout)`, or None when
    they are not pipes or sockets (see the module's docstring)."""
    if not (_streamable(0) and _streamable(1)):
        yield None
        return
    try:
        claimed = _claim()
    except OSError:
        yield None
        return
    loop = asyncio.get_running_loop()
    read_transport: asyncio.BaseTransport | None = None
    write_transport: asyncio.WriteTransport | None = None
    try:
        reader = asyncio.StreamReader(limit=MAX_LINE_BYTES, loop=loop)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop),
            os.fdopen(claimed.stdin, "rb", buffering=0, closefd=False),
        )
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin,
            os.fdopen(claimed.stdout, "wb", buffering=0, closefd=False),
        )
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        yield LineReader(reader), LineWriter(writer)
    finally:
        for transport in (read_transport, write_transport):
            if transport is not None:
                transport.close()
        _release(claimed)
