"""`Executor`: run agent code against a generated package, isolated in gVisor.

    async with Executor("generated/mcp_demo", config="mcp.json") as executor:
        result = await executor.execute("from servers.time import get_current_time\\n...")

The executor keeps `pool_size` sandboxes running, each a warm worker with a
spare process forked ahead, so an execution costs milliseconds, not a cold start.
A sandbox that dies (its memory backstop, a crash) is replaced in the background;
tear-down never sits on an execution's path. `aclose()` (or leaving the `async
with`) stops and deletes every sandbox; an `atexit` hook catches the rest.

An executor is one session. What outlives its sandboxes: the skills (the shared
directory, read-only, and the session's own, where `save_skill(fn)` writes
through the host; see `bridge.skills`) and the session's `/state`, a tmpfs of
the size its `Quotas` allow (see `state`), removed by `aclose()` unless
`state_dir` asks to keep it. The session's tmpfs sizes are reserved against the
process's budget for all sessions at `start()`, and given back by `aclose()`.

Cancelling an `execute()` (its caller went away) ends the execution at once:
no further tool call of it leaves the bridge, calls in flight are cancelled
(upstream too), and the worker kills every process of the job; the sandbox is
then back in the pool, fresh, or replaced if it did not answer within a second.

A `SandboxPolicy` (the `sandbox` section of `mcp.json`) sets the limits and
quotas, the CPUs of the sandbox, the libraries mounted in it, the hosts it may
reach through the host's egress proxy (`egress`), and whether code is checked
before it runs (`precheck`): certain errors then come back as the result, and
nothing runs. Without a policy the defaults hold, and only the syntax is checked.

`UnsafeLocalExecutor` is the same with plain processes and NO isolation, for
development on machines without gVisor; it is never chosen silently.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from ..runtime.skills import SAVE_SERVER
from ..runtime.transport import Transport
from ..snapshot import SNAPSHOT_FILENAME, Snapshot, SnapshotError
from ..telemetry import security_event, traced_execution
from . import runsc as runsc_module
from .bridge.approval import ApprovalPolicy, approval_policy
from .bridge.host import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_RESULT_BYTES,
    CallLog,
    HostBridge,
    SpecialHandler,
)
from .bridge.limits import CpuBudget
from .bridge.privacy import Tokenizer, parse_policy
from .bridge.server import BridgeServer
from .bridge.skills import SkillStore, skills_disabled
from .bridge.skillsessions import SessionSkills, close_session, open_session
from .bundle import BundleOptions, distribution_paths, import_names
from .channel import WorkerDied, WorkerProcess
from .egress.proxy import EgressProxy, Resolver
from .errors import SandboxError, SandboxUnavailableError
from .hooks import ExecutionHooks
from .inside.protocol import FAILED_TO_REPORT, DiskQuota, Job, Outcome, ResultMessage
from .launch import GvisorLauncher, Launcher, SharedDirs, UnsafeLocalLauncher, WorkerSpec
from .owner import stale, write_marker
from .policy import SandboxPolicy
from .precheck import Checking, CheckReport, CodeChecker
from .quotas import Quotas, TmpfsBudget, tmpfs_budget
from .result import ExecutionError, ExecutionResult, NetworkConnection
from .skillsview import SkillsView
from .state import StateDir, close_state, open_state, unmount

__all__ = ["Executor", "Limits", "UnsafeLocalExecutor", "sweep_stale_workdirs"]

_GRACE = 5.0
"""Seconds the host waits past the time limit before it gives up on a sandbox."""
_CANCEL_GRACE = 1.0
"""Seconds a cancelled execution's worker has to answer before its sandbox is killed."""
_WORKDIR_PREFIX = "mcp-codegen-sandbox-"
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
)


