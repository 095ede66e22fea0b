"""The build's last stage: the search index written into the generated package.

One SQLite file (`search_index.sqlite3`) that `_runtime/search.py` queries offline.
Each tool is a row of `tools` (what a hit prints). Its text is split into the
weighted fields of `FIELDS`, tokenized by the runtime's own `tokenize`, so build
and query can never split words differently. A server's tools are grouped by the
namespaces inside their names (`codegen.namespaces`): a gateway that folds 800
APIs into one server is indexed as if each API were a server of its own.

Ranking is BM25F: per-field length normalization, one saturation over the
weighted sum of the fields (`codegen.postings`). Everything in it but the choice of
query terms is fixed once the corpus is: a term's idf, a tool's weighted term
frequencies and field lengths. So the build computes each term's contribution to
each tool's score and stores, per term, one row of `postings`: the ids of the
tools holding it and those contributions. A query then only adds up the rows of
its terms, without scoring every matching row. The contribution of term t to
tool d:

    idf(t) * F * (K1 + 1) / (F + K1),
    F = sum over fields c of weight_c * tf_c / (1 - b_c + b_c * len_c / avglen_c),

with idf(t) = ln(1 + (N - n + 0.5) / (n + 0.5)), n the tools holding t. Each
server's share of this (its tools' terms: `codegen.indexparts`) is computed once
and kept between builds; the scores, which depend on every tool, are computed
from all the parts at once (`codegen.postings`).

The file is byte-identical for identical input: entries are sorted, nothing
depends on time or place, and the database is built in memory and written out
with `VACUUM INTO`, which lays pages out afresh.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .names import assign_unique
from .namespaces import Namespaced, namespaces
from .runtime.search import (
    INDEX_FILENAME,
    INDEX_FORMAT,
    term_pairs,
    tokenize,
    tool_id_type,
)

if TYPE_CHECKING:
    from .indexparts import IndexPart
    from .postings import Merged
    from .snapshot import Snapshot

__all__ = [
    "FIELDS",
    "INDEX_FILENAME",
    "INDEX_FORMAT",
    "Field",
    "IndexBuildError",
    "IndexEntry",
    "build_index",
    "entries_from_snapshot",
    "group_numbers",
    "indexed_text",
    "parameters_from_schema",
    "prepare_index",
    "split_names",
    "write_index",
]

SUMMARY_LIMIT = 120


class IndexBuildError(Exception):
    """The index cannot be written (two entries share an import path, the disk fails)."""


@dataclass(frozen=True)
class IndexEntry:
    """One generated tool function, as the search index records it.

    Attributes:
        server: the server's key in `mcpServers`.
        tool: the MCP tool name.
        import_path: the function's module relative to the package (`servers.time.get_current_time`).
        title: the tool's human title, if any.
        description: the tool's description.
        parameters: `(name, description)` of each parameter, in signature order.
        signature: the `async def` line of the generated function.
        docstring: the function's whole docstring text.
    """

    server: str
    tool: str
    import_path: str
    title: str | None
    description: str
    parameters: tuple[tuple[str, str], ...]
    signature: str
    docstring: str


def parameters_from_schema(schema: object) -> tuple[tuple[str, str], ...]:
    """The top-level `(name, description)` pairs of a tool's input schema, in schema order.

    Anything that is not an object schema with `properties` gives `()`; a property
    without a string description gets `""`.
    """
    if not isinstance(schema, dict):
        return ()
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return ()
    pairs: list[tuple[str, str]] = []
    for name, spec in properties.items():
        description = spec.get("description") if isinstance(spec, dict) else None
        pairs.append((str(name), description if isinstance(description, str) else ""))
    return tuple(pairs)


_JSON_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list[Any]",
    "object": "dict[str, Any]",
}


def entries_from_snapshot(snapshot: Snapshot) -> list[IndexEntry]:
    """Index entries for every tool of `snapshot`, named as `codegen.names` names them.

    For indexing a snapshot without rendering it (benchmarks, tests): the signature
    is a plain approximation (`*, name: type`) and the docstring is the description
    with an `Args:` section. The compiler passes entries with its real signatures.
    """
    entries: list[IndexEntry] = []
    server_idents, _ = assign_unique(server.name for server in snapshot.servers)
    for server in snapshot.servers:
        tool_idents, _ = assign_unique(tool.name for tool in server.tools)
        for tool in server.tools:
            ident = tool_idents[tool.name]
            parameters = parameters_from_schema(tool.input_schema)
            properties = tool.input_schema.get("properties")
            required = tool.input_schema.get("required")
            required_names = set(required) if isinstance(required, list) else set()
            args = []
            for name, _description in parameters:
                spec = properties.get(name) if isinstance(properties, dict) else None
                kind = spec.get("type") if isinstance(spec, dict) else None
                annotation = _JSON_TYPES.get(kind, "Any") if isinstance(kind, str) else "Any"
                if name in required_names:
                    args.append(f"{name}: {annotation}")
                else:
                    args.append(f"{name}: {annotation} | None = None")
            star = "*, " if args else ""
            signature = f"async def {ident}({star}{', '.join(args)}) -> ToolResult"
            doc = tool.description.strip()
            described = [f"    {name}: {text.strip()}" for name, text in parameters if text.strip()]
            if described:
                doc = f"{doc}\n\nArgs:\n" + "\n".join(described)
            entries.append(
                IndexEntry(
                    server=server.name,
                    tool=tool.name,
                    import_path=f"servers.{server_idents[server.name]}.{ident}",
                    title=tool.title,
                    description=tool.description,
                    parameters=parameters,
                    signature=signature,
                    docstring=doc,
                )
            )
    return entries


def _terms(*texts: str | None) -> list[str]:
    return [term for text in texts if text for term in tokenize(text)]


# Words a tool's text and an agent's query often use for one another. A tool whose
# name or description holds one word of a group is also found by the others, with
# the weight of the `related` field. General software and web-API vocabulary only.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("add", "create", "insert", "new"),
    ("delete", "remove", "erase", "destroy"),
    ("update", "edit", "modify", "change"),
    ("fetch", "retrieve", "obtain", "lookup"),
    ("search", "find", "query", "lookup"),
    ("list", "enumerate", "browse"),
    ("show", "display", "view"),
    ("log", "history", "timeline"),
    ("send", "post", "submit"),
    ("email", "mail", "message"),
    ("image", "picture", "photo"),
    ("movie", "film"),
    ("song", "music", "track"),
    ("user", "account", "profile"),
    ("file", "document"),
    ("directory", "folder"),
    ("repository", "repo"),
    ("convert", "conversion", "transform"),
    ("location", "place", "city", "address"),
    ("news", "article", "headline"),
    ("company", "business", "organization"),
    ("job", "career", "vacancy"),
    ("price", "cost", "quote"),
    ("stock", "share", "ticker"),
    ("weather", "forecast", "temperature"),
    ("time", "clock", "timezone"),
    ("translate", "translation", "language"),
    ("video", "clip"),
    ("game", "match", "fixture"),
    ("recipe", "dish", "meal"),
    ("currency", "exchange", "money"),
    ("run", "execute", "launch"),
    ("summary", "overview", "summarize"),
)


def _synonym_table() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = defaultdict(list)
    for group in SYNONYMS:
        stems = list(dict.fromkeys(term for word in group for term in tokenize(word)))
        for term in stems:
            table[term] += [other for other in stems if other != term]
    return {term: tuple(dict.fromkeys(others)) for term, others in table.items()}


_RELATED = _synonym_table()


def _related(terms: Sequence[str]) -> list[str]:
    own = set(terms)
    found = (other for term in own for other in _RELATED.get(term, ()) if other not in own)
    return sorted(set(found))


@dataclass(frozen=True)
class Field:
    """One weighted field of a tool's text in BM25F.

    Attributes:
        name: the field's name.
        weight: how much one occurrence counts, against one in the description.
        b: how much the field's length, against its average, damps its terms (0..1).
    """

    name: str
    weight: float
    b: float


# What the index holds of a tool. `name`: the tool name without its namespace, and
# its title; `space`: the server key and the namespace, where the tool belongs;
# `params`: the distinct terms of its parameters' names and descriptions, at most
# PARAMS_CAP; `related`: synonyms (`SYNONYMS`) of the name's and description's
# words; `context`: each distinct term of the names and descriptions of the tools
# of its group (its namespace, or its server if it has none), which says what kind
# of service it belongs to; `pairs`: adjacent term pairs of name, space and
# description ("qr code", "short url"), evidence beyond the two words apart.
# Short fields (a name) are barely length-normalized, long ones fully.
FIELDS: tuple[Field, ...] = (
    Field("name", 3.0, 0.3),
    Field("space", 2.0, 0.3),
    Field("description", 1.0, 0.75),
    Field("params", 0.5, 0.75),
    Field("related", 0.25, 0.5),
    Field("context", 0.5, 0.75),
    Field("pairs", 0.5, 0.75),
)
# A tool with 60 parameters must not match every query through them: its
# parameters give at most this many distinct terms (in schema order).
PARAMS_CAP = 48
# BM25's saturation: a term's weighted frequency F counts F * (K1 + 1) / (F + K1).
K1 = 1.2


def split_names(entries: Sequence[IndexEntry]) -> list[Namespaced]:
    """Each entry's tool name split into namespace and the rest, among its server's tools."""
    by_server: dict[str, list[int]] = defaultdict(list)
    for position, entry in enumerate(entries):
        by_server[entry.server].append(position)
    split: dict[int, Namespaced] = {}
    for positions in by_server.values():
        found = namespaces([(entries[i].tool, entries[i].title) for i in positions])
        split.update(zip(positions, found, strict=True))
    return [split[position] for position in range(len(entries))]


def group_numbers(
    entries: Sequence[IndexEntry], split: Sequence[Namespaced] | None = None
) -> list[int]:
    """Each entry's group (its namespace, or its server if it has none) as a number from 1.

    Numbered in sorted order of `(server, namespace)`, so the same tools always
    give the same numbers. `split` is `split_names(entries)`, if already known.
    """
    split = split_names(entries) if split is None else split
    keys = [
        (entry.server, namespaced.namespace)
        for entry, namespaced in zip(entries, split, strict=True)
    ]
    numbers = {key: number for number, key in enumerate(sorted(set(keys)), start=1)}
    return [numbers[key] for key in keys]


def indexed_text(
    entries: Sequence[IndexEntry], split: Sequence[Namespaced] | None = None
) -> list[dict[str, list[str]]]:
    """The indexed text of each of `entries`, in their order: field name -> its terms.

    The fields are those of `FIELDS`. The namespace of a tool (`codegen.namespaces`)
    depends on the other tool names of its server, and its `context` on the other
    tools of its group, so pass all the entries of an index at once. `split` is
    `split_names(entries)`, if already known.
    """
    split = split_names(entries) if split is None else split
    groups: list[tuple[str, str]] = []
    group_terms: dict[tuple[str, str], list[str]] = defaultdict(list)
    texts: list[dict[str, list[str]]] = []
    for entry, namespaced in zip(entries, split, strict=True):
        group = (entry.server, namespaced.namespace)
        name = _terms(namespaced.local, namespaced.title)
        space = _terms(entry.server, namespaced.namespace)
        description = _terms(entry.description)
        parameter_text = " ".join(f"{key} {text}" for key, text in entry.parameters)
        texts.append(
            {
                "name": name,
                "space": space,
                "description": description,
                "params": list(dict.fromkeys(_terms(parameter_text)))[:PARAMS_CAP],
                "related": _related(name + description),
                "pairs": term_pairs(name) + term_pairs(space) + term_pairs(description),
            }
        )
        groups.append(group)
        group_terms[group] += _terms(namespaced.namespace) + name + description
    # Presence, not frequency: a group with many tools does not drown the rest.
    contexts = {group: list(dict.fromkeys(terms)) for group, terms in group_terms.items()}
    for text, group in zip(texts, groups, strict=True):
        text["context"] = contexts[group]
    return texts


def _bytes(values: array[int]) -> bytes:
    # Little-endian, so the file does not depend on the byte order of the machine.
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE tools (
    id INTEGER PRIMARY KEY,
    import_path TEXT NOT NULL UNIQUE,
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    title TEXT,
    summary TEXT NOT NULL,
    signature TEXT NOT NULL,
    docstring TEXT NOT NULL
);
-- One row: each tool's group (`group_numbers`) by tool id, from id 0 (unused, 0).
CREATE TABLE tool_groups (groups BLOB NOT NULL);
-- A rowid table: its rows stay inline up to a page, where WITHOUT ROWID rows overflow
-- past a quarter of one (2 MB more at 10,000 tools).
CREATE TABLE postings (
    id INTEGER PRIMARY KEY,
    term TEXT NOT NULL UNIQUE,
    holders INTEGER NOT NULL,
    tools BLOB NOT NULL,
    scores BLOB NOT NULL
);
"""


