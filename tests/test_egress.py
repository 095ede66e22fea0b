"""The egress allowlist end to end: real gVisor, the host's proxy, local test servers.

The sandbox stays on `--network=none`; its code reaches the local HTTPS and HTTP
servers (on 127.0.0.1, under test host names the proxy's resolver reads from a
hosts file) only through the relay on its loopback and the proxy on the host.
Every connection, allowed or refused, is in the execution's result.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codegen.sandbox import ExecutionResult, Executor
from codegen.sandbox.egress.proxy import HOSTS_FILE_ENV, Resolver
from codegen.sandbox.policy import parse_sandbox_policy
from tests.netservers import BIG_BYTES, Servers, serving

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "generated" / "mcp_demo"
BANDWIDTH_KBPS = 8000  # 1 MB/s
NAMES = ["api.test", "plain.test", "private.test"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The HTTPS and HTTP test servers."""
    with serving(NAMES, tmp_path_factory.mktemp("certs")) as running:
        yield running


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The proxy's hosts file: the test names on loopback, one name on a private address."""
    path = tmp_path_factory.mktemp("hosts") / "hosts"
    path.write_text("127.0.0.1 api.test plain.test\n10.0.0.5 private.test\n", encoding="utf-8")
    return path


def allow_list(servers: Servers) -> list[str]:
    https, plain = servers.https_port, servers.http_port
    return [
        f"api.test:{https}",
        f"127.0.0.1:{https}",  # loopback must be listed as an address too
        f"private.test:{https}",  # listed, but resolves to a private address that is not
        f"http://plain.test:{plain}",
        f"http://127.0.0.1:{plain}",
    ]


@pytest.fixture(scope="module")
def executor(servers: Servers, hosts: Path, loop: asyncio.AbstractEventLoop) -> Iterator[Executor]:
    """One sandbox allowed to reach the test servers, through the proxy."""
    policy = parse_sandbox_policy(
        {
            "network": {"allow": allow_list(servers), "bandwidth_kbps": BANDWIDTH_KBPS},
            "check_code": "off",
        }
    )
    ex = Executor(GOLDEN, policy=policy, resolver=Resolver(hosts))
    loop.run_until_complete(ex.start())
    yield ex
    loop.run_until_complete(ex.aclose())


@pytest.fixture
def run(executor: Executor, loop: asyncio.AbstractEventLoop, servers: Servers) -> Any:
    """`run(code)`: execute with `ctx` (trusting the test certificate) and `get(url)` defined."""
    prelude = (
        "import ssl, urllib.request, urllib.error, socket, time\n"
        f"ctx = ssl.create_default_context(cadata={servers.pem!r})\n"
        "def get(url):\n"
        "    return urllib.request.urlopen(url, context=ctx, timeout=20).read()\n"
    )

    def execute(code: str) -> ExecutionResult:
        return loop.run_until_complete(executor.execute(prelude + code, timeout=60))

    return execute


def test_an_allowed_https_host_works_through_the_proxy(run: Any, servers: Servers) -> None:
    port = servers.https_port
    result = run(
        f"import os\nos.environ['HTTPS_PROXY'], get('https://api.test:{port}/hello').decode()"
    )
    assert result.error is None, result.error
    proxy, body = result.value
    assert proxy.startswith("http://127.0.0.1:")
    assert json.loads(body) == {"path": "/hello", "host": f"api.test:{port}"}
    (connection,) = result.connections
    assert (connection.host, connection.port, connection.kind) == ("api.test", port, "https")
    assert connection.allowed and connection.address == "127.0.0.1"
    assert connection.bytes_sent > 100 and connection.bytes_received > 100  # TLS both ways
    assert f"api.test:{port}/hello" in servers.requests


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("other.test", "other.test:{https} (HTTPS) is not in sandbox.network.allow"),
        (
            "private.test",
            "private.test resolves to 10.0.0.5 (private), an address sandbox.network.allow "
            "does not list",
        ),
        ("127.0.0.2", "127.0.0.2:{https} is an address that sandbox.network.allow does not list"),
    ],
)
def test_refused_hosts_are_refused_and_logged(
    run: Any, servers: Servers, target: str, reason: str
) -> None:
    port = servers.https_port
    before = len(servers.requests)
    result = run(f"get('https://{target}:{port}/secret')")
    assert result.error is not None and result.error.type == "URLError"
    expected = reason.format(https=port)
    assert (
        f"Tunnel connection failed: 403 Refused by the sandbox: {expected}" in result.error.message
    )
    (connection,) = result.connections
    assert (connection.host, connection.port, connection.allowed) == (target, port, False)
    assert connection.reason == expected and connection.bytes_received == 0
    assert len(servers.requests) == before


