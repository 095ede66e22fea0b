"""Benchmark `serve` as the catalog and the sessions grow (issue 12): writes bench/results/serve.md.

    .venv/bin/python bench/serve_bench.py [--sizes 10,3000,10000] [--sessions 50] [--runs 8]

Packages of 10, 3,000 and 10,000 real tool definitions (`bench/catalogs.py`, the
demo's `time` server in front; built once into `.demo/catalogs/`). For each size:

- a new session's first `execute_code` through the real `serve --transport http`
  and the SDK's client: with sandboxes started ahead (the default `--warm 2`)
  and without (`--warm 0`, each session starts its own);
- `Executor.start()` to a ready sandbox, and the host memory of one idle sandbox
  (PSS of its runsc, gofer, sentry and ptrace stubs; no other sandbox of this
  run alive), fresh and after a tool call.

Then, on the 10-tool package: warm trivial `execute_code` through `serve` (stdio
and HTTP), spaced 0.2 s; `--sessions` sessions at once over HTTP, each running 20
executions with a tool call; and gVisor checkpoint/restore of a warmed sandbox
against a cold start, which decided how new sessions get a warm sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from bench._common import percentile  # noqa: E402
from bench.catalogs import catalog_package  # noqa: E402
from codegen.runtime.direct import DirectTransport  # noqa: E402
from codegen.sandbox import Executor  # noqa: E402
from codegen.sandbox.runsc import processes_naming  # noqa: E402

TIME = ROOT / ".demo/venvs/time/bin/mcp-server-time"
TOOL_CODE = (
    'from servers.time import get_current_time\n(await get_current_time(timezone="UTC")).timezone'
)
SPACING = 0.2


def pss_mib(pids: list[int]) -> float:
    """Proportional set size of `pids` together, in MiB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total / 1024


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def p(values: list[float], fraction: float = 0.5) -> float:
    return percentile(values, fraction) if values else float("nan")


# --- serve as a process ---------------------------------------------------------------------------


class Serve:
    """A running `serve --transport http` with its own TMPDIR (its sandboxes are under it)."""

    def __init__(self, process: subprocess.Popen[str], url: str, tmp: Path):
        self.process, self.url, self.tmp = process, url, tmp

    def sandbox_pids(self) -> list[int]:
        """The host processes of its sandboxes (runsc, gofer, sentry, stubs: each names its
        sandbox's directory; `serve` itself names only the skills directory under TMPDIR)."""
        return processes_naming(str(self.tmp / "mcp-codegen-sandbox-"))

    def sandboxes(self) -> int:
        return len(list(self.tmp.glob("mcp-codegen-sandbox-*")))


@contextlib.contextmanager
def serve_http(
    package: Path,
    config: Path,
    *extra: str,
    small_quotas: bool = False,
    code: Path = ROOT,
) -> Iterator[Serve]:
    """Start `serve` over HTTP on a free port; stop it (and check it cleaned up) at the end.

    `code` is the checkout whose `codegen` runs (another one for `--baseline`).
    """
    tmp = Path(tempfile.mkdtemp(prefix="bserve-", dir="/tmp"))  # short: socket paths
    if small_quotas:
        command = [
            sys.executable,
            str(Path(__file__)),
            "serve-small-quotas",
            str(package),
            str(config),
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "codegen.serve",
            "--config",
            str(config),
            "--package",
            str(package),
        ]
        command += ["--skills", str(tmp / "skills"), "--transport", "http", "--port", "0", *extra]
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(code))
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=code)
    assert process.stderr is not None
    url = None
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        match = re.search(r"listening on (http://\S+)", line)
        url = match.group(1) if match else None
    assert url, "serve did not start"
    try:
        yield Serve(process, url, tmp)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=180)
        finally:
            process.kill()
        left = list(tmp.glob("mcp-codegen-sandbox-*"))
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, "a sandbox outlived serve"


