"""One `execute_code` request talking back to its client: approvals and progress.

- A call that needs a person's yes (the config's `approval` policy) is put to the
  client as an MCP elicitation: a form with one boolean, `approve`, and a message
  naming the server, the tool and its arguments (personal data as placeholders).
  Accepted with `approve: true` is a yes; anything else, or no answer, is a no. A
  client that did not declare the elicitation capability is never asked: the
  policy's `unattended` decides (a refusal unless it says "allow").
- When the client sent a progress token, a progress notification goes out about
  every second: the elapsed seconds as `progress` (always increasing, as MCP
  requires; no `total`), and a message with the tool calls so far and the last
  thing the code reported with `report_progress(done, total, message)`. A report of
  the code is passed on at once, not at the next tick, but never sooner than
  `MIN_PROGRESS_GAP` after the previous notification: code that bypasses
  `report_progress`'s own throttle and floods the bridge still costs the client at
  most a few notifications a second (the latest report wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import mcp_types as types

from ..sandbox.bridge.approval import Answer, ApprovalRequest
from ..sandbox.hooks import CodeProgress, ExecutionHooks

__all__ = ["APPROVAL_SCHEMA", "MIN_PROGRESS_GAP", "PROGRESS_INTERVAL", "execution_hooks"]

PROGRESS_INTERVAL = 1.0
"""Seconds between two progress notifications while code runs."""
MIN_PROGRESS_GAP = 0.25
"""Seconds at least between two progress notifications, however often the code reports."""

APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approve": {
            "type": "boolean",
            "title": "Allow this call",
            "description": "Check to let the call through; leave unchecked to refuse it.",
            "default": False,
        }
    },
    "required": ["approve"],
}


def _asker(ctx: Any) -> Any:
    """Ask the client of request `ctx` about one call, by elicitation."""

    async def ask(request: ApprovalRequest) -> Answer:
        capabilities = ctx.session.client_capabilities
        if capabilities is None or capabilities.elicitation is None:
            return Answer(
                None,
                "no-elicitation",
                "this MCP client cannot ask a person (it does not support elicitation)",
            )
        try:
            result: types.ElicitResult = await ctx.session.elicit_form(
                message=request.message(),
                requested_schema=APPROVAL_SCHEMA,
                related_request_id=ctx.request_id,
            )
        except Exception as exc:  # no back channel, or the client failed the request
            return Answer(None, "no-elicitation", f"the client could not ask a person ({exc})")
        if result.action == "accept" and (result.content or {}).get("approve") is True:
            return Answer(True, "person", "the person said yes")
        if result.action == "cancel":
            return Answer(False, "person", "the person dismissed the question")
        return Answer(False, "person", "the person said no")

    return ask


class _Progress:
    """Progress notifications of one execution (see the module's docstring)."""

    def __init__(self, ctx: Any, hooks: ExecutionHooks):
        self.ctx = ctx
        self.hooks = hooks
        self.started = time.monotonic()
        self.sent = float("-inf")
        self.last_value = 0.0
        self.code: CodeProgress | None = None
        self.wake = asyncio.Event()

    def on_code(self, report: CodeProgress) -> None:
        self.code = report
        self.wake.set()

    def message(self, elapsed: float) -> str:
        calls = self.hooks.call_count()
        text = f"{elapsed:.0f} s, {calls} tool call{'' if calls == 1 else 's'}"
        if self.code is not None:
            report = self.code
            done = f"{report.done:g}" + (f"/{report.total:g}" if report.total is not None else "")
            text += f"; {done}" + (f": {report.message}" if report.message else "")
        return text

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), PROGRESS_INTERVAL)
            # Reports arriving within the gap are folded into one notification: the
            # code (or hostile code writing to the bridge itself) sets the pace only
            # up to MIN_PROGRESS_GAP.
            gap = self.sent + MIN_PROGRESS_GAP - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            self.wake.clear()
            elapsed = time.monotonic() - self.started
            # Strictly increasing, as the spec requires, even for two reports in one tick.
            value = max(round(elapsed, 3), self.last_value + 0.001)
            self.last_value = value
            with contextlib.suppress(Exception):  # a client gone is the execution's business
                await self.ctx.session.report_progress(value, None, self.message(elapsed))
            self.sent = time.monotonic()


def _progress_token(ctx: Any) -> Any:
    meta = getattr(ctx, "meta", None)
    if not isinstance(meta, dict):
        return None
    return meta.get("progress_token", meta.get("progressToken"))


@contextlib.asynccontextmanager
async def execution_hooks(ctx: Any) -> AsyncIterator[ExecutionHooks]:
    """The hooks of one `execute_code` request: approvals by elicitation, progress while it runs."""
    hooks = ExecutionHooks(ask=_asker(ctx))
    if _progress_token(ctx) is None:
        yield hooks
        return
    progress = _Progress(ctx, hooks)
    hooks.on_progress = progress.on_code
    ticker = asyncio.ensure_future(progress.run())
    try:
        yield hooks
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await ticker
