"""A/B of warm trivial `execute_code` through `serve` over stdio, spaced 0.2 s.

    .venv/bin/python bench/warm_ab.py "" "--check-code off" "/work/main|" "/work/main|--unsafe-local"

Each variant is `[checkout|]serve flags`: the code of that checkout (default: this
one) served with those flags, on the 10-tool catalog package; variants alternate
in rounds so they see the same load. Prints p50 and p10 (ms) of each, and of a
`tools/list` round trip in the first variant's sessions (the MCP round trip alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.serve_bench as sb


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"{name:50} p50 {statistics.median(ordered):6.1f}  p10 {ordered[len(ordered) // 10]:6.1f}"
    )


async def _main(variants: list[str], rounds: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="warm-ab-") as scratch:
        config = Path(scratch) / "mcp.json"
        servers = {"time": {"command": str(sb.TIME), "args": ["--local-timezone", "UTC"]}}
        config.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
        package = sb.catalog_package(10)
        found: dict[str, list[float]] = {variant: [] for variant in variants}
        pings: list[float] = []
        for _ in range(rounds):
            for variant in variants:
                root, _, flags = variant.rpartition("|")
                found[variant] += await sb._stdio_samples(
                    package,
                    config,
                    runs,
                    Path(root) if root else sb.ROOT,
                    *flags.split(),
                    pings=pings if variant == variants[0] else None,
                )
    for variant, samples in found.items():
        print(_row(repr(variant), samples))
    print(_row("tools/list (first variant's sessions)", pings))


def main() -> None:
    """Measure the variants given on the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("variants", nargs="+", help="[checkout|]serve flags")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20, help="executions per variant per round")
    args = parser.parse_args()
    asyncio.run(_main(args.variants, args.rounds, args.runs))


if __name__ == "__main__":
    main()
