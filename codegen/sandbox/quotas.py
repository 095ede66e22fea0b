"""What one session may hold (the sizes of its file systems and skills), and one client.

Every place a session can write has a bound, and the defaults are safe on their
own. They live in one small dataclass, `Quotas`, so a policy (a future `sandbox`
section of `mcp.json`, a command-line option) only replaces fields of it.

- `/workspace` and `/tmp` are tmpfs inside gVisor (`size=` is enforced by gVisor:
  a write past it fails with ENOSPC);
- `/state` is a tmpfs mounted on the host per session (`size=` and `nr_inodes=`),
  bound into the sandbox, so it survives sandbox restarts and a write past either
  bound fails with ENOSPC in the code, never on the host's disk;
- skills: a count and a byte total per session, and a size per skill.

All three file systems live in memory, so a process holding many sessions also
keeps a `TmpfsBudget`: the sum of every live session's tmpfs sizes may not pass a
share of the machine's memory, and a session that would pass it is refused at
its start, with a message saying so.

The defaults (192 + 64 + 64 MiB = 320 MiB of tmpfs per session) let `serve`'s
default 32 sessions reserve 10 GiB, under half of a 24 GiB machine.

`ServeLimits` holds what one client of `serve` may hold (sessions, requests in
flight, idle time); see `serve.limits`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .errors import SandboxError

__all__ = [
    "MIB",
    "QuotaError",
    "Quotas",
    "ServeLimits",
    "TmpfsBudget",
    "machine_memory_bytes",
    "tmpfs_budget",
]

MIB = 1024 * 1024


class QuotaError(SandboxError):
    """A session would pass a quota (at its start, or when it saves a skill)."""


@dataclass(frozen=True)
class Quotas:
    """Per-session bounds on disk and memory; every field has a safe default."""

    workspace_mb: int = 192
    """`/workspace`: a tmpfs inside the sandbox."""
    tmp_mb: int = 64
    """`/tmp`: a tmpfs inside the sandbox."""
    state_mb: int = 64
    """`/state`: a tmpfs on the host, kept across the session's executions."""
    state_files: int = 4096
    """Files and directories in `/state` (the tmpfs's inodes)."""
    skills: int = 32
    """Skills one session may hold."""
    skill_bytes: int = 64 * 1024
    """The largest source of one skill."""
    skills_bytes: int = 1024 * 1024
    """The sources of all of one session's skills together."""
    tmpfs_share: float = 0.5
    """The share of the machine's memory that all sessions' tmpfs together may reserve."""

    @property
    def tmpfs_bytes(self) -> int:
        """What one session reserves of the tmpfs budget: its three file systems at full size."""
        return (self.workspace_mb + self.tmp_mb + self.state_mb) * MIB


@dataclass(frozen=True)
class ServeLimits:
    """Bounds on what clients hold of `serve` (see `serve.limits`); every field has a safe default."""

    max_sessions: int = 32
    """Sessions (each with a sandbox) at once, over HTTP."""
    sessions_per_client: int = 8
    """Sessions one client address may hold at once, over HTTP."""
    requests_per_session: int = 8
    """Requests of one session in flight (answers not yet written) at once."""
    idle_timeout: float = 10 * 60
    """Seconds without a request after which an HTTP session ends. An agent's turn takes
    seconds to a few minutes; ten minutes covers a person's pause too, and gives a
    session's slot, sandbox and memory back three times sooner than the SDK's 30."""


def machine_memory_bytes() -> int:
    """The machine's memory (`MemTotal`), or 8 GiB if it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 * 1024 * MIB


class TmpfsBudget:
    """The tmpfs bytes that live sessions of this process have reserved, against a ceiling."""

    def __init__(self, ceiling: int):
        self.ceiling = ceiling
        self.reserved = 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> None:
        """Take `size` bytes of the budget for a session starting now.

        Raises:
            QuotaError: the budget would be passed; the message says by how much.
        """
        with self._lock:
            if self.reserved + size > self.ceiling:
                raise QuotaError(
                    f"no room for another session: its file systems ({size // MIB} MiB of "
                    f"tmpfs) would pass the budget of {self.ceiling // MIB} MiB for all "
                    f"sessions ({self.reserved // MIB} MiB in use); end a session, or lower "
                    "the per-session sizes"
                )
            self.reserved += size

    def release(self, size: int) -> None:
        """Give back what a session that ended had reserved."""
        with self._lock:
            self.reserved = max(0, self.reserved - size)


_budgets: dict[float, TmpfsBudget] = {}
_budgets_lock = threading.Lock()


def tmpfs_budget(share: float) -> TmpfsBudget:
    """This process's budget for `share` of the machine's memory (one per share)."""
    with _budgets_lock:
        budget = _budgets.get(share)
        if budget is None:
            budget = _budgets[share] = TmpfsBudget(int(machine_memory_bytes() * share))
        return budget