def serve_small_quotas(package: str, config: str) -> None:
    """`serve` over HTTP for the many-sessions run: 64 sessions, smaller tmpfs per session.

    The defaults reserve 320 MiB of tmpfs per session against half the machine's
    memory (12 GiB here: 37 sessions), and allow 32 sessions; 50 sessions need both
    raised. The sizes are the policy's (they replace those of `quotas`, as the
    config's `sandbox` section does): before, these quotas were silently replaced by
    the policy's defaults, and 50 sessions at once could pass the tmpfs budget.
    Everything else is the real `serve`.
    """
    from codegen.package import locate_package
    from codegen.sandbox.policy import SandboxPolicy
    from codegen.sandbox.quotas import Quotas, ServeLimits
    from codegen.serve.app import ServeSettings, build_server, run_http

    tmp = Path(tempfile.gettempdir())
    limits = ServeLimits(max_sessions=64)
    settings = ServeSettings(
        package=locate_package(Path(package)),
        config=Path(config),
        transport="http",
        skills_dir=tmp / "skills",
        quotas=Quotas(workspace_mb=64, tmp_mb=32, state_mb=32),
        policy=SandboxPolicy(workspace_mb=64, tmp_mb=32, state_mb=32),
        limits=limits,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_http(build_server(settings), "127.0.0.1", 0, limits=limits))


@contextlib.asynccontextmanager
async def session(url: str, address: str = "127.0.0.1") -> AsyncIterator[Client]:
    """A new MCP session of the SDK's client, from client address `address`."""
    transport = httpx2.AsyncHTTPTransport(local_address=address)
    timeout = httpx2.Timeout(30, read=600)
    async with (
        httpx2.AsyncClient(transport=transport, timeout=timeout) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def execute(client: Client, code: str) -> tuple[float, str, bool]:
    """(milliseconds, text, error) of one `execute_code`."""
    started = time.perf_counter()
    result = await client.call_tool("execute_code", {"code": code})
    elapsed = (time.perf_counter() - started) * 1000
    block = result.content[0]
    return elapsed, getattr(block, "text", ""), bool(result.is_error)


# --- per catalog size ------------------------------------------------------------------------------


async def first_executions(
    serve: Serve,
    runs: int,
    gap: float,
    kinds: tuple[str, ...] = ("trivial", "tool"),
    strict: bool = True,
) -> dict[str, Any]:
    """A new session's first `execute_code`, `runs` of each kind; and, for `serve` with no
    sandbox started ahead, the host memory of the first session's sandbox, idle."""
    found: dict[str, Any] = {kind: [] for kind in kinds}
    if "tool" in kinds:
        async with session(serve.url) as client:  # `serve` starts the `time` server on first use
            await execute(client, TOOL_CODE)
        await asyncio.sleep(gap)
    for index in range(len(kinds) * runs):
        kind = kinds[index % len(kinds)]
        async with session(serve.url) as client:
            elapsed, text, error = await execute(client, "1" if kind == "trivial" else TOOL_CODE)
            ok = not error and ("value: 1" in text or "'UTC'" in text)
            assert ok or not strict, text
            if not ok:
                found.setdefault("errors", []).append(text[:300])
                continue
            found[kind].append(elapsed)
            if index == 0 and serve.sandboxes() == 1:
                await asyncio.sleep(2)
                found["idle sandbox (MiB)"] = pss_mib(serve.sandbox_pids())
        await asyncio.sleep(gap)  # the pool starts its replacement meanwhile
    return found


async def one_sandbox(package: Path, config: Path) -> dict[str, float]:
    """Start to ready, and host memory of one idle sandbox, fresh and after a tool call."""
    host = DirectTransport(config)
    try:
        await host.call_tool("time", "get_current_time", {"timezone": "UTC"})  # server started
        executor = Executor(package, transport=host, skills_dir=False)
        started = time.perf_counter()
        await executor.start()
        start = time.perf_counter() - started
        assert (await executor.execute("1")).value == 1
        await asyncio.sleep(2)
        assert executor._workdir is not None
        idle = pss_mib(processes_naming(str(executor._workdir)))
        result = await executor.execute(TOOL_CODE)
        assert result.value == "UTC", result
        await asyncio.sleep(2)
        used = pss_mib(processes_naming(str(executor._workdir)))
        modules = await executor.execute(
            "import sys\nsum(1 for name in sys.modules if '.servers.' in name)"
        )
        await executor.aclose()
    finally:
        await host.aclose()
    return {"start": start, "idle": idle, "used": used, "tool modules": float(modules.value or 0)}


def cli_exec(package: Path, config: Path, code: Path, runs: int = 3) -> float:
    """Median seconds of the whole `mcp-codegen exec -c 1` command, from the checkout `code`."""
    command = [sys.executable, "-m", "codegen", "exec", "--package", str(package)]
    command += ["--config", str(config), "-c", "1"]
    env = dict(os.environ, PYTHONPATH=str(code))
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=code, env=env, check=False
        )
        samples.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr[-500:]
    return p(samples)


