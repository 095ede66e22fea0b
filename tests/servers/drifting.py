"""A real MCP server whose tools come from a JSON file, for drift tests.

Started as `drifting.py TOOLS.json`, it lists the tools that file holds, each a
raw MCP `Tool` in wire spelling (`name`, `inputSchema`, `outputSchema`, ...).
The file is read once at start, so a test changes it between two runs to make
the server's tools drift. Calling a tool echoes its arguments back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool.model_validate(tool)
    for tool in json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
]


async def list_tools(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    text = json.dumps(params.arguments or {}, sort_keys=True)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


server = Server("drifting", version="1", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
