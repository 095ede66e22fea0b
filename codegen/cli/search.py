"""`mcp-codegen search`: query a built package's search index from the command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .. import __version__
from ..package import PackageNotFound, locate_package
from ..runtime.search import DETAILS, INDEX_FILENAME, SearchError, find, format_hits, index_info
from .errors import fail
from .options import json_option, package_option

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


def find_index(package: Path) -> Path:
    """The search index of a built package project (or of an import package) at `package`.

    Raises:
        SearchError: `package` holds no index, or more than one import package has one.
    """
    if (package / INDEX_FILENAME).is_file():
        return package / INDEX_FILENAME
    found = sorted(package.glob(f"*/{INDEX_FILENAME}"))
    if not found:
        raise SearchError(
            f"no {INDEX_FILENAME} in {package} or its subdirectories; "
            "build the package with `mcp-codegen build` (or pass --package DIR)"
        )
    if len(found) > 1:
        names = ", ".join(str(path.parent.name) for path in found)
        raise SearchError(
            f"{package} holds several indexed packages ({names}); pass one with --package"
        )
    return found[0]


@click.command("search")
@click.argument("query")
@package_option(
    "The built package project (its import package holds the index) "
    "[default: the one package under generated/]."
)
@click.option(
    "--skills",
    "skills_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A skills directory whose matching skills are listed first.",
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
def search_command(
    query: str,
    package: Path | None,
    skills_dir: Path | None,
    detail: str,
    limit: int,
    as_json: bool,
) -> None:
    """Find the tools of a built package that match QUERY, best first."""
    try:
        if package is None:
            package = locate_package(None).root
        index = find_index(package)
        written_by = index_info(index).get("generator_version")
        if written_by != __version__:
            raise SearchError(
                f"{index} was written by mcp-codegen {written_by}, this is {__version__}; "
                "rebuild the package with `mcp-codegen build`"
            )
        hits = find(query, limit, index_path=index, skills_dir=skills_dir)
    except PackageNotFound as exc:
        fail("search", "package", str(exc))
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
