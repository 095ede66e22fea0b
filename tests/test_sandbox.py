"""The sandbox, end to end: real gVisor, real demo servers, a package built from them.

One executor (one warm sandbox) serves most tests; each test's execution starts
from clean process state, which the tests after a limit test rely on.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codegen.build import build_package
from codegen.render import PackageOptions
from codegen.sandbox import (
    ExecutionResult,
    Executor,
    Limits,
    SandboxUnavailableError,
    UnsafeLocalExecutor,
)
from codegen.sandbox.executor import sweep_stale_workdirs
from codegen.sandbox.runsc import live_containers, processes_naming

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
FILESYSTEM = DEMO / "node/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
MEMORY = DEMO / "node/node_modules/@modelcontextprotocol/server-memory/dist/index.js"
TIME = DEMO / "venvs/time/bin/mcp-server-time"
API_KEY = "sk-sandbox-test-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """1,000 files, a secret, an mcp.json of three demo servers, and the package built from it."""
    for needed in (FILESYSTEM, MEMORY, TIME):
        assert needed.exists(), f"{needed} is missing: run `make setup`"
    base = tmp_path_factory.mktemp("sandbox")
    files = base / "files"
    many = files / "many"
    many.mkdir(parents=True)
    for index in range(1000):
        (many / f"file-{index:04d}.txt").write_text(str(index), encoding="utf-8")
    (files / "secret.txt").write_text("the launch code is 0000-SECRET", encoding="utf-8")
    config = base / "mcp.json"
    servers = {
        "filesystem": {"command": "node", "args": [str(FILESYSTEM), str(files)]},
        "memory": {
            "command": "node",
            "args": [str(MEMORY)],
            "env": {"MEMORY_FILE_PATH": str(base / "memory.jsonl")},
        },
        "time": {
            "command": str(TIME),
            "args": ["--local-timezone", "UTC"],
            "env": {"API_KEY": API_KEY},
        },
    }
    config.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    out = base / "mcp_demo"
    build_package(options=PackageOptions(name="mcp_demo"), out=out, config_path=config)
    return {"base": base, "files": files, "config": config, "package": out}


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the module's executor."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def executor(project: dict[str, Path], loop: asyncio.AbstractEventLoop) -> Iterator[Executor]:
    """A started executor over the project's package."""
    ex = Executor(project["package"], config=project["config"], limits=Limits(timeout=20))
    loop.run_until_complete(ex.start())
    yield ex
    loop.run_until_complete(ex.aclose())


@pytest.fixture
def run(executor: Executor, loop: asyncio.AbstractEventLoop) -> Any:
    """`run(code, **options)` executes in the shared sandbox."""

    def execute(code: str, **options: Any) -> ExecutionResult:
        return loop.run_until_complete(executor.execute(code, **options))

    return execute


# --- what agents do ----------------------------------------------------------


def test_large_result_becomes_a_summary(run: Any, project: dict[str, Path]) -> None:
    code = f"""
from servers.filesystem import list_directory
listing = await list_directory(path={str(project["files"] / "many")!r})
len([line for line in listing.content.splitlines() if line.startswith("[FILE]")])
"""
    result = run(code)
    assert result.error is None, result.error
    assert result.value == 1000
    assert result.stdout == ""
    (call,) = result.calls
    assert (call.server, call.tool, call.ok) == ("filesystem", "list_directory", True)
    assert call.bytes_out > 20_000 > len(result.model_dump_json())


def test_loop_of_calls_with_error_handling(run: Any) -> None:
    code = """
from servers.time import get_current_time
from mcp_demo import ToolError
zones, failed = [], []
for zone in ["UTC", "Nowhere/Atlantis", "Asia/Tokyo", "Mars/Olympus", "Europe/Paris"]:
    try:
        zones.append((await get_current_time(timezone=zone)).timezone)
    except ToolError as exc:
        failed.append(zone)
print("failed:", failed)
zones
"""
    result = run(code)
    assert result.error is None, result.error
    assert result.value == ["UTC", "Asia/Tokyo", "Europe/Paris"]
    assert result.stdout == "failed: ['Nowhere/Atlantis', 'Mars/Olympus']\n"
    assert [call.ok for call in result.calls].count(False) == 2


