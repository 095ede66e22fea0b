"""The search index in parts, one per server, kept between builds.

Everything the index holds of a server's tools depends on that server alone: the
namespaces inside its tool names, the `context` of each group, each tool's terms
(`codegen.index.indexed_text`). Only the scores depend on the whole catalog (a
term's idf, the fields' average lengths), and those are computed from the parts
at once (`codegen.postings`). So a rebuild in which one tool changed tokenizes one
server, and takes every other server's part from the parts file of the previous
build (`.mcp-codegen/index-parts.bin`, `codegen.indexstore`), where each is
stored under its server's cache key.

A part holds the rows of the `tools` table, each tool's namespace, and the
server's distinct (tool, term) pairs with the term's frequency in each field and
each field's length, as arrays. The parts file is a cache: a part that cannot be
read is computed again from the server's entries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import numpy.typing as npt

from .escape import one_line
from .index import FIELDS, SUMMARY_LIMIT, IndexEntry, indexed_text, split_names

__all__ = ["IndexPart", "Row", "part_of"]

Row = tuple[str, str, str, str | None, str, str, str]
"""A row of the index's `tools` table without its id: import path, server, tool,
title, summary, signature, docstring."""

IntArray = npt.NDArray[np.integer]


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
