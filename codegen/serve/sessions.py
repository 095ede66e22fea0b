"""One sandbox, and so one workspace, per MCP session.

The sandbox's `/workspace` lives as long as its sandbox, so each session gets
an `Executor` of its own on its first `execute_code`, and the files its code
writes persist between its calls and are seen by no other session. The executor
comes from a `WarmPool`: started ahead when the pool has one (a warm first
execution), else started then (about a second). When the session ends, its
executor is closed in the background, which deletes the sandbox and its files;
it never serves another session.

All executors share one host transport: the configured servers are started once
for the whole `serve` process, not once per session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable

from ..sandbox.executor import Executor
from ..sandbox.warmpool import WarmPool

__all__ = ["Workspaces"]


class Workspaces:
    """The live executors, by session key."""

    def __init__(self, pool: WarmPool, bind: Callable[[Hashable, Executor], None] | None = None):
        self.pool = pool
        self._bind = bind
        self._executors: dict[Hashable, Executor] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._released: set[Hashable] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._executors)

    async def get(self, key: Hashable) -> Executor:
        """The executor of session `key`, started on first use.

        Raises:
            SandboxError: the sandbox cannot start (the failure is not kept: the
                next call tries again).
        """
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            executor = self._executors.get(key)
            if executor is None:
                executor = await self.pool.take()  # a failed start has closed itself
                if self._bind is not None:
                    self._bind(key, executor)  # made before the session: now it is its own
                if key in self._released or self._closed:
                    # The session ended while its sandbox was starting.
                    self._released.discard(key)
                    self.close_later(executor)
                    raise RuntimeError("the session has ended")
                self._executors[key] = executor
            return executor

    def peek(self, key: Hashable | None) -> Executor | None:
        """The executor of session `key` if it has one already (none is started)."""
        return self._executors.get(key) if key is not None else None

    def close_later(self, executor: Executor) -> None:
        """Close `executor` in the background (safe in a task being cancelled)."""
        task = asyncio.get_running_loop().create_task(executor.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def release(self, key: Hashable) -> None:
        """Forget session `key` and delete its sandbox in the background."""
        lock = self._locks.pop(key, None)
        executor = self._executors.pop(key, None)
        if executor is None:
            if lock is not None and lock.locked():
                self._released.add(key)
            return
        self.close_later(executor)

    async def aclose(self) -> None:
        """Close every executor, the pool's too, and wait until each sandbox is deleted."""
        self._closed = True
        for key in list(self._executors):
            self.release(key)
        await self.pool.aclose()
        while self._closing:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._closing), return_exceptions=True)
