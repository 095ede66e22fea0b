"""`serve`'s side: sessions opening and closing, and each request to its three tools.

A request is already a server span of the mcp SDK (`tools/call search_tools`,
continuing the client's `traceparent` from `_meta`); `request()` sets the
session for the executions it starts, adds a span of its own for searches and
module reads (their work, including the wait for the session's CPU budget), and
records `mcp.server.operation.duration`.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any, TypeVar

from . import hooks
from .hooks import SESSION, SINKS, session_label

__all__ = ["Request", "request", "session_closed", "session_opened"]

_TRACED = {"search_tools", "read_module"}
_T = TypeVar("_T")


def session_opened(key: object, transport: str) -> None:
    """A session began (its first tool call over HTTP; the process over stdio)."""
    if not hooks.ACTIVE:
        return
    label = session_label(key)
    otel = SINKS.otel
    if otel is not None and otel.instruments is not None:
        otel.instruments.sessions.add(1, {"mcp_codegen.transport": transport})
    hooks._log(logging.INFO, "session open", session=label, transport=transport)


def session_closed(key: object) -> None:
    """A session ended (and its sandbox and files with it)."""
    if hooks.ACTIVE:
        hooks._log(logging.INFO, "session close", session=session_label(key))


class Request:
    """One `tools/call` of serve, as a context manager (see `request`)."""

    __slots__ = ("_context", "_span", "_token", "error", "key", "started", "tool")

    def __init__(self, tool: str, key: object):
        self.tool = tool
        self.key = key
        self.error: str | None = None
        self._span: Any = None
        self._token: Any = None
        self._context: Any = None
        self.started = 0.0

    def __enter__(self) -> Request:
        self.started = time.perf_counter()
        label = session_label(self.key) if self.key is not None else None
        self._token = SESSION.set(label)
        otel = SINKS.otel
        if otel is not None and otel.tracer is not None and self.tool in _TRACED:
            from opentelemetry import context, trace

            self._span = otel.start_span(
                self.tool,
                attributes={"gen_ai.tool.name": self.tool, "mcp_codegen.session": label or ""},
            )
            self._context = context.attach(trace.set_span_in_context(self._span))
        return self

    def answered(self, result: _T) -> _T:
        """Note whether `result` (a `CallToolResult`) is an error; return it."""
        if getattr(result, "is_error", False):
            self.error = "tool_error"
        return result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        SESSION.reset(self._token)
        seconds = time.perf_counter() - self.started
        error = self.error or (exc_type.__name__ if exc_type is not None else None)
        otel = SINKS.otel
        if otel is not None:
            if self._span is not None:
                from opentelemetry import context

                context.detach(self._context)
                if error:
                    from .otel import error_status

                    error_status(self._span, error)
                self._span.end()
            if otel.instruments is not None:
                labels = {
                    "mcp.method.name": "tools/call",
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": self.tool,
                }
                if error:
                    labels["error.type"] = error
                otel.instruments.server_duration.record(seconds, labels)
                if self.tool in _TRACED:
                    operation = {"mcp_codegen.operation": self.tool}
                    otel.instruments.operation_duration.record(seconds, operation)
        if self.tool in _TRACED:
            hooks._log(
                logging.DEBUG,
                self.tool,
                session=session_label(self.key) if self.key is not None else None,
                outcome=error or "ok",
                duration_ms=round(seconds * 1000, 3),
            )


class _NoRequest:
    __slots__ = ()

    def __enter__(self) -> _NoRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def answered(self, result: _T) -> _T:
        return result


_NO_REQUEST = _NoRequest()


def request(tool: str, key: object) -> Request | _NoRequest:
    """The context of one `tools/call` of `tool` in session `key` (a no-op when off)."""
    if not hooks.ACTIVE:
        return _NO_REQUEST
    return Request(tool, key)