def test_gather_runs_calls_concurrently(run: Any) -> None:
    code = """
import asyncio
from servers.time import get_current_time
zones = ["UTC", "Asia/Tokyo", "Europe/Paris", "America/New_York", "Australia/Sydney"]
results = await asyncio.gather(*(get_current_time(timezone=zone) for zone in zones))
[r.timezone for r in results]
"""
    result = run(code)
    assert result.error is None, result.error
    assert result.value == [
        "UTC",
        "Asia/Tokyo",
        "Europe/Paris",
        "America/New_York",
        "Australia/Sydney",
    ]
    assert len(result.calls) == 5


def test_data_flows_between_servers_without_reaching_the_output(
    run: Any, project: dict[str, Path]
) -> None:
    code = f"""
from servers.filesystem import read_text_file
from servers.memory import create_entities, search_nodes
secret = (await read_text_file(path={str(project["files"] / "secret.txt")!r})).content
await create_entities(entities=[{{"name": "launch", "entityType": "note", "observations": [secret]}}])
found = await search_nodes(query="launch")
print("stored", len(secret), "characters")
"""
    result = run(code)
    assert result.error is None, result.error
    assert "SECRET" not in result.model_dump_json()
    assert result.stdout == "stored 30 characters\n"
    assert "0000-SECRET" in (project["base"] / "memory.jsonl").read_text(encoding="utf-8")


def test_runner_features(run: Any) -> None:
    result = run("import asyncio\nawait asyncio.sleep(0)\nx = 6\nx * 7")
    assert (result.value, result.value_repr, result.error) == (42, "42", None)
    result = run("import servers.time as short, mcp_demo.servers.time as full\nshort is full")
    assert result.value is True
    result = run("def f():\n    return 1 / 0\n\nf()", filename="agent.py")
    assert result.error is not None and result.error.type == "ZeroDivisionError"
    assert result.error.traceback is not None
    assert 'File "agent.py", line 4' in result.error.traceback
    assert 'File "agent.py", line 2, in f' in result.error.traceback
    assert "_mcp_codegen_inside" not in result.error.traceback
    result = run("x = (")
    assert result.error is not None and result.error.type == "SyntaxError"
    result = run(
        "hits = search_tools('current time')\ntype(hits).__name__, 'get_current_time' in str(hits)"
    )
    assert result.error is None, result.error
    assert result.value[1] is True
    result = run("import sys\nprint('out')\nprint('err', file=sys.stderr)\nNone")
    assert (result.stdout, result.stderr, result.value_repr) == ("out\n", "err\n", None)


def test_tool_errors_keep_only_the_agents_frames(run: Any) -> None:
    result = run(
        "from servers.time import get_current_time\nawait get_current_time(timezone='X/Y')"
    )
    assert result.error is not None and result.error.type == "ToolError"
    assert result.error.traceback is not None
    assert "_runtime" not in result.error.traceback.split("\n")[1]
    assert 'File "<exec>", line 2' in result.error.traceback


# --- isolation -------------------------------------------------------------------


def test_no_network_to_the_host(run: Any) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        code = f"""
import socket
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("127.0.0.1", {port}))
    "connected"
except OSError as exc:
    type(exc).__name__
"""
        result = run(code)
    finally:
        listener.close()
    assert result.error is None
    assert result.value != "connected"


