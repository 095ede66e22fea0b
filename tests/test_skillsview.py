"""`/skills`'s view is rebuilt only when a skills directory changed (sandbox.skillsview)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from codegen.sandbox.bundle import SESSION_SKILLS_PATH, SKILLS_PATH
from codegen.sandbox.skillsview import SkillsView


def _links(view: Path) -> dict[str, str]:
    return {entry.name: os.readlink(entry) for entry in view.iterdir()}


def _age(directory: Path, seconds: float) -> None:
    """Make `directory`'s mtime `seconds` old (as if it had been still since)."""
    then = time.time() - seconds
    os.utime(directory, (then, then))


def test_the_view_follows_saved_promoted_and_removed_skills(tmp_path: Path) -> None:
    shared, session, view = tmp_path / "shared", tmp_path / "session", tmp_path / "view"
    for directory in (shared, session, view):
        directory.mkdir()
    (shared / "report.py").write_text("def report(): ...\n", encoding="utf-8")
    _age(shared, 10)
    _age(session, 10)
    skills = SkillsView(view, shared, session)
    assert skills.stale()
    skills.refresh()
    assert _links(view) == {"report.py": f"{SKILLS_PATH}/skills/report.py"}
    assert not skills.stale()  # nothing changed: no scan on the next execution's path
    (session / "mine.py").write_text("def mine(): ...\n", encoding="utf-8")  # save_skill
    assert skills.stale()
    skills.refresh()
    assert _links(view)["mine.py"] == f"{SESSION_SKILLS_PATH}/skills/mine.py"
    (shared / "report.py").unlink()  # removed (or promoted away)
    assert skills.stale()
    skills.refresh()
    assert set(_links(view)) == {"mine.py"}


def test_a_change_in_the_same_clock_tick_is_not_missed(tmp_path: Path) -> None:
    """A directory changed just before a refresh may change again without its mtime
    moving (a coarse file-system clock): it is looked at again until it has settled."""
    session, view = tmp_path / "session", tmp_path / "view"
    session.mkdir()
    view.mkdir()
    skills = SkillsView(view, None, session)
    skills.refresh()
    stamp = session.stat().st_mtime_ns
    (session / "late.py").write_text("def late(): ...\n", encoding="utf-8")
    os.utime(session, ns=(stamp, stamp))  # the same tick: the mtime did not move
    assert skills.stale()
    skills.refresh()
    assert set(_links(view)) == {"late.py"}
