"""One command line (issue 11): it never removes what it did not write, names things one way,
and fails one way: one `error:` line and the same exit code for the same mistake everywhere.

Real servers (tests/servers), real builds, the real `mcp-codegen` command in a subprocess
where a terminal, stdin, a file-size limit or an interpreter without `mcp` is the point.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from codegen.cli import main
from codegen.cli.errors import COMMAND_REASONS, EXIT_CODES, REASONS
from codegen.package import locate_package
from codegen.snapshot import Snapshot
from tests.conftest import ROOT, build, server_entry, write_config

MCP_CODEGEN = [sys.executable, "-m", "codegen"]


def cli(*args: str | Path, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """`mcp-codegen ARGS` in this process (the current directory is the caller's)."""
    return CliRunner().invoke(main, [str(arg) for arg in args], env=env, input=input)


def one_error_line(result: Result) -> str:
    """The single `error:` line a failed command printed, with no traceback."""
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def files_under(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def tb_snapshot(toolbox_package: tuple[Path, Path]) -> Path:
    """The toolbox server's snapshot, to build packages without starting a server."""
    return toolbox_package[1] / "mcp-snapshot.json"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project directory with an mcp.json of one server that leaves `STARTED` when started."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MCP_CODEGEN_CONFIG", raising=False)
    write_config(tmp_path / "mcp.json", {"toolbox": server_entry("toolbox.py")})
    write_config(
        tmp_path / "tracer.json",
        {
            "tracer": {
                "command": sys.executable,
                "args": ["-c", f"open({str(tmp_path / 'STARTED')!r}, 'w').close()"],
            }
        },
    )
    yield tmp_path


# --- finding 1: a build replaces only what mcp-codegen built -----------------------------------


def test_build_refuses_a_directory_it_did_not_write_before_any_server_starts(
    project: Path,
) -> None:
    mine = project / "mine"
    (mine / "src").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me", encoding="utf-8")
    (mine / "src" / "app.py").write_text("print('mine')", encoding="utf-8")
    before = files_under(mine)
    result = cli("build", "--config", "tracer.json", "--package", "mine")
    assert result.exit_code == EXIT_CODES["output"] == 5
    line = one_error_line(result)
    assert "mine is not empty and not a package mcp-codegen built" in line
    assert "notes.txt, src" in line and "nothing was changed" in line
    assert files_under(mine) == before
    assert not (project / "STARTED").exists()  # refused before the server started


def test_build_beside_its_config_refuses_the_current_directory(project: Path) -> None:
    config = (project / "mcp.json").read_bytes()
    for spelling in (".", str(project)):
        result = cli("build", "--config", "tracer.json", "--out", spelling)
        assert result.exit_code == 5, result.output
        assert "the current directory or one above it" in one_error_line(result)
        assert "warning: --out is deprecated; use --package" in result.stderr
    assert (project / "mcp.json").read_bytes() == config
    assert not (project / "STARTED").exists()


def test_build_into_generated_never_removes_a_sibling_package(
    project: Path, tb_snapshot: Path
) -> None:
    build(project / "generated" / "first", name="first", snapshot=Snapshot.read(tb_snapshot))
    build(project / "generated" / "second", name="second", snapshot=Snapshot.read(tb_snapshot))
    before = files_under(project / "generated")
    result = cli("build", "--config", "tracer.json", "--package", "generated", "--name", "third")
    assert result.exit_code == 5
    assert "generated holds packages built by mcp-codegen (first, second), it is not one" in (
        one_error_line(result)
    )
    assert "--package generated/third" in result.stderr
    assert files_under(project / "generated") == before
    assert not (project / "STARTED").exists()


def test_a_file_added_to_a_built_package_stops_the_rebuild(
    project: Path, tb_snapshot: Path
) -> None:
    out = project / "generated" / "tb"
    first = cli("build", "--from-snapshot", tb_snapshot, "--package", out, "--name", "tb")
    assert first.exit_code == 0, first.output
    (out / "tb" / "__pycache__").mkdir(exist_ok=True)
    (out / "tb" / "__pycache__" / "x.pyc").write_bytes(b"cache")  # a cache is disposable
    (out / ".mypy_cache").mkdir()
    assert cli("build", "--from-snapshot", tb_snapshot, "--package", out).exit_code == 0
    (out / "DESIGN.md").write_text("my notes", encoding="utf-8")
    result = cli("build", "--from-snapshot", tb_snapshot, "--package", out)
    assert result.exit_code == 5
    assert "holds files mcp-codegen did not write (DESIGN.md)" in one_error_line(result)
    assert (out / "DESIGN.md").read_text(encoding="utf-8") == "my notes"


def test_a_package_without_its_cache_is_still_recognised(project: Path, tb_snapshot: Path) -> None:
    # A fresh clone of a committed package has no cache (it ignores itself in git).
    out = project / "generated" / "tb"
    assert cli("build", "--from-snapshot", tb_snapshot, "--package", out).exit_code == 0
    shutil.rmtree(out / ".mcp-codegen")
    result = cli("build", "--from-snapshot", tb_snapshot, "--package", out)
    assert result.exit_code == 0, result.output
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    shutil.rmtree(out / ".mcp-codegen")
    result = cli("build", "--from-snapshot", tb_snapshot, "--package", out)
    assert result.exit_code == 5 and "(notes.txt)" in one_error_line(result)


def test_the_swap_leaves_other_files_beside_the_output_alone(
    project: Path, tb_snapshot: Path
) -> None:
    out = project / "generated" / "tb"
    assert cli("build", "--from-snapshot", tb_snapshot, "--package", out).exit_code == 0
    # The name the old swap gave the previous output, and deleted first if it existed.
    bystander = project / "generated" / f".tb.old-{os.getpid()}"
    bystander.mkdir()
    (bystander / "keep.txt").write_text("mine", encoding="utf-8")
    (out / "README.md").write_text("stale", encoding="utf-8")  # forces a real rebuild
    assert cli("build", "--from-snapshot", tb_snapshot, "--package", out).exit_code == 0
    assert (bystander / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(path.name for path in (project / "generated").iterdir()) == [
        bystander.name,
        "tb",
    ]


# --- finding 5: what can be checked is checked before servers start; no tracebacks ------------


def test_an_unwritable_output_is_one_line_before_any_server_starts(project: Path) -> None:
    result = cli("build", "--config", "tracer.json", "--package", "/proc/mcp-codegen-x")
    assert result.exit_code == 5
    assert "cannot write in /proc" in one_error_line(result)
    assert not (project / "STARTED").exists()


def test_a_full_disk_is_one_line_and_leaves_the_previous_output(
    project: Path, tb_snapshot: Path
) -> None:
    out = project / "generated" / "tb"
    assert cli("build", "--from-snapshot", tb_snapshot, "--package", out).exit_code == 0
    before = files_under(out)
    changed = json.loads(tb_snapshot.read_text(encoding="utf-8"))
    changed["servers"][0]["tools"][0]["description"] = "Reworded, so the package changes."
    (project / "changed.json").write_text(json.dumps(changed), encoding="utf-8")

    def small_disk() -> None:
        # Files stop growing at 4 kB: writes fail with EFBIG, as on a full disk with ENOSPC.
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    done = subprocess.run(
        [*MCP_CODEGEN, "build", "--from-snapshot", "changed.json", "--package", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        cwd=project,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(
        r"^error: cannot write .*tb \(File too large\); nothing was changed$", done.stderr, re.M
    )
    assert files_under(out) == before
    assert [path.name for path in (project / "generated").iterdir()] == ["tb"]  # no staging left


def test_exec_and_run_report_a_bad_config_in_one_line(project: Path, tb_snapshot: Path) -> None:
    build(project / "generated" / "tb", name="tb", snapshot=Snapshot.read(tb_snapshot))
    (project / "bad.json").write_text('{"mcpServers": {"tb": {"comand": "x"}}}', encoding="utf-8")
    (project / "agent.py").write_text("print(1)", encoding="utf-8")
    for args in (("exec", "-c", "print(1)"), ("run", "agent.py")):
        result = cli(*args, "--config", "bad.json")
        assert result.exit_code == 3
        assert one_error_line(result) == (
            "error: bad.json: server 'tb': field 'comand': unknown key; did you mean 'command'?"
        )


# --- finding 2: printed commands reproduce the same package ------------------------------------


def test_a_rebuild_keeps_the_package_name_and_its_cache(project: Path, tb_snapshot: Path) -> None:
    out = project / "generated" / "newtools"
    first = cli("build", "--from-snapshot", tb_snapshot, "--package", out, "--name", "newtools")
    assert first.exit_code == 0, first.output
    (out / "README.md").write_text("changed", encoding="utf-8")
    again = cli("build", "--from-snapshot", tb_snapshot, "--package", out)
    assert again.exit_code == 0, again.output
    assert "(6 unchanged)" in again.stdout  # the cache was used
    assert locate_package(out).name == "newtools"
    assert not (out / "mcp_tools").exists()


def test_the_fix_check_prints_rebuilds_the_same_package(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = project / "generated" / "newtools"
    assert cli("build", "--package", out, "--name", "newtools", "--dist-name", "nt").exit_code == 0
    write_config(
        project / "mcp.json", {"toolbox": server_entry("toolbox.py", TOOLBOX_VARIANT="v2")}
    )
    checked = cli("check")
    assert checked.exit_code == EXIT_CODES["drift-compatible"], checked.output
    fix = re.search(r"run `(mcp-codegen build [^`]*)` to update the package", checked.stdout)
    assert fix is not None, checked.stdout
    words = shlex.split(fix.group(1))
    assert words[:2] == ["mcp-codegen", "build"]
    rebuilt = cli(*words[1:])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "(6 unchanged)" in rebuilt.stdout
    assert locate_package(out).name == "newtools"
    assert 'name = "nt"' in (out / "pyproject.toml").read_text(encoding="utf-8")
    assert (out / "newtools" / "servers" / "toolbox" / "multiply.py").is_file()
    assert cli("check").exit_code == 0


def test_the_fix_serve_prints_rebuilds_the_same_package(project: Path) -> None:
    out = project / "generated" / "newtools"
    assert cli("build", "--package", out, "--name", "newtools").exit_code == 0
    write_config(project / "other.json", {"tb2": server_entry("toolbox.py")})
    served = subprocess.run(
        [*MCP_CODEGEN, "serve", "--config", "other.json", "--unsafe-local"],
        stdin=subprocess.DEVNULL,  # the client goes away at once: serve ends
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert served.returncode == 0, served.stderr
    warning = re.search(r"^warning: .* is stale .*rebuild it with `([^`]*)`", served.stderr, re.M)
    assert warning is not None, served.stderr
    assert "mcp-codegen serve: warning" not in served.stderr
    rebuilt = cli(*shlex.split(warning.group(1))[1:])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert locate_package(out).name == "newtools" and not (out / "mcp_tools").exists()
    assert (out / "newtools" / "servers" / "tb2").is_dir()


# --- finding 3: one locator, one error text, one name ------------------------------------------


@pytest.fixture
def built(project: Path, tb_snapshot: Path) -> Path:
    out = project / "generated" / "tb"
    build(out, name="tb", snapshot=Snapshot.read(tb_snapshot))
    return out


def test_every_command_takes_the_build_dir_the_import_package_and_generated(
    built: Path,
) -> None:
    for given in (built, built / "tb", built.parent, None):
        where = ["--package", str(given)] if given else []
        found = cli("search", "add two numbers", "--detail", "name", *where)
        assert found.exit_code == 0, found.output
        assert found.stdout.splitlines()[0] == "servers.toolbox.add"
        listed = cli("skills", "list", *where)
        assert listed.exit_code == 0, listed.output
        ran = cli(
            "exec", "-c", "from servers.toolbox import add\nprint('ok')", "--unsafe-local", *where
        )
        assert ran.exit_code == 0 and ran.stdout == "ok\n", ran.output
        checked = cli("build", "--check", *where)
        assert checked.exit_code == 0, checked.output


def test_every_command_says_the_same_for_a_directory_that_is_no_package(built: Path) -> None:
    (built.parent.parent / "agent.py").write_text("print(1)", encoding="utf-8")
    commands = [
        ("search", "add"),
        ("skills", "list"),
        ("exec", "-c", "print(1)"),
        ("run", "agent.py"),
        ("check",),
        ("serve",),
    ]
    lines = set()
    for command in commands:
        result = cli(*command, "--package", "elsewhere")
        assert result.exit_code == EXIT_CODES["package"] == 4, (command, result.output)
        lines.add(one_error_line(result).split(" (or serve")[0])
    assert lines == {
        "error: elsewhere: no such directory; pass --package DIR, where DIR is the directory "
        "`mcp-codegen build` wrote (with mcp-snapshot.json), its import package, or a directory "
        "holding one package"
    }


def test_check_takes_package_and_a_snapshot_file_and_diff_takes_packages(built: Path) -> None:
    assert cli("check", "--package", built / "tb").exit_code == 0
    assert cli("check", "--snapshot", built / "mcp-snapshot.json").exit_code == 0
    old = cli("check", "--snapshot", built)  # the old spelling for a package still works
    assert old.exit_code == 0 and "warning: --snapshot DIR is deprecated" in old.stderr
    assert cli("diff", built / "tb", built.parent).exit_code == 0


# --- finding 4: one table, one printer --------------------------------------------------------


def test_a_bad_config_exits_3_from_every_command_with_the_same_line(built: Path) -> None:
    (built.parent.parent / "agent.py").write_text("print(1)", encoding="utf-8")
    (built.parent.parent / "bad.json").write_text("{not json", encoding="utf-8")
    commands = [
        ("build",),
        ("check",),
        ("serve",),
        ("exec", "-c", "print(1)"),
        ("run", "agent.py"),
        ("serve", "--build"),
        ("login", "notes"),
        ("logout", "notes"),
    ]
    for command in commands:
        result = cli(*command, "--config", "bad.json")
        assert result.exit_code == EXIT_CODES["config"] == 3, (command, result.output)
        assert one_error_line(result) == (
            "error: bad.json:1:2: not valid JSON: Expecting property name enclosed in double quotes"
        )
        missing = cli(*command, "--config", "nope.json")  # the file given is the one named
        assert missing.exit_code == 3, (command, missing.output)
        assert one_error_line(missing) == (
            "error: nope.json: no such file; pass --config PATH or set MCP_CODEGEN_CONFIG, "
            "or run `mcp-codegen init` to write one"
        )


def test_a_bad_privacy_section_is_a_config_error_for_serve_as_for_exec(built: Path) -> None:
    config = built.parent.parent / "privacy.json"
    write_config(config, {"toolbox": server_entry("toolbox.py")})
    data = json.loads(config.read_text(encoding="utf-8"))
    data["privacy"] = {"blobs": "bogus"}
    config.write_text(json.dumps(data), encoding="utf-8")
    lines = set()
    for command in (("serve", "--unsafe-local"), ("exec", "-c", "print(1)", "--unsafe-local")):
        result = cli(*command, "--config", config)
        assert result.exit_code == EXIT_CODES["config"] == 3, (command, result.output)
        lines.add(one_error_line(result))
    assert lines == {
        f'error: {config}: privacy.blobs: must be "withhold" or "pass", not "bogus"'
    }, lines


def test_usage_errors_are_one_line_with_the_usage_code(project: Path) -> None:
    for args in (("build", "--bogus"), ("exec",), ("nosuch",), ("search",)):
        result = cli(*args)
        assert result.exit_code == EXIT_CODES["usage"] == 2, result.output
        line = one_error_line(result)
        assert "Usage:" not in result.output and "Error:" not in result.output
        assert line.endswith("--help`)"), line


def _codes_in_help(text: str) -> dict[int, str]:
    """The exit-code table of a --help text: code -> its reasons, joined."""
    table = text.split("Exit codes (the same for every command):")[1]
    codes: dict[int, str] = {}
    code = -1
    for line in table.splitlines():
        match = re.match(r"^\s+(\d+)\s\s(.*)$", line)
        if match:
            code = int(match.group(1))
            codes[code] = match.group(2)
        elif line.startswith("        ") and code >= 0:
            codes[code] += "; " + line.strip()
        elif not line.strip() and codes:
            break
    return codes


def test_the_exit_codes_are_documented_in_help_and_docs() -> None:
    listed = _codes_in_help(cli("--help").stdout)
    for reason, code in EXIT_CODES.items():
        if reason != "input":
            assert REASONS[reason] in listed[code], reason
    for command, reasons in COMMAND_REASONS.items():
        shown = _codes_in_help(cli(*command.split(), "--help").stdout)
        assert set(shown) == {0} | {EXIT_CODES[reason] for reason in reasons}, command
        for reason in reasons:
            if reason != "input":
                assert REASONS[reason] in shown[EXIT_CODES[reason]], (command, reason)
    table = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8").split("<!-- exit-codes")[1]
    documented = {int(code) for code in re.findall(r"^\|\s*(\d+)\s*\|", table, re.M)}
    assert documented == {0, *EXIT_CODES.values()}


# --- finding 6: --name is checked up front ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("class", "'class' is a Python keyword"),
        ("pydantic", "would shadow the module 'pydantic'"),
        ("mcp", "would shadow the module 'mcp'"),
        ("json", "would shadow the standard library's 'json'"),
        ("servers", "a package mcp-codegen itself provides"),
    ],
)
def test_a_bad_name_is_refused_before_any_server_starts(
    project: Path, name: str, problem: str
) -> None:
    result = cli("build", "--config", "tracer.json", "--name", name)
    assert result.exit_code == 2
    assert problem in one_error_line(result)
    assert not (project / "STARTED").exists() and not (project / "generated").exists()


# --- finding 8: the smaller ones --------------------------------------------------------------


def test_version_flag_and_verbose_anywhere() -> None:
    assert cli("-V").stdout.startswith("mcp-codegen, version ")
    assert cli("--version").exit_code == 0


def test_mcp_codegen_config_is_the_default_config(project: Path, tb_snapshot: Path) -> None:
    elsewhere = project / "sub"
    elsewhere.mkdir()
    write_config(elsewhere / "servers.json", {"tb": server_entry("toolbox.py")})
    result = cli("build", env={"MCP_CODEGEN_CONFIG": str(elsewhere / "servers.json")})
    assert result.exit_code == 0, result.output
    # ...and the package goes beside that config, not into the current directory.
    assert locate_package(elsewhere / "generated" / "mcp_tools").name == "mcp_tools"
    assert not (project / "generated").exists()


def test_relative_defaults_follow_the_config_file(project: Path, tb_snapshot: Path) -> None:
    app = project / "app"
    app.mkdir()
    write_config(app / "mcp.json", {"tb": server_entry("toolbox.py")})
    assert cli("build", "--config", "app/mcp.json", "--name", "tools").exit_code == 0
    assert (app / "generated" / "tools" / "tools" / "servers" / "tb" / "add.py").is_file()
    assert not (project / "generated").exists()
    found = cli("search", "add", "--config", "app/mcp.json", "--detail", "name")
    assert found.exit_code == 0 and "servers.tb.add" in found.stdout
    assert not (project / ".ruff_cache").exists() and not (app / ".ruff_cache").exists()


def test_an_empty_config_or_all_disabled_is_an_error(project: Path) -> None:
    (project / "empty.json").write_text('{"mcpServers": {}}', encoding="utf-8")
    write_config(project / "off.json", {"tb": {**server_entry("toolbox.py"), "disabled": True}})
    for name, why in (
        ("empty.json", "'mcpServers' is empty"),
        ("off.json", "every server is disabled"),
    ):
        result = cli("build", "--config", name)
        assert result.exit_code == 3
        assert f"{name}: no servers to introspect ({why})" in one_error_line(result)
    assert not (project / "generated").exists()


def test_skills_options_work_after_the_subcommand(project: Path) -> None:
    skills = project / "app" / ".mcp-codegen" / "skills"
    skills.mkdir(parents=True)
    (project / "app" / "mcp.json").write_text('{"mcpServers": {}}', encoding="utf-8")
    (skills / "greet_all.py").write_text(
        'async def greet_all(names: list[str]) -> list[str]:\n    """Greet everyone."""\n'
        "    return names\n",
        encoding="utf-8",
    )
    listed = cli("skills", "list", "--config", "app/mcp.json")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.split() == ["greet_all", "Greet", "everyone."]
    before = cli("skills", "--config", "nowhere/mcp.json", "list", "--config", "app/mcp.json")
    assert before.exit_code == 0 and "greet_all" in before.stdout  # after the subcommand wins
    missing = cli("skills", "list", "--config", "nope.json")
    assert missing.exit_code == 3 and "nope.json: no such file" in one_error_line(missing)
    # rm removes a skill, never another file that happens to be in the directory.
    (skills / "notes.py").write_text("# my notes\n", encoding="utf-8")
    kept = cli("skills", "rm", "notes", "--config", "app/mcp.json")
    assert kept.exit_code == 1 and "it was not removed" in one_error_line(kept)
    assert (skills / "notes.py").is_file()
    removed = cli("skills", "rm", "greet_all", "--config", "app/mcp.json")
    assert removed.exit_code == 0 and not (skills / "greet_all.py").exists()


def test_search_lists_saved_skills_without_being_told_where(built: Path) -> None:
    skills = built.parent.parent / ".mcp-codegen" / "skills"
    skills.mkdir(parents=True)
    (skills / "add_many.py").write_text(
        'async def add_many(numbers: list[int]) -> int:\n    """Add many numbers at once."""\n'
        "    return sum(numbers)\n",
        encoding="utf-8",
    )
    found = cli("search", "add numbers", "--detail", "name")
    assert found.exit_code == 0, found.output
    assert found.stdout.splitlines()[:2] == ["skills.add_many", "servers.toolbox.add"]


def test_code_from_stdin(built: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "from servers.toolbox import add\nprint('from stdin', 6 * 7)\n"
    for args in (["exec", "-c", "-"], ["run", "-", "--unsafe-local"]):
        done = subprocess.run(
            [*MCP_CODEGEN, *args],
            input=code,
            capture_output=True,
            text=True,
            cwd=built.parent.parent,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "from stdin 42\n"


def test_a_server_that_writes_junk_to_stdout_is_one_warning(project: Path) -> None:
    write_config(project / "noisy.json", {"noisy": server_entry("noisy.py")})
    result = cli("build", "--config", "noisy.json")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "Failed to parse" not in result.output
    assert (
        "warning: noisy: wrote 1 line to stdout that is not MCP "
        "(first: 'Starting noisy server v1.0 ... listening on stdio')"
    ) in result.stderr


def test_without_the_direct_extra_a_call_says_what_to_install(built: Path, tmp_path: Path) -> None:
    # An interpreter that has pydantic but not the mcp SDK: -S leaves site-packages out,
    # and only pydantic and its dependencies are put back.
    import annotated_types
    import pydantic
    import pydantic_core
    import typing_extensions
    import typing_inspection

    lib = tmp_path / "lib"
    lib.mkdir()
    for module in (pydantic, pydantic_core, annotated_types, typing_inspection):
        (lib / module.__name__).symlink_to(Path(module.__file__ or "").parent)
    (lib / "typing_extensions.py").symlink_to(typing_extensions.__file__ or "")
    code = (
        "import asyncio, tb\n"
        "from tb.servers.toolbox import add\n"
        "try:\n"
        "    asyncio.run(add(a=1, b=2))\n"
        "except tb.TransportError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        env={
            "PYTHONPATH": f"{lib}{os.pathsep}{built}",
            "MCP_CODEGEN_CONFIG": str(built.parent.parent / "mcp.json"),
        },
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "calling server 'toolbox' from this process needs the mcp SDK, which is not installed: "
        "pip install 'tb[direct]'"
    )


# --- finding 9: installing outside the clone, and completion ---------------------------------


def test_docs_say_how_to_install_outside_the_clone() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install "git+https://' in readme and "pip install /path/to/mcp-codegen" in readme
    assert "_MCP_CODEGEN_COMPLETE=bash_source mcp-codegen" in readme
    workflow = (ROOT / "docs" / "examples" / "github-actions.yml").read_text(encoding="utf-8")
    installs = [line for line in workflow.splitlines() if "pip install" in line and "run:" in line]
    assert installs == ['      - run: pip install "$MCP_CODEGEN" && mcp-codegen --version']
    assert "mcp-codegen==" not in workflow
    assert re.search(r'MCP_CODEGEN: "git\+https://', workflow)


def test_shell_completion_completes_commands_and_options() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    entry = [sys.executable, "-c", "from codegen.cli import main; main(prog_name='mcp-codegen')"]
    script = subprocess.run(
        entry, env={**env, "_MCP_CODEGEN_COMPLETE": "bash_source"}, capture_output=True, text=True
    )
    assert "complete -o nosort -F _mcp_codegen_completion mcp-codegen" in script.stdout
    words = {"COMP_WORDS": "mcp-codegen bu", "COMP_CWORD": "1"}
    done = subprocess.run(
        entry,
        env={**env, **words, "_MCP_CODEGEN_COMPLETE": "bash_complete"},
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["plain,build"]
    words = {"COMP_WORDS": "mcp-codegen build --pack", "COMP_CWORD": "2"}
    done = subprocess.run(
        entry,
        env={**env, **words, "_MCP_CODEGEN_COMPLETE": "bash_complete"},
        capture_output=True,
        text=True,
    )
    assert done.stdout.split() == ["plain,--package"]


@pytest.mark.slow
def test_pip_install_of_a_checkout_works_outside_it(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stderr
    tool = venv / "bin" / "mcp-codegen"
    assert subprocess.run([str(tool), "-V"], capture_output=True, text=True).stdout.startswith(
        "mcp-codegen, version"
    )
    golden = ROOT / "generated" / "mcp_demo" / "mcp-snapshot.json"
    done = subprocess.run(
        [str(tool), "build", "--from-snapshot", str(golden), "--name", "demo_copy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "generated" / "demo_copy" / "demo_copy" / "servers" / "time").is_dir()
