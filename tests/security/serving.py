"""Real `serve` over HTTP for the attack tests (issues 10a and 10b): the demo servers, real gVisor.

Not a conftest (the package is shared with other suites): the test modules import
the fixtures they use from here. `served` starts one `serve --transport http`
per test module, with its own TMPDIR (its sandboxes, `/state` mounts and
sockets), its own shared skills directory and its own mail log, so each attack
can read back what the demo `mail` server received; stopping it fails the module
if the server died under the attacks. `crm_values` are the demo CRM's real
personal data, which no answer of `serve` may show.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from codegen.build import build_package
from codegen.render import PackageOptions
from codegen.snapshot import SNAPSHOT_FILENAME, Snapshot
from tests.conftest import serve_url

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "demo" / "mcp.json"
GOLDEN = ROOT / "generated" / "mcp_demo"


@dataclass
class Served:
    """One running `serve` and what the tests read back from it."""

    url: str
    process: subprocess.Popen[str]
    tmp: Path
    """Its TMPDIR: sandbox directories and `/state` mounts are under it."""
    skills: Path
    """Its shared skills directory."""
    mail_log: Path
    package: Path

    def mails(self) -> list[dict[str, Any]]:
        """Every message the demo mail server recorded."""
        if not self.mail_log.exists():
            return []
        lines = self.mail_log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def alive(self) -> bool:
        """Whether the serve process still runs."""
        return self.process.poll() is None

    def state_mounts(self) -> list[tuple[str, str]]:
        """(mount point, options) of the `/state` tmpfs mounts of this serve's sessions."""
        found = []
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[1].startswith(str(self.tmp)):
                found.append((fields[1], fields[3]))
        return found


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo package, rendered from the golden snapshot (no server is contacted)."""
    out = tmp_path_factory.mktemp("security") / "mcp_demo"
    snapshot = Snapshot.read(GOLDEN / SNAPSHOT_FILENAME)
    build_package(options=PackageOptions(name="mcp_demo"), out=out, snapshot=snapshot)
    return out


def start_serve(package: Path, *extra: str, config: Path = CONFIG) -> Served:
    """Start `serve --transport http --port 0` for `config` (the demo's); wait for its URL."""
    # Short: the sandbox's sockets live under TMPDIR, and a socket path has at most 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="s10b-", dir="/tmp"))
    skills = tmp / "skills"
    mail_log = tmp / "mail.jsonl"
    command = [
        sys.executable,
        "-m",
        "codegen.serve",
        "--config",
        str(config),
        "--package",
        str(package),
        "--skills",
        str(skills),
        "--transport",
        "http",
        "--port",
        "0",
        *extra,
    ]
    env = dict(os.environ, TMPDIR=str(tmp), MAIL_LOG_PATH=str(mail_log))
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env)
    url = serve_url(process)
    return Served(url, process, tmp, skills, mail_log, package)


def stop_serve(served: Served) -> None:
    """Stop `serve` (SIGINT, as Ctrl-C) and check it lived until then, and left no sandbox
    and no mount behind."""
    alive = served.alive()
    served.process.send_signal(signal.SIGINT)
    try:
        served.process.wait(timeout=30)
    finally:
        served.process.kill()
    left = list(served.tmp.glob("mcp-codegen-sandbox-*"))
    mounts = served.state_mounts()
    shutil.rmtree(served.tmp, ignore_errors=True)
    assert alive, "serve died during the attacks"
    assert not mounts, f"a /state mount outlived the server: {mounts}"
    assert not left, "a sandbox outlived the server"


@pytest.fixture(scope="module")
def served(package: Path) -> Iterator[Served]:
    """`serve` over HTTP with the default limits, for one test module."""
    running = start_serve(package)
    try:
        yield running
    finally:
        stop_serve(running)


def text(result: types.CallToolResult) -> str:
    """The text of a tool result."""
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def call(client: Client, tool: str, **arguments: Any) -> tuple[str, bool]:
    """(text, is_error) of one tool call."""
    result = await client.call_tool(tool, arguments)
    return text(result), bool(result.is_error)


