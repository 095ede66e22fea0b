"""Reading `mcp.json`: the `mcpServers` format of Claude Desktop, Claude Code, Cursor and VS Code.

Stdio servers have `command`, `args`, `env`, `cwd` and Cursor's `envFile`;
streamable-HTTP servers have `url`, `headers` and `oauth` (how to log in when the
server answers 401; `false` turns it off). VS Code's form (`servers`, with
`inputs`) is read too. Keys that belong to the client (Claude Desktop's
`globalShortcut`, Cline's `autoApprove`, ...) are ignored and listed in
`Config.notes`; a misspelt key of a server is an error with a suggestion.

Variables in any string value are replaced only when a server is started
(`resolve()`), so the parsed config, and everything built from it, never holds a
secret's value: `${VAR}`, `${VAR:-default}` and `${env:VAR}` from the environment,
`${userHome}` and `${workspaceFolder}`, and VS Code's `${input:id}` from the
environment variable `MCP_INPUT_<ID>` (or, where a program installed a prompt
with `set_input_prompt`, typed in once at a terminal). A relative `cwd`,
`envFile`, and a relative `command` that contains a `/`, are taken relative to
the directory of the config file.

Every error names the file, the server and the field, on one line.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "CLIENT_KEYS",
    "CONFIG_ENV",
    "Config",
    "HttpServer",
    "InputSpec",
    "OAuthSettings",
    "ResolvedHttp",
    "ResolvedOAuth",
    "ResolvedStdio",
    "StdioServer",
    "input_env_name",
    "load_config",
    "parse_config",
    "set_input_prompt",
]

CONFIG_ENV = "MCP_CODEGEN_CONFIG"
"""Environment variable naming the `mcp.json` a generated package reads by default."""

_VAR = re.compile(r"\$\{([^{}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INPUT_ID = re.compile(r"[A-Za-z0-9_.-]+")
_COMMON_KEYS = {"type", "disabled", "timeout", "description"}
_STDIO_KEYS = {"command", "args", "env", "cwd", "envFile"} | _COMMON_KEYS
_HTTP_KEYS = {"url", "headers", "oauth"} | _COMMON_KEYS
_OAUTH_KEYS = {
    "client_id",
    "client_secret",
    "scopes",
    "token_env",
    "grant",
    "issuer",
    "callback_port",
}
_GRANTS = ("authorization_code", "client_credentials")
_HTTP_TYPES = {"http", "streamable-http", "streamableHttp", "streamable_http"}
_TOP_KEYS = {
    "mcpServers",
    "servers",
    "inputs",
    "$schema",
    "privacy",
    "skills",
    "sandbox",
    "approval",
}
CLIENT_KEYS = frozenset(
    {"autoApprove", "alwaysAllow", "disabledTools", "dev", "gallery", "version", "icon"}
)
"""Keys of a server entry that only a client uses (Cline, Roo, VS Code): ignored, with a note."""


@dataclass(frozen=True)
class InputSpec:
    """A VS Code input (`inputs` in the config) that `${input:<id>}` refers to."""

    id: str
    description: str = ""
    password: bool = False

    @property
    def env_name(self) -> str:
        """The environment variable its value is read from."""
        return input_env_name(self.id)


def input_env_name(input_id: str) -> str:
    """`MCP_INPUT_<ID>`: `${input:github-token}` is read from `MCP_INPUT_GITHUB_TOKEN`."""
    return "MCP_INPUT_" + re.sub(r"[^A-Za-z0-9]", "_", input_id).upper()


_prompt: Callable[[InputSpec], str] | None = None
_typed: dict[str, str] = {}


def set_input_prompt(prompt: Callable[[InputSpec], str] | None) -> None:
    """Ask `prompt` for an `${input:...}` missing from the environment (once per input).

    Only a program that owns a terminal should install one (the `mcp-codegen`
    command does when stdin is a terminal, `serve` never does).
    """
    global _prompt
    _prompt = prompt


@dataclass(frozen=True)
class ResolvedStdio:
    """A stdio server with every `${VAR}` replaced: ready to start."""

    command: str
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str | None


@dataclass(frozen=True)
class ResolvedOAuth:
    """A server's `oauth` settings with every `${VAR}` replaced (holds secrets: never print it)."""

    client_id: str | None
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    grant: str = "authorization_code"
    issuer: str | None = None
    callback_port: int | None = None
    token: str | None = field(default=None, repr=False)
    """The bearer token read from `token_env`, when that variable is set."""
    token_env: str | None = None


