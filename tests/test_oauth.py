"""OAuth as a client, against a local OAuth-protected MCP server written with the SDK's
authorization-server and resource-server components (tests/servers/oauth_server.py).

`mcp-codegen login` runs as a real process; the test plays the browser by following
the printed authorization URL itself (the server approves at once and redirects to
login's loopback listener). Then `build`, the direct transport of the generated
package and `serve` reach the server with the stored tokens, refresh them, and say
"run `mcp-codegen login`" when the login is gone, without ever waiting for a person.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from codegen.cli.errors import EXIT_CODES
from codegen.runtime.tokens import TokenStore
from tests.conftest import ROOT, SERVERS, run_python, server_entry, write_config

sys.path.insert(0, str(SERVERS))
import oauth_server


@pytest.fixture(scope="module")
def servers() -> Iterator[oauth_server.OAuthServers]:
    running = oauth_server.start()
    yield running
    running.stop()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $XDG_CONFIG_HOME: no stored login, for this process and the commands it runs."""
    config_home = tmp_path / "xdg"
    config_home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    return config_home


def cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, **(env or {})),
    )


def login(config: Path, name: str) -> tuple[int, str, str]:
    """`mcp-codegen login NAME`, with this test as the browser: it follows the printed URL."""
    command = ["login", name, "--config", str(config), "--no-browser", "--timeout", "60"]
    process = subprocess.Popen(
        [sys.executable, "-m", "codegen", *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert process.stderr is not None and process.stdout is not None
    seen: list[str] = []
    url = None
    while url is None:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("  http"):
            url = line.strip()
    assert url, "login printed no URL:\n" + "".join(seen)
    # The authorization server approves at once and redirects to login's listener.
    answer = httpx2.get(url, follow_redirects=True, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.url.host == "127.0.0.1" and answer.url.path == "/callback"
    # Not communicate(): it would skip what readline() already buffered. The output is small.
    process.wait(timeout=60)
    out, err = process.stdout.read(), process.stderr.read()
    return process.returncode, out, "".join(seen) + err


def stored(home: Path) -> list[Path]:
    return sorted((home / "mcp-codegen" / "oauth").glob("*.json"))


def secrets_of(home: Path) -> list[str]:
    """Every token and client secret stored: none may appear anywhere else."""
    found = []
    for path in stored(home):
        record = json.loads(path.read_text(encoding="utf-8"))
        tokens = record.get("tokens") or {}
        found += [tokens.get("access_token"), tokens.get("refresh_token")]
        found.append((record.get("client") or {}).get("client_secret"))
    return [item for item in found if item]


def notes_config(path: Path, url: str, **entry: Any) -> Path:
    return write_config(path / "mcp.json", {"notes": {"url": url, **entry}})


def test_login_build_and_direct_transport(
    servers: oauth_server.OAuthServers, home: Path, tmp_path: Path
) -> None:
    config = notes_config(tmp_path, servers.mcp_url)
    out = tmp_path / "pkg"

    # Before a login: build fails at once, naming the server and the command to run.
    before = cli("build", "--config", str(config), "--name", "notes_pkg", "--out", str(out))
    assert before.returncode == 1
    assert "server 'notes' needs a login: run `mcp-codegen login notes`" in before.stderr
    assert "Traceback" not in before.stderr
    assert not out.exists() and not stored(home)

    code, stdout, stderr = login(config, "notes")
    assert code == 0, stderr
    assert "logged in to 'notes'" in stdout and "(2 tools)" in stdout and "refreshable" in stdout
    assert servers.provider.counts["authorize"] >= 1

    # The login is one 0600 file in 0700 directories under $XDG_CONFIG_HOME.
    (record,) = stored(home)
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(record.parent.parent.stat().st_mode) == 0o700
    listed = cli("login", "--list", "--config", str(config))
    assert listed.returncode == 0 and "notes\t" + servers.mcp_url in listed.stdout
    assert "valid until" in listed.stdout

    built = cli("build", "--config", str(config), "--name", "notes_pkg", "--out", str(out))
    assert built.returncode == 0, built.stderr
    snapshot = json.loads((out / "mcp-snapshot.json").read_text(encoding="utf-8"))
    assert sorted(tool["name"] for tool in snapshot["servers"][0]["tools"]) == ["add", "whoami"]

    # The generated package's direct transport calls the tools with the stored login.
    output = run_python(
        "import asyncio, notes_pkg\n"
        "from notes_pkg.servers.notes import add, whoami\n"
        f"notes_pkg.configure({str(config)!r})\n"
        "async def main():\n"
        "    print((await add(a=2, b=3)).result, (await whoami()).result)\n"
        "    await notes_pkg.aclose()\n"
        "asyncio.run(main())\n",
        out,
    )
    assert output.split()[0] == "5" and output.split()[1].startswith("alice/")

    # No token or client secret in the package, the snapshot, the cache, or any output.
    secrets = secrets_of(home)
    assert len(secrets) >= 2
    everything = [stdout, stderr, before.stdout, before.stderr, built.stdout, built.stderr]
    everything += [listed.stdout, output]
    for path in out.rglob("*"):
        if path.is_file():
            everything.append(path.read_bytes().decode("utf-8", "replace"))
    for secret in secrets:
        assert not any(secret in text for text in everything)

    assert cli("logout", "notes", "--config", str(config)).stdout.strip() == "logged out of 'notes'"
    assert not stored(home)


def test_expired_access_token_is_refreshed_without_a_login(
    servers: oauth_server.OAuthServers, home: Path, tmp_path: Path
) -> None:
    from codegen.runtime.config import load_config
    from codegen.runtime.direct import open_client

    config = notes_config(tmp_path, servers.mcp_url)
    servers.provider.access_lifetime = 3
    try:
        assert login(config, "notes")[0] == 0
    finally:
        servers.provider.access_lifetime = 3600
    server = load_config(config).server("notes")
    counts = dict(servers.provider.counts)

    async def add() -> str:
        async with open_client(server, timeout=10) as client:
            result = await client.call_tool("add", {"a": 20, "b": 22})
        return str(result.content[0].text)  # type: ignore[union-attr]

    # Past its expiry (3 s, refreshed a tenth early): a refresh before the request.
    time.sleep(3.2)
    assert asyncio.run(add()) == "42"
    assert servers.provider.counts["refresh"] == counts["refresh"] + 1
    # Expired by the server while the client still believes it valid: a 401, then a refresh.
    servers.provider.expire_access_tokens()
    assert asyncio.run(add()) == "42"
    assert servers.provider.counts["refresh"] == counts["refresh"] + 2
    assert servers.provider.counts["authorize"] == counts["authorize"]  # no new login


def test_revoked_refresh_token_says_run_login(
    servers: oauth_server.OAuthServers, home: Path, tmp_path: Path
) -> None:
    from codegen.runtime.config import load_config
    from codegen.runtime.direct import DirectTransport
    from codegen.runtime.errors import AuthError

    config = notes_config(tmp_path, servers.mcp_url)
    assert login(config, "notes")[0] == 0
    servers.provider.revoke_refresh_tokens()
    servers.provider.expire_access_tokens()

    async def call() -> None:
        transport = DirectTransport(load_config(config), timeout=10)
        try:
            await transport.call_tool("notes", "add", {"a": 1, "b": 1})
        finally:
            await transport.aclose()

    with pytest.raises(AuthError, match=r"run `mcp-codegen login notes`") as raised:
        asyncio.run(call())
    assert raised.value.login and raised.value.server == "notes"
    # The dead tokens are dropped, and every command says the same.
    assert "valid until" not in cli("login", "--list").stdout
    built = cli("build", "--config", str(config), "--out", str(tmp_path / "pkg"))
    assert built.returncode == 1 and "run `mcp-codegen login notes`" in built.stderr


def test_ci_mode_never_listens_waits_or_logs_a_token(
    servers: oauth_server.OAuthServers,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a login: an error at once, no listener, no browser; --keep-going leaves it out."""
    import webbrowser

    from codegen.auth.login import CallbackListener
    from codegen.build import build_package
    from codegen.diagnostics import BuildError
    from codegen.render import PackageOptions

    def forbidden(*args: object, **kwargs: object) -> Any:
        raise AssertionError("a non-interactive build must not start a login")

    monkeypatch.setattr(CallbackListener, "start", forbidden)
    monkeypatch.setattr(webbrowser, "open", forbidden)
    monkeypatch.setattr(asyncio, "start_server", forbidden)

    config = write_config(
        tmp_path / "mcp.json",
        {"notes": {"url": servers.mcp_url}, "toolbox": server_entry("toolbox.py")},
    )
    with pytest.raises(BuildError) as raised:
        build_package(options=PackageOptions(name="ci"), out=tmp_path / "ci", config_path=config)
    assert "needs a login: run `mcp-codegen login notes`" in str(raised.value.diagnostics.errors[0])
    report = build_package(
        options=PackageOptions(name="ci"),
        out=tmp_path / "ci",
        config_path=config,
        keep_going=True,
    )
    assert report.failed_servers == ["notes"] and report.modules > 0

    # CI with a pre-issued token ($NOTES_TOKEN) and with the client-credentials grant.
    token = servers.provider.issue("ci", [oauth_server.SCOPE], subject="ci-bot")
    servers.provider.confidential["ci-client"] = "cc-secret-" + "x" * 16
    monkeypatch.setenv("NOTES_TOKEN", token)
    monkeypatch.setenv("CC_SECRET", servers.provider.confidential["ci-client"])
    config = write_config(
        tmp_path / "ci.json",
        {
            "by_token": {"url": servers.mcp_url, "oauth": {"token_env": "NOTES_TOKEN"}},
            "by_client": {
                "url": servers.mcp_url,
                "oauth": {
                    "grant": "client_credentials",
                    "client_id": "ci-client",
                    "client_secret": "${CC_SECRET}",
                    "scopes": [oauth_server.SCOPE],
                },
            },
        },
    )
    caplog.set_level(logging.DEBUG)
    report = build_package(
        options=PackageOptions(name="ci_tokens"), out=tmp_path / "tokens", config_path=config
    )
    assert report.modules == 4 and servers.provider.counts["client_credentials"] >= 1
    assert not stored(home)  # client-credentials tokens stay in memory
    issued = [
        t for t in servers.provider.access if servers.provider.access[t].client_id == "ci-client"
    ]
    for secret in [token, servers.provider.confidential["ci-client"], *issued]:
        assert secret not in caplog.text
        for path in (tmp_path / "tokens").rglob("*"):
            assert not path.is_file() or secret.encode() not in path.read_bytes(), path

    # A refused pre-issued token is named by its variable, not shown.
    monkeypatch.setenv("NOTES_TOKEN", "not-a-token-" + "y" * 20)
    one = write_config(
        tmp_path / "bad.json",
        {"notes": {"url": servers.mcp_url, "oauth": {"token_env": "NOTES_TOKEN"}}},
    )
    with pytest.raises(BuildError) as raised:
        build_package(options=PackageOptions(name="bad"), out=tmp_path / "bad", config_path=one)
    message = str(raised.value.diagnostics.errors[0])
    assert "refused the token in $NOTES_TOKEN" in message and "y" * 20 not in message


def test_oauth_config_mistakes_name_the_field(tmp_path: Path) -> None:
    from codegen.runtime.config import parse_config
    from codegen.runtime.errors import ConfigError

    cases = {
        "scopes": ({"scopes": 3}, "field 'oauth.scopes'"),
        "grant": ({"grant": "password"}, "field 'oauth.grant'"),
        "cc": ({"grant": "client_credentials"}, "needs oauth.client_id and oauth.client_secret"),
        "env": ({"token_env": "${TOKEN}"}, "field 'oauth.token_env'"),
        "key": ({"secret": "x"}, "field 'oauth.secret'"),
        "port": ({"callback_port": 70000}, "field 'oauth.callback_port'"),
    }
    for oauth, expected in cases.values():
        data = {"mcpServers": {"s": {"url": "https://example.org/mcp", "oauth": oauth}}}
        with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
            parse_config(data)
    data = {"mcpServers": {"s": {"url": "https://x/mcp", "oauth": {"scopes": "a b"}}}}
    server = parse_config(data).servers[0]
    assert server.resolve().oauth.scopes == ("a", "b")  # type: ignore[union-attr]
    static = {
        "mcpServers": {"s": {"url": "https://x/mcp", "headers": {"Authorization": "Bearer t"}}}
    }
    assert parse_config(static).servers[0].resolve().oauth is None  # type: ignore[union-attr]


def test_login_errors_are_one_line(tmp_path: Path, home: Path) -> None:
    from click.testing import CliRunner

    from codegen.cli import main

    config = write_config(tmp_path / "mcp.json", {"toolbox": server_entry("toolbox.py")})
    runner = CliRunner()
    done = runner.invoke(main, ["login", "toolbox", "--config", str(config)])
    assert done.exit_code == EXIT_CODES["config"]
    assert done.output.strip().endswith(
        "server 'toolbox' is a stdio server; login is for HTTP servers (url)"
    )
    done = runner.invoke(main, ["login", "nope", "--config", str(config)])
    assert done.exit_code == EXIT_CODES["config"] and "no server 'nope'" in done.output
    assert runner.invoke(main, ["login", "--list"]).output.strip() == "no stored logins"


def test_login_failures_exit_with_their_reason(
    servers: oauth_server.OAuthServers, home: Path, tmp_path: Path
) -> None:
    """A browser that never comes back is `auth` (7), asked once; an unreachable server is
    `servers` (1); each one line, without a traceback."""
    import socket

    from click.testing import CliRunner

    from codegen.cli import main

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config = write_config(
        tmp_path / "mcp.json",
        {"notes": {"url": servers.mcp_url}, "gone": {"url": f"http://127.0.0.1:{closed}/mcp"}},
    )
    runner = CliRunner()
    base = ["--config", str(config), "--no-browser", "--timeout", "1"]
    waited = runner.invoke(main, ["login", "notes", *base])
    assert waited.exit_code == EXIT_CODES["auth"] == 7, waited.output
    assert waited.output.count("waiting for the browser") == 1, waited.output
    assert waited.output.strip().splitlines()[-1] == (
        "error: login to 'notes' failed: server 'notes': OAuth failed: no answer from the "
        "browser within 1s (--timeout)"
    )
    gone = runner.invoke(main, ["login", "gone", *base])
    assert gone.exit_code == EXIT_CODES["servers"] == 1, gone.output
    assert gone.output.strip().startswith(
        f"error: login to 'gone' failed: http://127.0.0.1:{closed}"
    )
    assert "Traceback" not in waited.output + gone.output
    for path in stored(home):  # the registered client may be kept for the next try; no token
        assert not json.loads(path.read_text(encoding="utf-8")).get("tokens")


def test_token_store_files(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "cfg" / "mcp-codegen" / "oauth")
    url = "https://example.org/mcp"
    store.save(url, {"tokens": {"access_token": "a" * 20, "refresh_token": "r"}, "expires_at": 1.0})
    path = store.path_for(url)
    assert url not in path.name and stat.S_IMODE(path.stat().st_mode) == 0o600
    (info,) = store.logins()
    assert info.server_url == url and info.refreshable and info.state() == "expired, will refresh"
    assert "a" * 20 not in repr(info)
    # Another URL's file, or a link, is not read as this URL's login.
    other = store.path_for("https://other.example/mcp")
    other.symlink_to(path)
    assert store.load("https://other.example/mcp") == {}
    assert store.delete(url) and not path.exists()


def test_serve_calls_an_oauth_server_from_the_sandbox(
    servers: oauth_server.OAuthServers, home: Path, tmp_path: Path
) -> None:
    """`serve` (stdio, real gVisor) reaches the OAuth server with the stored login."""
    from mcp import Client, StdioServerParameters

    config = notes_config(tmp_path, servers.mcp_url)
    assert login(config, "notes")[0] == 0
    out = tmp_path / "notes_pkg"
    assert (
        cli("build", "--config", str(config), "--name", "notes_pkg", "--out", str(out)).returncode
        == 0
    )
    serve = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codegen", "serve", "--config", str(config), "--package", str(out)],
        cwd=str(ROOT),
        env=dict(os.environ, XDG_CONFIG_HOME=str(home), TMPDIR="/tmp"),
    )
    code = "from servers.notes import add, whoami\nprint((await whoami()).result)\n(await add(a=40, b=2)).result"

    async def scenario() -> str:
        async with Client(serve) as client:
            result = await client.call_tool("execute_code", {"code": code})
            assert not result.is_error, result
            return str(result.content[0].text)  # type: ignore[union-attr]

    output = asyncio.run(scenario())
    assert "value: 42" in output and "alice/" in output
    for secret in secrets_of(home):
        assert secret not in output


def test_a_refresh_by_another_process_is_picked_up(
    servers: oauth_server.OAuthServers, home: Path, tmp_path: Path
) -> None:
    """Refresh tokens rotate: a client holding the old one uses what another stored."""
    from codegen.runtime.config import load_config
    from codegen.runtime.direct import open_client

    config = notes_config(tmp_path, servers.mcp_url)
    assert login(config, "notes")[0] == 0
    server = load_config(config).server("notes")

    async def scenario() -> None:
        async with open_client(server, timeout=10) as slow:  # holds the first tokens
            await slow.list_tools()
            servers.provider.expire_access_tokens()
            async with open_client(server, timeout=10) as quick:  # refreshes: new tokens stored
                assert (await quick.call_tool("add", {"a": 1, "b": 1})).content[0].text == "2"  # type: ignore[union-attr]
            # `slow`'s access token is expired too: it refreshes with the refresh token
            # that rotation killed, then finds the newer login in the store and goes on.
            result = await slow.call_tool("add", {"a": 2, "b": 2})
            assert result.content[0].text == "4"  # type: ignore[union-attr]

    asyncio.run(scenario())
    assert "valid until" in cli("login", "--list").stdout


def test_pre_registered_client_logs_in_on_its_callback_port(
    servers: oauth_server.OAuthServers, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`oauth.client_id`/`client_secret`/`callback_port`: no registration, the fixed redirect."""
    import socket

    from mcp.shared.auth import OAuthClientInformationFull

    with socket.socket() as probe:  # a port free now, as a registered redirect would name
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    secret = "pre-registered-" + "s" * 20
    servers.provider.clients["desk-app"] = OAuthClientInformationFull(
        client_id="desk-app",
        client_secret=secret,
        redirect_uris=[f"http://127.0.0.1:{port}/callback"],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="client_secret_basic",
        scope=oauth_server.SCOPE,
    )
    monkeypatch.setenv("DESK_SECRET", secret)
    oauth = {"client_id": "desk-app", "client_secret": "${DESK_SECRET}", "callback_port": port}
    config = notes_config(tmp_path, servers.mcp_url, oauth=oauth)
    registered = len(servers.provider.clients)
    code, stdout, stderr = login(config, "notes")
    assert code == 0 and "logged in to 'notes'" in stdout, stderr
    assert len(servers.provider.clients) == registered  # nothing registered dynamically
    assert f"waiting for the browser (up to 60s) on http://127.0.0.1:{port}/callback" in stderr
    record = json.loads(stored(home)[0].read_text(encoding="utf-8"))
    assert secret not in json.dumps(record)  # the configured secret stays in the environment
    token = record["tokens"]["access_token"]
    assert servers.provider.access[token].client_id == "desk-app"
