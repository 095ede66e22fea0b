"""How every command ends on a user's mistake: one line on stderr and a code from one table.

Commands never print an error or pick an exit code themselves. They call
`fail(command, reason, message)`, which prints `error: <message>` (or, with
`document`, a command's `--json` output instead) and exits with
`EXIT_CODES[reason]`; `print_error` prints a line that does not end the command
(one of several problems). The table is the same for every command: a bad config
exits 3 from `build`, `check`, `serve` and `exec` alike. Usage errors (an unknown
option, a bad value) are click's, printed as one line by `Command` and `Group`,
the classes every command is made with. A traceback is for a bug of ours only.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, NoReturn

import click

from ..diagnostics import Diagnostics

__all__ = [
    "COMMAND_REASONS",
    "EXIT_CODES",
    "REASONS",
    "Command",
    "ExitReason",
    "Group",
    "exit_code",
    "exit_codes_help",
    "fail",
    "note",
    "print_diagnostics",
    "print_error",
    "print_warning",
    "set_verbose",
]

ExitReason = Literal[
    "usage",
    "config",
    "snapshot",
    "package",
    "output",
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

EXIT_CODES: Final[Mapping[ExitReason, int]] = {
    "build": 1,
    "stale": 1,
    "servers": 1,
    "code": 1,
    "skill": 1,
    "usage": 2,
    "input": 2,
    "config": 3,
    "package": 4,
    "snapshot": 4,
    "search": 4,
    "output": 5,
    "sandbox": 6,
    "auth": 7,
    "drift-text": 10,
    "drift-compatible": 11,
    "drift-breaking": 12,
}
"""The exit code for every reason a command can end with, the same for every command; 0 is success."""

REASONS: Final[Mapping[ExitReason, str]] = {
    "build": "the build found errors in the servers or tools (nothing was written)",
    "stale": "the package is not what its snapshot renders (build --check)",
    "servers": "a server failed to start or to list its tools (check, login)",
    "code": "the code run in the sandbox raised, or hit a limit",
    "skill": "a skill is missing, invalid or broken",
    "usage": "a bad option or argument, or a file named on the command line cannot be read",
    "input": "a file named on the command line cannot be read",
    "config": "the mcp.json is missing or invalid, or a ${VAR} in it is not set",
    "package": "no package built by mcp-codegen where one was expected",
    "snapshot": "a snapshot cannot be read",
    "search": "the package's search index is missing or was written by another version",
    "output": "the output directory holds files mcp-codegen did not write, or an output "
    "(a directory, an --audit file) cannot be written",
    "sandbox": "the sandbox (gVisor's runsc) is missing or cannot start",
    "auth": "a server needs a login, or refused the one it got, or a stored login cannot be removed",
    "drift-text": "drift in text only: descriptions, titles, annotations (patch)",
    "drift-compatible": "compatible drift: tools, optional parameters, enum values added (minor)",
    "drift-breaking": "breaking drift: something callers rely on removed or narrowed (major)",
}
"""What each reason means (for `--help` and docs/ci.md)."""

COMMAND_REASONS: Final[Mapping[str, Sequence[ExitReason]]] = {
    "init": ("usage", "config", "output"),
    "build": ("build", "stale", "usage", "config", "package", "snapshot", "output"),
    "check": (
        "servers",
        "usage",
        "config",
        "package",
        "snapshot",
        "drift-text",
        "drift-compatible",
        "drift-breaking",
    ),
    "diff": ("usage", "snapshot", "drift-text", "drift-compatible", "drift-breaking"),
    "search": ("usage", "package", "search"),
    "skills": ("skill", "usage", "config", "package"),
    "run": ("code", "usage", "config", "package", "snapshot", "output", "sandbox"),
    "exec": ("code", "usage", "config", "package", "snapshot", "output", "sandbox"),
    "serve": ("build", "usage", "config", "package", "snapshot", "output", "sandbox"),
    "audit": ("usage", "input"),
    "login": ("servers", "usage", "config", "auth"),
    "logout": ("usage", "config", "auth"),
}
"""The reasons each command can end with, for its `--help`."""


def exit_code(command: str, reason: ExitReason) -> int:
    """The exit code of `command` ending for `reason`: `EXIT_CODES[reason]`, whatever the command.

    `command` is kept so that call sites read as what they are; the code does not depend on it.
    """
    del command
    return EXIT_CODES[reason]


def exit_codes_help(command: str | None = None) -> str:
    """The exit codes of `command` (of every command when None), as a `--help` epilog."""
    reasons: Sequence[ExitReason] = (
        COMMAND_REASONS[command] if command is not None else tuple(EXIT_CODES)
    )
    rows: dict[int, list[str]] = {}
    for reason in reasons:
        if reason == "input":  # described under usage
            continue
        rows.setdefault(EXIT_CODES[reason], []).append(REASONS[reason])
    done = ", no drift" if command in ("check", "diff") else ""
    lines = ["\b", "Exit codes (the same for every command):", f"   0  success{done}"]
    for code in sorted(rows):
        first, *more = rows[code]
        lines.append(f"  {code:>2}  {first}")
        lines += [f"      {text}" for text in more]
    return "\n".join(lines)


_VERBOSE = "mcp_codegen.verbose"


def set_verbose(ctx: click.Context, value: bool) -> None:
    """Show `note()` lines for the rest of this command line (`--verbose`, on any level)."""
    if value:
        ctx.meta[_VERBOSE] = True  # meta is shared by the group's and the command's contexts


def print_error(message: str) -> None:
    """Print one error line on stderr: `error: <message>`."""
    click.echo(f"error: {message}", err=True)


def print_warning(message: str) -> None:
    """Print one warning line on stderr: `warning: <message>`."""
    click.echo(f"warning: {message}", err=True)


def note(message: str) -> None:
    """Print `note: <message>` on stderr, under `--verbose` only."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(_VERBOSE):
        click.echo(f"note: {message}", err=True)


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


def _usage_line(exc: click.ClickException) -> str:
    message = exc.format_message().strip().rstrip(".").replace(". (Did you mean", " (did you mean")
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see `{ctx.command_path} --help`)"
    return message


class _OneLineErrors(click.Command):
    """Click's usage errors as one `error:` line with the table's code, not a usage block."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            returned = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            print_error(_usage_line(exc))
            sys.exit(EXIT_CODES["usage"])
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(130)
        # Without standalone mode click returns an explicit exit's code (`--help`: 0).
        sys.exit(returned if isinstance(returned, int) else 0)


class Command(_OneLineErrors):
    """A command whose usage errors print as one line (use as `cls=Command`)."""


class Group(_OneLineErrors, click.Group):
    """A command group whose usage errors print as one line (use as `cls=Group`)."""
