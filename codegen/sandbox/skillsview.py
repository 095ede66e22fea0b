"""`/skills` in the sandbox: one read-only directory of links to every skill the session imports.

The skills live in two host directories (the shared ones, and the session's own),
both bound into the sandbox where `import skills.x` finds them. Agents that follow
the code-execution pattern also look for them with `ls /skills` and `cat
/skills/x.py`, so a directory of the session's own, bound at `/skills`, holds a
link per skill to where the sandbox sees it (a shared skill wins over a session's
skill of the same name, as it does on import). It is refreshed on the host
before each execution, so a skill saved or promoted since shows up.
"""

from __future__ import annotations

import os
from pathlib import Path

from .bundle import SESSION_SKILLS_PATH, SKILLS_PATH

__all__ = ["refresh_skills_view"]


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
