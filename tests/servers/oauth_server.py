"""A local OAuth-protected MCP server, written with the SDK's authorization-server and
resource-server components, for the OAuth tests.

Two HTTP servers on 127.0.0.1, each on a free port, in threads of the test process:

- the authorization server: the SDK's `create_auth_routes` (metadata, dynamic
  registration, authorize, token, revoke) over an in-memory provider that approves
  every authorization at once (no login page: a client that follows the redirect gets
  a code); plus RFC 7662 introspection, and the client-credentials grant for
  pre-registered confidential clients (the SDK's token handler has no such grant);
- the resource server: an `MCPServer` with two tools behind the SDK's bearer-auth
  middleware and protected-resource metadata, verifying tokens with the provider.

The test holds the provider, so it can shorten token lifetimes, revoke refresh
tokens and count what was issued.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    ProviderTokenVerifier,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SCOPE = "tools"


@dataclass
class MemoryAuthorizationServer:
    """An in-memory `OAuthAuthorizationServerProvider` that approves every request."""

    issuer: str = ""
    access_lifetime: int = 3600
    subject: str = "alice"
    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    confidential: dict[str, str] = field(default_factory=dict)
    """client_id -> secret of clients allowed the client-credentials grant."""
    counts: dict[str, int] = field(
        default_factory=lambda: {"authorize": 0, "code": 0, "refresh": 0, "client_credentials": 0}
    )

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        self.counts["authorize"] += 1
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [SCOPE],
            expires_at=time.time() + 300,
            client_id=client.client_id or "",
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject=self.subject,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        self.counts["code"] += 1
        return self._issue(
            client.client_id or "",
            authorization_code.scopes,
            authorization_code.resource,
            authorization_code.subject,
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        found = self.refresh.get(refresh_token)
        return found if found is not None and found.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        self.refresh.pop(refresh_token.token, None)  # rotated: each refresh token works once
        self.counts["refresh"] += 1
        return self._issue(
            client.client_id or "",
            scopes or refresh_token.scopes,
            refresh_token.resource,
            refresh_token.subject,
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    def revoke_refresh_tokens(self) -> None:
        """Revoke every refresh token (as a user removing the app's access would)."""
        self.refresh.clear()

    def expire_access_tokens(self) -> None:
        """Make every access token already expired."""
        for token in self.access.values():
            token.expires_at = int(time.time()) - 1

    def issue(
        self, client_id: str, scopes: list[str], *, subject: str, resource: str | None = None
    ) -> str:
        """An access token issued directly (no flow), for a principal of the tests."""
        return self._issue(client_id, scopes, resource, subject).access_token

    def _issue(
        self, client_id: str, scopes: list[str], resource: str | None, subject: str | None
    ) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = int(time.time()) + self.access_lifetime
        self.access[access] = AccessToken(
            token=access,
            client_id=client_id,
            scopes=scopes,
            expires_at=expires,
            resource=resource,
            subject=subject,
            claims={"iss": self.issuer},
        )
        self.refresh[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource, subject=subject
        )
        return OAuthToken(
            access_token=access,
            expires_in=self.access_lifetime,
            refresh_token=refresh,
            scope=" ".join(scopes),
        )

    async def introspect(self, request: Request) -> Response:
        """RFC 7662: what the resource servers (and `serve --auth oauth`) ask."""
        form = await request.form()
        token = self.access.get(str(form.get("token", "")))
        if token is None or (token.expires_at is not None and token.expires_at < time.time()):
            return JSONResponse({"active": False})
        body = {
            "active": True,
            "client_id": token.client_id,
            "scope": " ".join(token.scopes),
            "exp": token.expires_at,
            "sub": token.subject,
            "iss": self.issuer,
            "token_type": "Bearer",
        }
        if token.resource:
            body["aud"] = token.resource
        return JSONResponse(body)

    async def client_credentials(self, request: Request) -> Response | None:
        """The client-credentials grant for pre-registered confidential clients, else None."""
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return None
        import base64

        header = request.headers.get("authorization", "")
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        expected = self.confidential.get(client_id)
        if expected is None or not secrets.compare_digest(expected, secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        self.counts["client_credentials"] += 1
        scopes = str(form.get("scope") or SCOPE).split()
        token = self._issue(client_id, scopes, str(form.get("resource") or "") or None, None)
        return JSONResponse(
            {
                "access_token": token.access_token,
                "token_type": "Bearer",
                "expires_in": token.expires_in,
                "scope": token.scope,
            }
        )


def _add_tools(server: MCPServer) -> None:
    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Say who the server thinks is calling.")
    def whoami() -> str:
        from mcp.server.auth.middleware.auth_context import get_access_token

        token = get_access_token()
        return f"{token.subject}/{token.client_id}" if token else "anonymous"


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class _Thread:
    """One uvicorn server on a bound socket, in a thread with its own event loop."""

    def __init__(self, app: Starlette, sock: socket.socket):
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.sock = sock
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "the test OAuth server did not start"

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class OAuthServers:
    """The running pair: its URLs and the provider the tests steer."""

    provider: MemoryAuthorizationServer
    issuer: str
    mcp_url: str
    threads: list[_Thread]

    @property
    def introspection_url(self) -> str:
        return f"{self.issuer}/introspect"

    def stop(self) -> None:
        for thread in self.threads:
            thread.stop()


def start() -> OAuthServers:
    """Start the authorization server and the protected MCP server on free loopback ports."""
    as_sock, rs_sock = _listen(), _listen()
    issuer = f"http://127.0.0.1:{as_sock.getsockname()[1]}"
    mcp_url = f"http://127.0.0.1:{rs_sock.getsockname()[1]}/mcp"
    provider = MemoryAuthorizationServer(issuer=issuer)

    sdk_routes = create_auth_routes(
        provider,
        issuer_url=AnyHttpUrl(issuer),
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=[SCOPE, "admin"], default_scopes=[SCOPE]
        ),
        revocation_options=RevocationOptions(enabled=True),
    )
    token_handler = TokenHandler(provider, ClientAuthenticator(provider))

    async def token(request: Request) -> Response:
        handled = await provider.client_credentials(request)
        return handled if handled is not None else await token_handler.handle(request)

    as_app = Starlette(
        routes=[
            Route("/token", token, methods=["POST"]),
            Route("/introspect", provider.introspect, methods=["POST"]),
            *sdk_routes,
        ]
    )

    rs = MCPServer(
        "oauth-notes",
        instructions="Tools behind OAuth.",
        token_verifier=ProviderTokenVerifier(provider),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(mcp_url),
            required_scopes=[SCOPE],
            validate_token_resource=False,
        ),
    )
    _add_tools(rs)
    threads = [_Thread(as_app, as_sock), _Thread(rs.streamable_http_app(), rs_sock)]
    return OAuthServers(provider=provider, issuer=issuer, mcp_url=mcp_url, threads=threads)
