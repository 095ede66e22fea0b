"""`mcp-codegen login` / `logout`: the OAuth authorization-code flow, once, with a person.

`login` listens on `127.0.0.1` (a free port, or the one the stored client was
registered with, or `oauth.callback_port`) for the authorization server's
redirect, prints the authorization URL (and opens a browser where there is
one), waits for the callback with a time limit, and lets the SDK's provider
finish: code exchange with PKCE, tokens into the user's `TokenStore`. It then
lists the server's tools, which proves the login works. Nothing else in
mcp-codegen ever waits for a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from ..runtime.config import Config, HttpServer
from ..runtime.errors import AuthError, ConfigError, TransportError
from ..runtime.tokens import LoginInfo, TokenStore, describe

if TYPE_CHECKING:
    from mcp.shared.auth import AuthorizationCodeResult

__all__ = ["DEFAULT_LOGIN_TIMEOUT", "CallbackListener", "LoginResult", "login", "logout"]

DEFAULT_LOGIN_TIMEOUT = 300.0
"""Seconds `login` waits for the browser to come back."""

CALLBACK_PATH = "/callback"
_MAX_REQUEST = 16 * 1024
_PAGE = (
    "<!doctype html><meta charset='utf-8'><title>mcp-codegen</title>"
    "<p>{message}</p><p>You can close this window.</p>"
)


@dataclass(frozen=True)
class LoginResult:
    """A completed login: the server, how many tools it lists, and the stored token's state."""

    server: str
    url: str
    tools: int
    info: LoginInfo | None


class CallbackListener:
    """A one-shot HTTP listener on 127.0.0.1 for the authorization redirect."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[AuthorizationCodeResult] | None = None
        self.port = 0

    async def start(self, port: int = 0, *, fallback: bool = True) -> str:
        """Listen on `port` (0: any free one); return the redirect URI.

        Raises:
            OSError: `port` is taken and `fallback` is False.
        """
        self._result = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        except OSError:
            if not fallback or port == 0:
                raise
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    async def wait(self, timeout: float) -> AuthorizationCodeResult:
        """The code the browser brought back.

        Raises:
            TimeoutError: nothing came back within `timeout` seconds.
            AuthError: the authorization server sent an error instead of a code.
        """
        assert self._result is not None, "start() first"
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"no answer from the browser within {timeout:g}s (--timeout)"
            ) from None

    async def aclose(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from mcp.shared.auth import AuthorizationCodeResult

        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            writer.close()
            return
        status, message = 404, "Not found."
        request_line = head[:_MAX_REQUEST].split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        target = urlsplit(parts[1]) if len(parts) == 3 and parts[0] == "GET" else None
        future = self._result
        if target is not None and target.path == CALLBACK_PATH and future and not future.done():
            query = {key: values[0] for key, values in parse_qs(target.query).items()}
            if "code" in query:
                future.set_result(
                    AuthorizationCodeResult(
                        code=query["code"], state=query.get("state"), iss=query.get("iss")
                    )
                )
                status, message = 200, "Logged in: mcp-codegen has the authorization."
            else:
                reason = query.get("error_description") or query.get("error") or "no code"
                future.set_exception(
                    AuthError("", f"the authorization server refused: {reason[:200]}")
                )
                status, message = 400, "The authorization was refused."
        body = _PAGE.format(message=message).encode("utf-8")
        writer.write(
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
            + body
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()


def _http_server(config: Config, name: str) -> HttpServer:
    server = config.server(name)
    if not isinstance(server, HttpServer):
        raise ConfigError(
            f"{config.path}: server {name!r} is a stdio server; login is for HTTP servers (url)"
        )
    return server


def _stored_port(store: TokenStore, url: str) -> int:
    """The port the stored client was registered with: reusing it avoids a new registration."""
    client = store.load(url).get("client")
    for uri in (client or {}).get("redirect_uris") or ():
        parts = urlsplit(str(uri))
        if parts.hostname == "127.0.0.1" and parts.path == CALLBACK_PATH and parts.port:
            return parts.port
    return 0


async def login(
    config: Config,
    name: str,
    *,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    open_browser: bool = True,
    say: Callable[[str], None] = print,
    store: TokenStore | None = None,
) -> LoginResult:
    """Log in to server `name` of `config` with a person, and store its tokens.

    Raises:
        ConfigError: no such server, not an HTTP server, or OAuth is off for it.
        AuthError: the flow failed or timed out (the message says which).
        TransportError: the server could not be reached.
    """
    from ..runtime.direct import open_client
    from ..runtime.oauth import LoginPrompt

    store = store or TokenStore()
    server = _http_server(config, name)
    http = server.resolve()
    oauth = http.oauth
    where = f"{config.path}: server {name!r}"
    if oauth is None:
        raise ConfigError(
            f'{where} sends its own Authorization header or has "oauth": false; '
            "there is nothing to log in to"
        )
    if oauth.grant == "client_credentials":
        raise ConfigError(
            f"{where} uses the client-credentials grant (oauth.grant); it needs no login"
        )
    if oauth.token:
        say(f"note: ${oauth.token_env} is set; it is used instead of this login while it is")
    listener = CallbackListener()
    configured = oauth.callback_port
    try:
        redirect_uri = await listener.start(
            configured or _stored_port(store, http.url), fallback=configured is None
        )
    except OSError as exc:
        raise ConfigError(
            f"{where}: field 'oauth.callback_port': cannot listen on 127.0.0.1:{configured} "
            f"({exc.strerror}); free it or change the port"
        ) from None

    async def open_url(url: str) -> None:
        say(f"Log in to {name!r} in your browser; if none opens, open this URL:\n  {url}")
        if open_browser:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(webbrowser.open, url)
        say(f"waiting for the browser (up to {timeout:g}s) on {redirect_uri}")

    async def wait_for_code() -> AuthorizationCodeResult:
        return await listener.wait(timeout)

    prompt = LoginPrompt(redirect_uri=redirect_uri, open_url=open_url, wait_for_code=wait_for_code)
    try:
        async with open_client(server, timeout=server.timeout or 60, login=prompt) as client:
            listed = await client.list_tools()
    except (ConfigError, TransportError):  # AuthError too: they name the server already
        raise
    except Exception as exc:  # whatever the SDK raised on an unreachable or broken server
        cause = _first_cause(exc)
        if isinstance(cause, ConfigError | TransportError):
            raise cause from None
        raise TransportError(f"{http.url}: {str(cause).strip() or type(cause).__name__}") from None
    finally:
        await listener.aclose()
    return LoginResult(name, http.url, len(listed.tools), describe(store.load(http.url)))


def _first_cause(exc: BaseException) -> BaseException:
    # anyio wraps failures inside task groups; the first leaf says what happened.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def logout(config: Config, name: str, *, store: TokenStore | None = None) -> bool:
    """Forget the tokens and client stored for server `name`; whether there were any.

    Raises:
        ConfigError: no such server, or not an HTTP server.
        OSError: the stored file cannot be removed.
    """
    store = store or TokenStore()
    return store.delete(_http_server(config, name).resolve().url)
