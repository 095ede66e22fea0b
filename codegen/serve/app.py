"""The MCP server: three tools, the package's modules as resources, one sandbox per session.

Built on the SDK's low-level `Server`. Over stdio the process is one session;
over streamable HTTP each protocol session gets its own workspace, released
through the connection's exit stack when the session ends (a DELETE, the idle
timeout, or shutdown). Each session sees the shared skills and its own (see
`sandbox.bridge.skills`). When a client cancels an `execute_code`, drops its HTTP
request, or (over stdio) exits, the execution is stopped at once: its processes
are killed and no further tool call of it leaves the bridge. What a client may
hold (sessions, requests in flight, idle time) is bounded by `ServeLimits`.
The 2026-07-28 protocol has no sessions, and no requests from server to
client in the middle of a call (an approval asked by elicitation), so
`server/discover` answers "method not found" and clients negotiate the
handshake era, over HTTP and (since issue 17's approvals) over stdio; a request
that still arrives without a session runs in a workspace of its own that ends
with the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import sys
import time
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from ..package import BuiltPackage
from ..runtime.direct import DirectTransport
from ..runtime.errors import ConfigError
from ..runtime.search import INDEX_FILENAME, SearchError, search_tools
from ..sandbox.bridge.approval import ApprovalPolicy, approval_policy
from ..sandbox.bridge.host import DEFAULT_MAX_RESULT_BYTES
from ..sandbox.bridge.limits import INLINE_CODE_CHARS, CpuBudget
from ..sandbox.bridge.privacy import PrivacyPolicy, Tokenizer, parse_policy
from ..sandbox.bridge.skills import SkillStore, default_skills_dir
from ..sandbox.egress.proxy import Resolver
from ..sandbox.errors import SandboxError
from ..sandbox.executor import Executor, UnsafeLocalExecutor
from ..sandbox.hooks import ExecutionHooks
from ..sandbox.policy import SandboxPolicy
from ..sandbox.quotas import Quotas, ServeLimits
from ..sandbox.result import ExecutionResult
from ..sandbox.warmpool import WarmPool
from ..snapshot import Snapshot
from ..telemetry import request, security_event, session_closed, session_opened
from .changes import UpstreamChanges
from .interaction import execution_hooks
from .limits import Admission, disconnected
from .modules import Catalogue, ModuleError
from .sessions import Workspaces
from .stdio import LineReader, LineWriter, event_loop_stdio
from .tools import (
    MAX_QUERY_CHARS,
    MAX_TEXT_CHARS,
    MAX_TIMEOUT,
    arguments_error,
    code_refusal,
    cut,
    format_result,
    instructions,
    text_result,
    tool_list,
)

if TYPE_CHECKING:
    from .auth import ServeAuth

__all__ = ["ServeSettings", "State", "build_server", "run_http", "run_stdio"]

_WORKSPACE_KEY = "mcp-codegen.workspace"


@dataclass(frozen=True)
class ServeSettings:
    """What `serve` serves and how."""

    package: BuiltPackage
    config: Path
    transport: Literal["stdio", "http"] = "stdio"
    max_output: int = 20_000
    """Characters of stdout a result shows before the middle is cut."""
    unsafe_local: bool = False
    skills_dir: Path | None = None
    """The shared skills; by default `.mcp-codegen/skills` beside the config."""
    share_skills: bool = False
    """Whether sessions save into the shared skills (the config's `skills.share` names
    this transport); by default each session saves for itself."""
    quotas: Quotas = dataclasses.field(default_factory=Quotas)
    """Each session's bounds on disk and memory."""
    limits: ServeLimits = dataclasses.field(default_factory=ServeLimits)
    """What clients may hold: sessions, requests in flight, idle time."""
    preconnect: bool = True
    """Start every configured server when serving starts, not at its first tool call."""
    policy: SandboxPolicy = dataclasses.field(default_factory=SandboxPolicy)
    """The sandbox policy (the config's `sandbox` section with the flags applied): the
    limits of an execution (`timeout` is `execute_code`'s default), and the file-system
    sizes, which replace those of `quotas`."""
    resolver: Resolver | None = None
    """How the egress proxy resolves names (a hosts file first, for tests)."""
    warm: int | None = None
    """Sandboxes started ahead for sessions to come (see `sandbox.warmpool`); by
    default 2 over HTTP (kept at that), and over stdio 1 (its one session's)."""

    @property
    def warm_sandboxes(self) -> int:
        """How many sandboxes are started ahead."""
        if self.warm is not None:
            return self.warm
        return 2 if self.transport == "http" else 1

    @property
    def skills(self) -> Path:
        """The skills directory in use."""
        return self.skills_dir or default_skills_dir(self.config)


