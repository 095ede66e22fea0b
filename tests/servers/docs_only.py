"""A documentation server with no tools: one static resource, one template, one prompt.

It declares no `tools` capability at all (no tool handlers), as a docs-only server
would. `docs_only.py --nothing` offers nothing at all (no handlers of any kind).
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

GUIDE = "docs://guide"


async def list_resources(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    guide = types.Resource(
        uri=GUIDE, name="guide", description="The user guide.", mime_type="text/markdown"
    )
    return types.ListResourcesResult(resources=[guide])


async def list_templates(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    page = types.ResourceTemplate(
        uri_template="docs://pages/{slug}", name="page", description="A page of the docs by slug."
    )
    return types.ListResourceTemplatesResult(resource_templates=[page])


async def read_resource(
    _ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    text = "# Guide" if uri == GUIDE else f"# Page {uri.rsplit('/', 1)[-1]}"
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type="text/markdown", text=text)]
    )


async def list_prompts(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    argument = types.PromptArgument(name="topic", required=True)
    return types.ListPromptsResult(prompts=[types.Prompt(name="explain", arguments=[argument])])


async def get_prompt(
    _ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
) -> types.GetPromptResult:
    topic = (params.arguments or {}).get("topic", "")
    content = types.TextContent(type="text", text=f"Explain {topic}.")
    return types.GetPromptResult(messages=[types.PromptMessage(role="user", content=content)])


handlers: dict[str, Any] = {
    "on_list_resources": list_resources,
    "on_list_resource_templates": list_templates,
    "on_read_resource": read_resource,
    "on_list_prompts": list_prompts,
    "on_get_prompt": get_prompt,
}
server = Server("docs", version="1", **({} if "--nothing" in sys.argv else handlers))


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
