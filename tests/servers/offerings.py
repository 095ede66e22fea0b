"""An MCP server with resources, resource templates and prompts, for build tests.

Everything is listed two items per page, so pagination is followed. Its text is
hostile on purpose: a description holding `\"\"\"` and a backslash, a template
name that is a Python keyword, a prompt argument named like the runtime's own
function. `offerings.py --no-templates` answers `resources/templates/list` with
"method not found", as older servers do; `--bad-prompts` fails `prompts/list`.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

PAGE = 2
RESOURCES = [
    types.Resource(
        uri=f"notes://note/{number}",
        name=f"note {number}",
        description='Note with """quotes""" and a \\ backslash' if number == 1 else None,
        mime_type="text/plain",
    )
    for number in range(1, 6)
]
TEMPLATES = [
    types.ResourceTemplate(
        uri_template="notes://note/{id}", name="note", description="One note by id."
    ),
    types.ResourceTemplate(
        uri_template="files://{owner}/{repo}/{+path}{?ref}",
        name="class",
        description="A file of a repository, at a ref.",
    ),
    types.ResourceTemplate(uri_template="broken://{oops", name="broken"),
]
PROMPTS = [
    types.Prompt(
        name="summarize",
        description="Summarize a note.",
        arguments=[
            types.PromptArgument(name="style", description="How to write it."),
            types.PromptArgument(name="note-id", description="The note.", required=True),
        ],
    ),
    types.Prompt(
        name="get_prompt",
        description="Named like the runtime's own function.",
        arguments=[types.PromptArgument(name="get_prompt", required=True)],
    ),
    types.Prompt(name="hello", description="Say hello."),
]


def _page(
    items: list[Any], params: types.PaginatedRequestParams | None
) -> tuple[list[Any], str | None]:
    start = int(params.cursor) if params is not None and params.cursor else 0
    end = start + PAGE
    return items[start:end], str(end) if end < len(items) else None


async def list_tools(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(
        tools=[types.Tool(name="noop", description="Nothing.", input_schema={"type": "object"})]
    )


async def call_tool(
    _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


async def list_resources(
    _ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    items, cursor = _page(RESOURCES, params)
    return types.ListResourcesResult(resources=items, next_cursor=cursor)


async def list_templates(
    _ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListResourceTemplatesResult:
    if "--no-templates" in sys.argv:
        raise MCPError(types.METHOD_NOT_FOUND, "Method not found")
    items, cursor = _page(TEMPLATES, params)
    return types.ListResourceTemplatesResult(resource_templates=items, next_cursor=cursor)


async def read_resource(
    _ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=f"read {uri}")]
    )


async def list_prompts(
    _ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    if "--bad-prompts" in sys.argv:
        raise MCPError(types.INTERNAL_ERROR, "the prompt store is down")
    items, cursor = _page(PROMPTS, params)
    return types.ListPromptsResult(prompts=items, next_cursor=cursor)


async def get_prompt(
    _ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
) -> types.GetPromptResult:
    text = f"{params.name} with {sorted((params.arguments or {}).items())}"
    return types.GetPromptResult(
        messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))
        ]
    )


server = Server(
    "offerings",
    version="1",
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    on_list_resources=list_resources,
    on_list_resource_templates=list_templates,
    on_read_resource=read_resource,
    on_list_prompts=list_prompts,
    on_get_prompt=get_prompt,
)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
