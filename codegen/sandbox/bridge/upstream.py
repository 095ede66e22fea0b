"""The host's sessions with the real servers, with every message bounded as it streams in.

The SDK's stdio client holds a server's line whole before it parses it, and joins
its pieces in a way that grows quadratically with the line (a 180 MB result kept
a host busy for minutes). Results are answers to calls that sandboxed code
chose, so they are hostile input too. This client reads a server's stdout in
linear time, and a line longer than `max_message_bytes` is never held: its size is
counted, the rest dropped, and the call it answers gets an error at once (its id
is read from the line's first or last bytes, where the SDKs put it).

`BoundedTransport` is the host's `DirectTransport` with this client for every
stdio server. Streamable-HTTP servers use the SDK's client as they are.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import anyio.lowlevel
import mcp_types as types

from ...runtime.config import Config, HttpServer, ServerConfig
from ...runtime.direct import DEFAULT_TIMEOUT, DirectTransport, open_client

if TYPE_CHECKING:
    import os

    from mcp import Client

__all__ = ["BoundedTransport", "bounded_stdio_client"]

_EDGE = 512
_ID_FIRST = re.compile(
    rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(\d{1,18}|"[^"\\]{0,200}")'
)
_ID_LAST = re.compile(rb'"id"\s*:\s*(\d{1,18}|"[^"\\]{0,200}")\s*\}\s*$')
OVERSIZED_CODE = -32001


def _oversized_answer(head: bytes, tail: bytes, size: int, limit: int) -> Any:
    """An error answer to the call an oversized line answers; None if no id is found."""
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
        jsonrpc="2.0",
        id=request_id,
        error=types.ErrorData(code=OVERSIZED_CODE, message=message),
    )
    return SessionMessage(error)


@asynccontextmanager
async def bounded_stdio_client(
    server: Any, errlog: TextIO, max_message_bytes: int
) -> AsyncIterator[Any]:
    """The SDK's stdio transport (`mcp.client.stdio.stdio_client`), with a bounded reader.

    Process start and shutdown are the SDK's own (its helpers, pinned with mcp==2.3.0).

    Raises:
        OSError: the server cannot be started.
    """
    from mcp.client import stdio as sdk

    command = await sdk._get_executable_command(server.command)
    process = await sdk._create_platform_compatible_process(
        command=command,
        args=server.args,
        env=sdk.get_default_environment() | (server.env or {}),
        errlog=errlog,
        cwd=server.cwd,
    )
    reader_send, read_stream = anyio.create_memory_object_stream[Any](0)
    write_stream, writer_receive = anyio.create_memory_object_stream[Any](0)
    writer_done = anyio.Event()

    async def deliver(line: bytes) -> None:
        await reader_send.send(sdk._parse_line(line.decode(server.encoding, "replace")))

    async def stdout_reader() -> None:
        assert process.stdout is not None
        parts: list[bytes] = []
        size = 0
        tail = b""
        dropping = False
        try:
            async with reader_send:
                try:
                    while True:
                        try:
                            chunk = await process.stdout.receive()
                        except anyio.EndOfStream:
                            return
                        start = 0
                        while True:
                            end = chunk.find(b"\n", start)
                            piece = chunk[start : end if end >= 0 else len(chunk)]
                            size += len(piece)
                            if dropping:
                                tail = (tail + piece)[-_EDGE:]
                            else:
                                parts.append(piece)
                                if size > max_message_bytes:
                                    held = b"".join(parts)
                                    parts, tail, dropping = [held[:_EDGE]], held[-_EDGE:], True
                            if end < 0:
                                break
                            if dropping:
                                answer = _oversized_answer(parts[0], tail, size, max_message_bytes)
                                if answer is not None:
                                    await reader_send.send(answer)
                            elif parts:
                                line = b"".join(parts)
                                if line.strip():
                                    await deliver(line)
                            parts, size, tail, dropping = [], 0, b"", False
                            start = end + 1
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                finally:
                    await sdk._drain_stdout(process)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, ConnectionError):
            pass

    async def stdin_writer() -> None:
        assert process.stdin is not None
        try:
            async with writer_receive:
                async for message in writer_receive:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send((data + "\n").encode(server.encoding))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await reader_send.aclose()
        finally:
            writer_done.set()

    async def shutdown() -> None:
        read_stream.close()
        write_stream.close()
        with anyio.move_on_after(0.5):
            await writer_done.wait()
        await sdk._stop_server_process(process)
        await sdk._aclose_all(read_stream, write_stream, reader_send, writer_receive)
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        group.start_soon(stdout_reader)
        group.start_soon(stdin_writer)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await shutdown()
            group.cancel_scope.cancel()


class BoundedTransport(DirectTransport):
    """The host's transport: a `DirectTransport` whose stdio servers' messages are bounded.

    Args:
        config: the `mcp.json` (path or parsed).
        max_message_bytes: the largest message a server may send; a larger answer
            fails its call as soon as the limit is passed.
    """

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_bytes: int,
    ):
        super().__init__(config, timeout=timeout)
        self.max_message_bytes = max_message_bytes

    def open(
        self, server: ServerConfig, errlog: TextIO | None, timeout: float | None
    ) -> AbstractAsyncContextManager[Client]:
        """An initialized client of `server`, through the bounded reader for stdio."""
        return self._open_bounded(server, errlog, timeout)

    @asynccontextmanager
    async def _open_bounded(
        self, server: ServerConfig, errlog: TextIO | None, timeout: float | None
    ) -> AsyncIterator[Client]:
        """The session, opened.

        Raises:
            ConfigError: a `${VAR}` of the server's config is not set.
            OSError: the command cannot be started.
        """
        handler = self.notifications(server.name)
        if isinstance(server, HttpServer):
            async with (
                open_client(
                    server, errlog=errlog, timeout=timeout, message_handler=handler
                ) as client,
                self._listening(client, server.name),
            ):
                yield client
            return
        from mcp import Client, StdioServerParameters

        stdio = server.resolve()
        params = StdioServerParameters(
            command=stdio.command, args=list(stdio.args), env=stdio.env or None, cwd=stdio.cwd
        )
        transport = bounded_stdio_client(
            params, errlog if errlog is not None else sys.stderr, self.max_message_bytes
        )
        async with (
            Client(
                transport, read_timeout_seconds=timeout, cache=None, message_handler=handler
            ) as client,
            self._listening(client, server.name),
        ):
            yield client

    @asynccontextmanager
    async def _listening(self, client: Client, server: str) -> AsyncIterator[None]:
        """While the session lasts, pass on its list changes to `on_notification` (issue 17).

        Handshake-era servers send them unasked (the `message_handler`); a server on
        the 2026-07-28 protocol sends them only on a `subscriptions/listen` stream,
        opened here when someone listens and the server says its lists can change.
        """
        from mcp.shared.subscriptions import event_to_notification
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        callback = self.on_notification
        capabilities = client.server_capabilities
        tools = bool(capabilities.tools and capabilities.tools.list_changed)
        prompts = bool(capabilities.prompts and capabilities.prompts.list_changed)
        resources = bool(capabilities.resources and capabilities.resources.list_changed)
        if (
            callback is None
            or client.protocol_version not in MODERN_PROTOCOL_VERSIONS
            or not (tools or prompts or resources)
        ):
            yield
            return

        async def listen() -> None:
            try:
                async with client.listen(
                    tools_list_changed=tools,
                    prompts_list_changed=prompts,
                    resources_list_changed=resources,
                ) as subscription:
                    async for event in subscription:
                        await callback(server, event_to_notification(event, {}))
            except Exception:  # the server refused or dropped the stream: no more notices
                return

        async with anyio.create_task_group() as group:
            group.start_soon(listen)
            try:
                yield
            finally:
                group.cancel_scope.cancel()
