"""The configs users already have (issue 11, finding 7): Claude Desktop, Claude Code, Cursor and
VS Code files as they are, and `mcp-codegen init` to start or to import one.

Every config here starts the real toolbox server (tests/servers/toolbox.py), whose tool set
says which environment reached it: `TOOLBOX_VARIANT=v2` adds `multiply`.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from codegen.cli import main
from codegen.config import ConfigError, load_config
from tests.conftest import ROOT, server_entry

TOOLBOX = server_entry("toolbox.py")


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args], env=env)


def tools_of(package: Path, server: str = "tb") -> list[str]:
    name = next(path.parent.parent.name for path in package.glob("*/_runtime/__init__.py"))
    folder = package / name / "servers" / server
    return sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MCP_CODEGEN_CONFIG", raising=False)
    monkeypatch.delenv("MCP_INPUT_VARIANT", raising=False)
    return tmp_path


CLAUDE_DESKTOP = {
    "globalShortcut": "Alt+Space",
    "preferences": {"quickEntryShortcut": "double-tap-option", "menuBarEnabled": False},
    "mcpServers": {"tb": {**TOOLBOX, "autoApprove": ["add"], "alwaysAllow": []}},
}


def test_a_claude_desktop_config_builds_as_it_is(here: Path) -> None:
    (here / "claude_desktop_config.json").write_text(json.dumps(CLAUDE_DESKTOP), encoding="utf-8")
    quiet = cli("build", "--config", "claude_desktop_config.json", "--package", "out")
    assert quiet.exit_code == 0, quiet.output
    assert "note:" not in quiet.stderr
    assert tools_of(here / "out") == ["add", "fail", "greet", "hostile", "move_point_v2", "whoami"]
    verbose = cli("build", "-v", "--config", "claude_desktop_config.json", "--package", "out")
    assert verbose.exit_code == 0, verbose.output
    notes = [line for line in verbose.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: claude_desktop_config.json: ignored the top-level key 'globalShortcut' (not about MCP servers)",
        "note: claude_desktop_config.json: ignored the top-level key 'preferences' (not about MCP servers)",
        "note: claude_desktop_config.json: server 'tb': ignored 'alwaysAllow' (a client's setting)",
        "note: claude_desktop_config.json: server 'tb': ignored 'autoApprove' (a client's setting)",
    ]


def test_cursor_env_file_is_read_relative_to_the_config(here: Path) -> None:
    cursor = here / ".cursor"
    cursor.mkdir()
    (cursor / "tb.env").write_text(
        "# the toolbox's settings\nexport TOOLBOX_VARIANT='v2'\nTOOLBOX_SECRET=s3cr3t # inline\n",
        encoding="utf-8",
    )
    config = {"mcpServers": {"tb": {**TOOLBOX, "envFile": "tb.env", "env": {"EXTRA": "1"}}}}
    (cursor / "mcp.json").write_text(json.dumps(config), encoding="utf-8")
    resolved = load_config(cursor / "mcp.json").servers[0].resolve()
    assert resolved.env == {"TOOLBOX_VARIANT": "v2", "TOOLBOX_SECRET": "s3cr3t", "EXTRA": "1"}  # type: ignore[union-attr]
    result = cli("build", "--config", ".cursor/mcp.json", "--package", "out")
    assert result.exit_code == 0, result.output
    assert "multiply" in tools_of(here / "out")
    assert "s3cr3t" not in (here / "out" / "mcp-snapshot.json").read_text(encoding="utf-8")
    (cursor / "tb.env").unlink()
    missing = cli("build", "--config", ".cursor/mcp.json", "--package", "out")
    assert missing.exit_code == 3
    assert (
        "server 'tb': field 'envFile':" in missing.stderr
        and "tb.env: cannot read" in missing.stderr
    )


VSCODE = {
    "inputs": [{"type": "promptString", "id": "variant", "description": "Toolbox variant"}],
    "servers": {
        "tb": {"type": "stdio", **TOOLBOX, "env": {"TOOLBOX_VARIANT": "${input:variant}"}},
        "remote": {"type": "sse", "url": "https://example.invalid/sse", "disabled": True},
    },
}


def test_vscode_servers_and_inputs_read_from_the_environment(here: Path) -> None:
    vscode = here / ".vscode"
    vscode.mkdir()
    (vscode / "mcp.json").write_text(json.dumps(VSCODE), encoding="utf-8")
    unset = cli("build", "--config", ".vscode/mcp.json", "--package", "out")
    assert unset.exit_code == 3
    assert [line for line in unset.stderr.splitlines() if "error" in line] == [
        "error: .vscode/mcp.json: server 'tb': field 'env.TOOLBOX_VARIANT': ${input:variant} "
        "has no value; set MCP_INPUT_VARIANT (mcp-codegen asks for it only when run on a terminal)"
    ]
    result = cli(
        "build", "--config", ".vscode/mcp.json", "--package", "out", env={"MCP_INPUT_VARIANT": "v2"}
    )
    assert result.exit_code == 0, result.output
    assert "multiply" in tools_of(here / "out")


def test_vscode_inputs_are_asked_for_on_a_terminal(here: Path) -> None:
    (here / "mcp.json").write_text(json.dumps(VSCODE), encoding="utf-8")
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "codegen", "build", "--package", "out"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=here,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    while b"Toolbox variant" not in seen and time.monotonic() < deadline:
        if select.select([primary], [], [], 1)[0]:
            seen += os.read(primary, 4096)
    assert b"Toolbox variant (${input:variant}; or set MCP_INPUT_VARIANT): " in seen, seen
    os.write(primary, b"v2\n")
    try:
        while process.poll() is None:
            if select.select([primary], [], [], 1)[0]:
                try:
                    seen += os.read(primary, 4096)
                except OSError:
                    break
        assert process.wait(timeout=120) == 0, seen.decode(errors="replace")
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
    assert "multiply" in tools_of(here / "out")


def test_variables_of_vscode_and_cursor(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vscode = here / ".vscode"
    vscode.mkdir()
    config = {
        "servers": {
            "s": {
                "command": "srv",
                "args": ["${workspaceFolder}/data", "${userHome}"],
                "env": {"TOKEN": "${env:MY_TOKEN}"},
            }
        }
    }
    (vscode / "mcp.json").write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setenv("MY_TOKEN", "t0k")
    resolved = load_config(vscode / "mcp.json").servers[0].resolve()
    assert resolved.args == (f"{here}/data", str(Path.home()))  # type: ignore[union-attr]
    assert resolved.env == {"TOKEN": "t0k"}  # type: ignore[union-attr]
    config["servers"]["s"]["args"] = ["${command:pickFolder}"]
    (vscode / "mcp.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\$\{command:pickFolder\} is not supported"):
        load_config(vscode / "mcp.json").servers[0].resolve()


# --- mcp-codegen init --------------------------------------------------------------------------


def test_init_writes_a_starter_and_never_overwrites(here: Path) -> None:
    result = cli("init")
    assert result.exit_code == 0, result.output
    starter = json.loads((here / "mcp.json").read_text(encoding="utf-8"))
    assert list(starter["mcpServers"]) == ["time"]
    assert load_config(here / "mcp.json").servers[0].name == "time"
    assert "next: mcp-codegen build" in result.stdout
    (here / "mcp.json").write_text('{"mine": true}', encoding="utf-8")
    again = cli("init")
    assert again.exit_code == 5
    assert again.stderr.startswith("error: mcp.json already exists; nothing was changed")
    assert (here / "mcp.json").read_text(encoding="utf-8") == '{"mine": true}'


def test_init_imports_a_claude_desktop_config_and_it_builds(here: Path) -> None:
    source = here / "Claude" / "claude_desktop_config.json"
    source.parent.mkdir()
    desktop = {
        **CLAUDE_DESKTOP,
        "mcpServers": {
            **CLAUDE_DESKTOP["mcpServers"],
            "local": {"command": "./bin/server", "cwd": "data"},
            "old": {"type": "sse", "url": "https://example.invalid/sse"},
        },
    }
    source.write_text(json.dumps(desktop), encoding="utf-8")
    result = cli("init", "--from", source, "--config", "project/mcp.json")
    assert result.exit_code == 0, result.output
    assert f"wrote project/mcp.json: 3 servers from {source}" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: project/mcp.json: server 'old': field 'type': 'sse' is not supported; use "
        "'stdio' or 'http' (streamable HTTP) (imported as disabled)"
    ]
    written = json.loads((here / "project" / "mcp.json").read_text(encoding="utf-8"))
    assert set(written) == {"mcpServers"}
    assert "autoApprove" not in written["mcpServers"]["tb"]
    # Paths relative to the client's config now point where they pointed before.
    assert written["mcpServers"]["local"] == {
        "command": str(source.parent / "bin" / "server"),
        "cwd": str(source.parent / "data"),
    }
    assert written["mcpServers"]["old"]["disabled"] is True
    written["mcpServers"].pop("local")
    (here / "project" / "mcp.json").write_text(json.dumps(written), encoding="utf-8")
    built = cli("build", "--config", "project/mcp.json")
    assert built.exit_code == 0, built.output
    assert (here / "project" / "generated" / "mcp_tools" / "mcp_tools" / "servers" / "tb").is_dir()


def test_init_finds_a_client_config_in_its_usual_place(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = here / "home"
    (home / ".cursor").mkdir(parents=True)
    (home / ".cursor" / "mcp.json").write_text(
        json.dumps({"mcpServers": {"tb": TOOLBOX}}), encoding="utf-8"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    starter = cli("init", "--config", "starter.json")
    assert f"found a Cursor config at {home / '.cursor' / 'mcp.json'}" in starter.stdout
    result = cli("init", "--from", "cursor")
    assert result.exit_code == 0, result.output
    assert [server.name for server in load_config(here / "mcp.json").servers] == ["tb"]
    none = cli("init", "--from", "claude-desktop", "--config", "other.json")
    assert none.exit_code == 3 and "no Claude Desktop config found (looked at" in none.stderr
    assert not (here / "other.json").exists()


def test_init_imports_vscode_inputs_and_claude_code_projects(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (here / ".vscode").mkdir()
    (here / ".vscode" / "mcp.json").write_text(json.dumps(VSCODE), encoding="utf-8")
    assert cli("init", "--from", "vscode", "--config", "a.json").exit_code == 0
    imported = json.loads((here / "a.json").read_text(encoding="utf-8"))
    assert imported["inputs"] == VSCODE["inputs"] and set(imported["mcpServers"]) == {
        "tb",
        "remote",
    }
    claude = {
        "numStartups": 3,
        "mcpServers": {"user": {"command": "u"}},
        "projects": {str(here.resolve()): {"mcpServers": {"tb": TOOLBOX}}, "/x": {}},
    }
    (here / "claude.json").write_text(json.dumps(claude), encoding="utf-8")
    assert cli("init", "--from", "claude.json", "--config", "b.json").exit_code == 0
    imported = json.loads((here / "b.json").read_text(encoding="utf-8"))
    assert list(imported["mcpServers"]) == ["user", "tb"]
