"""The MCP server: three tools, the package's modules as resources, one sandbox per session.

Built on the SDK's low-level `Server`. Over stdio the process is one session;
over streamable HTTP each protocol session gets its own workspace, released
through the connection's exit stack when the session ends (a DELETE, the idle
timeout, or shutdown). Each session sees the shared skills and its own (see
`sandbox.bridge.skills`). When a client cancels an `execute_code`, drops its HTTP
request, or (over stdio) exits, the execution is stopped at once: its processes
are killed and no further tool call of it leaves the bridge. What a client may
hold (sessions, requests in flight, idle time) is bounded by `ServeLimits`.
The 2026-07-28 protocol has no sessions, so over HTTP
`server/discover` answers "method not found" and clients negotiate the
handshake era; a request that still arrives without a session runs in a
workspace of its own that ends with the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from ..package import BuiltPackage
from ..runtime.direct import DirectTransport
from ..runtime.search import INDEX_FILENAME, SearchError, search_tools
from ..sandbox.bridge.skills import SkillStore, default_skills_dir
from ..sandbox.errors import SandboxError
from ..sandbox.executor import Executor, Limits, UnsafeLocalExecutor
from ..sandbox.quotas import Quotas, ServeLimits
from ..sandbox.result import ExecutionResult
from ..sandbox.warmpool import WarmPool
from ..snapshot import Snapshot
from .limits import Admission, disconnected
from .modules import Catalogue, ModuleError
from .sessions import Workspaces
from .tools import (
    MAX_TIMEOUT,
    arguments_error,
    check_code,
    format_result,
    instructions,
    text_result,
    tool_list,
)

__all__ = ["ServeSettings", "State", "build_server", "run_http", "run_stdio"]

_WORKSPACE_KEY = "mcp-codegen.workspace"


@dataclass(frozen=True)
class ServeSettings:
    """What `serve` serves and how."""

    package: BuiltPackage
    config: Path
    transport: Literal["stdio", "http"] = "stdio"
    timeout: float = 30.0
    """Default wall-clock limit of one `execute_code`, in seconds."""
    memory_mb: int = 512
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

    def new_executor(self) -> Executor:
        """An executor of one sandbox sharing the host transport."""
        settings = self.settings
        kind = UnsafeLocalExecutor if settings.unsafe_local else Executor
        limits = Limits(timeout=settings.timeout, memory_mb=settings.memory_mb)
        return kind(
            settings.package.root,
            transport=self.transport,
            snapshot=self.snapshot,
            limits=limits,
            skills_dir=settings.skills,
            skills_scope="shared" if settings.share_skills else "session",
            quotas=settings.quotas,
            origin=f"serve-{settings.transport}",
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


def build_server(settings: ServeSettings) -> Server[State]:
    """The MCP server of `settings` (run it with `run_stdio` or `run_http`).

    Raises:
        SnapshotError: the package's snapshot cannot be read.
    """
    skills = SkillStore(settings.skills, settings.package.import_dir)
    catalogue = Catalogue.of(settings.package.import_dir, skills)
    snapshot = Snapshot.read(settings.package.snapshot_path)
    servers = sorted(name.split(".")[1] for name in catalogue.files if name.count(".") == 1)
    tool_paths = sorted(name for name in catalogue.files if name.count(".") == 2)
    example = "servers.git.git_log" if "servers.git.git_log" in tool_paths else None
    example = example or (tool_paths[0] if tool_paths else "servers.example.tool")
    tools = tool_list(settings.timeout)

    @contextlib.asynccontextmanager
    async def lifespan(_: Server[State]) -> AsyncIterator[State]:
        transport = DirectTransport(settings.config)
        # Over stdio there is one session: its sandbox is started now, and not replaced.
        pool = WarmPool(
            lambda: state.new_executor(),
            settings.warm_sandboxes,
            refill=settings.transport == "http",
        )
        state = State(settings, catalogue, Workspaces(pool), transport, snapshot)
        pool.fill()
        try:
            yield state
        finally:
            # Shielded: when the client is gone, this scope is being cancelled, and the
            # sandboxes and their /state mounts must still be removed.
            with anyio.CancelScope(shield=True):
                await state.workspaces.aclose()
                await transport.aclose()

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
            if params.name == "search_tools":
                return _search(state, arguments, state.skills(key))
            if params.name == "read_module":
                return _read_module(state.catalogue_of(key), arguments)
            return await _execute(ctx, arguments, key)
        finally:
            state.in_flight[key] -= 1
            if state.in_flight[key] <= 0:
                del state.in_flight[key]

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

        async def no_discover(ctx: Context, params: types.RequestParams) -> types.EmptyResult:
            raise MCPError(types.METHOD_NOT_FOUND, "Method not found", "server/discover")

        server.add_request_handler("server/discover", types.RequestParams, no_discover)
    return server


def _version() -> str:
    from .. import __version__

    return __version__


def _resource_description(dotted: str) -> str:
    if dotted == "skills" or dotted.startswith("skills."):
        return "the saved skills" if dotted == "skills" else "a saved skill"
    depth = dotted.count(".")
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
    return text_result(text.rstrip("\n"))


def _read_module(catalogue: Catalogue, arguments: dict[str, Any] | None) -> types.CallToolResult:
    problem = arguments_error(arguments, {"path": str}, required=("path",))
    if problem:
        return text_result(problem, error=True)
    try:
        _, source = catalogue.read((arguments or {})["path"])
    except ModuleError as exc:
        return text_result(str(exc), error=True)
    return text_result(source)


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
    timeout = float(given.get("timeout", state.settings.timeout))
    if not 0 < timeout <= MAX_TIMEOUT:
        return text_result(f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} s", error=True)
    invalid = check_code(code)
    if invalid:
        return text_result(invalid, error=True)
    try:
        if key is None:
            executor = await state.workspaces.pool.take()
            try:
                result = await _run(executor, code, timeout, disconnected(ctx.request))
            finally:
                state.workspaces.close_later(executor)
        else:
            executor = await state.workspaces.get(key)
            # A cancelled request (notifications/cancelled, or a stdio client that
            # exits) cancels this task: the executor then stops the execution.
            result = await _run(executor, code, timeout, disconnected(ctx.request))
    except (SandboxError, RuntimeError) as exc:
        return text_result(f"the sandbox is unavailable: {exc}", error=True)
    if result is None:
        return text_result("the client went away; the execution was stopped", error=True)
    return text_result(format_result(result, state.settings.max_output), error=not result.ok)


async def _run(
    executor: Executor, code: str, timeout: float, gone: asyncio.Event | None
) -> ExecutionResult | None:
    """Run `code`; None if the HTTP client disconnected first (the execution is then stopped).

    Raises:
        SandboxError: no sandbox can be started.
    """
    if gone is None:
        return await executor.execute(code, filename="<code>", timeout=timeout)
    running = asyncio.ensure_future(executor.execute(code, filename="<code>", timeout=timeout))
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
    from mcp.server.stdio import stdio_server

    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    except BaseExceptionGroup as group:
        # A client that exits closes our stdout too: the answers still queued for it
        # fail to write. That is its normal end, not an error of the server.
        _, rest = group.split((BrokenPipeError, ConnectionError))
        if rest is not None:
            raise rest from None


async def run_http(
    server: Server[State],
    host: str,
    port: int,
    *,
    limits: ServeLimits | None = None,
) -> None:
    """Serve streamable HTTP at `http://host:port/mcp`; print that URL to stderr once listening."""
    import uvicorn

    limits = limits or ServeLimits()
    app = server.streamable_http_app(
        host=host, session_idle_timeout=limits.idle_timeout, max_sessions=limits.max_sessions
    )
    admission = Admission(app, limits)
    server.middleware.append(admission.tracking)
    http = uvicorn.Server(uvicorn.Config(admission, host=host, port=port, log_level="warning"))
    serving = asyncio.ensure_future(http.serve())
    while not http.started and not serving.done():
        await asyncio.sleep(0.05)
    if http.started:
        bound = http.servers[0].sockets[0].getsockname()[1] if http.servers else port
        shown = f"[{host}]" if ":" in host else host
        print(
            f"mcp-codegen serve: listening on http://{shown}:{bound}/mcp",
            file=sys.stderr,
            flush=True,
        )
    await serving
