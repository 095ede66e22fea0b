"""A low-level SDK server: tool names and parameters that are Python keywords, listed in pages.

Each `tools/list` page holds two tools, so a client must follow `next_cursor`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool(
        name="class",
        description="A tool whose name and parameters are Python keywords.",
        input_schema={
            "type": "object",
            "properties": {
                "from": {"type": "string", "description": "Where from."},
                "lambda": {"type": "integer", "default": 1, "description": "How many."},
            },
            "required": ["from"],
        },
    ),
    types.Tool(
        name="list.items-v2",
        description="Dots and dashes in the name.",
        input_schema={"type": "object", "properties": {}},
    ),
    types.Tool(
        name="list_items_v2",
        description="Clashes with list.items-v2 once converted.",
        input_schema={"type": "object", "properties": {}},
    ),
    types.Tool(name="print", description="Shadows a builtin.", input_schema={"type": "object"}),
    types.Tool(name="get_time", description="Third page.", input_schema={"type": "object"}),
]
PAGE = 2


async def list_tools(
    _ctx: Any, params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    start = int(params.cursor) if params and params.cursor else 0
    end = start + PAGE
    return types.ListToolsResult(
        tools=TOOLS[start:end], next_cursor=str(end) if end < len(TOOLS) else None
    )


async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    text = json.dumps({"tool": params.name, "arguments": params.arguments or {}}, sort_keys=True)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


server = Server("keywords", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    asyncio.run(main())
