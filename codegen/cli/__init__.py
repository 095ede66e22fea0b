"""The `mcp-codegen` command line: the group, and where each command lives.

One module per command group: `init`, `build`, `drift` (check, diff), `search`,
`skills`, `run` (run, exec), `serve`, `auth` (login, logout) and `audit`; the options they
share are declared in `options`, `resolve` reads the config and finds the package
for all of them, and `errors` turns every error into one line and an exit code
from one table.
"""

from __future__ import annotations

import click

from .. import __version__
from ..introspect import quiet_stdout_junk
from ..telemetry import configure_from_environment
from .audit import audit_command
from .auth import login_command, logout_command
from .build import build_command
from .drift import check_command, diff_command
from .errors import Group, exit_codes_help
from .init import init_command
from .options import verbose_option
from .run import exec_command, run_command
from .search import search_command
from .serve import serve_command
from .skills import skills_command

__all__ = ["main"]


_EPILOG = (
    exit_codes_help() + "\n\n\b\nShell completion (bash; zsh_source and fish_source alike):\n"
    '  eval "$(_MCP_CODEGEN_COMPLETE=bash_source mcp-codegen)"'
)


@click.group(
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_EPILOG,
)
@click.version_option(__version__, "-V", "--version", prog_name="mcp-codegen")
@verbose_option()
def main() -> None:
    """Compile MCP servers into a typed Python package, and run code against it."""
    quiet_stdout_junk()  # a server's stray stdout is one line, never the SDK's traceback
    configure_from_environment()  # OpenTelemetry export, only if an OTEL_* variable asks


for _command in (
    init_command,
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
    audit_command,
):
    main.add_command(_command)
