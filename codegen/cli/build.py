"""`mcp-codegen build`: introspect the servers of an mcp.json and write the package.

What can be checked before any server starts is checked first: the config, the
`--name`, and the output directory, which a build replaces only when it is new,
empty, or a package mcp-codegen built (`codegen.write.check_output_dir`).
Errors print as one `error:` line with the exit code of `errors.EXIT_CODES`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..build import BuildReport, build_package
from ..diagnostics import BuildError, Diagnostics
from ..names import check_package_name
from ..package import BuiltPackage, default_root, is_built_package, locate_package, packages_under
from ..progress import progress_for
from ..render import PackageOptions
from ..runtime.errors import ConfigError
from ..snapshot import Snapshot, SnapshotError
from ..staleness import fix_command, stale_files
from ..write import OutputError
from .errors import (
    Command,
    ExitReason,
    exit_code,
    exit_codes_help,
    fail,
    print_diagnostics,
    print_warning,
)
from .options import (
    config_option,
    jobs_option,
    json_option,
    keep_going_option,
    server_timeout_option,
    verbose_option,
)
from .resolve import read_config

__all__ = ["build_command", "resolve_output"]

DEFAULT_NAME = "mcp_tools"


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


def _valid_package_name(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> str | None:
    problem = check_package_name(value) if value is not None else None
    if problem is not None:
        raise click.BadParameter(problem)
    return value


def resolve_output(
    package: Path | None, name: str | None, config_path: Path
) -> tuple[Path, BuiltPackage | None]:
    """Where to build, and the package already there (whose name a rebuild keeps).

    `package` may be the build directory, its import package, or a directory
    holding one built package; a directory that does not exist yet is built.
    Without it: `generated/<name>` beside the config, or the one package there.

    Raises:
        OutputError: `package` holds several packages, or none of that name.
    """
    if package is None:
        root = default_root(config_path)
        if name is not None:
            out = root / name
            return out, locate_package(out) if is_built_package(out) else None
        found = packages_under(root)
        if len(found) > 1:
            names = ", ".join(path.name for path in found)
            raise OutputError(
                f"{root} holds several packages ({names}); choose one with --package "
                f"{found[0]} or name the package with --name"
            )
        out = found[0] if found else root / DEFAULT_NAME
        return out, locate_package(out) if found else None
    if is_built_package(package):
        return package, locate_package(package)
    if is_built_package(package.parent) and (package / "_runtime").is_dir():
        return package.parent, locate_package(package.parent)  # the import package
    inside = packages_under(package) if package.is_dir() else []
    if inside:
        if len(inside) == 1 and name in (None, inside[0].name):
            return inside[0], locate_package(inside[0])
        names = ", ".join(path.name for path in inside)
        raise OutputError(
            f"{package} holds packages built by mcp-codegen ({names}), it is not one; "
            f"pass --package {package / (name or inside[0].name)}"
        )
    return package, None


@click.command("build", cls=Command, epilog=exit_codes_help("build"))
@config_option("The mcpServers config to introspect.", dir_okay=True)
@click.option(
    "--package",
    "package",
    type=click.Path(path_type=Path),
    default=None,
    help="The package directory to build or rebuild; replaced only when it is new, empty, "
    "or a package mcp-codegen built [default: generated/<name> beside the config, or the "
    "one package there].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    hidden=True,
    help="Deprecated spelling of --package.",
)
@click.option(
    "--name",
    default=None,
    callback=_valid_package_name,
    help=f"Import name of the generated package [default: the name of the package at "
    f"--package, else {DEFAULT_NAME}].",
)
@click.option(
    "--dist-name",
    default=None,
    help="Distribution name [default: the package's, else the name with dashes].",
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
@jobs_option()
@click.option(
    "--check",
    is_flag=True,
    help="Build nothing: exit 1 with the diff when the package is not what its snapshot renders.",
)
@json_option()
@verbose_option()
def build_command(
    config_path: Path,
    package: Path | None,
    out: Path | None,
    name: str | None,
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
    if out is not None:
        if package is not None and package != out:
            fail("build", "usage", "--out is the old spelling of --package; give one of them")
        print_warning("--out is deprecated; use --package (the same directory)")
        package = out
    try:
        target, existing = resolve_output(package, name, config_path)
    except OutputError as exc:
        fail("build", "output", str(exc))
    if existing is not None and name is not None and name != existing.name:
        print_warning(
            f"{target} holds the package {existing.name!r}; it is rebuilt as {name!r} "
            "(drop --name to keep its name)"
        )
    options = PackageOptions(
        name=name or (existing.name if existing else DEFAULT_NAME),
        dist_name=dist_name or (existing.dist_name if existing and not name else None),
    )
    if check:
        _check_stale(target, existing, options, config_path, as_json)
        return
    try:
        snapshot = Snapshot.read(from_snapshot) if from_snapshot else None
        if snapshot is None:
            read_config("build", config_path)
        report = build_package(
            options=options,
            out=target,
            config_path=None if snapshot else config_path,
            snapshot=snapshot,
            version=base_version,
            keep_going=keep_going,
            fail_on_warning=fail_on_warning,
            timeout=timeout,
            jobs=jobs,
            progress=progress_for(quiet=as_json),
        )
    except (ConfigError, SnapshotError, OutputError) as exc:
        document = {"ok": False, "errors": [{"level": "error", "message": str(exc)}]}
        reason: ExitReason = (
            "config"
            if isinstance(exc, ConfigError)
            else "snapshot"
            if isinstance(exc, SnapshotError)
            else "output"
        )
        fail("build", reason, str(exc), document=json.dumps(document) if as_json else None)
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


def _check_stale(
    out: Path,
    existing: BuiltPackage | None,
    options: PackageOptions,
    config_path: Path,
    as_json: bool,
) -> None:
    if existing is None:
        fail(
            "build",
            "package",
            f"{out}: not a package built by mcp-codegen, so there is nothing to check; "
            f"pass --package DIR (the directory `mcp-codegen build` wrote)",
        )
    try:
        problems = stale_files(out, options)
    except SnapshotError as exc:
        fail("build", "snapshot", str(exc))
    fix = fix_command(out, options)
    if as_json:
        click.echo(json.dumps({"ok": not problems, "stale": problems, "fix": fix}, indent=2))
        sys.exit(exit_code("build", "stale") if problems else 0)
    if problems:
        click.echo("\n".join(problems))
        fail("build", "stale", f"{out} is not what its snapshot renders; run: {fix}")
    click.echo(f"{out} is what its snapshot renders")
    sys.exit(0)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