def build_index(entries: Sequence[IndexEntry], path: Path, *, generator_version: str) -> None:
    """Write the search index of `entries` to `path` (replacing it atomically).

    Raises:
        IndexBuildError: two entries share an import path, or the file cannot be written.
    """
    from .indexparts import part_of  # numpy, imported only when an index is built

    by_server: dict[str, list[IndexEntry]] = defaultdict(list)
    for entry in entries:
        by_server[entry.server].append(entry)
    parts = [part_of(by_server[server]) for server in sorted(by_server)]
    write_index(parts, path, generator_version=generator_version)


def write_index(
    parts: Sequence[IndexPart],
    path: Path,
    *,
    generator_version: str,
    previous: Path | None = None,
    merged: Merged | None = None,
    prepared: sqlite3.Connection | None = None,
) -> None:
    """Write the search index of the tools of `parts` (one per server) to `path`, atomically.

    The tools are numbered in sorted order of their import paths, whatever the
    order of `parts`, so the file is the same for the same tools. `previous` is an
    index written from the same parts for the parts whose rows were not parsed
    (read from a parts file): their rows are copied from it, by import path, which
    reads no JSON; if it lacks any, the rows are parsed after all. `merged` is
    `codegen.postings.merge(parts)`, if the caller has it. `prepared` is
    `prepare_index(previous)`, if the caller made it while waiting for `parts`
    (the index takes it over, and closes it).

    Raises:
        IndexBuildError: two tools share an import path, a part is damaged, or the
            file cannot be written.
    """
    import numpy as np

    from .postings import merge, score

    paths = sorted(import_path for part in parts for import_path in part.paths)
    duplicates = sorted({p for i, p in enumerate(paths) if i and paths[i - 1] == p})
    if duplicates:
        raise IndexBuildError(
            f"import paths listed twice in the search index: {', '.join(duplicates)}"
        )
    number = {import_path: rowid for rowid, import_path in enumerate(paths, start=1)}
    ids = [
        np.fromiter(map(number.__getitem__, part.paths), np.int64, len(part.paths))
        for part in parts
    ]
    # Each tool's group (`group_numbers`): its (server, namespace) in sorted order, from 1.
    keys = {(part.server, namespace) for part in parts for namespace in part.namespaces}
    group_of = {key: group for group, key in enumerate(sorted(keys), start=1)}
    groups = array(tool_id_type(len(paths)), [0] * (len(paths) + 1))
    for part, part_ids in zip(parts, ids, strict=True):
        for rowid, namespace in zip(part_ids.tolist(), part.namespaces, strict=True):
            groups[rowid] = group_of[part.server, namespace]
    try:
        db = prepare_index(None) if prepared is None else prepared
    except sqlite3.Error as exc:
        raise IndexBuildError(f"cannot write the search index {path}: {exc}") from exc
    try:
        meta = {
            "generator_version": generator_version,
            "index_format": str(INDEX_FORMAT),
            "tool_count": str(len(paths)),
        }
        db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        _insert_tools(db, parts, ids, previous, paths, prepared is not None)
        db.executemany(
            "INSERT INTO postings (term, holders, tools, scores) VALUES (?, ?, ?, ?)",
            score(
                merged if merged is not None else merge(parts),
                np.concatenate(ids) if ids else np.zeros(0, np.int64),
                len(paths),
            ),
        )
        db.execute("INSERT INTO tool_groups VALUES (?)", (_bytes(groups),))
        db.commit()
        _vacuum_into(db, path)
    except sqlite3.Error as exc:
        raise IndexBuildError(f"cannot write the search index {path}: {exc}") from exc
    except ValueError as exc:
        raise IndexBuildError(f"cannot write the search index {path}: {exc}") from exc
    finally:
        db.close()