@dataclass(frozen=True)
class Limits:
    """Per-execution limits; each ends the execution with an error the code's author can read.

    The defaults are `SandboxPolicy`'s (the one table of them).
    """

    timeout: float = SandboxPolicy.timeout
    """Wall-clock seconds."""
    memory_mb: int = SandboxPolicy.memory_mb
    """Address space the code may add (RLIMIT_AS per process: a clean MemoryError)."""
    max_processes: int = SandboxPolicy.processes
    """Processes of the code at once (RLIMIT_NPROC)."""
    max_output_bytes: int = SandboxPolicy.output_kb * 1000
    """Bytes of stdout, and of stderr, kept; the rest is cut with a marker."""
    output_kill_bytes: int = 16 * 1024 * 1024
    """Output past which the execution is stopped."""


@dataclass(eq=False)
class _Sandbox:
    spec: WorkerSpec
    worker: WorkerProcess


class Executor:
    """Runs code in gVisor sandboxes whose tool calls reach real servers through a bridge.

    Args:
        package_dir: the generated import package (e.g. `generated/mcp_demo`); its
            parent holds `mcp-snapshot.json`. None runs plain Python with no tools.
        config: the `mcp.json` the host opens sessions from (ignored with `transport`).
        transport: the host's transport; by default a `DirectTransport` of `config`.
        privacy: PII tokenization at the bridge: True (the policy of `config`'s `privacy`
            section; everything on without one), False (off), or a session's `Tokenizer`.
        snapshot: the servers and tools calls are checked against; by default read
            from beside the package.
        limits: default limits of each execution.
        pool_size: sandboxes kept running (executions at once).
        skills_dir: the shared skills directory; by default
            `<config's dir>/.mcp-codegen/skills` (no skills without a config), False
            for none.
        skills_scope: where `save_skill` saves: "session" (this executor's own
            directory, removed by `aclose()`; the default) or "shared" (the shared
            directory, for who a policy lets share).
        state_dir: a directory to keep `/state` in: copied in at the start and out
            by `aclose()`; by default the state ends with the executor.
        quotas: the session's bounds on disk and memory (`/state`, `/workspace`,
            `/tmp`, skills).
        origin: what runs this session (`run`, `serve-http`...), for `skills promote`.
        max_result_bytes: the largest tool result (refused while it streams in).
        cpu_budget: the host CPU the session's work may use (scans, validation, the
            check of its code); by default one of its own.
        policy: the sandbox policy (limits, quotas, cpu, packages, network, check);
            `limits` and `quotas`, when given, take the place of the policy's.
            Without one: the defaults, no network, and only a syntax check.
        resolver: how the egress proxy resolves host names (a hosts file, for tests).
        approval: which calls need a person's yes; by default the `approval` section
            of `config` (nothing without one). Who is asked is `execute(hooks=...)`'s.
    """

    unsafe = False

    def __init__(
        self,
        package_dir: str | os.PathLike[str] | None,
        *,
        config: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
        snapshot: Snapshot | None = None,
        limits: Limits | None = None,
        pool_size: int = 1,
        runsc: str | None = None,
        runsc_flags: tuple[str, ...] = (),
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        start_timeout: float = 60.0,
        privacy: Tokenizer | bool = True,
        skills_dir: str | os.PathLike[str] | Literal[False] | None = None,
        skills_scope: Literal["session", "shared"] = "session",
        state_dir: str | os.PathLike[str] | None = None,
        quotas: Quotas | None = None,
        origin: str = "api",
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        cpu_budget: CpuBudget | None = None,
        policy: SandboxPolicy | None = None,
        resolver: Resolver | None = None,
        approval: ApprovalPolicy | None = None,
    ):
        self.package_dir, self.snapshot_path = _resolve_package(package_dir)
        self.approval = approval if approval is not None else approval_policy(config)  # issue 17
        self.config = config
        self.privacy = _tokenizer(privacy, config)
        self.policy = policy or SandboxPolicy(check_code="off")
        self.limits = limits or self.policy.limits()
        self.quotas = quotas or self.policy.quotas()
        self.resolver = resolver
        self.origin = origin
        self.pool_size = max(1, pool_size)
        self.start_timeout = start_timeout
        self.max_request_bytes = max_request_bytes
        self.max_result_bytes = max_result_bytes
        self.cpu_budget = cpu_budget or CpuBudget()
        self._transport = transport
        self._owns_transport = transport is None
        self._snapshot = snapshot
        self.skills_dir = _skills_dir(skills_dir, config)
        self.skills_scope = skills_scope
        self.skills: SkillStore | None = None
        """The skills this session sees (None without a skills directory)."""
        self._session: SessionSkills | None = None
        self.keep_state: Path | None = Path(state_dir).resolve() if state_dir is not None else None
        self.state_dir: Path | None = None
        """The host directory bound at `/state` (once started)."""
        self._state: StateDir | None = None
        self._budget: TmpfsBudget | None = None
        self._launcher: Launcher = self._make_launcher(runsc, runsc_flags)
        self._workdir: Path | None = None
        self._server: BridgeServer | None = None
        self._egress: EgressProxy | None = None
        self._checker: CodeChecker | None = None
        self._skills_view: SkillsView | None = None
        self._idle: asyncio.Queue[_Sandbox | BaseException] = asyncio.Queue()
        self._live: set[_Sandbox] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False
        self._started = False

    @property
    def distributions(self) -> tuple[str, ...]:
        """The distributions mounted in the sandbox: pydantic and the policy's packages."""
        return ("pydantic", *(name for name in self.policy.packages if name != "pydantic"))

    def _make_launcher(self, runsc: str | None, flags: tuple[str, ...]) -> Launcher:
        memory = max(2048, 3 * self.limits.memory_mb + 512)
        policy = self.policy
        env: tuple[str, ...] = ()
        if policy.cpu is not None:
            # Libraries size their thread pools by the host's CPUs; the quota is what counts.
            threads = str(max(1, math.ceil(policy.cpu)))
            env = tuple(f"{name}={threads}" for name in _THREAD_VARIABLES)
        options = BundleOptions(
            package_dir=self.package_dir,
            distributions=self.distributions,
            memory_limit_mb=memory,
            tmp_mb=self.quotas.tmp_mb,
            workspace_mb=self.quotas.workspace_mb,
            cpu=policy.cpu,
            modules=import_names(policy.packages),
            ca_file=_ca_file() if policy.network is not None else None,
            env=env,
        )
        return GvisorLauncher(options, runsc=runsc, flags=flags)

    async def __aenter__(self) -> Executor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _read_snapshot(self) -> Snapshot:
        if self._snapshot is not None:
            return self._snapshot
        if self.package_dir is None:
            return Snapshot()
        try:
            return Snapshot.read(self.snapshot_path or self.package_dir.parent / SNAPSHOT_FILENAME)
        except SnapshotError as exc:
            raise SandboxError(str(exc)) from None

    def _host_transport(self) -> Transport:
        if self._transport is None:
            from ..runtime.direct import DirectTransport

            # Results are refused as they stream in past the cap (`runtime.stdio`).
            self._transport = DirectTransport(self.config, max_message_bytes=self.max_result_bytes)
        return self._transport

    def use_budget(self, budget: CpuBudget) -> None:
        """Charge this executor's host work to `budget` from now on: the session's, for
        an executor started ahead of its session (`sandbox.warmpool`)."""
        self.cpu_budget = budget
        if self._server is not None:
            self._server.bridge.budget = budget

    async def start(self) -> None:
        """Prepare the sandboxes and wait until the first one is ready.

        Raises:
            SandboxUnavailableError: gVisor's `runsc` is missing or cannot run.
            SandboxError: the package, snapshot or a needed library is missing.
        """
        if self._started:
            return
        self._started = True
        try:
            await self._start()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                _detach(self.aclose())  # the caller may not get to await anything now
            else:
                await self.aclose()
            raise

    async def _start(self) -> None:
        snapshot = self._read_snapshot()
        if not self.unsafe:
            # gVisor's /workspace and /tmp and the host's /state tmpfs live in memory.
            budget = tmpfs_budget(self.quotas.tmpfs_share)
            budget.reserve(self.quotas.tmpfs_bytes)
            self._budget = budget
        special: dict[str, SpecialHandler] = {SAVE_SERVER: skills_disabled}
        bridge = HostBridge(
            snapshot,
            self._host_transport(),
            max_request_bytes=self.max_request_bytes,
            max_result_bytes=self.max_result_bytes,
            privacy=self.privacy,
            special=special,
            budget=self.cpu_budget,
            approval=self.approval,
        )
        await asyncio.to_thread(sweep_stale_workdirs)
        self._workdir = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX))
        write_marker(self._workdir)
        _open_executors.add(self)
        self._server = BridgeServer(
            self._workdir / "bridge", bridge, max_request_bytes=self.max_request_bytes
        )
        await self._server.start()
        network = self.policy.network
        if network is not None:
            # Beside the bridge's socket, in the directory bound into the sandbox.
            self._egress = EgressProxy(
                self._server.directory,
                network.allow,
                bandwidth_kbps=network.bandwidth_kbps,
                resolver=self.resolver,
            )
            await self._egress.start()
        shared = await asyncio.to_thread(self._shared_dirs, self._workdir)
        self._checker = await asyncio.to_thread(self._make_checker, self._workdir, shared)
        if self.skills is not None:
            bridge.special[SAVE_SERVER] = self.skills.handle
        await asyncio.to_thread(
            self._launcher.prepare, self._workdir, self._server.directory, shared
        )
        for _ in range(self.pool_size):
            self._spawn()
        first = await self._idle.get()
        if isinstance(first, BaseException):
            if isinstance(first, SandboxError):
                raise first
            raise SandboxUnavailableError(
                f"the sandbox could not start: {first}; is gVisor usable on this machine? "
                "(`runsc --network=none do true` should work)"
            ) from None
        self._idle.put_nowait(first)

    def _shared_dirs(self, workdir: Path) -> SharedDirs:
        """Make the skills directories and the session's `/state`.

        Raises:
            SandboxError: one cannot be made, or the state to keep does not fit.
        """
        if self.skills_dir is not None:
            try:
                self.skills_dir.mkdir(parents=True, exist_ok=True)
                if self.skills_scope == "session":
                    self._session = open_session(self.skills_dir, self.origin)
            except OSError as exc:
                raise SandboxError(f"the skills directory {self.skills_dir}: {exc}") from None
            self.skills = SkillStore(
                self.skills_dir,
                self.package_dir,
                session=self._session.skills if self._session else None,
                quotas=self.quotas,
            )
        self._state = open_state(
            workdir / "session-state",
            self.quotas,
            keep=self.keep_state,
            for_sandbox_user=not self.unsafe,
            bounded=not self.unsafe,
        )
        self.state_dir = self._state.path
        view = workdir / "skills-view"
        view.mkdir(mode=0o755, exist_ok=True)
        session = self._session.skills if self._session else None
        self._skills_view = SkillsView(view, self.skills_dir, session)
        shared = SharedDirs(
            skills=self.skills_dir,
            session_skills=session,
            state=self.state_dir,
            skills_view=view,
        )
        self._refresh_skills_view()
        return shared

    def _refresh_skills_view(self) -> None:
        """Point `/skills` at the skills the session imports now (saved or promoted since)."""
        if self._skills_view is not None:
            with contextlib.suppress(OSError):
                self._skills_view.refresh()

    def _make_checker(self, workdir: Path, shared: SharedDirs) -> CodeChecker:
        """The checker of this session's code: the package, the mounted libraries, the skills.

        Raises:
            SandboxError: a distribution is missing, or the checker's directory cannot be made.
        """
        skill_dirs = [d for d in (shared.skills, shared.session_skills) if d is not None]
        checker = CodeChecker(
            self.package_dir,
            workdir / "check",
            site=distribution_paths(self.distributions),
            skill_dirs=skill_dirs,
        )
        if self.policy.check_code != "off":
            try:
                checker.prepare()
            except OSError as exc:
                raise SandboxError(f"the code checker's directory: {exc}") from None
        return checker

    @property
    def session_id(self) -> str | None:
        """The id of this session's own skills directory (what `skills promote --session` takes)."""
        return self._session.id if self._session else None

    def _spawn(self) -> None:
        task = asyncio.get_running_loop().create_task(self._start_one())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start_one(self) -> None:
        spec = self._launcher.spec()
        worker = WorkerProcess(spec.command, env=spec.env, cwd=spec.cwd)
        sandbox = _Sandbox(spec, worker)
        self._live.add(sandbox)
        try:
            await worker.start(self.start_timeout)
            self._launcher.started(spec, worker.pid)
        except (OSError, WorkerDied) as exc:
            self._retire(sandbox)
            self._idle.put_nowait(exc)
            return
        if self._closed:
            self._retire(sandbox)
            return
        self._idle.put_nowait(sandbox)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _retire(self, sandbox: _Sandbox) -> None:
        """Stop and delete a sandbox in the background."""
        self._live.discard(sandbox)

        async def stop() -> None:
            await sandbox.worker.stop()
            await self._launcher.dispose(sandbox.spec)

        self._in_background(stop())

    def _abandon(self, sandbox: _Sandbox, token: str) -> None:
        """An execution's caller went away: end it now; get the sandbox back in the background.

        Synchronous up to the background part, since the caller's task is being
        cancelled and may not get to await anything.
        """
        assert self._server is not None
        self._server.close_now(token)  # no call of it starts any more
        pending = sandbox.worker.abandon()  # the worker kills the job's processes

        async def reclaim() -> None:
            answered = pending is None
            if pending is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(pending), _CANCEL_GRACE)
                    answered = True
                except (TimeoutError, WorkerDied):
                    sandbox.worker.kill()  # it did not answer: the whole sandbox goes
            if answered and not self._closed and not sandbox.worker.dead:
                self._idle.put_nowait(sandbox)
                return
            self._retire(sandbox)
            if not self._closed:
                self._spawn()

        self._in_background(reclaim())

    async def _acquire(self) -> _Sandbox:
        while True:
            item = await self._idle.get()
            if isinstance(item, BaseException):
                self._spawn()  # try again for the next execution
                raise SandboxError(f"no sandbox is available: {item}")
            if not item.worker.dead:
                return item
            self._retire(item)
            self._spawn()

    @traced_execution  # telemetry: the execution's span, metrics and audit line
    async def execute(
        self,
        code: str,
        *,
        filename: str = "<exec>",
        timeout: float | None = None,
        memory_mb: int | None = None,
        hooks: ExecutionHooks | None = None,
    ) -> ExecutionResult:
        """Run `code` in a fresh process of a warm sandbox and return what it did.

        Errors of the code, and the limits it hits, are in the result, not raised.
        `hooks` ask a person for approvals and hear the code's progress (see `hooks`).

        Raises:
            SandboxError: the executor is closed or no sandbox can be started.
        """
        if self._closed:
            raise SandboxError("the executor is closed")
        await self.start()
        limits = self.limits
        timeout = limits.timeout if timeout is None else timeout
        memory = limits.memory_mb if memory_mb is None else memory_mb
        checking = time.perf_counter()
        check = Checking(CheckReport())
        if self._checker is not None:
            # ty's part runs beside the code when it cannot stop it (see `precheck`).
            check = await self._checker.begin(
                code, self.policy.check_code, filename, budget=self.cpu_budget
            )
            report = check.report
            stopped = _stopped(report, self.policy.check_code, checking)
            if stopped is not None:
                check.cancel()
                certain = report.certain
                security_event(  # telemetry: why the check stopped it, never the code
                    "code_refused",
                    reason="syntax" if report.syntax_error is not None else "check",
                    rules=",".join(sorted({item.rule for item in certain})) or None,
                    errors=len(certain) or None,
                )
                return stopped
        try:
            result = await self._run(code, filename, timeout, memory, limits, hooks)
            report = await check.finish()  # warnings of a check that ran beside the code
        finally:
            check.cancel()  # the caller went away, or the run failed: ty ends with it
        result = result.model_copy(update={"diagnostics": list(report.diagnostics)})
        if self.privacy is not None and _may_hide(self.privacy, result):
            result = await self.cpu_budget.run(_hide_known, self.privacy, result)
        return result

    async def _run(
        self,
        code: str,
        filename: str,
        timeout: float,
        memory: int,
        limits: Limits,
        hooks: ExecutionHooks | None,
    ) -> ExecutionResult:
        """Run checked code in a sandbox: the result, its network log included.

        Raises:
            SandboxError: no sandbox can be started.
        """
        if self._skills_view is not None and self._skills_view.stale():
            await asyncio.to_thread(self._refresh_skills_view)
        sandbox = await self._acquire()
        assert self._server is not None
        token, log = self._server.open()
        connections = self._egress.open(token) if self._egress is not None else None
        if hooks is not None:  # issue 17: approvals and progress of this execution
            hooks.attach(log)
        job: Job = {
            "id": token[:8],
            "code": code,
            "filename": filename,
            "timeout": timeout,
            "memory_mb": memory,
            "max_processes": limits.max_processes,
            "max_output": limits.max_output_bytes,
            "output_kill_bytes": limits.output_kill_bytes,
            "bridge": {"socket": self._launcher.bridge_socket(), "token": token},
            "disks": self._disks(),
        }
        if self._egress is not None:
            job["egress"] = {"socket": self._launcher.egress_socket(), "token": token}
        started = time.perf_counter()
        raw: ResultMessage | None = None
        crash: str | None = None
        try:
            raw = await sandbox.worker.execute(job, timeout + _GRACE)
        except WorkerDied as exc:
            crash = str(exc)
        except BaseException:
            if self._egress is not None:
                self._egress.close_now(token)
            self._abandon(sandbox, token)  # cancelled: the job must not run on
            raise
        duration = (time.perf_counter() - started) * 1000
        self._server.close_now(token)
        if self._egress is not None and connections is not None:
            await self._egress.close(token, connections)  # every connection in the result
        if raw is None:
            self._retire(sandbox)
            if not self._closed:
                self._spawn()
        else:
            self._idle.put_nowait(sandbox)
        await log.cancel()  # calls a process of the job left running end with it
        result = _result(raw, crash, log, duration, timeout, memory, limits)
        direct = _direct_connections(raw)
        if direct and not self.unsafe:  # telemetry: tried around the proxy (seen inside)
            security_event("egress_refused", reason="direct", scheme="direct", count=len(direct))
        logged = connections.entries if connections is not None else []
        return result.model_copy(
            update={
                "connections": [*logged, *direct],
                "connections_dropped": connections.dropped if connections is not None else 0,
            }
        )

    def _disks(self) -> dict[str, DiskQuota]:
        """The sandbox's file systems and what sets their sizes, for a message when one is full."""
        quotas = self.quotas
        disks: dict[str, DiskQuota] = {
            "/tmp": {"mb": quotas.tmp_mb, "setting": "sandbox.limits.tmp_mb"},
            "/workspace": {"mb": quotas.workspace_mb, "setting": "sandbox.limits.workspace_mb"},
        }
        if self.state_dir is not None:
            disks["/state"] = {"mb": quotas.state_mb, "setting": "sandbox.limits.state_mb"}
        return disks

    async def aclose(self) -> None:
        """Stop every sandbox and wait until each is deleted; close the host transport."""
        self._closed = True
        while not self._idle.empty():
            item = self._idle.get_nowait()
            if isinstance(item, _Sandbox):
                self._retire(item)
        for sandbox in list(self._live):
            self._retire(sandbox)
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        if self._server is not None:
            await self._server.aclose()
        if self._egress is not None:
            await self._egress.aclose()
        if self._owns_transport and self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.aclose()
        await asyncio.to_thread(self._release_dirs)

    def _release_dirs(self) -> None:
        """Keep the state if asked, then remove the session's state, skills and workdir."""
        _open_executors.discard(self)
        if self._state is not None:
            close_state(self._state)
            self._state = None
        if self._session is not None:
            close_session(self._session)
            self._session = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        if self._budget is not None:
            self._budget.release(self.quotas.tmpfs_bytes)
            self._budget = None


