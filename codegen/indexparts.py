"""The search index in parts, one per server, kept between builds.

Everything the index holds of a server's tools depends on that server alone: the
namespaces inside its tool names, the `context` of each group, each tool's terms
(`codegen.index.indexed_text`). Only the scores depend on the whole catalog (a
term's idf, the fields' average lengths), and those are computed from the parts
at once (`codegen.postings`). So a rebuild in which one tool changed tokenizes one
server, and takes every other server's part from the parts file of the previous
build (`.mcp-codegen/index-parts.bin`), where each is stored under its server's
cache key.

A part holds the rows of the `tools` table, each tool's namespace, and the
server's distinct (tool, term) pairs with the term's frequency in each field and
each field's length, as arrays. The parts file is a cache: a part that cannot be
read is computed again from the server's entries.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .escape import one_line
from .index import FIELDS, SUMMARY_LIMIT, IndexEntry, indexed_text, split_names

__all__ = [
    "PARTS_MAGIC",
    "IndexPart",
    "Row",
    "decode_part",
    "encode_part",
    "part_of",
    "read_parts",
    "write_parts",
]

Row = tuple[str, str, str, str | None, str, str, str]
"""A row of the index's `tools` table without its id: import path, server, tool,
title, summary, signature, docstring."""

IntArray = npt.NDArray[np.integer]

PARTS_MAGIC = b"mcp-codegen index parts 2\n"
_LENGTH = struct.Struct("<Q")


@dataclass(frozen=True)
class IndexPart:
    """What the index holds of one server's tools, in import-path order.

    Attributes:
        server: the server's key in `mcpServers`.
        paths: each tool's import path.
        namespaces: each tool's namespace (`""` if none), which with the server
            makes its group.
        vocab: the server's distinct terms; `pair_term` refers to them by position.
        lengths: the length of each field (rows, in `FIELDS` order) of each tool (columns).
        pair_tool: for each distinct (tool, term) pair, the tool's position in `paths`.
        pair_term: for each pair, the term's position in `vocab`.
        frequencies: how often each pair's term occurs in each field (rows, in
            `FIELDS` order; columns are pairs).
        stored_rows: the tools' rows, as made (a list) or as stored (JSON, parsed by
            `rows()` only when the previous index cannot give them).
    """

    server: str
    paths: list[str]
    namespaces: list[str]
    vocab: list[str]
    lengths: IntArray
    pair_tool: IntArray
    pair_term: IntArray
    frequencies: IntArray
    stored_rows: list[Row] | bytes

    def rows(self) -> list[Row]:
        """Each tool's row of the `tools` table (without its id), in `paths` order.

        Raises:
            ValueError: the stored rows are damaged.
        """
        if isinstance(self.stored_rows, list):
            return self.stored_rows
        try:
            rows: list[Row] = [tuple(row) for row in json.loads(self.stored_rows)]
        except (TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not an index part's rows: {exc}") from None
        if len(rows) != len(self.paths) or any(
            len(row) != 7 or row[0] != path for row, path in zip(rows, self.paths, strict=False)
        ):
            raise ValueError("an index part's rows do not match its tools")
        return rows


def part_of(entries: Sequence[IndexEntry]) -> IndexPart:
    """The part of the entries of one server (in any order).

    Raises:
        ValueError: the entries are of more than one server.
    """
    if len({entry.server for entry in entries}) > 1:
        raise ValueError("an index part holds the entries of one server")
    ordered = sorted(entries, key=lambda entry: entry.import_path)
    split = split_names(ordered)
    texts = indexed_text(ordered, split)
    rows: list[Row] = [
        (
            entry.import_path,
            entry.server,
            entry.tool,
            entry.title,
            one_line(entry.description or entry.title, SUMMARY_LIMIT),
            entry.signature,
            entry.docstring,
        )
        for entry in ordered
    ]
    names = [field.name for field in FIELDS]
    lists = [[text[name] for text in texts] for name in names]  # field -> tool -> terms
    lengths = np.array([[len(terms) for terms in field] for field in lists], dtype=np.int64)
    lengths = lengths.reshape(len(FIELDS), len(ordered))
    vocab = list(dict.fromkeys(chain.from_iterable(chain.from_iterable(lists))))
    ids = {term: number for number, term in enumerate(vocab)}
    size = max(len(vocab), 1)
    keys = []  # per field: tool * size + term, one per occurrence
    for c in range(len(FIELDS)):
        total = int(lengths[c].sum())
        terms = np.fromiter(
            map(ids.__getitem__, chain.from_iterable(lists[c])), dtype=np.int64, count=total
        )
        tools = np.repeat(np.arange(len(ordered), dtype=np.int64), lengths[c])
        keys.append(tools * size + terms)
    pairs = np.unique(np.concatenate(keys)) if keys else np.zeros(0, dtype=np.int64)
    frequencies = np.zeros((len(FIELDS), len(pairs)), dtype=np.int64)
    for c, field_keys in enumerate(keys):
        found, counts = np.unique(field_keys, return_counts=True)
        frequencies[c, np.searchsorted(pairs, found)] = counts
    return IndexPart(
        server=ordered[0].server if ordered else "",
        paths=[entry.import_path for entry in ordered],
        stored_rows=rows,
        namespaces=[namespaced.namespace for namespaced in split],
        vocab=vocab,
        lengths=lengths,
        pair_tool=pairs // size,
        pair_term=pairs % size,
        frequencies=frequencies,
    )


def _narrow(values: IntArray) -> IntArray:
    """`values` in the smallest unsigned little-endian type that holds them."""
    top = int(values.max()) if values.size else 0
    kind = (
        "<u1" if top <= 0xFF else "<u2" if top <= 0xFFFF else "<u4" if top <= 0xFFFFFFFF else "<u8"
    )
    return values.astype(kind)


def encode_part(part: IndexPart) -> bytes:
    """The bytes of `part` in the parts file: a JSON header, its rows' JSON, then its arrays."""
    arrays = [
        _narrow(part.lengths.reshape(-1)),
        _narrow(part.pair_tool),
        _narrow(part.pair_term),
        _narrow(part.frequencies.reshape(-1)),
    ]
    rows = (
        json.dumps(part.stored_rows, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if isinstance(part.stored_rows, list)
        else bytes(part.stored_rows)
    )
    # The terms as lines, not JSON: a split reads them several times faster than a JSON
    # parser, and no term holds a line break (they are words, or two joined by a space).
    joined = "\n".join(part.vocab)
    lines = joined.count("\n") + 1 if part.vocab else 0
    vocab: list[str] | str = joined if lines == len(part.vocab) else part.vocab
    header = json.dumps(
        {
            "server": part.server,
            "paths": part.paths,
            "namespaces": part.namespaces,
            "vocab": vocab,
            "rows": len(rows),
            "arrays": [[array.dtype.str, int(array.size)] for array in arrays],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return b"".join(
        [_LENGTH.pack(len(header)), header, rows, *(array.tobytes() for array in arrays)]
    )


def decode_part(data: bytes | memoryview) -> IndexPart:
    """The part `encode_part` wrote (its rows are parsed when asked: `IndexPart.rows`).

    Raises:
        ValueError: `data` is not a part (damaged, truncated, or of another layout).
    """
    try:
        (size,) = _LENGTH.unpack_from(data, 0)
        start = _LENGTH.size + size
        header = json.loads(bytes(data[_LENGTH.size : start]))
        rows = bytes(data[start : start + header["rows"]])
        start += header["rows"]
        arrays: list[IntArray] = []
        for kind, count in header["arrays"]:
            dtype = np.dtype(kind)
            if dtype.kind != "u":
                raise ValueError(f"unexpected array type {kind}")
            arrays.append(np.frombuffer(data, dtype=dtype, count=count, offset=start))
            start += dtype.itemsize * count
        if start != len(data) or len(arrays) != 4:
            raise ValueError("a part's arrays do not fill it")
        server, paths = str(header["server"]), list(header["paths"])
        namespaces, vocab = list(header["namespaces"]), header["vocab"]
        if isinstance(vocab, str):
            vocab = vocab.split("\n") if vocab else []
        vocab = list(vocab)
        tools = len(paths)
        lengths, pair_tool, pair_term, frequencies = arrays
        pairs = len(pair_tool)
        shapes_ok = (
            lengths.size == len(FIELDS) * tools
            and len(namespaces) == tools
            and len(pair_term) == pairs
            and frequencies.size == len(FIELDS) * pairs
            and (pairs == 0 or (int(pair_tool.max()) < tools and int(pair_term.max()) < len(vocab)))
        )
        if not shapes_ok:
            raise ValueError("a part's arrays do not match its tools")
    except (struct.error, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not an index part: {exc}") from None
    return IndexPart(
        server=server,
        paths=paths,
        namespaces=namespaces,
        vocab=vocab,
        # Narrow and read-only, as stored: `postings` widens them once, all parts together.
        lengths=lengths.reshape(len(FIELDS), tools),
        pair_tool=pair_tool,
        pair_term=pair_term,
        frequencies=frequencies.reshape(len(FIELDS), pairs),
        stored_rows=rows,
    )


def read_parts(path: Path) -> dict[str, memoryview]:
    """The encoded parts of the parts file at `path` by key; empty if it cannot be read."""
    try:
        data = memoryview(path.read_bytes())
    except OSError:
        return {}
    try:
        if bytes(data[: len(PARTS_MAGIC)]) != PARTS_MAGIC:
            return {}
        (size,) = _LENGTH.unpack_from(data, len(PARTS_MAGIC))
        start = len(PARTS_MAGIC) + _LENGTH.size
        table = json.loads(bytes(data[start : start + size]).decode("utf-8"))
        start += size
        parts: dict[str, memoryview] = {}
        for key, length in table:
            if not isinstance(key, str) or not isinstance(length, int) or length < 0:
                return {}
            parts[key] = data[start : start + length]
            start += length
        return parts if start == len(data) else {}
    except (struct.error, ValueError, TypeError, UnicodeDecodeError):
        return {}


def write_parts(path: Path, parts: Mapping[str, bytes | memoryview]) -> None:
    """Write the parts file: `parts` (encoded) by key, in sorted order of keys.

    Raises:
        OSError: the file cannot be written.
    """
    keys = sorted(parts)
    table = json.dumps([[key, len(parts[key])] for key in keys]).encode("utf-8")
    with open(path, "wb") as file:
        file.write(PARTS_MAGIC + _LENGTH.pack(len(table)) + table)
        for key in keys:
            file.write(parts[key])
