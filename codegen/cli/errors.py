"""How every command ends on a user's mistake: one line on stderr and a code from one table.

Commands never print an error or pick an exit code themselves. They call
`fail(command, reason, message)`, which prints `error: <message>` (or, with
`document`, a command's `--json` output instead) and exits with
`EXIT_CODES[command][reason]`; `print_error` prints a line that does not end the
command (one of several problems). A traceback is for a bug of ours only.

`EXIT_CODES` still gives each command the codes it had before the commands shared
this module, so they differ: a bad config exits 2 from `build` but 1 from `check`
and `serve`. Making them agree is an edit of the table alone. Usage errors (an
unknown option, a bad value) are click's: it prints them and exits 2.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Final, Literal, NoReturn

import click

from ..diagnostics import Diagnostics

__all__ = [
    "EXIT_CODES",
    "REASONS",
    "ExitReason",
    "exit_code",
    "fail",
    "print_diagnostics",
    "print_error",
    "print_warning",
]

ExitReason = Literal[
    "usage",
    "config",
    "snapshot",
    "package",
    "input",
    "build",
    "stale",
    "servers",
    "search",
    "sandbox",
    "skill",
    "code",
    "auth",
    "drift-text",
    "drift-compatible",
    "drift-breaking",
]

REASONS: Final[Mapping[ExitReason, str]] = {
    "usage": "a bad option or argument (reported by click)",
    "config": "the mcp.json cannot be read or is invalid",
    "snapshot": "a snapshot cannot be read",
    "package": "no package built by mcp-codegen where one was expected",
    "input": "a file named on the command line cannot be read",
    "build": "the build found errors",
    "stale": "the package is not what its snapshot renders (build --check)",
    "servers": "a server failed to start or to list its tools (check)",
    "search": "the search index is missing or stale, or the query is unusable",
    "sandbox": "the sandbox cannot start or run",
    "skill": "a skill is missing, invalid or broken",
    "code": "the code run in the sandbox raised, or hit a limit",
    "auth": "a server needs a login or refused one; or serve's --auth settings are unusable",
    "drift-text": "drift in text only: descriptions, titles, annotations (patch)",
    "drift-compatible": "compatible drift: tools, optional parameters, enum values added (minor)",
    "drift-breaking": "breaking drift: something callers rely on removed or narrowed (major)",
}
"""What each reason means (for `--help` epilogs and docs/ci.md)."""

_DRIFT: Final[Mapping[ExitReason, int]] = {
    "drift-text": 10,
    "drift-compatible": 11,
    "drift-breaking": 12,
}

EXIT_CODES: Final[Mapping[str, Mapping[ExitReason, int]]] = {
    "build": {"usage": 2, "config": 2, "snapshot": 2, "build": 1, "stale": 1},
    "check": {"usage": 2, "config": 1, "snapshot": 1, "package": 1, "servers": 1, **_DRIFT},
    "diff": {"usage": 2, "snapshot": 1, **_DRIFT},
    "search": {"usage": 2, "package": 2, "search": 2},
    "skills": {"usage": 2, "package": 1, "skill": 1},
    "run": {"usage": 2, "package": 1, "input": 1, "sandbox": 1, "code": 1},
    "exec": {"usage": 2, "package": 1, "sandbox": 1, "code": 1},
    "serve": {
        "usage": 2,
        "config": 1,
        "snapshot": 1,
        "package": 1,
        "build": 1,
        "sandbox": 1,
        "auth": 2,
    },
    "login": {"usage": 2, "config": 1, "auth": 1},
    "logout": {"usage": 2, "config": 1, "auth": 1},
}
"""The exit code of every command for every reason it can end with; 0 is success."""


def exit_code(command: str, reason: ExitReason) -> int:
    """The exit code of `command` ending for `reason`, from `EXIT_CODES`.

    Raises:
        KeyError: the table has no such entry (a bug of ours: every command's
            reasons are listed).
    """
    return EXIT_CODES[command][reason]


def print_error(message: str) -> None:
    """Print one error line on stderr: `error: <message>`."""
    click.echo(f"error: {message}", err=True)


def print_warning(message: str) -> None:
    """Print one warning line on stderr: `warning: <message>`."""
    click.echo(f"warning: {message}", err=True)


def print_diagnostics(diagnostics: Diagnostics) -> None:
    """Print collected diagnostics on stderr, one line each (coloured on a terminal)."""
    tty = sys.stderr.isatty()
    for item in diagnostics:
        color = "red" if item.level == "error" else "yellow"
        click.secho(str(item), err=True, fg=color if tty else None)


def fail(
    command: str, reason: ExitReason, message: str, *, document: str | None = None
) -> NoReturn:
    """End `command`: print `error: <message>` and exit with the table's code for `reason`.

    With `document` (the command's `--json` output), print that on stdout instead.

    Raises:
        SystemExit: always, with `exit_code(command, reason)`.
    """
    code = exit_code(command, reason)
    if document is not None:
        click.echo(document)
    else:
        print_error(message)
    sys.exit(code)
