"""Bounds on the host's work for one session: CPU time, request nesting, argument checks.

Everything a sandbox sends, and every result a server sends back on its behalf, is
hostile input to the host. The host's work on it (parsing, validating, scanning
for personal data, serializing) runs here:

- off the event loop, in a small pool of worker threads, and one piece at a time
  per session, so a session's heavy call cannot stall the loop that serves the
  others, nor take every worker;
- against a per-session CPU budget (a token bucket of CPU seconds): a session that
  has spent its budget waits, in proportion, before its next piece of work starts.

It also holds the checks that must come before a parser or a validator sees the
input: `json_depth_ok` (nesting, before `json.loads`), and an argument validator
that judges placeholders (`[EMAIL_1]`) without ever seeing the real values.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from jsonschema import validators  # type: ignore[import-untyped]

from .detectors import PLACEHOLDER

__all__ = [
    "DEFAULT_CPU_BURST",
    "DEFAULT_CPU_RATE",
    "INLINE_CODE_CHARS",
    "MAX_JSON_DEPTH",
    "CpuBudget",
    "json_depth_ok",
    "placeholder_validator",
]

T = TypeVar("T")

DEFAULT_CPU_RATE = 0.25
"""CPU seconds of host work a session earns per second of wall clock."""
DEFAULT_CPU_BURST = 2.0
"""CPU seconds a session may spend at once before it is paced."""
MAX_JSON_DEPTH = 64
"""Nesting of arrays and objects a request may have."""
INLINE_CODE_CHARS = 256
"""Code up to this long may be compiled on the event loop (`CpuBudget.run(inline=True)`):
the slowest such code measured (nested lambdas, long operator chains, 200 parentheses)
compiles in ~0.25 ms, less than a hand-over to a worker thread and back costs on two
busy cores (0.3-0.6 ms)."""
_MAX_PATTERN_INPUT = 4096
"""Longer strings are not matched against a server's `pattern` on the host (the server
still judges them): a schema's regex is the server's, and may backtrack."""
_WORKERS = 4
_BRACKETS = bytes.maketrans(b"[]{}", b"()()")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                _WORKERS, thread_name_prefix="mcp-codegen-host-work"
            )
        return _pool


def _timed(function: Callable[..., T], args: tuple[Any, ...]) -> tuple[T | None, Any, float]:
    started = time.thread_time()
    try:
        return function(*args), None, time.thread_time() - started
    except Exception as exc:  # handed back to the caller's task, with the time it took
        return None, exc, time.thread_time() - started


class CpuBudget:
    """The host CPU one session may spend on its own work, and a queue of one for it.

    Args:
        rate: CPU seconds earned per second.
        burst: CPU seconds that may be spent at once (the bucket's size).
    """

    def __init__(self, rate: float = DEFAULT_CPU_RATE, burst: float = DEFAULT_CPU_BURST):
        self.rate = rate
        self.burst = burst
        self.spent = 0.0
        """CPU seconds spent in total."""
        self.waited = 0.0
        """Seconds this session's work waited for its budget."""
        self._balance = burst
        self._stamp = time.monotonic()
        self._turn: asyncio.Lock | None = None

    def _refill(self) -> None:
        now = time.monotonic()
        self._balance = min(self.burst, self._balance + (now - self._stamp) * self.rate)
        self._stamp = now

    async def run(self, function: Callable[..., T], *args: Any, inline: bool = False) -> T:
        """`function(*args)` in a worker thread, after this session's earlier work and
        once its budget is not overdrawn; its CPU time is charged to the budget.

        `inline`: the caller knows the work is bounded below the cost of handing it
        to a thread (a fraction of a millisecond; see `INLINE_CODE_CHARS`): it runs
        on the event loop, still charged, when nothing of the session waits and its
        budget is not overdrawn (else as above).

        Raises:
            Exception: whatever `function` raised.
        """
        if self._turn is None:
            self._turn = asyncio.Lock()
        if inline and not self._turn.locked():
            self._refill()
            if self._balance >= 0:
                started = time.thread_time()
                try:
                    return function(*args)
                finally:
                    cpu = time.thread_time() - started
                    self._balance -= cpu
                    self.spent += cpu
        async with self._turn:
            self._refill()
            if self._balance < 0:
                pause = -self._balance / self.rate
                self.waited += pause
                await asyncio.sleep(pause)
                self._refill()
            loop = asyncio.get_running_loop()
            value, error, cpu = await loop.run_in_executor(_executor(), _timed, function, args)
            self._balance -= cpu
            self.spent += cpu
        if error is not None:
            raise error
        return value  # type: ignore[return-value]


def json_depth_ok(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text `data` nests arrays and objects at most `limit` deep.

    Linear, without a parser: escapes and strings are taken out (their brackets do
    not count), then innermost bracket pairs are removed, one level per round.
    Unbalanced text counts as too deep (it is not JSON either).
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return True
    # Pair every escape from the left, as JSON reads them; what is left of `"` delimits strings.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(_BRACKETS, delete=_NOT_BRACKETS)
    too_deep = b"(" * (limit + 1)
    for _ in range(limit):
        if too_deep in brackets:  # a run of openers deeper than the limit: no more rounds
            return False
        shorter = brackets.replace(b"()", b"")
        if len(shorter) == len(brackets):
            break
        brackets = shorter
        if not brackets:
            return True
    return not brackets


def _tolerant(keyword: str, check: Callable[..., Any]) -> Callable[..., Any]:
    def validate(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        if isinstance(instance, str) and (
            PLACEHOLDER.search(instance)
            or (keyword == "pattern" and len(instance) > _MAX_PATTERN_INPUT)
        ):
            return  # the server judges the real value; the host never looks at it
        yield from check(validator, value, instance, schema)

    return validate


_CONTENT_KEYWORDS = ("pattern", "enum", "const", "minLength", "maxLength", "format")


def placeholder_validator(schema: dict[str, Any]) -> Any:
    """A validator of `schema` for arguments that still hold placeholders.

    Arguments are validated before real values are restored, so no validation
    error can quote a real value. A string holding a placeholder is checked for its
    type only: its content (pattern, enum, length, format) is the real value's,
    which the server judges.

    Raises:
        jsonschema.exceptions.SchemaError: the schema itself is invalid.
    """
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    checks = {
        keyword: _tolerant(keyword, cls.VALIDATORS[keyword])
        for keyword in _CONTENT_KEYWORDS
        if keyword in cls.VALIDATORS
    }
    return validators.extend(cls, checks)(schema)
