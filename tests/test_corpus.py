"""Every real tool schema of the dev corpus (2,800 tools, 442 servers) builds into modules that import."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._common import corpus_snapshot
from tests.conftest import SHARED_DATA, build, run_python

CORPUS = SHARED_DATA / "toucan-tools-dev.jsonl"


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared dev corpus is not beside the repo")
def test_every_corpus_tool_builds_and_imports(tmp_path: Path) -> None:
    snapshot = corpus_snapshot()
    assert snapshot.tool_count() == 2800 and len(snapshot.servers) == 442
    report = build(tmp_path / "out", name="corpus", snapshot=snapshot, keep_going=True)
    errors = report.diagnostics.errors
    assert report.modules + len(errors) == 2800
    assert all(error.server and error.tool for error in errors)  # each failure names its tool
    # The names outside the MCP pattern are warned about, and still generated.
    assert any(
        "outside the MCP pattern" in warning.message for warning in report.diagnostics.warnings
    )
    output = run_python(
        """
import importlib, corpus.servers as servers
imported = 0
for server in servers.__all__:
    package = importlib.import_module(f"corpus.servers.{server}")
    for name in package.__all__:
        assert callable(getattr(package, name))
        imported += 1
print(imported)
""",
        tmp_path / "out",
    )
    assert int(output) == report.modules
    print(
        f"corpus: {report.modules} of 2800 tools built and imported; {len(errors)} per-tool errors"
    )
