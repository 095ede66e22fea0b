"""`mcp-codegen serve`: check the package against the config, then serve it.

stdout belongs to the protocol over stdio, so everything else goes to stderr;
errors and warnings print as everywhere else (`error: ...`, `warning: ...`).
Relative defaults follow the config file, since a client such as Claude Desktop
starts `serve` in a working directory of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from ..package import BuiltPackage
from ..runtime.config import Config
from ..runtime.errors import ConfigError
from ..sandbox.quotas import ServeLimits
from ..snapshot import Snapshot, SnapshotError
from ..write import OutputError
from .audit import start_audit
from .errors import Command, exit_codes_help, fail, print_diagnostics, print_warning
from .options import (
    audit_option,
    config_option,
    execution_timeout_option,
    memory_option,
    package_option,
    policy_options,
    skills_option,
    unsafe_local_option,
    verbose_option,
)
from .resolve import find_package, read_config, read_policy, read_resolver, rebuild_command
from .serve_auth import LOOPBACK, auth_options, serve_auth

__all__ = ["serve_command", "stale_servers"]


def _say(message: str) -> None:
    # stdout belongs to the protocol over stdio: everything else goes to stderr.
    click.echo(f"mcp-codegen serve: {message}", err=True)


def stale_servers(package: BuiltPackage, config: Config | Path) -> str | None:
    """How the package's servers differ from the config's, or None when they match.

    A cheap check of names only (no server is started); `--build` does the full one.

    Raises:
        ConfigError: the config (a path) cannot be read.
        SnapshotError: the package's snapshot cannot be read.
    """
    if isinstance(config, Path):
        from ..config import load_config

        config = load_config(config)
    configured = {server.name for server in config.servers}
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
    from ..progress import LineProgress
    from ..render import PackageOptions
    from .build import DEFAULT_NAME, resolve_output

    try:
        out, existing = resolve_output(package_dir, None, config)
    except OutputError as exc:
        fail("serve", "output", str(exc))
    if existing is not None:
        options = PackageOptions(name=existing.name, dist_name=existing.dist_name)
    else:
        options = PackageOptions(name=DEFAULT_NAME)
    _say(f"building {out} from {config}")
    try:
        # Nothing of the build may reach stdout, which the protocol owns over stdio.
        with contextlib.redirect_stdout(sys.stderr):
            report = build_package(
                options=options,
                out=out,
                config_path=config,
                progress=LineProgress(sys.stderr),
            )
    except OutputError as exc:
        fail("serve", "output", str(exc))
    except (BuildError, ConfigError) as exc:
        if isinstance(exc, BuildError):
            print_diagnostics(exc.diagnostics)
        fail("serve", "build", f"the build failed: {exc}")
    state = "up to date" if report.up_to_date else f"built, version {report.version}"
    _say(f"{out} is {state}")


@click.command("serve", cls=Command, epilog=exit_codes_help("serve"))
@config_option("The mcp.json of the servers whose tools the package calls.")
@package_option("The built package to serve.")
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
@policy_options()
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
@click.option(
    "--preconnect/--no-preconnect",
    default=True,
    show_default=True,
    help="Start every server when serving starts, so no tool call waits for a server's start.",
)
@audit_option("execution and tool call of every session")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="Events on stderr, one line each: info adds sessions and executions, debug tool calls.",
)
@unsafe_local_option("Run code WITHOUT isolation as plain processes (development only; no gVisor).")
@verbose_option()
@auth_options
def serve_command(
    config_path: Path,
    package: Path | None,
    transport: str,
    host: str,
    port: int,
    build_first: bool,
    timeout: float | None,
    memory: int | None,
    max_output: int,
    max_sessions: int,
    sessions_per_client: int,
    idle_timeout: float,
    warm: int | None,
    skills_dir: Path | None,
    preconnect: bool,
    audit: Path | None,
    audit_max_mb: int,
    log_level: str,
    unsafe_local: bool,
    **options: Any,
) -> None:
    """Serve the package's tools to agents as an MCP server: search, read, execute code."""
    from ..sandbox.errors import SandboxUnavailableError
    from ..sandbox.runsc import find_runsc
    from ..serve.app import ServeSettings, build_server, run_http, run_stdio
    from ..serve.tools import MAX_TIMEOUT
    from ..telemetry import configure, configure_from_environment

    # `options` holds the --auth options and the sandbox policy's flags; each reader takes its own.
    auth = serve_auth(transport, host, options)  # usage errors before any file is read
    configure_from_environment()  # also when started as `python -m codegen.serve`
    configure(log_level=log_level)
    start_audit("serve", audit, audit_max_mb)
    config = read_config("serve", config_path, prompt=False)
    policy = read_policy("serve", config, {**options, "timeout": timeout, "memory": memory})
    if policy.timeout > MAX_TIMEOUT:
        fail(
            "serve",
            "config",
            f"{config_path}: sandbox.limits.timeout_s: serve allows at most {MAX_TIMEOUT:g} s "
            f"per execution, not {policy.timeout:g}",
        )
    resolver = read_resolver("serve")
    if build_first:
        _build(package, config_path)
    built = find_package(
        "serve", package, config_path, hint=" (or serve with --build to build it first)"
    )
    try:
        stale = stale_servers(built, config)
        share = _shares_skills(config_path, transport)
    except ConfigError as exc:
        fail("serve", "config", str(exc))
    except SnapshotError as exc:
        fail("serve", "snapshot", str(exc))
    if stale:
        print_warning(
            f"{built.root} is stale against {config_path} ({stale}); rebuild it with "
            f"`{rebuild_command(config_path, built)}`, or serve with --build"
        )
    if unsafe_local:
        print_warning("--unsafe-local runs the code WITHOUT any isolation")
    else:
        try:
            find_runsc()
        except SandboxUnavailableError as exc:
            fail("serve", "sandbox", str(exc))
    settings = ServeSettings(
        package=built,
        config=config_path,
        transport="http" if transport == "http" else "stdio",
        max_output=max_output,
        unsafe_local=unsafe_local,
        skills_dir=skills_dir,
        share_skills=share,
        limits=ServeLimits(
            max_sessions=max_sessions,
            sessions_per_client=sessions_per_client,
            idle_timeout=idle_timeout,
        ),
        preconnect=preconnect,
        warm=warm,
        policy=policy,
        resolver=resolver,
    )
    try:
        # Reads the config's privacy section, and the snapshot once for every session.
        server = build_server(settings)
    except ConfigError as exc:
        fail("serve", "config", str(exc))
    except SnapshotError as exc:
        fail("serve", "snapshot", str(exc))
    if transport == "http" and host not in LOOPBACK and auth is None:
        print_warning(
            f"{host} is not loopback and --insecure-no-auth: anyone who reaches it can run code here"
        )
    # Ctrl-C or SIGTERM ends the server after its sandboxes are deleted and its upstream
    # servers stopped; that is a normal exit.
    with contextlib.suppress(KeyboardInterrupt):
        if transport == "http":
            try:
                asyncio.run(
                    _until_terminated(
                        run_http(server, host, port, limits=settings.limits, auth=auth)
                    )
                )
            except OSError as exc:
                fail("serve", "usage", f"cannot listen on {host}:{port}: {exc.strerror or exc}")
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
