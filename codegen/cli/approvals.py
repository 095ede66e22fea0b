"""How `run` and `exec` ask a person about a call that needs approval: on the terminal.

The question goes to stderr and the answer is read from `/dev/tty`, so code read
from stdin (`exec -c -`) does not get in the way. Without a terminal (stderr not
one, or no controlling terminal) nobody is asked, and the config's
`approval.unattended` decides (a refusal unless it says "allow"); `--approve-all`
approves every such call without asking, and says so in the call log.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from ..sandbox.bridge.approval import Answer, ApprovalRequest, Asker
from ..sandbox.hooks import ExecutionHooks

__all__ = ["terminal_hooks"]

_YES = {"y", "yes"}


def terminal_hooks(approve_all: bool) -> ExecutionHooks:
    """The hooks of one `run`/`exec`: approvals asked on the terminal, or all approved."""
    return ExecutionHooks(ask=_approve_all if approve_all else _terminal_asker())


async def _approve_all(request: ApprovalRequest) -> Answer:
    return Answer(True, "approve-all", "approved by --approve-all")


async def _no_terminal(request: ApprovalRequest) -> Answer:
    return Answer(
        None,
        "no-terminal",
        "there is no terminal to ask on (run it on a terminal, or pass --approve-all)",
    )


def _terminal_asker() -> Asker:
    if not sys.stderr.isatty():
        return _no_terminal
    try:
        with open("/dev/tty", encoding="utf-8"):
            pass
    except OSError:
        return _no_terminal

    async def ask(request: ApprovalRequest) -> Answer:
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[str | None] = loop.create_future()

        def read() -> None:
            # A daemon thread: an answer never given must not keep the process alive.
            try:
                with open("/dev/tty", encoding="utf-8") as tty:
                    sys.stderr.write(f"\n{request.message()} [y/N] ")
                    sys.stderr.flush()
                    line: str | None = tty.readline()
            except OSError:
                line = None
            loop.call_soon_threadsafe(_settle, answered, line)

        threading.Thread(target=read, name="mcp-codegen-approval", daemon=True).start()
        line = await answered
        if line is None:
            return await _no_terminal(request)
        if line.strip().lower() in _YES:
            return Answer(True, "person", "the person said yes")
        return Answer(False, "person", "the person said no")

    return ask


def _settle(future: asyncio.Future[str | None], value: str | None) -> None:
    if not future.done():
        future.set_result(value)
