"""`serve`, `exec` and `run` talking to a person and a client while code runs (issue 17):
approvals by MCP elicitation (the SDK's real `Client` answering yes and no) or on the terminal,
progress notifications, and upstream servers whose tools change mid-session. Real parts: the
npm filesystem server, tests/servers/changing.py, gVisor, `serve` over stdio and HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from codegen.runtime.errors import ConfigError
from codegen.sandbox.bridge.approval import parse_approval
from codegen.snapshot import Snapshot
from tests.conftest import ROOT, SERVERS, build, serve_url, write_config

FILESYSTEM = ROOT / ".demo/node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
WRITE = """
from servers.filesystem import write_file
done = []
for name in {names!r}:
    try:
        await write_file(path={folder!r} + "/" + name, content="for ada@example.org")
        done.append(name)
    except ApprovalDenied as exc:
        done.append(f"{{name}}: {{exc}}")
done
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A package of the filesystem server (writes need approval) and a server whose tools change."""
    base = tmp_path_factory.mktemp("interaction")
    files = base / "files"
    files.mkdir()
    servers: dict[str, dict[str, object]] = {
        "filesystem": {"command": "node", "args": [str(FILESYSTEM), str(files)]},
        "changing": {"command": sys.executable, "args": [str(SERVERS / "changing.py")]},
        "older": {
            "command": sys.executable,
            "args": [str(SERVERS / "changing.py"), "--handshake"],
        },
    }
    config = write_config(base / "mcp.json", servers)
    build(base / "pkg", name="mcp_tools", config_path=config)
    data = json.loads(config.read_text(encoding="utf-8"))
    data["approval"] = {"servers": {"filesystem": "destructive"}}
    config.write_text(json.dumps(data), encoding="utf-8")
    allow = dict(data, approval={"servers": {"filesystem": "destructive"}, "unattended": "allow"})
    lenient = base / "lenient.json"
    lenient.write_text(json.dumps(allow), encoding="utf-8")
    hurried = dict(data, approval={"servers": {"filesystem": "destructive"}, "timeout": 1})
    quick = base / "quick.json"
    quick.write_text(json.dumps(hurried), encoding="utf-8")
    return {
        "config": config,
        "lenient": lenient,
        "quick": quick,
        "package": base / "pkg",
        "files": files,
    }


def serve_command(setup: dict[str, Path], *extra: str, config: str = "config") -> list[str]:
    return [
        sys.executable,
        "-m",
        "codegen.serve",
        "--config",
        str(setup[config]),
        "--package",
        str(setup["package"]),
        *extra,
    ]


def stdio_client(setup: dict[str, Path], config: str = "config", **options: Any) -> Client:
    command = serve_command(setup, config=config)
    return Client(
        StdioServerParameters(command=command[0], args=command[1:], cwd=str(ROOT)), **options
    )


def text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


# --- the policy ----------------------------------------------------------------------------------


def test_approval_policy_rules_per_server_and_tool(demo_snapshot: Snapshot) -> None:
    policy = parse_approval(
        {
            "default": "destructive",
            "servers": {
                "git": "never",
                "memory": {"default": "always", "tools": {"read_graph": "never"}},
            },
        }
    )

    def tool(server: str, name: str) -> Any:
        found = demo_snapshot.server(server)
        assert found is not None
        return next(t for t in found.tools if t.name == name)

    assert policy.needs("filesystem", tool("filesystem", "write_file"))  # destructiveHint
    assert not policy.needs("filesystem", tool("filesystem", "read_text_file"))  # readOnlyHint
    assert not policy.needs("git", tool("git", "git_reset"))  # the server says never
    assert policy.needs("memory", tool("memory", "create_entities"))  # the server says always
    assert not policy.needs("memory", tool("memory", "read_graph"))  # the tool says never
    assert not parse_approval(None).active


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("sometimes", 'mcp.json: approval: must be "always", "never" or "destructive"'),
        ({"servers": {"git": "maybe"}}, "mcp.json: approval.servers.git: must be"),
        ({"unattended": "yes"}, 'approval.unattended must be "deny" or "allow"'),
        ({"timeout": 0}, "approval.timeout must be seconds"),
        ({"timeout": 0.5}, "approval.timeout must be seconds, from 1 to 3600"),
        ({"timeout": 3601}, "approval.timeout must be seconds, from 1 to 3600"),
        ({"timeout": True}, "approval.timeout must be seconds"),
        ({"default": "never", "tool": {}}, "'approval' is a rule"),
    ],
)
def test_a_bad_approval_section_is_one_line_naming_the_field(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_approval(raw)


def test_an_approval_for_an_unknown_server_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {
                "mcpServers": {"filesystem": {"command": "node"}},
                "approval": {"servers": {"filesytem": "always"}},
            }
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "codegen", "exec", "--config", str(config), "-c", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert "approval.servers.filesytem: no server 'filesytem' (did you mean 'filesystem'?)" in (
        done.stderr
    )


# --- serve: elicitation --------------------------------------------------------------------------


def test_serve_asks_by_elicitation_and_writes_only_after_a_yes(setup: dict[str, Path]) -> None:
    files = setup["files"]
    asked: list[str] = []
    answers = iter([True, False])

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        asked.append(params.message)
        assert params.requested_schema["required"] == ["approve"]
        # The file does not exist while the person is being asked.
        assert not (files / "yes.txt").exists() or len(asked) == 2
        return types.ElicitResult(action="accept", content={"approve": next(answers)})

    async def scenario() -> str:
        async with stdio_client(setup, elicitation_callback=elicit) as client:
            code = WRITE.format(names=["yes.txt", "no.txt"], folder=str(files))
            result = await client.call_tool("execute_code", {"code": code})
            assert not result.is_error, text(result)
            return text(result)

    output = asyncio.run(scenario())
    assert (files / "yes.txt").read_text(encoding="utf-8") == "for ada@example.org"
    assert not (files / "no.txt").exists()
    assert "'yes.txt'" in output
    assert "no.txt: filesystem.write_file was not approved: the person said no" in output
    assert "tool calls: 2 (filesystem.write_file x2, 1 not approved)" in output
    assert len(asked) == 2
    first = asked[0]
    assert "filesystem.write_file" in first and "destructive" in first
    assert f'"path": "{files}/yes.txt"' in first
    # The person sees personal data as placeholders, never the value itself.
    assert "[EMAIL_1]" in first and "ada@example.org" not in first


def test_serve_refuses_clearly_when_the_client_cannot_elicit(setup: dict[str, Path]) -> None:
    files = setup["files"]

    async def scenario() -> str:
        async with stdio_client(setup) as client:
            code = WRITE.format(names=["unasked.txt"], folder=str(files))
            return text(await client.call_tool("execute_code", {"code": code}))

    output = asyncio.run(scenario())
    assert not (files / "unasked.txt").exists()
    assert (
        "unasked.txt: filesystem.write_file needs a person's approval (the approval policy of "
        "mcp.json), and this MCP client cannot ask a person (it does not support elicitation); "
        "the call was not made"
    ) in output


def test_a_declined_or_unanswered_question_is_a_no(setup: dict[str, Path]) -> None:
    files = setup["files"]
    answers = iter(["decline", "never"])

    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        answer = next(answers)
        if answer == "never":
            await asyncio.sleep(30)  # the person walked away; approval.timeout is 1 s
        return types.ElicitResult(action="decline")

    async def scenario() -> str:
        async with stdio_client(setup, "quick", elicitation_callback=elicit) as client:
            code = WRITE.format(names=["declined.txt", "unanswered.txt"], folder=str(files))
            return text(await client.call_tool("execute_code", {"code": code}))

    output = asyncio.run(scenario())
    assert "declined.txt: filesystem.write_file was not approved: the person said no" in output
    assert "unanswered.txt: filesystem.write_file was not approved: no answer within 1 s" in output
    assert not (files / "declined.txt").exists() and not (files / "unanswered.txt").exists()


def test_serve_over_http_asks_on_the_request_stream(setup: dict[str, Path]) -> None:
    files = setup["files"]
    process = subprocess.Popen(
        [*serve_command(setup), "--transport", "http", "--port", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = serve_url(process)

        async def elicit(context: Any, params: Any) -> types.ElicitResult:
            return types.ElicitResult(action="accept", content={"approve": True})

        async def scenario() -> str:
            async with Client(url, elicitation_callback=elicit) as client:
                code = WRITE.format(names=["http.txt"], folder=str(files))
                return text(await client.call_tool("execute_code", {"code": code}))

        output = asyncio.run(scenario())
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "value: ['http.txt']" in output
    assert (files / "http.txt").exists()


# --- exec / run: the terminal, --approve-all, unattended ------------------------------------------


def exec_code(setup: dict[str, Path], code: str, *extra: str, config: str = "config") -> Any:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "codegen",
            "exec",
            "--config",
            str(setup[config]),
            "--package",
            str(setup["package"]),
            "--json",
            *extra,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def test_exec_without_a_terminal_refuses_unless_approve_all(setup: dict[str, Path]) -> None:
    files = setup["files"]
    refused = exec_code(setup, WRITE.format(names=["exec.txt"], folder=str(files)))
    result = json.loads(refused.stdout)
    assert (
        "there is no terminal to ask on (run it on a terminal, or pass --approve-all)"
        in (result["value"][0])
    )
    assert result["calls"][0]["approval"] == {
        "decision": "denied",
        "by": "no-terminal",
        "reason": "there is no terminal to ask on (run it on a terminal, or pass --approve-all)",
    }
    assert not (files / "exec.txt").exists()

    approved = exec_code(
        setup, WRITE.format(names=["exec.txt"], folder=str(files)), "--approve-all"
    )
    result = json.loads(approved.stdout)
    assert result["value"] == ["exec.txt"]
    assert result["calls"][0]["approval"]["by"] == "approve-all"
    assert (files / "exec.txt").exists()


def test_exec_asks_on_the_terminal_and_does_what_the_person_says(setup: dict[str, Path]) -> None:
    files = setup["files"]
    output = setup["files"].parent / "terminal.json"
    code = WRITE.format(names=["tty-yes.txt", "tty-no.txt"], folder=str(files))
    command = [
        sys.executable,
        "-m",
        "codegen",
        "exec",
        "--config",
        str(setup["config"]),
        "--package",
        str(setup["package"]),
        "--json",
        "-c",
        code,
    ]
    # A real terminal: the child is a session leader on a pseudo-terminal (its /dev/tty),
    # its result goes to a file, the questions come on the terminal and are answered there.
    pid, terminal = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        result = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(result, 1)
        os.execv(command[0], command)
    shown = b""
    questions: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            while b"[y/N]" in shown:
                question, _, shown = shown.partition(b"[y/N]")
                questions.append(question.decode("utf-8", "replace"))
                os.write(terminal, b"y\n" if len(questions) == 1 else b"n\n")
    finally:
        os.close(terminal)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, shown.decode("utf-8", "replace")
    result = json.loads(output.read_text(encoding="utf-8"))
    assert len(questions) == 2
    assert "filesystem.write_file" in questions[0] and "tty-yes.txt" in questions[0]
    assert "[EMAIL_1]" in questions[0] and "ada@example.org" not in questions[0]
    assert result["value"] == [
        "tty-yes.txt",
        "tty-no.txt: filesystem.write_file was not approved: the person said no",
    ]
    assert [call["approval"]["by"] for call in result["calls"]] == ["person", "person"]
    assert [call["approval"]["decision"] for call in result["calls"]] == ["approved", "denied"]
    assert (files / "tty-yes.txt").read_text(encoding="utf-8") == "for ada@example.org"
    assert not (files / "tty-no.txt").exists()


def test_the_policy_may_allow_calls_nobody_can_approve(setup: dict[str, Path]) -> None:
    files = setup["files"]
    done = exec_code(
        setup, WRITE.format(names=["lenient.txt"], folder=str(files)), config="lenient"
    )
    result = json.loads(done.stdout)
    assert result["value"] == ["lenient.txt"]
    assert result["calls"][0]["approval"]["decision"] == "approved"
    assert result["calls"][0]["approval"]["by"] == "policy"


# --- progress ------------------------------------------------------------------------------------


def test_a_three_second_execution_reports_progress(setup: dict[str, Path]) -> None:
    received: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, total, message))

    code = """
