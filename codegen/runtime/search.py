"""Offline tool search over the index the build wrote into the package.

Standard library only: it runs inside the sandbox as well as on the host. The
index is one SQLite file (`search_index.sqlite3`). Its text was tokenized by
`tokenize()` below, the single tokenizer both the build (`codegen.index`) and the
query use: identifiers split across camelCase, snake_case, kebab-case and dots,
lower-cased, English stop words dropped, each word reduced by the Porter stemmer.

Ranking is BM25F over a tool's weighted fields (see `codegen.index` for the fields
and the formula). The build stored each term's contribution to each tool's score
(a row of `postings` per term: tool ids and contributions), so a query adds up the
rows of its words and of their adjacent pairs and keeps the best tools.

`lookup()` gives structured hits and how well the best one matches, `search()`
the hits, `search_tools()` the few lines an agent reads, with one line saying so
when nothing matches well.
"""

from __future__ import annotations

import heapq
import inspect
import math
import os
import re
import sqlite3
import sys
import threading
import unicodedata
from array import array
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, pairwise
from pathlib import Path
from typing import Final, Literal

from .errors import McpCodegenError
from .skills import SkillEntry, skill_entries

__all__ = [
    "DETAILS",
    "INDEX_FILENAME",
    "INDEX_FORMAT",
    "SCORE_TYPE",
    "WEAK_MATCH",
    "Found",
    "Hit",
    "SearchError",
    "default_index_path",
    "format_hits",
    "idf_of",
    "index_info",
    "lookup",
    "match_strength",
    "search",
    "search_tools",
    "stem",
    "term_pairs",
    "tokenize",
    "tool_id_type",
]

INDEX_FILENAME = "search_index.sqlite3"
# Bump when the schema, the tokenizer, the stemmer or the scoring changes: an index
# written with another tokenizer would silently match nothing.
INDEX_FORMAT = 4
DETAILS = ("name", "summary", "full")
MAX_LIMIT = 100
MAX_QUERY_TERMS = 48
# The second stage of ranking (`_rank`): how many of the best tools it reorders,
# and the share of its group's best score each one gains.
GROUP_DEPTH = 50
GROUP_BOOST = 0.25
# Below this `match_strength`, `search_tools` says that nothing matches well. Set
# on the dev data's long requests (see bench/results/search.md): 0.1 marks about one
# in ten whose tools are in the catalog, and most short requests that match no tool
# but by a stray common word.
WEAK_MATCH = 0.1
WEAK_LINE = "# nothing matches {query!r} well; the closest tools, probably unrelated:"

# The `array` type code of a posting's contributions (64-bit floats); its tool ids
# are `tool_id_type`'s. Both stored little-endian.
SCORE_TYPE: Final = "d"


class SearchError(McpCodegenError):
    """The search cannot answer: no index, an unreadable or foreign index, a bad query."""


@dataclass(frozen=True)
class Hit:
    """One tool found by `search`, best first.

    Attributes:
        import_path: where the function lives, relative to the package (`servers.git.git_log`).
        server: the server's key in `mcpServers`.
        tool: the MCP tool name.
        title: the tool's human title, if the server gave one.
        summary: the first sentence of the tool's description.
        signature: the function's `async def` line.
        docstring: the function's docstring.
        score: relevance (higher is better); comparable only within one query.
    """

    import_path: str
    server: str
    tool: str
    title: str | None
    summary: str
    signature: str
    docstring: str
    score: float


# ---------------------------------------------------------------- tokenizing

_STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just let me more most my myself no nor not of off on once only
    or other our ours ourselves out over own please same she should so some such than thank
    thanks that the their theirs them themselves then there these they this those through to
    too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _words(text: str) -> list[str]:
    # Fold accents (café -> cafe) but keep scripts without a decomposition as they are.
    if not text.isascii():
        text = "".join(
            char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char)
        )
    # A space at each camelCase boundary (all inside runs of letters and digits), then
    # the runs: the same words as splitting each run, in one pass over the text.
    return [word.lower() for word in _WORD.findall(_CAMEL.sub(" ", text))]


def tokenize(text: str) -> list[str]:
    """The search terms of `text`: identifier parts, lower-cased, stop words out, stemmed.

    `getCurrentTime`, `get_current_time`, `get-current-time` and `get.current.time`
    all give `["get", "current", "time"]`; "Commits history" gives `["commit", "histori"]`.
    """
    return [stem(word) for word in _words(text) if word not in _STOP_WORDS]


