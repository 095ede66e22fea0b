"""A sandbox whose start does not grow with the catalog, and sandboxes started ahead (issue 12).

Real gVisor, a package of 3,000 real tool definitions against one of 10 (built
once into `.demo/catalogs/`, see `bench/catalogs.py`), the demo's `time` server
behind the bridge, and the real `serve`. Times are in `bench/serve_bench.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import mcp_types
import pytest
from mcp import Client, StdioServerParameters

from bench.catalogs import CATALOG_PACKAGE, SOURCES, catalog_package
from codegen.runtime.direct import DirectTransport
from codegen.sandbox import Executor
from codegen.sandbox.bridge.limits import CpuBudget
from codegen.sandbox.inside.worker import learnable
from codegen.sandbox.runsc import processes_naming
from codegen.sandbox.warmpool import WarmPool
from codegen.serve.sessions import Workspaces
from tests.conftest import ROOT, serve_url, write_config

TIME = ROOT / ".demo/venvs/time/bin/mcp-server-time"
LARGE = 3000

pytestmark = pytest.mark.skipif(
    not all(source.exists() for source in SOURCES), reason="the shared data is not beside the repo"
)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mcp.json with the demo's real `time` server."""
    assert TIME.exists(), f"{TIME} is missing: run `make setup`"
    entry = {"command": str(TIME), "args": ["--local-timezone", "UTC"]}
    return write_config(tmp_path_factory.mktemp("scale") / "mcp.json", {"time": entry})


class Catalogs(dict[int, Path]):
    """Built catalogs by size, each built on first use (the first build of 3,000 tools takes
    a minute, of 10,000 a few; later ones reuse `.demo/catalogs`)."""

    def __missing__(self, count: int) -> Path:
        self[count] = catalog_package(count)
        return self[count]


@pytest.fixture(scope="module")
def packages() -> Catalogs:
    """The catalogs of real tools, by size."""
    return Catalogs()


def private_kib(pids: list[int]) -> int:
    """Memory of `pids` that no other process shares (USS), in KiB: other sandboxes on the
    machine share the runsc binary's pages, which would move a PSS between measurements."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines():
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    return total


INSIDE = """
import sys
tools = sorted(name for name in sys.modules if name.startswith("%s.servers."))
rss = next(int(line.split()[1]) for line in open("/proc/1/status") if line.startswith("VmRSS:"))
{"tools": tools, "modules": len(sys.modules), "worker_rss_kib": rss}
"""


async def _first_session(package: Path, config: Path) -> dict[str, Any]:
    """What a new session's sandbox holds before any tool is used, and after one is."""
    host = DirectTransport(config)
    executor = Executor(package, transport=host, skills_dir=False)
    try:
        await executor.start()
        first = await executor.execute(INSIDE % CATALOG_PACKAGE)
        assert first.error is None, first.error
        await asyncio.sleep(1)
        assert executor._workdir is not None
        seen: dict[str, Any] = dict(first.value)
        seen["host_private_kib"] = private_kib(processes_naming(str(executor._workdir)))
        # A tool is imported where it is used, and calls the real server through the bridge.
        call = await executor.execute(
            'from servers.time import get_current_time\n(await get_current_time(timezone="UTC")).timezone'
        )
        assert call.error is None and call.value == "UTC", call
        # The worker imported it afterwards: the next execution starts with it.
        later = await executor.execute(INSIDE % CATALOG_PACKAGE)
        seen["later_tools"] = later.value["tools"]
        return seen
    finally:
        await executor.aclose()
        await host.aclose()


@pytest.mark.parametrize("size", [LARGE, pytest.param(10_000, marks=pytest.mark.slow)])
def test_a_new_sandbox_imports_no_tool_module_whatever_the_catalog(
    packages: Catalogs, config: Path, size: int
) -> None:
    small = asyncio.run(_first_session(packages[10], config))
    large = asyncio.run(_first_session(packages[size], config))
    # The worker imported the package but none of its 10 or 3,000 tool modules...
    assert small["tools"] == [] and large["tools"] == []
    # ...so a child of either starts with the same modules, and the worker's memory is the
    # same (importing 3,000 tool modules made it ~60 MiB larger, 10,000 ~180 MiB).
    assert small["modules"] == large["modules"]
    assert large["worker_rss_kib"] < small["worker_rss_kib"] + 8 * 1024, (small, large)
    assert large["host_private_kib"] < small["host_private_kib"] + 16 * 1024, (small, large)
    # Used once, a tool is imported by the worker for the session's later executions.
    learned = [
        f"{CATALOG_PACKAGE}.servers.time",
        f"{CATALOG_PACKAGE}.servers.time.get_current_time",
    ]
    assert large["later_tools"] == learned and small["later_tools"] == learned


