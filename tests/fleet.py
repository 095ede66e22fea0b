"""Configs of many real stdio servers over recorded tools, and checks that none outlives a command.

Tests and benchmarks share them. Each entry starts `tests/servers/recorded.py`
(an SDK server listing one recorded server's tools) with this interpreter.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SERVERS = Path(__file__).resolve().parent / "servers"
TOUCAN = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "toucan-tools-dev.jsonl"
)
MARK_ENV = "FLEET_MARK"

__all__ = ["MARK_ENV", "TOUCAN", "alive", "fleet_servers", "marked_processes", "recorded_entry"]


def recorded_entry(server: str, tools: Path = TOUCAN, **env: str) -> dict[str, object]:
    """An mcp.json entry that serves the recorded tools of `server` from `tools` (JSONL)."""
    entry: dict[str, object] = {
        "command": sys.executable,
        "args": [str(SERVERS / "recorded.py"), str(tools), server],
    }
    if env:
        entry["env"] = env
    return entry


def recorded_servers(tools: Path = TOUCAN) -> dict[str, int]:
    """The servers of a recorded JSONL, with their number of tools, by name."""
    counts: dict[str, int] = {}
    for line in tools.read_text(encoding="utf-8").splitlines():
        name = json.loads(line)["server"]
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def fleet_servers(count: int, tools: Path = TOUCAN, mark: str = "") -> dict[str, dict[str, object]]:
    """`count` entries, one per recorded server of `tools` (the first by name), keyed by it.

    With `mark`, each server gets `FLEET_MARK=<mark>` in its environment, for `marked_processes`.
    """
    names = list(recorded_servers(tools))
    if count > len(names):
        raise ValueError(f"{tools} has {len(names)} servers, not {count}")
    env = {MARK_ENV: mark} if mark else {}
    return {name: recorded_entry(name, tools, **env) for name in names[:count]}


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (dead, waiting to be reaped).

    A leader thread shows as a zombie as soon as it exits, while the process's other
    threads may still be exiting; until they are gone its parent cannot see the exit
    (waitid), so it still counts as alive. (A test that waited for a server's death
    and then called it raced the transport's own view of that death.)
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" or threads > 1


def marked_processes(mark: str) -> list[int]:
    """The live processes whose environment holds `FLEET_MARK=<mark>`."""
    needle = f"{MARK_ENV}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry)):
            found.append(int(entry))
    return found
