"""Run agent-written Python against a generated package, isolated in gVisor.

The code runs in a sandbox (`runsc`, no network, read-only root, a non-root
user); its tool calls cross a bridge to the host, which checks them against the
snapshot and forwards them over real MCP sessions. See `Executor`.
"""

from __future__ import annotations

from .errors import SandboxError, SandboxUnavailableError
from .executor import Executor, Limits, UnsafeLocalExecutor
from .result import ExecutionError, ExecutionResult, ToolCall

__all__ = [
    "ExecutionError",
    "ExecutionResult",
    "Executor",
    "Limits",
    "SandboxError",
    "SandboxUnavailableError",
    "ToolCall",
    "UnsafeLocalExecutor",
]
