"""Attacks on a real `serve` over HTTP: the server process, its URL, the CRM's real values.

Each test module gets its own `serve --transport http` (the demo config and servers,
real gVisor sandboxes); the fixture fails the module if the server died under it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mcp_types as types
import pytest
from mcp import Client

from codegen.build import build_package
from codegen.render import PackageOptions
from codegen.snapshot import SNAPSHOT_FILENAME, Snapshot

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "demo" / "mcp.json"
GOLDEN = ROOT / "generated" / "mcp_demo"


@dataclass
class Serve:
    """A running `serve`: its URL and process."""

    url: str
    process: subprocess.Popen[str]
    tmp: Path

    def alive(self) -> bool:
        return self.process.poll() is None


@pytest.fixture(scope="session")
def demo_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo package, rendered from the golden snapshot (no server is contacted)."""
    out = tmp_path_factory.mktemp("security") / "mcp_demo"
    snapshot = Snapshot.read(GOLDEN / SNAPSHOT_FILENAME)
    build_package(options=PackageOptions(name="mcp_demo"), out=out, snapshot=snapshot)
    return out


def start_serve(package: Path, config: Path = DEMO_CONFIG) -> Serve:
    """`serve --transport http --port 0` with its sandboxes under a TMPDIR of its own."""
    tmp = Path(tempfile.mkdtemp(prefix="sec-", dir="/tmp"))  # short: socket paths
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "codegen.serve", "--config", str(config)),
            *("--package", str(package), "--transport", "http", "--port", "0"),
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TMPDIR=str(tmp)),
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return Serve(found.group(1), process, tmp)
    process.kill()
    raise AssertionError("serve did not report its URL")


def stop_serve(serve: Serve) -> None:
    """SIGINT, as a user would; the server must end cleanly and leave no sandbox."""
    alive = serve.alive()
    serve.process.send_signal(signal.SIGINT)
    try:
        serve.process.wait(timeout=30)
    finally:
        serve.process.kill()
    left = list(serve.tmp.glob("mcp-codegen-sandbox-*"))
    shutil.rmtree(serve.tmp, ignore_errors=True)
    assert alive, "serve died during the attacks"
    assert not left, "a sandbox outlived the server"


@pytest.fixture(scope="module")
def serve(demo_package: Path) -> Iterator[Serve]:
    """A `serve` of the demo config for one test module."""
    running = start_serve(demo_package)
    try:
        yield running
    finally:
        stop_serve(running)


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


async def execute(client: Client, code: str, timeout: float = 60) -> tuple[str, bool]:
    """(text, is_error) of one `execute_code`."""
    result = await client.call_tool("execute_code", {"code": code, "timeout": timeout})
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text, bool(result.is_error)


def json_line(text: str) -> object:
    """The JSON document a piece of agent code printed on a line of its own."""
    for line in text.splitlines():
        if line.startswith(("{", "[")):
            return json.loads(line)
    raise AssertionError(f"no JSON line in: {text[:2000]}")
