"""The direct transport: this process talks to the servers itself, from an `mcp.json`.

With it, a generated package is an ordinary typed SDK for any Python program.
It imports the `mcp` SDK only when the first call is made, so importing the
package stays cheap where this transport is not used (inside the sandbox).

Each server gets one session, opened on first use (or ahead of it, with
`preconnect`) and kept until `aclose()` or the end of the event loop. The session
lives in a task of its own, because the SDK's sessions must be entered and left
by the same task, while calls come from any task (`asyncio.gather` of calls to
one server share its session). A stdio server runs under `stdio`'s control: when
its session closes, nothing of it is left running.

A server that dies (crashes, is killed) is started again by the next call to it;
the calls that were in flight when it died fail with a `TransportError` that says
so. The other servers' sessions are not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

from .config import Config, HttpServer, ServerConfig, load_config
from .errors import ConfigError, TransportError

if TYPE_CHECKING:
    from mcp import Client
    from pydantic import BaseModel

    from .oauth import LoginPrompt, ServerAuth
    from .stdio import ServerProcess

__all__ = [
    "DEFAULT_TIMEOUT",
    "DirectTransport",
    "auth_problem",
    "default_jobs",
    "open_client",
    "stderr_tail",
]

# The OAuth of each open HTTP client (by id: clients are not hashable), to tell a
# refused login from other failures.
_auth_of: dict[int, ServerAuth] = {}

DEFAULT_TIMEOUT = 60.0
"""Seconds a server may take to start, or to answer one call."""

_CLOSE_BOUND = 10.0
"""Seconds `aclose` waits for one session to end (its own stop is bounded well below)."""


def default_jobs() -> int:
    """How many servers to start at once: four per CPU this process may use.

    Starting a server is mostly CPU (an interpreter and its imports, about a
    second for a Python or Node server), with some waiting on disk and network;
    more at once than this only slows every start down until deadlines pass.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(2, 4 * cpus)


@asynccontextmanager
async def open_client(
    server: ServerConfig,
    *,
    errlog: TextIO | None = None,
    timeout: float | None = None,
    login: LoginPrompt | None = None,
    on_start: Callable[[ServerProcess], None] | None = None,
    max_message_bytes: int | None = None,
    message_handler: Any = None,
) -> AsyncIterator[Client]:
    """Start or connect to `server` and yield an initialized SDK `Client`.

    An HTTP server that answers 401 is logged in to with OAuth (`runtime.oauth`);
    only with `login` (from `mcp-codegen login`) may that involve a person.
    `message_handler` receives the server's notifications (the SDK's `message_handler`).

    A stdio server's process is stopped and killed, group and all, when the
    block is left, whichever way (see `stdio`). `on_start`, if given, receives
    its `ServerProcess` as soon as it is spawned. A stdio server's message over
    `max_message_bytes` (default `stdio.MAX_MESSAGE_BYTES`) is dropped as it
    streams in, and the call it answers fails.

    Raises:
        ConfigError: a `${VAR}` of the server's config is not set.
        TransportError: the `mcp` SDK (the package's `[direct]` extra) is not installed.
        AuthError: the server needs a login this process does not have, or refused one.
        OSError: the command cannot be started.
    """
    try:
        from mcp import Client
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
    log = errlog if errlog is not None else sys.stderr
    if sys.platform == "win32":  # pragma: no cover - the SDK's transport kills by job object
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(
            command=stdio.command, args=list(stdio.args), env=stdio.env or None, cwd=stdio.cwd
        )
        transport: Any = stdio_client(params, errlog=log)
    else:
        from .stdio import MAX_MESSAGE_BYTES, stdio_transport

        transport = stdio_transport(
            stdio,
            errlog=log,
            on_start=on_start,
            max_message_bytes=max_message_bytes or MAX_MESSAGE_BYTES,
        )
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


def _exit_text(returncode: int | None) -> str:
    if returncode is None:
        return "its connection closed"
    if returncode < 0:
        return f"it was killed by signal {-returncode}"
    return f"it exited with status {returncode}"


_Notify = Callable[[Any], Awaitable[None]]
"""Where a session's unasked messages go (an SDK `message_handler`)."""


@asynccontextmanager
async def _listening(client: Client, notify: _Notify | None) -> AsyncIterator[None]:
    """While the block lasts, pass the server's list changes on to `notify`.

    Handshake-era servers send them unasked (to the `message_handler`); a server on
    the 2026-07-28 protocol sends them only on a `subscriptions/listen` stream,
    opened here when someone listens and the server says its lists can change.
    """
    if notify is None:
        yield
        return
    from mcp_types.version import MODERN_PROTOCOL_VERSIONS

    capabilities = client.server_capabilities
    tools = bool(capabilities.tools and capabilities.tools.list_changed)
    prompts = bool(capabilities.prompts and capabilities.prompts.list_changed)
    resources = bool(capabilities.resources and capabilities.resources.list_changed)
    if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not (
        tools or prompts or resources
    ):
        yield
        return
    import anyio
    from mcp.shared.subscriptions import event_to_notification

    async def listen() -> None:
        try:
            async with client.listen(
                tools_list_changed=tools,
                prompts_list_changed=prompts,
                resources_list_changed=resources,
            ) as subscription:
                async for event in subscription:
                    await notify(event_to_notification(event, {}))
        except Exception:  # the server refused or dropped the stream: no more notices
            return

    async with anyio.create_task_group() as group:
        group.start_soon(listen)
        try:
            yield
        finally:
            group.cancel_scope.cancel()


