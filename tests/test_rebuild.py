"""Rebuilds of a large package (the index in its own process, only changed servers moved in):
the output is the bytes a full build gives, and a failed rebuild changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from codegen import commit
from codegen.runtime.search import INDEX_FILENAME, search_tools
from codegen.snapshot import Snapshot
from codegen.toolmodule import PARALLEL_THRESHOLD
from codegen.write import OutputError
from tests.conftest import SHARED_DATA, build

CORPUS = SHARED_DATA / "toucan-tools-dev.jsonl"
pytestmark = pytest.mark.skipif(
    not CORPUS.exists(), reason="the shared dev corpus is not beside the repo"
)


def _wire(tools: int) -> dict[str, Any]:
    """A snapshot in wire form of the first `tools` tools of the dev corpus."""
    servers: dict[str, dict[str, Any]] = defaultdict(dict)
    for line in CORPUS.read_text(encoding="utf-8").splitlines()[:tools]:
        row = json.loads(line)
        servers[row["server"]].setdefault(
            row["name"],
            {
                "name": row["name"],
                "description": row.get("description") or "",
                "inputSchema": row["inputSchema"],
            },
        )
    return {
        "servers": [
            {"name": name, "tools": list(found.values())} for name, found in servers.items()
        ]
    }


def _tree(root: Path, *, cache: bool = False) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and (cache or ".mcp-codegen" not in path.parts)
    }


def _build(out: Path, wire: dict[str, Any]) -> Any:
    # One version throughout: a rebuild would bump it (see test_build), a first build not.
    snapshot = Snapshot.model_validate(wire)
    return build(out, name="cat", snapshot=snapshot, keep_going=True, version="1.0.0")


@pytest.mark.parametrize("size", [320, 60])
def test_rebuilds_after_small_changes_equal_full_builds(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Built from a directory holding another `codegen` package: the index process must
    # still run this one.
    decoy = tmp_path / "project" / "codegen"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('not mcp-codegen')\n", encoding="utf-8")
    monkeypatch.chdir(decoy.parent)
    monkeypatch.setenv("PYTHONPATH", str(decoy.parent))
    wire = _wire(size)
    total = sum(len(server["tools"]) for server in wire["servers"])
    # Large: the index is built in its own process; small: in this one. Both keep servers.
    assert (total > PARALLEL_THRESHOLD) == (size > PARALLEL_THRESHOLD) and len(wire["servers"]) > 3
    out = tmp_path / "incremental"
    _build(out, wire)
    unchanged = next(out.glob("cat/servers/*/*.py"))
    if unchanged.parent.name == wire["servers"][0]["name"]:
        unchanged = sorted(out.glob("cat/servers/*/*.py"))[-1]
    inode = unchanged.stat().st_ino

    # One tool's description changes.
    wire["servers"][0]["tools"][0]["description"] += " Now with pagination."
    report = _build(out, wire)
    assert not report.up_to_date and report.reused == total - 1
    _build(tmp_path / "full-1", wire)
    assert _tree(out) == _tree(tmp_path / "full-1")
    assert unchanged.stat().st_ino == inode  # left where it was, not copied or relinked

    # A server goes, another comes, a tool is renamed: still what a full build gives.
    gone = wire["servers"].pop(1)
    wire["servers"].append({"name": "brand new", "tools": gone["tools"][:2]})
    wire["servers"][2]["tools"][0]["name"] += "_renamed"
    _build(out, wire)
    _build(tmp_path / "full-2", wire)
    assert _tree(out) == _tree(tmp_path / "full-2")
    assert not any(name.startswith(".cat") for name in os.listdir(tmp_path))  # no staging left
    cache = out / ".mcp-codegen"
    assert sorted(os.listdir(cache)) == [".gitignore", "build-cache.jsonl", "index-parts.bin"]

    # And nothing changed: up to date.
    assert _build(out, wire).up_to_date


def test_a_rebuild_that_fails_while_moving_in_leaves_the_output_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = _wire(320)
    out = tmp_path / "out"
    _build(out, wire)
    before = _tree(out, cache=True)
    wire["servers"][0]["tools"][0]["description"] += " Changed."
    wire["servers"][3]["tools"][0]["description"] += " Changed too."
    # Fault injection (a disk that fails mid-way cannot be made here): the third
    # rename of the commit fails; the two before it must be undone.
    real_rename = os.rename
    calls = []

    def failing_rename(source: str, target: str) -> None:
        calls.append(source)
        if len(calls) == 3:
            raise OSError(5, "Input/output error")
        real_rename(source, target)

    monkeypatch.setattr(commit.os, "rename", failing_rename)
    with pytest.raises(OutputError, match="nothing was changed"):
        _build(out, wire)
    monkeypatch.undo()
    assert len(calls) > 3  # the undoing renames
    assert _tree(out, cache=True) == before
    assert not any(name.startswith(".out") for name in os.listdir(tmp_path))
    # The next rebuild goes through and equals a full build.
    _build(out, wire)
    _build(tmp_path / "full", wire)
    assert _tree(out) == _tree(tmp_path / "full")


def test_a_file_nobody_wrote_in_a_server_being_replaced_stops_the_commit(tmp_path: Path) -> None:
    wire = _wire(320)
    out = tmp_path / "out"
    _build(out, wire)
    before = _tree(out, cache=True)
    wire["servers"][0]["tools"][0]["description"] += " Changed."
    staged = commit.commit_changes
    server_dir = sorted((out / "cat" / "servers").iterdir())

    def add_stray_then_commit(*args: Any, **kwargs: Any) -> None:
        # Written after the up-front check, before the move: the commit checks again.
        for directory in server_dir:
            if directory.is_dir():
                (directory / "notes.txt").write_text("mine", encoding="utf-8")
        staged(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("codegen.write.commit_changes", add_stray_then_commit)
        with pytest.raises(OutputError, match="did not write"):
            _build(out, wire)
    strays = sorted(out.glob("cat/servers/*/notes.txt"))
    assert strays and all(path.read_text(encoding="utf-8") == "mine" for path in strays)
    for path in strays:
        path.unlink()
    assert _tree(out, cache=True) == before


def test_a_rebuild_killed_while_moving_in_is_repaired_by_the_next(tmp_path: Path) -> None:
    wire = _wire(320)
    out = tmp_path / "out"
    _build(out, wire)
    wire["servers"][0]["tools"][0]["description"] += " Changed."
    wire["servers"][5]["tools"][0]["description"] += " Changed too."
    wire["servers"].append({"name": "added later", "tools": wire["servers"][1]["tools"][:1]})
    snapshot = tmp_path / "snapshot.json"
    Snapshot.model_validate(wire).write(snapshot)
    # A real kill, in a process of its own: it dies at the third rename of the commit.
    killed = run_python_status(
        f"""