class UnsafeLocalExecutor(Executor):
    """An `Executor` whose code runs as a plain local process: NO ISOLATION.

    The code can read your files, your environment's secrets, and the network.
    For developing mcp-codegen on machines without gVisor, by explicit choice only.
    """

    unsafe = True

    def _make_launcher(self, runsc: str | None, flags: tuple[str, ...]) -> Launcher:
        return UnsafeLocalLauncher(self.package_dir)


def _tokenizer(
    privacy: Tokenizer | bool, config: str | os.PathLike[str] | None
) -> Tokenizer | None:
    """The session's PII tokenizer: the given one, none, or one from the config's policy.

    Raises:
        ConfigError: the config's `privacy` section is invalid.
    """
    if isinstance(privacy, Tokenizer):
        return privacy
    if not privacy:
        return None
    if config is None:
        return Tokenizer()
    from ..runtime.config import load_config

    loaded = load_config(config)
    return Tokenizer(parse_policy(loaded.privacy, loaded.path))


def _may_hide(privacy: Tokenizer, result: ExecutionResult) -> bool:
    """Whether `_hide_known` could change `result`: the session knows a value, or the
    value nests (past `MAX_DEPTH` it is cut whatever the session knows)."""
    return bool(len(privacy.known)) or isinstance(result.value, dict | list)


