"""A small OTLP/HTTP receiver for tests: decodes what an OpenTelemetry exporter sends.

It listens on a free loopback port in a thread of the test process, accepts
`POST /v1/traces` and `POST /v1/metrics` (protobuf, gzip or not), decodes them
with the `opentelemetry-proto` package, and keeps the spans and metric points.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

__all__ = ["Received", "Receiver"]


@dataclass
class Received:
    """A span as the receiver decoded it."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


class Receiver:
    """The receiver; `endpoint` is what `OTEL_EXPORTER_OTLP_ENDPOINT` takes."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        self.metrics: dict[str, list[tuple[dict[str, Any], float]]] = {}
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                with receiver._lock:
                    receiver.requests += 1
                    if self.path == "/v1/traces":
                        receiver._traces(body)
                        answer = trace_service_pb2.ExportTraceServiceResponse()
                    else:
                        receiver._metrics(body)
                        answer = metrics_service_pb2.ExportMetricsServiceResponse()
                data = answer.SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def _traces(self, body: bytes) -> None:
        request = trace_service_pb2.ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        Received(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            events=[(e.name, _attributes(e.attributes)) for e in span.events],
                            resource=resource,
                        )
                    )

    def _metrics(self, body: bytes) -> None:
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        request.ParseFromString(body)
        for resource_metrics in request.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    points = getattr(metric, kind).data_points
                    found = self.metrics.setdefault(metric.name, [])
                    for point in points:
                        value = (
                            point.count if kind == "histogram" else point.as_int or point.as_double
                        )
                        found.append((_attributes(point.attributes), value))

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
