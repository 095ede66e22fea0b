"""OAuth 2.1 for streamable-HTTP servers that answer 401, with the SDK's own providers.

`server_auth()` gives the `httpx2.Auth` of one configured server:

- `oauth.token_env` set in the environment: that bearer token, nothing else (CI).
- `oauth.grant: "client_credentials"`: the SDK's `ClientCredentialsOAuthProvider`
  with the configured client; tokens are kept in memory only (CI, no person).
- otherwise the SDK's `OAuthClientProvider` (discovery, dynamic or pre-registered
  client, PKCE, refresh), with its tokens in the user's `TokenStore`. Only
  `mcp-codegen login` passes a `LoginPrompt`, the one way a person is involved.
  Everywhere else a server that needs a login the store cannot provide is never
  waited on: the 401 is handed back and `problem()` says to run `mcp-codegen login`.

What the SDK leaves to its caller is added here: the token's absolute expiry and
the authorization server's metadata are stored with it (a later process must
refresh without rediscovering, and before the token expires, not after), and a
401 on a token believed valid is answered by one refresh before anything else.

This module imports the `mcp` SDK: only the direct transport imports it, lazily.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
    ProtectedResourceMetadata,
)
from pydantic import BaseModel, ValidationError

from .config import ResolvedHttp, ResolvedOAuth
from .errors import AuthError
from .tokens import TokenStore

__all__ = ["LoginPrompt", "ServerAuth", "login_hint", "server_auth"]


class _ReportedOnce(logging.Filter):
    """Drops the SDK's traceback of a failed flow: `_Guard` reports it once, as an AuthError."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "OAuth flow error"


logging.getLogger("mcp.client.auth.oauth2").addFilter(_ReportedOnce())

_REFRESH_MARGIN = 60.0
"""Refresh this many seconds before expiry (a tenth of a shorter lifetime)."""


@dataclass(frozen=True)
class LoginPrompt:
    """How an interactive login reaches a person; made by `mcp-codegen login` only."""

    redirect_uri: str
    """The loopback callback, `http://127.0.0.1:PORT/callback`, already listening."""
    open_url: Callable[[str], Awaitable[None]]
    wait_for_code: Callable[[], Awaitable[AuthorizationCodeResult]]
    fresh: bool = True
    """Start from no tokens (a login replaces what was stored)."""


class ServerAuth(Protocol):
    """An `httpx2.Auth` that can say, after a failure, whether credentials were the cause."""

    def problem(self) -> AuthError | None:
        """The credential problem behind the last failure, if there was one."""
        ...


def login_hint(name: str, token_env: str | None) -> str:
    """What to do when server `name` needs a login."""
    also = f", or set ${token_env} to a token" if token_env else ""
    return f"run `mcp-codegen login {name}`{also}"


def server_auth(
    name: str,
    http: ResolvedHttp,
    *,
    prompt: LoginPrompt | None = None,
    store: TokenStore | None = None,
) -> _StaticBearer | _CodeFlow | _ClientCredentials | None:
    """The `httpx2.Auth` of server `name` (see the module's docstring); None when OAuth is off."""
    oauth = http.oauth
    if oauth is None:
        return None
    if oauth.token and prompt is None:
        return _StaticBearer(name, oauth)
    if oauth.grant == "client_credentials":
        return _client_credentials(name, http.url, oauth)
    return _CodeFlow(name, http.url, oauth, store or TokenStore(), prompt)


def _margin(expires_in: float) -> float:
    return min(_REFRESH_MARGIN, max(expires_in, 0.0) / 10)


class _StaticBearer(httpx2.Auth):
    """`Authorization: Bearer $token_env`; a 401 means that token is refused."""

    def __init__(self, name: str, oauth: ResolvedOAuth):
        self._name = name
        self._env = oauth.token_env
        self._header = f"Bearer {oauth.token}"
        self._refused = False

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = self._header
        response = yield request
        self._refused = response.status_code == 401

    def problem(self) -> AuthError | None:
        if not self._refused:
            return None
        return AuthError(
            self._name,
            f"server {self._name!r} refused the token in ${self._env} (401); "
            "set it to a valid token, or unset it and run "
            f"`mcp-codegen login {self._name}`",
        )


