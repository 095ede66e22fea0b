"""Run agent-written Python against a generated package, isolated in gVisor.

The code runs in a sandbox (`runsc`, no network, read-only root, a non-root
user); its tool calls cross a bridge to the host, which checks them against the
snapshot and forwards them over real MCP sessions. See `Executor`; a
`SandboxPolicy` (the `sandbox` section of `mcp.json`, `parse_sandbox_policy`)
sets its limits, libraries, network allowlist and the check before code runs.
"""

from __future__ import annotations

from .errors import SandboxError, SandboxUnavailableError
from .executor import Executor, Limits, UnsafeLocalExecutor
from .policy import SandboxPolicy, parse_sandbox_policy
from .result import CheckDiagnostic, ExecutionError, ExecutionResult, NetworkConnection, ToolCall

__all__ = [
    "CheckDiagnostic",
    "ExecutionError",
    "ExecutionResult",
    "Executor",
    "Limits",
    "NetworkConnection",
    "SandboxError",
    "SandboxPolicy",
    "SandboxUnavailableError",
    "ToolCall",
    "UnsafeLocalExecutor",
    "parse_sandbox_policy",
]
