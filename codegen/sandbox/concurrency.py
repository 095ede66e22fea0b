"""The host's checker processes (the skills checker, the type check): their bounds, and
how many run at once.

Both read hostile code, so each runs in a process of its own with limits on time,
CPU and memory; the bounds of both are in this one table. Together they share one
bound per event loop (`CHECKS_AT_ONCE`), so a burst of executions and saved skills
cannot start more checkers than the host has cores for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CHECKS_AT_ONCE",
    "SKILL_CHECK",
    "TYPE_CHECK",
    "CheckerBounds",
    "Finished",
    "PerLoopLimit",
    "run_checker",
]


@dataclass(frozen=True)
class CheckerBounds:
    """What one checker process may use."""

    seconds: float
    """Wall clock; the process is killed past it."""
    cpu_seconds: int
    """CPU time (RLIMIT_CPU)."""
    memory_mb: int
    """Address space (RLIMIT_AS)."""


SKILL_CHECK = CheckerBounds(seconds=10.0, cpu_seconds=5, memory_mb=512)
"""`bridge.skillcheck`: CPython's parser over a skill of at most 256 KiB."""
TYPE_CHECK = CheckerBounds(seconds=10.0, cpu_seconds=8, memory_mb=1024)
"""ty (`precheck`): it checks typical agent code in under 256 MB of address space."""
CHECKS_AT_ONCE = 2
"""Checker processes of either kind at once, per event loop."""


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


@dataclass(frozen=True)
class Finished:
    """A checker process that ended within its time."""

    returncode: int | None
    stdout: bytes
    stderr: bytes


_checks = PerLoopLimit(CHECKS_AT_ONCE)
_reaping: set[asyncio.Task[int]] = set()


async def run_checker(
    command: Sequence[str],
    seconds: float,
    *,
    input: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Finished | None:
    """Run `command` in a session of its own, fed `input`; None if it passed `seconds`
    (it is then killed and reaped).

    At most `CHECKS_AT_ONCE` run at a time. When the caller is cancelled the process
    is killed at once and reaped in the background (a task being cancelled may not
    await).

    Raises:
        OSError: the command cannot start.
    """
    async with _checks.get():
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        try:
            output, errors = await asyncio.wait_for(process.communicate(input), seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return None
        except BaseException:  # cancelled: the work that asked is over
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            _reaping.add(task := asyncio.get_running_loop().create_task(process.wait()))
            task.add_done_callback(_reaping.discard)
            raise
    return Finished(process.returncode, output, errors)