class _HeldSession:
    """One server's session, owned by a task that enters and leaves it."""

    def __init__(
        self,
        server: ServerConfig,
        timeout: float,
        max_message_bytes: int | None,
        notify: _Notify | None = None,
        listen: bool = False,
    ):
        self.server = server
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.notify = notify
        """Receives what the server sends unasked (its SDK `message_handler`)."""
        self.listen = listen
        """Whether to open a `subscriptions/listen` stream, for servers that need one."""
        # Closed in aclose(): it outlives this method, so no `with` can hold it.
        self.errlog: TextIO = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.process: ServerProcess | None = None
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        # A start that failed with no call waiting (a preconnect at shutdown, a session closed
        # while starting) is seen here, so the future's finalizer does not log it (on Python
        # 3.11 a traceback printed from a finalizer during another parse can upset the ast
        # module's state).
        self._ready.add_done_callback(lambda ready: ready.cancelled() or ready.exception())
        self._task = asyncio.create_task(self._hold(), name=f"mcp-session-{server.name}")

    def _started(self, process: ServerProcess) -> None:
        self.process = process

    async def _hold(self) -> None:
        try:
            async with (
                open_client(
                    self.server,
                    errlog=self.errlog,
                    timeout=self.timeout,
                    on_start=self._started,
                    max_message_bytes=self.max_message_bytes,
                    message_handler=self.notify,
                ) as client,
                _listening(client, self.notify if self.listen else None),
            ):
                self._ready.set_result(client)
                await self._until_stopped_or_ended()
        except BaseException as exc:
            if not self._ready.done():
                if isinstance(exc, asyncio.CancelledError):
                    self._ready.cancel()
                else:
                    self._ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def _until_stopped_or_ended(self) -> None:
        waits = [asyncio.ensure_future(self._stop.wait())]
        if self.process is not None:
            waits.append(asyncio.ensure_future(self.process.ended.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    @property
    def alive(self) -> bool:
        """Whether the session can still carry calls (its server has not died)."""
        if self._task.done():
            return False
        process = self.process
        return process is None or (process.returncode is None and not process.ended.is_set())

    def ended_text(self) -> str:
        """How the server ended, for an error message."""
        process = self.process
        return _exit_text(process.returncode if process is not None else None)

    async def client(self) -> Client:
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), self.timeout)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._ready.cancelled() and not (current and current.cancelling()):
                raise self.failure("was stopped while it was starting") from None
            raise
        except TimeoutError:
            raise self.failure(f"did not finish starting within {self.timeout:g}s") from None
        except (ConfigError, TransportError):  # AuthError is a TransportError
            raise
        except Exception as exc:
            raise self.failure(f"could not start: {exc}") from None

    def failure(self, message: str) -> TransportError:
        """A `TransportError` naming the server, with the tail of its stderr."""
        tail = stderr_tail(self.errlog)
        return TransportError(
            f"server {self.server.name!r} {message}" + (f"\n{tail}" if tail else "")
        )

    async def aclose(self) -> None:
        self._stop.set()
        if not self._ready.done():
            self._task.cancel()
        # The stop inside is bounded; this bound is for a server the SDK is still talking to.
        done, _ = await asyncio.wait({self._task}, timeout=_CLOSE_BOUND)
        if not done:
            self._task.cancel()
            if self.process is not None:
                self.process.kill()
        self.errlog.close()