@dataclass
class State:
    """What lives as long as the server: the catalogue, the host transport, the sandboxes."""

    settings: ServeSettings
    catalogue: Catalogue
    workspaces: Workspaces
    transport: DirectTransport
    snapshot: Snapshot | None = None
    """The package's snapshot, read once for every session's bridge (at 10,000 tools
    reading it takes a second, and each copy holds megabytes)."""
    in_flight: dict[Hashable, int] = dataclasses.field(default_factory=dict)
    """Tool calls being handled, by session key."""
    privacy: PrivacyPolicy = dataclasses.field(default_factory=PrivacyPolicy)
    """The config's `privacy` section, applied to every session as `exec` applies it."""
    budgets: dict[Hashable, CpuBudget] = dataclasses.field(default_factory=dict)
    """Each session's host CPU: its tool calls, searches and module reads draw on it."""
    approval: ApprovalPolicy = dataclasses.field(default_factory=ApprovalPolicy)
    """The config's `approval` section: which calls need a person's yes (issue 17)."""
    changes: UpstreamChanges | None = None
    """Upstream servers that changed since the build (their `list_changed`), issue 17."""

    def budget(self, key: Hashable | None) -> CpuBudget:
        """The CPU budget of session `key` (a fresh one for a call without a session)."""
        if key is None:
            return CpuBudget()
        return self.budgets.setdefault(key, CpuBudget())

    def new_executor(self, key: Hashable | None = None) -> Executor:
        """An executor of one sandbox sharing the host transport, for session `key`."""
        settings = self.settings
        kind = UnsafeLocalExecutor if settings.unsafe_local else Executor
        policy = settings.policy
        return kind(
            settings.package.root,
            transport=self.transport,
            snapshot=self.snapshot,
            skills_dir=settings.skills,
            skills_scope="shared" if settings.share_skills else "session",
            quotas=policy.quotas(settings.quotas),
            origin=f"serve-{settings.transport}",
            privacy=Tokenizer(self.privacy),
            cpu_budget=self.budget(key),
            policy=policy,
            resolver=settings.resolver,
            approval=self.approval,
        )

    def skills(self, key: Hashable | None) -> SkillStore:
        """The skills session `key` sees: the shared ones, and its own once it has a sandbox."""
        executor = self.workspaces.peek(key)
        if executor is not None and executor.skills is not None:
            return executor.skills
        return self.catalogue.skills or SkillStore(self.settings.skills)

    def catalogue_of(self, key: Hashable | None) -> Catalogue:
        """The modules session `key` may read (its skills included)."""
        return dataclasses.replace(self.catalogue, skills=self.skills(key))


Context = ServerRequestContext[State, Any]


_SWITCH_INTERVAL = 0.001
"""Seconds a thread holds the GIL before another may take it. Host work for a session
(scans, searches) runs in worker threads; at Python's default 5 ms, every hand-over of
another session's request between the event loop and a worker waits up to that long."""


