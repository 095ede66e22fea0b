"""What one client may hold of `serve`: sessions, requests in flight, and idle time.

Over HTTP anyone who reaches the port can open sessions, so each bound below
has a default that is safe without configuration, kept in `ServeLimits` (in
`sandbox.quotas`, with the per-session `Quotas`):

- sessions in all (`max_sessions`, the SDK answers 503 past it) and per client
  address (`sessions_per_client`, answered here with 429 before a session is
  made), so one local client cannot take every slot;
- requests in flight per session (`requests_per_session`): an HTTP request
  counts until its answer has been written, so a client that sends requests and
  never reads the answers holds at most this many of them (answered with 429);
  the same bound holds for every transport in the tool handler;
- idle sessions end after `idle_timeout` with their sandbox and files.

`Admission` is the ASGI layer in front of the SDK's app that counts; it also
marks each request's scope with an event set when the client disconnects, so a
handler can stop work nobody will read (`disconnected`). `SessionTracking` is the
server middleware that tells it which sessions exist and when each ends.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from ..sandbox.quotas import ServeLimits

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

__all__ = [
    "DISCONNECTED",
    "Admission",
    "ServeLimits",
    "SessionTracking",
    "disconnected",
]

DISCONNECTED = "mcp-codegen.disconnected"
"""The scope key of the `asyncio.Event` set when the request's client disconnects."""
_OPENED = "mcp-codegen.opened"
"""The scope key of the function that stops counting a request as a session being opened."""
_SESSION_HEADER = b"mcp-session-id"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Registry:
    """Which client address opened each live session, and requests in flight."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.opening: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()

    def sessions_of(self, client: str) -> int:
        return sum(owner == client for owner in self.owners.values()) + self.opening[client]


class SessionTracking:
    """Server middleware: records each session's client at `initialize`, forgets it at its end."""

    def __init__(self, registry: _Registry):
        self.registry = registry

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method == "initialize":
            from mcp.server.connection import Connection

            # The SDK gives middleware no public handle on the connection; its
            # `exit_stack` is the documented place for per-connection cleanup.
            connection = getattr(ctx.session, "_connection", None)
            request = ctx.request
            client = getattr(getattr(request, "client", None), "host", None)
            if isinstance(connection, Connection) and connection.session_id and client:
                session_id = connection.session_id
                if session_id not in self.registry.owners:
                    self.registry.owners[session_id] = str(client)
                    connection.exit_stack.callback(self.registry.owners.pop, session_id, None)
                    # It counts as a session now, no longer as one being opened: counted
                    # twice until its answer was written, eight sessions opened at once
                    # from one address could refuse the last of them.
                    opened = getattr(request, "scope", {}).get(_OPENED)
                    if callable(opened):
                        opened()
        return await call_next(ctx)


class Admission:
    """ASGI middleware: sessions per client, requests in flight per session, disconnects."""

    def __init__(self, app: ASGIApp, limits: ServeLimits):
        self.app = app
        self.limits = limits
        self.registry = _Registry()
        self.tracking = SessionTracking(self.registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        session = headers.get(_SESSION_HEADER, b"").decode("latin-1")
        client = (scope.get("client") or ("?", 0))[0]
        method = scope.get("method", "")
        registry = self.registry
        if method == "POST" and not session:
            if registry.sessions_of(client) >= self.limits.sessions_per_client:
                await _refuse(
                    send,
                    f"too many sessions from {client} (at most "
                    f"{self.limits.sessions_per_client}); end one (DELETE) or wait for an idle "
                    f"one to expire ({self.limits.idle_timeout:g} s)",
                )
                return
            registry.opening[client] += 1
            counted = True

            def opened() -> None:
                nonlocal counted
                if counted:
                    counted = False
                    registry.opening[client] -= 1
                    if registry.opening[client] <= 0:
                        del registry.opening[client]

            async def sending(message: Message) -> None:
                await send(message)
                # Once the answer to initialize is out, the session (if any) is registered:
                # it counts there, not here (the app may take a while to return).
                if message.get("type") == "http.response.body" and not message.get("more_body"):
                    opened()

            scope[_OPENED] = opened
            try:
                await self.app(scope, receive, sending)
            finally:
                opened()
            return
        if not session:
            await self.app(scope, receive, send)
            return
        if registry.in_flight[session] >= self.limits.requests_per_session:
            await _refuse(
                send,
                f"this session has {self.limits.requests_per_session} requests whose answers "
                "are not yet read; read them before sending more",
            )
            return
        event = asyncio.Event()
        scope[DISCONNECTED] = event

        async def watched() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect":
                event.set()
            return message

        registry.in_flight[session] += 1
        try:
            await self.app(scope, watched, send)
        finally:
            registry.in_flight[session] -= 1
            if registry.in_flight[session] <= 0:
                del registry.in_flight[session]


def disconnected(request: Any) -> asyncio.Event | None:
    """The event set when the HTTP client of `request` (a handler's `ctx.request`) goes away."""
    scope = getattr(request, "scope", None)
    event = scope.get(DISCONNECTED) if isinstance(scope, dict) else None
    return event if isinstance(event, asyncio.Event) else None


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}}
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"5")],
        }
    )
    await send({"type": "http.response.body", "body": body})
