"""The parts file: every server's index part, stored merged, as the next build starts from.

`.mcp-codegen/index-parts.bin` holds what the last build's index was scored
from (`codegen.postings.Merged`): its parts laid end to end, their terms sorted,
each part's tools and pairs one run after the other. A rebuild reads it as a few
arrays (no per-server decoding, no merging: at 10,000 tools that took the index
process a third of a second), drops the runs of the servers that changed and
appends theirs (`codegen.postings.combine`), and writes the result back whole.

Layout: a magic line, an 8-byte length, a JSON header (each part's key, server,
tool and pair counts and its rows' length; every tool's import path and
namespace, part after part; the terms), each part's `tools` rows as JSON, then
the arrays: each pair's term (its position in the terms), tool (its position
among all tools) and part, each field's length of each tool, each pair's
frequency in each field. The pairs are in the order of the index's postings
(term, then import path), which saves the next build most of its sorting.
The file is a cache: one that cannot be read is as if there were none, and a
part it lacks is made again from the server's index entries.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .index import FIELDS
from .indexparts import IndexPart
from .postings import Merged, merge, sort_order

__all__ = ["STORE_MAGIC", "StoredParts", "read_stored", "write_stored"]

STORE_MAGIC = b"mcp-codegen index parts 3\n"
_LENGTH = struct.Struct("<Q")

IntArray = npt.NDArray[np.integer[Any]]


@dataclass(frozen=True)
class StoredParts:
    """The parts of the parts file, in their stored order, and them merged.

    Attributes:
        keys: each part's cache key (its server's, `codegen.cache.server_key`).
        parts: each part without its terms and arrays (`merged` holds them): its
            server, import paths, namespaces and stored rows.
        merged: the parts laid end to end, as `codegen.postings.merge` lays them.
    """

    keys: list[str]
    parts: list[IndexPart]
    merged: Merged


def empty_stored() -> StoredParts:
    """No parts."""
    return StoredParts([], [], merge([]))


def _narrow(values: IntArray) -> IntArray:
    """`values` in the smallest unsigned little-endian type that holds them."""
    top = int(values.max()) if values.size else 0
    kind = (
        "<u1" if top <= 0xFF else "<u2" if top <= 0xFFFF else "<u4" if top <= 0xFFFFFFFF else "<u8"
    )
    return values.astype(kind, copy=False)


def _rows_bytes(part: IndexPart) -> bytes:
    if isinstance(part.stored_rows, list):
        return json.dumps(part.stored_rows, ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8"
        )
    return bytes(part.stored_rows)


def write_stored(
    path: Path, keys: Sequence[str], parts: Sequence[IndexPart], merged: Merged
) -> None:
    """Write the parts file: `parts` (by cache key `keys`), laid end to end as `merged`.

    Terms that no pair holds any more (those of servers that changed) are left out.

    Raises:
        OSError: the file cannot be written.
    """
    pair_term, terms = merged.pair_term, merged.terms
    holders = np.bincount(pair_term, minlength=len(terms))
    present = holders > 0
    if not present.all():
        pair_term = (np.cumsum(present, dtype=np.int64) - 1)[pair_term]
        terms = [term for term, kept in zip(terms, present.tolist(), strict=True) if kept]
    # The pairs in the order of the index's postings: by term, then by import path (a
    # tool's id). The next build keeps them in that order (dropping a server's keeps
    # the others' in order, and so do the ids of the tools it adds), so its sort is
    # of one sorted run and the few pairs of the servers that changed.
    paths = [import_path for part in parts for import_path in part.paths]
    by_path = np.zeros(len(paths), dtype=np.int64)
    by_path[sorted(range(len(paths)), key=paths.__getitem__)] = np.arange(len(paths))
    order = sort_order(pair_term.astype(np.int64) * (len(paths) + 1) + by_path[merged.pair_tool])
    rows = [_rows_bytes(part) for part in parts]
    # The terms as lines, not JSON: a split reads them several times faster than a JSON
    # parser, and no term holds a line break (they are words, or two joined by a space).
    joined = "\n".join(terms)
    lines = joined.count("\n") + 1 if terms else 0
    arrays = [
        _narrow(pair_term[order]),
        _narrow(merged.pair_tool[order]),
        _narrow(merged.pair_part[order]),
        _narrow(merged.lengths.reshape(-1)),
        _narrow(merged.frequencies[:, order].reshape(-1)),
    ]
    pair_counts = np.bincount(merged.pair_part, minlength=len(parts)).tolist()
    header = json.dumps(
        {
            "parts": [
                [key, part.server, len(part.paths), pairs, len(text)]
                for key, part, pairs, text in zip(keys, parts, pair_counts, rows, strict=True)
            ],
            "paths": paths,
            "namespaces": [namespace for part in parts for namespace in part.namespaces],
            "terms": joined if lines == len(terms) else terms,
            "arrays": [[array.dtype.str, int(array.size)] for array in arrays],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    with open(path, "wb") as file:
        file.write(STORE_MAGIC + _LENGTH.pack(len(header)) + header)
        for text in rows:
            file.write(text)
        for array in arrays:
            file.write(array.tobytes())


def read_stored(path: Path | None) -> StoredParts:
    """The parts of the parts file at `path`; none if it is missing, damaged or of another layout."""
    if path is None:
        return empty_stored()
    try:
        data = path.read_bytes()
    except OSError:
        return empty_stored()
    try:
        return _decode(data)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError):
        return empty_stored()


def _decode(data: bytes) -> StoredParts:
    """The parts `write_stored` wrote in `data`.

    Raises:
        ValueError: (and the others `read_stored` catches) `data` is not such a file.
    """
    if not data.startswith(STORE_MAGIC):
        raise ValueError("not a parts file")
    (size,) = _LENGTH.unpack_from(data, len(STORE_MAGIC))
    start = len(STORE_MAGIC) + _LENGTH.size
    header = json.loads(data[start : start + size])
    start += size
    listed, paths, namespaces = header["parts"], header["paths"], header["namespaces"]
    terms = header["terms"]
    if isinstance(terms, str):
        terms = terms.split("\n") if terms else []
    if not (isinstance(paths, list) and isinstance(namespaces, list) and isinstance(terms, list)):
        raise ValueError("a parts file's header is damaged")
    if any(a >= b for a, b in pairwise(terms)):  # `combine` looks terms up by bisection
        raise ValueError("a parts file's terms are not sorted")
    keys: list[str] = []
    parts: list[IndexPart] = []
    tool_counts: list[int] = []
    pair_counts: list[int] = []
    first = 0
    empty = np.zeros(0, dtype=np.int64)
    for key, server, tools, pairs, length in listed:
        if not all(isinstance(value, int) and value >= 0 for value in (tools, pairs, length)):
            raise ValueError("a part's counts are damaged")
        if not isinstance(key, str) or not isinstance(server, str):
            raise ValueError("a part's key is damaged")
        keys.append(key)
        tool_counts.append(tools)
        pair_counts.append(pairs)
        parts.append(
            IndexPart(
                server=server,
                paths=paths[first : first + tools],
                namespaces=namespaces[first : first + tools],
                vocab=[],
                lengths=np.zeros((len(FIELDS), 0), dtype=np.int64),
                pair_tool=empty,
                pair_term=empty,
                frequencies=np.zeros((len(FIELDS), 0), dtype=np.int64),
                stored_rows=data[start : start + length],
            )
        )
        first += tools
        start += length
    tool_total, pair_total = sum(tool_counts), sum(pair_counts)
    if len(set(keys)) != len(keys) or first != len(paths) or len(namespaces) != len(paths):
        raise ValueError("a parts file's parts do not match its tools")
    arrays: list[IntArray] = []
    for kind, count in header["arrays"]:
        dtype = np.dtype(kind)
        if dtype.kind != "u":
            raise ValueError(f"unexpected array type {kind}")
        arrays.append(np.frombuffer(data, dtype=dtype, count=count, offset=start))
        start += dtype.itemsize * count
    if start != len(data) or len(arrays) != 5:
        raise ValueError("a parts file's arrays do not fill it")
    pair_term, pair_tool, pair_part, lengths, frequencies = arrays
    tool_part = np.repeat(np.arange(len(parts), dtype=np.int32), tool_counts)
    if not (
        len(pair_term) == pair_total
        and len(pair_tool) == pair_total
        and len(pair_part) == pair_total
        and lengths.size == len(FIELDS) * tool_total
        and frequencies.size == len(FIELDS) * pair_total
    ):
        raise ValueError("a parts file's arrays do not match its parts")
    if pair_total and (
        int(pair_term.max()) >= len(terms)
        or int(pair_tool.max()) >= tool_total
        or int(pair_part.max()) >= len(parts)
        or np.bincount(pair_part, minlength=len(parts)).tolist() != pair_counts
    ):
        raise ValueError("a parts file's pairs point past its terms, tools or parts")
    # Each pair's tool is one of its own part's: `combine` drops a part's tools and
    # pairs together, by part.
    if pair_total and not np.array_equal(tool_part[pair_tool], pair_part):
        raise ValueError("a parts file's pairs point to another part's tools")
    merged = Merged(
        terms=terms,
        pair_term=pair_term.astype(np.int32),
        pair_tool=pair_tool.astype(np.int32),
        pair_part=pair_part.astype(np.int32),
        tool_part=tool_part,
        lengths=lengths.reshape(len(FIELDS), tool_total).astype(np.int64),
        frequencies=frequencies.reshape(len(FIELDS), pair_total),
    )
    return StoredParts(keys, parts, merged)
