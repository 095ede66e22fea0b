"""Many servers, and servers that misbehave: every one is built or named, and nothing outlives a command.

Real stdio servers throughout: `tests/servers/recorded.py` (an SDK server listing
the recorded tools of one toucan server) for the healthy ones, small scripts for
the ones that ignore EOF and SIGTERM, hang after `initialize`, or fork children
that hold their pipes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from codegen.diagnostics import BuildError
from codegen.introspect import STOP_BOUND
from codegen.runtime.config import parse_config
from codegen.runtime.direct import DirectTransport
from codegen.runtime.errors import TransportError
from codegen.snapshot import Snapshot
from codegen.write import format_python
from tests.conftest import ROOT, build, run_python, server_entry, write_config
from tests.fleet import alive, fleet_servers, marked_processes, recorded_entry, recorded_servers

DEADLINE = 4.0
"""The misbehaving servers' own deadline (their `timeout` in mcp.json)."""

SLACK = 20.0
"""On top of a deadline and STOP_BOUND: interpreter start and a loaded machine. A hang is minutes."""


def codegen(*args: str, timeout: float, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run `python -m codegen ARGS` to its end (or fail the test when it does not end in time)."""
    return subprocess.run(
        [sys.executable, "-m", "codegen", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def misbehaving(pid_dir: Path) -> dict[str, dict[str, object]]:
    """The servers that never list their tools, each with the short deadline and $PID_DIR."""
    env = {"PID_DIR": str(pid_dir)}
    entries = {
        "stubborn": server_entry("stubborn.py", **env),
        "listless": server_entry("listless.py", **env),
        "forking": server_entry("forking.py", **env),
        "launcher": server_entry("forking.py", **env),
    }
    entries["forking"]["args"] = [*entries["forking"]["args"], "hang"]  # type: ignore[list-item]
    entries["launcher"]["args"] = [*entries["launcher"]["args"], "exit"]  # type: ignore[list-item]
    return {name: {**entry, "timeout": DEADLINE} for name, entry in entries.items()}


def survivors(pid_dir: Path) -> list[str]:
    """The processes of the misbehaving servers (each wrote a file named role-pid) still alive."""
    return [path.name for path in pid_dir.iterdir() if alive(int(path.name.rsplit("-", 1)[1]))]


def test_twenty_servers_with_default_settings_are_all_built(tmp_path: Path) -> None:
    mark = str(tmp_path)
    servers = fleet_servers(20, mark=mark)
    config = write_config(tmp_path / "mcp.json", servers)
    report = build(tmp_path / "out", name="fleet", config_path=config)
    counts = recorded_servers()
    assert report.failed_servers == [] and report.left_out == {}
    assert {server.name: len(server.tools) for server in report.snapshot.servers} == {
        name: counts[name] for name in servers
    }
    assert report.modules == sum(counts[name] for name in servers)
    assert marked_processes(mark) == []


@pytest.mark.slow
def test_a_hundred_servers_with_default_settings_are_all_built(tmp_path: Path) -> None:
    mark = str(tmp_path)
    servers = fleet_servers(100, mark=mark)
    config = write_config(tmp_path / "mcp.json", servers)
    done = codegen(
        "build", "--config", str(config), "--package", str(tmp_path / "out"), "--name", "fleet",
        "--json", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    counts = recorded_servers()
    assert report["servers"] == 100 and report["failed_servers"] == []
    assert report["tools"] == report["modules"] == sum(counts[name] for name in servers)
    assert marked_processes(mark) == []


def test_misbehaving_servers_are_named_by_their_deadline_and_killed(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    bad = misbehaving(pids)
    healthy = fleet_servers(2, mark=str(tmp_path))
    config = write_config(tmp_path / "mcp.json", {**healthy, **bad})
    limit = DEADLINE + STOP_BOUND + SLACK

    strict = codegen(
        "build", "--config", str(config), "--package", str(tmp_path / "strict"), timeout=limit
    )
    assert strict.returncode == 1 and not (tmp_path / "strict").exists()
    # Progress: servers done / running / queued, the last line when all are done.
    assert "[mcp-codegen] servers: 6 done (4 failed), 0 running, 0 queued" in strict.stderr
    for name in bad:
        assert f"error: {name}: " in strict.stderr
    assert survivors(pids) == [] and marked_processes(str(tmp_path)) == []

    started = time.perf_counter()
    done = codegen(
        "build", "--config", str(config), "--package", str(tmp_path / "out"), "--keep-going",
        "--json", timeout=limit,
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert sorted(report["failed_servers"]) == sorted(bad)
    assert report["servers"] == 2 and sorted(report["left_out"]) == sorted(bad)
    errors = {error["server"]: error["message"] for error in report["errors"]}
    assert errors["stubborn"].startswith(f"did not answer within {DEADLINE:g}s")
    assert "stubborn: ignoring you" in errors["stubborn"]  # the tail of its stderr
    assert errors["listless"].startswith(
        f"started, but did not list its tools within {DEADLINE:g}s"
    )
    assert errors["forking"].startswith(f"did not answer within {DEADLINE:g}s")
    assert (
        "Connection closed" in errors["launcher"]
    )  # its first process exited, its children lingered
    # All at once (4 jobs per CPU), so one deadline and one stop, not four.
    assert report["seconds"]["introspect"] < DEADLINE + STOP_BOUND + SLACK / 2
    assert time.perf_counter() - started < limit
    assert survivors(pids) == [] and marked_processes(str(tmp_path)) == []
    # Each of those processes did write its pid: the check above saw them all.
    assert {path.name.split("-")[0] for path in pids.iterdir()} == {
        "stubborn",
        "listless",
        "forking",
    }
    # The children that left the group: two servers fork one each, in each of the two builds.
    assert len(list(pids.glob("forking-daemon-*"))) == 4


def test_check_ends_and_names_a_server_that_never_answers(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    healthy = fleet_servers(1)
    build(tmp_path / "out", name="fleet", config_path=write_config(tmp_path / "ok.json", healthy))
    stubborn = {"stubborn": misbehaving(pids)["stubborn"]}
    config = write_config(tmp_path / "mcp.json", {**healthy, **stubborn})
    done = codegen(
        "check", "--config", str(config), "--package", str(tmp_path / "out"), "--jobs", "2",
        timeout=DEADLINE + STOP_BOUND + SLACK,
    )  # fmt: skip
    assert done.returncode == 1  # servers: a server failed (the unified exit table)
    assert f"stubborn: did not answer within {DEADLINE:g}s" in done.stdout + done.stderr
    assert survivors(pids) == []


def test_keep_going_with_nothing_built_is_an_error(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "mcp.json", {"a": server_entry("crash.py"), "b": server_entry("crash.py")}
    )
    done = codegen(
        "build", "--config", str(config), "--package", str(tmp_path / "out"), "--keep-going",
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "none of the 2 servers could be listed; nothing was written" in done.stderr
    assert "error: a: " in done.stderr and "error: b: " in done.stderr
    assert not (tmp_path / "out").exists()


def _tool(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "inputSchema": {"type": "object", "properties": properties}}


REMOTE = {"a": {"$ref": "https://attacker.invalid/x.json"}}  # a schema models cannot be made of


def test_a_server_with_no_usable_tool_is_left_out_and_named(tmp_path: Path) -> None:
    snapshot = Snapshot.model_validate(
        {
            "servers": [
                {"name": "good", "tools": [_tool("search", {"q": {"type": "string"}})]},
                {"name": "broken", "tools": [_tool("one", REMOTE), _tool("two", REMOTE)]},
                {"name": "empty", "tools": []},
            ]
        }
    )
    with pytest.raises(BuildError):
        build(tmp_path / "strict", name="pkg", snapshot=snapshot)
    report = build(tmp_path / "out", name="pkg", snapshot=snapshot, keep_going=True)
    assert report.left_out == {
        "broken": "none of its 2 tools could be generated",
        "empty": "it offers no tools, resources or prompts",
    }
    assert sorted(path.name for path in (tmp_path / "out/pkg/servers").iterdir()) == [
        "__init__.py",
        "good",
    ]
    assert "good" in run_python("import pkg.servers as s; print(s.__doc__)", tmp_path / "out")

    snapshot.write(tmp_path / "snapshot.json")
    done = codegen(
        "build", "--from-snapshot", str(tmp_path / "snapshot.json"), "--package",
        str(tmp_path / "cli"), "--name", "pkg", "--keep-going", timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 tool of 1 server" in done.stdout and "left out 2 servers:" in done.stdout
    assert "  broken: none of its 2 tools could be generated" in done.stdout
    assert "  empty: it offers no tools, resources or prompts" in done.stdout

    nothing = Snapshot.model_validate({"servers": [snapshot.model_dump()["servers"][1]]})
    with pytest.raises(BuildError, match="no tool could be generated"):
        build(tmp_path / "none", name="pkg", snapshot=nothing, keep_going=True)


def test_a_formatter_failure_shows_the_formatters_own_message(tmp_path: Path) -> None:
    broken = tmp_path / "pkg" / "servers" / "s" / "__init__.py"
    broken.parent.mkdir(parents=True)
    broken.write_text("if TYPE_CHECKING:\n\n__all__ = []\n", encoding="utf-8")
    with pytest.raises(BuildError) as caught:
        format_python([broken], root=tmp_path)
    message = str(caught.value)
    assert "Expected an indented block after `if` statement" in message
    assert "pkg/servers/s/__init__.py:3" in message and str(tmp_path) not in message


async def appears(path: Path, within: float = 60.0) -> None:
    """Wait until `path` exists (a server wrote it); fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not path.is_file():
        assert time.monotonic() < deadline, f"{path} did not appear"
        await asyncio.sleep(0.01)
    while not path.read_text(encoding="utf-8"):  # created, not yet written
        await asyncio.sleep(0.01)


def _pid(result: dict[str, Any]) -> int:
    return int(json.loads(result["content"][0]["text"])["pid"])


def test_direct_transport_restarts_a_server_that_died(tmp_path: Path) -> None:
    mark = str(tmp_path)
    pid_file = tmp_path / "a.pid"
    config = parse_config(
        {
            "mcpServers": {
                "a": recorded_entry("exa", RECORDED_PID_FILE=str(pid_file), FLEET_MARK=mark),
                "b": recorded_entry("exa", FLEET_MARK=mark),
            }
        }
    )

    async def scenario() -> None:
        transport = DirectTransport(config)
        try:
            assert await transport.preconnect() == {}
            assert pid_file.is_file()  # started before any call
            first = _pid(await transport.call_tool("a", "web_search_exa", {"query": "x"}))
            other = _pid(await transport.call_tool("b", "web_search_exa", {"query": "x"}))

            os.kill(first, signal.SIGKILL)  # between two calls
            while alive(first):
                await asyncio.sleep(0.01)
            second = _pid(await transport.call_tool("a", "web_search_exa", {"query": "y"}))
            assert second != first

            # Killed while a call is in flight: that call fails, saying so; the next one works.
            busy = Path(f"{pid_file}.busy")
            call = asyncio.ensure_future(
                transport.call_tool("a", "web_search_exa", {"query": "sleep:30"})
            )
            await appears(busy)
            os.kill(second, signal.SIGKILL)
            with pytest.raises(TransportError) as caught:
                await asyncio.wait_for(call, 20)
            assert str(caught.value).startswith(
                "server 'a' died during the call to 'web_search_exa' (it was killed by signal 9); "
                "the next call starts it again"
            )
            third = _pid(await transport.call_tool("a", "web_search_exa", {"query": "w"}))
            assert third not in (first, second)
            # The other server's session was not touched.
            assert _pid(await transport.call_tool("b", "web_search_exa", {"query": "x"})) == other
        finally:
            await transport.aclose()
        assert marked_processes(mark) == []

    asyncio.run(scenario())


def test_an_answer_over_the_limit_fails_its_call_and_the_session_goes_on(tmp_path: Path) -> None:
    # The one stdio transport reads in linear time and never holds a line past the limit:
    # the call it answers fails at once, and the server's session is not restarted.
    config = parse_config({"mcpServers": {"a": recorded_entry("exa")}})
    limit = 100_000

    async def scenario() -> None:
        transport = DirectTransport(config, max_message_bytes=limit)
        try:
            first = _pid(await transport.call_tool("a", "web_search_exa", {"query": "x"}))
            started = time.monotonic()
            with pytest.raises(TransportError) as caught:
                await transport.call_tool("a", "web_search_exa", {"query": "y" * 3 * limit})
            assert time.monotonic() - started < 30  # answered, not timed out
            assert "a.web_search_exa: call failed: the server's answer is" in str(caught.value)
            assert f"over the limit of {limit}; it was dropped" in str(caught.value)
            # Just under the limit still arrives, over the same session.
            result = await transport.call_tool("a", "web_search_exa", {"query": "z" * (limit // 2)})
            assert _pid(result) == first
        finally:
            await transport.aclose()

    asyncio.run(scenario())


def test_serve_restarts_a_server_killed_during_a_session(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    mark = str(tmp_path)
    pid_file = tmp_path / "search.pid"
    busy = Path(f"{pid_file}.busy")
    entry = recorded_entry("exa", RECORDED_PID_FILE=str(pid_file), FLEET_MARK=mark)
    config = write_config(tmp_path / "mcp.json", {"search": entry})
    build(tmp_path / "pkg", name="pkg", config_path=config)
    pid_file.unlink()
    serve = ["-m", "codegen.serve", "--config", str(config), "--package", str(tmp_path / "pkg")]
    call = "from servers.search import web_search_exa\nprint((await web_search_exa({})).text)\n"

    async def execute(client: Client, code: str) -> tuple[str, bool]:
        result = await client.call_tool("execute_code", {"code": code})
        block = result.content[0]
        assert block.type == "text"
        return block.text, bool(result.is_error)

    def pid_of(output: str) -> int:
        return int(output.split('"pid": ')[1].split(",")[0])

    async def scenario() -> None:
        params = StdioServerParameters(command=sys.executable, args=serve, cwd=str(tmp_path))
        async with Client(params) as client:
            await appears(pid_file)  # preconnect (the default) starts it before any call
            started = int(pid_file.read_text(encoding="utf-8"))
            output, error = await execute(
                client, "open('kept.txt', 'w').write('kept')\n" + call.format("query='a'")
            )
            assert not error, output
            assert pid_of(output) == started

            os.kill(started, signal.SIGKILL)
            while alive(started):
                await asyncio.sleep(0.01)
            output, error = await execute(client, call.format("query='b'"))
            assert not error, output
            restarted = pid_of(output)
            assert restarted != started

            in_flight = asyncio.ensure_future(execute(client, call.format("query='sleep:30'")))
            await appears(busy)
            os.kill(restarted, signal.SIGKILL)
            output, error = await asyncio.wait_for(in_flight, 30)
            assert error and "died during the call to 'web_search_exa'" in output, output

            # The session and its sandbox go on: the same workspace, a third server process.
            output, error = await execute(
                client, "print(open('kept.txt').read())\n" + call.format("query='d'")
            )
            assert not error and "kept" in output, output
            assert pid_of(output) not in (started, restarted)
        assert marked_processes(mark) == []

    asyncio.run(scenario())


def test_serve_ends_on_sigterm_and_stops_every_upstream_server(tmp_path: Path) -> None:
    mark = str(tmp_path)
    pids = tmp_path / "pids"
    pids.mkdir()
    pid_file = tmp_path / "search.pid"
    healthy = {"search": recorded_entry("exa", RECORDED_PID_FILE=str(pid_file), FLEET_MARK=mark)}
    build(tmp_path / "pkg", name="pkg", config_path=write_config(tmp_path / "ok.json", healthy))
    stubborn = misbehaving(pids)["stubborn"]
    stubborn["env"] = {**stubborn["env"], "FLEET_MARK": mark}  # type: ignore[dict-item]
    config = write_config(tmp_path / "mcp.json", {**healthy, "stubborn": stubborn})
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codegen.serve",
            "--config",
            str(config),
            "--package",
            str(tmp_path / "pkg"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=dict(os.environ, FLEET_MARK=mark),
    )
    try:
        asyncio.run(appears(pid_file))  # preconnected: both servers are starting or started
        deadline = time.monotonic() + 60
        while not list(pids.iterdir()):
            assert time.monotonic() < deadline, "the stubborn server never started"
            time.sleep(0.05)
        serve.send_signal(signal.SIGTERM)
        _, stderr = serve.communicate(timeout=DEADLINE + STOP_BOUND + SLACK)
    finally:
        serve.kill()
    assert serve.returncode == 0, stderr
    assert marked_processes(mark) == [] and survivors(pids) == []


def test_keep_going_leaves_out_a_module_that_fails_verification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verification failing is a bug of ours, so no real input shows it: a fake verifier does.
    import codegen.toolmodule as toolmodule

    real = toolmodule.verify_module

    def verify(source: str, package: str) -> list[str]:
        return ["line 9: unexpected Import"] if "def second(" in source else real(source, package)

    monkeypatch.setattr(toolmodule, "verify_module", verify)
    tools = [_tool("first", {"q": {"type": "string"}}), _tool("second", {"q": {"type": "string"}})]
    snapshot = Snapshot.model_validate({"servers": [{"name": "s", "tools": tools}]})
    with pytest.raises(BuildError):
        build(tmp_path / "strict", name="pkg", snapshot=snapshot)
    report = build(tmp_path / "out", name="pkg", snapshot=snapshot, keep_going=True)
    (error,) = report.diagnostics.errors
    assert (
        error.tool == "second" and "failed verification: line 9: unexpected Import" in error.message
    )
    assert error.hint and "bug of mcp-codegen" in error.hint
    assert [path.name for path in sorted((tmp_path / "out/pkg/servers/s").glob("*.py"))] == [
        "__init__.py",
        "first.py",
    ]
