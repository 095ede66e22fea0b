"""Where the sandbox reports: each execution, each tool call, each security event.

The sinks (OpenTelemetry, the audit log, serve's log lines) are set once per
process by `codegen.telemetry.configure`. With none set, every hook returns at
its first line (`SINKS.active` is False), so an execution or a tool call costs
nothing more, and nothing of OpenTelemetry is imported.

An execution's trace is kept in a context variable while `Executor.execute`
runs; the bridge's `CallLog` of that execution picks it up when it is made, so
each tool call (handled in a task of the bridge's connection, not of the
execution) becomes a child of its own execution's span, whichever task runs it.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import logging
import secrets
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from .logs import LOGGER, line

if TYPE_CHECKING:
    from ..sandbox.result import ExecutionResult, ToolCall
    from .audit import AuditLog
    from .otel import OtelSinks

__all__ = [
    "NO_CALL",
    "SINKS",
    "CallTrace",
    "ExecutionTrace",
    "Sinks",
    "current_execution",
    "security_event",
    "security_event_of",
    "session_label",
    "timestamp",
    "tool_call",
    "traced_execution",
]

_R = TypeVar("_R")


@dataclass
class Sinks:
    """Where telemetry goes in this process; `active` is False when it goes nowhere."""

    otel: OtelSinks | None = None
    audit: AuditLog | None = None
    log: bool = False
    """Whether serve's event lines are on (`--log-level`)."""

    @property
    def active(self) -> bool:
        """Whether any sink is set."""
        return self.otel is not None or self.audit is not None or self.log


SINKS = Sinks()
ACTIVE = False
"""`SINKS.active`, kept as a plain global for the hot paths (set by `configure`)."""

_EXECUTION: contextvars.ContextVar[ExecutionTrace | None] = contextvars.ContextVar(
    "mcp_codegen_execution", default=None
)
_CALL: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar(
    "mcp_codegen_tool_call", default=None
)
SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mcp_codegen_session", default=None
)
"""The session label of the request being handled (set by `serve`)."""
_labels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

LIMIT_EVENTS = {"timeout", "output", "memory", "sandbox"}
# Refusals that point at an attack or a broken client rather than a model's slip: warnings.
_LOUD_REASONS = {"oversized", "too_deep", "not_json", "malformed", "bad_token", "privacy_limit"}
# Events that are mostly a model's slips (an unknown tool, a syntax error): `info`, except
# for the loud reasons above.
_QUIET_KINDS = {"bridge_rejected", "code_refused"}


