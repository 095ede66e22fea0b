"""Issue 10, findings 5 and 7a: what a session may fill is bounded, with safe defaults.

`/state` is a size-limited tmpfs per session on the host; `/workspace` and `/tmp`
are tmpfs inside gVisor; their sizes are reserved against a budget for all
sessions; `serve` bounds sessions per client address, answers not yet read per
session, and idle time. A kept state comes back without setuid/setgid bits or
special files. Real `serve` over HTTP, real gVisor.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from codegen.sandbox import Executor
from codegen.sandbox.quotas import MIB, QuotaError, Quotas, machine_memory_bytes
from codegen.sandbox.state import KEPT_MARKER, copy_state

from .serving import (
    RawSession,
    Served,
    bystander_stays_responsive,
    execute,
    package,
    sandbox_dirs,
    served,
    start_serve,
    stop_serve,
    wait_for,
)

__all__ = ["package", "served"]  # fixtures used here, imported from .serving

FILL = """
import errno, os

def fill(path, chunk=1 << 20, limit=2048):
    written = 0
    try:
        with open(path, "wb") as file:
            for _ in range(limit):
                file.write(b"x" * chunk)
                written += chunk
            file.flush()
        return ("no error", written)
    except OSError as exc:
        return (errno.errorcode.get(exc.errno), written)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass

def files(directory, limit=20_000):
    os.makedirs(directory, exist_ok=True)
    for i in range(limit):
        try:
            open(f"{directory}/{i}", "w").close()
        except OSError as exc:
            return (errno.errorcode.get(exc.errno), i)
    return ("no error", limit)

