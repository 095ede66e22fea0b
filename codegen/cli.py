"""The `mcp-codegen` command line.

Errors about the user's input print as `error: ...` lines and exit 2 (usage,
config) or 1 (the build found problems); a traceback means a bug of ours.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .build import BuildReport, build_package
from .diagnostics import BuildError, Diagnostics
from .drift_cli import check_command, diff_command
from .introspect import DEFAULT_SERVER_TIMEOUT
from .package import DEFAULT_OUT_ROOT
from .progress import progress_for
from .render import PackageOptions
from .runtime.errors import ConfigError
from .sandbox.commands import exec_command, run_command
from .search_cli import search_command
from .serve import serve_command
from .skills_cli import skills_command
from .snapshot import Snapshot, SnapshotError
from .staleness import fix_command, stale_files

__all__ = ["main"]


def _print_diagnostics(diagnostics: Diagnostics) -> None:
    for item in diagnostics:
        color = "red" if item.level == "error" else "yellow"
        click.secho(str(item), err=True, fg=color if sys.stderr.isatty() else None)


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
            "left_out": report.left_out,
            "snapshot_sha256": report.snapshot.digest(),
            "seconds": {key: round(value, 3) for key, value in report.seconds.items()},
        }
    return json.dumps(document, indent=2)


def _valid_package_name(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.isidentifier() or not value.isascii() or value.startswith("_"):
        raise click.BadParameter(f"{value!r} is not a Python package name (letters, digits, _)")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcp-codegen")
def main() -> None:
    """Compile MCP servers into a typed Python package, and run code against it."""


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("mcp.json"),
    show_default=True,
    help="The mcpServers config to introspect.",
)
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
@click.option(
    "--keep-going",
    is_flag=True,
    help="Build what worked; report the servers and tools that failed.",
)
@click.option("--fail-on-warning", is_flag=True, help="Treat warnings as errors (for CI).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_SERVER_TIMEOUT,
    show_default=True,
    help="Seconds each server may take to start and list its tools.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Servers started at once [default: 4 per CPU].",
)
@click.option(
    "--check",
    is_flag=True,
    help="Build nothing: exit 1 with the diff when the package in --out is not what its "
    "snapshot renders.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
def build(
    config_path: Path,
    out: Path | None,
    name: str,
    dist_name: str | None,
    base_version: str,
    from_snapshot: Path | None,
    keep_going: bool,
    fail_on_warning: bool,
    timeout: float,
    jobs: int | None,
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
            jobs=jobs,
            progress=progress_for(quiet=as_json),
        )
    except (ConfigError, SnapshotError) as exc:
        if as_json:
            click.echo(
                json.dumps({"ok": False, "errors": [{"level": "error", "message": str(exc)}]})
            )
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except BuildError as exc:
        if as_json:
            click.echo(_report_json(None, exc.diagnostics, ok=False))
        else:
            _print_diagnostics(exc.diagnostics)
            click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(_report_json(report, report.diagnostics, ok=True))
        return
    _print_diagnostics(report.diagnostics)
    left_out = f"; left out {_count(len(report.left_out), 'server')}:" if report.left_out else ""
    if report.up_to_date:
        click.echo(f"{report.out} is up to date (version {report.version}){left_out}")
    else:
        bumped = f", {report.bump} change" if report.bump else ""
        built = len(report.snapshot.servers) - len(
            set(report.left_out) - set(report.failed_servers)
        )
        click.echo(
            f"built {report.out} {report.version}{bumped}: {_count(report.modules, 'tool')} of "
            f"{_count(built, 'server')} ({report.reused} unchanged) "
            f"in {report.seconds.get('total', 0):.1f}s{left_out}"
        )
    for server, why in sorted(report.left_out.items()):
        click.echo(f"  {server}: {why}")


def _check_stale(out: Path, options: PackageOptions, as_json: bool) -> None:
    try:
        problems = stale_files(out, options)
    except SnapshotError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(
            json.dumps(
                {"ok": not problems, "stale": problems, "fix": fix_command(out, options)}, indent=2
            )
        )
    elif problems:
        click.echo("\n".join(problems))
        click.echo(
            f"error: {out} is not what its snapshot renders; run: {fix_command(out, options)}",
            err=True,
        )
    else:
        click.echo(f"{out} is what its snapshot renders")
    sys.exit(1 if problems else 0)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


main.add_command(search_command)
main.add_command(serve_command)
main.add_command(skills_command)
main.add_command(check_command)
main.add_command(diff_command)
main.add_command(run_command)
main.add_command(exec_command)
