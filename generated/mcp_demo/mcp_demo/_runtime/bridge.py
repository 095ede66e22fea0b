"""The bridge transport: inside the sandbox, each call goes to the host over a socket.

The host listens on a Unix socket bound into the sandbox (`$MCP_CODEGEN_BRIDGE_SOCKET`).
A connection first sends `{"token": ...}` (`$MCP_CODEGEN_BRIDGE_TOKEN`), which ties
it to the one execution the token was made for. Then a call is one line of JSON,
`{"id": 7, "server": "time", "tool": "get_current_time", "arguments": {...}}`,
and the host answers with one line, `{"id": 7, "result": {...}}` or
`{"id": 7, "error": "..."}`, in any order: many calls can be in flight at once
(`asyncio.gather`), one reader task matching answers to calls by id. The host
checks every call against the snapshot and the tool's input schema before any
server sees it.

Resources and prompts travel the same way, with a `kind`: `{"id": 8, "kind":
"resource", "server": ..., "uri": ...}` (or `"template"` and `"arguments"`, which
the host expands itself), `{"id": 9, "kind": "prompt", "server": ..., "prompt":
..., "arguments": {...}}`. A call refused for want of a person's approval is
answered `{"id": 7, "error": "...", "denied": {"server": ..., "tool": ...}}`, and
raises `ApprovalDenied`.

`call_tool_blocking` makes one call over a connection of its own, for code that
cannot await (`save_skill` is called from plain and async code alike).

Standard library only: this module runs in the sandbox, where the `mcp` SDK is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

from .errors import ApprovalDenied, TransportError

__all__ = [
    "BRIDGE_SOCKET_ENV",
    "BRIDGE_TOKEN_ENV",
    "MAX_REPLY_BYTES",
    "BlockingChannel",
    "BridgeTransport",
    "call_tool_blocking",
]

BRIDGE_SOCKET_ENV = "MCP_CODEGEN_BRIDGE_SOCKET"
"""Environment variable holding the path of the host's bridge socket."""

BRIDGE_TOKEN_ENV = "MCP_CODEGEN_BRIDGE_TOKEN"
"""Environment variable holding the token of the running execution."""

MAX_REPLY_BYTES = 64 * 1024 * 1024
"""The longest answer line read from the host."""
_CHUNK = 1 << 16


def _address(path: str | None, token: str | None) -> tuple[str, str]:
    """The socket and token to use: the given ones, else those of the environment.

    Raises:
        TransportError: no socket is known (not inside a sandbox).
    """
    path = path or os.environ.get(BRIDGE_SOCKET_ENV, "")
    token = token or os.environ.get(BRIDGE_TOKEN_ENV, "")
    if not path:
        raise TransportError(
            f"${BRIDGE_SOCKET_ENV} is not set: the bridge transport works only inside "
            "an mcp-codegen sandbox"
        )
    return path, token


def _hello(token: str) -> bytes:
    """The first line of a connection: the token that ties it to one execution."""
    return json.dumps({"token": token}).encode("utf-8") + b"\n"


def _request(call_id: int, server: str, tool: str, arguments: Mapping[str, Any]) -> bytes:
    """One call as a request line.

    Raises:
        TransportError: the arguments are not JSON.
    """
    fields = {"server": server, "tool": tool, "arguments": dict(arguments)}
    return _line(call_id, fields, f"{server}.{tool}")


