"""BM25F scores of every (term, tool) pair of the index, from its parts, with numpy.

The scores depend on the whole catalog (each term's idf, each field's average
length), so any change to any tool changes nearly all of them: at 10,000 tools,
some 730,000 of them. Computed pair by pair in Python that took over a second;
here it is a few array operations over the parts' pairs (`codegen.indexparts`).

Every float operation is the one the formula in `codegen.index` spells, in the
same order, so the bytes are those a plain loop gives: a term's weighted
frequency adds each field's share once per occurrence, field after field (not
`tf * share`, which can round differently); the idf comes from `math.log`
through `idf_of`; the score is `idf * f * (K1 + 1) / (f + K1)`, left to right.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, pairwise

import numpy as np
import numpy.typing as npt

from .index import FIELDS, K1
from .indexparts import IndexPart
from .runtime.search import idf_of, tool_id_type

__all__ = ["Posting", "postings"]

Posting = tuple[str, int, bytes, bytes]
"""A row of `postings`: term, number of tools holding it, their ids, their scores."""


def postings(
    parts: Sequence[IndexPart], ids: Sequence[npt.NDArray[np.int64]], count: int
) -> list[Posting]:
    """The rows of `postings`, sorted by term, for `count` tools in `parts`.

    `ids[i]` holds the tool id (1 to `count`) of each tool of `parts[i]`, in its order.
    """
    terms = sorted(set().union(*(part.vocab for part in parts)))
    if not terms:
        return []
    rank = {term: number for number, term in enumerate(terms)}
    # The parts' arrays end to end: one operation each, not one per server.
    vocab = list(chain.from_iterable(part.vocab for part in parts))
    ranks = np.fromiter(map(rank.__getitem__, vocab), np.int64, len(vocab))
    pair_counts = [len(part.pair_term) for part in parts]
    vocab_starts = np.cumsum([0] + [len(part.vocab) for part in parts[:-1]])
    tool_starts = np.cumsum([0] + [len(part.paths) for part in parts[:-1]])
    pair_term = ranks[
        np.concatenate([part.pair_term for part in parts]) + np.repeat(vocab_starts, pair_counts)
    ]
    tool_ids = np.concatenate(ids)
    pair_tool = tool_ids[
        np.concatenate([part.pair_tool for part in parts]) + np.repeat(tool_starts, pair_counts)
    ]
    all_lengths = np.concatenate([part.lengths for part in parts], axis=1)
    all_frequencies = np.concatenate([part.frequencies for part in parts], axis=1)
    frequency = np.zeros(len(pair_term), dtype=np.float64)
    for c, field in enumerate(FIELDS):
        lengths = np.zeros(count + 1, dtype=np.int64)
        lengths[tool_ids] = all_lengths[c]
        average = (int(lengths.sum()) / count if count else 0.0) or 1.0
        # As the scalar formula: weight / (1 - b + b * length / average).
        share = field.weight / ((1.0 - field.b) + (field.b * lengths) / average)
        occurrences = all_frequencies[c]
        where = np.flatnonzero(occurrences)
        left = occurrences[where]
        added = share[pair_tool[where]]
        while where.size:  # one addition per occurrence, as the scalar loop adds
            frequency[where] += added
            more = left > 1
            where, added, left = where[more], added[more], left[more] - 1
    holders = np.bincount(pair_term, minlength=len(terms))
    kinds, which = np.unique(holders, return_inverse=True)
    idf = np.array([idf_of(count, int(n)) for n in kinds], dtype=np.float64)[which]
    scores = idf[pair_term] * frequency * (K1 + 1.0) / (frequency + K1)
    # Sorted by term, then tool: one key, in 32 bits while it fits (sorting them is 3x faster).
    key = pair_term * (count + 1) + pair_tool
    if len(terms) * (count + 1) < 2**31:
        key = key.astype(np.int32)
    order = np.argsort(key)
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
