"""What one execution gives back: output, value or error, timing, and each tool call."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ExecutionError", "ExecutionResult", "ToolCall"]


class ToolCall(BaseModel):
    """One tool call the code made through the bridge, as the host saw it."""

    model_config = ConfigDict(frozen=True)

    server: str
    tool: str
    duration_ms: float
    bytes_in: int
    """Size of the request line the sandbox sent."""
    bytes_out: int
    """Size of the answer line sent back into the sandbox."""
    ok: bool
    error: str | None = None


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
