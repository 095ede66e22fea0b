"""End to end: build from the real demo servers, pip install the output, call real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import DEMO_CONFIG, ROOT, build

AGENT = r"""
import asyncio, json, sys, uuid
import mcp_demo
from mcp_demo.servers.time import get_current_time, convert_time
from mcp_demo.servers.everything import echo, get_sum
from mcp_demo.servers.sqlite import create_table, write_query, read_query
from mcp_demo.servers.filesystem import write_file, read_text_file
from mcp_demo.servers.memory import create_entities, read_graph
from mcp_demo.servers.git import git_status, git_log

mcp_demo.configure(sys.argv[1])
tag = uuid.uuid4().hex[:8]

async def main():
    now = await get_current_time(timezone="Asia/Tokyo")
    print("time", type(now).__name__, now.timezone, now.is_dst in (True, False))
    moved = await convert_time(source_timezone="UTC", time="12:00", target_timezone="Asia/Tokyo")
    print("convert", moved.target.datetime[11:16])
    print("echo", (await echo(message="hello")).text)
    print("sum", (await get_sum(a=2, b=3)).text)
    table = f"t_{tag}"
    await create_table(query=f"CREATE TABLE {table} (id INTEGER, name TEXT)")
    await write_query(query=f"INSERT INTO {table} VALUES (1, 'ada'), (2, 'bob')")
    print("sqlite", (await read_query(query=f"SELECT name FROM {table} ORDER BY id")).text)
    await write_file(path=f"note-{tag}.txt", content="written by a typed function")
    print("fs", (await read_text_file(path=f"note-{tag}.txt")).content)
    await create_entities(entities=[{"name": f"e-{tag}", "entityType": "test", "observations": ["seen"]}])
    graph = await read_graph()
    print("memory", any(entity.name == f"e-{tag}" for entity in graph.entities))
    print("git", "working tree clean" in (await git_status(repo_path="repo")).text)
    print("log", (await git_log(repo_path="repo", max_count=1)).text.count("Commit:"))
    await mcp_demo.aclose()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo package built from the live servers and pip-installed into a fresh venv."""
    base = tmp_path_factory.mktemp("e2e")
    report = build(base / "mcp_demo", name="mcp_demo", config_path=DEMO_CONFIG)
    assert report.modules == 69 and not report.diagnostics.errors
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{base / 'mcp_demo'}[direct]"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def test_installed_package_calls_every_demo_server(installed: Path, tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(AGENT, encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(installed), str(script), str(DEMO_CONFIG)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "time GetCurrentTimeOutput Asia/Tokyo True",
        "convert 21:00",
        "echo Echo: hello",
        "sum The sum of 2 and 3 is 5.",
        "sqlite [{'name': 'ada'}, {'name': 'bob'}]",
        "fs written by a typed function",
        "memory True",
        "git True",
        "log 1",
    ]
    for leftover in (ROOT / ".demo" / "files").glob("note-*.txt"):
        leftover.unlink()


def test_installed_package_is_the_wheel_not_the_source(installed: Path) -> None:
    done = subprocess.run(
        [
            str(installed),
            "-c",
            "import mcp_demo, pathlib; print(pathlib.Path(mcp_demo.__file__).parts[-3])",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    assert done.stdout.strip() == "site-packages"
    files = subprocess.run(
        [
            str(installed),
            "-c",
            "import mcp_demo, pathlib; p = pathlib.Path(mcp_demo.__file__).parent;"
            "print((p / 'py.typed').exists(), (p / 'search_index.sqlite3').exists())",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    assert files.stdout.split() == ["True", "True"]


assert shutil.which("node"), "the demo's npm servers need node"
assert sys.version_info >= (3, 11)