def _hide_known(privacy: Tokenizer, result: ExecutionResult) -> ExecutionResult:
    """The result with every value the session tokenized hidden again.

    Code can rebuild a real value from pieces (a character per call); what it then
    prints is still a known value, and still replaced.
    """
    fields = result.model_dump(include={"stdout", "stderr", "value", "value_repr", "error"})
    hidden = privacy.hide_known(fields)
    if hidden == fields:
        return result
    error = ExecutionError.model_validate(hidden["error"]) if hidden["error"] else None
    return result.model_copy(update={**hidden, "error": error})


def _skills_dir(
    given: str | os.PathLike[str] | Literal[False] | None,
    config: str | os.PathLike[str] | None,
) -> Path | None:
    if given is False:
        return None
    if given is not None:
        return Path(given).resolve()
    if config is None:
        return None
    from .bridge.skills import default_skills_dir

    return default_skills_dir(config)


def _resolve_package(
    given: str | os.PathLike[str] | None,
) -> tuple[Path | None, Path | None]:
    """(import package directory, snapshot file) of a built package (`codegen.package`'s locator).

    Raises:
        SandboxError: `given` is not a built package, its import package, or a
            directory holding one.
    """
    if given is None:
        return None, None
    from ..package import PackageNotFound, locate_package

    try:
        found = locate_package(Path(given).resolve())
    except PackageNotFound as exc:
        raise SandboxError(str(exc)) from None
    return found.import_dir, found.snapshot_path


