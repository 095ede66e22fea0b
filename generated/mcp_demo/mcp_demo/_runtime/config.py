"""Reading `mcp.json`: the `mcpServers` format of Claude Desktop, Cursor and VS Code.

Stdio servers have `command`, `args`, `env`, `cwd`; streamable-HTTP servers have
`url`, `headers` and `oauth` (how to log in when the server answers 401). `${VAR}` (and `${VAR:-default}`) in any string value is read
from the environment only when a server is started (`resolve()`), so the parsed
config, and everything built from it, never holds a secret's value. A relative
`cwd`, and a relative `command` that contains a `/`, are taken relative to the
directory of the config file.

Every error names the file, the server and the field, on one line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "Config",
    "HttpServer",
    "OAuthSettings",
    "ResolvedHttp",
    "ResolvedOAuth",
    "ResolvedStdio",
    "StdioServer",
    "load_config",
]

CONFIG_ENV = "MCP_CODEGEN_CONFIG"
"""Environment variable naming the `mcp.json` a generated package reads by default."""

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_COMMON_KEYS = {"type", "disabled", "timeout", "description"}
_STDIO_KEYS = {"command", "args", "env", "cwd"} | _COMMON_KEYS
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
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HTTP_TYPES = {"http", "streamable-http", "streamableHttp", "streamable_http"}
_TOP_KEYS = {"mcpServers", "servers", "inputs", "$schema", "privacy"}


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

    def resolve(self) -> ResolvedStdio:
        """Expand `${VAR}` and relative paths.

        Raises:
            ConfigError: a variable is not set and has no default.
        """
        where = _Where(self.source, self.name)
        command = _expand(self.command, where.at("command"))
        if "/" in command and not os.path.isabs(command):
            command = os.path.normpath(os.path.join(self.base_dir, command))
        cwd = _expand(self.cwd, where.at("cwd")) if self.cwd is not None else None
        if cwd is not None and not os.path.isabs(cwd):
            cwd = os.path.normpath(os.path.join(self.base_dir, cwd))
        return ResolvedStdio(
            command=command,
            args=tuple(_expand(arg, where.at(f"args[{i}]")) for i, arg in enumerate(self.args)),
            env={key: _expand(value, where.at(f"env.{key}")) for key, value in self.env.items()},
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
    oauth: OAuthSettings | None = field(default_factory=OAuthSettings)
    """None: `"oauth": false`, never log in (static `headers` only)."""

    def resolve(self) -> ResolvedHttp:
        """Expand `${VAR}` in the URL, headers and OAuth settings.

        Raises:
            ConfigError: a variable is not set and has no default.
        """
        where = _Where(self.source, self.name)
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


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check an `mcp.json`.

    `path` defaults to `$MCP_CODEGEN_CONFIG`, then `./mcp.json`.

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
        raise ConfigError(f"{source}: no such file; pass --config or set {CONFIG_ENV}") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from None
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
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {unknown[0]!r}; expected 'mcpServers'")
    servers_key = "mcpServers" if "mcpServers" in data else "servers"
    entries = data.get(servers_key)
    if not isinstance(entries, dict):
        raise ConfigError(f"{source}: 'mcpServers' must be an object of servers by name")
    servers: list[ServerConfig] = []
    base_dir = os.path.abspath(base_dir)  # a relative command must not be looked up in its own cwd
    for name, entry in entries.items():
        server = _parse_server(name, entry, _Where(source, name), base_dir)
        if server is not None:
            servers.append(server)
    return Config(path=source, servers=tuple(servers), privacy=data.get("privacy"))


class _Where:
    def __init__(self, source: str, server: str, field_name: str | None = None):
        self.source, self.server, self.field = source, server, field_name

    def at(self, field_name: str) -> _Where:
        return _Where(self.source, self.server, field_name)

    def error(self, message: str) -> ConfigError:
        place = f"{self.source}: server {self.server!r}"
        if self.field:
            place += f": field {self.field!r}"
        return ConfigError(f"{place}: {message}")


def _parse_server(name: str, entry: Any, where: _Where, base_dir: str) -> ServerConfig | None:
    if not name or not isinstance(entry, dict):
        raise where.error("each server must be an object with 'command' or 'url'")
    if entry.get("disabled") is True:
        return None
    kind = entry.get("type")
    if kind is not None and kind != "stdio" and kind not in _HTTP_TYPES:
        raise where.at("type").error(
            f"{kind!r} is not supported; use 'stdio' or 'http' (streamable HTTP)"
        )
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        problem = "has both" if has_command else "has neither"
        raise where.error(f"{problem} 'command' (stdio) and 'url' (HTTP); give exactly one")
    allowed = _STDIO_KEYS if has_command else _HTTP_KEYS
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise where.at(unknown[0]).error(
            f"unknown key; a {'stdio' if has_command else 'HTTP'} server takes "
            + ", ".join(sorted(allowed - _COMMON_KEYS))
        )
    timeout = entry.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise where.at("timeout").error("must be a positive number of seconds")
    if has_command:
        return StdioServer(
            name=name,
            command=_string(entry["command"], where.at("command")),
            args=tuple(_strings(entry.get("args", []), where.at("args"))),
            env=_string_map(entry.get("env", {}), where.at("env")),
            cwd=_string(entry["cwd"], where.at("cwd")) if entry.get("cwd") is not None else None,
            timeout=float(timeout) if timeout is not None else None,
            source=where.source,
            base_dir=base_dir,
        )
    return HttpServer(
        name=name,
        url=_string(entry["url"], where.at("url")),
        headers=_string_map(entry.get("headers", {}), where.at("headers")),
        timeout=float(timeout) if timeout is not None else None,
        source=where.source,
        oauth=_parse_oauth(entry.get("oauth", {}), where.at("oauth")),
    )


def _parse_oauth(value: Any, where: _Where) -> OAuthSettings | None:
    if value is False:
        return None
    if not isinstance(value, dict):
        raise where.error("must be an object (client_id, client_secret, scopes, ...) or false")
    unknown = sorted(set(value) - _OAUTH_KEYS)
    if unknown:
        raise where.at(f"oauth.{unknown[0]}").error(
            "unknown key; oauth takes " + ", ".join(sorted(_OAUTH_KEYS))
        )

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
    if token_env is not None and not _ENV_NAME.fullmatch(token_env):
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


def _expand(value: str, where: _Where) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None:
            return found
        if default is not None:
            return default
        raise where.error(
            f"${{{name}}} is not set; export {name} or give a default as ${{{name}:-…}}"
        )

    return _VAR.sub(replace, value)
