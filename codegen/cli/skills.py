"""`mcp-codegen skills list|show|rm|promote`: the skills saved beside a config.

`list`, `show` and `rm` work on the shared skills; with `--session ID` (`list
--sessions` shows them) `list` and `show` look at a live session's own skills, and
`promote NAME` moves one of those into the shared skills, which is how a session's
skill reaches other sessions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..package import PackageNotFound, locate_package
from ..sandbox.bridge.skills import SkillError, SkillStore, default_skills_dir, promote
from ..sandbox.bridge.skillsessions import live_sessions
from .errors import exit_code, fail, print_error
from .options import config_option, json_option, package_option, skills_option

__all__ = ["skills_command"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _store(ctx: click.Context) -> SkillStore:
    store = ctx.obj
    assert isinstance(store, SkillStore)
    return store


@click.group("skills")
@config_option("The mcp.json whose skills these are (they live in .mcp-codegen/skills beside it).")
@skills_option("The skills directory, instead of the one beside the config.")
@package_option("The built package skills are checked against; default: the one under generated/.")
@click.pass_context
def skills_command(
    ctx: click.Context, config_path: Path, skills_dir: Path | None, package: Path | None
) -> None:
    """Functions agent code kept with save_skill(fn): list, show, remove or share them."""
    try:
        import_dir = locate_package(package).import_dir
    except PackageNotFound:
        if package is not None:
            fail("skills", "package", f"{package}: not a package built by mcp-codegen")
        import_dir = None  # no package: what skills import from servers is not checked
    ctx.obj = SkillStore(skills_dir or default_skills_dir(config_path), import_dir)


def _session_option(help: str) -> Callable[[_F], _F]:
    return click.option("--session", "session", default=None, metavar="ID", help=help)


def _in_session(store: SkillStore, session: str | None) -> SkillStore:
    """`store` seen from live session `session` (its own skills after the shared ones)."""
    if session is None:
        return store
    found = [s for s in live_sessions(store.directory) if s.id == session]
    if not found:
        known = ", ".join(s.id for s in live_sessions(store.directory)) or "none"
        fail("skills", "skill", f"no live session {session!r} (live sessions: {known})")
    return SkillStore(store.directory, store.import_dir, session=found[0].skills)


@skills_command.command("list")
@json_option("Print one JSON document.")
@_session_option("List the shared skills and those of live session ID.")
@click.option("--sessions", "sessions", is_flag=True, help="List the live sessions' own skills.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool, session: str | None, sessions: bool) -> None:
    """Every skill with its summary; a broken one with what is wrong (exit status 1)."""
    store = _store(ctx)
    if sessions:
        _list_sessions(store, as_json)
        return
    store = _in_session(store, session)
    infos = list(store.infos())
    if as_json:
        document = [
            {
                "name": info.name,
                "summary": info.summary,
                "signature": info.entry.signature if info.entry else "",
                "path": str(info.path),
                "problems": list(info.problems),
            }
            for info in infos
        ]
        click.echo(json.dumps(document, indent=2))
    elif not infos:
        click.echo(f"no skills in {store.directory}")
    else:
        width = max(len(info.name) for info in infos)
        for info in infos:
            click.echo(f"{info.name:<{width}}  {info.summary}".rstrip())
        for info in infos:
            for problem in info.problems:
                print_error(problem)
    if any(info.broken for info in infos):
        sys.exit(exit_code("skills", "skill"))


def _list_sessions(store: SkillStore, as_json: bool) -> None:
    rows = [
        (session, sorted(p.stem for p in session.skills.glob("*.py")))
        for session in live_sessions(store.directory)
    ]
    if as_json:
        document = [
            {"session": s.id, "origin": s.origin, "created": s.created, "skills": names}
            for s, names in rows
        ]
        click.echo(json.dumps(document, indent=2))
        return
    if not any(names for _, names in rows):
        click.echo("no live session holds a skill of its own")
    for session, names in rows:
        if names:
            click.echo(f"session {session.id} ({session.origin}): {', '.join(names)}")


@skills_command.command("show")
@click.argument("name")
@_session_option("Show a skill of live session ID (before promoting it).")
@click.pass_context
def show_command(ctx: click.Context, name: str, session: str | None) -> None:
    """Print the source of skill NAME (and what is wrong with it, on stderr)."""
    store = _in_session(_store(ctx), session)
    try:
        click.echo(store.read(name), nl=False)
    except SkillError as exc:
        fail("skills", "skill", str(exc))
    for problem in store.problems(name):
        print_error(problem)


@skills_command.command("rm")
@click.argument("name")
@click.pass_context
def rm_command(ctx: click.Context, name: str) -> None:
    """Delete skill NAME."""
    store = _store(ctx)
    try:
        store.remove(name)
    except SkillError as exc:
        fail("skills", "skill", str(exc))
    click.echo(f"removed skill {name!r} from {store.directory}")


@skills_command.command("promote")
@click.argument("name")
@_session_option("The session whose skill NAME to promote (needed when several hold one).")
@click.option("--replace", is_flag=True, help="Replace a shared skill of the same name.")
@click.pass_context
def promote_command(ctx: click.Context, name: str, session: str | None, replace: bool) -> None:
    """Share skill NAME of a live session with every session (it is checked again first).

    Read it with `skills show NAME --session ID` before: once shared, every session
    imports it, and no sandbox can change it.
    """
    store = _store(ctx)
    try:
        chosen, path = promote(
            store.directory, name, session=session, import_dir=store.import_dir, replace=replace
        )
    except SkillError as exc:
        fail("skills", "skill", str(exc))
    click.echo(f"promoted skill {name!r} of session {chosen.id} to {path}")
