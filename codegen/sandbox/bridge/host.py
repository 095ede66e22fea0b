"""The host's end of the bridge: every call from the sandbox is checked, then forwarded.

A request line must be a JSON object `{"id": int, "server": str, "tool": str,
"arguments": object}` no longer than `max_request_bytes`; its server and tool must
be in the snapshot, and its arguments must validate against the tool's input
schema. Only then does it reach a server, through the host's `Transport` (real
MCP sessions). Anything else gets an error answer naming what was wrong, and the
host goes on. Each call is recorded for the execution's result.

A few reserved server names (`$skills`) are answered by the host itself, by the
handlers given as `special`; their requests never reach a server.

Requests with a `kind` are resource reads (`"resource"`), prompts (`"prompt"`),
checked by `extras.Offerings`, and the code's progress reports (`"progress"`),
passed to the execution's hooks. A tool call that the `approval` policy says
needs a person's yes waits for it (`approval.decide`); a no is answered with a
`denied` error, which the code sees as `ApprovalDenied`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import exceptions as schema_exceptions  # type: ignore[import-untyped]

from ...runtime.transport import Transport
from ...snapshot import Snapshot
from ...telemetry import current_execution, tool_call
from ..channel import Oversized
from ..hooks import CodeProgress, ExecutionHooks
from ..result import Approval, ToolCall
from .approval import ApprovalPolicy, ApprovalRequest, decide, denial_message, shown_arguments
from .extras import Offerings, Refused, redact_prompt, redact_resource
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
_PROGRESS_KIND = re.compile(rb'"kind"\s*:\s*"progress"')


class _Rejected(Exception):
    """A request refused before it reached any server; `reason` names the kind for telemetry,
    `server` and `tool` the target when it is a real one (invalid arguments)."""

    def __init__(self, message: str, reason: str, server: str = "", tool: str = ""):
        super().__init__(message)
        self.reason = reason
        self.server = server
        self.tool = tool

    where: tuple[str, str, str] | None = None
    """(kind, server, name) of the request, when it was read far enough to know."""


class _Denied(Exception):
    """A call that needed a person's approval and did not get it."""

    def __init__(self, message: str, approval: Approval):
        super().__init__(message)
        self.approval = approval


@dataclass
class _Request:
    """One parsed and checked request line."""

    call_id: int
    kind: str
    server: str
    name: str
    """The tool, the uri (as sent) of a read, or the prompt."""
    arguments: dict[str, Any]
    """As the code sent them (placeholders and all)."""
    real: Any = None
    """What goes to the server: arguments, or the uri to read, with real values back."""
    progress: CodeProgress | None = None
    restored: int = 0
    """Placeholders put back into `real` (for telemetry)."""