def build_server(settings: ServeSettings) -> Server[State]:
    """The MCP server of `settings` (run it with `run_stdio` or `run_http`).

    Raises:
        SnapshotError: the package's snapshot cannot be read.
    """
    sys.setswitchinterval(_SWITCH_INTERVAL)
    skills = SkillStore(settings.skills, settings.package.import_dir)
    catalogue = Catalogue.of(settings.package.import_dir, skills)
    snapshot = Snapshot.read(settings.package.snapshot_path)
    servers = sorted(name.split(".")[1] for name in catalogue.files if name.count(".") == 1)
    tool_paths = sorted(
        name
        for name in catalogue.files
        if name.count(".") == 2 and name.rpartition(".")[2] not in ("resources", "prompts")
    )
    example = "servers.git.git_log" if "servers.git.git_log" in tool_paths else None
    example = example or (tool_paths[0] if tool_paths else "servers.example.tool")
    tools = tool_list(settings.policy.timeout)
    policy = _privacy_policy(settings.config)
    approval = approval_policy(settings.config)  # issue 17

    @contextlib.asynccontextmanager
    async def lifespan(_: Server[State]) -> AsyncIterator[State]:
        # Results are refused as they stream in past the cap (`runtime.stdio`).
        transport = DirectTransport(settings.config, max_message_bytes=DEFAULT_MAX_RESULT_BYTES)
        # Over stdio there is one session: its sandbox is started now, and not replaced.
        # Each executor of the pool is made as a session's own (its policy, quotas, /state,
        # egress socket and skills), and bound to its session's CPU budget when handed out.
        pool = WarmPool(
            lambda: state.new_executor(),
            settings.warm_sandboxes,
            refill=settings.transport == "http",
        )
        state = State(
            settings,
            catalogue,
            Workspaces(pool, lambda key, executor: executor.use_budget(state.budget(key))),
            transport,
            snapshot,
            privacy=policy,
            approval=approval,
        )
        pool.fill()
        # Before the preconnect: a session listens for upstream changes only if someone
        # listens when it opens (the 2026-07-28 protocol's `subscriptions/listen`).
        state.changes = _watch_upstream(settings, transport)  # issue 17
        warming = asyncio.ensure_future(_preconnect(transport)) if settings.preconnect else None
        if settings.transport == "stdio":
            session_opened("stdio", "stdio")  # telemetry
        try:
            yield state
        finally:
            if settings.transport == "stdio":
                session_closed("stdio")  # telemetry
            # Shielded: when the client is gone, this scope is being cancelled, and the
            # sandboxes and their /state mounts must still be removed.
            with anyio.CancelScope(shield=True):
                await state.changes.aclose()
                if warming is not None:
                    warming.cancel()
                    await asyncio.wait({warming}, timeout=5)
                # Together: a client waits a couple of seconds for the server to exit.
                await asyncio.gather(state.workspaces.aclose(), transport.aclose())

    async def list_tools(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> types.CallToolResult:
        state = ctx.lifespan_context
        arguments = params.arguments
        if params.name not in ("search_tools", "read_module", "execute_code"):
            raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}")
        key = _session_key(ctx)
        held = state.in_flight.get(key, 0)
        limit = state.settings.limits.requests_per_session
        if held >= limit:
            return text_result(
                f"this session already has {limit} calls in flight; wait for their answers",
                error=True,
            )
        state.in_flight[key] = held + 1
        try:
            with request(params.name, key) as traced:  # telemetry: span, session, duration
                return traced.answered(await _answer(ctx, params.name, arguments, key))
        finally:
            state.in_flight[key] -= 1
            if state.in_flight[key] <= 0:
                del state.in_flight[key]

    async def _answer(
        ctx: Context, name: str, arguments: dict[str, Any] | None, key: Hashable | None
    ) -> types.CallToolResult:
        state = ctx.lifespan_context
        # Searches and module reads run off the event loop, one at a time per
        # session, charged to its CPU budget.
        if name == "search_tools":
            found = await state.budget(key).run(_search, state, arguments, state.skills(key))
            return await _with_note(state, key, found)  # issue 17: upstream changes
        if name == "read_module":
            return await state.budget(key).run(_read_module, state.catalogue_of(key), arguments)
        return await _with_note(state, key, await _execute(ctx, arguments, key))

    async def list_resources(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        catalogue = ctx.lifespan_context.catalogue_of(_session_key(ctx))
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=dotted,
                    uri=catalogue.uri(dotted),
                    mime_type="text/x-python",
                    description=_resource_description(dotted),
                )
                for dotted in [*catalogue.files, *catalogue.skill_paths()]
            ]
        )

    async def read_resource(
        ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        catalogue = ctx.lifespan_context.catalogue_of(_session_key(ctx))
        try:
            dotted, source = catalogue.read(catalogue.from_uri(str(params.uri)))
        except ModuleError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=catalogue.uri(dotted), mime_type="text/x-python", text=source
                )
            ]
        )

    server: Server[State] = Server(
        "mcp-codegen",
        version=_version(),
        instructions=instructions(servers, example),
        lifespan=lifespan,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )
    if settings.transport == "http":
        _handshake_era_only(server)
    return server


