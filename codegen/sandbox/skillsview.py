"""`/skills` in the sandbox: one read-only directory of links to every skill the session imports.

The skills live in two host directories (the shared ones, and the session's own),
both bound into the sandbox where `import skills.x` finds them. Agents that follow
the code-execution pattern also look for them with `ls /skills` and `cat
/skills/x.py`, so a directory of the session's own, bound at `/skills`, holds a
link per skill to where the sandbox sees it (a shared skill wins over a session's
skill of the same name, as it does on import). It is refreshed on the host
before each execution, so a skill saved or promoted since shows up; `SkillsView`
does so only when a skills directory changed (two `stat`s on the execution's
path instead of a scan in a worker thread).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .bundle import SESSION_SKILLS_PATH, SKILLS_PATH

__all__ = ["SkillsView", "refresh_skills_view"]

_SETTLED_NS = 1_000_000_000
"""A directory changed less than this before a refresh may change again within the same
tick of the file system's clock without its mtime moving: it is looked at again."""


def _skills(directory: Path | None) -> set[str]:
    if directory is None:
        return set()
    try:
        return {
            entry.name
            for entry in os.scandir(directory)
            if entry.name.endswith(".py") and entry.name[:-3].isidentifier() and entry.is_file()
        }
    except OSError:
        return set()


def refresh_skills_view(view: Path, shared: Path | None, session: Path | None) -> None:
    """Make `view` hold exactly one link per skill of `shared` and `session`.

    Raises:
        OSError: `view` cannot be written.
    """
    wanted = {name: f"{SESSION_SKILLS_PATH}/skills/{name}" for name in _skills(session)}
    wanted |= {name: f"{SKILLS_PATH}/skills/{name}" for name in _skills(shared)}
    for entry in os.scandir(view):
        if wanted.get(entry.name) != (os.readlink(entry.path) if entry.is_symlink() else None):
            os.unlink(entry.path)
    for name, target in wanted.items():
        link = view / name
        if not link.is_symlink():
            link.symlink_to(target)


def _mtime_ns(directory: Path | None) -> int | None:
    if directory is None:
        return None
    try:
        return os.stat(directory).st_mtime_ns
    except OSError:
        return None


class SkillsView:
    """The `/skills` view of one session, refreshed when its skills directories change.

    A skill saved, promoted, or removed changes its directory's mtime; a file
    rewritten in place does not, and needs no new link.

    Args:
        view: the session's view directory (bound at `/skills`).
        shared: the shared skills directory, if any.
        session: the session's own skills directory, if any.
    """

    def __init__(self, view: Path, shared: Path | None, session: Path | None):
        self.view = view
        self.shared = shared
        self.session = session
        self._seen: tuple[int | None, int | None] | None = None

    def stale(self) -> bool:
        """Whether a skills directory changed since the last `refresh` (two `stat`s)."""
        return self._seen is None or self._seen != (
            _mtime_ns(self.shared),
            _mtime_ns(self.session),
        )

    def refresh(self) -> None:
        """Make the view match the directories now.

        Raises:
            OSError: the view cannot be written.
        """
        seen = (_mtime_ns(self.shared), _mtime_ns(self.session))  # before the scan: a change
        # during it is seen next time
        refresh_skills_view(self.view, self.shared, self.session)
        recent = time.time_ns() - _SETTLED_NS
        settled = all(stamp is None or stamp < recent for stamp in seen)
        self._seen = seen if settled else None
