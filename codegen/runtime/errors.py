"""The exceptions a generated package raises."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApprovalDenied",
    "AuthError",
    "ConfigError",
    "McpCodegenError",
    "ToolError",
    "ToolOutputError",
    "TransportError",
]


class McpCodegenError(Exception):
    """Base of every error the generated package raises on purpose."""


class ConfigError(McpCodegenError):
    """The `mcp.json` cannot be used: missing, not JSON, or a field is wrong."""


class TransportError(McpCodegenError):
    """A call could not reach its server or its answer could not be read."""


class AuthError(TransportError):
    """A server needs a login this process does not have, or refused the credentials it got.

    The message names the server and what to do (`mcp-codegen login NAME`); it never
    holds a token.

    Attributes:
        server: the server's key in `mcpServers`.
        login: whether `mcp-codegen login <server>` is the fix.
    """

    def __init__(self, server: str, message: str, *, login: bool = False):
        super().__init__(message)
        self.server = server
        self.login = login


class ToolError(McpCodegenError):
    """The server ran the tool and reported an error (`isError: true`).

    Attributes:
        server: the server's key in `mcpServers`.
        tool: the MCP tool name.
        message: the text the server returned.
        result: the whole wire-form result, for code that wants more than the text.
    """

    def __init__(self, server: str, tool: str, message: str, result: dict[str, Any] | None = None):
        super().__init__(f"{server}.{tool}: {message}")
        self.server = server
        self.tool = tool
        self.message = message
        self.result = result or {}


class ToolOutputError(McpCodegenError):
    """The tool answered, but its structured output does not match its outputSchema."""

    def __init__(self, server: str, tool: str, message: str):
        super().__init__(f"{server}.{tool}: output does not match its outputSchema: {message}")
        self.server = server
        self.tool = tool


class ApprovalDenied(McpCodegenError):
    """A call that needs a person's approval (the `approval` policy of `mcp.json`) did not get it.

    The person said no, did not answer in time, or could not be asked (a client
    without elicitation, no terminal). Nothing reached the server. Code may catch
    it and go on without that call.

    Attributes:
        server: the server's key in `mcpServers`.
        tool: the MCP tool name.
        reason: why, in words.
    """

    def __init__(self, server: str, tool: str, reason: str):
        super().__init__(reason)
        self.server = server
        self.tool = tool
        self.reason = reason
