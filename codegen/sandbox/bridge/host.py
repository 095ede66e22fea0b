"""The host's end of the bridge: every call from the sandbox is checked, then forwarded.

A request line must be a JSON object `{"id": int, "server": str, "tool": str,
"arguments": object}` no longer than `max_request_bytes`; its server and tool must
be in the snapshot, and its arguments must validate against the tool's input
schema. Only then does it reach a server, through the host's `Transport` (real
MCP sessions). Anything else gets an error answer naming what was wrong, and the
host goes on. Each call is recorded for the execution's result.

A few reserved server names (`$skills`) are answered by the host itself, by the
handlers given as `special`; their requests never reach a server.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from jsonschema import exceptions as schema_exceptions  # type: ignore[import-untyped]

from ...runtime.transport import Transport
from ...snapshot import Snapshot
from ..channel import Oversized
from ..result import ToolCall
from .limits import MAX_JSON_DEPTH, CpuBudget, json_depth_ok, placeholder_validator
from .privacy import PrivacyLimit, Tokenizer

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_MAX_RESULT_BYTES",
    "CallLog",
    "HostBridge",
    "SpecialHandler",
]

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
DEFAULT_MAX_RESULT_BYTES = 8 * 1024 * 1024
"""A result's size on the wire, refused while it streams in from the server (`runtime/stdio.py`):
each step of the host's work on a result holds the GIL for a time in proportion to it."""
_MAX_ERROR_CHARS = 2000
SpecialHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Answers `(tool, arguments)` of a reserved server with a tool result."""
_ID_AT_FRONT = re.compile(rb'^\s*\{\s*"id"\s*:\s*(\d{1,18})\s*[,}]')


class _Rejected(Exception):
    """A request refused before it reached any server."""


class CallLog:
    """The calls of one execution, in the order they finished."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        """Set when the execution is over: no call of it may start any more."""

    def close(self) -> None:
        """End the execution now, without awaiting: no new call starts, running ones are
        cancelled (a call to a server is cancelled upstream by its MCP session)."""
        self.closed = True
        for task in list(self.tasks):
            task.cancel()

    async def cancel(self) -> None:
        """`close`, then wait until the cancelled calls have stopped."""
        self.close()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


class HostBridge:
    """Validates and forwards the calls of sandboxed code to real servers."""

    def __init__(
        self,
        snapshot: Snapshot,
        transport: Transport,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        max_concurrent_calls: int = 32,
        privacy: Tokenizer | None = None,
        special: Mapping[str, SpecialHandler] | None = None,
        budget: CpuBudget | None = None,
    ):
        self.snapshot = snapshot
        self.special = dict(special or {})
        self.transport = transport
        self.privacy = privacy
        self.max_request_bytes = max_request_bytes
        self.max_result_bytes = max_result_bytes
        self.budget = budget or CpuBudget()
        """The session's host CPU: parsing, validation and scanning are charged to it."""
        self._limit = asyncio.Semaphore(max_concurrent_calls)
        self._validators: dict[tuple[str, str], Any] = {}

    def _validator(self, server: str, tool: str) -> Any:
        key = (server, tool)
        if key in self._validators:
            return self._validators[key]
        found = self.snapshot.server(server)
        if found is None:
            known = ", ".join(s.name for s in self.snapshot.servers) or "none"
            raise _Rejected(f"unknown server {server!r} (servers: {known})")
        spec = next((t for t in found.tools if t.name == tool), None)
        if spec is None:
            raise _Rejected(f"server {server!r} has no tool {tool!r}")
        try:
            validator: Any = placeholder_validator(spec.input_schema)
        except schema_exceptions.SchemaError:
            validator = None  # the server's own schema is broken: let the server judge
        self._validators[key] = validator
        return validator

    def _parse(self, line: bytes) -> tuple[int, str, str, dict[str, Any]]:
        if not json_depth_ok(line):
            raise _Rejected(f"the request nests more than {MAX_JSON_DEPTH} levels deep")
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _Rejected("the request is not JSON") from None
        if not isinstance(message, dict):
            raise _Rejected("the request is not a JSON object")
        call_id, server, tool = message.get("id"), message.get("server"), message.get("tool")
        arguments = message.get("arguments", {})
        if not isinstance(call_id, int) or isinstance(call_id, bool):
            raise _Rejected("the request has no integer id")
        if not isinstance(server, str) or not isinstance(tool, str):
            raise _Rejected("the request needs string 'server' and 'tool'")
        if not isinstance(arguments, dict):
            raise _Rejected("'arguments' must be a JSON object")
        return call_id, server, tool, arguments

    def _check(self, server: str, tool: str, arguments: dict[str, Any]) -> None:
        validator = self._validator(server, tool)
        if validator is None:
            return
        error = schema_exceptions.best_match(validator.iter_errors(arguments))
        if error is not None:
            where = "/" + "/".join(str(part) for part in error.absolute_path)
            raise _Rejected(f"invalid arguments for {server}.{tool} at {where}: {error.message}")

    def _prepare(self, line: bytes) -> tuple[int, str, str, dict[str, Any], dict[str, Any]]:
        """(id, server, tool, arguments as sent, arguments for the server) of a request.

        Validation sees the arguments as the code sent them, placeholders and all:
        real values are put back only after it passed, so no error quotes one.
        """
        call_id, server, tool, arguments = self._parse(line)
        if server in self.special:
            return call_id, server, tool, arguments, arguments
        self._check(server, tool, arguments)
        real = self.privacy.restore(arguments) if self.privacy is not None else arguments
        return call_id, server, tool, arguments, real

    def _redacted(self, message: str, server: str, tool: str) -> str:
        # Error messages can quote argument values, which are real values by now.
        if self.privacy is not None:
            message = self.privacy.redact_text(message, server, tool)
        if len(message) > _MAX_ERROR_CHARS:
            message = message[:_MAX_ERROR_CHARS] + f" [... {len(message)} characters in all]"
        return message

    def _answer(
        self, call_id: int, server: str, tool: str, result: dict[str, Any]
    ) -> tuple[bytes, str | None]:
        """The answer line of a result, personal data replaced; and its tool error, if any."""
        if self.privacy is not None and server not in self.special:
            result = self.privacy.redact_result(server, tool, result)
        answer = json.dumps({"id": call_id, "result": result}, ensure_ascii=False).encode("utf-8")
        if len(answer) > self.max_result_bytes:
            raise _Rejected(
                f"{server}.{tool} returned {len(answer)} bytes, over the limit of "
                f"{self.max_result_bytes}"
            )
        return answer, _tool_error(result)

    async def handle(self, line: bytes | Oversized, log: CallLog) -> bytes:
        """Answer one request line (the answer line, without its newline)."""
        started = time.perf_counter()
        size = line.size if isinstance(line, Oversized) else len(line)
        server = tool = ""
        call_id: int | None = None
        try:
            if isinstance(line, Oversized) or size > self.max_request_bytes:
                head = line.head if isinstance(line, Oversized) else line
                match = _ID_AT_FRONT.match(head)
                call_id = int(match.group(1)) if match else None
                raise _Rejected(
                    f"the request is {size} bytes, over the limit of {self.max_request_bytes}"
                )
            match = _ID_AT_FRONT.match(line)
            call_id = int(match.group(1)) if match else None
            call_id, server, tool, arguments, real = await self.budget.run(self._prepare, line)
            # After the budget: waiting for it, the execution may have ended meanwhile.
            if log.closed:
                raise _Rejected("the execution is over; the call was not made")
            special = self.special.get(server)
            if special is not None:
                result = await special(tool, arguments)
            else:
                async with self._limit:
                    result = await self.transport.call_tool(server, tool, real)
            answer, error = await self.budget.run(self._answer, call_id, server, tool, result)
            ok = error is None
        except asyncio.CancelledError:
            raise
        except (_Rejected, PrivacyLimit) as exc:
            message = await self.budget.run(self._redacted, str(exc), server, tool)
            answer, ok, error = _error_line(call_id, message), False, message
        except Exception as exc:  # the transport's errors, and the servers' failures
            message = await self.budget.run(
                self._redacted, str(exc) or type(exc).__name__, server, tool
            )
            answer, ok, error = _error_line(call_id, message), False, message
        log.calls.append(
            ToolCall(
                server=server,
                tool=tool,
                duration_ms=(time.perf_counter() - started) * 1000,
                bytes_in=size,
                bytes_out=len(answer),
                ok=ok,
                error=error,
            )
        )
        return answer


def _error_line(call_id: int | None, message: str) -> bytes:
    return json.dumps({"id": call_id, "error": message}, ensure_ascii=False).encode("utf-8")


def _tool_error(result: dict[str, Any]) -> str | None:
    if not result.get("isError"):
        return None
    for block in result.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "text":
            return str(block.get("text", ""))[:500]
    return "the tool reported an error"
