"""How a generated function's call reaches a server: the pluggable transport.

A transport takes one call (server key, MCP tool name, JSON arguments) and returns
the MCP `CallToolResult` in its wire spelling, as a plain dict:
`{"content": [...], "structuredContent": {...} | absent, "isError": bool}`.
Everything above it (argument models, result parsing, errors) is the same
whichever transport carries the call.

Two transports exist: `direct` (this process opens real MCP sessions from an
`mcp.json`; needs the `mcp` SDK) and `bridge` (inside the sandbox: each call goes
to the host over a pipe; needs nothing but the standard library). The choice is
`set_transport()`, else the environment variable `MCP_CODEGEN_TRANSPORT`
(`direct` or `bridge`), else `direct`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Transport", "get_transport", "set_transport"]

TRANSPORT_ENV = "MCP_CODEGEN_TRANSPORT"


class Transport(Protocol):
    """Carries one tool call to a server and brings back its wire-form result."""

    async def call_tool(
        self, server: str, tool: str, arguments: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Call `tool` on `server`; return the `CallToolResult` as a wire-form dict.

        Raises:
            TransportError: the call could not be delivered or answered.
        """
        ...

    async def aclose(self) -> None:
        """Release what the transport holds (sessions, pipes)."""
        ...


_current: Transport | None = None


def set_transport(transport: Transport | None) -> None:
    """Route every generated call through `transport` (None: choose again lazily)."""
    global _current
    _current = transport


def get_transport() -> Transport:
    """The transport in use, created on first use from `MCP_CODEGEN_TRANSPORT`.

    Raises:
        TransportError: the environment names an unknown transport.
    """
    global _current
    if _current is None:
        _current = _from_environment()
    return _current


def _from_environment() -> Transport:
    from .errors import TransportError

    kind = os.environ.get(TRANSPORT_ENV, "direct").strip().lower()
    if kind == "direct":
        from .direct import DirectTransport

        return DirectTransport()
    if kind == "bridge":
        from .bridge import BridgeTransport  # type: ignore[import-not-found,unused-ignore]

        transport: Transport = BridgeTransport()
        return transport
    raise TransportError(f"{TRANSPORT_ENV}={kind!r} is not a transport; use 'direct' or 'bridge'")