def _handshake_era_only(server: Server[State]) -> None:
    """Answer `server/discover` with "method not found", so clients negotiate the handshake
    era: its requests from server to client (an approval's elicitation, issue 17) work in
    the middle of a call. `run_stdio` does the same (an in-process `Client(server)` of the
    SDK speaks only the 2026-07-28 era, and is left to it)."""

    async def no_discover(ctx: Context, params: types.RequestParams) -> types.EmptyResult:
        raise MCPError(types.METHOD_NOT_FOUND, "Method not found", "server/discover")

    server.add_request_handler("server/discover", types.RequestParams, no_discover)


def _watch_upstream(settings: ServeSettings, transport: DirectTransport) -> UpstreamChanges:
    """Notice upstream servers' `list_changed` and compare them with the package's snapshot."""
    import shlex

    from ..snapshot import Snapshot, SnapshotError

    try:
        snapshot = Snapshot.read(settings.package.snapshot_path)
    except SnapshotError:
        snapshot = Snapshot()
    fix = shlex.join(
        [
            "mcp-codegen",
            "build",
            "--config",
            str(settings.config),
            "--package",
            str(settings.package.root),
        ]
    )
    changes = UpstreamChanges(snapshot, transport, fix)
    changes.watch()
    return changes


async def _with_note(
    state: State, key: Hashable | None, result: types.CallToolResult
) -> types.CallToolResult:
    """`result` with the note about upstream changes this session has not seen yet."""
    note = await state.changes.note_for(key) if state.changes is not None else None
    if note is None:
        return result
    return result.model_copy(update={"content": [*result.content, types.TextContent(text=note)]})


def _privacy_policy(config: Path) -> PrivacyPolicy:
    """The `privacy` section of the config, checked (everything on without one).

    Raises:
        ConfigError: the config or its `privacy` section is invalid.
    """
    from ..runtime.config import load_config

    loaded = load_config(config)
    return parse_policy(loaded.privacy, loaded.path)


