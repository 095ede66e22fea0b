"""`mcp-codegen init`: write a starter mcp.json, or import the servers of a client's config.

`--from` takes a file, or the name of a client whose usual config files are
looked for: `claude-desktop`, `claude-code`, `cursor`, `vscode`. Keys that only
the client uses are left out; a server mcp-codegen cannot use (an SSE server, say)
is kept with `"disabled": true` and named in a warning. Paths relative to the
client's config are made absolute, since the new file may live elsewhere. The
config file is created, never overwritten.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import click

from ..runtime.config import CLIENT_KEYS, parse_config
from ..runtime.errors import ConfigError
from .errors import Command, exit_codes_help, fail, note, print_warning
from .options import config_option, verbose_option

__all__ = ["CLIENTS", "client_config_paths", "import_servers", "init_command"]

STARTER: dict[str, Any] = {
    "mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time", "--local-timezone", "UTC"]},
    }
}
"""The starter config: one server that needs nothing but `uvx`."""

CLIENTS = ("claude-desktop", "claude-code", "cursor", "vscode")
_LABELS = {
    "claude-desktop": "Claude Desktop",
    "claude-code": "Claude Code",
    "cursor": "Cursor",
    "vscode": "VS Code",
}


def client_config_paths(client: str, cwd: Path | None = None) -> list[Path]:
    """Where `client` keeps its MCP config, project files first, in the order looked at."""
    cwd = cwd or Path.cwd()
    home = Path.home()
    appdata = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
    support = home / "Library" / "Application Support"
    config_home = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    if client == "claude-desktop":
        name = "claude_desktop_config.json"
        return [config_home / "Claude" / name, support / "Claude" / name, appdata / "Claude" / name]
    if client == "claude-code":
        return [cwd / ".mcp.json", home / ".claude.json"]
    if client == "cursor":
        return [cwd / ".cursor" / "mcp.json", home / ".cursor" / "mcp.json"]
    return [
        cwd / ".vscode" / "mcp.json",
        config_home / "Code" / "User" / "mcp.json",
        support / "Code" / "User" / "mcp.json",
        appdata / "Code" / "User" / "mcp.json",
    ]


def _found_configs() -> list[tuple[str, Path]]:
    return [
        (client, path)
        for client in CLIENTS
        for path in client_config_paths(client)
        if path.is_file()
    ]


def import_servers(source: Path, cwd: Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The mcp.json document for the servers of the client config `source`, and notes.

    Reads `mcpServers` (Claude Desktop, Claude Code, Cursor; from `~/.claude.json`
    also the project of `cwd`) or VS Code's `servers` with `inputs`.

    Raises:
        ConfigError: `source` cannot be read, is not JSON, or holds no servers.
    """
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{source}: cannot read ({reason})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not an MCP client config (the top level is not an object)")
    notes: list[str] = []
    servers: dict[str, Any] = {}
    key = "mcpServers" if "mcpServers" in data else "servers"
    if isinstance(data.get(key), dict):
        servers.update(data[key])
    projects = data.get("projects")
    here = str((cwd or Path.cwd()).resolve())
    if isinstance(projects, dict) and isinstance(projects.get(here), dict):
        for name, entry in (projects[here].get("mcpServers") or {}).items():
            if name in servers:
                notes.append(f"server {name!r} of project {here} left out: the name is taken")
            else:
                servers[name] = entry
    if not servers:
        raise ConfigError(f"{source}: no MCP servers in it ('mcpServers' or 'servers')")
    base = source.resolve().parent
    workspace = base.parent if base.name in (".vscode", ".cursor") else base
    entries: dict[str, Any] = {}
    for name, raw in servers.items():
        if not isinstance(raw, dict):
            notes.append(f"server {name!r} left out: it is not an object")
            continue
        entry = {k: copy.deepcopy(v) for k, v in raw.items() if k not in CLIENT_KEYS}
        for dropped in sorted(set(raw) & CLIENT_KEYS):
            notes.append(f"server {name!r}: left out {dropped!r} (a client's setting)")
        entries[name] = _anchor(entry, base, workspace)
    document: dict[str, Any] = {"mcpServers": entries}
    if isinstance(data.get("inputs"), list) and data["inputs"]:
        document["inputs"] = data["inputs"]
    return document, notes


