"""What the caller of one execution hears from it while it runs, and how a person is asked.

`Executor.execute(code, hooks=ExecutionHooks(...))`: `ask` is how a call that
needs approval is put to a person (serve: MCP elicitation; exec/run: the
terminal), `on_progress` receives what the code reports with `report_progress`,
and `call_count()` tells how many calls the execution has made so far (for
progress notifications). Without hooks, nobody can be asked and nobody listens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bridge.approval import Asker
    from .bridge.host import CallLog

__all__ = ["CodeProgress", "ExecutionHooks"]


@dataclass(frozen=True)
class CodeProgress:
    """One `report_progress(done, total, message)` of the code."""

    done: float
    total: float | None
    message: str | None


@dataclass(eq=False)
class ExecutionHooks:
    """The per-execution callbacks of the host's bridge (see the module's docstring)."""

    ask: Asker | None = None
    on_progress: Callable[[CodeProgress], None] | None = None
    _log: CallLog | None = field(default=None, repr=False)
    _asking: asyncio.Lock | None = field(default=None, repr=False)

    def attach(self, log: CallLog) -> None:
        """Bind these hooks to the execution's call log (the executor does, at its start)."""
        self._log = log
        log.hooks = self

    def call_count(self) -> int:
        """Calls the execution has finished so far."""
        return len(self._log.calls) if self._log is not None else 0

    @property
    def asking(self) -> asyncio.Lock:
        """Held while a person is asked: one question at a time per execution."""
        if self._asking is None:
            self._asking = asyncio.Lock()
        return self._asking
