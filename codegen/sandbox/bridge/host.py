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
from ...telemetry import current_execution, tool_call
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
    """A request refused before it reached any server; `reason` names the kind for telemetry,
    `server` and `tool` the target when it is a real one (invalid arguments)."""

    def __init__(self, message: str, reason: str, server: str = "", tool: str = ""):
        super().__init__(message)
        self.reason = reason
        self.server = server
        self.tool = tool


class CallLog:
    """The calls of one execution, in the order they finished."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        """Set when the execution is over: no call of it may start any more."""
        self.trace = current_execution()  # telemetry: the execution's trace, if it is traced

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
            raise _Rejected(f"unknown server {server!r} (servers: {known})", "unknown_server")
        spec = next((t for t in found.tools if t.name == tool), None)
        if spec is None:
            raise _Rejected(f"server {server!r} has no tool {tool!r}", "unknown_tool")
        try:
            validator: Any = placeholder_validator(spec.input_schema)
        except schema_exceptions.SchemaError:
            validator = None  # the server's own schema is broken: let the server judge
        self._validators[key] = validator
        return validator

    def _parse(self, line: bytes) -> tuple[int, str, str, dict[str, Any]]:
        if not json_depth_ok(line):
            raise _Rejected(f"the request nests more than {MAX_JSON_DEPTH} levels deep", "too_deep")
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _Rejected("the request is not JSON", "not_json") from None
        if not isinstance(message, dict):
            raise _Rejected("the request is not a JSON object", "malformed")
        call_id, server, tool = message.get("id"), message.get("server"), message.get("tool")
        arguments = message.get("arguments", {})
        if not isinstance(call_id, int) or isinstance(call_id, bool):
            raise _Rejected("the request has no integer id", "malformed")
        if not isinstance(server, str) or not isinstance(tool, str):
            raise _Rejected("the request needs string 'server' and 'tool'", "malformed")
        if not isinstance(arguments, dict):
            raise _Rejected("'arguments' must be a JSON object", "malformed")
        return call_id, server, tool, arguments

    def _check(self, server: str, tool: str, arguments: dict[str, Any]) -> None:
        validator = self._validator(server, tool)
        if validator is None:
            return
        error = schema_exceptions.best_match(validator.iter_errors(arguments))
        if error is not None:
            where = "/" + "/".join(str(part) for part in error.absolute_path)
            raise _Rejected(
                f"invalid arguments for {server}.{tool} at {where}: {error.message}",
                "invalid_arguments",
                server,
                tool,
            )

    def _prepare(self, line: bytes) -> tuple[int, str, str, dict[str, Any], dict[str, Any], int]:
        """(id, server, tool, arguments as sent, arguments for the server, placeholders
        restored) of a request.

        Validation sees the arguments as the code sent them, placeholders and all:
        real values are put back only after it passed, so no error quotes one.
        """
        call_id, server, tool, arguments = self._parse(line)
        if server in self.special:
            return call_id, server, tool, arguments, arguments, 0
        self._check(server, tool, arguments)
        if self.privacy is None:
            return call_id, server, tool, arguments, arguments, 0
        before = self.privacy.restored
        real = self.privacy.restore(arguments)
        return call_id, server, tool, arguments, real, self.privacy.restored - before

    def _redacted(self, message: str, server: str, tool: str) -> str:
        # Error messages can quote argument values, which are real values by now.
        if self.privacy is not None:
            message = self.privacy.redact_text(message, server, tool)
        if len(message) > _MAX_ERROR_CHARS:
            message = message[:_MAX_ERROR_CHARS] + f" [... {len(message)} characters in all]"
        return message

    def _answer(
        self, call_id: int, server: str, tool: str, result: dict[str, Any]
    ) -> tuple[bytes, str | None, int]:
        """The answer line of a result, personal data replaced; its tool error, if any; and
        how many new placeholders it made (exact: a session's scans run one at a time)."""
        created = 0
        if self.privacy is not None and server not in self.special:
            before = len(self.privacy)
            result = self.privacy.redact_result(server, tool, result)
            created = len(self.privacy) - before
        answer = json.dumps({"id": call_id, "result": result}, ensure_ascii=False).encode("utf-8")
        if len(answer) > self.max_result_bytes:
            raise _Rejected(
                f"{server}.{tool} returned {len(answer)} bytes, over the limit of "
                f"{self.max_result_bytes}",
                "result_too_large",
            )
        return answer, _tool_error(result), created

    async def handle(self, line: bytes | Oversized, log: CallLog) -> bytes:
        """Answer one request line (the answer line, without its newline)."""
        with tool_call(log.trace) as call:  # telemetry: the call's span, current while it runs
            return await self._handle(line, log, call)

    async def _handle(self, line: bytes | Oversized, log: CallLog, call: Any) -> bytes:
        started = time.perf_counter()
        size = line.size if isinstance(line, Oversized) else len(line)
        server = tool = ""
        call_id: int | None = None
        created = restored = 0
        reason = failure = None
        target = ("", "")  # a refused call's server and tool, when they are real ones
        try:
            if isinstance(line, Oversized) or size > self.max_request_bytes:
                head = line.head if isinstance(line, Oversized) else line
                match = _ID_AT_FRONT.match(head)
                call_id = int(match.group(1)) if match else None
                raise _Rejected(
                    f"the request is {size} bytes, over the limit of {self.max_request_bytes}",
                    "oversized",
                )
            match = _ID_AT_FRONT.match(line)
            call_id = int(match.group(1)) if match else None
            prepared = await self.budget.run(self._prepare, line)
            call_id, server, tool, arguments, real, restored = prepared
            # After the budget: waiting for it, the execution may have ended meanwhile.
            if log.closed:
                raise _Rejected("the execution is over; the call was not made", "execution_over")
            special = self.special.get(server)
            if special is not None:
                result = await special(tool, arguments)
            else:
                async with self._limit:
                    result = await self.transport.call_tool(server, tool, real)
            answer, error, created = await self.budget.run(
                self._answer, call_id, server, tool, result
            )
            ok = error is None
            failure = None if ok else "tool_error"
        except asyncio.CancelledError:
            raise
        except (_Rejected, PrivacyLimit) as exc:
            reason = exc.reason if isinstance(exc, _Rejected) else "privacy_limit"
            target = (exc.server, exc.tool) if isinstance(exc, _Rejected) else target
            message = await self.budget.run(self._redacted, str(exc), server, tool)
            answer, ok, error = _error_line(call_id, message), False, message
        except Exception as exc:  # the transport's errors, and the servers' failures
            failure = type(exc).__name__
            message = await self.budget.run(
                self._redacted, str(exc) or type(exc).__name__, server, tool
            )
            answer, ok, error = _error_line(call_id, message), False, message
        record = ToolCall(
            server=server,
            tool=tool,
            duration_ms=(time.perf_counter() - started) * 1000,
            bytes_in=size,
            bytes_out=len(answer),
            ok=ok,
            error=error,
        )
        log.calls.append(record)
        call.done(  # telemetry: names, outcome and sizes only
            record,
            reason=reason,
            error_type=failure,
            server=target[0],
            tool=target[1],
            call_id=call_id,
            created=created,
            restored=restored,
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
