"""What one execution gives back: output, value or error, timing, and each tool call."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Approval", "ExecutionError", "ExecutionResult", "ToolCall"]


class Approval(BaseModel):
    """The decision on a call that needed a person's approval (the `approval` policy)."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["approved", "denied"]
    by: str
    """Who decided: "person", "approve-all" (`--approve-all`), "policy" (`unattended: allow`),
    "timeout" (no answer), or why nobody could be asked ("no-elicitation", "no-terminal")."""
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


class ExecutionError(BaseModel):
    """Why the execution did not end normally.

    `type` is the exception's class name for errors of the code (`ZeroDivisionError`,
    `MemoryError`), or one of the sandbox's own: `TimeoutError` (the wall-clock limit),
    `OutputLimitError` (output flood), `SandboxCrashed` (the sandbox died, e.g. at its
    memory backstop), `ProcessDied` (the process ended without a result).
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

    @property
    def ok(self) -> bool:
        """True when the code ran to its end without an exception or a limit."""
        return self.error is None

    def to_json(self) -> str:
        """The result as indented JSON (what `--json` prints)."""
        return self.model_dump_json(indent=2)
