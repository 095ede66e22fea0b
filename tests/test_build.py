"""Build a package from a real SDK server, then import it and call its tools."""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from codegen.cli import main
from codegen.diagnostics import BuildError
from codegen.snapshot import Snapshot
from codegen.verify import verify_module
from tests.conftest import SERVERS, build, run_python, server_entry, write_config
from tests.servers.toolbox import HOSTILE


def tree_digest(root: Path) -> dict[str, str]:
    # The build cache (.mcp-codegen/) records when each file was written: not part of the output.
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and ".mcp-codegen" not in path.parts
    }


def test_layout_and_report(toolbox_package: tuple[Path, Path]) -> None:
    _, out = toolbox_package
    snapshot = Snapshot.read(out / "mcp-snapshot.json")
    (server,) = snapshot.servers
    assert server.name == "toolbox" and server.server_name == "toolbox"
    assert server.instructions == "Small tools for tests."
    assert [tool.name for tool in server.tools] == sorted(tool.name for tool in server.tools)
    modules = sorted(path.stem for path in (out / "tb/servers/toolbox").glob("*.py"))
    assert modules == ["__init__", "add", "fail", "greet", "hostile", "move_point_v2", "whoami"]
    for name in ("py.typed", "_runtime/__init__.py", "search_index.sqlite3"):
        assert (out / "tb" / name).exists(), name
    assert 'version = "0.1.0"' in (out / "pyproject.toml").read_text(encoding="utf-8")
    assert snapshot.digest() in (out / "README.md").read_text(encoding="utf-8")


def test_calls_reach_the_real_server(toolbox_package: tuple[Path, Path]) -> None:
    config, out = toolbox_package
    output = run_python(
        """
import asyncio, tb
from tb import ToolError
from tb.servers.toolbox import add, greet, fail, move_point_v2
from tb.servers.toolbox.move_point_v2 import MovePointV2InputPoint

async def main():
    total = await add(a=2, b=40)
    print(type(total).__name__, total.result)
    print((await greet(name="Ada")).result, (await greet(name="Bo", greeting="Hi", punctuation=".")).result)
    moved = await move_point_v2(point=MovePointV2InputPoint(x=1, y=2, label="p"), dx=10)
    print(moved.x, moved.y, moved.label)
    try:
        await fail(message="no such customer")
    except ToolError as error:
        print("ToolError", error.server, error.tool, error.message)
    results = await asyncio.gather(*(add(a=i, b=i) for i in range(5)))
    print([r.result for r in results])
    await tb.aclose()

tb.configure(%r)
asyncio.run(main())
"""
        % str(config),
        out,
    )
    assert output.splitlines() == [
        "AddOutput 42",
        "Hello, Ada! Hi, Bo.",
        "11 2 p",
        "ToolError toolbox fail Error executing tool fail: no such customer",
        "[0, 2, 4, 6, 8]",
    ]


def test_arguments_are_validated_before_any_call(toolbox_package: tuple[Path, Path]) -> None:
    _, out = toolbox_package
    output = run_python(
        """
import asyncio, pydantic
from tb.servers.toolbox import greet
try:
    asyncio.run(greet(name="x", punctuation="?"))
except pydantic.ValidationError as error:
    print("invalid", error.errors()[0]["loc"])
""",
        out,
        env={"MCP_CODEGEN_CONFIG": "/nonexistent.json"},  # no call may be attempted
    )
    assert output.strip() == "invalid ('punctuation',)"


def test_signature_is_keyword_only_required_first_with_schema_defaults(
    toolbox_package: tuple[Path, Path],
) -> None:
    _, out = toolbox_package
    output = run_python(
        "import inspect; from tb.servers.toolbox import greet; print(inspect.signature(greet))", out
    )
    assert output.strip() == (
        "(*, name: 'str', greeting: 'str | None' = 'Hello', punctuation: \"Literal['!', '.'] | None\" = '!') "
        "-> 'GreetOutput'"
    )


