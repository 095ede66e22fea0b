"""A streamable-HTTP MCP server, in a thread of the test process, that says which trace
context each call reached it with (`_meta.traceparent`, as SEP-414 carries it)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from mcp.server.mcpserver import Context, MCPServer

__all__ = ["TracedServer"]


def _server() -> MCPServer:
    server = MCPServer("traced", instructions="Reports the trace context of each call.")

    @server.tool(description="The W3C traceparent this call arrived with, or an empty string.")
    def traceparent(ctx: Context) -> str:  # type: ignore[type-arg]
        meta = ctx.request_context.meta or {}
        return str(meta.get("traceparent", ""))

    return server


class TracedServer:
    """The server on a free loopback port (`url`), until `stop()`."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/mcp"
        app = _server().streamable_http_app()
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "the traced test server did not start"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