def _anchor(entry: dict[str, Any], base: Path, workspace: Path) -> dict[str, Any]:
    """Relative paths of `entry`, and `${workspaceFolder}`, made absolute (they were the client's)."""

    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("${workspaceFolder}", str(workspace))
        if isinstance(value, list):
            return [fix(item) for item in value]
        if isinstance(value, dict):
            return {key: fix(item) for key, item in value.items()}
        return value

    entry = fix(entry)
    for key in ("cwd", "envFile"):
        value = entry.get(key)
        if (
            isinstance(value, str)
            and value
            and not value.startswith("$")
            and not os.path.isabs(value)
        ):
            entry[key] = os.path.normpath(base / value)
    command = entry.get("command")
    if isinstance(command, str) and "/" in command and not os.path.isabs(command):
        entry["command"] = os.path.normpath(base / command)
    return entry


def _disable_unusable(document: dict[str, Any], target: Path) -> list[str]:
    """Mark servers mcp-codegen cannot use as disabled; one warning each."""
    warnings: list[str] = []
    for name, entry in document["mcpServers"].items():
        if entry.get("disabled") is True:
            continue
        trial = {key: value for key, value in document.items() if key != "mcpServers"}
        trial["mcpServers"] = {name: entry}
        try:
            parse_config(trial, source=str(target), base_dir=str(target.resolve().parent))
        except ConfigError as exc:
            entry["disabled"] = True
            warnings.append(f"{exc} (imported as disabled)")
    return warnings


@click.command("init", cls=Command, epilog=exit_codes_help("init"))
@config_option("The mcp.json to create (never overwritten).")
@click.option(
    "--from",
    "source",
    default=None,
    metavar="PATH|" + "|".join(CLIENTS),
    help="Import the servers of this client config file, or of the config a client "
    "keeps in its usual place.",
)
@verbose_option()
def init_command(config_path: Path, source: str | None) -> None:
    """Write a starter mcp.json, or one with the servers of a client's config (--from)."""
    if config_path.exists():
        fail(
            "init",
            "output",
            f"{config_path} already exists; nothing was changed (edit it, or pass --config NEW.json)",
        )
    warnings: list[str] = []
    if source is None:
        document: dict[str, Any] = copy.deepcopy(STARTER)
        origin = "a starter config (one server: time)"
        found = _found_configs()
    else:
        path = _source_path(source)
        try:
            document, notes = import_servers(path)
        except ConfigError as exc:
            fail("init", "config", str(exc))
        for line in notes:
            note(line)
        warnings = _disable_unusable(document, config_path)
        count = len(document["mcpServers"])
        origin = f"{count} server{'' if count == 1 else 's'} from {path}"
        found = []
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        config_path.parent.mkdir(parents=True, exist_ok=True)
        with config_path.open("x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        fail("init", "output", f"{config_path} already exists; nothing was changed")
    except OSError as exc:
        fail("init", "output", f"cannot write {config_path} ({exc.strerror})")
    for line in warnings:
        print_warning(line)
    click.echo(f"wrote {config_path}: {origin}")
    for client, path in found:
        click.echo(
            f"found a {_LABELS[client]} config at {path}: "
            f"`mcp-codegen init --from {path}` imports its servers"
        )
    where = "" if str(config_path) == "mcp.json" else f" --config {config_path}"
    click.echo(f"next: mcp-codegen build{where}")


def _source_path(source: str) -> Path:
    if source not in CLIENTS:
        return Path(source)
    for path in client_config_paths(source):
        if path.is_file():
            return path
    looked = ", ".join(str(path) for path in client_config_paths(source))
    fail(
        "init",
        "config",
        f"no {_LABELS[source]} config found (looked at {looked}); pass --from PATH",
    )
