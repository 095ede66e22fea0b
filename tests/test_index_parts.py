"""The index from per-server parts: the same bytes as the plain formula, whatever is cached."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from array import array
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest

from codegen.index import (
    FIELDS,
    INDEX_FILENAME,
    K1,
    IndexEntry,
    build_index,
    entries_from_snapshot,
    indexed_text,
    write_index,
)
from codegen.indexparts import (
    decode_part,
    encode_part,
    part_of,
    read_parts,
    write_parts,
)
from codegen.runtime.search import SCORE_TYPE, idf_of, tool_id_type
from codegen.snapshot import ServerSnapshot, Snapshot, ToolSnapshot
from tests.conftest import SHARED_DATA

CORPUS = SHARED_DATA / "toucan-tools-dev.jsonl"


def _corpus(limit: int) -> list[IndexEntry]:
    servers: dict[str, dict[str, ToolSnapshot]] = defaultdict(dict)
    for line in CORPUS.read_text(encoding="utf-8").splitlines()[:limit]:
        row = json.loads(line)
        servers[row["server"]].setdefault(
            row["name"],
            ToolSnapshot.model_validate(
                {
                    "name": row["name"],
                    "description": row.get("description") or "",
                    "inputSchema": row["inputSchema"],
                }
            ),
        )
    snapshot = Snapshot(
        servers=tuple(
            ServerSnapshot(name=name, tools=tuple(tools.values()))
            for name, tools in servers.items()
        )
    )
    return entries_from_snapshot(snapshot)


def _plain_postings(entries: Sequence[IndexEntry]) -> list[tuple[str, int, bytes, bytes]]:
    # BM25F written out as a loop over every tool and term, as the index was first built:
    # the vectorized scoring must give these bytes exactly.
    texts = indexed_text(sorted(entries, key=lambda entry: entry.import_path))
    count = len(texts)
    averages = {
        field.name: (sum(len(text[field.name]) for text in texts) / count) or 1.0
        for field in FIELDS
    }
    tools: dict[str, array[int]] = defaultdict(lambda: array(tool_id_type(count)))
    weighted: dict[str, list[float]] = defaultdict(list)
    for tool, text in enumerate(texts, start=1):
        frequency: dict[str, float] = defaultdict(float)
        for field in FIELDS:
            terms = text[field.name]
            share = field.weight / (1.0 - field.b + field.b * len(terms) / averages[field.name])
            for term in terms:
                frequency[term] += share
        for term, f in frequency.items():
            tools[term].append(tool)
            weighted[term].append(f)
    rows = []
    for term in sorted(tools):
        idf = idf_of(count, len(tools[term]))
        scores = array(SCORE_TYPE, [idf * f * (K1 + 1.0) / (f + K1) for f in weighted[term]])
        rows.append((term, len(tools[term]), tools[term].tobytes(), scores.tobytes()))
    return rows


def _rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        columns = "term, holders, tools, scores" if table == "postings" else "*"
        return db.execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared dev corpus is not beside the repo")
def test_scores_are_the_plain_formulas_to_the_last_bit(tmp_path: Path) -> None:
    entries = _corpus(1500)
    path = tmp_path / INDEX_FILENAME
    build_index(entries, path, generator_version="1")
    expected = _plain_postings(entries)
    assert len(expected) > 5000
    assert _rows(path, "postings") == expected


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared dev corpus is not beside the repo")
def test_parts_from_the_parts_file_give_the_same_index(tmp_path: Path) -> None:
    entries = _corpus(800)
    by_server: dict[str, list[IndexEntry]] = defaultdict(list)
    for entry in entries:
        by_server[entry.server].append(entry)
    build_index(entries, tmp_path / "full", generator_version="1")
    write_parts(
        tmp_path / "parts.bin",
        {server: encode_part(part_of(group)) for server, group in by_server.items()},
    )
    stored = read_parts(tmp_path / "parts.bin")
    assert sorted(stored) == sorted(by_server)
    # Any order of parts, read back from the file: the same bytes.
    parts = [decode_part(stored[server]) for server in sorted(by_server, reverse=True)]
    write_index(parts, tmp_path / "from-parts", generator_version="1")
    assert _sha(tmp_path / "from-parts") == _sha(tmp_path / "full")
    # Rows copied from the previous index rather than parsed: the same bytes.
    write_index(parts, tmp_path / "copied", generator_version="1", previous=tmp_path / "full")
    assert _sha(tmp_path / "copied") == _sha(tmp_path / "full")
    # A previous index that lacks some of them: the rows are parsed after all.
    build_index(entries[:-5], tmp_path / "fewer", generator_version="1")
    write_index(parts, tmp_path / "parsed", generator_version="1", previous=tmp_path / "fewer")
    assert _sha(tmp_path / "parsed") == _sha(tmp_path / "full")


def test_a_damaged_parts_file_or_part_is_refused(tmp_path: Path) -> None:
    entries = entries_from_snapshot(
        Snapshot(
            servers=(
                ServerSnapshot(
                    name="s",
                    tools=(
                        ToolSnapshot(name="get_time", description="Get the time", inputSchema={}),
                    ),
                ),
            )
        )
    )
    encoded = encode_part(part_of(entries))
    assert decode_part(encoded).rows() == part_of(entries).rows()
    with pytest.raises(ValueError):
        decode_part(encoded[:-1])
    with pytest.raises(ValueError):
        decode_part(encoded + b"\0")
    path = tmp_path / "parts.bin"
    write_parts(path, {"k": encoded})
    path.write_bytes(path.read_bytes()[:-3])
    assert read_parts(path) == {}
    path.write_bytes(b"not a parts file")
    assert read_parts(path) == {}
    assert read_parts(tmp_path / "missing") == {}


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared dev corpus is not beside the repo")
def test_a_merge_with_servers_swapped_scores_as_a_merge_from_scratch(tmp_path: Path) -> None:
    from codegen.postings import combine, merge

    entries = _corpus(900)
    by_server: dict[str, list[IndexEntry]] = defaultdict(list)
    for entry in entries:
        by_server[entry.server].append(entry)
    servers = sorted(by_server)
    base_parts = [part_of(by_server[server]) for server in servers]
    # The rebuild: the first server changed (a tool renamed and redescribed), the
    # second is gone, one is new; the rest are kept.
    changed = list(by_server[servers[0]])
    first = changed[0]
    changed[0] = IndexEntry(
        first.server,
        first.tool + "_v2",
        first.import_path + "_v2",
        first.title,
        "Translate a quantum spreadsheet into zebra pixels",
        first.parameters,
        first.signature,
        first.docstring,
    )
    new = [
        IndexEntry("zz new", "fetch_zebra", "servers.zz_new.fetch_zebra", None,
                   "Fetch zebra stripes by colour", (("colour", "the colour"),), "sig", "doc")
    ]  # fmt: skip
    keep = [False, False, *([True] * (len(servers) - 2))]
    extra = [part_of(changed), part_of(new)]
    final = [part for part, kept in zip(base_parts, keep, strict=True) if kept] + extra
    combined = combine(merge(base_parts), keep, merge(extra))
    write_index(final, tmp_path / "combined", generator_version="1", merged=combined)
    rest = [entry for server in servers[2:] for entry in by_server[server]]
    build_index([*rest, *changed, *new], tmp_path / "full", generator_version="1")
    assert _sha(tmp_path / "combined") == _sha(tmp_path / "full")
    assert ("zebra",) in {(row[0],) for row in _rows(tmp_path / "full", "postings")}
