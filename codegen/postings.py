"""BM25F scores of every (term, tool) pair of the index, from its parts, with numpy.

The scores depend on the whole catalog (each term's idf, each field's average
length), so any change to any tool changes nearly all of them: at 10,000 tools,
some 730,000 of them. Computed pair by pair in Python that took over a second;
here it is a few array operations over the parts' pairs (`codegen.indexparts`),
laid end to end (`merge`). A rebuild merges the previous build's parts while the
rest of the build runs, then only swaps in the servers that changed (`combine`).

Every float operation is the one the formula in `codegen.index` spells, in the
same order, so the bytes are those a plain loop gives: a term's weighted
frequency adds each field's share once per occurrence, field after field (not
`tf * share`, which can round differently); the idf comes from `math.log`
through `idf_of`; the score is `idf * f * (K1 + 1) / (f + K1)`, left to right.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, compress, pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from .index import FIELDS, K1
from .indexparts import IndexPart
from .runtime.search import idf_of, tool_id_type

__all__ = ["Merged", "Posting", "combine", "merge", "postings", "score", "sort_order"]

Posting = tuple[str, int, bytes, bytes]
"""A row of `postings`: term, number of tools holding it, their ids, their scores."""

Ints = npt.NDArray[np.integer[Any]]


@dataclass(frozen=True)
class Merged:
    """Parts laid end to end: their tools one after the other, their pairs likewise.

    Attributes:
        terms: every term of the parts, sorted.
        pair_term: each pair's term, as its position in `terms`.
        pair_tool: each pair's tool, as its position among all the parts' tools.
        pair_part: each pair's part, by position.
        tool_part: each tool's part, by position.
        lengths: each field's length (rows) of each tool (columns).
        frequencies: each pair's term frequency in each field (rows).
    """

    terms: list[str]
    pair_term: Ints
    pair_tool: Ints
    pair_part: Ints
    tool_part: Ints
    lengths: Ints
    frequencies: Ints


def merge(parts: Sequence[IndexPart]) -> Merged:
    """`parts` laid end to end."""
    if not parts:
        empty = np.zeros(0, dtype=np.int32)
        return Merged(
            [],
            empty,
            empty,
            empty,
            empty,
            np.zeros((len(FIELDS), 0), dtype=np.int64),
            np.zeros((len(FIELDS), 0), dtype=np.uint8),
        )
    terms = sorted(set().union(*(part.vocab for part in parts)))
    rank = {term: number for number, term in enumerate(terms)}
    vocab = list(chain.from_iterable(part.vocab for part in parts))
    ranks = np.fromiter(map(rank.__getitem__, vocab), np.int32, len(vocab))
    pair_counts = [len(part.pair_term) for part in parts]
    tool_counts = [len(part.paths) for part in parts]
    vocab_starts = np.cumsum([0] + [len(part.vocab) for part in parts[:-1]], dtype=np.int32)
    tool_starts = np.cumsum([0, *tool_counts[:-1]], dtype=np.int32)
    numbers = np.arange(len(parts), dtype=np.int32)

    def joined(arrays: list[npt.NDArray[np.integer]], axis: int = 0, wide: bool = True) -> Ints:
        # Positions in 32 bits, frequencies as narrow as stored (a byte, mostly): the
        # arrays are copied when servers are swapped in, and there are 730,000 pairs.
        together = np.concatenate(arrays, axis=axis)
        return together.astype(np.int32) if wide else together

    return Merged(
        terms=terms,
        pair_term=ranks[
            joined([part.pair_term for part in parts]) + np.repeat(vocab_starts, pair_counts)
        ],
        pair_tool=joined([part.pair_tool for part in parts]) + np.repeat(tool_starts, pair_counts),
        pair_part=np.repeat(numbers, pair_counts),
        tool_part=np.repeat(numbers, tool_counts),
        lengths=joined([part.lengths for part in parts], axis=1).astype(np.int64),
        frequencies=joined([part.frequencies for part in parts], axis=1, wide=False),
    )


def combine(base: Merged, keep: Sequence[bool], extra: Merged) -> Merged:
    """The parts of `base` that `keep` says, then all of `extra`'s, end to end.

    A term of `base` that only the dropped parts held stays in `terms`, with no
    pair: `score` leaves it out.
    """
    base_terms = base.terms
    # By bisection in the sorted terms, not a dict of them: a rebuild adds a few
    # hundred terms to some 50,000, and a dict of those would cost more than the rest.
    found = [bisect.bisect_left(base_terms, term) for term in extra.terms]
    added = sorted(
        term
        for term, at in zip(extra.terms, found, strict=True)
        if at == len(base_terms) or base_terms[at] != term
    )
    if added:
        terms = list(heapq.merge(base_terms, added))  # two sorted runs
        # A base term moves up by the number of added terms before it.
        shift = np.zeros(len(base_terms) + 1, dtype=np.int32)
        np.add.at(shift, [bisect.bisect_left(base_terms, term) for term in added], 1)
        base_map = (
            np.arange(len(base_terms), dtype=np.int32) + np.cumsum(shift, dtype=np.int32)[:-1]
        )
        extra_map = np.fromiter(
            (bisect.bisect_left(terms, term) for term in extra.terms), np.int32, len(extra.terms)
        )
    else:
        terms, base_map = base_terms, None
        extra_map = np.array(found, dtype=np.int32)
    kept = np.array(list(keep), dtype=bool)
    pairs: Any = kept[base.pair_part] if len(base.pair_part) else np.zeros(0, dtype=bool)
    tools: Any = kept[base.tool_part] if len(base.tool_part) else np.zeros(0, dtype=bool)
    # Frequencies stay as narrow as stored (a byte): widened, the 7 x 730,000 of
    # them would be copied eight times over.
    top = int(extra.frequencies.max()) if extra.frequencies.size else 0
    wide = np.promote_types(base.frequencies.dtype, np.min_scalar_type(top))
    frequencies = [base.frequencies[:, pairs], extra.frequencies.astype(wide, copy=False)]
    position = np.cumsum(tools, dtype=np.int32) - 1  # a kept tool's new position
    kept_tools = int(tools.sum())
    parts_kept = int(kept.sum())
    part_position = np.cumsum(kept, dtype=np.int32) - 1
    return Merged(
        terms=terms,
        pair_term=np.concatenate(
            [
                base.pair_term[pairs] if base_map is None else base_map[base.pair_term[pairs]],
                extra_map[extra.pair_term],
            ]
        ),
        pair_tool=np.concatenate([position[base.pair_tool[pairs]], extra.pair_tool + kept_tools]),
        pair_part=np.concatenate(
            [part_position[base.pair_part[pairs]], extra.pair_part + parts_kept]
        ),
        tool_part=np.concatenate(
            [part_position[base.tool_part[tools]], extra.tool_part + parts_kept]
        ),
        lengths=np.concatenate([base.lengths[:, tools], extra.lengths], axis=1),
        frequencies=np.concatenate(frequencies, axis=1),
    )


def sort_order(keys: Ints) -> Ints:
    """The order that sorts `keys` (distinct): `np.argsort`, with the sort that suits them.

    A rebuild's keys are mostly one sorted run (see `codegen.indexstore`), which a
    merge sort finds and takes whole: ten times faster than quicksort there, which
    is the faster on keys in no order (a first build's).
    """
    descents = np.count_nonzero(keys[1:] < keys[:-1]) if len(keys) > 1 else 0
    return np.argsort(keys, kind="stable" if descents * 100 < len(keys) else "quicksort")


def postings(parts: Sequence[IndexPart], ids: Sequence[Ints], count: int) -> list[Posting]:
    """The rows of `postings`, sorted by term, for `count` tools in `parts`.

    `ids[i]` holds the tool id (1 to `count`) of each tool of `parts[i]`, in its order.
    """
    return score(merge(parts), np.concatenate(ids) if ids else np.zeros(0, np.int64), count)


def score(merged: Merged, tool_ids: Ints, count: int) -> list[Posting]:
    """The rows of `postings`, sorted by term, for the `count` tools of `merged`.

    `tool_ids` holds each tool's id (1 to `count`), in `merged`'s order of tools.
    """
    pair_tool = tool_ids[merged.pair_tool]
    frequency = np.zeros(len(pair_tool), dtype=np.float64)
    for c, field in enumerate(FIELDS):
        lengths = np.zeros(count + 1, dtype=np.int64)
        lengths[tool_ids] = merged.lengths[c]
        average = (int(lengths.sum()) / count if count else 0.0) or 1.0
        # As the scalar formula: weight / (1 - b + b * length / average).
        share = field.weight / ((1.0 - field.b) + (field.b * lengths) / average)
        occurrences = merged.frequencies[c]
        where = np.flatnonzero(occurrences)
        left = occurrences[where]
        added = share[pair_tool[where]]
        while where.size:  # one addition per occurrence, as the scalar loop adds
            frequency[where] += added
            more = left > 1
            where, added, left = where[more], added[more], left[more] - 1
    terms, pair_term = merged.terms, merged.pair_term
    holders = np.bincount(pair_term, minlength=len(terms))
    present = holders > 0
    if not present.all():  # terms only servers that changed held
        pair_term = (np.cumsum(present, dtype=np.int32) - 1)[pair_term]
        terms = list(compress(terms, present.tolist()))
        holders = holders[present]
    if not terms:
        return []
    kinds, which = np.unique(holders, return_inverse=True)
    idf = np.array([idf_of(count, int(n)) for n in kinds], dtype=np.float64)[which]
    scores = idf[pair_term] * frequency * (K1 + 1.0) / (frequency + K1)
    # Sorted by term, then tool: one key, in 32 bits while it fits (sorting them is 3x faster).
    key = pair_term.astype(np.int64) * (count + 1) + pair_tool
    if len(terms) * (count + 1) < 2**31:
        key = key.astype(np.int32)
    order = sort_order(key)
    tool_type = "<" + tool_id_type(count)
    tool_bytes = pair_tool[order].astype(tool_type).tobytes()
    score_bytes = scores[order].astype("<f8").tobytes()
    bounds = np.concatenate([[0], np.cumsum(holders)])
    tool_bounds = (bounds * np.dtype(tool_type).itemsize).tolist()
    score_bounds = (bounds * 8).tolist()
    return list(
        zip(
            terms,
            holders.tolist(),
            [tool_bytes[a:b] for a, b in pairwise(tool_bounds)],
            [score_bytes[a:b] for a, b in pairwise(score_bounds)],
            strict=True,
        )
    )
