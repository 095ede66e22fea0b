"""Which OpenTelemetry signals the environment asks for, read from the standard `OTEL_*` variables.

Nothing is exported unless a variable asks for it: an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT`, or the per-signal `..._TRACES_ENDPOINT` and
`..._METRICS_ENDPOINT`), or an exporter named in `OTEL_TRACES_EXPORTER` /
`OTEL_METRICS_EXPORTER` (`otlp`, `console`; `none` turns a signal off).
`OTEL_SDK_DISABLED=true` turns everything off. The exporter itself reads the
rest (headers, timeout, compression, certificates), and the SDK reads the
sampler, batch and resource variables, as everywhere.

Standard library only: this runs at every command's start, and the SDK is
imported only when a signal is wanted (see `otel`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SUPPORTED_EXPORTERS", "Wanted", "wanted"]

SUPPORTED_EXPORTERS = frozenset({"otlp", "console"})
"""Exporters this build can send with (OTLP over HTTP/protobuf, or text on stderr)."""
_PROTOCOL = "http/protobuf"


@dataclass(frozen=True)
class Wanted:
    """The exporters the environment asks for, per signal (empty: that signal is off)."""

    traces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    """What the environment asks that cannot be done here, one line each."""

    @property
    def any(self) -> bool:
        """Whether any signal is exported."""
        return bool(self.traces or self.metrics)


def _signal(environ: Mapping[str, str], signal: str, problems: list[str]) -> tuple[str, ...]:
    named = environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip().lower()
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    )
    if not named:
        return ("otlp",) if endpoint else ()
    exporters = []
    for name in (part.strip() for part in named.split(",")):
        if name == "none":
            return ()
        if name in SUPPORTED_EXPORTERS:
            exporters.append(name)
        elif name:
            problems.append(
                f"OTEL_{signal.upper()}_EXPORTER={name} is not supported (use otlp or console)"
            )
    return tuple(dict.fromkeys(exporters))


def wanted(environ: Mapping[str, str] | None = None) -> Wanted:
    """The signals and exporters `environ` (by default `os.environ`) asks for."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Wanted()
    problems: list[str] = []
    traces = _signal(environ, "traces", problems)
    metrics = _signal(environ, "metrics", problems)
    for variable in (
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ):
        protocol = environ.get(variable, "").strip().lower()
        if protocol and protocol != _PROTOCOL and (traces or metrics):
            problems.append(
                f"{variable}={protocol} is not supported; OTLP is sent as {_PROTOCOL} "
                "(point the endpoint at the collector's HTTP port, usually 4318)"
            )
    return Wanted(traces, metrics, tuple(problems))
