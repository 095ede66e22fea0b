"""Shared fixtures: real servers from tests/servers and the demo, and building packages from them."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codegen.build import BuildReport, build_package
from codegen.render import PackageOptions
from codegen.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
SERVERS = Path(__file__).resolve().parent / "servers"
DEMO_CONFIG = ROOT / "demo" / "mcp.json"
GOLDEN = ROOT / "generated" / "mcp_demo"
SHARED_DATA = ROOT.parent / "shared" / "data"


def server_entry(script: str, **env: str) -> dict[str, object]:
    """An mcp.json entry that starts tests/servers/<script> with this interpreter."""
    entry: dict[str, object] = {"command": sys.executable, "args": [str(SERVERS / script)]}
    if env:
        entry["env"] = env
    return entry


def write_config(path: Path, servers: dict[str, dict[str, object]]) -> Path:
    """Write an mcp.json with `servers` and return its path."""
    path.write_text(json.dumps({"mcpServers": servers}, indent=2), encoding="utf-8")
    return path


def serve_url(process: subprocess.Popen[str], seconds: float = 60) -> str:
    """The URL `serve --transport http` reports on its stderr (a pipe, text mode).

    Raises:
        AssertionError: none came within `seconds`, or serve ended first; with what it printed.
    """
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError("serve did not report its URL:\n" + "".join(seen))


def build(out: Path, name: str = "pkg", **kwargs: object) -> BuildReport:
    """Build a package into `out` with the Python API."""
    return build_package(options=PackageOptions(name=name), out=out, **kwargs)  # type: ignore[arg-type]


def run_python(code: str, *paths: Path, env: dict[str, str] | None = None) -> str:
    """Run `code` in a fresh interpreter with `paths` on sys.path; return its stdout."""
    import os

    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, paths)), **(env or {}))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def toolbox_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The toolbox server built once: (config path, package directory)."""
    base = tmp_path_factory.mktemp("toolbox")
    config = write_config(
        base / "mcp.json",
        {"toolbox": server_entry("toolbox.py", TOOLBOX_SECRET="${TOOLBOX_TEST_SECRET:-}")},
    )
    out = base / "out"
    build(out, name="tb", config_path=config)
    yield config, out


CRM = ROOT / "demo" / "servers" / "crm.py"


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A package built from the demo CRM server, and its config (one per test module)."""
    assert CRM.is_file(), f"{CRM} is missing"
    base = tmp_path_factory.mktemp("crm")
    config = write_config(
        base / "mcp.json", {"crm": {"command": sys.executable, "args": [str(CRM)]}}
    )
    build(base / "pkg", name="mcp_demo", config_path=config)
    return {"base": base, "config": config, "package": base / "pkg"}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the module's executors."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="session")
def demo_snapshot() -> Snapshot:
    """The committed snapshot of the demo servers."""
    return Snapshot.read(GOLDEN / "mcp-snapshot.json")
