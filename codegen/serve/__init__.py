"""`mcp-codegen serve`: a generated package as an MCP server for agents.

Three tools (`search_tools`, `read_module`, `execute_code`), the package's modules
as resources, and instructions that teach the pattern: search, read, then write
code that imports from `servers.<server>` and prints only what it needs.
The command itself (its options, the checks before serving) is `codegen.cli.serve`.
"""

from __future__ import annotations

from .app import ServeSettings, build_server

__all__ = ["ServeSettings", "build_server"]
