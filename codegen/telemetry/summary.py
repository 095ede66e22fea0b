"""Reading an audit log back: what `mcp-codegen audit FILE` prints.

Executions (by outcome), p50/p95 of their duration, CPU time and peak memory,
tool calls (by outcome) and the most called tools, approval decisions (by who
made them), errors by type, and security events by type. The rotated files (FILE.5 ... FILE.1) are read too, oldest
first. A line that is not a record of ours is counted, not fatal.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Summary", "audit_files", "percentile", "summarize"]

_MAX_LINE = 1 << 20


def audit_files(path: Path) -> list[Path]:
    """`path` and its rotated files that exist, oldest first."""
    rotated = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    return [*rotated, path] if path.exists() else rotated


def percentile(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass
class _Tool:
    calls: int = 0
    errors: int = 0
    durations: list[float] = field(default_factory=list)


@dataclass
class Summary:
    """What an audit log says."""

    files: list[Path] = field(default_factory=list)
    lines: int = 0
    unreadable: int = 0
    first: str | None = None
    last: str | None = None
    executions: Counter[str] = field(default_factory=Counter)
    sessions: set[str] = field(default_factory=set)
    durations: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    memory: list[float] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    tools: defaultdict[str, _Tool] = field(default_factory=lambda: defaultdict(_Tool))
    errors: Counter[str] = field(default_factory=Counter)
    approvals: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Decision ("approved", "denied") -> who made it ("person", "approve-all"...) -> calls."""
    security: Counter[str] = field(default_factory=Counter)
    security_detail: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )

    def add(self, record: dict[str, Any]) -> None:
        """Count one record."""
        stamp = record.get("time")
        if isinstance(stamp, str):
            self.first = stamp if self.first is None else min(self.first, stamp)
            self.last = stamp if self.last is None else max(self.last, stamp)
        session = record.get("session")
        event = record.get("event")
        if event == "execution":
            self.executions[str(record.get("outcome"))] += 1
            if isinstance(session, str):
                self.sessions.add(session)
            for values, key in (
                (self.durations, "duration_ms"),
                (self.cpu, "cpu_seconds"),
                (self.memory, "peak_memory_bytes"),
            ):
                value = record.get(key)
                if isinstance(value, int | float):
                    values.append(float(value))
            if record.get("error_type"):
                self.errors[str(record["error_type"])] += 1
        elif event == "tool_call":
            self.calls[str(record.get("outcome"))] += 1
            if record.get("server") and record.get("tool"):
                tool = self.tools[f"{record['server']}.{record['tool']}"]
                tool.calls += 1
                tool.errors += record.get("outcome") != "ok"
                if isinstance(record.get("duration_ms"), int | float):
                    tool.durations.append(float(record["duration_ms"]))
            if record.get("error_type"):
                self.errors[str(record["error_type"])] += 1
            if record.get("approval"):
                self.approvals[str(record["approval"])][str(record.get("approval_by"))] += 1
        elif event == "security":
            kind = str(record.get("type"))
            self.security[kind] += 1
            detail = record.get("reason") or record.get("limit") or record.get("kind")
            if detail:
                self.security_detail[kind][str(detail)] += 1
        else:
            self.unreadable += 1

    def as_json(self, top: int = 10) -> dict[str, Any]:
        """The summary as one JSON-able document."""

        def quantiles(values: list[float]) -> dict[str, float | None]:
            return {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}

        tools = sorted(self.tools.items(), key=lambda item: (-item[1].calls, item[0]))[:top]
        return {
            "files": [str(path) for path in self.files],
            "lines": self.lines,
            "unreadable_lines": self.unreadable,
            "from": self.first,
            "to": self.last,
            "executions": sum(self.executions.values()),
            "executions_by_outcome": dict(self.executions.most_common()),
            "sessions": len(self.sessions),
            "duration_ms": quantiles(self.durations),
            "cpu_seconds": quantiles(self.cpu),
            "peak_memory_bytes": quantiles(self.memory),
            "tool_calls": sum(self.calls.values()),
            "tool_calls_by_outcome": dict(self.calls.most_common()),
            "top_tools": [
                {"tool": name, "calls": tool.calls, "errors": tool.errors}
                | {f"duration_ms_{k}": v for k, v in quantiles(tool.durations).items()}
                for name, tool in tools
            ],
            "approvals": {
                decision: {"count": sum(by.values()), "by": dict(by.most_common())}
                for decision, by in sorted(self.approvals.items())
            },
            "errors_by_type": dict(self.errors.most_common()),
            "security_events_by_type": {
                kind: {"count": count, "by_reason": dict(self.security_detail[kind].most_common())}
                for kind, count in self.security.most_common()
            },
        }


def _records(files: Iterable[Path], summary: Summary) -> Iterator[dict[str, Any]]:
    for path in files:
        with path.open("rb") as handle:
            for raw in handle:
                summary.lines += 1
                if len(raw) > _MAX_LINE:
                    summary.unreadable += 1
                    continue
                try:
                    record = json.loads(raw)
                except ValueError:
                    summary.unreadable += 1
                    continue
                if isinstance(record, dict):
                    yield record
                else:
                    summary.unreadable += 1


def summarize(path: Path, *, since: str | None = None, until: str | None = None) -> Summary:
    """Summarize the audit log `path` (and its rotated files), records from `since` up to
    `until` (ISO 8601 UTC prefixes, compared as text: `2026-11-30`, `2026-11-30T14`).

    Raises:
        OSError: a file cannot be read.
    """
    summary = Summary(files=audit_files(path))
    for record in _records(summary.files, summary):
        stamp = str(record.get("time", ""))
        if since is not None and stamp < since:
            continue
        if until is not None and stamp[: len(until)] > until:
            continue
        summary.add(record)
    return summary