def prepare_index(previous: Path | None) -> sqlite3.Connection:
    """A new index in memory, its tables made, holding every `tools` row of `previous`.

    What `write_index` does first, which a rebuild does while the build renders: its
    tools are mostly those of the last build, with the same ids (`write_index` takes
    out the rest). Without `previous`, or if it cannot be read, `tools` stays empty.

    Raises:
        sqlite3.Error: the database cannot be made.
    """
    db = sqlite3.connect(":memory:")
    db.executescript(_SCHEMA)
    if previous is None or not previous.is_file():  # ATTACH would make the file
        return db
    try:
        db.execute("ATTACH DATABASE ? AS previous", (str(previous),))
    except sqlite3.Error:
        return db
    try:
        db.execute("INSERT INTO main.tools SELECT * FROM previous.tools")
        db.commit()
    except sqlite3.Error:
        db.rollback()
    finally:
        db.execute("DETACH DATABASE previous")
    return db


def _insert_tools(
    db: sqlite3.Connection,
    parts: Sequence[IndexPart],
    ids: Sequence[Any],
    previous: Path | None,
    paths: list[str],
    prepared: bool = False,
) -> None:
    """The `tools` rows: made ones inserted, stored ones copied from `previous` if it has them.

    `paths` are all the import paths, sorted (a tool's id is its place in them, from 1).
    `prepared`: `db` is `prepare_index(previous)`'s, whose `tools` may hold `previous`'s rows.

    Raises:
        ValueError: a stored part's rows are damaged (and `previous` lacks them).
    """
    stored = {i for i, part in enumerate(parts) if not isinstance(part.stored_rows, list)}
    copied = False
    if prepared:
        listed = db.execute("SELECT import_path FROM main.tools ORDER BY id").fetchall()
        if stored and [row[0] for row in listed] == paths:
            _take_out_fresh(db, ids, stored)
            copied = True
        elif listed:
            db.execute("DELETE FROM main.tools")
            db.commit()
    # (Only a file that exists: ATTACH would make one.)
    if stored and previous is not None and not copied and previous.is_file():
        db.execute("ATTACH DATABASE ? AS previous", (str(previous),))
        try:
            copied = _copy_rows(db, parts, ids, stored, paths)
        except sqlite3.Error:
            copied = False
        finally:
            if not copied:
                db.execute("DELETE FROM main.tools")
            db.commit()
            db.execute("DETACH DATABASE previous")
    rows = sorted(
        (rowid, *row)
        for i, (part, part_ids) in enumerate(zip(parts, ids, strict=True))
        if not (copied and i in stored)
        for rowid, row in zip(part_ids.tolist(), part.rows(), strict=True)
    )
    db.executemany("INSERT INTO tools VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _copy_rows(
    db: sqlite3.Connection,
    parts: Sequence[IndexPart],
    ids: Sequence[Any],
    stored: set[int],
    paths: list[str],
) -> bool:
    """Copy the rows of the `stored` parts from the attached `previous` index; whether it
    had them all (else some were copied, which the caller deletes).

    Raises:
        sqlite3.Error: the previous index cannot be read.
    """
    listed = db.execute("SELECT import_path FROM previous.tools ORDER BY id").fetchall()
    if [row[0] for row in listed] == paths:
        # The same tools as last time, so the same ids: every row is copied as it is,
        # then those of the tools made afresh are taken out (they are inserted after).
        db.execute("INSERT INTO main.tools SELECT * FROM previous.tools")
        _take_out_fresh(db, ids, stored)
        return True
    wanted = [
        (import_path, rowid)
        for i in sorted(stored)
        for import_path, rowid in zip(parts[i].paths, ids[i].tolist(), strict=True)
    ]
    db.execute("CREATE TEMP TABLE wanted (import_path TEXT PRIMARY KEY, id INTEGER)")
    db.executemany("INSERT INTO temp.wanted VALUES (?, ?)", wanted)
    done = db.execute(
        "INSERT INTO main.tools SELECT w.id, t.import_path, t.server, t.tool, t.title, "
        "t.summary, t.signature, t.docstring FROM previous.tools AS t "
        "JOIN temp.wanted AS w ON w.import_path = t.import_path"
    )
    db.execute("DROP TABLE temp.wanted")
    return bool(done.rowcount == len(wanted))


def _take_out_fresh(db: sqlite3.Connection, ids: Sequence[Any], stored: set[int]) -> None:
    """Delete the rows of the tools of the parts not `stored` (made afresh, inserted after)."""
    fresh = [
        (rowid,) for i, part_ids in enumerate(ids) if i not in stored for rowid in part_ids.tolist()
    ]
    db.executemany("DELETE FROM main.tools WHERE id = ?", fresh)


def _vacuum_into(db: sqlite3.Connection, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".search_index.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.unlink()  # VACUUM INTO wants a path that does not exist yet
        db.execute("VACUUM INTO ?", (str(tmp),))
        os.replace(tmp, path)
    except OSError as exc:
        raise IndexBuildError(f"cannot write the search index {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