class _StoredLogin:
    """The SDK's `TokenStorage` over one server's record in the `TokenStore`."""

    def __init__(self, store: TokenStore, server_url: str, *, fresh: bool):
        self.store = store
        self.server_url = server_url
        self.fresh = fresh
        self.provider: OAuthClientProvider | None = None

    def record(self) -> dict[str, Any]:
        return self.store.load(self.server_url)

    async def get_tokens(self) -> OAuthToken | None:
        if self.fresh:
            return None
        return _model(OAuthToken, self.record().get("tokens"))

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.fresh = False
        fields: dict[str, Any] = {
            "tokens": tokens.model_dump(mode="json", exclude_none=True),
            "expires_at": time.time() + tokens.expires_in if tokens.expires_in else None,
        }
        # Refreshing in a later process needs the token endpoint: keep what discovery found.
        context = self.provider.context if self.provider is not None else None
        if context is not None and context.oauth_metadata is not None:
            fields["authorization_server"] = _dump(context.oauth_metadata)
        if context is not None and context.protected_resource_metadata is not None:
            fields["resource_metadata"] = _dump(context.protected_resource_metadata)
        self.store.update(self.server_url, **fields)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return _model(OAuthClientInformationFull, self.record().get("client"))

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.store.update(self.server_url, client=_dump(client_info))

    def forget_tokens(self) -> None:
        record = self.record()
        if record.get("tokens"):
            self.store.update(self.server_url, tokens=None, expires_at=None)


_M = TypeVar("_M", bound=BaseModel)


def _model(kind: type[_M], data: Any) -> _M | None:
    """`data` as a `kind`, or None when it is missing or no longer valid."""
    if not isinstance(data, dict):
        return None
    try:
        return kind.model_validate(data)
    except ValidationError:
        return None


