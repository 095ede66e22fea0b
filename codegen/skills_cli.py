"""`mcp-codegen skills list|show|rm`: the skills saved beside a config."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .package import PackageNotFound, locate_package
from .skills import SkillError, SkillStore, default_skills_dir

__all__ = ["skills_command"]


def _store(ctx: click.Context) -> SkillStore:
    store = ctx.obj
    assert isinstance(store, SkillStore)
    return store


@click.group("skills")
@click.option(
    "--config",
    default="mcp.json",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The mcp.json whose skills these are (they live in .mcp-codegen/skills beside it).",
)
@click.option(
    "--skills",
    "skills_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The skills directory, instead of the one beside the config.",
)
@click.option(
    "--package",
    "package_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The built package skills are checked against; default: the one under generated/.",
)
@click.pass_context
def skills_command(
    ctx: click.Context, config: Path, skills_dir: Path | None, package_dir: Path | None
) -> None:
    """Functions agent code kept with save_skill(fn): list, show or remove them."""
    try:
        import_dir = locate_package(package_dir).import_dir
    except PackageNotFound:
        if package_dir is not None:
            raise click.ClickException(
                f"{package_dir}: not a package built by mcp-codegen"
            ) from None
        import_dir = None  # no package: what skills import from servers is not checked
    ctx.obj = SkillStore(skills_dir or default_skills_dir(config), import_dir)


@skills_command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
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
                click.echo(f"error: {problem}", err=True)
    if any(info.broken for info in infos):
        ctx.exit(1)


@skills_command.command("show")
@click.argument("name")
@click.pass_context
def show_command(ctx: click.Context, name: str) -> None:
    """Print the source of skill NAME (and what is wrong with it, on stderr)."""
    store = _store(ctx)
    try:
        click.echo(store.read(name), nl=False)
    except SkillError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in store.problems(name):
        click.echo(f"error: {problem}", err=True)


@skills_command.command("rm")
@click.argument("name")
@click.pass_context
def rm_command(ctx: click.Context, name: str) -> None:
    """Delete skill NAME."""
    store = _store(ctx)
    try:
        store.remove(name)
    except SkillError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"removed skill {name!r} from {store.directory}")