def test_the_worker_learns_only_tool_modules_of_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = "pkg.servers."
    hostile: Any = [
        "os",
        "pkg._runtime.direct",
        "pkg.serversx.a",
        "pkg.servers.a.b.c",
        "pkg.servers.__init__",
        "pkg.servers.a.__main__",
        "pkg.servers.a-b",
        "pkg.servers.a..b",
        "pkg.servers.",
        7,
        None,
        ["pkg.servers.a"],
        "sys",
    ]
    assert learnable(hostile, "pkg", 10) == []
    assert learnable("pkg.servers.a", "pkg", 10) == []  # not a list
    assert learnable({"pkg.servers.a": 1}, "pkg", 10) == []
    good = [f"{prefix}s{index}.tool" for index in range(100)]
    assert learnable(good, "pkg", 5) == good[:5]
    assert learnable(good, "pkg", 0) == []
    # A module the worker has imported already is not imported again.
    monkeypatch.setitem(sys.modules, f"{prefix}time", types.ModuleType(f"{prefix}time"))
    assert learnable([f"{prefix}time", f"{prefix}time.now"], "pkg", 10) == [f"{prefix}time.now"]


# --- sandboxes started ahead -----------------------------------------------------------------------


def test_a_pool_never_hands_an_executor_out_twice() -> None:
    async def scenario() -> None:
        pool = WarmPool(lambda: Executor(None, privacy=False, skills_dir=False), 2)
        pool.fill()
        taken = await asyncio.gather(*(pool.take() for _ in range(3)))
        try:
            assert len({id(executor) for executor in taken}) == 3
            assert len({executor.state_dir for executor in taken}) == 3
            for index, executor in enumerate(taken):
                result = await executor.execute(
                    f"import os\nopen('/state/mine', 'w').write('{index}')\n"
                    "open('/workspace/mine', 'w').write('x')\nsorted(os.listdir('/state'))"
                )
                assert result.value == ["mine"], result
            for index, executor in enumerate(taken):
                assert executor.state_dir is not None
                assert (executor.state_dir / "mine").read_text() == str(index)
            assert len(pool) == 2  # refilled
        finally:
            for executor in taken:
                await executor.aclose()
            await pool.aclose()
        assert all(
            executor.state_dir is None or not executor.state_dir.exists() for executor in taken
        )

    asyncio.run(scenario())


def test_a_cancelled_take_puts_the_executor_back() -> None:
    async def scenario() -> None:
        made: list[Executor] = []

        def factory() -> Executor:
            made.append(Executor(None, privacy=False, skills_dir=False))
            return made[-1]

        pool = WarmPool(factory, 1, refill=False)
        pool.fill()
        waiting = asyncio.ensure_future(pool.take())
        await asyncio.sleep(0.1)  # it waits for the one starting
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        executor = await pool.take()
        try:
            assert made == [executor]  # the same one, not a second start
            assert (await executor.execute("6 * 7")).value == 42
        finally:
            await executor.aclose()
            await pool.aclose()

    asyncio.run(scenario())


def test_a_pooled_executor_charges_its_session_budget() -> None:
    """Made before its session, the executor's host work (the result's scan here, tool
    calls and scans of its bridge too) is charged to the session that takes it."""

    async def scenario() -> None:
        budgets: dict[Hashable, CpuBudget] = {}
        pool = WarmPool(lambda: Executor(None, skills_dir=False), 1)
        workspaces = Workspaces(
            pool, lambda key, executor: executor.use_budget(budgets.setdefault(key, CpuBudget()))
        )
        pool.fill()
        try:
            first, second = await workspaces.get("a"), await workspaces.get("b")
            assert first is not second
            assert first.cpu_budget is budgets["a"] and second.cpu_budget is budgets["b"]
            assert (await first.execute("'x' * 1000")).value == "x" * 1000
            assert budgets["a"].spent > 0 and budgets["b"].spent == 0
        finally:
            await workspaces.aclose()

    asyncio.run(scenario())


@pytest.fixture
def http_serve(packages: Catalogs, config: Path) -> Iterator[tuple[str, Path]]:
    """`serve --transport http --warm 1` over the 10-tool catalog, with its own TMPDIR."""
    tmp = Path(tempfile.mkdtemp(prefix="warm-", dir="/tmp"))  # short: socket paths
    command = [sys.executable, "-m", "codegen.serve", "--config", str(config)]
    command += ["--package", str(packages[10]), "--skills", str(tmp / "skills")]
    command += ["--transport", "http", "--port", "0", "--warm", "1"]
    process = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=str(tmp))
    )
    url = serve_url(process)
    try:
        yield url, tmp
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            process.kill()
        left = list(tmp.glob("mcp-codegen-sandbox-*"))
        mounts = [
            line for line in Path("/proc/mounts").read_text().splitlines() if str(tmp) in line
        ]
        shutil.rmtree(tmp, ignore_errors=True)
        assert process.returncode == 0
        assert not left and not mounts, "a sandbox or a /state mount outlived serve"