def _line(call_id: int, fields: Mapping[str, Any], what: str) -> bytes:
    """A request line of `fields` with its id.

    Raises:
        TransportError: a value is not JSON.
    """
    try:
        line = json.dumps({"id": call_id, **fields}, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TransportError(f"{what}: arguments are not JSON: {exc}") from None
    return line.encode("utf-8") + b"\n"


def _result_of(answer: dict[str, Any]) -> dict[str, Any]:
    """The tool result an answer holds.

    Raises:
        TransportError: the host refused the call, or the answer holds no result.
    """
    error = answer.get("error")
    result = answer.get("result")
    denied = answer.get("denied")
    if error is not None and isinstance(denied, dict):
        raise ApprovalDenied(str(denied.get("server", "")), str(denied.get("tool", "")), str(error))
    if error is not None:
        raise TransportError(str(error))
    if not isinstance(result, dict):
        raise TransportError("the host's answer holds no result")
    return result


class _Connection:
    """The socket as asyncio streams of one event loop, and the calls waiting on it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ):
        self.loop = loop
        self.reader = reader
        self.writer = writer
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.broken: str | None = None
        self.task = loop.create_task(self._read(), name="mcp-codegen-bridge-reader")

    async def _read(self) -> None:
        try:
            while True:
                try:
                    line = await self.reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    self._fail("the host closed the bridge")
                    return
                except asyncio.LimitOverrunError:
                    self._fail(f"the host sent an answer longer than {MAX_REPLY_BYTES} bytes")
                    return
                self._answer(line)
        except OSError as exc:
            self._fail(f"the bridge to the host failed: {exc}")

    def _answer(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        call_id = message.get("id")
        future = self.pending.pop(call_id, None) if isinstance(call_id, int) else None
        if future is None or future.done():
            return
        try:
            future.set_result(_result_of(message))
        except (TransportError, ApprovalDenied) as exc:
            future.set_exception(exc)

    def _fail(self, reason: str) -> None:
        self.broken = reason
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(TransportError(reason))

    def close(self) -> None:
        self.task.cancel()
        self._fail("the bridge was closed")
        self.writer.close()


class BridgeTransport:
    """Sends each call to the host over the sandbox's bridge socket.

    `path` and `token` default to `$MCP_CODEGEN_BRIDGE_SOCKET` and
    `$MCP_CODEGEN_BRIDGE_TOKEN`. The transport works from any event loop (code may
    call `asyncio.run` more than once); calls of one loop share a connection.
    """

    def __init__(self, path: str | None = None, token: str | None = None):
        self._path = path
        self._token = token
        self._ids = itertools.count(1)
        self._connection: _Connection | None = None
        self._lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        # One connection (one reader) per loop, even for concurrent first calls.
        async with self._lock[1]:
            connection = self._connection
            if connection is not None and connection.loop is loop and connection.broken is None:
                return connection
            if connection is not None and connection.loop is not loop:
                # The loop it belonged to is gone (asyncio.run ended); drop it quietly.
                connection.broken = "closed"
                with contextlib.suppress(RuntimeError):
                    connection.writer.transport.abort()
            path, token = _address(self._path, self._token)
            try:
                reader, writer = await asyncio.open_unix_connection(path, limit=MAX_REPLY_BYTES)
            except OSError as exc:
                raise TransportError(f"cannot reach the host's bridge at {path}: {exc}") from exc
            writer.write(_hello(token))
            self._connection = _Connection(loop, reader, writer)
            return self._connection

    async def call_tool(
        self, server: str, tool: str, arguments: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Send the call to the host and wait for its answer.

        Raises:
            TransportError: the arguments are not JSON, the bridge is closed, or the
                host refused the call (unknown tool, invalid arguments, failure).
            ApprovalDenied: the call needs a person's approval and did not get it.
        """
        fields = {"server": server, "tool": tool, "arguments": dict(arguments)}
        return await self._send(fields, f"{server}.{tool}")

    async def read_resource(self, server: str, uri: str) -> dict[str, Any]:
        """Read a resource through the host (wire-form `ReadResourceResult`).

        Raises:
            TransportError: the bridge failed, or the host refused the read (a uri
                that is none of the server's resources or templates) or it failed.
        """
        return await self._send({"kind": "resource", "server": server, "uri": uri}, server)

    async def read_template(
        self, server: str, template: str, arguments: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Read the resource of a template through the host, which expands it itself.

        Raises:
            TransportError: as `read_resource`; or a value does not fit the template.
        """
        fields = {
            "kind": "resource",
            "server": server,
            "template": template,
            "arguments": dict(arguments),
        }
        return await self._send(fields, server)

    async def get_prompt(
        self, server: str, prompt: str, arguments: Mapping[str, str]
    ) -> dict[str, Any]:
        """Get a prompt through the host (wire-form `GetPromptResult`).

        Raises:
            TransportError: the bridge failed, the prompt is unknown, a required
                argument is missing, or the server refused.
        """
        fields = {
            "kind": "prompt",
            "server": server,
            "prompt": prompt,
            "arguments": dict(arguments),
        }
        return await self._send(fields, f"{server}.{prompt}")

    async def _send(self, fields: Mapping[str, Any], what: str) -> dict[str, Any]:
        connection = await self._connect()
        if connection.broken is not None:
            raise TransportError(connection.broken)
        call_id = next(self._ids)
        line = _line(call_id, fields, what)
        future: asyncio.Future[dict[str, Any]] = connection.loop.create_future()
        connection.pending[call_id] = future
        try:
            connection.writer.write(line)
            await connection.writer.drain()
            return await future
        except OSError as exc:
            raise TransportError(f"{what}: the bridge to the host failed: {exc}") from exc
        finally:
            connection.pending.pop(call_id, None)

    async def aclose(self) -> None:
        """Close this process's connection; a later call opens a new one."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def call_tool_blocking(
    server: str,
    tool: str,
    arguments: Mapping[str, Any],
    *,
    timeout: float,
    path: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Send one call over a blocking connection of its own; its result.

    `path` and `token` default to the environment's, as for `BridgeTransport`.
    The first answer line is the call's: it is the only call on the connection,
    and a refused token is answered before it.

    Raises:
        TransportError: not inside a sandbox, the arguments are not JSON, the bridge
            failed or timed out, the answer cannot be read, or the host refused the call.
    """
    path, token = _address(path, token)
    line = _request(1, server, tool, arguments)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(_hello(token) + line)
            data = _answer_line(sock, MAX_REPLY_BYTES)
    except OSError as exc:
        raise TransportError(f"the bridge to the host failed: {exc}") from None
    return _result_of(_parsed(data))


def _answer_line(sock: socket.socket, limit: int) -> bytes:
    """The next answer line on a blocking connection (the only message in flight on it).

    Raises:
        OSError: the connection failed or timed out.
    """
    data = bytearray()
    while not data.endswith(b"\n") and len(data) <= limit:
        chunk = sock.recv(_CHUNK)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _parsed(data: bytes) -> dict[str, Any]:
    """An answer line as a JSON object.

    Raises:
        TransportError: it is not one.
    """
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TransportError("the host's answer could not be read")
    return answer


class BlockingChannel:
    """One blocking connection to the host, kept open, for short messages from plain code
    (`report_progress`), one at a time. It belongs to the process that opened it."""

    def __init__(self, path: str | None = None, token: str | None = None):
        self._path = path
        self._token = token
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None
        self._owner = 0

    def send(self, fields: Mapping[str, Any], *, timeout: float) -> dict[str, Any]:
        """Send one message and wait for its answer.

        Raises:
            TransportError: not inside a sandbox, the bridge failed or timed out, or
                the host refused the message.
        """
        with self._lock:
            try:
                sock = self._connected(timeout)
                sock.sendall(_line(next(self._ids), fields, str(fields.get("kind", "message"))))
                data = _answer_line(sock, _CHUNK)
            except OSError as exc:
                self._drop()
                raise TransportError(f"the bridge to the host failed: {exc}") from None
            try:
                answer = _parsed(data)
            except TransportError:
                self._drop()
                raise
        return _result_of(answer)

    def _connected(self, timeout: float) -> socket.socket:
        if self._sock is None or self._owner != os.getpid():
            path, token = _address(self._path, self._token)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
                sock.sendall(_hello(token))
            except OSError:
                sock.close()
                raise
            self._sock, self._owner = sock, os.getpid()
        self._sock.settimeout(timeout)
        return self._sock

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