def test_hostile_description_changes_only_the_docstring(toolbox_package: tuple[Path, Path]) -> None:
    _, out = toolbox_package
    path = out / "tb/servers/toolbox/hostile.py"
    source = path.read_text(encoding="utf-8")
    assert verify_module(source, "tb") == []
    tree = ast.parse(source)
    assert not any(isinstance(node, ast.Import) for node in ast.walk(tree))
    function = next(node for node in tree.body if isinstance(node, ast.AsyncFunctionDef))
    docstring = ast.get_docstring(function) or ""
    assert docstring.startswith(HOSTILE.split("\n")[0])
    assert 'os.system("echo pwned")' in docstring
    output = run_python(
        "from tb.servers.toolbox import hostile; print(repr(hostile.__doc__[:40]))", out
    )
    assert "Ends the docstring" in output


def test_no_secret_reaches_the_snapshot_or_the_package(tmp_path: Path) -> None:
    secret = "sk-test-" + os.urandom(8).hex()
    config = write_config(
        tmp_path / "mcp.json",
        {"toolbox": server_entry("toolbox.py", TOOLBOX_SECRET="${TB_SECRET_FOR_TEST}")},
    )
    os.environ["TB_SECRET_FOR_TEST"] = secret
    try:
        build(tmp_path / "out", name="tb", config_path=config)
        for path in (tmp_path / "out").rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        output = run_python(
            "import asyncio, tb\nfrom tb.servers.toolbox import whoami\ntb.configure(%r)\n"
            "print(asyncio.run(whoami()).result)" % str(config),
            tmp_path / "out",
        )
        assert output.strip() == secret  # it reached the server, at run time only
    finally:
        del os.environ["TB_SECRET_FOR_TEST"]


def test_server_package_imports_no_tool_until_asked(toolbox_package: tuple[Path, Path]) -> None:
    _, out = toolbox_package
    output = run_python(
        """
import sys
import tb.servers.toolbox as box
print(sorted(name for name in sys.modules if name.startswith("tb.servers.toolbox.")))
print(box.__all__)
import tb.servers.toolbox.add
from tb.servers.toolbox import add
print(callable(add), type(add).__name__)
""",
        out,
    )
    lines = output.splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "['add', 'fail', 'greet', 'hostile', 'move_point_v2', 'whoami']"
    assert lines[2] == "True function"


def test_same_snapshot_same_bytes_and_live_equals_snapshot(
    toolbox_package: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = toolbox_package
    snapshot = Snapshot.read(out / "mcp-snapshot.json")
    build(tmp_path / "a", name="tb", snapshot=snapshot)
    build(tmp_path / "b", name="tb", snapshot=snapshot)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") == tree_digest(out)


def test_failed_build_leaves_previous_output_untouched(
    toolbox_package: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = toolbox_package
    snapshot = Snapshot.read(out / "mcp-snapshot.json")
    target = tmp_path / "out"
    build(target, name="tb", snapshot=snapshot)
    before = tree_digest(target)
    config = write_config(
        tmp_path / "mcp.json",
        {"toolbox": server_entry("toolbox.py"), "crash": server_entry("crash.py")},
    )
    with pytest.raises(BuildError) as caught:
        build(target, name="tb", config_path=config)
    assert "nothing was written" in str(caught.value)
    (error,) = caught.value.diagnostics.errors
    assert error.server == "crash" and "EXAMPLE_API_KEY is not set" in error.message
    assert tree_digest(target) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "mcp.json",
        "out",
    ]  # no staging left


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("crash.py", "EXAMPLE_API_KEY is not set"),
        ("hang.py", "did not answer within 3s"),
        ("invalid.py", "answered tools/list with invalid data: tools/0/inputSchema"),
    ],
)
def test_broken_server_is_named_and_keep_going_builds_the_rest(
    tmp_path: Path, script: str, expected: str
) -> None:
    # The short deadline is the broken server's own; the healthy one keeps the default.
    config = write_config(
        tmp_path / "mcp.json",
        {"toolbox": server_entry("toolbox.py"), "bad": {**server_entry(script), "timeout": 3}},
    )
    report = build(tmp_path / "out", name="tb", config_path=config, keep_going=True)
    assert report.failed_servers == ["bad"]
    (error,) = report.diagnostics.errors
    assert error.server == "bad" and expected in error.message
    assert [server.name for server in report.snapshot.servers] == ["toolbox"]
    assert (tmp_path / "out/tb/servers/toolbox/add.py").exists()


