"""Which process owns a directory, so that what a dead process left behind can be removed.

A process that dies without cleaning up (killed, or a crash) leaves its session
directories (skills, a mounted `/state`) behind. Each such directory gets a
marker naming its owner: the pid and the pid's start time (so a reused pid is
not mistaken for the owner). `stale(...)` finds the directories whose owner is
gone; only directories with a marker are ever considered, so nothing this code
did not create is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MARKER", "owner_alive", "stale", "write_marker"]

MARKER = ".mcp-codegen-owner.json"


def _start_time(pid: int) -> str | None:
    """The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def write_marker(directory: Path) -> None:
    """Record this process as the owner of `directory` (which exists)."""
    pid = os.getpid()
    marker = {"pid": pid, "start": _start_time(pid)}
    (directory / MARKER).write_text(json.dumps(marker), encoding="utf-8")


def owner_alive(directory: Path) -> bool:
    """Whether the process that wrote `directory`'s marker still runs (True if unsure)."""
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
        pid, start = int(marker["pid"]), marker.get("start")
    except FileNotFoundError:
        return True  # not ours, or not yet marked: never treated as stale
    except (OSError, ValueError, TypeError, KeyError):
        return True
    now = _start_time(pid)
    return now is not None and (start is None or now == start)


def stale(root: Path, pattern: str = "*") -> Iterator[Path]:
    """The directories under `root` matching `pattern` whose marked owner is gone."""
    with contextlib.suppress(OSError):
        for path in sorted(root.glob(pattern)):
            if path.is_dir() and (path / MARKER).is_file() and not owner_alive(path):
                yield path
