"""Introspection: start every configured server, a few at a time, and list its tools.

At most `jobs` servers start at once (by default `default_jobs()`, from the CPU
count): starting one is mostly CPU, so starting them all at once only makes each
start slower until every deadline passes. A server's deadline runs from its
start, not from when it was queued. A server that cannot start, exits, hangs, or
answers with invalid data becomes an error naming it, with the tail of its
stderr; the others are still listed, so one report shows every problem.

Whatever a server does, this ends: when its deadline passes the server is
stopped (see `runtime.stdio`: its process group is killed, and every process
carrying its tag), and a server whose stop itself does not end within
`STOP_BOUND` more seconds is killed and abandoned. The event loop's own end is
bounded the same way (`run_introspection`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from pydantic import ValidationError

from .diagnostics import Diagnostics
from .introspect_extras import METHOD_NOT_FOUND, list_extras
from .progress import Progress, QuietProgress
from .runtime.config import Config, ServerConfig
from .runtime.direct import default_jobs, open_client, stderr_tail
from .runtime.errors import AuthError, ConfigError
from .runtime.stdio import EOF_GRACE, NOT_MCP_LINE, TERM_GRACE
from .runtime.stdio import logger as stdio_logger
from .snapshot import ServerSnapshot, ToolSnapshot

if TYPE_CHECKING:
    from mcp import Client

    from .runtime.stdio import ServerProcess

__all__ = [
    "DEFAULT_SERVER_TIMEOUT",
    "STOP_BOUND",
    "ServerListing",
    "introspect",
    "quiet_stdout_junk",
    "relist_server",
    "run_introspection",
]

DEFAULT_SERVER_TIMEOUT = 30.0
MAX_PAGES = 1000
STOP_BOUND = EOF_GRACE + TERM_GRACE + 3.0
"""Seconds past its deadline after which a server that is still being stopped is abandoned."""

_LOOP_END_BOUND = 3.0
_T = TypeVar("_T")


@dataclass(frozen=True)
class ServerListing:
    """What one server gave: its snapshot, or nothing; and how long it took."""

    name: str
    snapshot: ServerSnapshot | None
    seconds: float


class _ServerFailed(Exception):
    pass


_NOT_MCP: ContextVar[list[str] | None] = ContextVar("mcp_codegen_not_mcp", default=None)
"""The lines of stdout that were not MCP, of the server introspected in this task."""


class _StdoutJunk(logging.Filter):
    """A stdout line that is not JSON-RPC: recorded for its server, or one line without traceback.

    `runtime.stdio` logs such a line as one warning holding the text; the SDK's
    own transport (used on Windows) logs a traceback. The reader task inherits
    the context of the `_listing` task that started the server, so the line is
    recorded for that server and reported as one warning. Anywhere else the
    record becomes one line, without the traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        line = getattr(record, NOT_MCP_LINE, None)
        if not isinstance(line, str):
            if not record.getMessage().startswith("Failed to parse JSONRPC message"):
                return True
            error = record.exc_info[1] if record.exc_info else None
            errors = error.errors() if isinstance(error, ValidationError) else []
            line = str(errors[0].get("input", "")) if errors else ""
        lines = _NOT_MCP.get()
        if lines is not None:
            lines.append(line)
            return False
        record.msg, record.args = (
            f"a server wrote text that is not MCP to stdout: {line[:200]!r}",
            (),
        )
        record.exc_info, record.exc_text = None, None
        return True


def quiet_stdout_junk() -> None:
    """Make a stdout line that is not MCP one line, recorded for its server (idempotent)."""
    for logger in (stdio_logger, logging.getLogger("mcp.client.stdio")):
        if not any(isinstance(item, _StdoutJunk) for item in logger.filters):
            logger.addFilter(_StdoutJunk())


class _Board:
    """Counts servers done / running / queued and shows them."""

    def __init__(self, total: int, progress: Progress):
        self.progress = progress
        self.queued, self.running, self.done, self.failed = total, 0, 0, 0

    def start(self) -> None:
        self.queued -= 1
        self.running += 1
        self._show()

    def finish(self, ok: bool) -> None:
        self.running -= 1
        self.done += 1
        self.failed += not ok
        self._show()

    def _show(self) -> None:
        self.progress.servers(self.done, self.running, self.queued, self.failed)