def timestamp(seconds: float) -> str:
    """`seconds` since the epoch as ISO 8601 UTC with milliseconds."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int(seconds % 1 * 1000):03d}Z"


def session_label(key: object) -> str:
    """A session's name in telemetry: not its id (an HTTP session id lets whoever holds it
    use the session), but a stable digest of it; `stdio` stays `stdio`."""
    if key == "stdio":
        return "stdio"
    return "s-" + hashlib.sha256(str(key).encode("utf-8", "replace")).hexdigest()[:12]


def _executor_session(executor: Any) -> str:
    # exec/run and the Python API: one session per executor.
    label = _labels.get(executor)
    if label is None:
        label = _labels[executor] = "x-" + secrets.token_hex(6)
    return label


def current_execution() -> ExecutionTrace | None:
    """The execution being run in this task (for the bridge's `CallLog`), if traced."""
    return _EXECUTION.get() if ACTIVE else None


def _log(level: int, event: str, **fields: Any) -> None:
    if SINKS.log and LOGGER.isEnabledFor(level):
        LOGGER.log(level, line(event, **fields))


def _emit(
    kind: str,
    attributes: dict[str, Any],
    *,
    call: CallTrace | None = None,
    execution: ExecutionTrace | None = None,
) -> None:
    """One security event: an event on its span, a counter, an audit line, a log line."""
    clean = {key: value for key, value in attributes.items() if value is not None}
    otel = SINKS.otel
    if otel is not None:
        span_attributes = {"mcp_codegen.security_event.type": kind} | {
            f"mcp_codegen.{key}": value for key, value in clean.items()
        }
        span = call.span if call is not None else execution.span if execution else None
        if span is not None:
            span.add_event("mcp_codegen.security_event", span_attributes)
        elif otel.tracer is not None:
            # Nothing of an execution to hang it on (a connection with a bad token).
            from .otel import error_status

            alone = otel.start_span(f"security_event {kind}", attributes=span_attributes)
            if alone is not None:
                alone.add_event("mcp_codegen.security_event", span_attributes)
                error_status(alone, kind)
                alone.end()
        if otel.instruments is not None:
            detail = clean.get("reason") or clean.get("limit") or clean.get("kind")
            labels = {"mcp_codegen.security_event.type": kind}
            if detail is not None:
                labels["mcp_codegen.reason"] = str(detail)
            otel.instruments.security.add(1, labels)
    where = execution or (call.execution if call is not None else None)
    session = where.session if where is not None else SESSION.get()
    ids = {"session": session, "execution": where.id if where is not None else None}
    if SINKS.audit is not None:
        SINKS.audit.write(
            {"time": timestamp(time.time()), "event": "security", "type": kind} | ids | clean
        )
    reason = str(clean.get("reason") or clean.get("limit") or "")
    level = logging.WARNING if kind not in _QUIET_KINDS or reason in _LOUD_REASONS else logging.INFO
    _log(level, f"security {kind}", **ids, **clean)


def security_event(kind: str, **attributes: Any) -> None:
    """Report a security event of `kind` (`bad_token`, `skill_rejected`, ...) with
    low-cardinality `attributes` (a reason, a server or tool name; never a value a
    session sent) on the tool call or execution being handled, if any."""
    if not ACTIVE:
        return
    call = _CALL.get()
    _emit(kind, attributes, call=call, execution=None if call else _EXECUTION.get())


def security_event_of(execution: ExecutionTrace | None, kind: str, **attributes: Any) -> None:
    """`security_event` of an execution whose trace was taken earlier (`current_execution()`
    in the execution's task), for work handled in a task of its own (the egress proxy's
    connections); with None, an event of no execution."""
    if not ACTIVE:
        return
    _emit(kind, attributes, execution=execution)


class ExecutionTrace:
    """One execution's span, ids and start, from `Executor.execute` to its result."""

    __slots__ = (
        "code_bytes",
        "code_sha256",
        "context",
        "id",
        "origin",
        "session",
        "span",
        "started",
    )

    def __init__(self, executor: Any, code: str):
        self.id = secrets.token_hex(8)
        self.session = SESSION.get() or _executor_session(executor)
        self.origin = str(getattr(executor, "origin", "api"))
        encoded = code.encode("utf-8", "replace")
        self.code_bytes = len(encoded)
        self.code_sha256 = hashlib.sha256(encoded).hexdigest()
        self.started = time.time()
        self.span: Any = None
        self.context: Any = None
        otel = SINKS.otel
        if otel is not None and otel.tracer is not None:
            from opentelemetry import trace

            self.span = otel.start_span(
                "execute_code",
                attributes={
                    "mcp_codegen.session": self.session,
                    "mcp_codegen.execution.id": self.id,
                    "mcp_codegen.origin": self.origin,
                    "mcp_codegen.code.bytes": self.code_bytes,
                    "mcp_codegen.code.sha256": self.code_sha256,
                },
            )
            self.context = trace.set_span_in_context(self.span)

    def finish(self, result: ExecutionResult) -> None:
        """Record the result: span attributes and end, metrics, the audit line, the log line."""
        error_type = result.error.type if result.error is not None else None
        limit = result.limit
        outcome = "ok" if error_type is None else "limit" if limit else "error"
        stdout = len(result.stdout.encode("utf-8", "replace")) + result.stdout_cut_bytes
        stderr = len(result.stderr.encode("utf-8", "replace")) + result.stderr_cut_bytes
        fields: dict[str, Any] = {
            "outcome": outcome,
            "error_type": error_type,
            "limit": limit,
            "duration_ms": round(result.duration_ms, 3),
            "stdout_bytes": stdout,
            "stderr_bytes": stderr,
            "cpu_seconds": result.cpu_seconds,
            "peak_memory_bytes": result.peak_memory_bytes,
            "tool_calls": len(result.calls),
        }
        if limit:
            _emit("limit_hit", {"limit": limit}, execution=self)
        self._end(fields)

    def fail(self, exc: BaseException) -> None:
        """The execution raised (the sandbox was unavailable) or was cancelled."""
        import asyncio

        cancelled = isinstance(exc, asyncio.CancelledError)
        fields: dict[str, Any] = {
            "outcome": "cancelled" if cancelled else "sandbox_error",
            "error_type": None if cancelled else type(exc).__name__,
            "duration_ms": round((time.time() - self.started) * 1000, 3),
        }
        self._end(fields)

    def _end(self, fields: dict[str, Any]) -> None:
        otel = SINKS.otel
        present = {key: value for key, value in fields.items() if value is not None}
        if otel is not None:
            if self.span is not None:
                self.span.set_attributes(
                    {
                        f"mcp_codegen.execution.{key}": value
                        for key, value in present.items()
                        if key not in ("error_type", "duration_ms")
                    }
                )
                if present.get("error_type") is not None:
                    from .otel import error_status

                    error_status(self.span, present["error_type"])
                self.span.end()
            instruments = otel.instruments
            if instruments is not None:
                labels = {
                    "mcp_codegen.origin": self.origin,
                    "mcp_codegen.outcome": fields["outcome"],
                }
                if present.get("error_type"):
                    labels["error.type"] = present["error_type"]
                instruments.executions.add(1, labels)
                instruments.execution_duration.record(fields["duration_ms"] / 1000, labels)
                if present.get("cpu_seconds") is not None:
                    instruments.execution_cpu.record(present["cpu_seconds"], labels)
                if present.get("peak_memory_bytes") is not None:
                    instruments.execution_memory.record(present["peak_memory_bytes"], labels)
                if present.get("error_type"):
                    instruments.errors.add(
                        1, {"error.type": present["error_type"], "mcp_codegen.scope": "execution"}
                    )
                if present.get("limit"):
                    instruments.limit_hits.add(1, {"mcp_codegen.limit": present["limit"]})
        if SINKS.audit is not None:
            SINKS.audit.write(
                {
                    "time": timestamp(self.started),
                    "event": "execution",
                    "session": self.session,
                    "execution": self.id,
                    "origin": self.origin,
                    "code_bytes": self.code_bytes,
                    "code_sha256": self.code_sha256,
                }
                | present
            )
        _log(logging.INFO, "execution", session=self.session, execution=self.id, **present)


def traced_execution(
    method: Callable[..., Awaitable[_R]],
) -> Callable[..., Awaitable[_R]]:
    """Decorate `Executor.execute(code, ...)`: a traced execution when telemetry is on."""

    @functools.wraps(method)
    async def execute(executor: Any, code: str, *args: Any, **kwargs: Any) -> _R:
        if not ACTIVE:
            return await method(executor, code, *args, **kwargs)
        trace = ExecutionTrace(executor, code)
        token = _EXECUTION.set(trace)
        try:
            result = await method(executor, code, *args, **kwargs)
        except BaseException as exc:
            trace.fail(exc)
            raise
        finally:
            _EXECUTION.reset(token)
        trace.finish(result)  # type: ignore[arg-type]
        return result

    return execute


class _NoCall:
    """The tool call of an untraced execution: does nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoCall:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def done(self, record: ToolCall, **details: Any) -> None:
        """Ignore."""


NO_CALL = _NoCall()


class CallTrace:
    """One tool call of a traced execution: its span is the current one while it runs, so
    the mcp SDK's client span nests under it and carries its trace context to the server."""

    __slots__ = ("_call_token", "_context_token", "execution", "span", "started")

    def __init__(self, execution: ExecutionTrace):
        self.execution = execution
        self.started = time.time()
        self.span: Any = None
        self._context_token: Any = None
        self._call_token: Any = None

    def __enter__(self) -> CallTrace:
        otel = SINKS.otel
        if otel is not None and otel.tracer is not None and self.execution.span is not None:
            from opentelemetry import context, trace

            self.span = otel.start_span(
                "execute_tool",
                self.execution.context,
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.type": "extension",
                    "mcp_codegen.session": self.execution.session,
                    "mcp_codegen.execution.id": self.execution.id,
                },
            )
            self._context_token = context.attach(trace.set_span_in_context(self.span))
        self._call_token = _CALL.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _CALL.reset(self._call_token)
        if self.span is not None:
            from opentelemetry import context

            context.detach(self._context_token)
            if self.span.is_recording() and exc[0] is not None:
                # Cancelled (the execution ended) or a bug of ours: still ended.
                self.span.set_attribute("error.type", getattr(exc[0], "__name__", "error"))
            self.span.end()

    def done(
        self,
        record: ToolCall,
        *,
        reason: str | None = None,
        error_type: str | None = None,
        server: str | None = None,
        tool: str | None = None,
        call_id: int | None = None,
        created: int = 0,
        restored: int = 0,
    ) -> None:
        """Record the finished call: `reason` if the bridge refused it, else `error_type`
        if it failed; `server`/`tool` name its target once the bridge knows it is a real one
        (not a name the code made up: those would be labels without end). A resource read
        is named by its server and `kind`, a prompt by its name; a call that needed a
        person's yes carries the decision (`record.approval`)."""
        server = server or None
        tool = tool or None
        approval = record.approval
        outcome = "ok" if record.ok else "rejected" if reason else "error"
        if error_type == "tool_error":
            outcome = "tool_error"
        elif approval is not None and approval.decision == "denied":
            outcome = "denied"
        kind = reason or error_type
        otel = SINKS.otel
        if otel is not None:
            if self.span is not None:
                span = self.span
                if tool:
                    span.update_name(f"execute_tool {tool}")
                    span.set_attribute("gen_ai.tool.name", tool)
                if server:
                    span.set_attribute("mcp_codegen.server", server)
                if call_id is not None:
                    span.set_attribute("gen_ai.tool.call.id", f"{self.execution.id}:{call_id}")
                if record.kind != "tool":
                    span.set_attribute("mcp_codegen.request.kind", record.kind)
                if approval is not None:
                    span.set_attribute("mcp_codegen.approval.decision", approval.decision)
                    span.set_attribute("mcp_codegen.approval.by", approval.by)
                span.set_attributes(
                    {
                        "mcp_codegen.tool_call.outcome": outcome,
                        "mcp_codegen.tool_call.bytes_in": record.bytes_in,
                        "mcp_codegen.tool_call.bytes_out": record.bytes_out,
                        "mcp_codegen.pii.placeholders_created": created,
                        "mcp_codegen.pii.placeholders_restored": restored,
                        "mcp_codegen.tool_call.validation_failed": reason == "invalid_arguments",
                    }
                )
                if kind:
                    from .otel import error_status

                    error_status(span, kind)
            instruments = otel.instruments
            if instruments is not None:
                labels = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.type": "extension"}
                if tool:
                    labels["gen_ai.tool.name"] = tool
                if server:
                    labels["mcp_codegen.server"] = server
                if kind:
                    labels["error.type"] = kind
                instruments.tool_duration.record(record.duration_ms / 1000, labels)
                instruments.tool_calls.add(1, labels | {"mcp_codegen.outcome": outcome})
                if kind:
                    instruments.errors.add(
                        1, {"error.type": kind, "mcp_codegen.scope": "tool_call"}
                    )
                if reason:
                    instruments.rejections.add(1, {"mcp_codegen.reason": reason})
        execution = self.execution
        fields: dict[str, Any] = {
            "server": server,
            "tool": tool,
            "kind": None if record.kind == "tool" else record.kind,
            "call_id": call_id,
            "outcome": outcome,
            "error_type": kind,
            "duration_ms": round(record.duration_ms, 3),
            "bytes_in": record.bytes_in,
            "bytes_out": record.bytes_out,
            "pii_created": created,
            "pii_restored": restored,
            "approval": approval.decision if approval is not None else None,
            "approval_by": approval.by if approval is not None else None,
        }
        present = {key: value for key, value in fields.items() if value is not None}
        if SINKS.audit is not None:
            SINKS.audit.write(
                {
                    "time": timestamp(self.started),
                    "event": "tool_call",
                    "session": execution.session,
                    "execution": execution.id,
                }
                | present
            )
        _log(
            logging.DEBUG, "tool_call", session=execution.session, execution=execution.id, **present
        )
        if reason:
            _emit(
                "bridge_rejected",
                {"reason": reason, "server": server, "tool": tool},
                call=self,
            )


def tool_call(execution: ExecutionTrace | None) -> CallTrace | _NoCall:
    """The context of one tool call of `execution` (a no-op when it is not traced)."""
    if execution is None:
        return NO_CALL
    return CallTrace(execution)


def warn(message: str) -> None:
    """A problem of the telemetry's own configuration, on stderr."""
    print(f"warning: telemetry: {message}", file=sys.stderr)
