"""The options several commands share, declared once.

Each function returns a click decorator; `help` differs where a command uses the
option for something of its own (the config `build` reads, the config `serve`
opens sessions from), the name, type and default do not.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..introspect import DEFAULT_SERVER_TIMEOUT
from ..runtime.config import CONFIG_ENV
from ..sandbox.policy import SandboxPolicy
from .errors import set_verbose

__all__ = [
    "CONFIG_HELP_DEFAULT",
    "audit_option",
    "config_option",
    "execution_timeout_option",
    "jobs_option",
    "json_option",
    "keep_going_option",
    "memory_option",
    "package_option",
    "policy_options",
    "server_timeout_option",
    "skills_option",
    "unsafe_local_option",
    "verbose_option",
]

_F = TypeVar("_F", bound=Callable[..., Any])


CONFIG_HELP_DEFAULT = f"[default: ${CONFIG_ENV}, else mcp.json]"


def config_option(help: str, *, dir_okay: bool = False) -> Callable[[_F], _F]:
    """`--config PATH` (`-c` is `exec`'s code), passed as `config_path`.

    The default is `$MCP_CODEGEN_CONFIG`, else `mcp.json`: the same file the
    generated package's `configure()` reads. `dir_okay=True` lets the config
    loader report a directory (one line naming it), not click.
    """
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=dir_okay, path_type=Path),
        default=Path("mcp.json"),
        envvar=CONFIG_ENV,
        show_envvar=False,
        help=f"{help} {CONFIG_HELP_DEFAULT}",
    )


def package_option(help: str) -> Callable[[_F], _F]:
    """`--package DIR`: a built package, passed as `package`.

    Every command takes the same three forms (see `codegen.package.locate_package`):
    the directory `build` wrote, its import package, or a directory holding one
    package; the default is the one package under `generated/` beside the config.
    """
    return click.option(
        "--package",
        "package",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"{help} [default: the one package under generated/ beside the config]",
    )


def json_option(help: str = "Print one JSON document instead of text.") -> Callable[[_F], _F]:
    """`--json`, passed as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def server_timeout_option() -> Callable[[_F], _F]:
    """`--timeout SECONDS` each server may take to start and list its tools."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_SERVER_TIMEOUT,
        show_default=True,
        help="Seconds each server may take to start and list its tools.",
    )


def jobs_option() -> Callable[[_F], _F]:
    """`--jobs N`: how many servers start at once, passed as `jobs` (None: 4 per CPU)."""
    return click.option(
        "--jobs",
        type=click.IntRange(min=1),
        default=None,
        help="Servers started at once [default: 4 per CPU].",
    )


def execution_timeout_option(help: str, *, maximum: float | None = None) -> Callable[[_F], _F]:
    """`--timeout SECONDS` of one execution in the sandbox (None: the policy's)."""
    return click.option(
        "--timeout",
        default=None,
        type=click.FloatRange(min=0.1, max=maximum),
        help=f"{help} [default: sandbox.limits.timeout_s, else {SandboxPolicy.timeout:g}]",
    )


def memory_option(help: str) -> Callable[[_F], _F]:
    """`--memory MB` one execution may allocate (None: the policy's)."""
    return click.option(
        "--memory",
        default=None,
        type=click.IntRange(min=16),
        help=f"{help} [default: sandbox.limits.memory_mb, else {SandboxPolicy.memory_mb}]",
    )


def policy_options() -> Callable[[_F], _F]:
    """The flags that override the config's `sandbox` section (besides --timeout, --memory).

    Each is passed under the name of the `SandboxPolicy` field it sets (None when
    not given); `--with` and `--allow` add to the config's lists.
    """

    def field(flag: str, name: str, kind: click.ParamType[Any], help: str) -> Callable[[_F], _F]:
        return click.option(flag, name, default=None, type=kind, help=help)

    options = [
        field("--cpu", "cpu", click.FloatRange(min=0.01), "CPUs the sandbox may use (a quota)."),
        field("--processes", "processes", click.IntRange(min=1), "Processes at once."),
        field("--tmp-mb", "tmp_mb", click.IntRange(min=1), "Size of /tmp, MB."),
        field("--workspace-mb", "workspace_mb", click.IntRange(min=1), "Size of /workspace, MB."),
        field("--state-mb", "state_mb", click.IntRange(min=1), "Size of /state, MB."),
        field("--output-kb", "output_kb", click.IntRange(min=1), "kB of stdout and stderr kept."),
        click.option(
            "--with",
            "with_packages",
            multiple=True,
            metavar="DIST",
            help="Also mount this installed distribution (e.g. pandas) in the sandbox.",
        ),
        click.option(
            "--allow",
            "allow",
            multiple=True,
            metavar="HOST[:PORT]",
            help="Also let the code reach this host through the proxy (see README).",
        ),
        field(
            "--bandwidth-kbps",
            "bandwidth_kbps",
            click.IntRange(min=8),
            "Egress cap in kilobits per second.",
        ),
        field(
            "--check-code",
            "check_code",
            click.Choice(["block", "warn", "off"]),
            "Check code before it runs: block certain errors, warn, or off.",
        ),
    ]

    def decorate(command: _F) -> _F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def skills_option(help: str) -> Callable[[_F], _F]:
    """`--skills DIR`, passed as `skills_dir`."""
    return click.option(
        "--skills",
        "skills_dir",
        default=None,
        type=click.Path(file_okay=False, path_type=Path),
        help=help,
    )


def unsafe_local_option(help: str) -> Callable[[_F], _F]:
    """`--unsafe-local`: run code as plain processes, without gVisor."""
    return click.option("--unsafe-local", is_flag=True, help=help)


def keep_going_option(help: str) -> Callable[[_F], _F]:
    """`--keep-going`: go on past failed servers."""
    return click.option("--keep-going", is_flag=True, help=help)


def audit_option(what: str) -> Callable[[_F], _F]:
    """`--audit FILE` (as `audit`) and `--audit-max-mb` (as `audit_max_mb`): the audit log."""

    def decorate(command: _F) -> _F:
        command = click.option(
            "--audit-max-mb",
            default=64,
            show_default=True,
            type=click.IntRange(min=1),
            help="Rotate the audit log past this size (FILE.1 ... FILE.5 are kept).",
        )(command)
        return click.option(
            "--audit",
            "audit",
            default=None,
            type=click.Path(dir_okay=False, path_type=Path),
            help=f"Append one JSON line per {what} to FILE (never argument or result "
            "values); `mcp-codegen audit FILE` summarizes it.",
        )(command)

    return decorate


def _verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    set_verbose(ctx, value)
    return value


def verbose_option() -> Callable[[_F], _F]:
    """`-v/--verbose`: also print notes (keys of a client's config that are ignored, ...)."""
    return click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_verbose,
        help="Also print notes (e.g. the keys of a client's config that are ignored).",
    )
