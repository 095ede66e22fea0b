"""`mcp-codegen run FILE` and `mcp-codegen exec -c CODE`: run code in the sandbox.

Without `--json`, the code's stdout and stderr are replayed on ours, then the
value of its last expression (like a REPL), then its error; the exit status is 1
when the code failed. With `--json`, the whole `ExecutionResult` is printed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from ..package import PackageNotFound, locate_package
from ..runtime.errors import ConfigError
from ..sandbox.errors import SandboxError
from ..sandbox.executor import Executor, Limits, UnsafeLocalExecutor
from ..sandbox.result import ExecutionResult
from .errors import exit_code, fail, print_warning
from .options import (
    config_option,
    execution_timeout_option,
    json_option,
    memory_option,
    package_option,
    skills_option,
    unsafe_local_option,
)

__all__ = ["exec_command", "run_command"]


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        config_option("The mcp.json the host opens server sessions from."),
        package_option(
            "The built package (the directory `build` wrote) "
            "[default: the one package under generated/]."
        ),
        execution_timeout_option("Wall-clock limit in seconds."),
        memory_option("Memory the code may allocate, in MB."),
        skills_option("The skills directory (default: .mcp-codegen/skills beside the config)."),
        click.option(
            "--state",
            "state_dir",
            default=None,
            type=click.Path(file_okay=False, path_type=Path),
            help="Keep /state in DIR, for a later run to resume from (default: discarded).",
        ),
        json_option("Print the result as JSON."),
        unsafe_local_option(
            "Run WITHOUT isolation as a plain process (development only; no gVisor)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


async def _execute(code: str, filename: str, **options: Any) -> ExecutionResult:
    limits = Limits(timeout=options["timeout"], memory_mb=options["memory"])
    kind = UnsafeLocalExecutor if options["unsafe_local"] else Executor
    package = options["package"]
    if package is None:
        package = locate_package(None).root
    executor = kind(
        package,
        config=options["config_path"],
        limits=limits,
        skills_dir=options["skills_dir"],
        skills_scope=_skills_scope(options["config_path"]),
        state_dir=options["state_dir"],
        origin="run",
    )
    try:
        await executor.start()
        result = await executor.execute(code, filename=filename)
        _show(result, options["as_json"])
        return result
    finally:
        # After the result is out: deleting a sandbox takes a moment.
        await executor.aclose()


def _skills_scope(config: Path | None) -> Literal["session", "shared"]:
    """Where `save_skill` saves: the shared skills, unless the config's `skills.share`
    leaves out `run` (a person at the keyboard runs one command, whose session ends with it).

    Raises:
        ConfigError: the config or its `skills` section is invalid.
    """
    if config is None or not Path(config).is_file():
        return "shared"
    from ..config import load_config
    from ..sandbox.bridge.skills import parse_skills_policy

    loaded = load_config(config)
    return "shared" if "run" in parse_skills_policy(loaded.skills, loaded.path) else "session"


def _show(result: ExecutionResult, as_json: bool) -> None:
    if as_json:
        click.echo(result.to_json())
        return
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.value_repr is not None and result.error is None:
        sys.stdout.write(result.value_repr + "\n")
    if result.error is not None:
        error = result.error
        sys.stderr.write(error.traceback or f"{error.type}: {error.message}\n")
    sys.stdout.flush()
    sys.stderr.flush()


def _main(command: str, code: str, filename: str, options: dict[str, Any]) -> None:
    if options["unsafe_local"]:
        print_warning("--unsafe-local runs the code WITHOUT any isolation")
    try:
        result = asyncio.run(_execute(code, filename, **options))
    except PackageNotFound as exc:
        fail(command, "package", str(exc))
    except SandboxError as exc:
        fail(command, "sandbox", str(exc))
    except ConfigError as exc:
        fail(command, "config", str(exc))
    if not result.ok:
        sys.exit(exit_code(command, "code"))


@click.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_options
def run_command(file: Path, **options: Any) -> None:
    """Run the Python FILE in the sandbox, with the package's tools."""
    try:
        code = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail("run", "input", f"{file}: cannot read: {exc}")
    _main("run", code, file.name, options)


@click.command("exec")
@click.option("-c", "code", required=True, help="The Python code to run.")
@_options
def exec_command(code: str, **options: Any) -> None:
    """Run Python CODE in the sandbox, with the package's tools."""
    _main("exec", code, "<exec>", options)
