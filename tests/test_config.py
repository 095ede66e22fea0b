"""mcp.json: the shapes that work, and one clear line for each that does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.config import ConfigError, HttpServer, StdioServer, load_config


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_stdio_and_http_servers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "local": {"command": "uvx", "args": ["x"], "env": {"A": "1"}, "cwd": "sub"},
                "remote": {
                    "type": "http",
                    "url": "https://example.invalid/mcp",
                    "headers": {"X": "y"},
                },
                "off": {"command": "nope", "disabled": True},
            }
        },
    )
    config = load_config(path)
    assert [server.name for server in config.servers] == ["local", "remote"]
    local, remote = config.servers
    assert isinstance(local, StdioServer) and isinstance(remote, HttpServer)
    resolved = local.resolve()
    assert resolved.command == "uvx"  # a bare command is looked up on PATH
    assert resolved.cwd == str(tmp_path / "sub")  # a relative cwd is relative to the config file
    assert remote.resolve().headers == {"X": "y"}


def test_relative_command_is_made_absolute_against_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {"s": {"command": "./bin/server", "cwd": "/tmp"}}})
    assert load_config(path).servers[0].resolve().command == str(tmp_path / "bin" / "server")  # type: ignore[union-attr]


def test_variables_expand_at_run_time_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "s": {"command": "srv", "env": {"TOKEN": "${MY_TOKEN}", "MODE": "${MODE:-fast}"}}
            }
        },
    )
    monkeypatch.delenv("MY_TOKEN", raising=False)
    server = load_config(path).servers[0]
    assert server.env == {"TOKEN": "${MY_TOKEN}", "MODE": "${MODE:-fast}"}  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as caught:
        server.resolve()
    message = str(caught.value)
    assert (
        "mcp.json" in message
        and "'s'" in message
        and "env.TOKEN" in message
        and "MY_TOKEN" in message
    )
    monkeypatch.setenv("MY_TOKEN", "t0k")
    assert server.resolve().env == {"TOKEN": "t0k", "MODE": "fast"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ({"mcpServers": 3}, "'mcpServers' must be an object"),
        ({"servers": 3}, "'servers' must be an object"),
        ({"mcpServer": {}}, "no 'mcpServers'"),
        (
            {"mcpServers": {"a": {"args": []}}},
            "server 'a': has neither 'command' (stdio) nor 'url' (HTTP); give one of them",
        ),
        (
            {"mcpServers": {"a": {"comand": "x"}}},
            "server 'a': field 'comand': unknown key; did you mean 'command'?",
        ),
        (
            {"mcpServers": {"a": {"command": "x", "arg": ["y"]}}},
            "server 'a': field 'arg': unknown key; did you mean 'args'?",
        ),
        (
            {"mcpServers": {"a": {"command": "x"}}, "privacy": {"servers": {"b": False}}},
            "privacy.servers.b: no server 'b' (configured: a)",
        ),
        (
            {"mcpServers": {"a": {"command": "x", "env": {"K": "${input:key}"}}}},
            "server 'a': ${input:key} names no input; declare",
        ),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h"}}}, "server 'a': has both"),
        (
            {"mcpServers": {"a": {"command": "x", "environment": {}}}},
            "server 'a': field 'environment': unknown key",
        ),
        (
            {"mcpServers": {"a": {"command": "x", "args": "--flag"}}},
            "server 'a': field 'args': must be a list",
        ),
        (
            {"mcpServers": {"a": {"url": "http://h", "headers": {"k": 1}}}},
            "field 'headers.k': must be a string",
        ),
        (
            {"mcpServers": {"a": {"command": "x", "type": "sse"}}},
            "field 'type': 'sse' is not supported",
        ),
        (
            {"mcpServers": {"a": {"command": "x", "timeout": -1}}},
            "field 'timeout': must be a positive",
        ),
    ],
)
def test_bad_config_is_one_line_naming_file_server_and_field(
    tmp_path: Path, content: object, expected: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert expected in message, message
    assert "\n" not in message


def test_missing_file_names_it_and_says_what_to_do(tmp_path: Path) -> None:
    # The library (a generated package) says configure(); the command line says --config.
    with pytest.raises(ConfigError, match=r"nowhere\.json: no such file; call configure\(PATH\)"):
        load_config(tmp_path / "nowhere.json")
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "nope.json")])
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'nope.json'}: no such file; pass --config PATH or set "
        "MCP_CODEGEN_CONFIG, or run `mcp-codegen init` to write one"
    ]


def test_cli_reports_config_errors_without_traceback(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"mcpServers": {"gh": {"command": "x", "env": {"T": "${UNSET_FOR_TEST_XYZ}"}}}}
    )
    result = CliRunner().invoke(
        main, ["build", "--config", str(path), "--package", str(tmp_path / "out")]
    )
    assert result.exit_code == 3
    assert (
        "error:" in result.output
        and "'gh'" in result.output
        and "UNSET_FOR_TEST_XYZ" in result.output
    )
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
