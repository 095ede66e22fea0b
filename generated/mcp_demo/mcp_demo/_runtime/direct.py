"""The direct transport: this process talks to the servers itself, from an `mcp.json`.

With it, a generated package is an ordinary typed SDK for any Python program.
It imports the `mcp` SDK only when the first call is made, so importing the
package stays cheap where this transport is not used (inside the sandbox).

Each server gets one session, opened on first use and kept until `aclose()` or
the end of the event loop. The session lives in a task of its own, because the
SDK's sessions must be entered and left by the same task, while calls come from
any task (`asyncio.gather` of calls to one server share its session).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

from .config import Config, HttpServer, ServerConfig, load_config
from .errors import ConfigError, TransportError

if TYPE_CHECKING:
    from mcp import Client

    from .oauth import LoginPrompt, ServerAuth

__all__ = ["DEFAULT_TIMEOUT", "DirectTransport", "auth_problem", "open_client", "stderr_tail"]

# The OAuth of each open HTTP client (by id: clients are not hashable), to tell a
# refused login from other failures.
_auth_of: dict[int, ServerAuth] = {}

DEFAULT_TIMEOUT = 60.0
"""Seconds a server may take to start, or to answer one call."""


@asynccontextmanager
async def open_client(
    server: ServerConfig,
    *,
    errlog: TextIO | None = None,
    timeout: float | None = None,
    login: LoginPrompt | None = None,
    message_handler: Any = None,
) -> AsyncIterator[Client]:
    """Start or connect to `server` and yield an initialized SDK `Client`.

    An HTTP server that answers 401 is logged in to with OAuth (`runtime.oauth`);
    only with `login` (from `mcp-codegen login`) may that involve a person.
    `message_handler` receives the server's notifications (the SDK's `message_handler`).

    Raises:
        ConfigError: a `${VAR}` of the server's config is not set.
        TransportError: the `mcp` SDK (the package's `[direct]` extra) is not installed.
        AuthError: the server needs a login this process does not have, or refused one.
        OSError: the command cannot be started.
    """
    try:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "mcp":
            raise
        raise TransportError(_missing_sdk(server.name)) from None

    if isinstance(server, HttpServer):
        from .oauth import server_auth

        http = server.resolve()
        auth = server_auth(server.name, http, prompt=login)
        try:
            async with (
                create_mcp_http_client(headers=http.headers or None, auth=auth) as http_client,
                Client(
                    streamable_http_client(http.url, http_client=http_client),
                    read_timeout_seconds=timeout,
                    cache=None,
                    message_handler=message_handler,
                ) as client,
            ):
                if auth is not None:
                    _auth_of[id(client)] = auth
                try:
                    yield client
                finally:
                    _auth_of.pop(id(client), None)
        except Exception:
            problem = auth.problem() if auth is not None else None
            if problem is None:
                raise
            raise problem from None
        return
    stdio = server.resolve()
    params = StdioServerParameters(
        command=stdio.command, args=list(stdio.args), env=stdio.env or None, cwd=stdio.cwd
    )
    transport = stdio_client(params, errlog=errlog if errlog is not None else sys.stderr)
    async with Client(
        transport, read_timeout_seconds=timeout, cache=None, message_handler=message_handler
    ) as client:
        yield client


def _missing_sdk(server: str) -> str:
    """What to install when the `mcp` SDK is missing: this package's `[direct]` extra."""
    from importlib import metadata

    package = __name__.split(".")[0]
    dists = metadata.packages_distributions().get(package) or [package.replace("_", "-")]
    return (
        f"calling server {server!r} from this process needs the mcp SDK, which is not "
        f"installed: pip install '{dists[0]}[direct]'"
    )


def auth_problem(client: Client) -> Exception | None:
    """Why `client`'s server refused its last request, when credentials were the cause."""
    auth = _auth_of.get(id(client))
    return auth.problem() if auth is not None else None


def stderr_tail(errlog: TextIO | None, lines: int = 8) -> str:
    """The last `lines` lines a server wrote to its stderr file, for error messages."""
    if errlog is None:
        return ""
    try:
        errlog.flush()
        errlog.seek(0)
        text = errlog.read()
    except (OSError, ValueError):
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(tail)


_Opener = Callable[..., AbstractAsyncContextManager["Client"]]


class _HeldSession:
    """One server's session, owned by a task that enters and leaves it."""

    def __init__(self, server: ServerConfig, timeout: float, opener: _Opener = open_client):
        self.server = server
        self.timeout = timeout
        self._open = opener
        # Closed in aclose(): it outlives this method, so no `with` can hold it.
        self.errlog: TextIO = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(), name=f"mcp-session-{server.name}")

    async def _hold(self) -> None:
        try:
            async with self._open(self.server, errlog=self.errlog, timeout=self.timeout) as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def client(self) -> Client:
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), self.timeout)
        except TimeoutError:
            raise self._failure(f"did not finish starting within {self.timeout:g}s") from None
        except (ConfigError, TransportError):  # AuthError is a TransportError
            raise
        except Exception as exc:
            raise self._failure(f"could not start: {exc}") from None

    def _failure(self, message: str) -> TransportError:
        tail = stderr_tail(self.errlog)
        return TransportError(
            f"server {self.server.name!r} {message}" + (f"\n{tail}" if tail else "")
        )

    async def aclose(self) -> None:
        self._stop.set()
        if not self._ready.done():
            self._task.cancel()
        try:
            await asyncio.wait_for(self._task, 10)
        except (TimeoutError, asyncio.CancelledError, Exception):
            self._task.cancel()
        if self._ready.done() and not self._ready.cancelled():
            # Closed while starting, with no caller waiting: the failure is seen here, so
            # the future's finalizer does not log it (on Python 3.11 a traceback printed
            # from a finalizer during another parse can upset the ast module's state).
            self._ready.exception()
        self.errlog.close()


