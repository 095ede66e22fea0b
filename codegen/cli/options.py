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

__all__ = [
    "config_option",
    "execution_timeout_option",
    "json_option",
    "keep_going_option",
    "memory_option",
    "package_option",
    "server_timeout_option",
    "skills_option",
    "unsafe_local_option",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def config_option(help: str, *, dir_okay: bool = False) -> Callable[[_F], _F]:
    """`--config PATH` (default `mcp.json`), passed as `config_path`.

    `dir_okay=True` keeps what `build` and `check` do today with a directory: the
    config loader reports it, not click.
    """
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=dir_okay, path_type=Path),
        default=Path("mcp.json"),
        show_default=True,
        help=help,
    )


def package_option(help: str) -> Callable[[_F], _F]:
    """`--package DIR` (default: the one package under generated/), passed as `package`."""
    return click.option(
        "--package",
        "package",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=help,
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


def execution_timeout_option(help: str, *, maximum: float | None = None) -> Callable[[_F], _F]:
    """`--timeout SECONDS` of one execution in the sandbox (default 30)."""
    return click.option(
        "--timeout",
        default=30.0,
        show_default=True,
        type=click.FloatRange(min=0.1, max=maximum),
        help=help,
    )


def memory_option(help: str) -> Callable[[_F], _F]:
    """`--memory MB` one execution may allocate (default 512)."""
    return click.option(
        "--memory",
        default=512,
        show_default=True,
        type=click.IntRange(min=16),
        help=help,
    )


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