@dataclass(frozen=True)
class ResolvedHttp:
    """A streamable-HTTP server with every `${VAR}` replaced: ready to connect."""

    url: str
    headers: dict[str, str] = field(repr=False)
    oauth: ResolvedOAuth | None = None
    """None when OAuth is off (`"oauth": false`, or an `Authorization` header is given)."""


@dataclass(frozen=True)
class OAuthSettings:
    """The `oauth` object of an HTTP server: how to log in when the server answers 401.

    Every field is optional: without any, a server that answers 401 is logged in to
    with discovery and dynamic client registration (`mcp-codegen login NAME`).
    `client_id`/`client_secret` name a pre-registered client; `grant:
    "client_credentials"` gets tokens with them and no person (CI); `token_env`
    names an environment variable holding a pre-issued bearer token, used
    whenever that variable is set.
    """

    client_id: str | None = None
    client_secret: str | None = None
    scopes: tuple[str, ...] = ()
    token_env: str | None = None
    grant: str = "authorization_code"
    issuer: str | None = None
    callback_port: int | None = None


@dataclass(frozen=True)
class StdioServer:
    """A server started as a subprocess, speaking MCP over its stdin and stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
    source: str = "mcp.json"
    base_dir: str = "."
    env_file: str | None = None
    """Cursor's and VS Code's `envFile`: a dotenv file whose variables `env` extends."""
    inputs: Mapping[str, InputSpec] = field(default_factory=dict)

    def resolve(self) -> ResolvedStdio:
        """Expand variables and relative paths, and read the `envFile`.

        Raises:
            ConfigError: a variable is not set and has no default, or the
                `envFile` cannot be read.
        """
        where = _Where(self.source, self.name, base_dir=self.base_dir, inputs=self.inputs)
        command = _expand(self.command, where.at("command"))
        if "/" in command and not os.path.isabs(command):
            command = os.path.normpath(os.path.join(self.base_dir, command))
        cwd = _expand(self.cwd, where.at("cwd")) if self.cwd is not None else None
        if cwd is not None and not os.path.isabs(cwd):
            cwd = os.path.normpath(os.path.join(self.base_dir, cwd))
        env: dict[str, str] = {}
        if self.env_file is not None:
            env |= _read_env_file(_expand(self.env_file, where.at("envFile")), where)
        env |= {key: _expand(value, where.at(f"env.{key}")) for key, value in self.env.items()}
        return ResolvedStdio(
            command=command,
            args=tuple(_expand(arg, where.at(f"args[{i}]")) for i, arg in enumerate(self.args)),
            env=env,
            cwd=cwd,
        )


@dataclass(frozen=True)
class HttpServer:
    """A server reached over streamable HTTP."""

    name: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None
    source: str = "mcp.json"
    base_dir: str = "."
    inputs: Mapping[str, InputSpec] = field(default_factory=dict)
    oauth: OAuthSettings | None = field(default_factory=OAuthSettings)
    """None: `"oauth": false`, never log in (static `headers` only)."""

    def resolve(self) -> ResolvedHttp:
        """Expand variables in the URL, headers and OAuth settings.

        Raises:
            ConfigError: a variable is not set and has no default.
        """
        where = _Where(self.source, self.name, base_dir=self.base_dir, inputs=self.inputs)
        headers = {
            key: _expand(value, where.at(f"headers.{key}")) for key, value in self.headers.items()
        }
        static = any(key.lower() == "authorization" for key in headers)
        oauth = self.oauth
        return ResolvedHttp(
            url=_expand(self.url, where.at("url")),
            headers=headers,
            oauth=None if oauth is None or static else _resolve_oauth(oauth, where),
        )


def _resolve_oauth(oauth: OAuthSettings, where: _Where) -> ResolvedOAuth:
    def expand(value: str | None, name: str) -> str | None:
        return _expand(value, where.at(f"oauth.{name}")) if value is not None else None

    token = os.environ.get(oauth.token_env) if oauth.token_env else None
    return ResolvedOAuth(
        client_id=expand(oauth.client_id, "client_id"),
        client_secret=expand(oauth.client_secret, "client_secret"),
        scopes=oauth.scopes,
        grant=oauth.grant,
        issuer=expand(oauth.issuer, "issuer"),
        callback_port=oauth.callback_port,
        token=token or None,
        token_env=oauth.token_env,
    )


ServerConfig = StdioServer | HttpServer


@dataclass(frozen=True)
class Config:
    """The servers of one `mcp.json`, in file order, without disabled ones."""

    path: str
    servers: tuple[ServerConfig, ...]
    privacy: Any = None
    """The raw `privacy` section (checked by the host's privacy module, not needed here)."""
    skills: Any = None
    """The raw `skills` section (who shares skills; checked by the host's skills module)."""
    sandbox: Any = None
    """The raw `sandbox` section (limits, packages, network; checked by the host's policy module)."""
    approval: Any = None
    """The raw `approval` section (which calls need a person's yes; checked on the host)."""
    disabled: tuple[str, ...] = ()
    """The servers marked `"disabled": true`, left out of `servers`."""
    notes: tuple[str, ...] = ()
    """What was ignored (keys that belong to a client), one line each, for `--verbose`."""
    inputs: tuple[InputSpec, ...] = ()
    """VS Code's `inputs`, in file order."""

    def server(self, name: str) -> ServerConfig:
        """The server configured under `name`.

        Raises:
            ConfigError: no server has that name.
        """
        for server in self.servers:
            if server.name == name:
                return server
        known = ", ".join(server.name for server in self.servers) or "none"
        raise ConfigError(f"{self.path}: no server {name!r} (configured: {known})")


_LIBRARY_HINT = f"call configure(PATH) or set {CONFIG_ENV}"


def load_config(
    path: str | os.PathLike[str] | None = None, *, missing_hint: str = _LIBRARY_HINT
) -> Config:
    """Read and check an `mcp.json`.

    `path` defaults to `$MCP_CODEGEN_CONFIG`, then `./mcp.json`. `missing_hint`
    ends the error for a file that does not exist (a command says `--config`).

    Raises:
        ConfigError: the file is missing or unreadable, not JSON, or a field is wrong.
    """
    if path is None:
        path = os.environ.get(CONFIG_ENV) or "mcp.json"
    file = Path(path)
    source = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file; {missing_hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{source} is a directory; give the path of the mcp.json file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text; is it an mcp.json?") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    return parse_config(data, source=source, base_dir=str(file.resolve().parent))


def parse_config(data: Any, *, source: str = "mcp.json", base_dir: str = ".") -> Config:
    """Check the parsed JSON of an `mcp.json` (see `load_config`).

    Raises:
        ConfigError: a field is missing, unknown or of the wrong type.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be an object with 'mcpServers'")
    servers_key = "mcpServers" if "mcpServers" in data else "servers" if "servers" in data else None
    if servers_key is None:
        close = difflib.get_close_matches("mcpServers", list(data), n=1, cutoff=0.7)
        hint = f"; did you mean 'mcpServers' for {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{source}: no 'mcpServers' (the object of servers by name){hint} "
            "`mcp-codegen init` writes a starter config"
        )
    notes = [
        f"{source}: ignored the top-level key {key!r} (not about MCP servers)"
        for key in data
        if key not in _TOP_KEYS
    ]
    entries = data.get(servers_key)
    if not isinstance(entries, dict):
        raise ConfigError(f"{source}: {servers_key!r} must be an object of servers by name")
    inputs = _inputs(data.get("inputs"), source)
    servers: list[ServerConfig] = []
    disabled: list[str] = []
    base_dir = os.path.abspath(base_dir)  # a relative command must not be looked up in its own cwd
    for name, entry in entries.items():
        where = _Where(source, name, base_dir=base_dir, inputs=inputs)
        server = _parse_server(name, entry, where, notes)
        if server is None:
            disabled.append(name)
        else:
            servers.append(server)
    _check_privacy_servers(data.get("privacy"), list(entries), source)
    _check_privacy_servers(data.get("approval"), list(entries), source, "approval")
    return Config(
        path=source,
        servers=tuple(servers),
        privacy=data.get("privacy"),
        skills=data.get("skills"),
        sandbox=data.get("sandbox"),
        approval=data.get("approval"),
        disabled=tuple(disabled),
        notes=tuple(notes),
        inputs=tuple(inputs.values()),
    )


def _inputs(raw: Any, source: str) -> dict[str, InputSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'inputs' must be a list of {{'id': ..., 'description': ...}}")
    found: dict[str, InputSpec] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise ConfigError(f"{source}: inputs[{index}] must be an object with a string 'id'")
        description = item.get("description")
        found[item["id"]] = InputSpec(
            id=item["id"],
            description=description if isinstance(description, str) else "",
            password=item.get("password") is True,
        )
    return found


def _check_privacy_servers(
    privacy: Any, names: list[str], source: str, section: str = "privacy"
) -> None:
    # The rest of `privacy` (and `approval`) is the host's to check; a server it names
    # must exist here, or a typo would leave that server's data untokenized (its calls
    # unapproved) without a word.
    if not isinstance(privacy, dict) or not isinstance(privacy.get("servers"), dict):
        return
    for name in privacy["servers"]:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"configured: {', '.join(names) or 'none'}"
            )
            raise ConfigError(f"{source}: {section}.servers.{name}: no server {name!r} ({hint})")


class _Where:
    def __init__(
        self,
        source: str,
        server: str,
        field_name: str | None = None,
        *,
        base_dir: str = ".",
        inputs: Mapping[str, InputSpec] | None = None,
    ):
        self.source, self.server, self.field = source, server, field_name
        self.base_dir = base_dir
        self.inputs: Mapping[str, InputSpec] = inputs or {}

    def at(self, field_name: str) -> _Where:
        return _Where(
            self.source, self.server, field_name, base_dir=self.base_dir, inputs=self.inputs
        )

    def error(self, message: str) -> ConfigError:
        place = f"{self.source}: server {self.server!r}"
        if self.field:
            place += f": field {self.field!r}"
        return ConfigError(f"{place}: {message}")


def _parse_server(name: str, entry: Any, where: _Where, notes: list[str]) -> ServerConfig | None:
    if not name or not isinstance(entry, dict):
        raise where.error("each server must be an object with 'command' or 'url'")
    if entry.get("disabled") is True:
        return None  # a client may keep entries it cannot start: not ours to judge
    kind = entry.get("type")
    if kind is not None and kind != "stdio" and kind not in _HTTP_TYPES:
        raise where.at("type").error(
            f"{kind!r} is not supported; use 'stdio' or 'http' (streamable HTTP)"
        )
    for key in sorted(set(entry) & CLIENT_KEYS):
        notes.append(f"{where.source}: server {name!r}: ignored {key!r} (a client's setting)")
    keys = set(entry) - CLIENT_KEYS
    has_command, has_url = "command" in keys, "url" in keys
    allowed = _STDIO_KEYS if has_command or kind == "stdio" else _HTTP_KEYS
    if not has_url and not has_command:
        allowed = _STDIO_KEYS | _HTTP_KEYS
    if has_command and has_url:
        raise where.error("has both 'command' (stdio) and 'url' (HTTP); give one of them")
    unknown = sorted(keys - allowed)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(allowed), n=1, cutoff=0.6)
        if close:
            raise where.at(unknown[0]).error(f"unknown key; did you mean {close[0]!r}?")
        if has_command or has_url:
            raise where.at(unknown[0]).error(
                f"unknown key; a {'stdio' if has_command else 'HTTP'} server takes "
                + ", ".join(sorted(allowed - _COMMON_KEYS))
            )
    if not has_command and not has_url:
        raise where.error("has neither 'command' (stdio) nor 'url' (HTTP); give one of them")
    timeout = entry.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise where.at("timeout").error("must be a positive number of seconds")
    _check_inputs(entry, where)
    if has_command:
        env_file = entry.get("envFile")
        return StdioServer(
            name=name,
            command=_string(entry["command"], where.at("command")),
            args=tuple(_strings(entry.get("args", []), where.at("args"))),
            env=_string_map(entry.get("env", {}), where.at("env")),
            cwd=_string(entry["cwd"], where.at("cwd")) if entry.get("cwd") is not None else None,
            timeout=float(timeout) if timeout is not None else None,
            source=where.source,
            base_dir=where.base_dir,
            env_file=_string(env_file, where.at("envFile")) if env_file is not None else None,
            inputs=where.inputs,
        )
    return HttpServer(
        name=name,
        url=_string(entry["url"], where.at("url")),
        headers=_string_map(entry.get("headers", {}), where.at("headers")),
        timeout=float(timeout) if timeout is not None else None,
        source=where.source,
        base_dir=where.base_dir,
        inputs=where.inputs,
        oauth=_parse_oauth(entry.get("oauth", {}), where.at("oauth")),
    )


def _parse_oauth(value: Any, where: _Where) -> OAuthSettings | None:
    if value is False:
        return None
    if not isinstance(value, dict):
        raise where.error("must be an object (client_id, client_secret, scopes, ...) or false")
    unknown = sorted(set(value) - _OAUTH_KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(_OAUTH_KEYS), n=1, cutoff=0.6)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else "oauth takes " + ", ".join(sorted(_OAUTH_KEYS))
        )
        raise where.at(f"oauth.{unknown[0]}").error(f"unknown key; {hint}")

    def text(key: str) -> str | None:
        return _string(value[key], where.at(f"oauth.{key}")) if value.get(key) is not None else None

    scopes: Any = value.get("scopes", [])
    if isinstance(scopes, str):
        scopes = scopes.split()
    scopes = _strings(scopes, where.at("oauth.scopes"))
    grant = text("grant") or "authorization_code"
    if grant not in _GRANTS:
        raise where.at("oauth.grant").error(
            f"{grant!r} is not supported; use {' or '.join(_GRANTS)}"
        )
    if grant == "client_credentials" and not (
        value.get("client_id") and value.get("client_secret")
    ):
        raise where.at("oauth.grant").error(
            "client_credentials needs oauth.client_id and oauth.client_secret"
        )
    token_env = text("token_env")
    if token_env is not None and not _NAME.fullmatch(token_env):
        raise where.at("oauth.token_env").error(
            "must be the name of an environment variable (not ${...}, not the token itself)"
        )
    port = value.get("callback_port")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
    ):
        raise where.at("oauth.callback_port").error("must be a port number (1-65535)")
    return OAuthSettings(
        client_id=text("client_id"),
        client_secret=text("client_secret"),
        scopes=tuple(scopes),
        token_env=token_env,
        grant=grant,
        issuer=text("issuer"),
        callback_port=port,
    )


def _check_inputs(entry: dict[str, Any], where: _Where) -> None:
    """Every `${input:id}` must name an input of `inputs` (checked now, read at start)."""
    for text in _strings_in(entry):
        for match in _VAR.finditer(text):
            inner = match.group(1)
            if inner.startswith("input:") and inner[6:] not in where.inputs:
                raise where.error(
                    f"${{{inner}}} names no input; declare {{'id': {inner[6:]!r}, ...}} "
                    "under the top-level 'inputs'"
                )


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings_in(item)]
    return []


def _string(value: Any, where: _Where) -> str:
    if not isinstance(value, str) or not value:
        raise where.error("must be a non-empty string")
    return value


def _strings(value: Any, where: _Where) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise where.error("must be a list of strings")
    return list(value)


def _string_map(value: Any, where: _Where) -> dict[str, str]:
    if not isinstance(value, dict):
        raise where.error("must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise where.at(f"{where.field}.{key}").error("must be a string")
    return dict(value)


def _read_env_file(path: str, where: _Where) -> dict[str, str]:
    """A dotenv file: `KEY=value` lines, `export` and quotes allowed, `#` comments."""
    file = Path(path) if os.path.isabs(path) else Path(where.base_dir) / path
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise where.at("envFile").error(f"{file}: cannot read ({reason})") from None
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, equals, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not equals or not _NAME.fullmatch(key):
            raise where.at("envFile").error(f"{file}:{number}: expected KEY=value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        found[key] = value
    return found


def _expand(value: str, where: _Where) -> str:
    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        name, has_default, default = inner.partition(":-")
        if name.startswith("env:"):
            name = name[4:]
        elif name.startswith("input:") and not has_default:
            return _input(name[6:], where)
        elif name in ("userHome", "workspaceFolder") and not has_default:
            return _predefined(name, where)
        if not _NAME.fullmatch(name):
            if ":" in name and not has_default:
                raise where.error(
                    f"${{{inner}}} is not supported; use ${{VAR}}, ${{env:VAR}} or ${{input:ID}}"
                )
            return match.group(0)  # not a variable: left as written
        found = os.environ.get(name)
        if found is not None:
            return found
        if has_default:
            return default
        raise where.error(
            f"${{{name}}} is not set; export {name} or give a default as ${{{name}:-…}}"
        )

    return _VAR.sub(replace, value)


def _input(input_id: str, where: _Where) -> str:
    spec = where.inputs.get(input_id)
    if spec is None or not _INPUT_ID.fullmatch(input_id):
        raise where.error(f"${{input:{input_id}}} names no input of 'inputs'")
    found = os.environ.get(spec.env_name)
    if found is not None:
        return found
    if input_id in _typed:
        return _typed[input_id]
    if _prompt is not None:
        _typed[input_id] = _prompt(spec)
        return _typed[input_id]
    raise where.error(
        f"${{input:{input_id}}} has no value; set {spec.env_name} "
        "(mcp-codegen asks for it only when run on a terminal)"
    )


def _predefined(name: str, where: _Where) -> str:
    if name == "userHome":
        return str(Path.home())
    # VS Code and Cursor keep a workspace's config in .vscode/ or .cursor/ of the workspace.
    base = Path(where.base_dir)
    return str(base.parent if base.name in (".vscode", ".cursor") else base)
