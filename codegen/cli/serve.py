"""`mcp-codegen serve`: check the package against the config, then serve it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from pathlib import Path

import click

from ..package import BuiltPackage, PackageNotFound, locate_package
from ..runtime.errors import ConfigError
from ..sandbox.quotas import ServeLimits
from ..snapshot import Snapshot, SnapshotError
from .errors import fail, print_diagnostics
from .options import (
    config_option,
    execution_timeout_option,
    memory_option,
    package_option,
    skills_option,
    unsafe_local_option,
)

__all__ = ["serve_command", "stale_servers"]


def _say(message: str) -> None:
    # stdout belongs to the protocol over stdio: everything else goes to stderr.
    click.echo(f"mcp-codegen serve: {message}", err=True)


def stale_servers(package: BuiltPackage, config: Path) -> str | None:
    """How the package's servers differ from the config's, or None when they match.

    A cheap check of names only (no server is started); `--build` does the full one.

    Raises:
        ConfigError: the config cannot be read.
        SnapshotError: the package's snapshot cannot be read.
    """
    from ..config import load_config

    configured = {server.name for server in load_config(config).servers}
    built = {server.name for server in Snapshot.read(package.snapshot_path).servers}
    problems = []
    if configured - built:
        problems.append(f"not in the package: {', '.join(sorted(configured - built))}")
    if built - configured:
        problems.append(f"no longer in the config: {', '.join(sorted(built - configured))}")
    return "; ".join(problems) or None


def _shares_skills(config: Path, transport: str) -> bool:
    """Whether the config's `skills.share` lets this transport's sessions share what they save.

    Raises:
        ConfigError: the config or its `skills` section is invalid.
    """
    from ..config import load_config
    from ..sandbox.bridge.skills import parse_skills_policy

    loaded = load_config(config)
    return transport in parse_skills_policy(loaded.skills, loaded.path)


def _build(package_dir: Path | None, config: Path) -> None:
    from ..build import build_package
    from ..diagnostics import BuildError
    from ..package import DEFAULT_OUT_ROOT
    from ..progress import LineProgress
    from ..render import PackageOptions

    try:
        found: BuiltPackage | None = locate_package(package_dir)
    except PackageNotFound:
        found = None
    if found is not None:
        name, out = found.name, found.root
    else:
        stem = package_dir.name if package_dir is not None else "mcp_tools"
        name = re.sub(r"\W", "_", stem).lstrip("0123456789") or "mcp_tools"
        out = package_dir or DEFAULT_OUT_ROOT / name
    _say(f"building {out} from {config}")
    try:
        # Nothing of the build may reach stdout, which the protocol owns over stdio.
        with contextlib.redirect_stdout(sys.stderr):
            report = build_package(
                options=PackageOptions(name=name),
                out=out,
                config_path=config,
                progress=LineProgress(sys.stderr),
            )
    except (BuildError, ConfigError) as exc:
        if isinstance(exc, BuildError):
            print_diagnostics(exc.diagnostics)
        fail("serve", "build", f"the build failed: {exc}")
    state = "up to date" if report.up_to_date else f"built, version {report.version}"
    _say(f"{out} is {state}")


@click.command("serve")
@config_option("The mcp.json of the servers whose tools the package calls.")
@package_option(
    "The built package (the directory `build` wrote); default: the one under generated/."
)
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio, or streamable HTTP at http://HOST:PORT/mcp.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: the address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="HTTP: 0 picks one.",
)
@click.option("--build", "build_first", is_flag=True, help="Build or refresh the package first.")
@execution_timeout_option("Default time limit of one execute_code, in seconds.", maximum=300)
@memory_option("MB per execution.")
@click.option(
    "--max-output",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=200),
    help="Characters of output a result shows; the middle of longer output is cut.",
)
@click.option(
    "--max-sessions",
    default=ServeLimits.max_sessions,
    show_default=True,
    type=click.IntRange(min=1),
    help="HTTP: sessions (sandboxes) at once.",
)
@click.option(
    "--sessions-per-client",
    default=ServeLimits.sessions_per_client,
    show_default=True,
    type=click.IntRange(min=1),
    help="HTTP: sessions one client address may hold at once.",
)
@click.option(
    "--idle-timeout",
    default=ServeLimits.idle_timeout,
    show_default=True,
    type=click.FloatRange(min=1),
    help="HTTP: seconds after which an idle session ends, with its sandbox and files.",
)
@click.option(
    "--warm",
    default=None,
    type=click.IntRange(min=0),
    help="Sandboxes started ahead, so a new session's first execute_code is warm "
    "(default: 2 over HTTP, kept at that; 1 over stdio; 0: start each on demand).",
)
@skills_option("Where save_skill keeps skills (default: .mcp-codegen/skills beside the config).")
@unsafe_local_option("Run code WITHOUT isolation as plain processes (development only; no gVisor).")
def serve_command(
    config_path: Path,
    package: Path | None,
    transport: str,
    host: str,
    port: int,
    build_first: bool,
    timeout: float,
    memory: int,
    max_output: int,
    max_sessions: int,
    sessions_per_client: int,
    idle_timeout: float,
    warm: int | None,
    skills_dir: Path | None,
    unsafe_local: bool,
) -> None:
    """Serve the package's tools to agents as an MCP server: search, read, execute code."""
    from ..sandbox.errors import SandboxUnavailableError
    from ..sandbox.runsc import find_runsc
    from ..serve.app import ServeSettings, build_server, run_http, run_stdio

    if not config_path.is_file():
        fail("serve", "config", f"{config_path}: no such config (pass --config PATH)")
    if build_first:
        _build(package, config_path)
    try:
        built = locate_package(package)
        stale = stale_servers(built, config_path)
        share = _shares_skills(config_path, transport)
    except PackageNotFound as exc:
        fail("serve", "package", f"{exc} (or pass --build)")
    except ConfigError as exc:
        fail("serve", "config", str(exc))
    except SnapshotError as exc:
        fail("serve", "snapshot", str(exc))
    if stale:
        _say(
            f"warning: {built.root} is stale against {config_path} ({stale}); rebuild it with "
            f"`mcp-codegen build --config {config_path} --out {built.root}`, or serve with --build"
        )
    if unsafe_local:
        _say("warning: --unsafe-local runs the code WITHOUT any isolation")
    else:
        try:
            find_runsc()
        except SandboxUnavailableError as exc:
            fail("serve", "sandbox", str(exc))
    settings = ServeSettings(
        package=built,
        config=config_path,
        transport="http" if transport == "http" else "stdio",
        timeout=timeout,
        memory_mb=memory,
        max_output=max_output,
        unsafe_local=unsafe_local,
        skills_dir=skills_dir,
        share_skills=share,
        limits=ServeLimits(
            max_sessions=max_sessions,
            sessions_per_client=sessions_per_client,
            idle_timeout=idle_timeout,
        ),
        warm=warm,
    )
    try:
        server = build_server(settings)  # reads the snapshot once for every session
    except SnapshotError as exc:
        fail("serve", "snapshot", str(exc))
    if transport == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        _say(f"warning: {host} is not loopback; anyone who reaches it can run code here")
    # Ctrl-C ends the server after its sandboxes are deleted; that is a normal exit.
    with contextlib.suppress(KeyboardInterrupt):
        if transport == "http":
            asyncio.run(run_http(server, host, port, limits=settings.limits))
        else:
            asyncio.run(run_stdio(server))
