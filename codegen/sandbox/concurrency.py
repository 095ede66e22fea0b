"""How many checker processes run at once: a bound per event loop, shared by its tasks."""

from __future__ import annotations

import asyncio

__all__ = ["PerLoopLimit"]


class PerLoopLimit:
    """At most `size` holders at once in this process, per event loop.

    A semaphore belongs to the loop it was first awaited in, and tests and
    commands run several loops in one process, so each loop gets its own.
    """

    def __init__(self, size: int):
        self.size = size
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def get(self) -> asyncio.Semaphore:
        """The running loop's semaphore (`async with limit.get(): ...`)."""
        loop = asyncio.get_running_loop()
        for known in [known for known in self._semaphores if known.is_closed()]:
            del self._semaphores[known]
        return self._semaphores.setdefault(loop, asyncio.Semaphore(self.size))
