"""`mcp-codegen login SERVER`, `login --list` and `logout SERVER`: OAuth logins on this machine.

Tokens are kept per server URL in `$XDG_CONFIG_HOME/mcp-codegen/oauth/` (see
`codegen.runtime.tokens`); no command prints one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..auth.login import DEFAULT_LOGIN_TIMEOUT, login, logout
from ..runtime.config import HttpServer
from ..runtime.errors import AuthError, ConfigError, TransportError
from ..runtime.tokens import TokenStore
from .errors import Command, exit_codes_help, fail
from .options import config_option, verbose_option
from .resolve import read_config

__all__ = ["login_command", "logout_command"]


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.command("login", cls=Command, epilog=exit_codes_help("login"))
@click.argument("server", required=False)
@config_option("The mcp.json that names the server.")
@click.option(
    "--list", "list_logins", is_flag=True, help="Show the stored logins and their expiry."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_LOGIN_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the browser to come back.",
)
@click.option("--no-browser", is_flag=True, help="Only print the URL to open.")
@verbose_option()
def login_command(
    server: str | None, config_path: Path, list_logins: bool, timeout: float, no_browser: bool
) -> None:
    """Log in to an OAuth-protected HTTP server of the mcp.json (once; tokens are refreshed)."""
    if list_logins:
        _list(config_path)
        return
    if server is None:
        fail("login", "usage", "name the server to log in to (or pass --list)")
    config = read_config("login", config_path)
    try:
        result = asyncio.run(
            login(config, server, timeout=timeout, open_browser=not no_browser, say=_say)
        )
    except ConfigError as exc:
        fail("login", "config", str(exc))
    except AuthError as exc:
        fail("login", "auth", f"login to {server!r} failed: {exc}")
    except TransportError as exc:  # not about credentials: the server is unreachable or broken
        fail("login", "servers", f"login to {server!r} failed: {exc}")
    state = f"; {result.info.state()}" if result.info else ""
    tools = f"{result.tools} tool{'' if result.tools == 1 else 's'}"
    click.echo(f"logged in to {result.server!r} at {result.url} ({tools}){state}")


def _configured_names(config_path: Path) -> dict[str, list[str]]:
    """Server URL -> the names the config gives it (empty when there is no config).

    Raises:
        SystemExit: the config exists but is invalid (`fail("login", "config")`).
    """
    if not config_path.is_file():
        return {}
    config = read_config("login", config_path)
    names: dict[str, list[str]] = {}
    for server in config.servers:
        if isinstance(server, HttpServer):
            try:
                url = server.resolve().url
            except ConfigError:
                continue
            names.setdefault(url, []).append(server.name)
    return names


def _list(config_path: Path) -> None:
    names = _configured_names(config_path)
    logins = TokenStore().logins()
    if not logins:
        click.echo("no stored logins")
        return
    for info in logins:
        named = ", ".join(names.get(info.server_url, [])) or "-"
        click.echo(f"{named}\t{info.server_url}\t{info.state()}")


@click.command("logout", cls=Command, epilog=exit_codes_help("logout"))
@click.argument("server")
@config_option("The mcp.json that names the server.")
@verbose_option()
def logout_command(server: str, config_path: Path) -> None:
    """Forget the stored tokens (and registered client) of an HTTP server."""
    config = read_config("logout", config_path)
    try:
        removed = logout(config, server)
    except ConfigError as exc:
        fail("logout", "config", str(exc))
    except OSError as exc:
        fail("logout", "auth", f"cannot remove the login of {server!r}: {exc.strerror}")
    click.echo(f"logged out of {server!r}" if removed else f"no stored login for {server!r}")