def _result(
    raw: ResultMessage | None,
    crash: str | None,
    log: CallLog,
    duration: float,
    timeout: float,
    memory: int,
    limits: Limits,
) -> ExecutionResult:
    # The worker runs inside the sandbox: every field is read as if it could be anything.
    raw = raw or {"type": "result", "id": None}
    outcome: Outcome = raw.get("outcome") or {}
    error: ExecutionError | None = None
    killed = raw.get("killed")
    died = raw.get("died")
    limit: str | None = None
    if crash is not None:
        limit = "sandbox"
        error = ExecutionError(
            type="SandboxCrashed",
            message=f"{crash}; the sandbox was replaced (did the code exceed the sandbox's "
            f"memory backstop, e.g. with many processes of {memory} MB each?)",
        )
    elif killed == "timeout":
        limit = "timeout"
        error = ExecutionError(
            type="TimeoutError",
            message=f"the execution did not finish within {timeout:g} s and was stopped",
        )
    elif killed == "output":
        limit = "output"
        error = ExecutionError(
            type="OutputLimitError",
            message=f"the execution wrote more than {limits.output_kill_bytes} bytes of "
            "output and was stopped",
        )
    elif isinstance(died, dict):
        if "signal" in died:
            message = (
                f"the process was killed by signal {died['signal']} before it reported a result"
            )
            error = ExecutionError(type="ProcessDied", message=message)
        elif died.get("status") == FAILED_TO_REPORT:
            limit = "memory"
            error = ExecutionError(
                type="MemoryError",
                message=f"the execution ran out of memory (limit {memory} MB)",
            )
        elif died.get("status"):
            message = f"the process exited with status {died['status']} without a result"
            error = ExecutionError(type="ProcessDied", message=message)
    elif isinstance(outcome.get("error"), dict):
        error = ExecutionError.model_validate(outcome["error"])
        limit = "memory" if error.type == "MemoryError" else None  # RLIMIT_AS, --memory
    return ExecutionResult(
        stdout=str(raw.get("stdout", "")),
        stderr=str(raw.get("stderr", "")),
        value=outcome.get("value"),
        value_repr=outcome.get("repr"),
        error=error,
        duration_ms=duration,
        calls=list(log.calls),
        stdout_cut_bytes=int(raw.get("stdout_cut", 0)),
        stderr_cut_bytes=int(raw.get("stderr_cut", 0)),
        limit=limit,
        **_usage(raw),
    )


