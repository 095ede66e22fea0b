"""`serve --log-level`: one line per event on stderr, for a person watching a running server.

    2026-11-30T14:41:28.353Z INFO session open session=s-3f2a9c1d0b7e transport=http
    2026-11-30T14:41:29.120Z INFO execution session=s-3f2a9c1d0b7e outcome=ok duration_ms=41.2 tool_calls=2
    2026-11-30T14:41:30.004Z WARNING security bridge_rejected session=s-3f2a9c1d0b7e reason=oversized

Levels: `debug` adds each tool call, search and module read; `info` sessions
and executions; `warning` (the default) security events that point at an
attack (bad tokens, oversized or malformed requests, rejected skills) and limit
hits; `error` only failures of the server itself. Values are names, numbers and
outcomes only, never what a session sent or received.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

__all__ = ["LEVELS", "LOGGER", "configure_logging", "line"]

LEVELS = ("debug", "info", "warning", "error")
LOGGER = logging.getLogger("mcp_codegen")


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def configure_logging(level: str) -> logging.Logger:
    """Send mcp-codegen's event lines at `level` and above to stderr (once per process)."""
    LOGGER.setLevel(level.upper())
    LOGGER.propagate = False
    if not LOGGER.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(message)s"))
        LOGGER.addHandler(handler)
    return LOGGER


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.3g}"
    text = str(value)
    # Names are ours or from the snapshot; anything else is quoted, so a line stays one line.
    if not text or any(ch.isspace() or ch in '"=' or not ch.isprintable() for ch in text):
        return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    return text


def line(event: str, **fields: Any) -> str:
    """`event key=value ...`, leaving out fields that are None."""
    parts = [event] + [
        f"{key}={_value(value)}" for key, value in fields.items() if value is not None
    ]
    return " ".join(parts)