async def introspect(
    config: Config,
    diagnostics: Diagnostics,
    *,
    timeout: float = DEFAULT_SERVER_TIMEOUT,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> list[ServerListing]:
    """List the tools of every server in `config`, `jobs` at a time.

    Failures are recorded in `diagnostics` as errors; their listing has no snapshot.
    A server's own `timeout` in the config overrides `timeout`; it counts from
    the server's start.
    """
    quiet_stdout_junk()
    board = _Board(len(config.servers), progress or QuietProgress())
    limit = asyncio.Semaphore(jobs or default_jobs())

    async def one(server: ServerConfig) -> ServerListing:
        async with limit:
            board.start()
            listing = await _listing(server, diagnostics, timeout)
            board.finish(listing.snapshot is not None)
            return listing

    return list(await asyncio.gather(*(one(server) for server in config.servers)))


def run_introspection(main: Coroutine[Any, Any, _T]) -> _T:
    """Run `main` in a new event loop whose end is bounded too.

    `asyncio.run` waits for every task it cancels at the end, without a limit;
    an abandoned server's task must not hold the command. Leftover tasks get
    `_LOOP_END_BOUND` seconds, then the loop closes anyway.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            leftover = asyncio.all_tasks(loop)
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.wait(leftover, timeout=_LOOP_END_BOUND))
            loop.run_until_complete(
                asyncio.wait_for(loop.shutdown_asyncgens(), timeout=_LOOP_END_BOUND)
            )
        except (TimeoutError, RuntimeError):
            pass
        finally:
            loop.close()


async def _listing(server: ServerConfig, diagnostics: Diagnostics, timeout: float) -> ServerListing:
    started = time.perf_counter()
    deadline = server.timeout or timeout
    junk: list[str] = []
    _NOT_MCP.set(junk)  # this task's context: the server's reader task inherits it
    processes: list[ServerProcess] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        task = asyncio.ensure_future(
            _list_within(server, errlog, deadline, processes.append, diagnostics)
        )
        await asyncio.wait({task}, timeout=deadline + STOP_BOUND)
        if task.done():
            snapshot = None
            try:
                snapshot = task.result()
            except Exception as exc:  # whatever the SDK raised on a dead, hung or broken server
                _record(diagnostics, server, _leaf(exc), errlog, deadline)
        else:
            # Its stop did not end in time: kill what it started and leave the task behind.
            for process in processes:
                process.kill()
            task.cancel()
            _record(diagnostics, server, TimeoutError(), errlog, deadline)
            snapshot = None
    if junk:
        count = f"{len(junk)} line{'' if len(junk) == 1 else 's'}"
        diagnostics.warn(
            f"wrote {count} to stdout that {'is' if len(junk) == 1 else 'are'} not MCP "
            f"(first: {junk[0][:120]!r})",
            server=server.name,
            hint="a server must write only MCP to stdout and its logs to stderr; "
            "report it to its authors",
        )
    return ServerListing(server.name, snapshot, time.perf_counter() - started)


class _Reached:
    """How far one server got: started (initialized), listed."""

    def __init__(self) -> None:
        self.started = False
        self.snapshot: ServerSnapshot | None = None


class _Deadline(TimeoutError):
    def __init__(self, started: bool):
        super().__init__()
        self.started = started


async def _list_within(
    server: ServerConfig,
    errlog: Any,
    deadline: float,
    on_start: Callable[[ServerProcess], None],
    diagnostics: Diagnostics,
) -> ServerSnapshot:
    got = _Reached()
    try:
        with anyio.fail_after(deadline):
            await _list_server(server, errlog, deadline, on_start, got, diagnostics)
    except TimeoutError:
        if got.snapshot is None:
            raise _Deadline(got.started) from None
        # The deadline passed while a server that had answered was being stopped.
    assert got.snapshot is not None
    return got.snapshot


def _leaf(exc: BaseException) -> BaseException:
    # anyio wraps failures inside task groups; the first leaf says what happened.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _record(
    diagnostics: Diagnostics, server: ServerConfig, exc: BaseException, errlog: Any, deadline: float
) -> None:
    if isinstance(exc, ConfigError | AuthError):
        # Both already name the server and the fix (`mcp-codegen login NAME`).
        diagnostics.error(str(exc), server=server.name)
    elif isinstance(exc, TimeoutError):
        what = (
            "started, but did not list its tools"
            if isinstance(exc, _Deadline) and exc.started
            else "did not answer"
        )
        _fail(
            diagnostics,
            server,
            f"{what} within {deadline:g}s",
            errlog,
            'raise its "timeout" in mcp.json or --timeout if it is just slow',
        )
    elif isinstance(exc, _ServerFailed):
        _fail(
            diagnostics,
            server,
            str(exc),
            errlog,
            "the server is at fault; report it to its authors",
        )
    else:
        _fail(diagnostics, server, _describe(exc), errlog, _start_hint(server))


def _fail(
    diagnostics: Diagnostics, server: ServerConfig, message: str, errlog: Any, hint: str | None
) -> None:
    tail = stderr_tail(errlog)
    if tail:
        message += "\n    stderr: " + tail.replace("\n", "\n    stderr: ")
    diagnostics.error(message, server=server.name, hint=hint)


def _start_hint(server: ServerConfig) -> str:
    if hasattr(server, "command"):
        return "check that its command runs on its own in a terminal"
    return "check that its url is reachable and speaks streamable HTTP"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"cannot start: {exc.filename or exc}: no such file or command"
    if isinstance(exc, PermissionError):
        return f"cannot start: {exc.filename or exc}: permission denied"
    text = str(exc).strip() or type(exc).__name__
    return f"failed while connecting or listing tools: {text}"


async def _list_server(
    server: ServerConfig,
    errlog: Any,
    timeout: float,
    on_start: Callable[[ServerProcess], None],
    got: _Reached,
    diagnostics: Diagnostics,
) -> None:
    async with open_client(server, errlog=errlog, timeout=timeout, on_start=on_start) as client:
        got.started = True
        snapshot, warnings = await _snapshot_of(client, server.name)
        for warning in warnings:  # about resources, templates, prompts (issue 17)
            diagnostics.warn(warning, server=server.name)
        got.snapshot = snapshot


async def relist_server(client: Client, name: str) -> ServerSnapshot:
    """What a connected server offers now (tools, resources, templates, prompts), as a
    snapshot of the server `name`: for comparing with the one the package was built from.

    Raises:
        ValueError: the server answered a list with an error or invalid data.
    """
    try:
        snapshot, warnings = await _snapshot_of(client, name)
    except _ServerFailed as exc:
        raise ValueError(str(exc)) from None
    if warnings:
        raise ValueError(warnings[0])
    return snapshot


async def _snapshot_of(client: Client, name: str) -> tuple[ServerSnapshot, list[str]]:
    """The snapshot of a connected server configured as `name`, and the warnings of
    listing its resources, templates and prompts.

    Raises:
        _ServerFailed: tools/list answered invalid data or never ended; a tool is invalid.
    """
    from mcp.shared.exceptions import MCPError

    tools: list[ToolSnapshot] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        try:
            page = await client.list_tools(cursor=cursor)
        except ValidationError as exc:
            raise _ServerFailed(f"answered tools/list with invalid data: {_first(exc)}") from exc
        except MCPError as exc:
            # A server offering only resources or prompts declares no `tools` capability
            # and may not know tools/list: it has no tools. (Asked anyway, since some
            # servers with tools forget to declare the capability.)
            if exc.error.code != METHOD_NOT_FOUND or client.server_capabilities.tools is not None:
                raise
            break
        tools.extend(
            _tool(tool.model_dump(by_alias=True, exclude_none=True, mode="json"))
            for tool in page.tools
        )
        cursor = page.next_cursor
        if cursor is None:
            break
        if cursor in seen:
            raise _ServerFailed(f"tools/list repeated the cursor {cursor!r}; pagination never ends")
        seen.add(cursor)
    else:
        raise _ServerFailed(f"tools/list went on for more than {MAX_PAGES} pages")
    extras = await list_extras(client)  # resources, templates, prompts (issue 17)
    info = client.server_info
    try:
        snapshot = ServerSnapshot(
            name=name,
            server_name=info.name if info else None,
            server_title=info.title if info else None,
            server_version=info.version if info else None,
            protocol_version=client.protocol_version,
            instructions=client.instructions or None,
            tools=tuple(tools),
            **extras.fields,
        )
    except ValidationError as exc:
        raise _ServerFailed(f"listed invalid tools: {_first(exc)}") from exc
    return snapshot, extras.warnings


def _tool(wire: dict[str, Any]) -> ToolSnapshot:
    title = wire.get("title") or (wire.get("annotations") or {}).get("title")
    return ToolSnapshot.model_validate(
        {
            "name": wire["name"],
            "title": title,
            "description": wire.get("description") or "",
            "inputSchema": wire.get("inputSchema") or {"type": "object"},
            "outputSchema": wire.get("outputSchema"),
            "annotations": wire.get("annotations") or None,
        }
    )


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'/'.join(str(part) for part in error['loc'])}: {error['msg']}"