import time
from servers.changing import echo
await echo(name="one")
for step in range(3):
    report_progress(step + 1, 3, f"step {step + 1}")
    time.sleep(1)
"""

    async def scenario() -> str:
        async with stdio_client(setup) as client:
            result = await client.call_tool(
                "execute_code", {"code": code}, progress_callback=on_progress
            )
            return text(result)

    output = asyncio.run(scenario())
    assert "tool calls: 1 (changing.echo)" in output
    assert len(received) >= 2, received
    values = [progress for progress, _, _ in received]
    assert values == sorted(values) and len(set(values)) == len(values)  # always increasing
    messages = [message or "" for _, _, message in received]
    assert any("1 tool call" in message for message in messages), messages
    assert any("3/3: step 3" in message for message in messages), messages


def test_code_flooding_the_bridge_with_progress_does_not_flood_the_client(
    setup: dict[str, Path],
) -> None:
    received: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append(message)

    # Hostile code: past report_progress's own throttle, straight onto the bridge.
    code = """
import time
from mcp_tools._runtime.bridge import BlockingChannel
channel = BlockingChannel()
sent, start = 0, time.monotonic()
while time.monotonic() - start < 2:
    channel.send({"kind": "progress", "done": sent, "message": f"flood {sent}"}, timeout=5)
    sent += 1
