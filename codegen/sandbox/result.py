"""What one execution gives back: output, value or error, timing, each tool call and connection."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Approval",
    "CheckDiagnostic",
    "ExecutionError",
    "ExecutionResult",
    "NetworkConnection",
    "ToolCall",
]


class Approval(BaseModel):
    """The decision on a call that needed a person's approval (the `approval` policy)."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["approved", "denied"]
    by: str
    """Who decided: "person", "approve-all" (`--approve-all`), "policy" (`unattended: allow`),
    "timeout" (no answer), or why nobody could be asked ("no-elicitation", "no-terminal",
    "unattended": no hooks, as in the Python API)."""
    reason: str = ""


class ToolCall(BaseModel):
    """One tool call (or resource read, or prompt) the code made through the bridge,
    as the host saw it."""

    model_config = ConfigDict(frozen=True)

    server: str
    tool: str
    """The tool's name; for a resource, its uri; for a prompt, its name."""
    duration_ms: float
    bytes_in: int
    """Size of the request line the sandbox sent."""
    bytes_out: int
    """Size of the answer line sent back into the sandbox."""
    ok: bool
    error: str | None = None
    kind: Literal["tool", "resource", "prompt"] = "tool"
    approval: Approval | None = None
    """Set when the call needed a person's approval: the decision, who made it, why."""


class NetworkConnection(BaseModel):
    """One connection the code asked for, as the host's egress proxy (or the sandbox) saw it."""

    model_config = ConfigDict(frozen=True)

    host: str
    """The host name or address the code asked for."""
    port: int
    kind: Literal["https", "http", "direct"]
    """`https`: a CONNECT tunnel through the proxy (not inspected); `http`: a plain HTTP
    request forwarded by the proxy; `direct`: a connection the code tried without the
    proxy, which the sandbox has no route for."""
    allowed: bool
    address: str | None = None
    """The address the host connected to (after its own resolution)."""
    reason: str | None = None
    """Why it was refused or failed."""
    bytes_sent: int = 0
    """Bytes from the code to the host it reached."""
    bytes_received: int = 0
    duration_ms: float = 0.0


class CheckDiagnostic(BaseModel):
    """What the check before an execution found at one place of the code."""

    model_config = ConfigDict(frozen=True)

    line: int
    column: int
    rule: str
    """The checker's rule (`unknown-argument`, `missing-argument`...)."""
    message: str
    certain: bool = False
    """An error the code would certainly hit (these stop an execution under `block`)."""
    signature: str | None = None
    """The signature of the tool the code calls there, when it is one."""

    def __str__(self) -> str:
        text = f"line {self.line}: {self.message} [{self.rule}]"
        if self.signature:
            text += f"\n    {self.signature}"
        return text


class ExecutionError(BaseModel):
    """Why the execution did not end normally.

    `type` is the exception's class name for errors of the code (`ZeroDivisionError`,
    `MemoryError`), or one of the sandbox's own: `TimeoutError` (the wall-clock limit),
    `OutputLimitError` (output flood), `SandboxCrashed` (the sandbox died, e.g. at its
    memory backstop), `ProcessDied` (the process ended without a result), `CheckError`
    (the check before the execution found errors it is certain of: nothing ran),
    `SyntaxError` (the code does not parse: nothing ran).
    """

    model_config = ConfigDict(frozen=True)

    type: str
    message: str
    traceback: str | None = None
    """Trimmed to the frames of the code itself."""


class ExecutionResult(BaseModel):
    """The one structured object an execution returns."""

    stdout: str = ""
    stderr: str = ""
    value: Any = None
    """The last expression's value when it is JSON (pydantic models are dumped), else None."""
    value_repr: str | None = None
    """`repr()` of the last expression's value, when there is one and it is not None."""
    error: ExecutionError | None = None
    duration_ms: float = 0.0
    calls: list[ToolCall] = Field(default_factory=list)
    stdout_cut_bytes: int = 0
    stderr_cut_bytes: int = 0
    connections: list[NetworkConnection] = Field(default_factory=list)
    """Every connection the code asked for, allowed or refused, in the order they ended."""
    connections_dropped: int = 0
    """Connections past the log's bound, counted but not listed."""
    diagnostics: list[CheckDiagnostic] = Field(default_factory=list)
    """What the check before the execution found: the errors that stopped it (`certain`),
    or warnings beside a result."""
    limit: str | None = None
    """The limit that ended the execution, if one did: `timeout`, `output`, `memory`
    (the code's own MemoryError at `--memory`), `sandbox` (the sandbox's memory backstop)."""
    cpu_seconds: float | None = None
    """CPU time (user + system) of the execution's processes, measured inside the sandbox."""
    peak_memory_bytes: int | None = None
    """Peak resident memory of the execution's process (with what it forked and waited for),
    measured inside the sandbox; it includes what the warm worker had loaded before forking it."""

    @property
    def ok(self) -> bool:
        """True when the code ran to its end without an exception or a limit."""
        return self.error is None

    def to_json(self) -> str:
        """The result as indented JSON (what `--json` prints)."""
        return self.model_dump_json(indent=2)
