"""The `mcp-codegen` command line: the group, and where each command lives.

One module per command group: `build`, `drift` (check, diff), `search`,
`skills`, `run` (run, exec), `serve` and `auth` (login, logout); the options they share are declared in
`options`, and `errors` turns every error into one line and an exit code.
"""

from __future__ import annotations

import click

from .. import __version__
from .auth import login_command, logout_command
from .build import build_command
from .drift import check_command, diff_command
from .run import exec_command, run_command
from .search import search_command
from .serve import serve_command
from .skills import skills_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcp-codegen")
def main() -> None:
    """Compile MCP servers into a typed Python package, and run code against it."""


for _command in (
    build_command,
    search_command,
    serve_command,
    skills_command,
    check_command,
    diff_command,
    run_command,
    exec_command,
    login_command,
    logout_command,
):
    main.add_command(_command)
