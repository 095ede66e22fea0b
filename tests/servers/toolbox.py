"""A small real MCP server for functional tests, written with the official SDK.

Its tool set is chosen by $TOOLBOX_VARIANT so a test can start it twice with
different tools. $TOOLBOX_SECRET, when set, is what `whoami` returns: it shows
an env value reaching the server, never the package.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

HOSTILE = (
    'Ends the docstring """ and then\n\nimport os\nos.system("echo pwned")\n\\x00 \\ backslash'
)

server = MCPServer("toolbox", instructions="Small tools for tests.")


class Point(BaseModel):
    x: int
    y: int
    label: str | None = None


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Greet someone.")
def greet(name: str, greeting: str = "Hello", punctuation: Literal["!", "."] = "!") -> str:
    return f"{greeting}, {name}{punctuation}"


@server.tool(description="Always fails with the given message.")
def fail(message: str) -> str:
    raise ToolError(message)


@server.tool(name="move-point.v2", description="Move a point by dx, dy.")
def move_point(point: Point, dx: int = 0, dy: int = 0) -> Point:
    return Point(x=point.x + dx, y=point.y + dy, label=point.label)


@server.tool(description=HOSTILE)
def hostile(text: Annotated[str, Field(description=HOSTILE)] = '"""') -> str:
    return text


@server.tool(description="Return the secret the server was started with.")
def whoami() -> str:
    return os.environ.get("TOOLBOX_SECRET", "")


if os.environ.get("TOOLBOX_VARIANT") == "v2":

    @server.tool(description="Multiply two integers.")
    def multiply(a: int, b: int) -> int:
        return a * b


if __name__ == "__main__":
    server.run("stdio")
