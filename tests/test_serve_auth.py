"""`serve --auth` over HTTP: a real `serve` process, real gVisor behind it, raw HTTP for the
refusals and the SDK's `Client` for what an authorized caller does."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from codegen.cli.errors import EXIT_CODES
from tests.conftest import ROOT, SERVERS, serve_url

sys.path.insert(0, str(SERVERS))
import oauth_server

ALICE = "alice-" + "a1" * 16
BOB = "bob-" + "b2" * 16
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@contextmanager
def serving(
    toolbox: tuple[Path, Path], *options: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """`serve --transport http --port 0 OPTIONS` in a process; yields its URL."""
    config, package = toolbox
    tmp = Path(tempfile.mkdtemp(prefix="sa-", dir="/tmp"))
    command = ["serve", "--config", str(config), "--package", str(package)]
    command += ["--transport", "http", "--port", "0", *options]
    process = subprocess.Popen(
        [sys.executable, "-m", "codegen", *command],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, TMPDIR=str(tmp), **(env or {})),
    )
    url = serve_url(process)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            process.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def post(
    url: str, token: str | None, session: str | None = None, body: Any = None
) -> httpx2.Response:
    headers = dict(HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if session is not None:
        headers["Mcp-Session-Id"] = session
    return httpx2.post(url, json=body or INITIALIZE, headers=headers, timeout=30)


def open_session(url: str, token: str) -> str:
    response = post(url, token)
    assert response.status_code == 200, response.text
    session = response.headers.get("mcp-session-id")
    assert session
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert post(url, token, session, initialized).status_code in (200, 202)
    return session


async def call_as(url: str, token: str, code: str) -> tuple[list[str], str]:
    """The SDK's Client with a bearer token: list the tools, run `code`."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        listed = await client.list_tools()
        result = await client.call_tool("execute_code", {"code": code})
        assert not result.is_error, result
        return [tool.name for tool in listed.tools], str(result.content[0].text)  # type: ignore[union-attr]


LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}


def test_serve_auth_token(toolbox_package: tuple[Path, Path], tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# who may use serve\nalice {ALICE}\nbob {BOB}\n", encoding="utf-8")
    tokens.chmod(0o600)
    with serving(toolbox_package, "--auth", "token", "--token-file", str(tokens)) as url:
        missing = post(url, None)
        assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
        assert post(url, "wrong-" + "x" * 30).status_code == 401
        assert post(url, ALICE[:-1]).status_code == 401

        session = open_session(url, ALICE)
        assert post(url, ALICE, session, LIST_TOOLS).status_code == 200
        # Bob's token is valid, but the session is Alice's: refused, and nothing of it shown.
        other = post(url, BOB, session, LIST_TOOLS)
        assert other.status_code == 403 and "execute_code" not in other.text
        assert post(url, None, session, LIST_TOOLS).status_code == 401

        tools, output = asyncio.run(
            call_as(url, BOB, "from servers.toolbox import add\n(await add(a=2, b=40)).result")
        )
        assert tools == ["search_tools", "read_module", "execute_code"]
        assert "value: 42" in output


def test_serve_auth_token_from_the_environment(toolbox_package: tuple[Path, Path]) -> None:
    token = "env-" + "e" * 30
    with serving(toolbox_package, "--auth", "token", env={"MCP_CODEGEN_SERVE_TOKEN": token}) as url:
        assert post(url, None).status_code == 401
        assert post(url, token).status_code == 200


def test_serve_auth_oauth(toolbox_package: tuple[Path, Path]) -> None:
    servers = oauth_server.start()
    issue = servers.provider.issue
    try:
        options = ["--auth", "oauth", "--oauth-issuer", servers.issuer, "--oauth-scope", "tools"]
        options += ["--oauth-introspection-url", servers.introspection_url]
        with serving(toolbox_package, *options) as url:
            # Protected-resource metadata points clients at the authorization server.
            metadata = httpx2.get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))
            assert metadata.status_code == 200
            (advertised,) = metadata.json()["authorization_servers"]
            assert advertised.rstrip("/") == servers.issuer
            challenge = post(url, None)
            assert challenge.status_code == 401
            assert "resource_metadata=" in challenge.headers["www-authenticate"]

            alice = issue("app", ["tools"], subject="alice", resource=url)
            bob = issue("app", ["tools"], subject="bob", resource=url)
            no_scope = issue("app", [], subject="carol", resource=url)
            elsewhere = issue("app", ["tools"], subject="dave", resource="http://127.0.0.1:1/mcp")
            assert post(url, "unknown-" + "u" * 30).status_code == 401
            assert post(url, elsewhere).status_code == 401  # issued for another server
            refused = post(url, no_scope)
            assert refused.status_code == 403
            assert "insufficient_scope" in refused.headers["www-authenticate"]

            session = open_session(url, alice)
            assert post(url, bob, session, LIST_TOOLS).status_code == 403
            assert post(url, alice, session, LIST_TOOLS).status_code == 200
            tools, output = asyncio.run(call_as(url, bob, "print('hello from', 'bob')"))
            assert "execute_code" in tools and "hello from bob" in output
    finally:
        servers.stop()


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    """The command in this process (its checks come before anything starts)."""
    from click.testing import CliRunner

    from codegen.cli import main

    return CliRunner().invoke(main, list(args), env=env)


