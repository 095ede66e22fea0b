"""`mcp-codegen search`: query a built package's search index from the command line.

Saved skills that match come first, as in the sandbox's `search_tools`: those of
`--skills DIR`, by default the ones beside the config (`.mcp-codegen/skills`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .. import __version__
from ..package import BuiltPackage
from ..runtime.search import (
    DETAILS,
    INDEX_FILENAME,
    SearchError,
    find,
    format_hits,
    index_info,
    skill_hits,
)
from ..sandbox.bridge.skills import default_skills_dir
from .errors import Command, exit_codes_help, fail
from .options import config_option, json_option, package_option, skills_option, verbose_option
from .resolve import find_package

__all__ = ["find_index", "search_command"]

_JSON_FIELDS = {
    "name": ("import_path", "server", "tool", "score"),
    "summary": ("import_path", "server", "tool", "title", "summary", "score"),
    "full": (
        "import_path",
        "server",
        "tool",
        "title",
        "summary",
        "signature",
        "docstring",
        "score",
    ),
}


def find_index(package: BuiltPackage) -> Path:
    """The search index of a built package, written by this version of mcp-codegen.

    Raises:
        SearchError: the package has no index, or another version wrote it.
    """
    index = package.import_dir / INDEX_FILENAME
    if not index.is_file():
        raise SearchError(
            f"{package.root} has no search index ({INDEX_FILENAME}); rebuild it with "
            "`mcp-codegen build`"
        )
    written_by = index_info(index).get("generator_version")
    if written_by != __version__:
        raise SearchError(
            f"{index} was written by mcp-codegen {written_by}, this is {__version__}; "
            "rebuild the package with `mcp-codegen build`"
        )
    return index


@click.command("search", cls=Command, epilog=exit_codes_help("search"))
@click.argument("query")
@package_option("The built package whose tools are searched.")
@config_option("The mcp.json beside which the package and skills are looked for.")
@skills_option(
    "The skills directory whose matching skills are listed first "
    "[default: .mcp-codegen/skills beside the config]."
)
@click.option(
    "--detail",
    type=click.Choice(DETAILS),
    default="summary",
    show_default=True,
    help="name: import paths; summary: plus one line each; full: plus signature and docstring.",
)
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True)
@json_option("Print the hits as a JSON list.")
@verbose_option()
def search_command(
    query: str,
    package: Path | None,
    config_path: Path,
    skills_dir: Path | None,
    detail: str,
    limit: int,
    as_json: bool,
) -> None:
    """Find the tools (and saved skills) of a built package that match QUERY, best first."""
    skills = skills_dir or default_skills_dir(config_path)
    try:
        skill_hits(query, skills)  # reads the query first: an unusable one is a usage error
    except SearchError as exc:
        fail("search", "usage", str(exc))
    built = find_package("search", package, config_path)
    try:
        hits = find(query, limit, index_path=find_index(built), skills_dir=skills)
    except SearchError as exc:
        fail("search", "search", str(exc))
    if as_json:
        fields = _JSON_FIELDS[detail]
        rows = [{key: value for key, value in asdict(hit).items() if key in fields} for hit in hits]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif hits:
        click.echo(format_hits(hits, detail), nl=False)
    else:
        click.echo(f"no tool matches {query!r}; try other words", err=True)
