"""The build's spans: one `build` span, and a child span per stage it reports to its progress.

`build_package` tells its `Progress` where it is (`introspecting the servers of
...`, `generating models ...`, `formatting, verifying and indexing ...`);
`traced_progress` wraps that progress so each stage is also a span (named
after the stage: `build introspect`, `build render`, `build write`), current while
it runs, so the mcp SDK's client spans of the introspection nest under it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import hooks
from .hooks import SINKS

if TYPE_CHECKING:
    from ..progress import Progress

__all__ = ["stage_name", "traced_build", "traced_progress"]

_R = TypeVar("_R")
_STAGES = {"introspecting": "introspect", "generating": "render", "formatting": "write"}


def stage_name(text: str) -> str:
    """The stage a progress line names (`introspect`, `render`, `write`; else its first word)."""
    first = text.split(" ", 1)[0].strip(",").lower()
    return _STAGES.get(first, first or "stage")


class _Build:
    """The open stage span of the build running in this thread."""

    def __init__(self) -> None:
        self.span: Any = None
        self.token: Any = None
        self.started = 0.0
        self.name = ""

    def open(self, text: str) -> None:
        self.close()
        otel = SINKS.otel
        if otel is None:
            return
        self.name = stage_name(text)
        self.started = time.perf_counter()
        if otel.tracer is not None:
            from opentelemetry import context, trace

            self.span = otel.start_span(
                f"build {self.name}", attributes={"mcp_codegen.build.stage": self.name}
            )
            self.token = context.attach(trace.set_span_in_context(self.span))

    def close(self) -> None:
        otel = SINKS.otel
        if otel is None or not self.name:
            return
        if otel.instruments is not None:
            otel.instruments.operation_duration.record(
                time.perf_counter() - self.started, {"mcp_codegen.operation": f"build {self.name}"}
            )
        if self.span is not None:
            from opentelemetry import context

            context.detach(self.token)
            self.span.end()
        self.span, self.name = None, ""


_current: list[_Build] = []


class _TracedProgress:
    """A `Progress` that also opens a span per stage."""

    def __init__(self, inner: Progress, build: _Build):
        self.inner = inner
        self.build = build

    def stage(self, name: str, total: int | None = None) -> None:
        self.build.open(name)
        self.inner.stage(name, total)

    def advance(self, steps: int = 1) -> None:
        self.inner.advance(steps)

    def servers(self, done: int, running: int, queued: int, failed: int) -> None:
        self.inner.servers(done, running, queued, failed)

    def finish(self) -> None:
        self.build.close()
        self.inner.finish()


def traced_progress(progress: Progress) -> Progress:
    """`progress`, with a span per stage when a build is traced (else `progress` itself)."""
    if not hooks.ACTIVE or not _current:
        return progress
    return _TracedProgress(progress, _current[-1])


def traced_build(function: Callable[..., _R]) -> Callable[..., _R]:
    """Decorate `build_package`: a `build` span around it when telemetry is on."""

    @functools.wraps(function)
    def build(*args: Any, **kwargs: Any) -> _R:
        otel = SINKS.otel
        if not hooks.ACTIVE or otel is None:
            return function(*args, **kwargs)
        stages = _Build()
        _current.append(stages)
        span = otel.start_span("build")
        token = None
        if span is not None:
            from opentelemetry import context, trace

            token = context.attach(trace.set_span_in_context(span))
        try:
            report = function(*args, **kwargs)
        except BaseException as exc:
            stages.close()
            if span is not None:
                from .otel import error_status

                error_status(span, type(exc).__name__)
            raise
        else:
            stages.close()
            if span is not None:
                span.set_attributes(_report_attributes(report))
            return report
        finally:
            _current.pop()
            if span is not None and token is not None:
                from opentelemetry import context

                context.detach(token)
                span.end()

    return build


def _report_attributes(report: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name in ("package", "modules", "reused", "up_to_date", "version"):
        value = getattr(report, name, None)
        if isinstance(value, str | int | bool):
            attributes[f"mcp_codegen.build.{name}"] = value
    failed = getattr(report, "failed_servers", None)
    if failed is not None:
        attributes["mcp_codegen.build.failed_servers"] = len(failed)
    return attributes