def _stopped(report: CheckReport, mode: str, started: float) -> ExecutionResult | None:
    """The result of an execution the check stops before anything runs, else None."""
    elapsed = (time.perf_counter() - started) * 1000
    if report.syntax_error is not None:
        return ExecutionResult(
            error=ExecutionError(
                type="SyntaxError", message=f"{report.syntax_error}\nNothing was run."
            ),
            duration_ms=elapsed,
        )
    if mode == "block" and report.certain:
        return ExecutionResult(
            error=ExecutionError(type="CheckError", message=report.blocking_message()),
            duration_ms=elapsed,
            diagnostics=list(report.diagnostics),
        )
    return None


def _direct_connections(raw: ResultMessage | None) -> list[NetworkConnection]:
    """The connections the code tried without the proxy (reported from inside: read defensively)."""
    outcome: Any = raw.get("outcome") if raw is not None else None
    found = outcome.get("connections") if isinstance(outcome, dict) else None
    connections = []
    for item in found if isinstance(found, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("port"), int):
            continue
        connections.append(
            NetworkConnection(
                host=str(item.get("host", ""))[:255],
                port=max(0, min(65535, item["port"])),
                kind="direct",
                allowed=False,
                reason="the sandbox has no network; connections go through the proxy "
                "(HTTP(S)_PROXY) to hosts in sandbox.network.allow",
            )
        )
    return connections[:100]


