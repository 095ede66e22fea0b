"""The OpenTelemetry side: providers from the environment, and the instruments mcp-codegen records.

Imported only when telemetry is on (it imports the SDK, ~60 ms; the OTLP exporter
another ~30 ms). Spans and instruments follow the semantic conventions where they
exist: a tool call is a GenAI `execute_tool` span (`gen_ai.operation.name`,
`gen_ai.tool.name`, `gen_ai.tool.type`, `gen_ai.tool.call.id`, `error.type`) with
the mcp SDK's own `MCP send tools/call` client span beneath it, which carries the
trace context on to the server in `_meta` (SEP-414); its duration is
`gen_ai.execute_tool.duration`, and `serve`'s requests are
`mcp.server.operation.duration`. What the conventions do not name is under
`mcp_codegen.*`.

With providers from the environment they are also made the global ones, so the
mcp SDK's spans (`tools/call execute_code` on the server side, `MCP send ...` on
the client side) land in the same traces.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from .config import Wanted

__all__ = ["Instruments", "OtelSinks", "from_environment"]

_SCOPE = "mcp-codegen"
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BYTES = tuple(float(1 << shift) for shift in range(20, 34, 1))  # 1 MiB .. 8 GiB


class Instruments:
    """The counters and histograms (all created once, per meter)."""

    def __init__(self, meter: metrics.Meter):
        self.executions = meter.create_counter(
            "mcp_codegen.executions", "{execution}", "Executions of agent code, by outcome"
        )
        self.execution_duration = meter.create_histogram(
            "mcp_codegen.execution.duration",
            "s",
            "Wall-clock duration of an execution",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.execution_cpu = meter.create_histogram(
            "mcp_codegen.execution.cpu_time",
            "s",
            "CPU time of an execution, measured inside the sandbox",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.execution_memory = meter.create_histogram(
            "mcp_codegen.execution.peak_memory",
            "By",
            "Peak resident memory of an execution's process, measured inside the sandbox",
            explicit_bucket_boundaries_advisory=_BYTES,
        )
        self.tool_calls = meter.create_counter(
            "mcp_codegen.tool_calls", "{call}", "Tool calls that crossed the bridge, by outcome"
        )
        self.tool_duration = meter.create_histogram(
            "gen_ai.execute_tool.duration",
            "s",
            "Duration of a tool call, as the host's bridge saw it",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.errors = meter.create_counter(
            "mcp_codegen.errors", "{error}", "Failed executions and tool calls, by error.type"
        )
        self.limit_hits = meter.create_counter(
            "mcp_codegen.limit_hits", "{hit}", "Executions a limit ended, by limit"
        )
        self.rejections = meter.create_counter(
            "mcp_codegen.bridge.rejections",
            "{request}",
            "Bridge requests refused before reaching a server, by reason",
        )
        self.security = meter.create_counter(
            "mcp_codegen.security_events", "{event}", "Security events, by type"
        )
        self.operation_duration = meter.create_histogram(
            "mcp_codegen.operation.duration",
            "s",
            "Duration of serve's searches and module reads, and of each build stage",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.server_duration = meter.create_histogram(
            "mcp.server.operation.duration",
            "s",
            "serve's tools/call requests, as the server saw them",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.sessions = meter.create_counter(
            "mcp_codegen.sessions", "{session}", "serve sessions opened"
        )


class OtelSinks:
    """A tracer and the instruments, from given providers (either may be None)."""

    def __init__(
        self, tracer_provider: Any | None, meter_provider: Any | None, *, owned: bool = False
    ):
        from .. import __version__

        self.tracer: trace.Tracer | None = (
            tracer_provider.get_tracer(_SCOPE, __version__) if tracer_provider else None
        )
        self.instruments: Instruments | None = (
            Instruments(meter_provider.get_meter(_SCOPE, __version__)) if meter_provider else None
        )
        # Only providers made here are shut down here; the caller's are the caller's.
        self._providers = [p for p in (tracer_provider, meter_provider) if p is not None and owned]

    def start_span(
        self,
        name: str,
        parent: otel_context.Context | None = None,
        attributes: dict[str, Any] | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> trace.Span | None:
        """A started span (None without traces), child of `parent` or of the current span."""
        if self.tracer is None:
            return None
        return self.tracer.start_span(name, parent, kind, attributes)

    def shutdown(self) -> None:
        """Flush and stop the providers this process made."""
        for provider in self._providers:
            shutdown = getattr(provider, "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception as exc:  # an exporter that cannot reach its collector
                    print(f"warning: telemetry: {exc}", file=sys.stderr)
        self._providers = []


def error_status(span: trace.Span, error_type: str) -> None:
    """Mark `span` as failed with `error.type`."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR))


_EXPORT_SECONDS = 3.0
"""How long an OTLP export may retry unless `OTEL_EXPORTER_OTLP_TIMEOUT` says otherwise: the
SDK's 10 s per signal kept `exec` waiting 20 s at its exit when the collector was down."""


def _timeout(signal: str) -> float | None:
    """The export timeout to pass (None: the exporter reads the variables)."""
    import os

    named = ("OTEL_EXPORTER_OTLP_TIMEOUT", f"OTEL_EXPORTER_OTLP_{signal.upper()}_TIMEOUT")
    return None if any(os.environ.get(name) for name in named) else _EXPORT_SECONDS


def _exporters(names: Sequence[str], signal: str) -> list[Any]:
    found: list[Any] = []
    for name in names:
        if name == "console":
            if signal == "traces":
                from opentelemetry.sdk.trace.export import ConsoleSpanExporter

                found.append(ConsoleSpanExporter(out=sys.stderr))
            else:
                from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

                found.append(ConsoleMetricExporter(out=sys.stderr))
        elif signal == "traces":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append(OTLPSpanExporter(timeout=_timeout(signal)))
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            found.append(OTLPMetricExporter(timeout=_timeout(signal)))
    return found


def _resource() -> Any:
    import os

    from opentelemetry.sdk.resources import Resource

    from .. import __version__

    attributes = {"service.version": __version__}
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not named:
        attributes["service.name"] = "mcp-codegen"
    return Resource.create(attributes)


def from_environment(wanted: Wanted) -> OtelSinks:
    """Providers for what `wanted` asks, made global and shut down (flushed) at exit."""
    resource = _resource()
    tracer_provider = meter_provider = None
    if wanted.traces:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=resource)
        for exporter in _exporters(wanted.traces, "traces"):
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
    if wanted.metrics:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers = [
            PeriodicExportingMetricReader(exporter)
            for exporter in _exporters(wanted.metrics, "metrics")
        ]
        meter_provider = MeterProvider(metric_readers=readers, resource=resource)
        metrics.set_meter_provider(meter_provider)
    sinks = OtelSinks(tracer_provider, meter_provider, owned=True)
    atexit.register(sinks.shutdown)
    return sinks