import os, pathlib
from codegen import commit
from codegen.build import build_package
from codegen.render import PackageOptions
from codegen.runtime.search import INDEX_FILENAME, search_tools
from codegen.snapshot import Snapshot
renames = []
real = os.rename
def rename(source, target):
    renames.append(source)
    if len(renames) == 3:
        os._exit(9)
    real(source, target)
commit.os.rename = rename
build_package(options=PackageOptions(name="cat"), out=pathlib.Path({str(out)!r}),
              snapshot=Snapshot.read(pathlib.Path({str(snapshot)!r})), keep_going=True,
              version="1.0.0")
"""
    )
    assert killed == 9
    assert (out / ".mcp-codegen" / "build-cache.pending.jsonl").exists()
    _build(out, wire)
    _build(tmp_path / "full", wire)
    assert _tree(out) == _tree(tmp_path / "full")
    assert sorted(os.listdir(out / ".mcp-codegen")) == [
        ".gitignore",
        "build-cache.jsonl",
        "index-parts.bin",
    ]


def run_python_status(code: str) -> int:
    """Run `code` in a fresh interpreter; its exit status."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], timeout=300, check=False).returncode


def _docs_server(description: str) -> dict[str, Any]:
    """A server with no tools, only a resource, a resource template and a prompt (wire form)."""
    return {
        "name": "handbook",
        "resources": [
            {"uri": "handbook://onboarding", "name": "onboarding", "description": description}
        ],
        "resourceTemplates": [
            {
                "uriTemplate": "handbook://policy/{slug}",
                "name": "policy",
                "description": "A policy.",
            }
        ],
        "prompts": [
            {
                "name": "escalation_letter",
                "description": "Draft an escalation letter to a vendor.",
                "arguments": [{"name": "vendor", "required": True}],
            }
        ],
    }


@pytest.mark.parametrize("size", [320, 60])
def test_rebuilds_keep_a_tool_less_servers_resources_and_prompts(tmp_path: Path, size: int) -> None:
    """A server offering only resources and prompts: kept whole by a rebuild, its entries
    still in the index (read from the previous build's parts), and rebuilt when it changes."""

    wire = _wire(size)
    wire["servers"].append(_docs_server("How new staff get started."))
    out = tmp_path / "incremental"
    _build(out, wire)
    folder = out / "cat" / "servers" / "handbook"
    assert sorted(path.name for path in folder.iterdir()) == [
        "__init__.py",
        "prompts.py",
        "resources.py",
    ]
    inode = (folder / "resources.py").stat().st_ino

    def found(query: str) -> str:
        return search_tools(query, "name", 3, index_path=out / "cat" / INDEX_FILENAME)

    # Another server changes: the tool-less one is kept in place, and still found.
    wire["servers"][0]["tools"][0]["description"] += " Now with pagination."
    report = _build(out, wire)
    assert not report.up_to_date
    assert (folder / "resources.py").stat().st_ino == inode
    assert "servers.handbook.prompts" in found("escalation letter vendor")
    assert "servers.handbook.resources" in found("onboarding new staff started")
    _build(tmp_path / "full-1", wire)
    assert _tree(out) == _tree(tmp_path / "full-1")

    # The tool-less server changes: rebuilt, and what a full build gives.
    wire["servers"][-1] = _docs_server("Where the paperwork for a new hire lives.")
    _build(out, wire)
    assert "servers.handbook.resources" in found("paperwork new hire")
    _build(tmp_path / "full-2", wire)
    assert _tree(out) == _tree(tmp_path / "full-2")
    assert _build(out, wire).up_to_date