def test_host_home_is_not_visible(run: Any) -> None:
    secret = Path.home() / f".mcp-codegen-sandbox-secret-{uuid.uuid4().hex}"
    secret.write_text("top secret", encoding="utf-8")
    try:
        result = run(f"open({str(secret)!r}).read()")
        assert result.error is not None and result.error.type in (
            "FileNotFoundError",
            "PermissionError",
        )
        listing = run("import os\nsorted(os.listdir('/'))").value
        assert "home" not in listing
        assert run("import os\nos.listdir('/root')").value in ([".pyenv"], [])
    finally:
        secret.unlink()


def test_package_and_root_are_read_only(run: Any) -> None:
    code = """
import mcp_demo, os, errno
results = []
for path in [os.path.join(os.path.dirname(mcp_demo.__file__), "evil.py"), "/etc/evil", "/evil"]:
    try:
        open(path, "w").write("x")
        results.append("written")
    except OSError as exc:
        results.append(errno.errorcode[exc.errno])
open("/workspace/fine.txt", "w").write("ok")
results, os.getuid()
"""
    result = run(code)
    assert result.error is None, result.error
    written, uid = result.value
    assert "written" not in written
    assert uid == 65534


def test_server_secrets_are_not_in_the_sandbox(run: Any) -> None:
    result = run("import os\ndict(os.environ)")
    assert result.error is None
    assert API_KEY not in json.dumps(result.value)
    assert not any(key in result.value for key in ("API_KEY", "MEMORY_FILE_PATH"))
    # the server does get it: the bridge works with the key set on the host side
    assert (
        run(
            "from servers.time import get_current_time\n(await get_current_time(timezone='UTC')).timezone"
        ).value
        == "UTC"
    )


# --- limits --------------------------------------------------------------------------


def test_fork_bomb_ends_cleanly(run: Any) -> None:
    result = run("import os\nwhile True:\n    os.fork()", timeout=10)
    assert result.error is not None
    assert result.error.type in ("BlockingIOError", "TimeoutError"), result.error
    if result.error.type == "BlockingIOError":
        assert "at most 32 processes" in result.error.message
    assert run("1 + 1").value == 2


def test_memory_bomb_ends_in_memory_error(run: Any) -> None:
    result = run("chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 7))", memory_mb=256)
    assert result.error is not None and result.error.type == "MemoryError", result.error
    assert run("len(bytearray(10 ** 8))").value == 10**8


def test_infinite_loop_times_out(run: Any) -> None:
    result = run("print('started')\nwhile True:\n    pass", timeout=1)
    assert result.error is not None and result.error.type == "TimeoutError"
    assert "1 s" in result.error.message
    assert result.stdout == "started\n"
    assert 1000 <= result.duration_ms < 4000
    assert run("'still fine'").value == "still fine"


def test_output_flood_is_cut_and_stopped(run: Any) -> None:
    result = run("import sys\nsys.stdout.write('x' * 5_000_000)\nprint('end')")
    assert result.error is None
    assert result.stdout_cut_bytes > 4_000_000
    assert "more bytes of stdout cut" in result.stdout
    assert len(result.stdout) < 200_000
    result = run("while True:\n    print('y' * 10_000)", timeout=20)
    assert result.error is not None and result.error.type == "OutputLimitError"


def test_an_execution_ends_with_its_code_whoever_holds_its_pipes(run: Any) -> None:
    # A process the code left behind holds stdout: the result comes when the code ends
    # (not at the timeout), with what was printed before; the process is killed, so
    # nothing of it reaches the next execution.
    code = """
import os, sys, time
print("before")
sys.stdout.flush()
if os.fork() == 0:
    time.sleep(1)
    print("LEFT BEHIND")
    sys.stdout.flush()
    time.sleep(30)
    os._exit(0)
"done"
"""
    started = time.monotonic()
    result = run(code, timeout=15)
    assert (result.value, result.stdout, result.error) == ("done", "before\n", None)
    assert time.monotonic() - started < 10
    later = run("import time\ntime.sleep(2)\nprint('next')\n7")
    assert (later.value, later.stdout) == (7, "next\n")
    # Code that closes its own stdout and stderr and runs on still gets its value.
    result = run("import os, time\nos.close(1)\nos.close(2)\ntime.sleep(1)\n42")
    assert (result.value, result.error) == (42, None)
    assert run("print('fine')").stdout == "fine\n"


