"""`mcp-codegen serve`: a generated package as an MCP server for agents.

Three tools (`search_tools`, `read_module`, `execute_code`), the package's modules
as resources, and instructions that teach the pattern: search, read, then write
code that imports from `servers.<server>` and prints only what it needs.
"""

from __future__ import annotations

from .app import ServeSettings, build_server
from .command import serve_command

__all__ = ["ServeSettings", "build_server", "serve_command"]
