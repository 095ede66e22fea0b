"""Host memory of `serve` with many idle sessions (each with its sandbox), for the sandbox benchmark.

Starts the real `serve --transport http`, opens `count` sessions with the SDK's
client, runs `1` in each (so each has its warm sandbox), lets them sit idle, and
measures the PSS of the serve process and of every host process of its
sandboxes (runsc, gofer, sentry, ptrace stubs), and the tmpfs they reserve.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client

from codegen.sandbox.quotas import MIB, Quotas, machine_memory_bytes
from codegen.sandbox.runsc import processes_naming

__all__ = ["idle_sessions"]


def _pss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    return total


async def _warm(client: Client) -> None:
    result = await client.call_tool("execute_code", {"code": "1"})
    assert not result.is_error, result


async def _measure(url: str, serve: int, tmp: Path, count: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    baseline = _pss_kb([serve])
    async with contextlib.AsyncExitStack() as stack:
        # Clients are entered (and left) by this task; their calls may run in others.
        clients = [await stack.enter_async_context(Client(url)) for _ in range(count)]
        await _warm(clients[0])
        await asyncio.sleep(3)
        one_serve = _pss_kb([serve])
        one_sandboxes = _pss_kb(processes_naming(str(tmp)))
        for start in range(1, count, 4):  # four sandboxes start at a time on a small machine
            await asyncio.gather(*(_warm(client) for client in clients[start : start + 4]))
        await asyncio.sleep(5)  # idle
        sandboxes = processes_naming(str(tmp))
        serve_kb = _pss_kb([serve])
        sandbox_kb = _pss_kb(sandboxes)
        used = 0
        for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[1].startswith(str(tmp)):
                stats = os.statvfs(fields[1])
                used += (stats.f_blocks - stats.f_bfree) * stats.f_frsize
        sessions = len(list(tmp.glob("mcp-codegen-sandbox-*")))
    quotas = Quotas()
    figures["serve, no session: PSS of the serve process (MiB)"] = baseline / 1024
    figures["serve, 1 idle session: serve process / its sandbox's processes (PSS, MiB)"] = (
        one_serve / 1024,
        one_sandboxes / 1024,
    )
    figures[f"serve, {sessions} idle sessions: serve process (PSS, MiB)"] = serve_kb / 1024
    figures[f"serve, {sessions} idle sessions: all their sandboxes' host processes (PSS, MiB)"] = (
        sandbox_kb / 1024
    )
    figures[f"serve, {sessions} idle sessions: total host memory (PSS, MiB)"] = (
        serve_kb + sandbox_kb
    ) / 1024
    figures["  per idle session (total / sessions, MiB)"] = (
        (serve_kb + sandbox_kb) / 1024 / sessions
    )
    figures[f"serve, {sessions} idle sessions: /state tmpfs in use (MiB)"] = used / MIB
    figures[
        f"tmpfs reserved by {sessions} sessions, worst case (GiB; today 1.25 GiB each, "
        f"{1.25 * sessions:g} GiB)"
    ] = sessions * quotas.tmpfs_bytes / 1024 / MIB
    figures["  budget for all sessions' tmpfs (GiB, half the machine's memory)"] = (
        machine_memory_bytes() * quotas.tmpfs_share / 1024 / MIB
    )
    return figures


def idle_sessions(package: Path, config: Path, count: int = 32) -> dict[str, Any]:
    """The memory figures of `serve` over `package` with `count` idle sessions."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-", dir="/tmp"))
    command = [
        sys.executable,
        "-m",
        "codegen.serve",
        "--config",
        str(config),
        "--package",
        str(package),
        "--skills",
        str(tmp / "skills"),
        "--transport",
        "http",
        "--port",
        "0",
        "--max-sessions",
        str(count),
        "--sessions-per-client",
        str(count),
        "--warm",
        "0",  # the sandboxes counted are the sessions'
    ]
    env = dict(os.environ, TMPDIR=str(tmp))
    serve = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    assert serve.stderr is not None
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            match = re.search(r"listening on (http://\S+)", serve.stderr.readline())
            url = match.group(1) if match else None
        assert url, "serve did not start"
        return asyncio.run(_measure(url, serve.pid, tmp, count))
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=120)
        finally:
            serve.kill()
        shutil.rmtree(tmp, ignore_errors=True)
