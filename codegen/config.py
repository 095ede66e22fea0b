"""Config: the first stage. Reads `mcp.json` (see `codegen.runtime.config`).

The parser lives in the runtime because a generated package reads the same file
when it calls servers directly; the build uses that one implementation.
"""

from __future__ import annotations

from .runtime.config import CONFIG_ENV, Config, HttpServer, StdioServer, load_config
from .runtime.errors import ConfigError

__all__ = ["CONFIG_ENV", "Config", "ConfigError", "HttpServer", "StdioServer", "load_config"]