class CallLog:
    """The calls of one execution, in the order they finished."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        """Set when the execution is over: no call of it may start any more."""
        self.hooks: ExecutionHooks | None = None
        """The execution's caller: who is asked for approvals, who hears its progress."""
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
        approval: ApprovalPolicy | None = None,
    ):
        self.snapshot = snapshot
        self.offerings = Offerings(snapshot)
        self.approval = approval or ApprovalPolicy()
        """Which calls need a person's yes (nothing, by default)."""
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

    def _parse(self, line: bytes) -> tuple[int, str, str, str, dict[str, Any]]:
        """(id, kind, server, tool, arguments) of a request, and the whole message."""
        if not json_depth_ok(line):
            raise _Rejected(f"the request nests more than {MAX_JSON_DEPTH} levels deep", "too_deep")
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _Rejected("the request is not JSON", "not_json") from None
        if not isinstance(message, dict):
            raise _Rejected("the request is not a JSON object", "malformed")
        call_id, server, tool = message.get("id"), message.get("server"), message.get("tool")
        kind = message.get("kind", "tool")
        arguments = message.get("arguments", {})
        if not isinstance(call_id, int) or isinstance(call_id, bool):
            raise _Rejected("the request has no integer id", "malformed")
        if kind not in ("tool", "resource", "prompt", "progress"):
            raise _Rejected(f"unknown request kind {str(kind)[:40]!r}", "malformed")
        if kind == "progress":
            return call_id, kind, "", "", message
        if not isinstance(server, str) or (kind == "tool" and not isinstance(tool, str)):
            raise _Rejected("the request needs string 'server' and 'tool'", "malformed")
        if not isinstance(arguments, dict):
            raise _Rejected("'arguments' must be a JSON object", "malformed")
        return call_id, kind, server, tool if isinstance(tool, str) else "", message

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

    def _prepare(self, line: bytes) -> _Request:
        """A request, parsed and checked, with what goes to the server.

        Validation sees the arguments as the code sent them, placeholders and all:
        real values are put back only after it passed, so no error quotes one.
        """
        call_id, kind, server, tool, message = self._parse(line)
        before = self.privacy.restored if self.privacy is not None else 0
        try:
            request = self._checked(call_id, kind, server, tool, message)
        except _Rejected as exc:
            name = tool or str(message.get("uri") or message.get("template") or "")
            name = name or str(message.get("prompt") or "")
            exc.where = (kind, server, name[:200])
            raise
        if self.privacy is not None:
            request.restored = self.privacy.restored - before
        return request

    def _checked(
        self, call_id: int, kind: str, server: str, tool: str, message: dict[str, Any]
    ) -> _Request:
        restore = self.privacy.restore if self.privacy is not None else _same
        if kind == "progress":
            return _Request(call_id, kind, "", "", {}, progress=_progress(message))
        arguments: dict[str, Any] = message.get("arguments", {})
        try:
            if kind == "resource":
                shown, uri = self.offerings.resource_uri(server, message, restore)
                return _Request(call_id, kind, server, shown, arguments, uri)
            if kind == "prompt":
                name, arguments = self.offerings.prompt_arguments(server, message)
                return _Request(call_id, kind, server, name, arguments, restore(arguments))
        except Refused as exc:
            raise _Rejected(str(exc), f"{kind}_refused") from None
        if server in self.special:
            return _Request(call_id, kind, server, tool, arguments, arguments)
        self._check(server, tool, arguments)
        return _Request(call_id, kind, server, tool, arguments, restore(arguments))

    def _redacted(self, message: str, server: str, tool: str) -> str:
        # Error messages can quote argument values, which are real values by now.
        if self.privacy is not None:
            message = self.privacy.redact_text(message, server, tool)
        if len(message) > _MAX_ERROR_CHARS:
            message = message[:_MAX_ERROR_CHARS] + f" [... {len(message)} characters in all]"
        return message

    def _answer(
        self, call_id: int, server: str, tool: str, result: dict[str, Any], kind: str = "tool"
    ) -> tuple[bytes, str | None, int]:
        """The answer line of a result, personal data replaced; its tool error, if any; and
        how many new placeholders it made (exact: a session's scans run one at a time)."""
        created = 0
        if self.privacy is not None and server not in self.special:
            before = len(self.privacy)
            if kind == "resource":
                result = redact_resource(self.privacy, server, result)
            elif kind == "prompt":
                result = redact_prompt(self.privacy, server, result)
            else:
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
        reported = await self._reported(line, log)
        if reported is not None:
            return reported
        with tool_call(log.trace) as call:  # telemetry: the call's span, current while it runs
            return await self._handle(line, log, call)

    async def _handle(self, line: bytes | Oversized, log: CallLog, call: Any) -> bytes:
        started = time.perf_counter()
        size = line.size if isinstance(line, Oversized) else len(line)
        server = tool = ""
        kind = "tool"
        call_id: int | None = None
        approval: Approval | None = None
        created = restored = 0
        reason = failure = None
        target = ("", "")  # the server and tool to report: set once they are known real ones
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
            request = await self.budget.run(self._prepare, line)
            call_id, kind, server, tool = (
                request.call_id,
                request.kind,
                request.server,
                request.name,
            )
            restored = request.restored
            # A resource's uri is the code's text, not a name: reported by its kind only.
            target = (server, "" if kind == "resource" else tool)
            # After the budget: waiting for it, the execution may have ended meanwhile.
            if log.closed:
                raise _Rejected("the execution is over; the call was not made", "execution_over")
            if request.progress is not None:  # a report `_reported` did not take
                return self._progress(request, log)
            special = self.special.get(server)
            if kind == "tool" and special is None:
                approval = await self._approve(request, log)
            if kind == "resource":
                async with self._limit:
                    result = await self._transport_method("read_resource")(server, request.real)
            elif kind == "prompt":
                async with self._limit:
                    result = await self._transport_method("get_prompt")(server, tool, request.real)
            elif special is not None:
                result = await special(tool, request.arguments)
            else:
                async with self._limit:
                    result = await self.transport.call_tool(server, tool, request.real)
            answer, error, created = await self.budget.run(
                self._answer, call_id, server, tool, result, kind
            )
            ok = error is None
            failure = None if ok else "tool_error"
        except asyncio.CancelledError:
            raise
        except _Denied as exc:
            approval = exc.approval
            failure = "approval_denied"
            message = await self.budget.run(self._redacted, str(exc), server, tool)
            denied = {"server": server, "tool": tool}
            answer = json.dumps(
                {"id": call_id, "error": message, "denied": denied}, ensure_ascii=False
            ).encode("utf-8")
            ok, error = False, message
        except (_Rejected, PrivacyLimit) as exc:
            reason = exc.reason if isinstance(exc, _Rejected) else "privacy_limit"
            if isinstance(exc, _Rejected):
                if exc.server:
                    target = (exc.server, exc.tool)
                if exc.where is not None and not server:
                    kind, server, tool = exc.where
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
            kind="resource" if kind == "resource" else "prompt" if kind == "prompt" else "tool",
            approval=approval,
        )
        log.calls.append(record)
        call.done(  # telemetry: names, outcome, sizes and the approval decision only
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

    async def _reported(self, line: bytes | Oversized, log: CallLog) -> bytes | None:
        """The answer to a progress report, which is not a call (no span, no log line);
        None for anything else, and for a report that is not valid (refused as a call)."""
        if isinstance(line, Oversized) or len(line) > self.max_request_bytes:
            return None
        if not _PROGRESS_KIND.search(line):  # a quick look before the parse
            return None
        try:
            call_id, kind, _, _, message = await self.budget.run(self._parse, line)
            if kind != "progress" or log.closed:
                return None
            request = _Request(call_id, kind, "", "", {}, progress=_progress(message))
        except _Rejected:
            return None
        return self._progress(request, log)

    def _transport_method(self, name: str) -> Any:
        method = getattr(self.transport, name, None)
        if method is None:
            raise _Rejected(f"the host's transport cannot {name.replace('_', ' ')}", "unsupported")
        return method

    def _progress(self, request: _Request, log: CallLog) -> bytes:
        """Pass the code's progress report on (it is not a call: nothing is logged)."""
        hooks = log.hooks
        if hooks is not None and hooks.on_progress is not None and request.progress is not None:
            report = request.progress
            if report.message and self.privacy is not None:
                report = CodeProgress(
                    report.done, report.total, self.privacy.hide_known(report.message)
                )
            hooks.on_progress(report)
        return json.dumps({"id": request.call_id, "result": {}}).encode("utf-8")

    async def _approve(self, request: _Request, log: CallLog) -> Approval | None:
        """None when the call needs no approval, else the decision (a yes).

        Raises:
            _Denied: the call needs approval and did not get it.
        """
        if not self.approval.active:
            return None
        found = self.snapshot.server(request.server)
        spec = next((t for t in found.tools if t.name == request.name), None) if found else None
        if spec is None or not self.approval.needs(request.server, spec):
            return None
        shown = await self.budget.run(self._shown_arguments, request)
        question = ApprovalRequest(
            request.server,
            request.name,
            shown,
            title=spec.title,
            destructive=(spec.annotations or {}).get("destructiveHint") is True,
        )
        hooks = log.hooks
        if hooks is None:
            approval = await decide(self.approval, None, question)
        else:
            async with hooks.asking:  # one question at a time per execution
                if log.closed:
                    raise _Rejected(
                        "the execution is over; the call was not made", "execution_over"
                    )
                approval = await decide(self.approval, hooks.ask, question)
        if approval.decision != "approved":
            raise _Denied(denial_message(question, approval), approval)
        if log.closed:  # the person took a while: the execution may have ended
            raise _Rejected("the execution is over; the call was not made", "execution_over")
        return approval

    def _shown_arguments(self, request: _Request) -> str:
        """The arguments as a person is shown them: as the code sent them, placeholders
        and all, with any other personal data the detectors find replaced too."""
        text = shown_arguments(request.arguments)
        if self.privacy is not None:
            text = self.privacy.redact_text(text, request.server, request.name)
        return text


def _same(value: Any) -> Any:
    return value


def _progress(message: dict[str, Any]) -> CodeProgress:
    done, total, text = message.get("done"), message.get("total"), message.get("message")
    if not isinstance(done, int | float) or not _finite(done):
        raise _Rejected("a progress report needs numbers 'done' and 'total'", "malformed")
    if total is not None and (not isinstance(total, int | float) or not _finite(total)):
        raise _Rejected("a progress report needs numbers 'done' and 'total'", "malformed")
    if text is not None and not isinstance(text, str):
        raise _Rejected("a progress report's 'message' must be a string", "malformed")
    return CodeProgress(float(done), None if total is None else float(total), text and text[:500])


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _error_line(call_id: int | None, message: str) -> bytes:
    return json.dumps({"id": call_id, "error": message}, ensure_ascii=False).encode("utf-8")


def _tool_error(result: dict[str, Any]) -> str | None:
    if not result.get("isError"):
        return None
    for block in result.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "text":
            return str(block.get("text", ""))[:500]
    return "the tool reported an error"
