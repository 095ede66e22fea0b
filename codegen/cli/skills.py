"""`mcp-codegen skills list|show|rm|promote`: the skills saved beside a config.

`list`, `show` and `rm` work on the shared skills; with `--session ID` (`list
--sessions` shows them) `list` and `show` look at a live session's own skills, and
`promote NAME` moves one of those into the shared skills, which is how a session's
skill reaches other sessions.

`--config`, `--skills` and `--package` work before the subcommand and after it
(`skills list --config X`); given after it, they win.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ..package import PackageNotFound, default_root, locate_package
from ..sandbox.bridge.skills import SkillError, SkillStore, default_skills_dir, promote
from ..sandbox.bridge.skillsessions import live_sessions
from .errors import Group, exit_code, exit_codes_help, fail, print_error
from .options import config_option, json_option, package_option, skills_option, verbose_option
from .resolve import find_package, read_config

__all__ = ["skills_command"]

_F = TypeVar("_F", bound=Callable[..., Any])
_SHARED = ("config_path", "skills_dir", "package")


def _shared_options(command: _F) -> _F:
    options = [
        config_option(
            "The mcp.json whose skills these are (they live in .mcp-codegen/skills beside it)."
        ),
        skills_option("The skills directory, instead of the one beside the config."),
        package_option("The built package skills are checked against."),
        verbose_option(),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _is_skill(path: Path, name: str) -> bool:
    """Whether `path` is what save_skill writes: a module defining `name` (missing counts, to say so)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return True  # the store reports a missing skill with the names it has
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.name == name
        for node in tree.body
    )


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (
        ParameterSource.COMMANDLINE,
        ParameterSource.ENVIRONMENT,
    )


def _store(ctx: click.Context, **mine: Any) -> SkillStore:
    """The store of the group's options, each overridden by the subcommand's when given."""
    parent = ctx.parent
    chosen = dict(parent.params) if parent is not None else {}
    for name in _SHARED:
        if _given(ctx, name) or name not in chosen:
            chosen[name] = mine[name]
    config_path: Path = chosen["config_path"]
    package: Path | None = chosen["package"]
    if chosen["skills_dir"] is None and not config_path.is_file():
        # The skills live beside the config: a config that is not there is a mistake.
        read_config("skills", config_path)
    if package is not None:
        import_dir: Path | None = find_package("skills", package, config_path).import_dir
    else:
        try:
            import_dir = locate_package(None, root=default_root(config_path)).import_dir
        except PackageNotFound:
            import_dir = None  # no package: what skills import from servers is not checked
    return SkillStore(chosen["skills_dir"] or default_skills_dir(config_path), import_dir)


@click.group("skills", cls=Group, epilog=exit_codes_help("skills"))
@_shared_options
def skills_command(config_path: Path, skills_dir: Path | None, package: Path | None) -> None:
    """Functions agent code kept with save_skill(fn): list, show, remove or share them."""


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
@_shared_options
@click.pass_context
def list_command(
    ctx: click.Context, /, as_json: bool, session: str | None, sessions: bool, **shared: Any
) -> None:
    """Every skill with its summary; a broken one with what is wrong (exit status 1)."""
    store = _store(ctx, **shared)
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
@_shared_options
@click.pass_context
def show_command(ctx: click.Context, /, name: str, session: str | None, **shared: Any) -> None:
    """Print the source of skill NAME (and what is wrong with it, on stderr)."""
    store = _in_session(_store(ctx, **shared), session)
    try:
        click.echo(store.read(name), nl=False)
    except SkillError as exc:
        fail("skills", "skill", str(exc))
    for problem in store.problems(name):
        print_error(problem)


@skills_command.command("rm")
@click.argument("name")
@_shared_options
@click.pass_context
def rm_command(ctx: click.Context, /, name: str, **shared: Any) -> None:
    """Delete skill NAME: its module, which must define NAME as save_skill wrote it."""
    store = _store(ctx, **shared)
    try:
        if not _is_skill(store.path(name), name):
            fail(
                "skills",
                "skill",
                f"{store.path(name)} is not a skill (it defines no {name!r}); it was not removed",
            )
        store.remove(name)
    except SkillError as exc:
        fail("skills", "skill", str(exc))
    click.echo(f"removed skill {name!r} from {store.directory}")


@skills_command.command("promote")
@click.argument("name")
@_session_option("The session whose skill NAME to promote (needed when several hold one).")
@click.option("--replace", is_flag=True, help="Replace a shared skill of the same name.")
@_shared_options
@click.pass_context
def promote_command(
    ctx: click.Context, /, name: str, session: str | None, replace: bool, **shared: Any
) -> None:
    """Share skill NAME of a live session with every session (it is checked again first).

    Read it with `skills show NAME --session ID` before: once shared, every session
    imports it, and no sandbox can change it.
    """
    store = _store(ctx, **shared)
    try:
        chosen, path = promote(
            store.directory, name, session=session, import_dir=store.import_dir, replace=replace
        )
    except SkillError as exc:
        fail("skills", "skill", str(exc))
    click.echo(f"promoted skill {name!r} of session {chosen.id} to {path}")
