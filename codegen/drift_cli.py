"""`mcp-codegen check` and `mcp-codegen diff`: drift between snapshots, for people and CI.

`check` introspects the live servers and compares them with the committed
snapshot; `diff` compares two snapshot files without contacting any server.
Both print one line per change (breaking first) and a summary, or one JSON
document with `--json`, and exit with a code that says how bad the drift is.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .build import introspect_snapshot
from .config import ConfigError
from .diagnostics import Diagnostics
from .drift import DriftReport, Severity, diff_snapshots
from .introspect import DEFAULT_SERVER_TIMEOUT
from .package import PackageNotFound, locate_package
from .snapshot import SNAPSHOT_FILENAME, Snapshot, SnapshotError

__all__ = [
    "EXIT_BREAKING",
    "EXIT_COMPATIBLE",
    "EXIT_ERROR",
    "EXIT_NO_DRIFT",
    "EXIT_TEXT",
    "check_command",
    "diff_command",
    "exit_code",
]

EXIT_NO_DRIFT = 0
EXIT_ERROR = 1
EXIT_TEXT = 10
EXIT_COMPATIBLE = 11
EXIT_BREAKING = 12
_DRIFT_EXITS: dict[Severity, int] = {
    "text": EXIT_TEXT,
    "compatible": EXIT_COMPATIBLE,
    "breaking": EXIT_BREAKING,
}

_EXIT_HELP = """\b
Exit codes:
   0  no drift
   1  error: a server failed, bad config, unreadable snapshot (not drift)
   2  usage error
  10  drift in text only: descriptions, titles, annotations (patch)
  11  compatible drift: tools, optional parameters, enum values added (minor)
  12  breaking drift: something callers rely on removed or narrowed (major)
