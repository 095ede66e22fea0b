"""The MCP server: three tools, the package's modules as resources, one sandbox per session.

Built on the SDK's low-level `Server`. Over stdio the process is one session;
over streamable HTTP each protocol session gets its own workspace, released
through the connection's exit stack when the session ends (a DELETE, the idle
timeout, or shutdown). The 2026-07-28 protocol has no sessions, so over HTTP
`server/discover` answers "method not found" and clients negotiate the
handshake era; a request that still arrives without a session runs in a
workspace of its own that ends with the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from ..package import BuiltPackage
from ..runtime.direct import DirectTransport
from ..runtime.errors import ConfigError
from ..runtime.search import INDEX_FILENAME, SearchError, search_tools
from ..sandbox.errors import SandboxError
from ..sandbox.executor import Executor, Limits, UnsafeLocalExecutor
from ..sandbox.result import ExecutionResult
from ..skills import SkillStore, default_skills_dir
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
    """Where skills are saved; by default `.mcp-codegen/skills` beside the config."""
    preconnect: bool = True
    """Start every configured server when serving starts, not at its first tool call."""

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

    def new_executor(self) -> Executor:
        """An executor of one sandbox sharing the host transport."""
        kind = UnsafeLocalExecutor if self.settings.unsafe_local else Executor
        limits = Limits(timeout=self.settings.timeout, memory_mb=self.settings.memory_mb)
        return kind(
            self.settings.package.root,
            transport=self.transport,
            limits=limits,
            skills_dir=self.settings.skills,
        )


Context = ServerRequestContext[State, Any]


def build_server(settings: ServeSettings) -> Server[State]:
    """The MCP server of `settings` (run it with `run_stdio` or `run_http`)."""
    skills = SkillStore(settings.skills, settings.package.import_dir)
    catalogue = Catalogue.of(settings.package.import_dir, skills)
    servers = sorted(name.split(".")[1] for name in catalogue.files if name.count(".") == 1)
    tool_paths = sorted(name for name in catalogue.files if name.count(".") == 2)
    example = "servers.git.git_log" if "servers.git.git_log" in tool_paths else None
    example = example or (tool_paths[0] if tool_paths else "servers.example.tool")
    tools = tool_list(settings.timeout)

    @contextlib.asynccontextmanager
    async def lifespan(_: Server[State]) -> AsyncIterator[State]:
        transport = DirectTransport(settings.config)
        state = State(settings, catalogue, Workspaces(lambda: state.new_executor()), transport)
        warming = asyncio.ensure_future(_preconnect(transport)) if settings.preconnect else None
        try:
            yield state
        finally:
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
        if params.name == "search_tools":
            return _search(state, arguments)
        if params.name == "read_module":
            return _read_module(state, arguments)
        if params.name == "execute_code":
            return await _execute(ctx, arguments)
        raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name!r}")

    async def list_resources(
        ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
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
    return ("the list of servers", "a server's tools", "one tool's function")[min(depth, 2)]


def _search(state: State, arguments: dict[str, Any] | None) -> types.CallToolResult:
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
            skills_dir=state.settings.skills,
        )
    except SearchError as exc:
        return text_result(str(exc), error=True)
    return text_result(text.rstrip("\n"))


def _read_module(state: State, arguments: dict[str, Any] | None) -> types.CallToolResult:
    problem = arguments_error(arguments, {"path": str}, required=("path",))
    if problem:
        return text_result(problem, error=True)
    try:
        _, source = state.catalogue.read((arguments or {})["path"])
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


# Executions a cancelled request left running; they end at their own time limit.
_orphans: set[asyncio.Task[ExecutionResult]] = set()


async def _execute(ctx: Context, arguments: dict[str, Any] | None) -> types.CallToolResult:
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
    key = _session_key(ctx)
    try:
        if key is None:
            executor = state.new_executor()
            try:
                result = await executor.execute(code, filename="<code>", timeout=timeout)
            finally:
                await executor.aclose()
        else:
            executor = await state.workspaces.get(key)
            # A cancelled request must not abandon the sandbox mid-execution: the
            # execution runs on to its own time limit and the sandbox stays usable.
            task = asyncio.ensure_future(executor.execute(code, filename="<code>", timeout=timeout))
            _orphans.add(task)
            task.add_done_callback(_orphans.discard)
            result = await asyncio.shield(task)
    except (SandboxError, RuntimeError) as exc:
        return text_result(f"the sandbox is unavailable: {exc}", error=True)
    return text_result(format_result(result, state.settings.max_output), error=not result.ok)


async def run_stdio(server: Server[State]) -> None:
    """Serve over stdin and stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def run_http(
    server: Server[State],
    host: str,
    port: int,
    *,
    max_sessions: int = 32,
    idle_timeout: float = 30 * 60,
) -> None:
    """Serve streamable HTTP at `http://host:port/mcp`; print that URL to stderr once listening."""
    import uvicorn

    app = server.streamable_http_app(
        host=host, session_idle_timeout=idle_timeout, max_sessions=max_sessions
    )
    http = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
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
