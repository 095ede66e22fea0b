"""The runtime of a generated package, copied into it verbatim as `_runtime`.

Ordinary, tested Python: the transport that carries a tool call, the result
types, the errors. It needs pydantic and nothing else on import; the direct
transport imports the `mcp` SDK when it makes its first call.
"""

from __future__ import annotations

import os

from .call import call_tool, call_tool_structured
from .errors import (
    ApprovalDenied,
    AuthError,
    ConfigError,
    McpCodegenError,
    ToolError,
    ToolOutputError,
    TransportError,
)
from .progress import report_progress
from .resources import (
    PromptMessage,
    PromptResult,
    ResourceContents,
    ResourceInfo,
    ResourceItem,
    get_prompt,
    read_resource,
    read_template,
)
from .results import (
    AudioContent,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    ToolResult,
)
from .transport import Transport, get_transport, set_transport


def configure(
    config: str | os.PathLike[str] | None = None, *, timeout: float | None = None
) -> None:
    """Call the servers directly from this process, as `config` (an `mcp.json`) says.

    Without `config`, `$MCP_CODEGEN_CONFIG` or `./mcp.json` is read on the first call.
    """
    from .direct import DEFAULT_TIMEOUT, DirectTransport

    set_transport(DirectTransport(config, timeout=timeout or DEFAULT_TIMEOUT))


async def aclose() -> None:
    """Close the sessions of the transport in use; a later call opens them again."""
    await get_transport().aclose()


__all__ = [
    "ApprovalDenied",
    "AudioContent",
    "AuthError",
    "ConfigError",
    "ContentBlock",
    "EmbeddedResource",
    "ImageContent",
    "McpCodegenError",
    "PromptMessage",
    "PromptResult",
    "ResourceContents",
    "ResourceInfo",
    "ResourceItem",
    "ResourceLink",
    "TextContent",
    "ToolError",
    "ToolOutputError",
    "ToolResult",
    "Transport",
    "TransportError",
    "aclose",
    "call_tool",
    "call_tool_structured",
    "configure",
    "get_prompt",
    "get_transport",
    "read_resource",
    "read_template",
    "report_progress",
    "set_transport",
]
