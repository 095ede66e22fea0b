"""`serve --auth`: who may use `serve` over HTTP, with the SDK's resource-server support.

- `token`: bearer tokens from `$MCP_CODEGEN_SERVE_TOKEN` or a file of `NAME TOKEN`
  lines (one principal each). A token is compared with every known one in constant
  time (SHA-256 digests through `hmac.compare_digest`, all of them, every time).
- `oauth`: tokens issued by an authorization server, checked at its RFC 7662
  introspection endpoint (answers cached briefly, by digest), with required scopes;
  the SDK serves the protected-resource metadata (RFC 9728) that points clients at
  the authorization server, and answers 401/403 with `WWW-Authenticate`.

Either way the SDK's bearer middleware authenticates each request and its session
manager binds a session to the principal that opened it. `SessionOwners` adds the
answer a caller can act on: using another principal's session is a 403, not the
SDK's "no such session" 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SERVE_TOKEN_ENV",
    "IntrospectionVerifier",
    "ServeAuth",
    "ServeAuthError",
    "SessionOwners",
    "StaticTokens",
    "oauth_auth",
    "read_tokens",
    "token_auth",
]

SERVE_TOKEN_ENV = "MCP_CODEGEN_SERVE_TOKEN"
CLIENT_SECRET_ENV = "MCP_CODEGEN_SERVE_CLIENT_SECRET"
"""The secret `serve` authenticates with at the introspection endpoint (with --oauth-client-id)."""

MIN_TOKEN_LENGTH = 16
_CACHE_SECONDS = 30.0
_CACHE_SIZE = 1024
_SESSION_HEADER = "mcp-session-id"


class ServeAuthError(Exception):
    """`serve`'s --auth settings cannot be used (the message says which and how to fix it)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class StaticTokens(TokenVerifier):
    """Known bearer tokens, each a principal; compared in constant time."""

    def __init__(self, principals: dict[str, str]):
        self._digests = [(name, _digest(token)) for name, token in sorted(principals.items())]

    @property
    def principals(self) -> list[str]:
        """The principals' names."""
        return [name for name, _ in self._digests]

    async def verify_token(self, token: str) -> AccessToken | None:
        """The principal of `token`, or None. Every known token is compared, whatever matches."""
        offered = _digest(token)
        found: str | None = None
        for name, digest in self._digests:
            if hmac.compare_digest(offered, digest):
                found = name
        if found is None:
            return None
        return AccessToken(token=token, client_id=found, scopes=[], subject=found)