result = {
    "state": fill("/state/big"),
    "workspace": fill("/workspace/big"),
    "tmp": fill("/tmp/big"),
    "state_files": files("/state/many"),
}
import json, shutil
shutil.rmtree("/state/many")
print(json.dumps(result))
"""


def test_state_workspace_and_tmp_end_in_enospc_at_their_quotas(served: Served) -> None:
    quotas = Quotas()

    async def scenario() -> dict[str, list[object]]:
        async with Client(served.url) as a, Client(served.url) as b:
            await execute(b, "1")

            async def attack() -> dict[str, list[object]]:
                output, error = await execute(a, FILL, timeout=120)
                assert not error, output
                loaded: dict[str, list[object]] = json.loads(output.splitlines()[0])
                return loaded

            outcome: dict[str, list[object]] = await bystander_stays_responsive(b, attack)
            # On the host: each session's /state is a tmpfs of the quota's size, and
            # nothing of what was written reached the disk under serve's directory. (The
            # sandboxes started ahead for sessions to come have theirs too.)
            mounts = served.state_mounts()
            assert len(mounts) >= 2, mounts
            for point, options in mounts:
                assert f"size={quotas.state_mb * 1024}k" in options
                assert f"nr_inodes={quotas.state_files}" in options
                assert {"nosuid", "nodev", "noexec"} <= set(options.split(","))
                usage = os.statvfs(point)
                assert (usage.f_blocks - usage.f_bfree) * usage.f_frsize <= quotas.state_mb * MIB
            assert _disk_bytes(served.tmp) < 4 * MIB
            return outcome

    outcome = asyncio.run(scenario())
    assert outcome["state"][0] == "ENOSPC"
    assert quotas.state_mb * MIB - 2 * MIB <= outcome["state"][1] <= quotas.state_mb * MIB
    assert outcome["workspace"][0] == "ENOSPC"
    assert outcome["workspace"][1] <= quotas.workspace_mb * MIB
    assert outcome["tmp"][0] == "ENOSPC"
    assert outcome["tmp"][1] <= quotas.tmp_mb * MIB
    assert outcome["state_files"][0] == "ENOSPC"
    assert quotas.state_files - 16 <= outcome["state_files"][1] < quotas.state_files


def _disk_bytes(top: Path) -> int:
    """Bytes of regular files under `top` on its own file system (mounts are skipped)."""
    device = top.stat().st_dev
    total = 0
    todo = [top]
    while todo:
        directory = todo.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != device:
                continue
            if stat.S_ISDIR(info.st_mode):
                todo.append(Path(entry.path))
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def test_the_tmpfs_of_all_sessions_is_bounded_by_the_machines_memory() -> None:
    # A budget with room for exactly one session (its own share value: its own budget).
    one = Quotas()
    share = (one.tmpfs_bytes * 1.5) / machine_memory_bytes()
    quotas = Quotas(tmpfs_share=share)

    async def scenario() -> None:
        async with Executor(None, quotas=quotas, privacy=False) as first:
            second = Executor(None, quotas=quotas, privacy=False)
            with pytest.raises(QuotaError, match="no room for another session"):
                await second.start()
            assert (await first.execute("1")).value == 1
        # The first one ended: its share is free again.
        async with Executor(None, quotas=quotas, privacy=False) as third:
            assert (await third.execute("2")).value == 2

    asyncio.run(scenario())


def test_sessions_per_client_and_unread_answers_are_bounded(package: Path) -> None:
    running = start_serve(
        package,
        "--sessions-per-client",
        "2",
        "--max-sessions",
        "3",
        "--idle-timeout",
        "3",
        "--warm",
        "0",  # the sandboxes counted below are the sessions'
    )
    try:
        asyncio.run(_limits(running))
    finally:
        stop_serve(running)


async def _limits(served: Served) -> None:
    async with httpx2.AsyncClient(timeout=120) as http:
        first, second, third = (RawSession(http, served.url) for _ in range(3))
        assert await first.open() == 200
        assert await second.open() == 200
        assert await third.open() == 429  # a third session from the same address

        # Another address (loopback is all of 127/8) may open one: the total is 3.
        elsewhere = httpx2.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx2.AsyncClient(timeout=120, transport=elsewhere) as other_http:
            other, more = RawSession(other_http, served.url), RawSession(other_http, served.url)
            assert await other.open() == 200
            assert await more.open() == 503  # all 3 sessions are taken
            await other.close()

        # Requests whose answers are not yet read: at most 8 per session.
        slow = first.call("execute_code", code="import time\ntime.sleep(0.3)\n'done'")
        pending = [asyncio.ensure_future(first.send(dict(slow, id=100 + i))) for i in range(8)]
        await asyncio.sleep(0.3)
        status, body = await first.send(first.call("read_module", path="servers"))
        assert status == 429 and "requests whose answers are not yet read" in body
        answers = await asyncio.gather(*pending)
        assert [status for status, _ in answers] == [200] * 8
        assert all("value: 'done'" in body for _, body in answers)
        status, body = await first.send(first.call("read_module", path="servers"))
        assert status == 200  # answered: room again

        # An idle session ends (with its sandbox) after the idle timeout; its slot is free.
        assert len(sandbox_dirs(served)) == 1
        await wait_for(lambda: not sandbox_dirs(served), 30, "the idle session's sandbox to go")
        assert await third.open() == 200
        await second.close()
        await third.close()


def test_sessions_opened_at_once_from_one_address_each_count_once() -> None:
    """A session registered at `initialize` stops counting as one being opened, though its
    answer is not yet written: eight sessions opened at once from one address all open.

    The SDK's app is replaced by one that registers its session the way `SessionTracking`
    does and then holds its answer: the window a busy server leaves open, which the real
    one cannot be made to show on demand.
    """
    from codegen.serve.limits import _OPENED, Admission, ServeLimits

    limits = ServeLimits()
    release = asyncio.Event()

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        number = len(admission.registry.owners)
        admission.registry.owners[f"session-{number}"] = "10.0.0.1"
        opened = scope.get(_OPENED)
        assert callable(opened)
        opened()
        await release.wait()  # the answer is late
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    admission = Admission(app, limits)  # type: ignore[arg-type]

    async def scenario() -> list[int]:
        statuses: list[int] = []

        async def post() -> None:
            async def receive() -> dict[str, object]:
                return {"type": "http.request", "body": b"{}", "more_body": False}

            async def send(message: dict[str, object]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(int(message["status"]))  # type: ignore[call-overload]

            scope = {"type": "http", "method": "POST", "headers": [], "client": ("10.0.0.1", 1)}
            await admission(scope, receive, send)

        tasks = [asyncio.ensure_future(post()) for _ in range(limits.sessions_per_client)]
        await asyncio.sleep(0.1)  # every one registered, none answered
        extra = asyncio.ensure_future(post())  # one more than allowed: refused at once
        await asyncio.sleep(0.1)
        release.set()
        await asyncio.gather(*tasks, extra)
        return statuses

    statuses = asyncio.run(scenario())
    assert sorted(statuses) == [200] * limits.sessions_per_client + [429]


# --- a kept state (`run`/`exec --state DIR`) --------------------------------------------

KEEP = """
import os
open("/state/plain.txt", "w").write("kept")
open("/state/tool", "w").write("#!/bin/sh\\n")
os.chmod("/state/tool", 0o6755)          # setuid and setgid
os.mkdir("/state/dir")
os.chmod("/state/dir", 0o3777)           # setgid and sticky
os.symlink("/etc/passwd", "/state/link")
os.mkfifo("/state/fifo")
[oct(os.stat("/state/tool").st_mode & 0o7777), os.path.exists("/state/fifo")]
"""


def test_a_kept_state_comes_back_without_setuid_bits_or_special_files(tmp_path: Path) -> None:
    kept = tmp_path / "kept"

    async def scenario() -> list[object]:
        async with Executor(None, privacy=False, state_dir=kept) as executor:
            result = await executor.execute(KEEP)
            assert result.error is None, result.error
            return list(result.value)

    inside = asyncio.run(scenario())
    assert inside == ["0o6755", True]  # the code could set them in its sandbox...
    names = sorted(p.name for p in kept.iterdir())
    assert names == [KEPT_MARKER, "dir", "link", "plain.txt", "tool"]  # ...no FIFO came out
    assert stat.S_IMODE((kept / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((kept / "dir").stat().st_mode) == 0o777
    assert os.readlink(kept / "link") == "/etc/passwd"  # a link, never followed
    assert (kept / "plain.txt").read_text(encoding="utf-8") == "kept"
    assert all(p.lstat().st_uid == os.getuid() for p in kept.iterdir())

    # The next run starts from it; a directory that is not a kept state is refused.
    async def again() -> object:
        async with Executor(None, privacy=False, state_dir=kept) as executor:
            return (await executor.execute("open('/state/plain.txt').read()")).value

    assert asyncio.run(again()) == "kept"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not a state", encoding="utf-8")
    from codegen.sandbox import SandboxError

    with pytest.raises(SandboxError, match="not empty and was not made by --state"):
        asyncio.run(Executor(None, privacy=False, state_dir=foreign).start())
    assert (foreign / "mine.txt").read_text(encoding="utf-8") == "not a state"


def test_copying_a_state_drops_device_files(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    os.mknod(source / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (source / "data").write_bytes(b"1")
    os.chmod(source / "data", 0o4755)
    copy_state(source, target, owner=None)
    assert sorted(p.name for p in target.iterdir()) == ["data"]
    assert stat.S_IMODE((target / "data").stat().st_mode) == 0o755
    # A tree deeper than a state is copied: no recursion, and it stops at 100 levels.
    deep = source / "deep"
    (deep / "/".join(["d"] * 150)).mkdir(parents=True)
    again = tmp_path / "again"
    again.mkdir()
    copy_state(source, again, owner=None)
    levels, walk = 0, again / "deep"
    while (walk / "d").is_dir():
        levels, walk = levels + 1, walk / "d"
    assert levels == 99  # "deep" itself is the first of the 100