def _dump(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


if TYPE_CHECKING:
    from mcp.client.auth import OAuthClientProvider as _ProviderBase
else:
    _ProviderBase = object  # a mixin: the provider it is mixed into comes after it


class _Guard(_ProviderBase):
    """Around an SDK provider's flow: one refresh on a refused token, no person unless asked.

    `needs_person`: the provider's full flow would wait for a browser, so without a
    prompt the 401 is handed back (and `problem()` says to log in) instead.
    """

    server_name: str
    needs_person: bool
    token_env: str | None
    login_required: bool
    failure: Exception | None

    def _init_guard(self, name: str, *, needs_person: bool, token_env: str | None) -> None:
        self.server_name = name
        self.needs_person = needs_person
        self.token_env = token_env
        self.login_required = False
        self.failure = None

    def problem(self) -> AuthError | None:
        name = self.server_name
        if self.login_required:
            return AuthError(
                name,
                f"server {name!r} needs a login: {login_hint(name, self.token_env)}",
                login=True,
            )
        if self.failure is not None:
            detail = str(self.failure).strip() or type(self.failure).__name__
            return AuthError(
                name, f"server {name!r}: OAuth failed: {detail}", login=self.needs_person
            )
        return None

    async def _auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if self.failure is not None and self._has_prompt():
            # A person's login failed (timed out, denied): one attempt per login, not one
            # more wait for each request the transport still sends.
            yield request
            return
        flow = super()._auth_flow(request)
        refreshed = False
        try:
            try:
                outgoing = await flow.__anext__()
                while True:
                    refreshed = refreshed or outgoing is not request
                    response = yield outgoing
                    if outgoing is request and _refused(response):
                        if not refreshed and self.context.can_refresh_token():
                            # A token believed valid was refused (revoked early, clocks
                            # apart): refresh it once before anything else.
                            refreshed = True
                            await flow.aclose()
                            self.context.token_expiry_time = 1.0  # in the past: refresh first
                            flow = super()._auth_flow(request)
                            outgoing = await flow.__anext__()
                            continue
                        if self.needs_person and not self._has_prompt():
                            self.login_required = True
                            return
                    elif outgoing is request:
                        # Accepted: what an earlier request found wrong is mended (a login
                        # made meanwhile); until then it stays said, whatever else is sent.
                        self.login_required, self.failure = False, None
                    outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return
            except Exception as exc:  # the SDK's flow failed: say so once, as an AuthError
                self.failure = exc
                # Hand the transport a plain refusal to report, rather than an exception
                # it would log with a traceback and turn into a dropped connection.
                request.headers.pop("Authorization", None)
                yield request
        finally:
            await flow.aclose()

    def _has_prompt(self) -> bool:
        return self.context.redirect_handler is not None


def _refused(response: httpx2.Response) -> bool:
    if response.status_code == 401:
        return True
    challenge = response.headers.get("www-authenticate", "")
    return response.status_code == 403 and "insufficient_scope" in challenge


class _CodeFlow(_Guard, OAuthClientProvider):
    """Authorization code with PKCE; tokens and client kept in the `TokenStore`."""

    def __init__(
        self,
        name: str,
        server_url: str,
        oauth: ResolvedOAuth,
        store: TokenStore,
        prompt: LoginPrompt | None,
    ):
        # Without a prompt no redirect ever happens; the URI only completes the metadata.
        redirect_uri = prompt.redirect_uri if prompt else "http://127.0.0.1/callback"
        self._scope = " ".join(oauth.scopes) or None
        metadata = OAuthClientMetadata(
            redirect_uris=[redirect_uri],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            client_name="mcp-codegen",
            scope=self._scope,
        )
        self._storage = _StoredLogin(store, server_url, fresh=prompt.fresh if prompt else False)
        super().__init__(
            server_url,
            metadata,
            self._storage,
            prompt.open_url if prompt else None,
            prompt.wait_for_code if prompt else None,
        )
        self._storage.provider = self
        self._redirect_uri = redirect_uri
        self._fixed_client = (
            OAuthClientInformationFull(
                client_id=oauth.client_id,
                client_secret=oauth.client_secret,
                redirect_uris=[redirect_uri],  # type: ignore[list-item]
                grant_types=["authorization_code", "refresh_token"],
                token_endpoint_auth_method="client_secret_basic" if oauth.client_secret else "none",
                scope=self._scope,
            )
            if oauth.client_id
            else None
        )
        self._init_guard(name, needs_person=True, token_env=oauth.token_env)

    async def _initialize(self) -> None:
        await super()._initialize()
        context = self.context
        if self._fixed_client is not None:
            context.client_info = self._fixed_client
        elif (
            self._has_prompt()
            and context.client_info is not None
            and self._redirect_uri
            not in {str(uri) for uri in context.client_info.redirect_uris or ()}
        ):
            context.client_info = None  # registered for another callback: register again
        record = self._storage.record()
        resource = _model(ProtectedResourceMetadata, record.get("resource_metadata"))
        if resource is not None and context.protected_resource_metadata is None:
            context.protected_resource_metadata = resource
            context.auth_server_url = str(resource.authorization_servers[0])
        server = _model(OAuthMetadata, record.get("authorization_server"))
        if server is not None and context.oauth_metadata is None:
            context.oauth_metadata = server
        tokens, expires_at = context.current_tokens, record.get("expires_at")
        if tokens is not None and isinstance(expires_at, int | float):
            context.token_expiry_time = expires_at - _margin(float(tokens.expires_in or 0))

    async def _perform_authorization(self) -> httpx2.Request:
        # Discovery replaced the scope by what the server challenged with; configured
        # scopes are what the user asked for.
        if self._scope:
            self.context.client_metadata.scope = self._scope
        return await super()._perform_authorization()

    async def _handle_token_response(self, response: httpx2.Response) -> None:
        await super()._handle_token_response(response)
        self._early()

    async def _handle_refresh_response(self, response: httpx2.Response) -> bool:
        held = self.context.current_tokens
        sent = held.refresh_token if held is not None else None
        if await super()._handle_refresh_response(response):
            self._early()
            return True
        if response.status_code not in (400, 401):
            return False  # the server failed, not the token: keep it for the next try
        record = self._storage.record()
        stored = _model(OAuthToken, record.get("tokens"))
        if stored is not None and stored.refresh_token != sent:
            # Another process refreshed first and the old refresh token died with that
            # rotation: use what it stored instead of asking for a new login.
            self.context.current_tokens = stored
            expires_at = record.get("expires_at")
            self.context.token_expiry_time = (
                expires_at - _margin(float(stored.expires_in or 0))
                if isinstance(expires_at, int | float)
                else None
            )
            return True
        # The refresh token is dead (revoked, expired): keep no token that cannot work.
        self._storage.forget_tokens()
        return False

    def _early(self) -> None:
        context = self.context
        if context.token_expiry_time is not None and context.current_tokens is not None:
            context.token_expiry_time -= _margin(float(context.current_tokens.expires_in or 0))


class _MemoryStorage:
    """Client-credentials tokens live as long as the process: nothing is written."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class _ClientCredentials(_Guard, ClientCredentialsOAuthProvider):
    """The client-credentials grant with the configured client (no person, no store)."""


def _client_credentials(name: str, server_url: str, oauth: ResolvedOAuth) -> _ClientCredentials:
    with warnings.catch_warnings():
        # Without `issuer` the SDK warns that discovery picks the server; that is the
        # documented choice for a config that names none.
        warnings.simplefilter("ignore")
        provider = _ClientCredentials(
            server_url,
            _MemoryStorage(),
            oauth.client_id or "",
            oauth.client_secret or "",
            scope=" ".join(oauth.scopes) or None,
            issuer=oauth.issuer,
        )
    provider._init_guard(name, needs_person=False, token_env=oauth.token_env)
    return provider
