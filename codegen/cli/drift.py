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

from ..build import introspect_snapshot
from ..config import ConfigError
from ..diagnostics import Diagnostics
from ..drift import DriftReport, Severity, diff_snapshots
from ..package import PackageNotFound, default_root, locate_package
from ..snapshot import SNAPSHOT_FILENAME, Snapshot, SnapshotError
from .errors import (
    Command,
    ExitReason,
    exit_code,
    exit_codes_help,
    print_diagnostics,
    print_error,
    print_warning,
)
from .options import (
    config_option,
    jobs_option,
    json_option,
    keep_going_option,
    package_option,
    server_timeout_option,
    verbose_option,
)
from .resolve import load_cli_config, rebuild_command

__all__ = [
    "EXIT_BREAKING",
    "EXIT_COMPATIBLE",
    "EXIT_ERROR",
    "EXIT_NO_DRIFT",
    "EXIT_TEXT",
    "check_command",
    "diff_command",
    "drift_exit_code",
]

_DRIFT_REASONS: dict[Severity, ExitReason] = {
    "text": "drift-text",
    "compatible": "drift-compatible",
    "breaking": "drift-breaking",
}
EXIT_NO_DRIFT = 0
EXIT_ERROR = exit_code("check", "servers")
EXIT_TEXT = exit_code("check", "drift-text")
EXIT_COMPATIBLE = exit_code("check", "drift-compatible")
EXIT_BREAKING = exit_code("check", "drift-breaking")


def drift_exit_code(command: str, report: DriftReport | None, failure: ExitReason | None) -> int:
    """The exit code of `check` or `diff`: a failure wins, then the worst change decides."""
    if failure is not None or report is None:
        return exit_code(command, failure or "snapshot")
    worst = report.worst()
    return exit_code(command, _DRIFT_REASONS[worst]) if worst else EXIT_NO_DRIFT


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
    fix: str = "mcp-codegen build"
    """The command that updates the package (check)."""
    reason: ExitReason | None = None
    """Why the command failed, when it did (the failure's, else `servers` for diagnostics)."""

    def fail(self, reason: ExitReason, message: str) -> None:
        self.reason, self.failure = reason, message

    def code(self) -> int:
        reason = self.reason or ("servers" if self.diagnostics.errors else None)
        return drift_exit_code(self.command, self.report, reason)

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


@click.command("check", cls=Command, epilog=exit_codes_help("check"))
@config_option("The mcpServers config whose servers are checked.", dir_okay=True)
@package_option("The built package whose snapshot the live servers are compared with.")
@click.option(
    "--snapshot",
    "snapshot_path",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Compare with this snapshot file instead of the package's {SNAPSHOT_FILENAME}.",
)
@keep_going_option(
    "When servers fail, still compare the ones that answered (the exit code stays 1)."
)
@server_timeout_option()
@jobs_option()
@json_option()
@verbose_option()
def check_command(
    config_path: Path,
    package: Path | None,
    snapshot_path: Path | None,
    keep_going: bool,
    timeout: float,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Compare the live servers of an mcp.json with the committed snapshot."""
    started = time.perf_counter()
    outcome = _Outcome("check", str(snapshot_path or package or ""), str(config_path))
    if snapshot_path is not None and snapshot_path.is_dir():
        print_warning("--snapshot DIR is deprecated for a package; use --package DIR")
        package, snapshot_path = package or snapshot_path, None
    try:
        load_cli_config(config_path)  # a bad config is named before anything else
        if snapshot_path is None:
            found = locate_package(package, root=default_root(config_path))
            path = found.snapshot_path
            outcome.fix = rebuild_command(config_path, found)
        else:
            path = snapshot_path
        outcome.old_label = str(path)
        outcome.old = Snapshot.read(path)
        mark = time.perf_counter()
        outcome.new, outcome.failed_servers = introspect_snapshot(
            config_path, outcome.diagnostics, timeout=timeout, jobs=jobs
        )
        outcome.seconds["introspect"] = time.perf_counter() - mark
    except PackageNotFound as exc:
        outcome.fail("package", str(exc))
    except SnapshotError as exc:
        outcome.fail("snapshot", str(exc))
    except ConfigError as exc:
        outcome.fail("config", str(exc))
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
        outcome.fail(
            "servers",
            f"{len(outcome.failed_servers)} of {total} servers failed "
            f"({', '.join(outcome.failed_servers)}); nothing was compared (--keep-going compares the others)",
        )
    outcome.seconds["total"] = time.perf_counter() - started
    _finish(outcome, as_json)


@click.command("diff", cls=Command, epilog=exit_codes_help("diff"))
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@json_option()
@verbose_option()
def diff_command(old: Path, new: Path, as_json: bool) -> None:
    """Compare two snapshots offline: each a snapshot file or a built package."""
    started = time.perf_counter()
    outcome = _Outcome("diff", str(old), str(new))
    try:
        outcome.old = Snapshot.read(_snapshot_file(old))
        outcome.new = Snapshot.read(_snapshot_file(new))
    except (SnapshotError, PackageNotFound) as exc:
        outcome.fail("snapshot", str(exc))
    else:
        outcome.report = diff_snapshots(outcome.old, outcome.new)
    outcome.seconds["total"] = time.perf_counter() - started
    _finish(outcome, as_json)


def _snapshot_file(path: Path) -> Path:
    """A snapshot file as given, or the snapshot of the package a directory is (the one locator)."""
    return locate_package(path).snapshot_path if path.is_dir() else path


_COLORS: dict[Severity, str] = {"breaking": "red", "compatible": "yellow", "text": "cyan"}


def _finish(outcome: _Outcome, as_json: bool) -> None:
    code = outcome.code()
    if as_json:
        click.echo(json.dumps(outcome.to_json(), indent=2, ensure_ascii=False))
        sys.exit(code)
    tty_out = sys.stdout.isatty()
    print_diagnostics(outcome.diagnostics)
    report = outcome.report
    if report is not None:
        for change in report.changes:
            click.secho(str(change), fg=_COLORS[change.severity] if tty_out else None)
    if outcome.failure:
        print_error(outcome.failure)
    if report is None:
        sys.exit(code)
    if outcome.failed_servers:
        failed = ", ".join(outcome.failed_servers)
        print_error(f"not compared, because they failed: {failed}")
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
    advice = f"; run `{outcome.fix}` to update the package" if outcome.command == "check" else ""
    return f"{worst} drift between {where}: {counts} ({report.bump()} version bump; exit {code}){advice}"
