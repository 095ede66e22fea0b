"""`report_progress(done, total, message)`: code tells whoever waits on it how far it got.

Inside the sandbox each report goes to the host over the bridge, which passes it on
to the MCP client as a progress notification (when the client asked for progress)
together with the elapsed time and the tool calls so far. Reports closer together
than `MIN_INTERVAL` are dropped, except the last one of a task (`done >= total`), so
a loop may report on every item without slowing down. Outside the sandbox, and
when the host cannot be reached, a report does nothing: progress never fails code.

Standard library only: this module runs in the sandbox.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

from .errors import TransportError

__all__ = ["MIN_INTERVAL", "report_progress"]

MIN_INTERVAL = 0.25
"""Seconds between two reports that are sent; the ones in between are dropped."""
_MAX_MESSAGE = 500
_TIMEOUT = 5.0

_last = 0.0
_channel: object | None = None


def report_progress(done: float, total: float | None = None, message: str | None = None) -> None:
    """Report that `done` of `total` units of work are done (`message`: what is going on).

    For example `report_progress(i, len(customers), f"customer {customer.id}")`
    in a loop. Safe to call often: at most about four reports a second are sent.
    """
    global _last, _channel
    from .bridge import BRIDGE_SOCKET_ENV, BlockingChannel

    if not os.environ.get(BRIDGE_SOCKET_ENV):
        return
    if not _number(done) or (total is not None and not _number(total)):
        return
    now = time.monotonic()
    final = total is not None and done >= total
    if now - _last < MIN_INTERVAL and not final:
        return
    _last = now
    if not isinstance(_channel, BlockingChannel):
        _channel = BlockingChannel()
    fields = {
        "kind": "progress",
        "done": float(done),
        "total": None if total is None else float(total),
        "message": None if message is None else str(message)[:_MAX_MESSAGE],
    }
    with contextlib.suppress(TransportError):  # progress never is the reason code fails
        _channel.send(fields, timeout=_TIMEOUT)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
