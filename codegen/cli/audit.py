"""`mcp-codegen audit FILE`: summarize an audit log; and `--audit FILE` of exec, run and serve.

mcp-codegen audit audit.jsonl                   # everything in it (and FILE.1 ... FILE.5)
mcp-codegen audit audit.jsonl --since 2026-11-30 --until 2026-11-30T18
mcp-codegen audit audit.jsonl --json            # one JSON document
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .errors import Command, exit_codes_help, fail
from .options import json_option

__all__ = ["audit_command", "start_audit"]


def start_audit(command: str, path: Path | None, max_mb: int) -> None:
    """Open the audit log of `--audit` (nothing without one); a file that cannot be
    appended to ends `command` with the `output` code."""
    if path is None:
        return
    from ..telemetry import AuditError, configure

    try:
        configure(audit=path, audit_max_bytes=max_mb * 1024 * 1024)
    except AuditError as exc:
        fail(command, "output", f"{exc}; name a file mcp-codegen may create and append to")


def _number(value: float | None, unit: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    value = value / scale
    return f"{value:,.1f} {unit}" if value >= 10 else f"{value:.3g} {unit}"


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items()) or "none"


def _text(summary: dict[str, Any]) -> str:
    files = summary["files"]
    rotated = f" (+{len(files) - 1} rotated)" if len(files) > 1 else ""
    lines = [
        f"audit log: {files[-1] if files else '-'}{rotated}, {summary['lines']} lines"
        + (f", {summary['unreadable_lines']} unreadable" if summary["unreadable_lines"] else ""),
        f"period: {summary['from'] or '-'} .. {summary['to'] or '-'}",
        f"executions: {summary['executions']} ({_counts(summary['executions_by_outcome'])}) "
        f"in {summary['sessions']} sessions",
    ]
    duration, cpu, memory = (
        summary["duration_ms"],
        summary["cpu_seconds"],
        summary["peak_memory_bytes"],
    )
    lines.append(
        f"  duration: p50 {_number(duration['p50'], 'ms')}, p95 {_number(duration['p95'], 'ms')}"
    )
    lines.append(
        f"  cpu: p50 {_number(cpu['p50'], 's')}, p95 {_number(cpu['p95'], 's')}; peak memory: "
        f"p50 {_number(memory['p50'], 'MiB', 1 << 20)}, p95 {_number(memory['p95'], 'MiB', 1 << 20)}"
    )
    lines.append(
        f"tool calls: {summary['tool_calls']} ({_counts(summary['tool_calls_by_outcome'])})"
    )
    if summary["top_tools"]:
        lines.append("top tools:")
        width = max(len(tool["tool"]) for tool in summary["top_tools"])
        for tool in summary["top_tools"]:
            lines.append(
                f"  {tool['tool']:<{width}}  {tool['calls']:>6} calls  "
                f"p50 {_number(tool['duration_ms_p50'], 'ms'):>9}  "
                f"p95 {_number(tool['duration_ms_p95'], 'ms'):>9}  {tool['errors']} errors"
            )
    approvals = summary["approvals"]
    lines.append(
        "approvals: "
        + (
            ", ".join(
                f"{decision} {count['count']} ({_counts(count['by'])})"
                for decision, count in approvals.items()
            )
            or "none"
        )
    )
    lines.append("errors by type:" + ("" if summary["errors_by_type"] else " none"))
    lines += [f"  {kind}: {count}" for kind, count in summary["errors_by_type"].items()]
    events = summary["security_events_by_type"]
    lines.append("security events by type:" + ("" if events else " none"))
    for kind, event in events.items():
        detail = f" ({_counts(event['by_reason'])})" if event["by_reason"] else ""
        lines.append(f"  {kind}: {event['count']}{detail}")
    return "\n".join(lines)


@click.command("audit", cls=Command, epilog=exit_codes_help("audit"))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", default=None, help="Only records from this UTC time (2026-11-30T14).")
@click.option("--until", default=None, help="Only records up to this UTC time (a prefix too).")
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(min=1), help="Tools listed."
)
@json_option()
def audit_command(
    file: Path, since: str | None, until: str | None, top: int, as_json: bool
) -> None:
    """Summarize the audit log FILE that serve/exec/run --audit wrote: executions, p50/p95
    duration, top tools, errors and security events by type."""
    import json

    from ..telemetry.summary import audit_files, summarize

    if not audit_files(file):
        fail("audit", "input", f"{file}: no such file (and no rotated {file.name}.N)")
    try:
        summary = summarize(file, since=since, until=until).as_json(top)
    except OSError as exc:
        fail("audit", "input", f"{file}: cannot read ({exc.strerror or exc})")
    click.echo(json.dumps(summary, indent=2) if as_json else _text(summary))