async def per_size(size: int, config: Path, runs: int, baseline: Path | None) -> dict[str, Any]:
    package = catalog_package(size)
    figures: dict[str, Any] = {"size": size}
    figures.update(await one_sandbox(package, config))
    figures["exec"] = await asyncio.to_thread(cli_exec, package, config, ROOT)
    if baseline is not None and size <= 3000:  # at 10,000 tools it took about a minute a run
        figures["baseline exec"] = await asyncio.to_thread(cli_exec, package, config, baseline, 2)
    with serve_http(package, config) as serve:
        await asyncio.sleep(8)  # the warm sandboxes start
        figures["serve idle (MiB)"] = pss_mib(descendants(serve.process.pid)) - pss_mib(
            serve.sandbox_pids()
        )
        figures["warm"] = await first_executions(serve, runs, gap=4.0)
    with serve_http(package, config, "--warm", "0") as serve:
        figures["cold"] = await first_executions(serve, max(2, runs // 2), gap=1.0)
    if baseline is not None:
        # The code before this change: each session starts its sandbox, which imports
        # every tool module. Slow at large sizes, so only two sessions.
        with serve_http(package, config, code=baseline) as serve:
            figures["baseline"] = await first_executions(
                serve, 2, gap=1.0, kinds=("trivial",), strict=False
            )
    return figures


# --- warm executions, many sessions ----------------------------------------------------------------


async def _stdio_samples(
    package: Path,
    config: Path,
    runs: int,
    code: Path,
    *extra: str,
    pings: list[float] | None = None,
) -> list[float]:
    """Trivial `execute_code` through `serve` over stdio, spaced 0.2 s; with `pings`, a
    `tools/list` between them too (the MCP round trip alone, same client and server)."""
    command = ["-m", "codegen.serve", "--config", str(config), "--package", str(package), *extra]
    parameters = StdioServerParameters(
        command=sys.executable,
        args=command,
        cwd=str(code),
        env=dict(os.environ, PYTHONPATH=str(code)),
    )
    samples = []
    async with Client(parameters) as client:
        for _ in range(3):
            await execute(client, "1")
        for _ in range(runs):
            elapsed, _, error = await execute(client, "1")
            assert not error
            samples.append(elapsed)
            await asyncio.sleep(SPACING)
            if pings is not None:
                started = time.perf_counter()
                await client.list_tools()
                pings.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(SPACING)
    return samples


async def _executor_samples(
    package: Path, config: Path, runs: int, inside: list[float]
) -> list[float]:
    """`Executor.execute("1")` alone, spaced 0.2 s; the worker's own time of each (from the
    job handed to the spare to the outcome read) goes to `inside`."""
    from codegen.sandbox import channel

    original = channel.WorkerProcess.execute
    seen: list[float] = []

    async def recorded(self: Any, job: Any, timeout: float) -> Any:
        raw = await original(self, job, timeout)
        seen.append(float(raw.get("seconds") or "nan") * 1000)
        return raw

    host = DirectTransport(config)
    executor = Executor(package, transport=host, skills_dir=False)
    samples = []
    channel.WorkerProcess.execute = recorded  # type: ignore[method-assign]
    try:
        await executor.start()
        for _ in range(3):
            await executor.execute("1")
        seen.clear()
        for _ in range(runs):
            started = time.perf_counter()
            result = await executor.execute("1")
            samples.append((time.perf_counter() - started) * 1000)
            assert result.value == 1, result
            await asyncio.sleep(SPACING)
        inside += seen
    finally:
        channel.WorkerProcess.execute = original  # type: ignore[method-assign]
        await executor.aclose()
        await host.aclose()
    return samples


COSTS = """
import json, os, time
n = 2000
started = time.perf_counter()
for _ in range(n):
    os.getpid()
syscall = (time.perf_counter() - started) / n * 1e6
to_child, from_parent = os.pipe()
to_parent, from_child = os.pipe()
pid = os.fork()
if pid == 0:
    for _ in range(200):
        os.read(to_child, 1)
        os.write(from_child, b"x")
    os._exit(0)
started = time.perf_counter()
for _ in range(200):
    os.write(from_parent, b"x")
    os.read(to_parent, 1)
switch = (time.perf_counter() - started) / 200 * 1e6
os.waitpid(pid, 0)
started = time.perf_counter()
for _ in range(10):
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)
fork = (time.perf_counter() - started) / 10 * 1e3
print(json.dumps([syscall, switch, fork]))
"""
"""What bounds a warm execution: a system call (`getpid`), a round trip between two
processes over pipes, and fork + exit + wait, in microseconds / milliseconds."""


async def gvisor_costs(rounds: int = 3) -> dict[str, float]:
    """`COSTS` inside gVisor and on the host, alternating, medians of `rounds`."""
    inside: list[list[float]] = []
    outside: list[list[float]] = []
    executor = Executor(None, privacy=False, skills_dir=False)
    try:
        await executor.start()
        for _ in range(rounds):
            result = await executor.execute(COSTS, timeout=120)
            assert result.error is None, result.error
            inside.append(json.loads(result.stdout))
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", COSTS], capture_output=True, check=True
            )
            outside.append(json.loads(done.stdout))
    finally:
        await executor.aclose()
    figures = {}
    for index, name in enumerate(("syscall", "switch", "fork")):
        figures[f"{name} gvisor"] = p([row[index] for row in inside])
        figures[f"{name} host"] = p([row[index] for row in outside])
    return figures


async def warm_latency(
    package: Path, config: Path, runs: int, baseline: Path | None, rounds: int = 3
) -> dict[str, float]:
    """p50 of a trivial `execute_code`, spaced 0.2 s, over stdio (in rounds, alternating
    with the baseline's, so both see the same load) and over HTTP; and where its time
    goes: the MCP round trip, the executor alone, the worker inside, and `serve` with
    no sandbox (`--unsafe-local`), each in the same rounds."""
    figures: dict[str, float] = {}
    found: dict[str, list[float]] = {
        key: [] for key in ("mine", "theirs", "ping", "executor", "inside", "unsafe")
    }
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        found["mine"] += await _stdio_samples(package, config, per_round, ROOT, pings=found["ping"])
        if baseline is not None:
            found["theirs"] += await _stdio_samples(package, config, per_round, baseline)
        found["executor"] += await _executor_samples(package, config, per_round, found["inside"])
        found["unsafe"] += await _stdio_samples(package, config, per_round, ROOT, "--unsafe-local")
    names = {
        "mine": "stdio",
        "theirs": "baseline stdio",
        "ping": "tools/list",
        "executor": "executor",
        "inside": "inside",
        "unsafe": "unsafe-local",
    }
    for key, name in names.items():
        if found[key]:
            figures[f"{name} p50"], figures[f"{name} p95"] = p(found[key]), p(found[key], 0.95)
            figures[f"{name} p10"] = p(found[key], 0.1)
    figures["load"] = os.getloadavg()[0]
    figures.update(await gvisor_costs())
    with serve_http(package, config) as served:
        async with session(served.url) as client:
            for _ in range(3):
                await execute(client, "1")
            samples = []
            for _ in range(runs):
                elapsed, _, error = await execute(client, "1")
                assert not error
                samples.append(elapsed)
                await asyncio.sleep(SPACING)
    figures["http p50"], figures["http p95"] = p(samples), p(samples, 0.95)
    figures["http p10"] = p(samples, 0.1)
    return figures


async def many_sessions(package: Path, config: Path, count: int, each: int) -> dict[str, Any]:
    """`count` sessions at once, each running `each` executions with a tool call."""
    with serve_http(package, config, small_quotas=True) as serve:
        await asyncio.sleep(8)
        baseline = pss_mib(descendants(serve.process.pid)) + pss_mib(serve.sandbox_pids())
        latencies: list[float] = []
        firsts: list[float] = []
        errors: list[str] = []
        peak = baseline
        # Eight sessions per client address, the default per-client limit: 127.0.0.1, .2, ...
        addresses = [f"127.0.0.{1 + index // 8}" for index in range(count)]

        async def one(address: str) -> None:
            try:
                async with session(serve.url, address) as client:
                    for index in range(each):
                        elapsed, text, error = await execute(client, TOOL_CODE)
                        if error or "'UTC'" not in text:
                            errors.append(text[:200])
                        (firsts if index == 0 else latencies).append(elapsed)
            except Exception as exc:  # a session that could not open or broke
                while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                    exc = exc.exceptions[0]  # type: ignore[assignment]
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

        async def sample() -> None:
            nonlocal peak
            while True:
                pids = set(descendants(serve.process.pid)) | set(serve.sandbox_pids())
                peak = max(peak, await asyncio.to_thread(pss_mib, sorted(pids)))
                await asyncio.sleep(1.0)

        sampler = asyncio.ensure_future(sample())
        started = time.perf_counter()
        await asyncio.gather(*(one(address) for address in addresses))
        wall = time.perf_counter() - started
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    everything = firsts + latencies
    return {
        "sessions": count,
        "executions": len(everything),
        "errors": len(errors),
        "first errors": errors[:3],
        "wall": wall,
        "p50": p(everything),
        "p95": p(everything, 0.95),
        "max": max(everything) if everything else float("nan"),
        "first p50": p(firsts),
        "first p95": p(firsts, 0.95),
        "later p50": p(latencies),
        "later p95": p(latencies, 0.95),
        "baseline": baseline,
        "peak": peak,
        "addresses": len(set(addresses)),
    }


# --- checkpoint / restore ----------------------------------------------------------------------------


async def checkpoint_restore(package: Path, runs: int = 3) -> dict[str, float]:
    """A cold start to a first result, against a restore of a checkpointed warm sandbox."""
    from codegen.sandbox.bundle import BundleOptions
    from codegen.sandbox.channel import WorkerProcess
    from codegen.sandbox.executor import _resolve_package
    from codegen.sandbox.launch import GvisorLauncher, SharedDirs
    from codegen.sandbox.runsc import container_id

    import_dir, _ = _resolve_package(package)
    work = Path(tempfile.mkdtemp(prefix="bckpt-", dir="/tmp"))
    (work / "bridge").mkdir()
    launcher = GvisorLauncher(BundleOptions(package_dir=import_dir))
    launcher.prepare(work, work / "bridge", SharedDirs())
    assert launcher.runsc is not None and launcher.bundle is not None
    base = launcher.runsc.base()
    job: dict[str, Any] = {"id": "b", "code": "1", "filename": "<b>", "timeout": 30}
    job["bridge"] = {"socket": "", "token": ""}
    figures: dict[str, list[float]] = {"cold": [], "restore": [], "cold pss": [], "restore pss": []}
    image = work / "image"
    try:
        for attempt in range(runs + 1):
            spec = launcher.spec()
            worker = WorkerProcess(spec.command)
            started = time.perf_counter()
            await worker.start(120)
            result = await worker.execute(job, 60)  # type: ignore[arg-type]
            assert result.get("outcome", {}).get("value") == 1, result
            figures["cold"].append(time.perf_counter() - started)
            await asyncio.sleep(1)
            figures["cold pss"].append(pss_mib(processes_naming(str(work))))
            if attempt == 0:
                image.mkdir()
                started = time.perf_counter()
                done = subprocess.run(
                    [*base, "checkpoint", "--image-path", str(image), spec.container or ""],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert done.returncode == 0, done.stderr[-500:]
                checkpoint = time.perf_counter() - started
            await worker.stop(10)
            launcher.runsc.delete(spec.container or "")
        for _ in range(runs):
            container = container_id()
            command = [
                *base,
                "restore",
                "--image-path",
                str(image),
                "--bundle",
                str(launcher.bundle),
            ]
            restored = WorkerProcess([*command, container])
            started = time.perf_counter()
            # A restored worker says nothing first (its `ready` was said before the checkpoint).
            restored.process = await asyncio.create_subprocess_exec(
                *restored.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            restored._tasks = [
                asyncio.ensure_future(restored._read_stdout()),
                asyncio.ensure_future(restored._read_stderr()),
            ]
            result = await restored.execute(job, 120)  # type: ignore[arg-type]
            assert result.get("outcome", {}).get("value") == 1, result
            figures["restore"].append(time.perf_counter() - started)
            await asyncio.sleep(1)
            figures["restore pss"].append(pss_mib(processes_naming(str(work))))
            await restored.stop(10)
            launcher.runsc.delete(container)
        size = sum(path.stat().st_size for path in image.rglob("*") if path.is_file())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "checkpoint": checkpoint,
        "image": size / 1024 / 1024,
        "cold": p(figures["cold"][1:]),
        "restore": p(figures["restore"]),
        "cold pss": p(figures["cold pss"][1:]),
        "restore pss": p(figures["restore pss"]),
    }


# --- the report ----------------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"{p(values):.0f}" if values else "-"


def warm_section(warm: dict[str, float], size: int) -> list[str]:
    """The table of warm executions and where their time goes."""

    def row(name: str, key: str) -> str:
        if f"{key} p50" not in warm:
            return ""
        return (
            f"| {name} | {warm[f'{key} p50']:.1f} | {warm.get(f'{key} p10', float('nan')):.1f} | "
            f"{warm[f'{key} p95']:.1f} |"
        )

    rows = [
        row("stdio: `execute_code` as the client sees it", "stdio"),
        row("stdio, before (in rounds alternating with the line above)", "baseline stdio"),
        row("HTTP: `execute_code` as the client sees it", "http"),
        row("stdio: `tools/list` in the same session (the MCP round trip alone)", "tools/list"),
        row("stdio: `serve --unsafe-local` (the same path, no sandbox)", "unsafe-local"),
        row("`Executor.execute` alone (host -> worker in gVisor -> host)", "executor"),
        row(
            "of which the worker's own time inside gVisor (job to spare -> outcome read)", "inside"
        ),
    ]
    lines = [
        f"## Warm executions through `serve` (the {size:,}-tool package), spaced 0.2 s",
        "",
        f"Trivial `execute_code` (`1`). Load average when measured: {warm.get('load', 0):.1f} "
        "on 2 cores. p10 is near what a quiet machine gives.",
        "",
        "| what | p50 (ms) | p10 (ms) | p95 (ms) |",
        "| --- | --- | --- | --- |",
        *[line for line in rows if line],
        "",
    ]
    if "syscall gvisor" in warm:
        lines += [
            "What bounds it, measured in the same run (median of 3; inside a sandbox of this "
            "runsc, ptrace platform, and on the host):",
            "",
            "| cost | inside gVisor | on the host | ratio |",
            "| --- | --- | --- | --- |",
        ]
        for key, name, unit in (
            ("syscall", "a system call (`getpid`)", "us"),
            ("switch", "a round trip between two processes over pipes", "us"),
            ("fork", "fork + exit + wait of a child", "ms"),
        ):
            inside, outside = warm[f"{key} gvisor"], warm[f"{key} host"]
            lines.append(
                f"| {name} | {inside:.1f} {unit} | {outside:.1f} {unit} | {inside / outside:.0f}x |"
            )
        lines.append("")
    return lines


def report(
    sizes: list[dict[str, Any]],
    warm: dict[str, float],
    many: dict[str, Any],
    restore: dict[str, float],
    args: argparse.Namespace,
) -> str:
    runsc = subprocess.run(["runsc", "--version"], capture_output=True, text=True, check=False)
    by_size = {figures["size"]: figures for figures in sizes}
    ordered = sorted(by_size)
    names = " vs ".join(f"{size:,}" for size in ordered)
    baseline = args.baseline is not None
    command = (
        f"bench/serve_bench.py --sizes {args.sizes} --sessions {args.sessions} --runs {args.runs}"
    )
    lines = [
        "# serve at scale: new sessions, idle sandboxes, many sessions (issue 12)",
        "",
        f"`{command}{' --baseline DIR' if baseline else ''}`: {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
        f"{(runsc.stdout.splitlines() or ['runsc ?'])[0]} (ptrace). One run; medians unless it "
        "says p95. The machine is shared: absolute times move between runs, ratios less. "
        + (
            "*Before* is the code before this change (`--baseline`: main at c455afe, where the "
            "worker imported every tool module), measured in the same run."
            if baseline
            else ""
        ),
        "",
        "## Against the issue's targets",
        "",
        f"| figure | today (issue) | target | measured{' (before, same run)' if baseline else ''} |",
        "| --- | --- | --- | --- |",
    ]

    def before(size: int, key: str) -> str:
        if not baseline:
            return ""
        found = by_size[size]["baseline"]
        value = p(found["trivial"]) if key == "first" else found.get("idle sandbox (MiB)")
        unit = " ms" if key == "first" else " MiB"
        return f" ({value:.0f}{unit})" if value is not None else ""

    shown = " / ".join(
        f"{p(by_size[s]['warm']['trivial']):.0f} ms{before(s, 'first')}" for s in ordered
    )
    lines.append(
        f"| first `execute_code` of a new `serve` session, p50, {names} tools | "
        f"1.5 s / 10.0 s / ~30 s | <= 300 ms | {shown} |"
    )
    shown = " / ".join(f"{by_size[s]['idle']:.0f} MiB{before(s, 'idle')}" for s in ordered)
    lines.append(
        f"| host memory of one sandbox, idle, {names} tools | 76 / 136 (3,243) / ~300 MiB | "
        f"<= 100 MiB | {shown} |"
    )
    then = f" ({warm['baseline stdio p50']:.1f} ms)" if "baseline stdio p50" in warm else ""
    lines.append(
        f"| warm trivial `execute_code` through `serve`, spaced 0.2 s, p50 | 11.6 ms | <= 10 ms | "
        f"{warm['stdio p50']:.1f} ms stdio{then}, {warm['http p50']:.1f} ms HTTP |"
    )
    lines.append(
        f"| `serve` over HTTP, {many['sessions']} sessions at once, 20 executions each with a tool "
        f"call | not measured | 0 errors; p95 and peak memory | {many['errors']} errors of "
        f"{many['executions']}; p95 {many['p95']:.0f} ms; peak {many['peak'] / 1024:.1f} GiB |"
    )
    lines += [
        "",
        "## A new session, by catalog size",
        "",
        "A session's first `execute_code` (p50 ms; `1`, or a call of the `time` tool): with "
        "sandboxes started ahead (the default), with none (`--warm 0`)"
        + (", and before" if baseline else "")
        + ". Then one sandbox: `Executor.start()` to ready, host memory idle (PSS, alone; and "
        "as the only sandbox of a `serve`), after a tool call, and the tool modules its worker "
        "holds after that call. Last, the whole `mcp-codegen exec -c 1` command (a new "
        "interpreter, the snapshot read, one sandbox started, run and deleted).",
        "",
        "| tools | pool `1` (p50 / p95) | pool, tool call | `--warm 0` `1` | "
        + ("before `1` | before / pool | " if baseline else "")
        + "`--warm 0` / pool | start (s) | idle (MiB) | idle in serve (MiB) | "
        + ("before, idle in serve (MiB) | " if baseline else "")
        + "after a tool call (MiB) | tool modules | `serve` process (MiB) | `exec -c 1` (s) |"
        + (" before, `exec -c 1` (s) |" if baseline else ""),
    ]
    lines.append("|" + " --- |" * lines[-1].count(" | ") + " --- |")
    for size in ordered:
        f = by_size[size]
        pool, cold = p(f["warm"]["trivial"]), p(f["cold"]["trivial"])
        row = [
            f"{size:,}",
            f"{pool:.0f} / {p(f['warm']['trivial'], 0.95):.0f}",
            _ms(f["warm"]["tool"]),
            f"{cold:.0f}",
        ]
        if baseline:
            then = p(f["baseline"]["trivial"])
            row += [f"{then:.0f}", f"{then / pool:.0f}x"]
        row += [
            f"{cold / pool:.0f}x",
            f"{f['start']:.2f}",
            f"{f['idle']:.0f}",
            f"{f['cold'].get('idle sandbox (MiB)', float('nan')):.0f}",
        ]
        if baseline:
            row.append(f"{f['baseline'].get('idle sandbox (MiB)', float('nan')):.0f}")
        row += [f"{f['used']:.0f}", f"{f['tool modules']:.0f}", f"{f['serve idle (MiB)']:.0f}"]
        row.append(f"{f['exec']:.2f}")
        if baseline:
            row.append(f"{f['baseline exec']:.2f}" if "baseline exec" in f else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
    ]
    lines += warm_section(warm, min(by_size))
    lines += [
        f"## {many['sessions']} sessions at once over HTTP, 20 executions each with a tool call",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| sessions / executions / errors | {many['sessions']} / {many['executions']} / "
        f"{many['errors']} |",
        f"| client addresses (8 sessions each, the default per-client limit) | {many['addresses']} |",
        f"| wall time (s) | {many['wall']:.1f} |",
        f"| every execution: p50 / p95 / max (ms) | {many['p50']:.0f} / {many['p95']:.0f} / "
        f"{many['max']:.0f} |",
        f"| a session's first execution (its sandbox's start): p50 / p95 (ms) | "
        f"{many['first p50']:.0f} / {many['first p95']:.0f} |",
        f"| the 19 after it: p50 / p95 (ms) | {many['later p50']:.0f} / {many['later p95']:.0f} |",
        f"| host memory, serve + the `time` server + every sandbox: before / peak (PSS MiB) | "
        f"{many['baseline']:.0f} / {many['peak']:.0f} |",
        "",
        "## gVisor checkpoint/restore of a warm sandbox, against a cold start",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| cold start to the first result (`runsc run`, worker ready, `1`) (s) | {restore['cold']:.2f} |",
        f"| restore of a checkpoint to the first result (s) | {restore['restore']:.2f} |",
        f"| ratio restore / cold start | {restore['restore'] / restore['cold']:.2f} |",
        f"| checkpoint (s) / image (MiB) | {restore['checkpoint']:.2f} / {restore['image']:.1f} |",
        f"| host memory after a cold start / after a restore (PSS MiB) | {restore['cold pss']:.0f} / "
        f"{restore['restore pss']:.0f} |",
    ]
    if many["first errors"]:
        lines += ["", "First errors of the many-sessions run:", ""]
        lines += [f"- `{error}`" for error in many["first errors"]]
    return "\n".join(lines) + "\n" + NOTES


NOTES = """
How to read it:

- *first `execute_code`* is seen by the client: a new MCP session (initialize), then one
  `execute_code`; the session is closed and the next one opened 4 s later, so the pool has
  started a replacement. With the pool, the session gets a sandbox started ahead: its own,
  with its own bridge, `/workspace`, `/state` tmpfs and skills directory, bound when it was
  started (gVisor binds mounts only at `runsc run`). With `--warm 0` it starts one then.
- The worker no longer imports the tool modules: a sandbox's start and memory do not grow
  with the catalog. A child imports the tools its code uses (a server package is lazy), and
  the worker then imports those (at most 32 per execution, 256 in all), so a session's later
  executions find them imported, as all of them were before.
- *one idle sandbox* is the PSS of its host processes with no other sandbox of this run
  alive (other engineers' sandboxes share the runsc binary's pages, so PSS moves a little).
- *many sessions*: the real `serve`, started with 64 sessions allowed and a smaller tmpfs per
  session (64 + 32 + 32 MiB: the default 320 MiB each would pass the budget for all sessions,
  half the machine's memory, at 37 sessions); sessions come from 127.0.0.1, .2, ... (8 each,
  the default per-client limit). Each execution imports `get_current_time` and calls the real
  `time` server through the bridge. The first execution of each session waits for its
  sandbox: on 2 cores the sandboxes start a few at a time, so the last sessions wait for all
  the others.
- *before* (with `--baseline`): the same measurement of `serve` from a checkout of the code
  before this change, run from that checkout with the same interpreter and packages.
- *warm executions*: a warm execution has neither a fork nor a `runsc exec` on its path:
  the worker hands the job to a spare process forked after the previous result. The
  executor's time is the worker's own (job handed to the spare, code run, outcome read)
  plus two crossings of the sandbox's boundary (a host pipe -> gVisor's sentry -> the
  worker, and back), each a chain of wake-ups of host threads and ptrace stubs; `serve`
  adds the MCP round trip (the SDK's client and server, `tools/list` alone) and its own
  handling (`--unsafe-local` runs the same path with a plain process). Under the ptrace
  platform every system call inside the sandbox is a round trip through the host kernel
  (the cost table), which is why the worker's path was cut from 37 system calls to 17.
- *checkpoint/restore*: `runsc checkpoint` of a worker that has run once, `runsc restore`
  into a new container with fresh pipes; the restored worker answers its job.
"""


def main() -> None:
    """Measure and write bench/results/serve.md."""
    if len(sys.argv) > 1 and sys.argv[1] == "serve-small-quotas":
        serve_small_quotas(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10,3000,10000")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=8, help="new sessions of each kind per size")
    parser.add_argument("--warm-runs", type=int, default=100)
    parser.add_argument(
        "--out", type=Path, help="where the table goes (default: bench/results/serve.md)"
    )
    parser.add_argument(
        "--only",
        choices=("warm",),
        help="measure one part and print its table (written only to --out if given)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of the code before (e.g. `git archive c455afe | tar -x -C DIR`): "
        "its first executions, idle sandbox and warm latency are measured in the same run",
    )
    args = parser.parse_args()
    if not TIME.exists():
        sys.exit(f"{TIME} is missing: run `make setup` first")
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as scratch:
        config = Path(scratch) / "mcp.json"
        servers = {"time": {"command": str(TIME), "args": ["--local-timezone", "UTC"]}}
        config.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
        if args.only == "warm":
            small = catalog_package(min(sizes))
            warm = asyncio.run(warm_latency(small, config, args.warm_runs, args.baseline))
            text = "\n".join(warm_section(warm, min(sizes)))
            print(text)
            if args.out:
                args.out.write_text(text, encoding="utf-8")
            return
        for size in sizes:
            catalog_package(size)  # built before anything is timed
        figures = [asyncio.run(per_size(size, config, args.runs, args.baseline)) for size in sizes]
        small = catalog_package(min(sizes))
        warm = asyncio.run(warm_latency(small, config, args.warm_runs, args.baseline))
        many = asyncio.run(many_sessions(small, config, args.sessions, 20))
        restore = asyncio.run(checkpoint_restore(small))
    text = report(figures, warm, many, restore, args)
    print(text)
    out = args.out or ROOT / "bench/results/serve.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
