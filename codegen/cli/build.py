"""`mcp-codegen build`: introspect the servers of an mcp.json and write the package.

Errors about the user's input print as `error: ...` lines and exit 2 (usage,
config) or 1 (the build found problems); a traceback means a bug of ours.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..build import BuildReport, build_package
from ..diagnostics import BuildError, Diagnostics
from ..package import DEFAULT_OUT_ROOT
from ..progress import progress_for
from ..render import PackageOptions
from ..runtime.errors import ConfigError
from ..snapshot import Snapshot, SnapshotError
from ..staleness import fix_command, stale_files
from .errors import exit_code, fail, print_diagnostics
from .options import config_option, json_option, keep_going_option, server_timeout_option

__all__ = ["build_command"]


def _report_json(report: BuildReport | None, diagnostics: Diagnostics, ok: bool) -> str:
    document: dict[str, Any] = {
        "ok": ok,
        "errors": [item.to_json() for item in diagnostics.errors],
        "warnings": [item.to_json() for item in diagnostics.warnings],
    }
    if report is not None:
        document |= {
            "out": str(report.out),
            "package": report.package,
            "servers": len(report.snapshot.servers),
            "tools": report.snapshot.tool_count(),
            "modules": report.modules,
            "reused": report.reused,
            "up_to_date": report.up_to_date,
            "version": report.version,
            "bump": report.bump,
            "failed_servers": report.failed_servers,
            "snapshot_sha256": report.snapshot.digest(),
            "seconds": {key: round(value, 3) for key, value in report.seconds.items()},
        }
    return json.dumps(document, indent=2)


def _valid_package_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.isidentifier() or not value.isascii() or value.startswith("_"):
        raise click.BadParameter(f"{value!r} is not a Python package name (letters, digits, _)")
    return value


@click.command("build")
@config_option("The mcpServers config to introspect.", dir_okay=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory [default: generated/<name>].",
)
@click.option(
    "--name",
    default="mcp_tools",
    show_default=True,
    callback=_valid_package_name,
    help="Import name of the generated package.",
)
@click.option(
    "--dist-name", default=None, help="Distribution name [default: the name with dashes]."
)
@click.option(
    "--version",
    "base_version",
    default=None,
    help="Package version [default: the previous build's, bumped major/minor/patch by the "
    "class of change since its snapshot; 0.1.0 for a first build].",
)
@click.option(
    "--from-snapshot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Build from this snapshot without contacting any server.",
)
@keep_going_option("Build what worked; report the servers and tools that failed.")
@click.option("--fail-on-warning", is_flag=True, help="Treat warnings as errors (for CI).")
@server_timeout_option()
@click.option(
    "--check",
    is_flag=True,
    help="Build nothing: exit 1 with the diff when the package in --out is not what its "
    "snapshot renders.",
)
@json_option()
def build_command(
    config_path: Path,
    out: Path | None,
    name: str,
    dist_name: str | None,
    base_version: str,
    from_snapshot: Path | None,
    keep_going: bool,
    fail_on_warning: bool,
    timeout: float,
    check: bool,
    as_json: bool,
) -> None:
    """Introspect the servers of an mcp.json and generate a typed package."""
    options = PackageOptions(name=name, dist_name=dist_name)
    if check:
        _check_stale(out or DEFAULT_OUT_ROOT / name, options, as_json)
        return
    try:
        snapshot = Snapshot.read(from_snapshot) if from_snapshot else None
        report = build_package(
            options=options,
            out=out,
            config_path=None if snapshot else config_path,
            snapshot=snapshot,
            version=base_version,
            keep_going=keep_going,
            fail_on_warning=fail_on_warning,
            timeout=timeout,
            progress=progress_for(quiet=as_json),
        )
    except (ConfigError, SnapshotError) as exc:
        document = {"ok": False, "errors": [{"level": "error", "message": str(exc)}]}
        fail(
            "build",
            "config" if isinstance(exc, ConfigError) else "snapshot",
            str(exc),
            document=json.dumps(document) if as_json else None,
        )
    except BuildError as exc:
        if not as_json:
            print_diagnostics(exc.diagnostics)
        fail(
            "build",
            "build",
            str(exc),
            document=_report_json(None, exc.diagnostics, ok=False) if as_json else None,
        )
    if as_json:
        click.echo(_report_json(report, report.diagnostics, ok=True))
        return
    print_diagnostics(report.diagnostics)
    failed = (
        f"; left out {_count(len(report.failed_servers), 'failed server')}"
        if report.failed_servers
        else ""
    )
    if report.up_to_date:
        click.echo(f"{report.out} is up to date (version {report.version})")
        return
    bumped = f", {report.bump} change" if report.bump else ""
    click.echo(
        f"built {report.out} {report.version}{bumped}: {_count(report.modules, 'tool')} of "
        f"{_count(len(report.snapshot.servers), 'server')} ({report.reused} unchanged) "
        f"in {report.seconds.get('total', 0):.1f}s{failed}"
    )


def _check_stale(out: Path, options: PackageOptions, as_json: bool) -> None:
    try:
        problems = stale_files(out, options)
    except SnapshotError as exc:
        fail("build", "snapshot", str(exc))
    if as_json:
        click.echo(
            json.dumps(
                {"ok": not problems, "stale": problems, "fix": fix_command(out, options)}, indent=2
            )
        )
        sys.exit(exit_code("build", "stale") if problems else 0)
    if problems:
        click.echo("\n".join(problems))
        fail(
            "build",
            "stale",
            f"{out} is not what its snapshot renders; run: {fix_command(out, options)}",
        )
    click.echo(f"{out} is what its snapshot renders")
    sys.exit(0)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