def test_hang_server_stderr_is_shown(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"slow": server_entry("hang.py")})
    with pytest.raises(BuildError) as caught:
        build(tmp_path / "out", name="tb", config_path=config, timeout=2.0)
    (error,) = caught.value.diagnostics.errors
    assert "starting up..." in error.message and error.hint and "timeout" in error.hint
    assert not (tmp_path / "out").exists()


def test_servers_are_introspected_concurrently(tmp_path: Path) -> None:
    # Three hanging servers, each stopped at its deadline: introspected one after another, each
    # would be stopped before the next started; at once, all three start before any is stopped.
    log = tmp_path / "hang.log"
    config = write_config(
        tmp_path / "mcp.json",
        {
            "toolbox": {**server_entry("toolbox.py"), "timeout": 60},
            **{f"h{i}": server_entry("hang.py", HANG_LOG=str(log)) for i in range(3)},
        },
    )
    report = build(tmp_path / "out", name="tb", config_path=config, keep_going=True, timeout=2.0)
    assert sorted(report.failed_servers) == ["h0", "h1", "h2"]
    events = [line.split()[0] for line in log.read_text(encoding="utf-8").splitlines()]
    assert events == ["start"] * 3 + ["stop"] * 3


def test_keywords_clashes_and_pagination(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"kw": server_entry("keywords.py")})
    report = build(tmp_path / "out", name="kw", config_path=config)
    assert [tool.name for tool in report.snapshot.servers[0].tools] == [
        "class",
        "get_time",
        "list.items-v2",
        "list_items_v2",
        "print",
    ]  # all three pages
    warnings = sorted(str(item) for item in report.diagnostics.warnings)
    assert warnings == [
        "warning: kw/list.items-v2: function named 'list_items_v2_2', since 'list_items_v2' is taken by another tool"
    ]
    output = run_python(
        """
import asyncio, inspect, kw
from kw.servers.kw import class_, list_items_v2, list_items_v2_2, print_
kw.configure(%r)
print(inspect.signature(class_))
print(asyncio.run(class_(from_="here")).text)
print(asyncio.run(list_items_v2_2()).text)
print(asyncio.run(print_()).text)
"""
        % str(config),
        tmp_path / "out",
    )
    assert output.splitlines() == [
        "(*, from_: 'str', lambda_: 'int | None' = 1) -> 'ToolResult'",
        '{"arguments": {"from": "here", "lambda": 1}, "tool": "class"}',
        '{"arguments": {}, "tool": "list.items-v2"}',
        '{"arguments": {}, "tool": "print"}',
    ]


assert SERVERS.is_dir()


def test_a_bad_schema_is_a_per_tool_error_and_nothing_is_fetched(tmp_path: Path) -> None:
    good = {
        "name": "good",
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    bad = {
        "name": "remote",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"$ref": "https://attacker.invalid/x.json"}},
        },
    }
    snapshot = Snapshot.model_validate({"servers": [{"name": "s", "tools": [good, bad]}]})
    with pytest.raises(BuildError) as caught:
        build(tmp_path / "strict", name="p", snapshot=snapshot)
    assert not (tmp_path / "strict").exists()
    report = build(tmp_path / "out", name="p", snapshot=snapshot, keep_going=True)
    (error,) = report.diagnostics.errors
    assert (error.server, error.tool, error.pointer) == ("s", "remote", "/inputSchema")
    assert "remote" in error.message.lower()
    assert caught.value.diagnostics.errors == [error]
    assert sorted(path.name for path in (tmp_path / "out/p/servers/s").glob("*.py")) == [
        "__init__.py",
        "good.py",
    ]


