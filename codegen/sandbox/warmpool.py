"""Sessions started before they are asked for, so a new session's first execution is warm.

Starting a sandbox costs about a second of CPU (`runsc`, the interpreter,
pydantic, the package) however small the code, and a new session's first
`execute_code` used to wait for it. A `WarmPool` keeps `size` executors started
ahead. Each one is a whole session of its own, made for it alone: its sandbox,
its bridge socket and token, its `/workspace` and `/tmp`, its `/state` tmpfs
and its skills directory. They are made before the session exists because
gVisor binds a sandbox's mounts only when `runsc run` starts it: a tmpfs
mounted on the host over a bound directory afterwards is not seen inside, and
the code's writes go to the directory beneath it, past the quota (measured with
runsc 20221219). So nothing is bound at hand-off. `take()` gives an executor to
exactly one caller and starts a replacement in the background; an executor
never goes back to the pool, so no sandbox, workspace or directory is ever used
by two sessions.

Measured before choosing this (bench/results/serve.md): a gVisor checkpoint
of a warm sandbox restores (runsc 20221219, ptrace) in 0.4-1.4 s, 40-70% of a
cold start, and the restored sandbox holds about 55 MiB more host memory; a
started sandbox waiting in a pool answers a new session's first execution in
tens of milliseconds.

Each executor in the pool holds what a session holds: its tmpfs reservation
against the budget for all sessions (so a full budget leaves the pool empty
rather than refusing a session), and an idle sandbox's host memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable

from .executor import Executor

__all__ = ["WarmPool"]

_log = logging.getLogger(__name__)


class WarmPool:
    """Executors started ahead, each handed to one session.

    Args:
        factory: makes a new, unstarted executor (one session's).
        size: executors kept started or starting; 0 starts each on demand.
        refill: start a replacement for each one taken (False: the pool is
            used up, e.g. for the single session of a stdio server).
    """

    def __init__(
        self,
        factory: Callable[[], Executor],
        size: int,
        *,
        refill: bool = True,
        starts_at_once: int | None = None,
    ):
        self._factory = factory
        self.size = max(0, size)
        self.refill = refill
        # A burst of new sessions on a small machine: sandboxes starting all at once
        # share the CPU and each takes longer than its start timeout. In turns, the
        # first ones are ready soon and none times out.
        self._starts = asyncio.Semaphore(starts_at_once or max(2, os.cpu_count() or 2))
        self._entries: deque[asyncio.Task[Executor]] = deque()
        self._closed = False
        self._warned = False

    def __len__(self) -> int:
        """Executors ready or starting."""
        return len(self._entries)

    def fill(self) -> None:
        """Start executors in the background until `size` are ready or starting.

        Must be called from the event loop. A start that fails leaves the pool;
        the next `fill()` (after a `take()`) tries again.
        """
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        while len(self._entries) < self.size:
            task = loop.create_task(self._start(), name="mcp-codegen-warm-sandbox")
            self._entries.append(task)
            task.add_done_callback(self._started)

    async def _start(self) -> Executor:
        async with self._starts:
            executor = self._factory()
            await executor.start()  # on failure it has closed itself
            return executor

    def _started(self, task: asyncio.Task[Executor]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        with contextlib.suppress(ValueError):
            self._entries.remove(task)
        if not self._warned:
            self._warned = True  # a session started on demand reports the reason itself
            _log.warning("a sandbox could not be started ahead: %s", error)

    def _pick(self) -> asyncio.Task[Executor]:
        """The entry to hand out: a ready one if any, else the one started first."""
        for task in self._entries:
            if task.done() and not task.cancelled() and task.exception() is None:
                self._entries.remove(task)
                return task
        return self._entries.popleft()

    async def take(self) -> Executor:
        """A started executor for a new session: a warm one if there is one.

        Raises:
            SandboxError: no executor was ready and one cannot be started
                (e.g. gVisor is unusable, or the sessions' tmpfs budget is full).
            RuntimeError: the pool is closed.
        """
        if self._closed:
            raise RuntimeError("the server is shutting down")
        while self._entries:
            task = self._pick()
            if self.refill:
                self.fill()
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.cancelled():
                    # Our caller went away: the executor, unused, is the pool's again.
                    if self._closed:
                        task.add_done_callback(self._close_unused)
                    else:
                        self._entries.appendleft(task)
                raise
            except Exception:
                continue  # that start failed: take the next, or start one here
        executor = await self._start()
        if self.refill:
            self.fill()
        return executor

    def _close_unused(self, task: asyncio.Task[Executor]) -> None:
        """Close an executor that was taken but never handed over, once it has started."""
        if not task.cancelled() and task.exception() is None:
            self._close_in_background(task.result())

    def _close_in_background(self, executor: Executor) -> None:
        task = asyncio.get_running_loop().create_task(executor.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    async def aclose(self) -> None:
        """Close every executor of the pool, after the ones starting have started.

        Starts are waited for rather than cancelled: a start ends within its own
        timeout, and a started executor closes its sandbox and directories fully.
        """
        self._closed = True
        entries, self._entries = list(self._entries), deque()
        if entries:
            await asyncio.wait(entries)
        closing = [
            task.result().aclose()
            for task in entries
            if not task.cancelled() and task.exception() is None
        ]
        await asyncio.gather(*closing, return_exceptions=True)
        while _closing:
            await asyncio.gather(*list(_closing), return_exceptions=True)


_closing: set[asyncio.Task[None]] = set()
