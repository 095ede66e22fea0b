"""A real MCP server over recorded tool definitions, for scale tests and benchmarks.

Started as `recorded.py TOOLS.jsonl SERVER`, it lists the tools of `SERVER` in a
JSONL of `{"server", "name", "description", "inputSchema"}` rows (the format of
`../shared/data/toucan-tools-dev.jsonl`), as that server listed them. It starts
like most `uvx`/`npx` servers: an interpreter that imports the SDK, about a
second of CPU. Calling a tool echoes its arguments with the server's pid. A call
with an argument `"sleep:<seconds>"` sleeps that long first. With
`$RECORDED_PID_FILE` set, the server writes its pid there when it starts, and
`<that file>.busy` when a call starts sleeping: a test can kill the server while
a call is in flight.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


def _tools(path: Path, server: str) -> list[types.Tool]:
    tools = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["server"] == server:
            fields = {key: row[key] for key in ("name", "description", "inputSchema") if key in row}
            tools.append(types.Tool.model_validate(fields))
    if not tools:
        raise SystemExit(f"recorded.py: no tools of server {server!r} in {path}")
    return tools


TOOLS = _tools(Path(sys.argv[1]), sys.argv[2])


async def list_tools(
    _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    arguments = params.arguments or {}
    for value in arguments.values():
        if isinstance(value, str) and value.startswith("sleep:"):
            pid_file = os.environ.get("RECORDED_PID_FILE")
            if pid_file:
                Path(f"{pid_file}.busy").write_text(str(os.getpid()), encoding="utf-8")
            await anyio.sleep(float(value.removeprefix("sleep:")))
    text = json.dumps({"pid": os.getpid(), "tool": params.name, "arguments": arguments})
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


server = Server(sys.argv[2], version="1", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    pid_file = os.environ.get("RECORDED_PID_FILE")
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()), encoding="utf-8")
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