def test_incremental_build_equals_full_build(
    toolbox_package: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = toolbox_package
    original = Snapshot.read(out / "mcp-snapshot.json")
    changed = original.model_dump(by_alias=True, exclude_none=True, mode="json")
    changed["servers"][0]["tools"][0]["description"] = "Add two integers, now documented better."
    del changed["servers"][0]["tools"][-1]
    modified = Snapshot.model_validate(changed)
    incremental = tmp_path / "incremental"
    build(incremental, name="tb", snapshot=original)
    assert build(incremental, name="tb", snapshot=original).up_to_date
    report = build(incremental, name="tb", snapshot=modified, version="0.1.0")
    assert not report.up_to_date and report.reused == len(modified.servers[0].tools) - 1
    build(tmp_path / "full", name="tb", snapshot=modified, version="0.1.0")
    without_cache = {
        name: digest
        for name, digest in tree_digest(incremental).items()
        if not name.startswith(".mcp-codegen")
    }
    assert without_cache == {
        name: digest
        for name, digest in tree_digest(tmp_path / "full").items()
        if not name.startswith(".mcp-codegen")
    }


def test_a_damaged_output_is_rebuilt_not_trusted(
    toolbox_package: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = toolbox_package
    snapshot = Snapshot.read(out / "mcp-snapshot.json")
    target = tmp_path / "out"
    build(target, name="tb", snapshot=snapshot)
    module = target / "tb/servers/toolbox/add.py"
    pristine = module.read_bytes()
    module.write_text("# edited by hand\n", encoding="utf-8")
    report = build(target, name="tb", snapshot=snapshot)
    assert not report.up_to_date and report.reused == len(snapshot.servers[0].tools) - 1
    assert module.read_bytes() == pristine


def test_version_moves_by_the_class_of_change(
    toolbox_package: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = toolbox_package
    base = Snapshot.read(out / "mcp-snapshot.json").model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    target = tmp_path / "out"

    def version_after(change: Callable[[dict[str, Any]], None]) -> str:
        change(base)
        return build(target, name="tb", snapshot=Snapshot.model_validate(base)).version

    assert version_after(lambda data: None) == "0.1.0"
    assert version_after(lambda data: None) == "0.1.0"  # nothing changed
    tools = base["servers"][0]["tools"]
    assert version_after(lambda data: tools[0].update(description="Reworded.")) == "0.1.1"
    assert version_after(lambda data: tools.append({**tools[0], "name": "add2"})) == "0.2.0"
    assert version_after(lambda data: tools.pop()) == "1.0.0"
    assert 'version = "1.0.0"' in (target / "pyproject.toml").read_text(encoding="utf-8")


def test_build_check_reports_a_stale_package_with_the_fix(
    toolbox_package: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = toolbox_package
    target = tmp_path / "pkg"
    build(target, name="tb", snapshot=Snapshot.read(out / "mcp-snapshot.json"))
    runner = CliRunner()
    command = ["build", "--check", "--package", str(target)]  # the name comes from the package
    clean = runner.invoke(main, command)
    assert clean.exit_code == 0, clean.output
    module = target / "tb/servers/toolbox/add.py"
    module.write_text(
        module.read_text(encoding="utf-8").replace("Add two integers", "Add two ints"),
        encoding="utf-8",
    )
    stale = runner.invoke(main, command)
    assert stale.exit_code == 1
    assert '-    """Add two ints.' in stale.output and '+    """Add two integers.' in stale.output
    fix = (
        f"mcp-codegen build --from-snapshot {target / 'mcp-snapshot.json'} --package {target} "
        "--name tb"
    )
    assert fix in stale.output
    assert "Add two ints" in module.read_text(encoding="utf-8")  # --check writes nothing
