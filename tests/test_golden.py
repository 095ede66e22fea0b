"""The committed golden package: it is what the snapshot renders, it type-checks, it imports."""

from __future__ import annotations

import subprocess
import sys

from codegen.render import PackageOptions
from codegen.staleness import stale_files
from tests.conftest import GOLDEN, run_python


def test_golden_tree_is_what_its_snapshot_renders() -> None:
    problems = stale_files(GOLDEN, PackageOptions(name="mcp_demo"))
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
    assert output.split() == ["69", "False"]  # every tool; the mcp SDK is not imported