def test_memory_backstop_replaces_the_sandbox(run: Any) -> None:
    # Each process stays under its own limit; together they pass the sandbox's cgroup limit.
    code = """
import os, time
for _ in range(8):
    if os.fork() == 0:
        try:
            blocks = [bytearray(50 * 2**20) for _ in range(9)]
            for block in blocks:
                block[::4096] = b"x" * len(range(0, len(block), 4096))
            time.sleep(10)
        finally:
            os._exit(0)
os.wait()
"""
    result = run(code, memory_mb=512)
    assert result.error is not None and result.error.type == "SandboxCrashed", result.error
    assert "replaced" in result.error.message
    assert run("'a fresh sandbox'").value == "a fresh sandbox"


# --- the bridge, abused from inside ------------------------------------------------------

_RAW = """
import json, os, socket
bridge = socket.socket(socket.AF_UNIX)
bridge.connect(os.environ["MCP_CODEGEN_BRIDGE_SOCKET"])
bridge.sendall(json.dumps({"token": os.environ["MCP_CODEGEN_BRIDGE_TOKEN"]}).encode() + b"\\n")
replies = bridge.makefile("rb")
def ask(data):
    bridge.sendall(data)
    return json.loads(replies.readline())
"""


def test_bridge_answers_abuse_with_errors(run: Any) -> None:
    code = (
        _RAW
        + """
answers = [
    ask(b"\\x00\\xff garbage that is not json\\n"),
    ask(b'{"id": 7, "server": "time", "tool": "x"' + b" " * 3_000_000 + b"}\\n"),
    ask(b'{"id": 8, "server": "time", "tool": "delete_everything", "arguments": {}}\\n'),
    ask(b'{"id": 9, "server": "nope", "tool": "x", "arguments": {}}\\n'),
    ask(b'{"id": 10, "server": "time", "tool": "get_current_time", "arguments": {"timezone": 5}}\\n'),
    ask(b'{"id": 11, "server": "time", "tool": "get_current_time", "arguments": {}}\\n'),
    ask(b'{"id": 12, "server": "time", "tool": "get_current_time", "arguments": {"timezone": "UTC"}}\\n'),
]
[(a.get("id"), a.get("error"), "result" in a) for a in answers]
"""
    )
    result = run(code)
    assert result.error is None, result.error
    answers = result.value
    assert [a[0] for a in answers] == [None, 7, 8, 9, 10, 11, 12]
    assert "not JSON" in answers[0][1]
    assert "over the limit" in answers[1][1]
    assert "no tool 'delete_everything'" in answers[2][1]
    assert "unknown server 'nope'" in answers[3][1]
    assert "invalid arguments" in answers[4][1] and "/timezone" in answers[4][1]
    assert "'timezone' is a required property" in answers[5][1]
    assert answers[6] == [12, None, True]
    assert run("1").value == 1


def test_bridge_refuses_a_wrong_token(run: Any) -> None:
    code = """
import json, os, socket
bridge = socket.socket(socket.AF_UNIX)
bridge.connect(os.environ["MCP_CODEGEN_BRIDGE_SOCKET"])
bridge.sendall(b'{"token": "guessed"}\\n{"id": 1, "server": "time", "tool": "get_current_time", "arguments": {"timezone": "UTC"}}\\n')
replies = bridge.makefile("rb")
[json.loads(line) for line in replies]
"""
    result = run(code)
    assert result.error is None, result.error
    assert result.value == [{"id": None, "error": "the bridge token is unknown or expired"}]
    assert result.calls == []


