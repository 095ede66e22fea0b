"""mcp-codegen: compile MCP servers into a typed Python package, and run code against it."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
