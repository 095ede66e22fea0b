"""Monitoring: OpenTelemetry traces and metrics, the audit log, and serve's log lines.

Off unless asked for, and then free: `configure_from_environment()` (every
command calls it at start) reads the standard `OTEL_*` variables and imports the
OpenTelemetry SDK only when one asks for export; `--audit FILE` adds the audit
log, `serve --log-level` the log lines. Until one of them is set, each hook in
the sandbox and in `serve` returns at its first line.

The hooks, one line each where they are called:

- `traced_execution` decorates `Executor.execute`: an `execute_code` span with the
  session, the code's hash and size, outcome, limit, output sizes, CPU time and
  peak memory measured inside the sandbox, and the tool-call count;
- `tool_call(log.trace)` wraps each bridge request in `HostBridge.handle`: an
  `execute_tool {tool}` child span (server, tool, duration, bytes in and out,
  outcome or error class, PII placeholders created and restored, validation, and
  the approval decision and who made it when the call needed one);
- `security_event(kind, ...)` where something is refused (a bad bridge token, a
  rejected skill, code the check stopped); `security_event_of(trace, kind, ...)` for
  a refusal handled outside the execution's task (a connection the egress proxy
  refused); refused bridge requests and limit hits are reported by the two hooks
  above;
- `request(tool, key)`, `session_opened`, `session_closed` in `serve`;
- `traced_build` and `traced_progress` in the build: a span per stage.

For the Python API, `configure(tracer_provider=..., meter_provider=...)` takes
providers of your own (the tests use the SDK's in-memory exporters).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import hooks
from .audit import DEFAULT_AUDIT_BACKUPS, DEFAULT_AUDIT_MAX_BYTES, AuditError, AuditLog
from .config import wanted
from .hooks import (
    SINKS,
    current_execution,
    security_event,
    security_event_of,
    session_label,
    tool_call,
    traced_execution,
)
from .serving import request, session_closed, session_opened
from .stages import traced_build, traced_progress

__all__ = [
    "DEFAULT_AUDIT_BACKUPS",
    "DEFAULT_AUDIT_MAX_BYTES",
    "AuditError",
    "configure",
    "configure_from_environment",
    "current_execution",
    "request",
    "reset",
    "security_event",
    "security_event_of",
    "session_closed",
    "session_label",
    "session_opened",
    "tool_call",
    "traced_build",
    "traced_execution",
    "traced_progress",
]


def _refresh() -> None:
    hooks.ACTIVE = SINKS.active


def configure_from_environment() -> bool:
    """Export traces and metrics if the `OTEL_*` variables ask for it (once per process);
    whether they do. Imports nothing of OpenTelemetry when they do not."""
    if SINKS.otel is not None:
        return True
    asked = wanted(os.environ)
    for problem in asked.problems:
        hooks.warn(problem)
    if not asked.any:
        return False
    from .otel import from_environment

    SINKS.otel = from_environment(asked)
    _refresh()
    return True


def configure(
    *,
    tracer_provider: Any | None = None,
    meter_provider: Any | None = None,
    audit: str | os.PathLike[str] | None = None,
    audit_max_bytes: int = DEFAULT_AUDIT_MAX_BYTES,
    audit_backups: int = DEFAULT_AUDIT_BACKUPS,
    log_level: str | None = None,
) -> None:
    """Add sinks: OpenTelemetry providers of your own, an audit log, serve's log lines.

    Raises:
        AuditError: the audit log cannot be opened.
    """
    if tracer_provider is not None or meter_provider is not None:
        from .otel import OtelSinks

        SINKS.otel = OtelSinks(tracer_provider, meter_provider)
    if audit is not None:
        if SINKS.audit is not None:
            SINKS.audit.close()
        SINKS.audit = AuditLog(Path(audit), max_bytes=audit_max_bytes, backups=audit_backups)
    if log_level is not None:
        from .logs import configure_logging

        configure_logging(log_level)
        SINKS.log = True
    _refresh()


def reset() -> None:
    """Remove every sink (flushing OpenTelemetry and closing the audit log); for tests."""
    if SINKS.otel is not None:
        SINKS.otel.shutdown()
    if SINKS.audit is not None:
        SINKS.audit.close()
    SINKS.otel = None
    SINKS.audit = None
    SINKS.log = False
    _refresh()