def test_half_a_request_then_exit_does_not_disturb_the_host(run: Any) -> None:
    result = run(_RAW + 'bridge.sendall(b\'{"id": 1, "server": "ti\')\nos._exit(0)')
    assert result.error is None
    again = run(
        "from servers.time import get_current_time\n(await get_current_time(timezone='UTC')).timezone"
    )
    assert again.value == "UTC", again.error


# --- lifecycle ---------------------------------------------------------------------------------


def test_nothing_outlives_the_executor(project: dict[str, Path]) -> None:
    before = set(live_containers())

    async def scenario() -> tuple[list[str], str]:
        async with Executor(project["package"], config=project["config"], pool_size=2) as ex:
            results = await asyncio.gather(ex.execute("1"), ex.execute("2"))
            assert [r.value for r in results] == [1, 2]
            root = ex._workdir
            assert root is not None
            # The second sandbox of the pool may still be starting: wait until both live.
            deadline = time.monotonic() + 60
            while len(set(live_containers()) - before) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            containers = sorted(set(live_containers()) - before)
        return containers, str(root)

    containers, root = asyncio.run(scenario())
    assert len(containers) == 2
    assert not set(containers) & set(live_containers())
    for container in containers:
        assert processes_naming(container) == []
    assert processes_naming(root) == []
    assert not Path(root).exists()


def test_sandboxes_die_with_a_killed_host(project: dict[str, Path]) -> None:
    import signal
    import subprocess
    import time

    script = f"""
import asyncio, sys
from codegen.sandbox import Executor
from codegen.sandbox.runsc import live_containers
async def main():
    ex = Executor({str(project["package"])!r}, config={str(project["config"])!r})
    await ex.start()
    print(live_containers()[0], ex._workdir, flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""
    host = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert host.stdout is not None
    container, workdir = host.stdout.readline().split()
    assert container.startswith("mcp-codegen-")
    assert processes_naming(container)
    host.send_signal(signal.SIGKILL)
    host.wait()
    deadline = time.monotonic() + 20
    while processes_naming(container) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_naming(container) == []
    assert processes_naming(workdir) == []
    # What a SIGKILLed host cannot clean up (its directory, with the session's /state
    # tmpfs mounted in it) is removed by the next executor of any process.
    assert os.path.ismount(Path(workdir) / "session-state")
    sweep_stale_workdirs()
    assert not Path(workdir).exists()


def test_missing_runsc_is_a_clear_error(project: dict[str, Path]) -> None:
    executor = Executor(project["package"], runsc="/nonexistent/runsc")
    with pytest.raises(SandboxUnavailableError, match="apt-get install runsc"):
        asyncio.run(executor.start())


def test_unsafe_local_executor_is_explicit_and_works(project: dict[str, Path]) -> None:
    async def scenario() -> ExecutionResult:
        async with UnsafeLocalExecutor(project["package"], config=project["config"]) as ex:
            assert ex.unsafe
            code = "from servers.time import get_current_time\n(await get_current_time(timezone='UTC')).timezone"
            return await ex.execute(code)

    result = asyncio.run(scenario())
    assert (result.value, result.error) == ("UTC", None)
    assert not Executor.unsafe


def test_cli_exec_json(project: dict[str, Path]) -> None:
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from codegen.cli.run import exec_command; exec_command()",
            "--package",
            str(project["package"]),
            "--config",
            str(project["config"]),
            "--json",
            "-c",
            "print('hi')\n2 ** 10",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["stdout"], result["value"], result["error"]) == ("hi\n", 1024, None)


def test_a_cancelled_execution_does_not_block_the_next(project: dict[str, Path]) -> None:
    async def scenario() -> object:
        async with Executor(project["package"], config=project["config"], pool_size=1) as ex:
            running = asyncio.ensure_future(ex.execute("import time\ntime.sleep(20)"))
            await asyncio.sleep(1.0)
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            result = await asyncio.wait_for(ex.execute("41 + 1"), 60)
            return result.value

    assert asyncio.run(scenario()) == 42
