"""The `--auth` options of `serve`, and the one rule about binding beyond loopback.

Declared here, not in `options.py`, because only `serve` takes them; `serve_auth()`
turns them into a `ServeAuth` (or None) and ends the command on a mistake.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import fail

__all__ = ["LOOPBACK", "auth_options", "serve_auth"]

_F = TypeVar("_F", bound=Callable[..., Any])

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def auth_options(function: _F) -> _F:
    """`--auth`, `--token-file`, `--insecure-no-auth` and the `--oauth-*` options."""
    options = [
        click.option(
            "--auth",
            "auth_kind",
            type=click.Choice(["none", "token", "oauth"]),
            default="none",
            show_default=True,
            help="HTTP: who may connect. token: a bearer token from $MCP_CODEGEN_SERVE_TOKEN or "
            "--token-file; oauth: tokens of --oauth-issuer, checked by introspection.",
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="--auth token: a file of `NAME TOKEN` lines, one principal each.",
        ),
        click.option(
            "--insecure-no-auth",
            is_flag=True,
            help="Allow a non-loopback --host without --auth (anyone who reaches it runs code).",
        ),
        click.option(
            "--oauth-issuer", default=None, help="--auth oauth: the authorization server."
        ),
        click.option(
            "--oauth-introspection-url",
            default=None,
            help="--auth oauth: its RFC 7662 endpoint [default: from its metadata].",
        ),
        click.option(
            "--oauth-scope",
            "oauth_scopes",
            multiple=True,
            help="--auth oauth: a scope every token must have (repeatable).",
        ),
        click.option(
            "--oauth-resource",
            default=None,
            help="--auth oauth: this server's public URL, the audience tokens must be issued "
            "for [default: http://HOST:PORT/mcp].",
        ),
        click.option(
            "--oauth-client-id",
            default=None,
            help="--auth oauth: the client serve introspects as (its secret in "
            "$MCP_CODEGEN_SERVE_CLIENT_SECRET).",
        ),
        click.option(
            "--oauth-no-audience-check",
            is_flag=True,
            help="--auth oauth: accept tokens whose audience is not --oauth-resource (for "
            "authorization servers that do not bind tokens to a resource).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def serve_auth(transport: str, host: str, options: dict[str, Any]) -> Any:
    """The `ServeAuth` the options ask for, or None; ends the command on a mistake.

    Raises:
        SystemExit: the options contradict each other, or a non-loopback `host`
            would be served without authentication.
    """
    from ..serve.auth import CLIENT_SECRET_ENV, ServeAuthError, oauth_auth, token_auth

    kind = options["auth_kind"]
    if transport != "http":
        if kind != "none":
            fail("serve", "usage", "--auth is for --transport http (stdio has one client)")
        return None
    if kind == "none":
        if host not in LOOPBACK and not options["insecure_no_auth"]:
            fail(
                "serve",
                "usage",
                f"--host {host} is reachable beyond this machine and serve runs code with every "
                "configured server's credentials: pass --auth token or --auth oauth "
                "(or --insecure-no-auth to accept that risk)",
            )
        return None
    try:
        if kind == "token":
            return token_auth(options["token_file"], os.environ)
        issuer = options["oauth_issuer"]
        if not issuer:
            fail("serve", "usage", "--auth oauth needs --oauth-issuer URL")
        if host not in LOOPBACK and not options["oauth_resource"]:
            # Tokens name the URL clients use; http://0.0.0.0:PORT/mcp is not one of them.
            fail(
                "serve",
                "usage",
                f"--auth oauth on --host {host} needs --oauth-resource: the public URL clients "
                "use (https://tools.example.com/mcp), which tokens are issued for",
            )
        return oauth_auth(
            issuer,
            introspection_url=options["oauth_introspection_url"],
            scopes=tuple(options["oauth_scopes"]),
            resource=options["oauth_resource"],
            client_id=options["oauth_client_id"],
            client_secret=os.environ.get(CLIENT_SECRET_ENV),
            check_audience=not options["oauth_no_audience_check"],
        )
    except ServeAuthError as exc:
        fail("serve", "usage", str(exc))  # a setting of the command line is unusable
