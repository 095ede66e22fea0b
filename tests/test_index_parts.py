"""The index from per-server parts: the same bytes as the plain formula, whatever is cached."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
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
    prepare_index,
    write_index,
)
from codegen.indexparts import part_of
from codegen.indexstore import read_stored, write_stored
from codegen.postings import combine, merge
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
    # Any order of parts, stored merged and read back from the file: the same bytes.
    servers = sorted(by_server, reverse=True)
    made = [part_of(by_server[server]) for server in servers]
    write_stored(tmp_path / "parts.bin", [f"key {s}" for s in servers], made, merge(made))
    stored = read_stored(tmp_path / "parts.bin")
    assert stored.keys == [f"key {s}" for s in servers]
    assert [part.server for part in stored.parts] == servers
    assert [part.rows() for part in stored.parts] == [part.rows() for part in made]
    write_index(stored.parts, tmp_path / "from-parts", generator_version="1", merged=stored.merged)
    assert _sha(tmp_path / "from-parts") == _sha(tmp_path / "full")
    # Rows copied from the previous index rather than parsed: the same bytes.
    write_index(
        stored.parts,
        tmp_path / "copied",
        generator_version="1",
        previous=tmp_path / "full",
        merged=stored.merged,
    )
    assert _sha(tmp_path / "copied") == _sha(tmp_path / "full")
    # A previous index that lacks some of them: the rows are parsed after all.
    build_index(entries[:-5], tmp_path / "fewer", generator_version="1")
    write_index(
        stored.parts,
        tmp_path / "parsed",
        generator_version="1",
        previous=tmp_path / "fewer",
        merged=stored.merged,
    )
    assert _sha(tmp_path / "parsed") == _sha(tmp_path / "full")
    # The index begun beforehand with the previous one's rows (`prepare_index`), whether
    # they are those tools' or not, or with none (no such file): the same bytes.
    for previous in ("full", "fewer", "missing"):
        write_index(
            stored.parts,
            tmp_path / f"prepared-{previous}",
            generator_version="1",
            previous=tmp_path / previous,
            merged=stored.merged,
            prepared=prepare_index(tmp_path / previous),
        )
        assert _sha(tmp_path / f"prepared-{previous}") == _sha(tmp_path / "full")
    assert not (tmp_path / "missing").exists()
    # Parts made afresh (rows not stored) into one begun with every row: taken out.
    write_index(
        made,
        tmp_path / "fresh",
        generator_version="1",
        merged=merge(made),
        prepared=prepare_index(tmp_path / "full"),
    )
    assert _sha(tmp_path / "fresh") == _sha(tmp_path / "full")


def test_a_damaged_parts_file_is_refused(tmp_path: Path) -> None:
    def entries(server: str) -> list[IndexEntry]:
        tools = (
            ToolSnapshot(name="get_time", description="Get the time", inputSchema={}),
            ToolSnapshot(name="set_time", description="Set the clock", inputSchema={}),
        )
        return entries_from_snapshot(Snapshot(servers=(ServerSnapshot(name=server, tools=tools),)))

    made = [part_of(entries("a")), part_of(entries("b"))]
    path = tmp_path / "parts.bin"
    write_stored(path, ["ka", "kb"], made, merge(made))
    good = path.read_bytes()
    assert read_stored(path).keys == ["ka", "kb"]
    assert [part.rows() for part in read_stored(path).parts] == [part.rows() for part in made]
    for damaged in (good[:-3], good + b"\0", b"not a parts file", good[:40]):
        path.write_bytes(damaged)
        assert read_stored(path).keys == []
    # A pair of the first part pointing at a tool of the second: refused, not scored.
    merged = merge(made)
    wrong = merged.pair_tool.copy()
    wrong[0] = len(made[0].paths)
    write_stored(path, ["ka", "kb"], made, replace(merged, pair_tool=wrong))
    assert read_stored(path).keys == []
    assert read_stored(tmp_path / "missing").keys == []
    assert read_stored(None).keys == []


@pytest.mark.skipif(not CORPUS.exists(), reason="the shared dev corpus is not beside the repo")
def test_a_merge_with_servers_swapped_scores_as_a_merge_from_scratch(tmp_path: Path) -> None:
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
    # The same through the parts file, twice: stored, read back, combined, stored again
    # (the terms only the dropped servers held are left out of it), and so on.
    keys = [f"key {server}" for server in servers]
    write_stored(tmp_path / "parts.bin", keys, base_parts, merge(base_parts))
    stored = read_stored(tmp_path / "parts.bin")
    combined = combine(stored.merged, keep, merge(extra))
    kept_parts = [part for part, kept in zip(stored.parts, keep, strict=True) if kept]
    write_index([*kept_parts, *extra], tmp_path / "stored", generator_version="1", merged=combined)
    assert _sha(tmp_path / "stored") == _sha(tmp_path / "full")
    kept_keys = [key for key, kept in zip(keys, keep, strict=True) if kept]
    write_stored(
        tmp_path / "parts.bin", [*kept_keys, "changed", "new"], [*kept_parts, *extra], combined
    )
    again = read_stored(tmp_path / "parts.bin")
    assert len(again.merged.terms) < len(combined.terms)  # the dropped servers' own terms
    write_index(again.parts, tmp_path / "again", generator_version="1", merged=again.merged)
    assert _sha(tmp_path / "again") == _sha(tmp_path / "full")
    assert ("zebra",) in {(row[0],) for row in _rows(tmp_path / "full", "postings")}
