"""The committed golden package: it is what the snapshot renders, it type-checks, it imports."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

from codegen.snapshot import Snapshot
from tests.conftest import GOLDEN, build, run_python


def files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not {"__pycache__", ".mypy_cache", ".mcp-codegen"} & set(path.parts)
    }


def test_golden_tree_is_what_its_snapshot_renders(tmp_path: Path, demo_snapshot: Snapshot) -> None:
    build(tmp_path / "mcp_demo", name="mcp_demo", snapshot=demo_snapshot)
    expected, actual = files(tmp_path / "mcp_demo"), files(GOLDEN)
    problems = [
        f"missing from generated/: {name}" for name in sorted(expected.keys() - actual.keys())
    ]
    problems += [
        f"not rendered any more: {name}" for name in sorted(actual.keys() - expected.keys())
    ]
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] != actual[name]:
            if name.endswith((".py", ".md", ".toml", ".json")):
                diff = difflib.unified_diff(
                    actual[name].decode().splitlines(),
                    expected[name].decode().splitlines(),
                    f"generated/mcp_demo/{name}",
                    f"rendered/{name}",
                    lineterm="",
                    n=1,
                )
                problems.append("\n".join(list(diff)[:40]))
            else:
                problems.append(f"differs: {name}")
    assert not problems, "generated/ is stale; refresh it with `make golden`:\n" + "\n".join(
        problems
    )


def test_golden_package_passes_mypy_strict() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir=/dev/null",
            "mcp_demo",
        ],
        cwd=GOLDEN,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_golden_package_imports_in_a_fresh_interpreter() -> None:
    output = run_python(
        """
import importlib, pkgutil, sys
import mcp_demo, mcp_demo.servers
count = 0
for server in mcp_demo.servers.__all__:
    package = importlib.import_module(f"mcp_demo.servers.{server}")
    for name in package.__all__:
        assert callable(getattr(package, name)), name
        count += 1
print(count, "mcp" in sys.modules)
""",
        GOLDEN,
    )
    assert output.split() == ["57", "False"]  # every tool; the mcp SDK is not imported
