"""A real MCP server that writes junk to stdout before it speaks MCP, as careless servers do.

With $NOISY_ONLY set it writes nothing but junk and never answers.
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("noisy")


@server.tool(description="Say hello.")
def hello() -> str:
    return "hello"


if __name__ == "__main__":
    print("Starting noisy server v1.0 ... listening on stdio", flush=True)
    if os.environ.get("NOISY_ONLY"):
        for _ in sys.stdin:
            print("not json either", flush=True)
        sys.exit(0)
    server.run()