"""


def exit_code(report: DriftReport | None, errors: int = 0) -> int:
    """The exit code for a drift report: errors win, then the worst change decides."""
    if errors or report is None:
        return EXIT_ERROR
    worst = report.worst()
    return _DRIFT_EXITS[worst] if worst else EXIT_NO_DRIFT


@dataclass
class _Outcome:
    """What one check or diff found, ready to print."""

    command: str
    old_label: str
    new_label: str
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    report: DriftReport | None = None
    old: Snapshot | None = None
    new: Snapshot | None = None
    failed_servers: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    failure: str | None = None

    def code(self) -> int:
        return exit_code(self.report, len(self.diagnostics.errors) + (self.failure is not None))

    def to_json(self) -> dict[str, Any]:
        report = self.report or DriftReport()
        errors = [item.to_json() for item in self.diagnostics.errors]
        if self.failure:
            errors.append({"level": "error", "message": self.failure})
        return {
            "command": self.command,
            "ok": not errors,
            "exit_code": self.code(),
            "compared": self.report is not None,
            **report.to_json(),
            "errors": errors,
            "warnings": [item.to_json() for item in self.diagnostics.warnings],
            "failed_servers": self.failed_servers,
            "old": _describe(self.old_label, self.old),
            "new": _describe(self.new_label, self.new),
            "seconds": {key: round(value, 3) for key, value in self.seconds.items()},
        }


def _describe(label: str, snapshot: Snapshot | None) -> dict[str, Any]:
    if snapshot is None:
        return {"source": label}
    return {
        "source": label,
        "servers": len(snapshot.servers),
        "tools": snapshot.tool_count(),
        "snapshot_sha256": snapshot.digest(),
    }


_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_SERVER_TIMEOUT,
    show_default=True,
    help="Seconds each server may take to start and list its tools.",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document instead of text."
)


@click.command("check", epilog=_EXIT_HELP)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("mcp.json"),
    show_default=True,
    help="The mcpServers config whose servers are checked.",
)
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path),
    default=None,
    help=f"The committed snapshot, or a built package directory [default: generated/<package>/{SNAPSHOT_FILENAME}].",
)
@click.option(
    "--keep-going",
    is_flag=True,
    help="When servers fail, still compare the ones that answered (the exit code stays 1).",
)
@_timeout_option
@_json_option
def check_command(
    config_path: Path, snapshot_path: Path | None, keep_going: bool, timeout: float, as_json: bool
) -> None:
    """Compare the live servers of an mcp.json with the committed snapshot."""
    started = time.perf_counter()
    outcome = _Outcome("check", str(snapshot_path or ""), str(config_path))
    try:
        path = (
            _snapshot_file(snapshot_path) if snapshot_path else locate_package(None).snapshot_path
        )
        outcome.old_label = str(path)
        outcome.old = Snapshot.read(path)
        mark = time.perf_counter()
        outcome.new, outcome.failed_servers = introspect_snapshot(
            config_path, outcome.diagnostics, timeout=timeout
        )
        outcome.seconds["introspect"] = time.perf_counter() - mark
    except (PackageNotFound, SnapshotError, ConfigError) as exc:
        outcome.failure = str(exc)
    if (
        outcome.old is not None
        and outcome.new is not None
        and (keep_going or not outcome.failed_servers)
    ):
        failed = set(outcome.failed_servers)
        # A server that did not answer is an error, not a removal.
        old = Snapshot(
            servers=tuple(server for server in outcome.old.servers if server.name not in failed)
        )
        mark = time.perf_counter()
        outcome.report = diff_snapshots(old, outcome.new)
        outcome.seconds["diff"] = time.perf_counter() - mark
    elif outcome.failed_servers:
        total = len(outcome.failed_servers) + len(outcome.new.servers if outcome.new else ())
        outcome.failure = (
            f"{len(outcome.failed_servers)} of {total} servers failed "
            f"({', '.join(outcome.failed_servers)}); nothing was compared (--keep-going compares the others)"
        )
    outcome.seconds["total"] = time.perf_counter() - started
    _finish(outcome, as_json)


@click.command("diff", epilog=_EXIT_HELP)
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@_json_option
def diff_command(old: Path, new: Path, as_json: bool) -> None:
    """Compare two snapshots (files or built package directories) offline."""
    started = time.perf_counter()
    outcome = _Outcome("diff", str(old), str(new))
    try:
        outcome.old = Snapshot.read(_snapshot_file(old))
        outcome.new = Snapshot.read(_snapshot_file(new))
    except SnapshotError as exc:
        outcome.failure = str(exc)
    else:
        outcome.report = diff_snapshots(outcome.old, outcome.new)
    outcome.seconds["total"] = time.perf_counter() - started
    _finish(outcome, as_json)


def _snapshot_file(path: Path) -> Path:
    return path / SNAPSHOT_FILENAME if path.is_dir() else path


_COLORS: dict[Severity, str] = {"breaking": "red", "compatible": "yellow", "text": "cyan"}


def _finish(outcome: _Outcome, as_json: bool) -> None:
    code = outcome.code()
    if as_json:
        click.echo(json.dumps(outcome.to_json(), indent=2, ensure_ascii=False))
        sys.exit(code)
    tty_err, tty_out = sys.stderr.isatty(), sys.stdout.isatty()
    for item in outcome.diagnostics:
        click.secho(
            str(item),
            err=True,
            fg=("red" if item.level == "error" else "yellow") if tty_err else None,
        )
    report = outcome.report
    if report is not None:
        for change in report.changes:
            click.secho(str(change), fg=_COLORS[change.severity] if tty_out else None)
    if outcome.failure:
        click.echo(f"error: {outcome.failure}", err=True)
    if report is None:
        sys.exit(code)
    if outcome.failed_servers:
        failed = ", ".join(outcome.failed_servers)
        click.echo(f"error: not compared, because they failed: {failed}", err=True)
    click.echo(_summary(outcome, report, code))
    sys.exit(code)


def _summary(outcome: _Outcome, report: DriftReport, code: int) -> str:
    where = f"{outcome.old_label} and " + (
        f"the live servers of {outcome.new_label}"
        if outcome.command == "check"
        else outcome.new_label
    )
    worst = report.worst()
    if worst is None:
        tools = outcome.new.tool_count() if outcome.new else 0
        return f"no drift between {where} ({tools} tool{'' if tools == 1 else 's'})"
    counts = ", ".join(f"{number} {severity}" for severity, number in report.counts().items())
    advice = "; run `mcp-codegen build` to update the package" if outcome.command == "check" else ""
    return f"{worst} drift between {where}: {counts} ({report.bump()} version bump; exit {code}){advice}"