async def execute(client: Client, code: str, **arguments: Any) -> tuple[str, bool]:
    """(text, is_error) of one `execute_code`."""
    return await call(client, "execute_code", code=code, **arguments)


async def latencies(client: Client, seconds: float, gap: float = 0.05) -> list[float]:
    """Seconds each cheap call (`read_module`) of `client` took, for about `seconds`."""
    samples: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        output, error = await call(client, "read_module", path="servers.time.get_current_time")
        samples.append(time.perf_counter() - started)
        assert not error and "async def get_current_time(" in output
        await asyncio.sleep(gap)
    return samples


def p95(samples: list[float]) -> float:
    """The 95th percentile of `samples`."""
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


async def bystander_stays_responsive(
    other: Client, attack: Callable[[], Awaitable[Any]], *, idle_seconds: float = 2.0
) -> Any:
    """Run `attack` while `other` keeps calling; assert its p95 stays within a bound of its
    own idle p95 measured just before, in the same run. Returns what `attack` returned.

    The bound (3x the idle p95, and at least 0.5 s on this shared 2-core machine) is
    far below the stalls it guards against (seconds to minutes).
    """
    idle = await latencies(other, idle_seconds)
    task = asyncio.ensure_future(attack())
    busy: list[float] = []
    while not task.done():
        busy += await latencies(other, 0.5)
    outcome = await task
    bound = max(3 * p95(idle), 0.5)
    assert busy, "the attack ended before the other session could call"
    assert p95(busy) < bound, (
        f"the other session's p95 was {p95(busy):.3f} s during the attack, over {bound:.3f} s "
        f"(its idle p95: {p95(idle):.3f} s)"
    )
    return outcome


class RawSession:
    """One MCP session over plain HTTP requests, for what the SDK's client never does
    (leave answers unread, drop a request's stream)."""

    def __init__(self, http: Any, url: str):
        self.http = http
        self.url = url
        self.session_id = ""
        self.protocol = "2025-06-18"
        self.ids = iter(range(1, 1 << 30))

    def headers(self) -> dict[str, str]:
        headers = {"accept": "application/json, text/event-stream"}
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
            headers["mcp-protocol-version"] = self.protocol
        return headers

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": params}

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool, "arguments": arguments})

    async def open(self) -> int:
        """Initialize; the HTTP status of the initialize request."""
        init = self.request(
            "initialize",
            {
                "protocolVersion": self.protocol,
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        )
        response = await self.http.post(self.url, json=init, headers=self.headers())
        if response.status_code != 200:
            return int(response.status_code)
        self.session_id = response.headers["mcp-session-id"]
        notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        done = await self.http.post(self.url, json=notice, headers=self.headers())
        assert done.status_code == 202, done.text
        return 200

    async def send(self, message: dict[str, Any]) -> tuple[int, str]:
        """POST one request and read its whole answer: (status, body)."""
        response = await self.http.post(self.url, json=message, headers=self.headers())
        return int(response.status_code), response.text

    async def close(self) -> None:
        if self.session_id:
            await self.http.delete(self.url, headers=self.headers())


def sandbox_dirs(served: Served) -> list[Path]:
    """The sandbox directories of `served`'s live sessions."""
    return list(served.tmp.glob("mcp-codegen-sandbox-*"))


async def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `check` until it holds, at most `seconds`."""
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def crm_values() -> list[str]:
    """Every name, email and phone number of the demo CRM (its 10,000 customers)."""
    crm = sys.modules.get("demo_crm")
    if crm is None:
        spec = importlib.util.spec_from_file_location("demo_crm", ROOT / "demo/servers/crm.py")
        assert spec is not None and spec.loader is not None
        crm = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = crm  # pydantic resolves the module's annotations through it
        spec.loader.exec_module(crm)
    return [v for c in crm.DB.values() for v in (c.name, c.email, c.phone)]


def json_line(text: str) -> object:
    """The JSON document a piece of agent code printed on a line of its own."""
    for line in text.splitlines():
        if line.startswith(("{", "[")):
            return json.loads(line)
    raise AssertionError(f"no JSON line in: {text[:2000]}")
