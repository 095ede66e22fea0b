"""A demo-like MCP server whose tools change while it runs, for `serve`'s upstream-change tests.

It starts with `echo`, `grow`, `ping`, `add_prompt` and `add_resource`, one
prompt and one resource. Calling `grow(name)` adds a tool of that name and says
its tool list changed, as servers do when their tools change (a plugin loaded, a
permission granted): `notifications/tools/list_changed` on the handshake-era
protocol, an event on `subscriptions/listen` streams on 2026-07-28.
`add_prompt(name)` and `add_resource(name)` do the same for prompts and
resources. `ping` sends the tools notification without changing anything, as
some servers do on every call. With `--handshake` it speaks only the
handshake-era protocol, as most servers today do.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.runner import serve_loop
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

BUS = InMemorySubscriptionBus()

_OBJECT: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}}
TOOLS = [
    types.Tool(name="echo", description="Echo the arguments back.", input_schema=_OBJECT),
    types.Tool(
        name="grow",
        description="Add a tool named `name` (and say the tool list changed).",
        input_schema={**_OBJECT, "required": ["name"]},
    ),
    types.Tool(
        name="ping",
        description="Say the tool list changed, without changing it.",
        input_schema={"type": "object"},
    ),
    types.Tool(
        name="add_prompt",
        description="Add a prompt named `name` (and say the prompt list changed).",
        input_schema={**_OBJECT, "required": ["name"]},
    ),
    types.Tool(
        name="add_resource",
        description="Add a resource changing://`name` (and say the resource list changed).",
        input_schema={**_OBJECT, "required": ["name"]},
    ),
]
PROMPTS = [types.Prompt(name="greet", description="Say hello.")]
RESOURCES = [types.Resource(uri="changing://start", name="start", mime_type="text/plain")]


async def list_tools(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    arguments = params.arguments or {}
    name = str(arguments.get("name"))
    if params.name == "grow":
        TOOLS.append(
            types.Tool(
                name=name,
                description="A tool added while the server ran.",
                input_schema={"type": "object"},
            )
        )
        await _list_changed(ctx, ToolsListChanged())
    elif params.name == "ping":
        await _list_changed(ctx, ToolsListChanged())
    elif params.name == "add_prompt":
        PROMPTS.append(types.Prompt(name=name, description="A prompt added while the server ran."))
        await _list_changed(ctx, PromptsListChanged())
    elif params.name == "add_resource":
        RESOURCES.append(types.Resource(uri=f"changing://{name}", name=name))
        await _list_changed(ctx, ResourcesListChanged())
    text = json.dumps(arguments, sort_keys=True)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


async def list_prompts(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS)


async def get_prompt(
    _ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
) -> types.GetPromptResult:
    hello = types.TextContent(type="text", text=f"hello from {params.name}")
    return types.GetPromptResult(messages=[types.PromptMessage(role="user", content=hello)])


async def list_resources(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=RESOURCES)


async def read_resource(
    _ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
) -> types.ReadResourceResult:
    uri = str(params.uri)
    return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, text=uri)])


async def _list_changed(ctx: ServerRequestContext[Any], event: ServerEvent) -> None:
    # Both protocol eras: a notification on the session (handshake era), an event for
    # the `subscriptions/listen` streams (2026-07-28).
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        if isinstance(event, PromptsListChanged):
            await ctx.session.send_prompt_list_changed()
        elif isinstance(event, ResourcesListChanged):
            await ctx.session.send_resource_list_changed()
        else:
            await ctx.session.send_tool_list_changed()
    await BUS.publish(event)


server = Server(
    "changing",
    version="1",
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    on_list_prompts=list_prompts,
    on_get_prompt=get_prompt,
    on_list_resources=list_resources,
    on_read_resource=read_resource,
    on_subscriptions_listen=ListenHandler(BUS),
)


async def main() -> None:
    options = server.create_initialization_options(
        NotificationOptions(tools_changed=True, prompts_changed=True, resources_changed=True)
    )
    async with stdio_server() as (read_stream, write_stream):
        if "--handshake" in sys.argv:  # only the handshake era, as most servers today
            async with server.lifespan(server) as state:
                await serve_loop(
                    server, read_stream, write_stream, lifespan_state=state, init_options=options
                )
        else:
            await server.run(read_stream, write_stream, options)


if __name__ == "__main__":
    anyio.run(main)