def read_tokens(path: Path | None, environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """Principal -> token, from the file `path` (`NAME TOKEN` lines) or `$MCP_CODEGEN_SERVE_TOKEN`.

    A line with one field is a token for a principal named after its line number;
    blank lines and `#` comments are skipped.

    Raises:
        ServeAuthError: no token anywhere, the file cannot be read, a token is
            shorter than 16 characters, or a name or token repeats.
    """
    tokens: dict[str, str] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ServeAuthError(f"--token-file {path}: cannot read ({exc.strerror})") from None
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            if len(fields) > 2:
                raise ServeAuthError(f"--token-file {path}:{number}: expected `NAME TOKEN`")
            name, token = (
                (fields[0], fields[1]) if len(fields) == 2 else (f"line-{number}", fields[0])
            )
            _add(tokens, name, token, f"--token-file {path}:{number}")
    else:
        token = environ.get(SERVE_TOKEN_ENV, "").strip()
        if token:
            _add(tokens, "token", token, f"${SERVE_TOKEN_ENV}")
    if not tokens:
        raise ServeAuthError(
            f"--auth token needs a token: set ${SERVE_TOKEN_ENV} or pass --token-file "
            "(lines of `NAME TOKEN`)"
        )
    return tokens


def _add(tokens: dict[str, str], name: str, token: str, where: str) -> None:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ServeAuthError(
            f"{where}: a token must have at least {MIN_TOKEN_LENGTH} characters "
            "(make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    if name in tokens:
        raise ServeAuthError(f"{where}: the name {name!r} is given twice")
    if token in tokens.values():
        raise ServeAuthError(f"{where}: this token is already given to another name")
    tokens[name] = token


class IntrospectionVerifier(TokenVerifier):
    """Tokens checked at an authorization server's RFC 7662 introspection endpoint."""

    def __init__(
        self,
        endpoint: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        resource: str | None = None,
        timeout: float = 10.0,
    ):
        self.endpoint = endpoint
        self._client = (client_id, client_secret or "") if client_id else None
        self._resource = resource
        self._timeout = timeout
        self._cache: OrderedDict[bytes, tuple[float, AccessToken | None]] = OrderedDict()

    async def verify_token(self, token: str) -> AccessToken | None:
        """The introspected token, or None when it is inactive or the endpoint fails."""
        key = _digest(token)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await self._introspect(token)
        self._cache[key] = (now + _CACHE_SECONDS, found)
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return found

    async def _introspect(self, token: str) -> AccessToken | None:
        import httpx2

        extra: dict[str, Any] = {"auth": httpx2.BasicAuth(*self._client)} if self._client else {}
        try:
            async with httpx2.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self.endpoint, data={"token": token}, **extra)
            body = response.json() if response.status_code == 200 else None
        except (httpx2.HTTPError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("active") is not True:
            return None
        exp = body.get("exp")
        scope = body.get("scope")
        return AccessToken(
            token=token,
            client_id=str(body.get("client_id") or "unknown"),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(exp) if isinstance(exp, int | float) else None,
            resource=self._audience(body.get("aud")),
            subject=str(body["sub"]) if body.get("sub") is not None else None,
            claims={"iss": body["iss"]} if isinstance(body.get("iss"), str) else None,
        )

    def _audience(self, aud: Any) -> str | None:
        if isinstance(aud, str):
            return aud
        if isinstance(aud, list):
            mine = [item for item in aud if isinstance(item, str)]
            wanted = (self._resource or "").rstrip("/")
            return next((item for item in mine if item.rstrip("/") == wanted), None) or (
                mine[0] if mine else None
            )
        return None


@dataclass(frozen=True)
class ServeAuth:
    """How `serve` over HTTP authenticates its callers."""

    kind: Literal["token", "oauth"]
    verifier: TokenVerifier
    issuer: str | None = None
    scopes: tuple[str, ...] = ()
    resource: str | None = None
    """The public URL of this server (OAuth's resource indicator); default: where it listens."""
    check_audience: bool = True
    principals: tuple[str, ...] = field(default=())

    def app_options(self, url: str) -> dict[str, Any]:
        """Keyword arguments of the SDK's `streamable_http_app` for a server listening at `url`."""
        if self.kind == "token":
            # No authorization server: the settings only switch the bearer middleware on.
            settings = AuthSettings(issuer_url=AnyHttpUrl(url), resource_server_url=None)
        else:
            settings = AuthSettings(
                issuer_url=AnyHttpUrl(self.issuer or ""),
                resource_server_url=AnyHttpUrl(self.resource or url),
                required_scopes=list(self.scopes) or None,
                validate_token_resource=self.check_audience,
            )
        return {"auth": settings, "token_verifier": self.verifier}

    def protect(self, app: Starlette) -> None:
        """Add `SessionOwners` inside the SDK's authentication (before the app first runs)."""
        # Appended, it runs after the SDK's authentication middleware has set the user.
        app.user_middleware.append(Middleware(SessionOwners))


def token_auth(token_file: Path | None, environ: dict[str, str] | os._Environ[str]) -> ServeAuth:
    """`--auth token` from a token file or the environment.

    Raises:
        ServeAuthError: see `read_tokens`.
    """
    tokens = read_tokens(token_file, environ)
    if token_file is not None and stat.S_IMODE(token_file.stat().st_mode) & 0o077:
        # Not fatal (the owner decides), but said: anyone who reads it can run code here.
        import sys

        print(
            f"mcp-codegen serve: warning: {token_file} is readable by other users; chmod 600 it",
            file=sys.stderr,
        )
    verifier = StaticTokens(tokens)
    return ServeAuth("token", verifier, principals=tuple(verifier.principals))


def oauth_auth(
    issuer: str,
    *,
    introspection_url: str | None,
    scopes: tuple[str, ...],
    resource: str | None,
    client_id: str | None,
    client_secret: str | None,
    check_audience: bool = True,
) -> ServeAuth:
    """`--auth oauth`: tokens of `issuer`, checked at its introspection endpoint.

    Without `introspection_url` the endpoint is read from the issuer's metadata
    (`/.well-known/oauth-authorization-server`).

    Raises:
        ServeAuthError: the issuer is not an http(s) URL, or has no introspection endpoint.
    """
    if not issuer.startswith(("https://", "http://")):
        raise ServeAuthError(f"--oauth-issuer {issuer!r} is not an http(s) URL")
    endpoint = introspection_url or _discover_introspection(issuer)
    verifier = IntrospectionVerifier(
        endpoint, client_id=client_id, client_secret=client_secret, resource=resource
    )
    return ServeAuth(
        "oauth",
        verifier,
        issuer=issuer,
        scopes=scopes,
        resource=resource,
        check_audience=check_audience,
    )


def _discover_introspection(issuer: str) -> str:
    import httpx2

    url = issuer.rstrip("/") + "/.well-known/oauth-authorization-server"
    try:
        response = httpx2.get(url, timeout=10)
        endpoint = response.json().get("introspection_endpoint") if response.is_success else None
    except (httpx2.HTTPError, ValueError, AttributeError):
        endpoint = None
    if not isinstance(endpoint, str) or not endpoint:
        raise ServeAuthError(
            f"the authorization server {issuer} advertises no introspection endpoint at {url}; "
            "pass --oauth-introspection-url"
        )
    return endpoint


class SessionOwners:
    """ASGI middleware: a session is used only by the principal that opened it, else 403."""

    def __init__(self, app: ASGIApp, max_sessions: int = 10_000):
        self.app = app
        self.max_sessions = max_sessions
        self._owners: OrderedDict[str, object] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user") if scope["type"] == "http" else None
        if not isinstance(user, AuthenticatedUser):
            await self.app(scope, receive, send)
            return
        principal = authorization_context(user)
        session = _header(scope, _SESSION_HEADER)
        if session is not None and session in self._owners and self._owners[session] != principal:
            await _forbidden(send)
            return

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                opened = _header(message, _SESSION_HEADER)
                if opened is not None and opened not in self._owners:
                    self._owners[opened] = principal
                    while len(self._owners) > self.max_sessions:
                        self._owners.popitem(last=False)
            await send(message)

        await self.app(scope, receive, remember)
        if scope.get("method") == "DELETE" and session is not None:
            self._owners.pop(session, None)


def _header(holder: Scope | Message, name: str) -> str | None:
    wanted = name.encode("latin-1")
    for key, value in holder.get("headers") or ():
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


async def _forbidden(send: Send) -> None:
    body = json.dumps(
        {"error": "forbidden", "error_description": "this session belongs to another principal"}
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
