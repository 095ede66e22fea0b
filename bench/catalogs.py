"""Catalogs of a chosen size from real tool definitions, for the scale benchmarks and tests.

`catalog_snapshot(count)` takes the real tools of the shared dev data (Toucan's
MCP servers, then StableToolBench's APIs: 5,279 tools) in file order, server by
server, and when more are asked for than there are, takes them again under
renamed servers (`<server>_copy2`, ...), so a 10,000-tool catalog still has the
shapes of real schemas. The servers of `extra` (e.g. a real `time` server whose
tool the benchmark calls) are put in front and counted.

`catalog_package(count)` builds such a catalog, with the demo's `time` server in
front, into `.demo/catalogs/<count>/`: the build's own cache makes every build
after the first take under a second, so tests and benchmarks share it.
"""

from __future__ import annotations

import json
from pathlib import Path

from codegen.build import build_package
from codegen.render import PackageOptions
from codegen.snapshot import SNAPSHOT_FILENAME, ServerSnapshot, Snapshot, ToolSnapshot

__all__ = ["CATALOG_PACKAGE", "SOURCES", "catalog_package", "catalog_snapshot"]

_ROOT = Path(__file__).resolve().parent.parent
_DATA = _ROOT.parent / "shared" / "data"
CATALOG_PACKAGE = "catalog"
"""The import name of every catalog package."""
SOURCES = (_DATA / "toucan-tools-dev.jsonl", _DATA / "stabletoolbench-dev" / "tools.jsonl")
"""The real tool definitions, in the order they are taken."""


def _servers() -> list[tuple[str, list[ToolSnapshot]]]:
    """Every server of the sources with its tools, in file order (names unique)."""
    servers: dict[str, dict[str, ToolSnapshot]] = {}
    for source in SOURCES:
        for line in source.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            tools = servers.setdefault(row["server"], {})
            tools.setdefault(
                row["name"],
                ToolSnapshot.model_validate(
                    {
                        "name": row["name"],
                        "description": row.get("description") or "",
                        "inputSchema": row["inputSchema"],
                    }
                ),
            )
    return [(name, list(tools.values())) for name, tools in servers.items()]


def catalog_snapshot(count: int, extra: Snapshot | None = None) -> Snapshot:
    """A snapshot of exactly `count` tools: `extra`'s servers, then real ones (see above).

    Raises:
        FileNotFoundError: the shared data is not beside the repository.
    """
    chosen: list[ServerSnapshot] = list(extra.servers) if extra else []
    taken = sum(len(server.tools) for server in chosen)
    names = {server.name for server in chosen}
    real = _servers()
    copy = 1
    while taken < count:
        for name, tools in real:
            if taken >= count:
                break
            renamed = name if copy == 1 else f"{name}_copy{copy}"
            if renamed in names:
                continue
            kept = tools[: count - taken]
            chosen.append(ServerSnapshot(name=renamed, tools=tuple(kept)))
            names.add(renamed)
            taken += len(kept)
        copy += 1
    return Snapshot(servers=tuple(chosen))


def catalog_package(count: int) -> Path:
    """The built package of `catalog_snapshot(count)` with the demo's `time` server in front.

    Raises:
        FileNotFoundError: the shared data is not beside the repository.
        BuildError: the package does not build.
    """
    golden = Snapshot.read(_ROOT / "generated" / "mcp_demo" / SNAPSHOT_FILENAME)
    time_server = golden.server("time")
    assert time_server is not None
    out = _ROOT / ".demo" / "catalogs" / str(count)
    build_package(
        options=PackageOptions(name=CATALOG_PACKAGE),
        out=out,
        snapshot=catalog_snapshot(count, Snapshot(servers=(time_server,))),
        keep_going=True,
    )
    return out
