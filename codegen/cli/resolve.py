"""What commands do with their options before any work: read the config, find the package.

Each function ends the command through `fail` with the one error text of its
kind, so every command says the same thing for the same mistake. Relative
defaults follow the config file: the package is looked for in `generated/`
beside it, as `build` writes it there.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..package import BuiltPackage, PackageNotFound, default_root, locate_package
from ..runtime.config import CONFIG_ENV, Config, InputSpec, load_config, set_input_prompt
from ..runtime.errors import ConfigError
from .errors import fail, note

if TYPE_CHECKING:
    from ..sandbox.egress.proxy import Resolver
    from ..sandbox.policy import SandboxPolicy

__all__ = [
    "CONFIG_MISSING_HINT",
    "command_line",
    "find_package",
    "load_cli_config",
    "read_config",
    "read_policy",
    "read_resolver",
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


def read_policy(command: str, config: Config, flags: dict[str, Any]) -> SandboxPolicy:
    """The config's `sandbox` policy with the command's flags applied, its packages installed.

    `flags` are the command's options (`policy_options`, `--timeout`, `--memory`):
    a flag given replaces the config's value; `--with` and `--allow` add to its lists.

    Raises:
        SystemExit: the section or a flag is invalid, or a package is not installed
            (`fail(command, "config")`).
    """
    from ..sandbox.policy import (
        DEFAULT_BANDWIDTH_KBPS,
        check_packages,
        network_policy,
        parse_sandbox_policy,
    )

    try:
        policy = parse_sandbox_policy(config.sandbox, config.path)
        fields = {
            name: flags.get(name)
            for name in ("cpu", "processes", "tmp_mb", "workspace_mb", "state_mb", "output_kb")
        }
        fields["check_code"] = flags.get("check_code")
        fields["timeout"] = flags.get("timeout")
        fields["memory_mb"] = flags.get("memory")
        added = tuple(flags.get("with_packages") or ())
        if added:
            fields["packages"] = tuple(dict.fromkeys((*policy.packages, *added)))
        allow = list(flags.get("allow") or ())
        bandwidth = flags.get("bandwidth_kbps")
        network = policy.network
        if allow or (bandwidth is not None and network is not None):
            entries = [rule.text for rule in network.allow.rules] if network else []
            cap = bandwidth or (network.bandwidth_kbps if network else DEFAULT_BANDWIDTH_KBPS)
            fields["network"] = network_policy([*entries, *allow], cap)
        policy = policy.override(**fields)
        where = f"{config.path}: sandbox.packages" + (" (with --with)" if added else "")
        check_packages(policy.packages, where)
    except ConfigError as exc:
        fail(command, "config", str(exc))
    return policy


def read_resolver(command: str) -> Resolver | None:
    """The egress proxy's resolver: `$MCP_CODEGEN_HOSTS_FILE` first when set (for tests).

    Raises:
        SystemExit: that file cannot be read (`fail(command, "config")`).
    """
    from ..sandbox.egress.proxy import HOSTS_FILE_ENV, Resolver

    hosts = os.environ.get(HOSTS_FILE_ENV)
    if not hosts:
        return None
    try:
        return Resolver(hosts)
    except (OSError, UnicodeDecodeError) as exc:
        fail(command, "config", f"{HOSTS_FILE_ENV}={hosts}: cannot read ({exc})")


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
