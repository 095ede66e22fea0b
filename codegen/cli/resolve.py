"""What commands do with their options before any work: read the config, find the package.

Each function ends the command through `fail` with the one error text of its
kind, so every command says the same thing for the same mistake. Relative
defaults follow the config file: the package is looked for in `generated/`
beside it, as `build` writes it there.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ..package import BuiltPackage, PackageNotFound, default_root, locate_package
from ..runtime.config import CONFIG_ENV, Config, InputSpec, load_config, set_input_prompt
from ..runtime.errors import ConfigError
from .errors import fail, note

__all__ = [
    "CONFIG_MISSING_HINT",
    "command_line",
    "find_package",
    "load_cli_config",
    "read_config",
    "rebuild_command",
]

CONFIG_MISSING_HINT = (
    f"pass --config PATH or set {CONFIG_ENV}, or run `mcp-codegen init` to write one"
)


def _ask(spec: InputSpec) -> str:
    label = spec.description or spec.id
    value: str = click.prompt(
        f"{label} (${{input:{spec.id}}}; or set {spec.env_name})",
        hide_input=spec.password,
        err=True,
    )
    return value


def load_cli_config(config_path: Path, *, prompt: bool = True) -> Config:
    """The config at `config_path`, its notes printed under `--verbose`.

    With `prompt` and a terminal on stdin, an `${input:...}` missing from the
    environment is asked for when a server starts (`serve` never asks: its stdin
    may be the protocol).

    Raises:
        ConfigError: the config is missing or invalid.
    """
    config = load_config(config_path, missing_hint=CONFIG_MISSING_HINT)
    for line in config.notes:
        note(line)
    if prompt and sys.stdin.isatty():
        set_input_prompt(_ask)
    return config


def read_config(command: str, config_path: Path, *, prompt: bool = True) -> Config:
    """`load_cli_config`, ending `command` on a bad config.

    Raises:
        SystemExit: the config is missing or invalid (`fail(command, "config")`).
    """
    try:
        return load_cli_config(config_path, prompt=prompt)
    except ConfigError as exc:
        fail(command, "config", str(exc))


def find_package(
    command: str, package: Path | None, config_path: Path | None, *, hint: str = ""
) -> BuiltPackage:
    """The built package `--package` names, or the one in `generated/` beside the config.

    `hint` ends the error with what else this command can do.

    Raises:
        SystemExit: none found, or several (`fail(command, "package")`).
    """
    try:
        return locate_package(package, root=default_root(config_path))
    except PackageNotFound as exc:
        fail(command, "package", f"{exc}{hint}")


def rebuild_command(config_path: Path, package: BuiltPackage) -> str:
    """The `build` command that refreshes `package` in place, keeping its names and cache."""
    words: list[str | Path] = ["build", "--config", config_path, "--package", package.root]
    words += ["--name", package.name]
    if package.dist_name:
        words += ["--dist-name", package.dist_name]
    return command_line(*words)


def command_line(*words: str | Path) -> str:
    """`mcp-codegen <words>`, quoted for a POSIX shell: a hint that works when pasted."""
    return shlex.join(["mcp-codegen", *map(str, words)])
