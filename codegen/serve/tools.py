"""What the server shows a model: its instructions, its three tools, and their results as text.

Every word here is paid for in tokens on every turn of every agent that uses the
server, so the descriptions say what a model needs to choose and call a tool,
and no more.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import mcp_types as types

from ..sandbox.precheck import syntax_error
from ..sandbox.result import ExecutionResult, ToolCall

__all__ = [
    "MAX_CODE_CHARS",
    "MAX_PARSED_CHARS",
    "MAX_QUERY_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_TIMEOUT",
    "arguments_error",
    "check_code",
    "code_refusal",
    "cut",
    "format_result",
    "instructions",
    "text_result",
    "tool_list",
]

MAX_TIMEOUT = 300.0
"""The longest `timeout` a call of `execute_code` may ask for, in seconds."""

MAX_NAMED_SERVERS = 12

MAX_CODE_CHARS = 512 * 1024
"""The longest code `execute_code` accepts."""
MAX_PARSED_CHARS = 64 * 1024
"""Code up to this long is parsed for a quick syntax error before any sandbox is involved
(CPython's parser takes ~1 ms per KB of its worst cases); longer code is compiled by the
executor's check (up to `precheck.MAX_CHECK_BYTES`) or the sandbox."""
MAX_TEXT_CHARS = 200_000
"""The most characters `search_tools` or `read_module` returns (the rest is cut)."""
MAX_QUERY_CHARS = 2000

_INSTRUCTIONS = """\
The tools of MCP servers ({servers}) are Python functions; use them from code:
1. search_tools("what you need") finds functions, e.g. {example}.
2. read_module("{example}") shows its parameters and return type; \
read_module("servers") lists the servers.
3. execute_code runs Python: `from {module} import {function}`, then \
`await {function}(...)` at top level (asyncio.gather for parallel calls).
Process data in code and print only what you need; the last expression's value is \
returned. /state persists for the session; save_skill(fn) keeps a documented \
function (read_module("skills"))."""


def instructions(servers: list[str], example: str = "servers.git.git_log") -> str:
    """The server's `instructions`: the pattern, in a few lines, with a real tool as example."""
    module, _, function = example.rpartition(".")
    # Every turn pays for these lines: past a dozen servers, a count says enough
    # (read_module("servers") lists them).
    named = ", ".join(servers) if len(servers) <= MAX_NAMED_SERVERS else f"{len(servers)} of them"
    return _INSTRUCTIONS.format(
        servers=named or "none", example=example, module=module, function=function
    )


def tool_list(default_timeout: float) -> list[types.Tool]:
    """The three tools, with tight descriptions and strict input schemas."""
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return [
        types.Tool(
            name="search_tools",
            description="Find tool functions for a task; best first, as import paths "
            "like servers.git.git_log.",
            input_schema={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What the tool should do."},
                    "detail": {
                        "type": "string",
                        "enum": ["name", "summary", "full"],
                        "default": "summary",
                        "description": "full adds signatures and docstrings.",
                    },
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
            annotations=read_only,
        ),
        types.Tool(
            name="read_module",
            description="Source of a module: 'servers' (server list), 'servers.<server>' "
            "(its tools, resources, prompts), 'servers.<server>.<tool>' (signature, types, "
            "docstring), 'skills' or 'skills.<name>' (saved functions).",
            input_schema={
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
                "additionalProperties": False,
            },
            annotations=read_only,
        ),
        types.Tool(
            name="execute_code",
            description="Run Python in a sandbox; import tools from servers.<server>, "
            "top-level await works. Returns stdout, the last expression's value, the "
            "error, and a summary of tool calls.",
            input_schema={
                "type": "object",
                "properties": {
                    "code": {"type": "string", "minLength": 1},
                    "timeout": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": MAX_TIMEOUT,
                        "description": f"Seconds (default {default_timeout:g}).",
                    },
                },
                "required": ["code"],
                "additionalProperties": False,
            },
            annotations=types.ToolAnnotations(destructive_hint=True, open_world_hint=True),
        ),
    ]


def code_refusal(code: str) -> tuple[str, str] | None:
    """Why `code` cannot run, as (`empty`, `too_long` or `syntax`, the message), else None.

    Code longer than `MAX_PARSED_CHARS` is not parsed here, before any sandbox is
    involved: the executor's check (up to `precheck.MAX_CHECK_BYTES`) or the sandbox
    compiles it and reports its syntax errors the same way. The rest of the check
    (imports, types) is the executor's, before it runs the code.
    """
    if not code.strip():
        return "empty", "code is empty; pass the Python to run"
    if len(code) > MAX_CODE_CHARS:
        return "too_long", (
            f"the code is {len(code)} characters, over the limit of {MAX_CODE_CHARS}; "
            "save data to files in /workspace instead of inlining it"
        )
    if len(code) > MAX_PARSED_CHARS:
        return None
    problem = syntax_error(code)
    return ("syntax", f"{problem}\nNothing was run.") if problem else None


def check_code(code: str) -> str | None:
    """Why `code` cannot run (empty, too long, or a syntax error with its place), else None."""
    refusal = code_refusal(code)
    return refusal[1] if refusal is not None else None


def cut(text: str, limit: int) -> str:
    """`text`, or its head and tail around a marker saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    cut_chars = len(text) - head - tail
    return (
        f"{text[:head]}\n[... {cut_chars} characters cut; print less, or summarize in code ...]\n"
        f"{text[len(text) - tail :]}"
    )


def _calls_line(result: ExecutionResult) -> str:
    if not result.calls:
        return f"tool calls: none; {result.duration_ms:.0f} ms"
    counts = Counter(_call_name(call) for call in result.calls)
    named = ", ".join(
        name if count == 1 else f"{name} x{count}" for name, count in sorted(counts.items())
    )
    denied = sum(
        call.approval is not None and call.approval.decision == "denied" for call in result.calls
    )
    failed = sum(not call.ok for call in result.calls) - denied
    failures = f", {failed} failed" if failed else ""
    failures += f", {denied} not approved" if denied else ""
    return f"tool calls: {len(result.calls)} ({named}{failures}); {result.duration_ms:.0f} ms"


def _call_name(call: ToolCall) -> str:
    if call.kind == "resource":
        return f"{call.server} resource {call.tool[:80]}"
    if call.kind == "prompt":
        return f"{call.server} prompt {call.tool}"
    return f"{call.server}.{call.tool}"


def format_result(result: ExecutionResult, limit: int) -> str:
    """The text a model reads of one execution: output, value, error, calls."""
    parts: list[str] = []
    stdout = result.stdout
    if result.stdout_cut_bytes:
        stdout += f"\n[... {result.stdout_cut_bytes} more bytes of stdout were dropped ...]"
    if stdout:
        parts.append(cut(stdout.rstrip("\n"), limit))
    if result.stderr:
        parts.append("stderr:\n" + cut(result.stderr.rstrip("\n"), limit // 4))
    if result.value_repr is not None and result.error is None:
        parts.append("value: " + cut(result.value_repr, limit // 2))
    if result.error is not None:
        error = result.error
        text = error.traceback.rstrip("\n") if error.traceback else f"{error.type}: {error.message}"
        parts.append("error: " + cut(text, limit // 4))
    if (result.diagnostics and result.error is None) or (
        result.error is not None and result.error.type != "CheckError" and result.diagnostics
    ):
        shown = [str(item) for item in result.diagnostics[:10]]
        parts.append("warnings (code check):\n" + cut("\n".join(shown), limit // 4))
    parts.append(_calls_line(result))
    if result.connections or result.connections_dropped:
        parts.append(_connections_line(result))
    return "\n".join(parts)


def _connections_line(result: ExecutionResult) -> str:
    allowed = [c for c in result.connections if c.allowed]
    refused = [c for c in result.connections if not c.allowed]
    line = f"connections: {len(allowed)} allowed"
    if refused:
        shown = "; ".join(f"{c.host}:{c.port} ({c.reason})" for c in refused[:3])
        more = f"; {len(refused) - 3} more" if len(refused) > 3 else ""
        line += f", {len(refused)} refused: {shown}{more}"
    if result.connections_dropped:
        line += f"; {result.connections_dropped} more not listed"
    return line


def text_result(text: str, *, error: bool = False) -> types.CallToolResult:
    """A tool result of one text block."""
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=error)


def arguments_error(
    arguments: dict[str, Any] | None,
    allowed: dict[str, type | tuple[type, ...]],
    required: tuple[str, ...],
) -> str | None:
    """Why `arguments` do not fit the tool's schema, else None (the SDK does not check)."""
    given = arguments or {}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        return f"unknown argument {', '.join(unknown)}; expected {', '.join(allowed)}"
    missing = [name for name in required if name not in given]
    if missing:
        return f"missing argument {', '.join(missing)}"
    for name, value in given.items():
        kinds = allowed[name]
        # bool is an int to Python, not to JSON Schema.
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"argument {name} has the wrong type ({type(value).__name__})"
    return None
