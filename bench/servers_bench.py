"""Many stdio servers in one config: how many are built, and how long it takes.

    .venv/bin/python bench/servers_bench.py [--servers 100] [--runs 2] [--jobs 4,16,100]

Each server is `tests/servers/recorded.py` (a Python SDK server over one toucan
server's recorded tools, about a second of CPU to start, like most `uvx`/`npx`
servers). `mcp-codegen build` runs as a user runs it (`python -m codegen build
--config ... --json`), with default settings, `--runs` times; then once with
each `--jobs` value, to show how the default was chosen. Writes
bench/results/servers.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, write_table
from codegen.runtime.direct import default_jobs
from tests.fleet import fleet_servers, marked_processes


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_once(servers: int, scratch: Path, jobs: int | None) -> dict[str, object]:
    """One `build` of `servers` recorded servers: built count, wall and CPU seconds, survivors."""
    mark = f"{scratch}/{time.monotonic_ns()}"
    config = scratch / "mcp.json"
    config.write_text(
        json.dumps({"mcpServers": fleet_servers(servers, mark=mark)}), encoding="utf-8"
    )
    out = scratch / f"out-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "codegen", "build", "--config", str(config)]
    command += ["--package", str(out), "--name", "fleet", "--keep-going", "--json"]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    # A failed build's JSON has no counts, only its errors: one per server that failed.
    failed = report.get("failed_servers") if done.returncode == 0 else report.get("errors", [])
    return {
        "built": report.get("servers", 0) if done.returncode == 0 else 0,
        "failed": len(failed or []),
        "wall": wall,
        "introspect": (report.get("seconds") or {}).get("introspect", wall),
        "cpu": children_cpu() - cpu,
        "left": len(marked_processes(mark)),
        "ok": done.returncode == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--jobs", default="4,16,100", help="other --jobs values, once each")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        runs = [build_once(args.servers, scratch, None) for _ in range(args.runs)]
        rows.append(
            [
                f"{args.servers} stdio servers, default settings (--jobs {default_jobs()}): built",
                " / ".join(f"{run['built']}/{args.servers}" for run in runs),
                "target: all built",
            ]
        )
        rows.append(
            [
                f"{args.servers} stdio servers, default settings: wall s, median",
                f"{statistics.median(run['wall'] for run in runs):.1f}",  # type: ignore[misc]
                "target: under 180 s; runs: "
                + ", ".join(f"{run['wall']:.1f}" for run in runs)
                + "; CPU s (build and servers): "
                + ", ".join(f"{run['cpu']:.0f}" for run in runs),
            ]
        )
        rows.append(
            [
                "server processes left after the command",
                sum(int(run["left"]) for run in runs),  # type: ignore[call-overload]
                "checked in /proc by an environment mark",
            ]
        )
        for jobs in (int(value) for value in args.jobs.split(",") if value):
            run = build_once(args.servers, scratch, jobs)
            rows.append(
                [
                    f"{args.servers} stdio servers, --jobs {jobs}: built, wall s",
                    f"{run['built']}/{args.servers}, {run['wall']:.1f}",
                    f"introspection {run['introspect']:.1f} s; {run['failed']} failed "
                    f"(30 s deadline); CPU s {run['cpu']:.0f}",
                ]
            )
    load_after = os.getloadavg()[0]
    write_table(
        "servers",
        "Many stdio servers",
        ["measure", "value", "detail"],
        rows,
        notes=(
            f"Machine: {os.cpu_count()} cores, shared (load average {load_before:.1f} before, "
            f"{load_after:.1f} after). Before this change, 60 such servers all timed out "
            "(all started at once) or the build hung on servers that outlived their deadline."
        ),
    )


if __name__ == "__main__":
    main()