def sandbox_dirs(tmp: Path) -> set[Path]:
    return set(tmp.glob("mcp-codegen-sandbox-*"))


async def wait_for_sandboxes(tmp: Path, count: int, seconds: float = 60) -> set[Path]:
    """The sandbox directories once `count` of them have a running sandbox."""
    end = time.monotonic() + seconds
    while True:
        found = {path for path in sandbox_dirs(tmp) if processes_naming(str(path))}
        if len(found) == count:
            return found
        assert time.monotonic() < end, f"{len(found)} sandboxes, not {count}"
        await asyncio.sleep(0.1)


async def run(client: Client, code: str) -> str:
    result = await client.call_tool("execute_code", {"code": code})
    block = result.content[0]
    assert isinstance(block, mcp_types.TextContent)
    assert not result.is_error, block.text
    return block.text


WRITE = """
import os
open("/workspace/{name}.txt", "w").write("{name}")
open("/state/{name}.txt", "w").write("{name}")
async def {name}_skill() -> str:
    \"\"\"A skill of session {name}.\"\"\"
    return "{name}"
save_skill({name}_skill)
sorted(os.listdir("/workspace")), sorted(os.listdir("/state"))
"""
LOOK = """
import importlib.util, os
sorted(os.listdir("/workspace")), sorted(os.listdir("/state")), [
    importlib.util.find_spec(f"skills.{{name}}_skill") is not None for name in ("a", "b")
]
"""


def test_serve_hands_each_new_session_its_own_sandbox_started_ahead(
    http_serve: tuple[str, Path],
) -> None:
    url, tmp = http_serve

    async def scenario() -> None:
        (ahead,) = await wait_for_sandboxes(tmp, 1)  # started before any session
        async with Client(url) as a:
            output = await run(a, WRITE.format(name="a"))
            assert "value: (['a.txt'], ['a.txt'])" in output
            # Session a got the sandbox started ahead: its /state is that sandbox's.
            assert (ahead / "session-state" / "a.txt").read_text() == "a"
            (next_ahead,) = await wait_for_sandboxes(tmp, 2) - {ahead}  # the pool refilled
            async with Client(url) as b:
                output = await run(b, WRITE.format(name="b"))
                assert "value: (['b.txt'], ['b.txt'])" in output
                assert (next_ahead / "session-state" / "b.txt").read_text() == "b"
                # Neither sees the other's files or skills.
                output = await run(b, LOOK.format())
                assert "value: (['b.txt'], ['b.txt'], [False, True])" in output
                output = await run(a, LOOK.format())
                assert "value: (['a.txt'], ['a.txt'], [True, False])" in output
                third = await wait_for_sandboxes(tmp, 3) - {ahead, next_ahead}
        # Both sessions ended: their sandboxes went, the one started ahead for the next stays.
        end = time.monotonic() + 30
        while sandbox_dirs(tmp) != third:
            assert time.monotonic() < end, f"left: {sandbox_dirs(tmp)}, expected {third}"
            await asyncio.sleep(0.1)
        (spare,) = third
        assert not any((spare / "session-state").iterdir())

    asyncio.run(scenario())


def test_stdio_serve_starts_its_sessions_sandbox_at_once(
    packages: Catalogs, config: Path, tmp_path: Path
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="warm-", dir="/tmp"))
    command = ["-m", "codegen.serve", "--config", str(config), "--package", str(packages[10])]
    command += ["--skills", str(tmp_path / "skills")]
    parameters = StdioServerParameters(
        command=sys.executable,
        args=command,
        cwd=str(ROOT),
        env=dict(os.environ, TMPDIR=str(tmp)),
    )

    async def scenario() -> None:
        async with Client(parameters) as client:
            (started,) = await wait_for_sandboxes(tmp, 1)  # before any execute_code
            output = await run(client, "open('/state/x', 'w').write('x')")
            assert "value: 1" in output
            assert (started / "session-state" / "x").read_text() == "x"
            assert sandbox_dirs(tmp) == {started}  # used, not replaced: one session

    try:
        asyncio.run(scenario())
        deadline = time.monotonic() + 30
        while sandbox_dirs(tmp) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not sandbox_dirs(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_catalog_is_real_and_its_size(packages: Catalogs) -> None:
    snapshot = json.loads((packages[LARGE] / "mcp-snapshot.json").read_text(encoding="utf-8"))
    assert sum(len(server["tools"]) for server in snapshot["servers"]) == LARGE
    modules = list((packages[LARGE] / CATALOG_PACKAGE / "servers").glob("*/*.py"))
    assert len([path for path in modules if path.name != "__init__.py"]) >= LARGE - 10
