"""Issue 10, finding 6: a cancelled or abandoned execution stops acting, at once.

The agent code sends mails in a loop from two processes (the code and a child it
forks, each with its own bridge connection); the demo `mail` server records every
mail it receives. After the caller goes away (a `notifications/cancelled`, a
client killed mid-request, a stdio client that exits), at most the calls already
in flight land, and none after a second; the session's next execution runs in a
sandbox with no process of the old one left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client

from .serving import (
    CONFIG,
    ROOT,
    Served,
    execute,
    package,
    sandbox_dirs,
    served,
    wait_for,
)

__all__ = ["package", "served"]  # fixtures used here, imported from .serving

MAIL_LOOP = """
import asyncio, os, time
from mcp_demo._runtime.bridge import call_tool_blocking
from servers.mail import send_email

if os.fork() == 0:  # a second process of the job, with a bridge connection of its own
    for i in range(100_000):
        call_tool_blocking(
            "mail", "send_email",
            {"to": "child@example.org", "subject": f"{TAG} child {i}", "body": "x"},
            timeout=10,
        )
        time.sleep(0.05)
    os._exit(0)
for i in range(100_000):
    await send_email(to="parent@example.org", subject=f"{TAG} parent {i}", body="x")
    await asyncio.sleep(0.05)
"""

PROCESSES = "sorted(int(p) for p in __import__('os').listdir('/proc') if p.isdigit())"


def loop_code(tag: str) -> str:
    return f"TAG = {tag!r}\n" + MAIL_LOOP


def mails_of(mail_log: Path, tag: str) -> list[str]:
    if not mail_log.exists():
        return []
    subjects = []
    for line in mail_log.read_text(encoding="utf-8").splitlines():
        if line.strip():
            subject = json.loads(line)["subject"]
            if subject.startswith(tag + " "):
                subjects.append(subject)
    return subjects


async def both_sending(mail_log: Path, tag: str) -> None:
    def check() -> bool:
        sent = mails_of(mail_log, tag)
        return sum(" child " in s for s in sent) >= 3 and sum(" parent " in s for s in sent) >= 3

    await wait_for(check, 60, "both processes to send mails")


async def no_call_after(mail_log: Path, tag: str) -> tuple[int, int, int]:
    """Mails at the cancel, a second after it, and three seconds after it."""
    at_cancel = len(mails_of(mail_log, tag))
    await asyncio.sleep(1.0)
    after_one = len(mails_of(mail_log, tag))
    await asyncio.sleep(2.0)
    after_three = len(mails_of(mail_log, tag))
    return at_cancel, after_one, after_three


def test_notifications_cancelled_stops_the_execution_and_its_processes(served: Served) -> None:
    async def scenario() -> None:
        async with Client(served.url) as a:
            running = asyncio.ensure_future(
                a.call_tool("execute_code", {"code": loop_code("cancel"), "timeout": 120})
            )
            await both_sending(served.mail_log, "cancel")
            running.cancel()  # the SDK's client sends notifications/cancelled
            with contextlib.suppress(asyncio.CancelledError):
                await running
            at_cancel, after_one, after_three = await no_call_after(served.mail_log, "cancel")
            # Only calls already in flight (one per process) may land; nothing later.
            assert after_one - at_cancel <= 2, (at_cancel, after_one)
            assert after_three == after_one, (after_one, after_three)
            # The session's sandbox is fresh: the worker and this execution, nothing else.
            output, error = await execute(a, PROCESSES)
            assert not error and output.startswith("value: [1, "), output
            assert len(json.loads(output.splitlines()[0].removeprefix("value: "))) == 2, output
            assert served.alive()

    asyncio.run(scenario())


KILLED_CLIENT = """
import asyncio, sys
from mcp import Client

async def main():
    async with Client(sys.argv[1]) as client:
        print("open", flush=True)
        await client.call_tool("execute_code", {"code": sys.argv[2], "timeout": 120})

asyncio.run(main())
"""


def test_a_client_killed_mid_request_stops_the_execution(served: Served) -> None:
    """The client dies without closing its session: its HTTP stream drops."""

    async def scenario() -> None:
        client = subprocess.Popen(
            [sys.executable, "-c", KILLED_CLIENT, served.url, loop_code("killed")],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            await both_sending(served.mail_log, "killed")
            client.send_signal(signal.SIGKILL)
            client.wait()
            at_cancel, after_one, after_three = await no_call_after(served.mail_log, "killed")
        finally:
            client.kill()
        assert after_one - at_cancel <= 2, (at_cancel, after_one)
        assert after_three == after_one, (after_one, after_three)
        assert served.alive()
        # Another session is unaffected.
        async with Client(served.url) as b:
            assert (await execute(b, "6 * 7"))[0].startswith("value: 42")

    asyncio.run(scenario())


def _line(process: subprocess.Popen[str], message: dict[str, object]) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()


def test_a_stdio_client_that_exits_stops_the_execution_and_serve(package: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="s10b-", dir="/tmp"))
    mail_log = tmp / "mail.jsonl"
    env = dict(os.environ, TMPDIR=str(tmp), MAIL_LOG_PATH=str(mail_log))
    command = [sys.executable, "-m", "codegen.serve", "--config", str(CONFIG)]
    command += ["--package", str(package), "--skills", str(tmp / "skills")]
    serve = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert serve.stdout is not None
    try:
        init = {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        }
        _line(serve, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        assert json.loads(serve.stdout.readline())["id"] == 1
        _line(serve, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        arguments = {"code": loop_code("stdio"), "timeout": 120}
        call = {"name": "execute_code", "arguments": arguments}
        _line(serve, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})

        async def scenario() -> tuple[int, int, int]:
            await both_sending(mail_log, "stdio")
            assert serve.stdin is not None
            serve.stdin.close()  # the client exits: its end of the pipes is gone
            serve.stdout.close()  # type: ignore[union-attr]
            return await no_call_after(mail_log, "stdio")

        at_cancel, after_one, after_three = asyncio.run(scenario())
        assert after_one - at_cancel <= 2, (at_cancel, after_one)
        assert after_three == after_one, (after_one, after_three)
        started = time.monotonic()
        serve.wait(timeout=30)  # serve ends with its only client
        assert time.monotonic() - started < 30
        assert not list(tmp.glob("mcp-codegen-sandbox-*")), "a sandbox outlived serve"
        mounts = Path("/proc/mounts").read_text(encoding="utf-8")
        assert str(tmp) not in mounts, "a /state mount outlived serve"
    finally:
        serve.kill()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def test_a_cancelled_execution_leaves_the_other_session_alone(served: Served) -> None:
    async def scenario() -> None:
        async with Client(served.url) as a, Client(served.url) as b:
            await execute(b, "open('/workspace/mine.txt', 'w').write('b')")
            running = asyncio.ensure_future(
                a.call_tool("execute_code", {"code": loop_code("other"), "timeout": 120})
            )
            await both_sending(served.mail_log, "other")
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            output, error = await execute(b, "open('/workspace/mine.txt').read()")
            assert not error and "value: 'b'" in output
            assert len(sandbox_dirs(served)) >= 2

    asyncio.run(scenario())