class DirectTransport:
    """Calls tools over real MCP sessions opened by this process.

    `config` is a parsed `Config`, or the path of an `mcp.json`; by default
    `$MCP_CODEGEN_CONFIG`, then `./mcp.json`. `max_message_bytes` bounds each
    message of a stdio server as it streams in (the host sets it to its result cap).
    """

    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_message_bytes: int | None = None,
    ):
        self._config_source = config
        self._config = config if isinstance(config, Config) else None
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self._sessions: dict[str, _HeldSession] = {}
        self._closing: set[asyncio.Task[None]] = set()
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

    def notifications(self, server: str) -> _Notify:
        """The SDK `message_handler` of `server`'s session: passes its notifications on."""

        async def handle(message: Any) -> None:
            if self.on_notification is not None and not isinstance(message, Exception):
                await self.on_notification(server, message)

        return handle

    def _held(self, name: str) -> _HeldSession:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Sessions of an earlier event loop died with it (asyncio.run ends them).
            self._sessions.clear()
            self._closing.clear()
            self._loop = loop
        held = self._sessions.get(name)
        if held is not None and not held.alive:
            # Its server died since the last call: start it again, and let the old one go.
            self._sessions.pop(name)
            closing = loop.create_task(held.aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            held = None
        if held is None:
            server = self.config.server(name)
            held = _HeldSession(
                server,
                server.timeout or self.timeout,
                self.max_message_bytes,
                notify=self.notifications(name),
                # The listen stream is opened with the session: only if someone listens then.
                listen=self.on_notification is not None,
            )
            self._sessions[name] = held
        return held

    async def _session(self, name: str) -> tuple[_HeldSession, Client]:
        held = self._held(name)
        try:
            return held, await held.client()
        except Exception:
            if self._sessions.get(name) is held:
                self._sessions.pop(name)
            await held.aclose()
            raise

    async def preconnect(
        self, names: Iterable[str] | None = None, *, jobs: int | None = None
    ) -> dict[str, str]:
        """Start the sessions of `names` (default: every server) ahead of their first call.

        At most `jobs` servers start at once (default: `default_jobs()`). Returns
        the servers that could not be started, with why; a later call to one of
        them tries again.

        Raises:
            ConfigError: the config cannot be read, or names a server it does not have.
        """
        wanted = list(names) if names is not None else [s.name for s in self.config.servers]
        for name in wanted:
            self.config.server(name)
        limit = asyncio.Semaphore(jobs or default_jobs())
        failures: dict[str, str] = {}

        async def start(name: str) -> None:
            async with limit:
                try:
                    await self._session(name)
                except (TransportError, ConfigError) as exc:
                    failures[name] = str(exc)

        await asyncio.gather(*(start(name) for name in wanted))
        return failures

    async def call_tool(
        self, server: str, tool: str, arguments: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Call `tool` on `server` over its session; return the wire-form result.

        A server that died since the last call is started again first.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started, did not answer, or
                died during the call (the next call starts it again).
        """
        return await self._request(
            server,
            lambda client: client.call_tool(tool, dict(arguments)),
            f"the call to {tool!r}",
            f"{server}.{tool}: call failed",
        )

    async def _request(
        self,
        server: str,
        send: Callable[[Client], Awaitable[BaseModel]],
        request: str,
        refused: str,
    ) -> dict[str, Any]:
        """`send` a request over `server`'s session; its result in wire form.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: see `_failed`.
        """
        held, client = await self._session(server)
        try:
            result = await send(client)
        except Exception as exc:
            raise await self._failed(held, client, exc, request, refused) from exc
        dumped: dict[str, Any] = result.model_dump(by_alias=True, exclude_none=True, mode="json")
        return dumped

    async def _failed(
        self, held: _HeldSession, client: Client, exc: Exception, request: str, refused: str
    ) -> Exception:
        """The error to raise for `request` (a tool call, resource read, prompt) that failed
        with `exc`: the server's refusal (`refused: ...`), a refused login, or a dead server.
        """
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        problem = auth_problem(client)
        if problem is not None:
            return problem
        name = held.server.name
        if isinstance(exc, MCPError) and exc.error.code != CONNECTION_CLOSED and held.alive:
            # The server answered with an error: its session is fine.
            return TransportError(f"{refused}: {exc}")
        # The connection is gone: give the next call a new session.
        if self._sessions.get(name) is held:
            self._sessions.pop(name)
        # Its stdout may close a moment before its exit status is there to read.
        if held.process is not None and await held.process.wait_exit(0.5):
            why = f"died during {request} ({held.ended_text()})"
        else:
            why = f"lost its connection during {request} ({exc or type(exc).__name__})"
        error = held.failure(f"{why}; the next call starts it again")
        with contextlib.suppress(Exception):
            await held.aclose()
        return error

    async def client(self, server: str) -> Client:
        """The initialized session of `server`, opened on first use.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started.
        """
        return (await self._session(server))[1]

    async def read_resource(self, server: str, uri: str) -> dict[str, Any]:
        """Read resource `uri` of `server`; the wire-form `ReadResourceResult`.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started, refused or failed the
                read, or died during it (the next request starts it again).
        """
        return await self._request(
            server,
            lambda client: client.read_resource(uri),
            f"reading {uri!r}",
            f"{server}: reading {uri!r} failed",
        )

    async def get_prompt(
        self, server: str, prompt: str, arguments: Mapping[str, str]
    ) -> dict[str, Any]:
        """Get prompt `prompt` of `server` with `arguments`; the wire-form `GetPromptResult`.

        Raises:
            ConfigError: `server` is not in the config, or its config is invalid.
            TransportError: the server could not be started, refused or failed the
                request, or died during it (the next request starts it again).
        """
        return await self._request(
            server,
            lambda client: client.get_prompt(prompt, dict(arguments)),
            f"the prompt {prompt!r}",
            f"{server}.{prompt}: prompt failed",
        )

    async def aclose(self) -> None:
        """Close every session this transport opened."""
        held, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(session.aclose() for session in held), *self._closing)