def test_serve_refuses_unsafe_or_unusable_auth(
    toolbox_package: tuple[Path, Path], tmp_path: Path
) -> None:
    config, package = toolbox_package
    base = ["serve", "--config", str(config), "--package", str(package)]
    exposed = cli(*base, "--transport", "http", "--host", "0.0.0.0", "--port", "0")
    assert exposed.exit_code == EXIT_CODES["usage"]
    assert "--host 0.0.0.0 is reachable beyond this machine" in exposed.output
    assert "--auth token" in exposed.output and "Traceback" not in exposed.output

    no_token = cli(
        *base, "--transport", "http", "--auth", "token", env={"MCP_CODEGEN_SERVE_TOKEN": ""}
    )
    assert no_token.exit_code == EXIT_CODES["usage"] and "needs a token" in no_token.output
    short = tmp_path / "short"
    short.write_text("alice abc\n", encoding="utf-8")
    weak = cli(*base, "--transport", "http", "--auth", "token", "--token-file", str(short))
    assert (
        weak.exit_code == EXIT_CODES["usage"]
        and f"{short}:1: a token must have at least 16" in weak.output
    )
    stdio = cli(*base, "--auth", "token")
    assert (
        stdio.exit_code == EXIT_CODES["usage"] and "--auth is for --transport http" in stdio.output
    )
    issuer = cli(*base, "--transport", "http", "--auth", "oauth")
    assert issuer.exit_code == EXIT_CODES["usage"] and "--oauth-issuer" in issuer.output
    public = ["--host", "0.0.0.0", "--auth", "oauth", "--oauth-issuer", "https://as.example"]
    resource = cli(*base, "--transport", "http", *public)
    assert resource.exit_code == EXIT_CODES["usage"] and "needs --oauth-resource" in resource.output


def test_non_loopback_bind_with_auth_is_served(toolbox_package: tuple[Path, Path]) -> None:
    token = "team-" + "t" * 30
    env = {"MCP_CODEGEN_SERVE_TOKEN": token}
    with serving(toolbox_package, "--host", "0.0.0.0", "--auth", "token", env=env) as url:
        local = url.replace("0.0.0.0", "127.0.0.1")
        assert post(local, None).status_code == 401
        assert post(local, token).status_code == 200


def test_constant_time_verifier_knows_each_principal() -> None:
    from codegen.serve.auth import StaticTokens

    verifier = StaticTokens({"alice": ALICE, "bob": BOB})

    async def check() -> None:
        found = await verifier.verify_token(BOB)
        assert found is not None and found.client_id == "bob" and found.subject == "bob"
        assert await verifier.verify_token(BOB + "x") is None
        assert await verifier.verify_token("") is None

    asyncio.run(check())