def _ca_file() -> Path | None:
    """The host's bundle of CA certificates (for HTTPS from the sandbox), if it has one."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and os.path.isfile(candidate):
            return Path(candidate)
    return None


def _usage(raw: ResultMessage) -> dict[str, Any]:
    """CPU seconds and peak memory as the worker measured them (from inside the sandbox:
    read as numbers or not at all)."""
    cpu, rss = raw.get("cpu_seconds"), raw.get("max_rss_kb")
    return {
        "cpu_seconds": float(cpu) if isinstance(cpu, int | float) and cpu >= 0 else None,
        "peak_memory_bytes": int(rss) * 1024 if isinstance(rss, int) and rss >= 0 else None,
    }


def sweep_stale_workdirs() -> None:
    """Remove the sandbox directories of processes that died without cleaning up.

    Only directories with this code's owner marker are considered; a `/state`
    tmpfs still mounted in one is unmounted first.
    """
    for workdir in stale(Path(tempfile.gettempdir()), f"{_WORKDIR_PREFIX}*"):
        state = workdir / "session-state"
        if os.path.ismount(state):
            unmount(state)
        if not os.path.ismount(state):
            shutil.rmtree(workdir, ignore_errors=True)


_detached: set[asyncio.Task[None]] = set()


def _detach(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to its end in a task of its own (kept referenced until done)."""
    task = asyncio.get_running_loop().create_task(work)
    _detached.add(task)
    task.add_done_callback(_detached.discard)


_open_executors: set[Executor] = set()


@atexit.register
def _release_at_exit() -> None:
    """At the exit of a process that did not close its executors (an error, a signal):
    stop their sandboxes, then unmount and remove their directories (a kept state is
    still copied out)."""
    if not _open_executors:
        return
    runsc_module.cleanup_all()  # the sandboxes first: they hold the /state mounts
    for executor in list(_open_executors):
        with contextlib.suppress(Exception):
            executor._release_dirs()