async def _preconnect(transport: DirectTransport) -> None:
    """Start every server in the background; say on stderr what started and what did not."""
    started = time.perf_counter()
    try:
        names = [server.name for server in transport.config.servers]
        failures = await transport.preconnect(names)
    except ConfigError as exc:
        print(f"mcp-codegen serve: cannot start the servers: {exc}", file=sys.stderr, flush=True)
        return
    seconds = time.perf_counter() - started
    print(
        f"mcp-codegen serve: started {len(names) - len(failures)} of {len(names)} servers "
        f"in {seconds:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    for _name, message in sorted(failures.items()):
        first = message.splitlines()[0] if message else "failed"  # it names the server
        print(
            f"mcp-codegen serve: {first} (its next call tries again)", file=sys.stderr, flush=True
        )


def _version() -> str:
    from .. import __version__

    return __version__


def _resource_description(dotted: str) -> str:
    if dotted == "skills" or dotted.startswith("skills."):
        return "the saved skills" if dotted == "skills" else "a saved skill"
    depth = dotted.count(".")
    if depth == 2 and dotted.rpartition(".")[2] in ("resources", "prompts"):
        return f"a server's {dotted.rpartition('.')[2]}"
    return ("the list of servers", "a server's tools", "one tool's function")[min(depth, 2)]


def _search(
    state: State, arguments: dict[str, Any] | None, skills: SkillStore
) -> types.CallToolResult:
    problem = arguments_error(
        arguments, {"query": str, "detail": str, "limit": int}, required=("query",)
    )
    if problem:
        return text_result(problem, error=True)
    given = arguments or {}
    if len(given["query"]) > MAX_QUERY_CHARS:
        return text_result(
            f"the query is over {MAX_QUERY_CHARS} characters; use a few words", error=True
        )
    if not 1 <= given.get("limit", 10) <= 100:
        return text_result("limit must be from 1 to 100", error=True)
    try:
        text = search_tools(
            given["query"],
            given.get("detail", "summary"),
            given.get("limit", 10),
            index_path=state.settings.package.import_dir / INDEX_FILENAME,
            skills_dir=skills.search_path,
        )
    except SearchError as exc:
        return text_result(str(exc), error=True)
    return text_result(cut(text.rstrip("\n"), MAX_TEXT_CHARS))


def _read_module(catalogue: Catalogue, arguments: dict[str, Any] | None) -> types.CallToolResult:
    problem = arguments_error(arguments, {"path": str}, required=("path",))
    if problem:
        return text_result(problem, error=True)
    try:
        _, source = catalogue.read((arguments or {})["path"])
    except ModuleError as exc:
        return text_result(str(exc), error=True)
    return text_result(cut(source, MAX_TEXT_CHARS))


def _session_key(ctx: Context) -> Hashable | None:
    """The workspace's key: the process over stdio, else the protocol connection (a session).

    None when there is no connection to hold the workspace (then it lasts one call).
    """
    state = ctx.lifespan_context
    if state.settings.transport == "stdio":
        return "stdio"
    # The SDK gives handlers no public handle on the connection; its `state` and
    # `exit_stack` are the documented place for per-connection data and cleanup.
    connection = getattr(ctx.session, "_connection", None)
    if not isinstance(connection, Connection) or connection.session_id is None:
        return None
    if _WORKSPACE_KEY not in connection.state:
        connection.state[_WORKSPACE_KEY] = connection.session_id
        connection.exit_stack.callback(state.workspaces.release, connection.session_id)
        connection.exit_stack.callback(state.budgets.pop, connection.session_id, None)
        session_opened(connection.session_id, "http")  # telemetry
        connection.exit_stack.callback(session_closed, connection.session_id)  # telemetry
        if state.changes is not None:
            connection.exit_stack.callback(state.changes.forget, connection.session_id)
    key: Hashable = connection.state[_WORKSPACE_KEY]
    return key


async def _execute(
    ctx: Context, arguments: dict[str, Any] | None, key: Hashable | None
) -> types.CallToolResult:
    state = ctx.lifespan_context
    problem = arguments_error(arguments, {"code": str, "timeout": (int, float)}, ("code",))
    if problem:
        return text_result(problem, error=True)
    given = arguments or {}
    code: str = given["code"]
    timeout = float(given.get("timeout", state.settings.policy.timeout))
    if not 0 < timeout <= MAX_TIMEOUT:
        return text_result(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} s", error=True)
    refusal = await state.budget(key).run(code_refusal, code, inline=len(code) <= INLINE_CODE_CHARS)
    if refusal is not None:
        reason, message = refusal
        if reason == "syntax":
            security_event("code_refused", reason="syntax")  # telemetry, as the executor's check
        return text_result(message, error=True)
    try:
        async with execution_hooks(ctx) as hooks:  # issue 17: approvals, progress
            if key is None:
                executor = await state.workspaces.pool.take()
                try:
                    result = await _run(executor, code, timeout, disconnected(ctx.request), hooks)
                finally:
                    state.workspaces.close_later(executor)
            else:
                executor = await state.workspaces.get(key)
                # A cancelled request (notifications/cancelled, or a stdio client that
                # exits) cancels this task: the executor then stops the execution.
                result = await _run(executor, code, timeout, disconnected(ctx.request), hooks)
    except (SandboxError, RuntimeError) as exc:
        return text_result(f"the sandbox is unavailable: {exc}", error=True)
    if result is None:
        return text_result("the client went away; the execution was stopped", error=True)
    return text_result(format_result(result, state.settings.max_output), error=not result.ok)


async def _run(
    executor: Executor,
    code: str,
    timeout: float,
    gone: asyncio.Event | None,
    hooks: ExecutionHooks | None = None,
) -> ExecutionResult | None:
    """Run `code`; None if the HTTP client disconnected first (the execution is then stopped).

    Raises:
        SandboxError: no sandbox can be started.
    """
    if gone is None:
        return await executor.execute(code, filename="<code>", timeout=timeout, hooks=hooks)
    running = asyncio.ensure_future(
        executor.execute(code, filename="<code>", timeout=timeout, hooks=hooks)
    )
    watching = asyncio.ensure_future(gone.wait())
    try:
        await asyncio.wait({running, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not running.done():
            running.cancel()  # a dropped stream or a cancel: the executor stops the job
    return running.result() if not running.cancelled() else None


async def run_stdio(server: Server[State]) -> None:
    """Serve over stdin and stdout until the client closes them."""
    from mcp.server.runner import serve_loop
    from mcp.server.stdio import stdio_server

    _handshake_era_only(server)
    try:
        # The handshake era only (issue 17): `Server.run` would let a client open the
        # 2026-07-28 era, which has no back channel for an approval's elicitation.
        async with (
            event_loop_stdio() as streams,
            stdio_server(*_sdk_files(streams)) as (read_stream, write_stream),
            server.lifespan(server) as state,
        ):
            try:
                await serve_loop(
                    server,
                    read_stream,
                    write_stream,
                    lifespan_state=state,
                    init_options=server.create_initialization_options(),
                )
            finally:
                await write_stream.aclose()
    except BaseExceptionGroup as group:
        # A client that exits closes our stdout too: the answers still queued for it
        # fail to write. That is its normal end, not an error of the server.
        _, rest = group.split((BrokenPipeError, ConnectionError))
        if rest is not None:
            raise rest from None


def _sdk_files(streams: tuple[LineReader, LineWriter] | None) -> tuple[Any, Any]:
    """`stdio_server`'s stdin and stdout: ours, read on the event loop, when there are
    (it takes any object that iterates lines and writes text; None: its own)."""
    return streams if streams is not None else (None, None)


async def run_http(
    server: Server[State],
    host: str,
    port: int,
    *,
    limits: ServeLimits | None = None,
    auth: ServeAuth | None = None,
) -> None:
    """Serve streamable HTTP at `http://host:port/mcp`; print that URL to stderr once listening.

    With `auth`, every request needs a bearer token it accepts (see `serve.auth`).

    Raises:
        OSError: the address cannot be bound.
    """
    import uvicorn

    limits = limits or ServeLimits()
    # Bound first: OAuth's resource URL names the port, which --port 0 leaves to the system.
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listener = socket.create_server((host, port), family=family)
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/mcp"
    app = server.streamable_http_app(
        host=host,
        session_idle_timeout=limits.idle_timeout,
        max_sessions=limits.max_sessions,
        **(auth.app_options(url) if auth is not None else {}),
    )
    if auth is not None:
        auth.protect(app)
    # Admission sits outside authentication: it counts a client address's sessions
    # and requests whoever it claims to be.
    admission = Admission(app, limits)
    server.middleware.append(admission.tracking)
    http = uvicorn.Server(uvicorn.Config(admission, log_level="warning"))
    serving = asyncio.ensure_future(http.serve(sockets=[listener]))
    while not http.started and not serving.done():
        await asyncio.sleep(0.05)
    if http.started:
        print(f"mcp-codegen serve: listening on {url}", file=sys.stderr, flush=True)
    try:
        await serving
    finally:
        listener.close()
