"""The 10,000-tool catalog of the build benchmarks, made the same way every time.

    .venv/bin/python bench/catalog.py [--tools 10000] [--out catalog.json]

Real tools first: toucan dev (2,800 MCP tools) and StableToolBench dev (2,479
RapidAPI endpoints) from ../shared/data. The rest are renamed copies of those, in
order: copy `n` of a server is the server `"<name> copy <n>"`, and each of its
tools has every top-level property renamed `<property>_<n>` (and its `required`
list with it). So a copy's input model differs from its original's, and a build
that skips identical work can only skip what the real data repeats, not the
filler. Writes the snapshot (canonical JSON) to --out, or prints its digest.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import SHARED_DATA
from codegen.snapshot import ServerSnapshot, Snapshot, ToolSnapshot

SOURCES = (
    SHARED_DATA / "toucan-tools-dev.jsonl",
    SHARED_DATA / "stabletoolbench-dev" / "tools.jsonl",
)


def _rows() -> list[dict[str, Any]]:
    import json

    rows: list[dict[str, Any]] = []
    for source in SOURCES:
        rows += [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    return rows


def _renamed(schema: dict[str, Any], copy_number: int) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        schema["properties"] = {
            f"{name}_{copy_number}": value for name, value in properties.items()
        }
    required = schema.get("required")
    if isinstance(required, list):
        schema["required"] = [
            f"{name}_{copy_number}" if isinstance(name, str) else name for name in required
        ]
    return schema


def _catalog_rows(size: int) -> Iterator[dict[str, Any]]:
    real = _rows()
    yield from real[:size]
    made, copy_number = len(real), 1
    while made < size:
        copy_number += 1
        for row in real:
            if made == size:
                return
            yield {
                "server": f"{row['server']} copy {copy_number}",
                "name": row["name"],
                "description": row.get("description") or "",
                "inputSchema": _renamed(row["inputSchema"], copy_number),
            }
            made += 1


def catalog_snapshot(size: int = 10_000) -> Snapshot:
    """A snapshot of `size` tools: the real ones, then renamed copies (see the module doc)."""
    servers: dict[str, dict[str, ToolSnapshot]] = {}
    for row in _catalog_rows(size):
        tools = servers.setdefault(row["server"], {})
        name = row["name"]
        if name in tools:  # a recorded server that lists a name twice keeps the first
            continue
        tools[name] = ToolSnapshot.model_validate(
            {
                "name": name,
                "description": row.get("description") or "",
                "inputSchema": row["inputSchema"],
            }
        )
    return Snapshot(
        servers=tuple(
            ServerSnapshot(name=name, tools=tuple(tools.values()))
            for name, tools in servers.items()
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    snapshot = catalog_snapshot(args.tools)
    if args.out:
        snapshot.write(args.out)
    print(
        f"{snapshot.tool_count()} tools of {len(snapshot.servers)} servers, "
        f"sha256 {snapshot.digest()}"
    )


if __name__ == "__main__":
    main()
