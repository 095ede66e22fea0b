"""The build's last stage: the search index written into the generated package.

One SQLite file (`search_index.sqlite3`) that `_runtime/search.py` queries offline.
Each tool is a row of `tools` (what a hit prints). Its text is split into the
weighted columns of `COLUMNS`, tokenized by the runtime's own `tokenize`, so build
and query can never split words differently.

Ranking is BM25 with per-column weights, computed exactly as SQLite FTS5's `bm25()`
does (`fts5_aux.c`). Everything in it but the choice of query terms is fixed once
the corpus is: a term's idf, a tool's weighted term frequency and its length. So
the build computes each term's contribution to each tool's score and stores, per
term, one row of `postings`: the ids of the tools holding it and those
contributions. A query then only adds up the rows of its terms, in query order,
which gives `bm25()`'s scores bit for bit, without scoring every matching row.

The file is byte-identical for identical input: entries are sorted, nothing
depends on time or place, and the database is built in memory and written out
with `VACUUM INTO`, which lays pages out afresh.
"""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import tempfile
from array import array
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .escape import one_line
from .names import assign_unique
from .runtime.search import (
    COLUMNS,
    INDEX_FILENAME,
    INDEX_FORMAT,
    SCORE_TYPE,
    tokenize,
    tool_id_type,
)
from .snapshot import Snapshot

__all__ = [
    "INDEX_FILENAME",
    "INDEX_FORMAT",
    "IndexBuildError",
    "IndexEntry",
    "build_index",
    "entries_from_snapshot",
    "parameters_from_schema",
    "tool_columns",
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


def _terms(*texts: str | None) -> str:
    return " ".join(" ".join(tokenize(text)) for text in texts if text)


# Words a tool's text and an agent's query often use for one another. A tool whose
# name or description holds one word of a group is also found by the others, with
# the weight of the `related` column. General software and web-API vocabulary only.
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


def _related(terms: str) -> str:
    own = set(terms.split())
    found = (other for term in own for other in _RELATED.get(term, ()) if other not in own)
    return " ".join(sorted(set(found)))


def _server_context(entries: Sequence[IndexEntry]) -> dict[str, str]:
    # What a server is about: each distinct term of its tools' names and descriptions,
    # once (presence, not frequency, so a server with many tools does not drown the rest).
    texts: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        texts[entry.server] += [entry.tool, entry.title or "", entry.description]
    return {
        server: " ".join(dict.fromkeys(tokenize(" ".join(parts))))
        for server, parts in texts.items()
    }


def _columns(entry: IndexEntry, context: str) -> dict[str, str]:
    parameter_text = " ".join(f"{name} {description}" for name, description in entry.parameters)
    name = _terms(entry.tool, entry.title)
    description = _terms(entry.description)
    return {
        "name": name,
        "server": _terms(entry.server),
        "description": description,
        "params": _terms(parameter_text),
        "context": context,
        "related": _related(f"{name} {description}"),
    }


def tool_columns(entries: Sequence[IndexEntry]) -> list[dict[str, str]]:
    """The indexed text of each of `entries`, in their order: column name -> its terms.

    The columns are those of `COLUMNS`, in that order, each a space-separated
    string of `tokenize` terms. `context` depends on the other tools of the entry's
    server, so pass all the entries of an index at once.
    """
    contexts = _server_context(entries)
    return [_columns(entry, contexts[entry.server]) for entry in entries]


# The constants of FTS5's bm25() (`fts5_aux.c`), whose scores the index reproduces.
K1 = 1.2
B = 0.75


def _postings(columns: Sequence[dict[str, str]]) -> list[tuple[str, bytes, bytes]]:
    """`(term, tool ids, contributions)` of each term, sorted by term; tool `i` is `columns[i-1]`.

    The contribution of term t to tool d is bm25()'s summand, evaluated with the
    same operations in the same order, so a query's sum is bm25()'s score exactly:
    idf(t) * (f * (k1 + 1)) / (f + k1 * (1 - b + b * |d| / avgdl)), f the sum of the
    column weights of t's occurrences in d, |d| d's number of terms, and
    idf(t) = ln((N - n + 0.5) / (n + 0.5)) (1e-6 where that is not positive), n the
    number of tools holding t.
    """
    weights = dict(COLUMNS)
    frequencies: list[dict[str, float]] = []
    lengths: list[int] = []
    holders: Counter[str] = Counter()
    for texts in columns:
        frequency: dict[str, float] = {}
        length = 0
        for name, text in texts.items():
            weight = weights[name]
            terms = text.split()
            length += len(terms)
            for term in terms:
                frequency[term] = frequency.get(term, 0.0) + weight
        frequencies.append(frequency)
        lengths.append(length)
        holders.update(frequency.keys())
    count = len(columns)
    idf = {}
    for term, holding in holders.items():
        value = math.log((count - holding + 0.5) / (holding + 0.5))
        idf[term] = value if value > 0.0 else 1e-6
    total = sum(lengths)
    average = total / count if total else 1.0  # no term at all: no posting uses it
    id_type = tool_id_type(count)
    tools: dict[str, array[int]] = defaultdict(lambda: array(id_type))
    scores: dict[str, array[float]] = defaultdict(lambda: array(SCORE_TYPE))
    for tool, (frequency, length) in enumerate(zip(frequencies, lengths, strict=True), start=1):
        norm = K1 * (1 - B + B * length / average)
        for term, weighted in frequency.items():
            tools[term].append(tool)
            scores[term].append(idf[term] * ((weighted * (K1 + 1.0)) / (weighted + norm)))
    return [(term, _bytes(tools[term]), _bytes(scores[term])) for term in sorted(tools)]


def _bytes(values: array[int] | array[float]) -> bytes:
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
-- A rowid table: its rows stay inline up to a page, where WITHOUT ROWID rows overflow
-- past a quarter of one (2 MB more at 10,000 tools).
CREATE TABLE postings (
    id INTEGER PRIMARY KEY,
    term TEXT NOT NULL UNIQUE,
    tools BLOB NOT NULL,
    scores BLOB NOT NULL
);
"""


def build_index(entries: Sequence[IndexEntry], path: Path, *, generator_version: str) -> None:
    """Write the search index of `entries` to `path` (replacing it atomically).

    Raises:
        IndexBuildError: two entries share an import path, or the file cannot be written.
    """
    ordered = sorted(entries, key=lambda entry: entry.import_path)
    paths = [entry.import_path for entry in ordered]
    duplicates = sorted({p for i, p in enumerate(paths) if i and paths[i - 1] == p})
    if duplicates:
        raise IndexBuildError(
            f"import paths listed twice in the search index: {', '.join(duplicates)}"
        )
    postings = _postings(tool_columns(ordered))

    db = sqlite3.connect(":memory:")
    try:
        db.executescript(_SCHEMA)
        meta = {
            "generator_version": generator_version,
            "index_format": str(INDEX_FORMAT),
            "tool_count": str(len(ordered)),
        }
        db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        db.executemany(
            "INSERT INTO tools VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    rowid,
                    entry.import_path,
                    entry.server,
                    entry.tool,
                    entry.title,
                    one_line(entry.description or entry.title, SUMMARY_LIMIT),
                    entry.signature,
                    entry.docstring,
                )
                for rowid, entry in enumerate(ordered, start=1)
            ),
        )
        db.executemany("INSERT INTO postings (term, tools, scores) VALUES (?, ?, ?)", postings)
        db.commit()
        _vacuum_into(db, path)
    except sqlite3.Error as exc:
        raise IndexBuildError(f"cannot write the search index {path}: {exc}") from exc
    finally:
        db.close()


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