class DirectTransport:
    """Calls tools over real MCP sessions opened by this process.

    `config` is a parsed `Config`, or the path of an `mcp.json`; by default
    `$MCP_CODEGEN_CONFIG`, then `./mcp.json`.
    """

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self._config_source = config
        self._config = config if isinstance(config, Config) else None
        self.timeout = timeout
        self._sessions: dict[str, _HeldSession] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_notification: Callable[[str, Any], Awaitable[None]] | None = None
        """Called with (server, notification) for what a server sends unasked
        (`tools/list_changed`...); `serve` sets it to notice upstream changes."""

    @property
    def config(self) -> Config:
        """The parsed config, read on first use.

        Raises:
            ConfigError: the config file is missing or invalid.
        """
        if self._config is None:
            source = self._config_source
            self._config = load_config(source if not isinstance(source, Config) else None)
        return self._config

    def open(
        self, server: ServerConfig, errlog: TextIO | None, timeout: float | None
    ) -> AbstractAsyncContextManager[Client]:
        """How a session with `server` is opened (`open_client`; a subclass may bound it)."""
        return open_client(
            server, errlog=errlog, timeout=timeout, message_handler=self.notifications(server.name)
        )

    def notifications(self, server: str) -> Any:
        """The SDK `message_handler` of `server`'s session: passes its notifications on."""

        async def handle(message: Any) -> None:
            if self.on_notification is not None and not isinstance(message, Exception):
                await self.on_notification(server, message)

        return handle

    async def _session(self, name: str) -> Client:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Sessions of an earlier event loop died with it (asyncio.run ends them).
            self._sessions.clear()
            self._loop = loop
        held = self._sessions.get(name)
        if held is None:
            server = self.config.server(name)
            held = _HeldSession(server, server.timeout or self.timeout, self.open)
            self._sessions[name] = held
        try:
            return await held.client()
        except Exception:
            self._sessions.pop(name, None)
            await held.aclose()
            raise

    async def call_tool(
        self, server: str, tool: str, arguments: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Call `tool` on `server` over its session; return the wire-form result.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started or did not answer.
        """
        client = await self._session(server)
        try:
            result = await client.call_tool(tool, dict(arguments))
        except Exception as exc:
            problem = auth_problem(client)
            if problem is not None:
                raise problem from None
            raise TransportError(f"{server}.{tool}: call failed: {exc}") from exc
        dumped: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
        return dumped

    async def client(self, server: str) -> Client:
        """The initialized session of `server`, opened on first use.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started.
        """
        return await self._session(server)

    async def read_resource(self, server: str, uri: str) -> dict[str, Any]:
        """Read resource `uri` of `server`; the wire-form `ReadResourceResult`.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started, or refused or failed the read.
        """
        client = await self._session(server)
        try:
            result = await client.read_resource(uri)
        except Exception as exc:
            raise self._failed(client, f"{server}: reading {uri!r} failed: {exc}") from exc
        dumped: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
        return dumped

    async def get_prompt(
        self, server: str, prompt: str, arguments: Mapping[str, str]
    ) -> dict[str, Any]:
        """Get prompt `prompt` of `server` with `arguments`; the wire-form `GetPromptResult`.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started, or refused or failed the request.
        """
        client = await self._session(server)
        try:
            result = await client.get_prompt(prompt, dict(arguments))
        except Exception as exc:
            raise self._failed(client, f"{server}.{prompt}: prompt failed: {exc}") from exc
        dumped: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
        return dumped

    @staticmethod
    def _failed(client: Client, message: str) -> Exception:
        problem = auth_problem(client)
        return problem if problem is not None else TransportError(message)

    async def aclose(self) -> None:
        """Close every session this transport opened."""
        held, self._sessions = list(self._sessions.values()), {}
        for session in held:
            await session.aclose()