# -------------------------------------------------------------- Porter stemmer
# M. F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980: the
# original algorithm, as in his reference implementation.

_STEP2 = (
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"),
    ("izer", "ize"), ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"),
    ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"), ("ator", "ate"),
    ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"),
    ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"), ("logi", "log"),
)  # fmt: skip
_STEP3 = (
    ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"),
    ("ful", ""), ("ness", ""),
)  # fmt: skip
_STEP4 = (
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent",
    "ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize",
)  # fmt: skip


def _is_consonant(word: str, i: int) -> bool:
    char = word[i]
    if char in "aeiou":
        return False
    if char == "y":
        return i == 0 or not _is_consonant(word, i - 1)
    return True


def _measure(stem_: str) -> int:
    # m in [C](VC){m}[V]: the number of vowel-consonant sequences.
    count, previous_vowel = 0, False
    for i in range(len(stem_)):
        consonant = _is_consonant(stem_, i)
        if consonant and previous_vowel:
            count += 1
        previous_vowel = not consonant
    return count


def _has_vowel(stem_: str) -> bool:
    return any(not _is_consonant(stem_, i) for i in range(len(stem_)))


def _double_consonant(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _is_consonant(word, len(word) - 1)


def _cvc(word: str) -> bool:
    # consonant-vowel-consonant, the last not w, x or y (hop, not hoy).
    return (
        len(word) >= 3
        and _is_consonant(word, len(word) - 1)
        and not _is_consonant(word, len(word) - 2)
        and _is_consonant(word, len(word) - 3)
        and word[-1] not in "wxy"
    )


def _replace_longest(word: str, rules: tuple[tuple[str, str], ...], min_measure: int) -> str:
    for suffix, replacement in rules:
        if word.endswith(suffix):
            stem_ = word[: -len(suffix)]
            return stem_ + replacement if _measure(stem_) > min_measure else word
    return word


def _step1(word: str) -> str:
    if word.endswith("sses") or word.endswith("ies"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("eed"):
        return word[:-1] if _measure(word[:-3]) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and _has_vowel(word[: -len(suffix)]):
            word = word[: -len(suffix)]
            if word.endswith(("at", "bl", "iz")):
                return word + "e"
            if _double_consonant(word) and word[-1] not in "lsz":
                return word[:-1]
            if _measure(word) == 1 and _cvc(word):
                return word + "e"
            return word
    return word


def _step5(word: str) -> str:
    if word.endswith("e"):
        stem_ = word[:-1]
        measure = _measure(stem_)
        if measure > 1 or (measure == 1 and not _cvc(stem_)):
            word = stem_
    if word.endswith("ll") and _measure(word) > 1:
        word = word[:-1]
    return word


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Porter stem of a lower-case word (`"histories"` -> `"histori"`); short words stay."""
    if len(word) <= 2 or not word.isascii() or not word.isalpha():
        return word
    word = _step1(word)
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    word = _replace_longest(word, _STEP2, 0)
    word = _replace_longest(word, _STEP3, 0)
    for suffix in _STEP4:
        if word.endswith(suffix):
            stem_ = word[: -len(suffix)]
            if _measure(stem_) > 1 and (suffix != "ion" or stem_.endswith(("s", "t"))):
                word = stem_
            break
    return _step5(word)


# ----------------------------------------------------------------- the index


def default_index_path() -> Path:
    """The index inside the generated package: `<package>/search_index.sqlite3`."""
    return Path(__file__).resolve().parent.parent / INDEX_FILENAME


@dataclass(frozen=True)
class _Index:
    connection: sqlite3.Connection
    meta: dict[str, str]
    tool_count: int
    groups: array[int]  # tool id -> its group (namespace or server), read once


_indexes: dict[tuple[str, int, int], _Index] = {}
_lock = threading.Lock()


def _open(index_path: Path | None) -> _Index:
    path = Path(index_path or default_index_path()).resolve()
    try:
        stat = path.stat()
    except OSError:
        raise SearchError(
            f"no search index at {path}; rebuild the package with `mcp-codegen build`"
        ) from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        index = _indexes.get(key)
        if index is None:
            index = _indexes[key] = _connect(path)
    return index


def _connect(path: Path) -> _Index:
    # immutable=1: no locks, no journal, so a read-only mount works.
    uri = f"{path.as_uri()}?mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        rows = connection.execute("SELECT key, value FROM meta").fetchall()
    except sqlite3.Error as exc:
        raise SearchError(
            f"{path} is not a readable search index ({exc}); "
            "rebuild the package with `mcp-codegen build`"
        ) from None
    meta = {str(key): str(value) for key, value in rows}
    found = meta.get("index_format")
    if found != str(INDEX_FORMAT):
        connection.close()
        raise SearchError(
            f"{path} was written by mcp-codegen {meta.get('generator_version', '?')} "
            f"(index format {found}); this runtime reads index format {INDEX_FORMAT}; "
            "rebuild the package with `mcp-codegen build`"
        )
    count = meta.get("tool_count", "")
    if not count.isdigit():
        connection.close()
        raise SearchError(
            f"{path} is not a readable search index (tool_count {count!r}); "
            "rebuild the package with `mcp-codegen build`"
        )
    try:
        (blob,) = connection.execute("SELECT groups FROM tool_groups").fetchone()
        groups = _tools(blob, int(count))
    except (sqlite3.Error, TypeError, ValueError) as exc:
        connection.close()
        raise SearchError(
            f"{path} is not a readable search index ({exc}); "
            "rebuild the package with `mcp-codegen build`"
        ) from None
    if len(groups) != int(count) + 1:
        connection.close()
        raise SearchError(
            f"{path} is not a readable search index ({len(groups)} groups for {count} tools); "
            "rebuild the package with `mcp-codegen build`"
        )
    return _Index(connection, meta, int(count), groups)


def index_info(index_path: Path | None = None) -> dict[str, str]:
    """What the index says of itself: `generator_version`, `index_format`, `tool_count`.

    Raises:
        SearchError: the index is missing, unreadable or of another format.
    """
    return dict(sorted(_open(index_path).meta.items()))


# ----------------------------------------------------------------- querying


def _query_terms(query: str) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        raise SearchError("empty query: say what the tool should do, e.g. 'create an issue'")
    terms = tokenize(query)
    if not terms:
        # Only stop words ("what is this"): search for them rather than for nothing.
        terms = [stem(word) for word in _words(query)]
    if not terms:
        raise SearchError(
            f"query {_shorten(query)!r} has no words to search for; "
            "use words that describe the tool, e.g. 'list files'"
        )
    return list(dict.fromkeys(terms))[:MAX_QUERY_TERMS]


def term_pairs(terms: list[str]) -> list[str]:
    """The adjacent pairs of `terms`, spelt as the index spells them: `"qr code"`.

    The build indexes the pairs of a tool's name, space and description; a query
    looks up its own, so "qr code" ranks a QR-code tool above one that mentions a
    code and, elsewhere, a QR.
    """
    return [f"{a} {b}" for a, b in pairwise(terms) if a != b]


def _pairs(query: str) -> list[str]:
    return list(dict.fromkeys(term_pairs(tokenize(query))))[:MAX_QUERY_TERMS]


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_id_type(tool_count: int) -> Literal["H", "I"]:
    """The `array` type code of the tool ids of an index of `tool_count` tools.

    16 bits while they fit, which keeps the index of 10,000 tools 1.3 MB smaller.
    """
    return "H" if tool_count <= 0xFFFF else "I"


def _tools(blob: object, tool_count: int) -> array[int]:
    values = array(tool_id_type(tool_count))
    values.frombytes(blob)  # type: ignore[arg-type]  # a damaged index: TypeError, caught
    if sys.byteorder == "big":
        values.byteswap()  # stored little-endian
    return values


def _scores(blob: object) -> array[float]:
    values = array(SCORE_TYPE)
    values.frombytes(blob)  # type: ignore[arg-type]
    if sys.byteorder == "big":
        values.byteswap()
    return values


def idf_of(tool_count: int, holders: int) -> float:
    """The idf of a term `holders` of `tool_count` tools hold: ln(1 + (N - n + 0.5) / (n + 0.5)).

    Always positive (Lucene's form), so a term most tools hold still counts a little.
    """
    return math.log(1.0 + (tool_count - holders + 0.5) / (holders + 0.5))


def _rank(
    index: _Index, terms: list[str], limit: int
) -> tuple[list[tuple[int, float]], dict[str, int]]:
    """`(tool id, score)` of the best `limit` tools for `terms`, best first, and each
    found term's number of holders."""
    marks = ", ".join("?" for _ in terms)
    found = {
        term: (int(holders), tools, scores)
        for term, holders, tools, scores in index.connection.execute(
            f"SELECT term, holders, tools, scores FROM postings WHERE term IN ({marks})", terms
        )
    }
    holders = {term: row[0] for term, row in found.items()}
    if not found:
        return [], holders
    # Add each term's contributions in query order: the floating-point sums, hence
    # the ties and the order, do not depend on the order SQLite returned the rows in.
    totals = [0.0] * (index.tool_count + 1)
    for term in terms:
        if term in found:
            _, tools, scores = found[term]
            for tool, score in zip(_tools(tools, index.tool_count), _scores(scores), strict=True):
                totals[tool] += score
    # Every contribution is positive, so a tool matches when its total is. The
    # depth-th best total is a floor that keeps the few tools worth sorting.
    depth = max(limit, GROUP_DEPTH)
    floor = heapq.nlargest(depth, totals)[-1]
    keep = floor.__le__ if floor > 0.0 else (0.0).__lt__
    best = sorted(
        compress(range(len(totals)), map(keep, totals)), key=lambda tool: (-totals[tool], tool)
    )[:depth]
    # Second stage: a tool gains GROUP_BOOST times the best total of its group (its
    # namespace or server) among these candidates, so the tools of the service the
    # query is about come before a stray match elsewhere.
    groups = index.groups
    leaders: dict[int, float] = {}
    for tool in best:  # best first: the first total seen of a group is its best
        leaders.setdefault(groups[tool], totals[tool])
    fused = {tool: totals[tool] + GROUP_BOOST * leaders[groups[tool]] for tool in best}
    ranked = sorted(best, key=lambda tool: (-fused[tool], tool))[:limit]
    return [(tool, fused[tool]) for tool in ranked], holders


def match_strength(words: list[str], hit: Hit, holders: dict[str, int], tool_count: int) -> float:
    """How much of a query the hit's own text covers, 0..1: idf-weighted share of `words`.

    `words` are the query's terms (no pairs); a term the index has never seen
    weighs as much as the rarest. Only the tool's own name, title, server and
    docstring count, not its group's words nor synonyms, so an unrelated tool that
    shares one common word with the query scores low.
    """
    own = set(tokenize(f"{hit.server} {hit.tool} {hit.title or ''} {hit.docstring}"))
    rarest = idf_of(tool_count, 0)
    weights = {
        term: idf_of(tool_count, holders[term]) if term in holders else rarest for term in words
    }
    total = sum(weights.values())
    return sum(weight for term, weight in weights.items() if term in own) / total if total else 0.0


@dataclass(frozen=True)
class Found:
    """What one query found: the hits, best first, and how well the best one matches.

    Attributes:
        hits: the tools, best first.
        strength: `match_strength` of the first hit (0 when there is none).
    """

    hits: list[Hit]
    strength: float

    @property
    def weak(self) -> bool:
        """Whether even the best hit covers too little of the query to be trusted."""
        return self.strength < WEAK_MATCH


def lookup(query: str, limit: int = 10, *, index_path: Path | None = None) -> Found:
    """The tools that best match `query`, best first, at most `limit`, and the match strength.

    Ranking is BM25F over the fields the build indexed (see `codegen.index`), the
    query's words and their adjacent pairs; ties go to the import path in sorted
    order, so the same index and query always give the same list.

    Raises:
        SearchError: the query is empty or has no words, `limit` is not 1..100, or the
            index is missing, unreadable, damaged or of another format.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    words = _query_terms(query)
    index = _open(index_path)
    try:
        ranked, holders = _rank(index, words + _pairs(query), limit)
        marks = ", ".join("?" for _ in ranked)
        rows = {
            row[0]: row[1:]
            for row in index.connection.execute(
                "SELECT id, import_path, server, tool, title, summary, signature, docstring "
                f"FROM tools WHERE id IN ({marks})",
                [rowid for rowid, _ in ranked],
            )
        }
        hits = []
        for rowid, score in ranked:
            import_path, server, tool, title, summary, signature, docstring = rows[rowid]
            hits.append(
                Hit(
                    import_path, server, tool, title, summary, signature, docstring, round(score, 6)
                )
            )
    except sqlite3.Error as exc:
        raise SearchError(
            f"search failed on query {_shorten(query)!r}: {exc}; "
            "rebuild the package with `mcp-codegen build`"
        ) from None
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise SearchError(
            f"the search index is damaged ({type(exc).__name__}: {exc}); "
            "rebuild the package with `mcp-codegen build`"
        ) from None
    strength = match_strength(words, hits[0], holders, index.tool_count) if hits else 0.0
    return Found(hits, round(strength, 6))


def search(query: str, limit: int = 10, *, index_path: Path | None = None) -> list[Hit]:
    """The tools that best match `query`, best first, at most `limit` of them (see `lookup`).

    Raises:
        SearchError: as `lookup`.
    """
    return lookup(query, limit, index_path=index_path).hits


def format_hits(hits: list[Hit], detail: str = "summary") -> str:
    """The text of `hits` at one level of detail (see `search_tools`).

    Raises:
        SearchError: `detail` is not one of `DETAILS`.
    """
    if detail not in DETAILS:
        raise SearchError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    if detail == "name":
        return "".join(f"{hit.import_path}\n" for hit in hits)
    if detail == "summary":
        return "".join(
            f"{hit.import_path}: {hit.summary}\n" if hit.summary else f"{hit.import_path}\n"
            for hit in hits
        )
    blocks = []
    for hit in hits:
        lines = [f"# {hit.import_path}", f"{hit.signature.rstrip().rstrip(':')}:"]
        doc = inspect.cleandoc(hit.docstring)
        if "\n" in doc:
            body = "\n".join(f"    {line}" if line else "" for line in doc.split("\n"))
            lines.append(f'    """{body.lstrip()}\n    """')
        elif doc:
            lines.append(f'    """{doc}"""')
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


MAX_SKILL_HITS = 3
"""Skills shown before the tools, at most."""


def skill_hits(
    query: str, skills_dir: str | os.PathLike[str] | None = None, limit: int = MAX_SKILL_HITS
) -> list[Hit]:
    """The saved skills that match at least half of the query's terms, best first.

    Skills are the agent's own code for tasks it met before, so one that covers
    the query comes before any tool. Ranked by the share of query terms it covers
    (its name counts double), then by name. `skills_dir` defaults to
    `$MCP_CODEGEN_SKILLS_DIR`, as the sandbox sets it.

    Raises:
        SearchError: the query is empty or has no words.
    """
    terms = _query_terms(query)
    ranked: list[tuple[float, str, SkillEntry]] = []
    for entry in skill_entries(skills_dir):
        named = set(tokenize(entry.name))
        described = named | set(tokenize(f"{entry.summary} {entry.docstring}"))
        covered = [term for term in terms if term in described]
        if len(covered) * 2 < len(terms):
            continue
        score = sum(2.0 if term in named else 1.0 for term in covered) / len(terms)
        ranked.append((-score, entry.name, entry))
    return [
        Hit(
            entry.import_path,
            "skills",
            entry.name,
            None,
            entry.summary,
            entry.signature,
            entry.docstring,
            round(-negative, 6),
        )
        for negative, _, entry in sorted(ranked)[:limit]
    ]


def find(
    query: str,
    limit: int = 10,
    *,
    index_path: Path | None = None,
    skills_dir: str | os.PathLike[str] | None = None,
) -> list[Hit]:
    """The matching saved skills (see `skill_hits`), then the best tools, `limit` in all.

    Raises:
        SearchError: as `search`.
    """
    return _find(query, limit, index_path, skills_dir)[0]


def _find(
    query: str,
    limit: int,
    index_path: Path | None,
    skills_dir: str | os.PathLike[str] | None,
) -> tuple[list[Hit], bool]:
    # The hits, and whether they are weak: no skill matched and the best tool is weak.
    found = lookup(query, limit, index_path=index_path)
    skills = skill_hits(query, skills_dir, min(limit, MAX_SKILL_HITS))
    return skills + found.hits[: limit - len(skills)], not skills and found.weak


def search_tools(
    query: str,
    detail: str = "summary",
    limit: int = 10,
    *,
    index_path: Path | None = None,
    skills_dir: str | os.PathLike[str] | None = None,
) -> str:
    """Find tools (and saved skills) for `query`, as text to print: few lines, best first.

    `detail="name"`: one import path a line (`servers.git.git_log`). `"summary"`: each
    followed by the first sentence of its description. `"full"`: each tool's
    signature and docstring, as its module has them, without the model classes.
    When even the best tool covers little of the query (`Found.weak`), a first line
    says that nothing matches well; the closest tools still follow.

    Raises:
        SearchError: the query, `detail` or `limit` is unusable, or the index is
            missing, unreadable or of another format.
    """
    if detail not in DETAILS:
        raise SearchError(f"detail must be one of {', '.join(DETAILS)}, not {detail!r}")
    hits, weak = _find(query, limit, index_path, skills_dir)
    if not hits:
        return f"no tool matches {_shorten(query)!r}; try other words\n"
    text = format_hits(hits, detail)
    if weak:
        return f"{WEAK_LINE.format(query=_shorten(query))}\n{text}"
    return text