sent
"""

    async def scenario() -> tuple[str, float]:
        async with stdio_client(setup) as client:
            started = time.monotonic()
            result = await client.call_tool(
                "execute_code", {"code": code}, progress_callback=on_progress
            )
            return text(result), time.monotonic() - started

    output, elapsed = asyncio.run(scenario())
    sent = int(re.search(r"value: (\d+)", output).group(1))  # type: ignore[union-attr]
    assert sent > 100, output  # the flood happened
    # At most one notification per MIN_PROGRESS_GAP (0.25 s) of the call, plus the first.
    assert 2 <= len(received) <= elapsed / 0.25 + 2, (len(received), elapsed)
    assert any("flood" in (message or "") for message in received), received


# --- upstream changes ----------------------------------------------------------------------------


def test_serve_says_when_an_upstream_server_changes_its_tools(setup: dict[str, Path]) -> None:
    async def scenario() -> list[str]:
        async with stdio_client(setup) as client:
            seen = []
            # A notification that changes nothing says nothing.
            ping = "from servers.changing import ping\nawait ping()"
            seen.append(text(await client.call_tool("execute_code", {"code": ping})))
            seen.append(text(await client.call_tool("search_tools", {"query": "echo"})))
            grow = "from servers.changing import grow\nawait grow(name='fresh_tool')"
            seen.append(text(await client.call_tool("execute_code", {"code": grow})))
            seen.append(text(await client.call_tool("search_tools", {"query": "echo"})))
            grow = "from servers.older import grow\nawait grow(name='newer')"
            seen.append(text(await client.call_tool("execute_code", {"code": grow})))
            return seen

    ping, quiet, grown, later, older = asyncio.run(scenario())
    assert "changed since" not in ping + quiet
    # A server on the 2026-07-28 protocol tells on a subscriptions/listen stream ...
    assert (
        "note: the MCP server 'changing' changed since this package was built: 1 change "
        "(1 compatible): tool added (changing/fresh_tool)"
    ) in grown
    # ... one of the handshake era with a notification.
    assert (
        "note: the MCP server 'older' changed since this package was built: 1 change "
        "(1 compatible): tool added (older/newer)"
    ) in older
    assert f"mcp-codegen build --config {setup['config']} --package {setup['package']}" in grown
    assert "changed since" not in later  # once per session


def test_serve_says_when_upstream_prompts_or_resources_change(setup: dict[str, Path]) -> None:
    async def scenario() -> list[str]:
        async with stdio_client(setup) as client:
            seen = []
            code = "from servers.changing import add_prompt\nawait add_prompt(name='fresh')"
            seen.append(text(await client.call_tool("execute_code", {"code": code})))
            code = "from servers.older import add_resource\nawait add_resource(name='new')"
            seen.append(text(await client.call_tool("execute_code", {"code": code})))
            return seen

    prompt, resource = asyncio.run(scenario())
    assert (
        "note: the MCP server 'changing' changed since this package was built: 1 change "
        '(1 compatible): prompt "fresh" added (changing#/prompts/fresh)'
    ) in prompt
    assert (
        "note: the MCP server 'older' changed since this package was built: 1 change "
        '(1 compatible): resource "changing://new" added (older#/resources/changing:~1~1new)'
    ) in resource


@pytest.fixture(autouse=True)
def _no_leftover_files(setup: dict[str, Path]) -> Iterator[None]:
    yield
    for path in setup["files"].iterdir():
        path.unlink()


def test_run_reads_the_approval_policy_from_the_config(setup: dict[str, Path]) -> None:
    # `run FILE` shares exec's options and asking; one refusal shows the wiring.
    script = setup["files"].parent / "agent.py"
    script.write_text(WRITE.format(names=["run.txt"], folder=str(setup["files"])), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "codegen",
            "run",
            str(script),
            "--config",
            str(setup["config"]),
            "--package",
            str(setup["package"]),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert "run.txt: filesystem.write_file needs a person's approval" in done.stdout
    assert not (setup["files"] / "run.txt").exists()