def test_a_connection_without_the_proxy_is_refused_and_logged(run: Any, servers: Servers) -> None:
    code = (
        """
errors = []
for address in (("192.0.2.1", 443), ("api.test", %d)):
    try:
        socket.create_connection(address, timeout=5)
    except OSError as exc:
        errors.append(type(exc).__name__)
errors
"""
        % servers.https_port
    )
    before = len(servers.requests)
    result = run(code)
    assert result.error is None, result.error
    assert len(result.value) == 2  # no route, and no resolver in the sandbox
    direct = [(c.host, c.port, c.kind, c.allowed) for c in result.connections]
    assert direct == [
        ("192.0.2.1", 443, "direct", False),
        ("api.test", servers.https_port, "direct", False),
    ]
    assert all("no network" in (c.reason or "") for c in result.connections)
    assert len(servers.requests) == before


def test_plain_http_only_where_listed(run: Any, servers: Servers) -> None:
    result = run(
        f"urllib.request.urlopen('http://plain.test:{servers.http_port}/p?q=1').read().decode()"
    )
    assert result.error is None, result.error
    assert json.loads(result.value) == {
        "path": "/p?q=1",
        "host": f"plain.test:{servers.http_port}",
    }
    assert [(c.kind, c.allowed) for c in result.connections] == [("http", True)]
    refused = run(f"urllib.request.urlopen('http://api.test:{servers.https_port}/p').read()")
    assert refused.error is not None and "403" in refused.error.message
    (connection,) = refused.connections
    assert connection.kind == "http" and not connection.allowed
    assert (
        connection.reason
        == f"plain HTTP to api.test:{servers.https_port} is not allowed (https only)"
    )


def test_the_bandwidth_cap_holds(run: Any, servers: Servers) -> None:
    result = run(
        f"started = time.monotonic()\n"
        f"size = len(get('https://api.test:{servers.https_port}/big'))\n"
        "size, time.monotonic() - started"
    )
    assert result.error is None, result.error
    size, seconds = result.value
    assert size == BIG_BYTES
    # A lower bound (a slow machine only makes it longer): 1 MB at 1 MB/s, less the burst.
    assert seconds >= 0.8 * BIG_BYTES / (BANDWIDTH_KBPS * 1000 / 8)
    (connection,) = result.connections
    assert connection.bytes_received > BIG_BYTES


def test_exec_allows_hosts_from_the_command_line(
    tmp_path: Path, servers: Servers, hosts: Path
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {},
                "sandbox": {"network": {"allow": [f"api.test:{servers.https_port}"]}},
            }
        ),
        encoding="utf-8",
    )
    code = (
        "import ssl, urllib.request\n"
        f"ctx = ssl.create_default_context(cadata={servers.pem!r})\n"
        f"urllib.request.urlopen('https://api.test:{servers.https_port}/cli', context=ctx).status"
    )
    done = subprocess.run(
        [sys.executable, "-m", "codegen", "exec", "-c", code, "--config", str(config),
         "--package", str(GOLDEN), "--allow", f"127.0.0.1:{servers.https_port}", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, **{HOSTS_FILE_ENV: str(hosts)}),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["value"] == 200
    assert [(c["host"], c["allowed"]) for c in result["connections"]] == [("api.test", True)]
