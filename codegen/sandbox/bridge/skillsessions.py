"""Where a session's own skills live on the host, and how a person shares one.

A skill saved from a session is visible to that session only: it goes into the
session's own directory, `<skills>.sessions/<id>/skills/` beside the shared
skills directory (by default `.mcp-codegen/skills.sessions/` beside the config),
which is bound read-only into that session's sandbox and no other. The directory
is removed when the session ends, and by the next session of any process once
its owner has died (each one carries an owner marker; see `owner`).

Sharing is a deliberate step outside the sandbox: `mcp-codegen skills promote
NAME` (`promote`) checks the skill again and moves it into the shared
directory, which every session imports and none can write.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..owner import MARKER, owner_alive, stale, write_marker

__all__ = [
    "SessionSkills",
    "close_session",
    "live_sessions",
    "open_session",
    "sessions_root",
    "sweep_sessions",
]

_INFO = "session.json"


def sessions_root(shared: Path) -> Path:
    """The directory of every session's own skills, beside the shared directory `shared`."""
    return shared.with_name(f"{shared.name}.sessions")


@dataclass(frozen=True)
class SessionSkills:
    """One session's skills directory."""

    id: str
    path: Path
    """`<root>/<id>`: the marker and the session's description."""
    origin: str = ""
    """What opened it (`serve-http`, `serve-stdio`, `run`)."""
    created: float = 0.0

    @property
    def skills(self) -> Path:
        """The skills themselves (`NAME.py`), bound into the session's sandbox."""
        return self.path / "skills"


def open_session(shared: Path, origin: str) -> SessionSkills:
    """Make a fresh, empty skills directory for a new session of this process.

    Directories left by processes that died are removed first.

    Raises:
        OSError: it cannot be made.
    """
    sweep_sessions(shared)
    root = sessions_root(shared)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    session_id = secrets.token_hex(4)
    path = root / session_id
    path.mkdir(mode=0o700)
    write_marker(path)
    created = time.time()
    info = {"id": session_id, "origin": origin, "created": created}
    (path / _INFO).write_text(json.dumps(info), encoding="utf-8")
    # Only this directory is bound into the sandbox, where uid 65534 reads it.
    (path / "skills").mkdir(mode=0o755)
    os.chmod(path / "skills", 0o755)
    return SessionSkills(session_id, path, origin, created)


def close_session(session: SessionSkills) -> None:
    """Remove a session's directory with the skills it did not get promoted."""
    if (session.path / MARKER).is_file():
        shutil.rmtree(session.path, ignore_errors=True)


def sweep_sessions(shared: Path) -> list[Path]:
    """Remove the session directories whose owning process is gone; the ones removed."""
    removed = []
    for path in stale(sessions_root(shared)):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def live_sessions(shared: Path) -> list[SessionSkills]:
    """The sessions of live processes that have a skills directory beside `shared`, oldest first."""
    found = []
    root = sessions_root(shared)
    with contextlib.suppress(OSError):
        for path in root.iterdir():
            if not (path / MARKER).is_file() or not owner_alive(path):
                continue
            try:
                info = json.loads((path / _INFO).read_text(encoding="utf-8"))
                origin, created = str(info.get("origin", "")), float(info.get("created", 0))
            except (OSError, ValueError, TypeError):
                origin, created = "", 0.0
            found.append(SessionSkills(path.name, path, origin, created))
    return sorted(found, key=lambda session: (session.created, session.id))
