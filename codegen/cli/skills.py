"""`mcp-codegen skills list|show|rm`: the skills saved beside a config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..package import PackageNotFound, locate_package
from ..sandbox.bridge.skills import SkillError, SkillStore, default_skills_dir
from .errors import exit_code, fail, print_error
from .options import config_option, json_option, package_option, skills_option

__all__ = ["skills_command"]


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
    """Functions agent code kept with save_skill(fn): list, show or remove them."""
    try:
        import_dir = locate_package(package).import_dir
    except PackageNotFound:
        if package is not None:
            fail("skills", "package", f"{package}: not a package built by mcp-codegen")
        import_dir = None  # no package: what skills import from servers is not checked
    ctx.obj = SkillStore(skills_dir or default_skills_dir(config_path), import_dir)


@skills_command.command("list")
@json_option("Print one JSON document.")
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """Every skill with its summary; a broken one with what is wrong (exit status 1)."""
    store = _store(ctx)
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


@skills_command.command("show")
@click.argument("name")
@click.pass_context
def show_command(ctx: click.Context, name: str) -> None:
    """Print the source of skill NAME (and what is wrong with it, on stderr)."""
    store = _store(ctx)
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
