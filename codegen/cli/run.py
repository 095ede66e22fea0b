"""`mcp-codegen run FILE` and `mcp-codegen exec -c CODE`: run code in the sandbox.

Without `--json`, the code's stdout and stderr are replayed on ours, then the
value of its last expression (like a REPL), then its error; the exit status is 1
when the code failed. With `--json`, the whole `ExecutionResult` is printed.
`run -` and `exec -c -` read the code from stdin. The config (with its `sandbox`
policy, which the flags override) and the package are checked before any
sandbox starts.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from ..runtime.config import Config
from ..runtime.errors import ConfigError
from ..sandbox.egress.proxy import Resolver
from ..sandbox.errors import SandboxError
from ..sandbox.executor import Executor, UnsafeLocalExecutor
from ..sandbox.policy import SandboxPolicy
from ..sandbox.result import ExecutionResult
from .approvals import terminal_hooks
from .audit import start_audit
from .errors import Command, exit_code, exit_codes_help, fail, print_warning
from .options import (
    audit_option,
    config_option,
    execution_timeout_option,
    json_option,
    memory_option,
    package_option,
    policy_options,
    skills_option,
    unsafe_local_option,
    verbose_option,
)
from .resolve import find_package, read_config, read_policy, read_resolver

__all__ = ["exec_command", "run_command"]


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        config_option("The mcp.json the host opens server sessions from."),
        package_option("The built package the code imports tools from."),
        execution_timeout_option("Wall-clock limit in seconds."),
        memory_option("Memory the code may allocate, in MB."),
        policy_options(),
        skills_option("The skills directory (default: .mcp-codegen/skills beside the config)."),
        click.option(
            "--state",
            "state_dir",
            default=None,
            type=click.Path(file_okay=False, path_type=Path),
            help="Keep /state in DIR, for a later run to resume from (default: discarded).",
        ),
        json_option("Print the result as JSON."),
        audit_option("execution and tool call"),
        click.option(
            "--approve-all",
            is_flag=True,
            help="Approve every call the config's approval policy says needs a person's yes, "
            "without asking (default: ask on the terminal; refuse without one).",
        ),
        unsafe_local_option(
            "Run WITHOUT isolation as a plain process (development only; no gVisor)."
        ),
        verbose_option(),
    ]
    for option in reversed(options):
        command = option(command)
    return command


async def _execute(
    code: str, filename: str, policy: SandboxPolicy, resolver: Resolver | None, **options: Any
) -> ExecutionResult:
    kind = UnsafeLocalExecutor if options["unsafe_local"] else Executor
    executor = kind(
        options["package"],
        config=options["config_path"],
        policy=policy,
        resolver=resolver,
        skills_dir=options["skills_dir"],
        skills_scope=_skills_scope(options["config_path"]),
        state_dir=options["state_dir"],
        origin="run",
    )
    try:
        await executor.start()
        hooks = terminal_hooks(options["approve_all"])  # issue 17: approvals
        result = await executor.execute(code, filename=filename, hooks=hooks)
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
    elif result.diagnostics:
        for diagnostic in result.diagnostics:
            print_warning(str(diagnostic))
    for connection in result.connections:
        if not connection.allowed:
            print_warning(
                f"connection refused: {connection.host}:{connection.port}: {connection.reason}"
            )
    sys.stdout.flush()
    sys.stderr.flush()


def _ask_inputs(config: Config) -> None:
    # An ${input:...} is asked for now, on the terminal, not when a tool call from
    # the sandbox first needs it. Other problems surface when that server is called.
    for server in config.servers:
        try:
            server.resolve()
        except ConfigError:
            continue


def _main(command: str, code: str, filename: str, options: dict[str, Any]) -> None:
    config = read_config(command, options["config_path"])
    policy = read_policy(command, config, options)
    options["package"] = find_package(command, options["package"], options["config_path"]).root
    _ask_inputs(config)
    if options["unsafe_local"]:
        print_warning("--unsafe-local runs the code WITHOUT any isolation")
    start_audit(command, options.pop("audit"), options.pop("audit_max_mb"))
    try:
        result = asyncio.run(_execute(code, filename, policy, read_resolver(command), **options))
    except ConfigError as exc:
        fail(command, "config", str(exc))
    except SandboxError as exc:
        fail(command, "sandbox", str(exc))
    if not result.ok:
        sys.exit(exit_code(command, "code"))


def _read_code(command: str, source: str) -> str:
    """The code in file `source`, or on stdin for `-`."""
    if source == "-":
        if sys.stdin.isatty():
            click.echo("reading the code from stdin; end it with Ctrl-D", err=True)
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(command, "input", f"{source}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        fail(command, "input", f"{source}: cannot read ({reason})")


@click.command("run", cls=Command, epilog=exit_codes_help("run"))
@click.argument("file", metavar="FILE|-")
@_options
def run_command(file: str, **options: Any) -> None:
    """Run the Python FILE (or stdin, for -) in the sandbox, with the package's tools."""
    code = _read_code("run", file)
    _main("run", code, "<stdin>" if file == "-" else Path(file).name, options)


@click.command("exec", cls=Command, epilog=exit_codes_help("exec"))
@click.option("-c", "code", required=True, help="The Python code to run; - reads it from stdin.")
@_options
def exec_command(code: str, **options: Any) -> None:
    """Run Python CODE in the sandbox, with the package's tools."""
    if code == "-":
        code = _read_code("exec", "-")
    _main("exec", code, "<exec>", options)
