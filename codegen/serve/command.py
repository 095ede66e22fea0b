"""`mcp-codegen serve`: check the package against the config, then serve it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from ..package import BuiltPackage, PackageNotFound, locate_package
from ..runtime.errors import ConfigError
from ..snapshot import Snapshot, SnapshotError

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
        for item in getattr(exc, "diagnostics", ()):
            click.echo(str(item), err=True)
        raise click.ClickException(f"the build failed: {exc}") from None
    state = "up to date" if report.up_to_date else f"built, version {report.version}"
    _say(f"{out} is {state}")


@click.command("serve")
@click.option(
    "--config",
    default="mcp.json",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The mcp.json of the servers whose tools the package calls.",
)
@click.option(
    "--package",
    "package_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The built package (the directory `build` wrote); default: the one under generated/.",
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
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0.1, max=300),
    help="Default time limit of one execute_code, in seconds.",
)
@click.option(
    "--memory",
    default=512,
    show_default=True,
    type=click.IntRange(min=16),
    help="MB per execution.",
)
@click.option(
    "--max-output",
    default=20_000,
    show_default=True,
    type=click.IntRange(min=200),
    help="Characters of output a result shows; the middle of longer output is cut.",
)
@click.option(
    "--max-sessions",
    default=32,
    show_default=True,
    type=click.IntRange(min=1),
    help="HTTP: sessions (sandboxes) at once.",
)
@click.option(
    "--skills",
    "skills_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where save_skill keeps skills (default: .mcp-codegen/skills beside the config).",
)
@click.option(
    "--preconnect/--no-preconnect",
    default=True,
    show_default=True,
    help="Start every server when serving starts, so no tool call waits for a server's start.",
)
@click.option(
    "--unsafe-local",
    is_flag=True,
    help="Run code WITHOUT isolation as plain processes (development only; no gVisor).",
)
def serve_command(
    config: Path,
    package_dir: Path | None,
    transport: str,
    host: str,
    port: int,
    build_first: bool,
    timeout: float,
    memory: int,
    max_output: int,
    max_sessions: int,
    skills_dir: Path | None,
    preconnect: bool,
    unsafe_local: bool,
) -> None:
    """Serve the package's tools to agents as an MCP server: search, read, execute code."""
    from ..sandbox.errors import SandboxUnavailableError
    from ..sandbox.runsc import find_runsc
    from .app import ServeSettings, build_server, run_http, run_stdio

    if not config.is_file():
        raise click.ClickException(f"{config}: no such config (pass --config PATH)")
    if build_first:
        _build(package_dir, config)
    try:
        package = locate_package(package_dir)
        stale = stale_servers(package, config)
    except PackageNotFound as exc:
        raise click.ClickException(f"{exc} (or pass --build)") from None
    except (ConfigError, SnapshotError) as exc:
        raise click.ClickException(str(exc)) from None
    if stale:
        _say(
            f"warning: {package.root} is stale against {config} ({stale}); rebuild it with "
            f"`mcp-codegen build --config {config} --out {package.root}`, or serve with --build"
        )
    if unsafe_local:
        _say("warning: --unsafe-local runs the code WITHOUT any isolation")
    else:
        try:
            find_runsc()
        except SandboxUnavailableError as exc:
            raise click.ClickException(str(exc)) from None
    settings = ServeSettings(
        package=package,
        config=config,
        transport="http" if transport == "http" else "stdio",
        timeout=timeout,
        memory_mb=memory,
        max_output=max_output,
        unsafe_local=unsafe_local,
        skills_dir=skills_dir,
        preconnect=preconnect,
    )
    server = build_server(settings)
    if transport == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        _say(f"warning: {host} is not loopback; anyone who reaches it can run code here")
    # Ctrl-C or SIGTERM ends the server after its sandboxes are deleted and its upstream
    # servers stopped; that is a normal exit.
    with contextlib.suppress(KeyboardInterrupt):
        if transport == "http":
            asyncio.run(_until_terminated(run_http(server, host, port, max_sessions=max_sessions)))
        else:
            asyncio.run(_until_terminated(run_stdio(server)))


async def _until_terminated(main: Coroutine[Any, Any, None]) -> None:
    """Run `main`; SIGTERM cancels it, so its clean-up runs (Python's default would skip it).

    The upstream servers run in process groups of their own: a `serve` killed
    without its clean-up would leave them running.
    """
    task = asyncio.ensure_future(main)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform / thread
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
