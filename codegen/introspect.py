"""Introspection: connect to every configured server at once and list its tools.

Each server gets its own deadline. A server that cannot start, exits, hangs, or
answers with invalid data becomes an error naming it, with the tail of its
stderr; the others are still listed, so one report shows every problem.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .diagnostics import Diagnostics
from .introspect_extras import list_extras
from .runtime.config import Config, ServerConfig
from .runtime.direct import open_client, stderr_tail
from .runtime.errors import AuthError, ConfigError
from .snapshot import ServerSnapshot, ToolSnapshot

__all__ = ["DEFAULT_SERVER_TIMEOUT", "ServerListing", "introspect", "quiet_stdout_junk"]

DEFAULT_SERVER_TIMEOUT = 30.0
MAX_PAGES = 1000


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
    """The SDK logs a traceback for each stdout line that is not JSON-RPC: keep the line instead.

    The reader task inherits the context of the `_listing` task that started the
    server, so the line is recorded for that server and reported as one warning.
    Anywhere else the record becomes one line, without the traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
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
    """Turn the SDK's traceback for a stdout line that is not MCP into one line (idempotent)."""
    logger = logging.getLogger("mcp.client.stdio")
    if not any(isinstance(item, _StdoutJunk) for item in logger.filters):
        logger.addFilter(_StdoutJunk())


async def introspect(
    config: Config, diagnostics: Diagnostics, *, timeout: float = DEFAULT_SERVER_TIMEOUT
) -> list[ServerListing]:
    """List the tools of every server in `config`, concurrently.

    Failures are recorded in `diagnostics` as errors; their listing has no snapshot.
    A server's own `timeout` in the config overrides `timeout`.
    """
    quiet_stdout_junk()
    return list(
        await asyncio.gather(*(_listing(server, diagnostics, timeout) for server in config.servers))
    )


async def _listing(server: ServerConfig, diagnostics: Diagnostics, timeout: float) -> ServerListing:
    started = time.perf_counter()
    deadline = server.timeout or timeout
    junk: list[str] = []
    _NOT_MCP.set(junk)  # this task's context: the SDK's reader task for this server inherits it
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        try:
            snapshot = await asyncio.wait_for(
                _list_server(server, errlog, deadline, diagnostics), deadline
            )
        except Exception as exc:  # whatever the SDK raised on a dead, hung or broken server
            _record(diagnostics, server, _leaf(exc), errlog, deadline)
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
        _fail(
            diagnostics,
            server,
            f"did not answer within {deadline:g}s",
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
    server: ServerConfig, errlog: Any, timeout: float, diagnostics: Diagnostics
) -> ServerSnapshot:
    async with open_client(server, errlog=errlog, timeout=timeout) as client:
        tools: list[ToolSnapshot] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            try:
                page = await client.list_tools(cursor=cursor)
            except ValidationError as exc:
                raise _ServerFailed(
                    f"answered tools/list with invalid data: {_first(exc)}"
                ) from exc
            tools.extend(
                _tool(tool.model_dump(by_alias=True, exclude_none=True, mode="json"))
                for tool in page.tools
            )
            cursor = page.next_cursor
            if cursor is None:
                break
            if cursor in seen:
                raise _ServerFailed(
                    f"tools/list repeated the cursor {cursor!r}; pagination never ends"
                )
            seen.add(cursor)
        else:
            raise _ServerFailed(f"tools/list went on for more than {MAX_PAGES} pages")
        extras = await list_extras(client)  # resources, templates, prompts (issue 17)
        for warning in extras.warnings:
            diagnostics.warn(warning, server=server.name)
        info = client.server_info
        try:
            return ServerSnapshot(
                name=server.name,
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
