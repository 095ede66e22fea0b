"""Namespaces inside one server's tool names: the API a gateway folded into each name.

Gateways and aggregators (Docker MCP Gateway, ContextForge, Composio, Zapier,
Pipedream) expose thousands of tools through one server and name them
`<api>__<tool>`, `<api>.<tool>`, `<api>_<verb>_<object>` or title them
`"<API>: <what it does>"`. The API is then the level that tells tools apart, as
the server does when each API is a server of its own. `namespaces()` recovers it
from the names alone, so the search index (`codegen.index`) and the server's
docstring (`codegen.render`) can treat it like a server.

A prefix counts as a namespace when

- the name says so with a separator no tool name uses inside a word: the part
  before the first `__`, or before the first `.`, or the title's part before
  `": "`, `" - "`, `" | "` (one tool is enough);
- or, for names split by `_`, `-` or camelCase, it is made of the words before the
  name's first action word (`kick_com_api_get_channel_clips` -> `kick_com_api`;
  `get_channel_clips` has none), it is shared by at least two tools of the server,
  and not by all of them (a prefix every tool has says nothing the server's name
  does not). The shortest such prefix wins, so `crm_batch_create_contacts` and
  `crm_search_leads` share `crm`, grown by the words all its tools share next
  (`kick_com_api`, not `kick`).

Deterministic: the result depends only on the set of names and titles given.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ACTION_WORDS", "LISTED_TOOLS", "Namespaced", "listing", "namespaces"]

# Verbs that begin the action part of a tool name. General API vocabulary, not
# taken from any benchmark: the words OpenAPI operation ids and MCP tool names
# start with.
ACTION_WORDS = frozenset(
    """add analyze append apply approve archive assign attach authenticate batch block book
    calculate call cancel check clear click clone close compare compute connect convert copy
    count create decode delete describe detect disable download duplicate edit enable encode
    estimate execute export extract fetch fill find follow format generate get grant hover
    import insert install invite invoke join kill launch like list load lock login logout
    lookup mark merge modify move navigate notify open parse patch pause ping post predict
    preview print publish pull push put query read refresh register reject reload remove rename
    render reply report request reset resolve restart restore resume retrieve revoke run save
    scan schedule scrape search select send set share show sign start stop submit subscribe
    summarize sync take test toggle track transfer translate trigger type unblock unfollow
    unlock unsubscribe update upload upsert validate verify view watch write""".split()  # noqa: SIM905
)

_TITLE_SEPARATORS = (": ", " - ", " | ", " — ")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
MAX_PREFIX_WORDS = 4


@dataclass(frozen=True)
class Namespaced:
    """A tool name split into its namespace and the rest.

    Attributes:
        namespace: the namespace, as the name spells it (`kick_com_api`), or `""`.
        local: the name without the namespace and its separator (`get_channel_clips`);
            the whole name when there is no namespace.
        title: the title without a namespace prefix, or the title as given.
    """

    namespace: str
    local: str
    title: str | None


def _words(name: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return [word for word in _NOT_WORD.split(_CAMEL.sub(" ", folded)) if word]


def _explicit(name: str, title: str | None) -> Namespaced | None:
    for separator in ("__", "."):
        head, found, tail = name.strip(separator).partition(separator)
        if found and head.strip("_.-") and tail.strip("_.-"):
            return Namespaced(head, tail.strip("_.-"), title)
    if title:
        for separator in _TITLE_SEPARATORS:
            head, found, tail = title.partition(separator)
            if found and head.strip() and tail.strip() and len(_words(head)) <= MAX_PREFIX_WORDS:
                return Namespaced(head.strip(), name, tail.strip())
    return None


def _candidates(name: str) -> list[tuple[str, ...]]:
    # Word prefixes that may be a namespace: before the first action word, and
    # leaving at least one word for the action itself.
    words = [word.lower() for word in _words(name)]
    stop = next((i for i, word in enumerate(words) if word in ACTION_WORDS), len(words) - 1)
    return [tuple(words[:size]) for size in range(1, min(stop, MAX_PREFIX_WORDS) + 1)]


def _remainder(name: str, prefix: tuple[str, ...]) -> str:
    # The name after its first len(prefix) words, as the name spells it.
    rest = name
    for _ in prefix:
        match = re.search(r"[A-Za-z0-9]+", rest)
        if match is None:
            return name
        word = _words(match.group())[0] if _CAMEL.search(match.group()) else match.group()
        rest = rest[match.start() + len(word) :]
    return rest.lstrip("_-. ") or name


def namespaces(tools: Sequence[tuple[str, str | None]]) -> list[Namespaced]:
    """The namespace of each of one server's tools, given as `(name, title)`, in their order.

    See the module's docstring for what counts as a namespace.
    """
    found: list[Namespaced | None] = [_explicit(name, title) for name, title in tools]
    candidates = [
        _candidates(name) if hit is None else []
        for (name, _), hit in zip(tools, found, strict=True)
    ]
    shared = Counter(prefix for prefixes in candidates for prefix in set(prefixes))
    everyone = len(tools)
    result = []
    for (name, title), hit, prefixes in zip(tools, found, candidates, strict=True):
        if hit is not None:
            result.append(hit)
            continue
        chosen = next((p for p in prefixes if 2 <= shared[p] < everyone), None)
        # Grow it while no tool drops out: `kick_com_api`, not `kick`.
        for longer in prefixes:
            if (
                chosen is not None
                and len(longer) > len(chosen)
                and shared[longer] == shared[chosen]
            ):
                chosen = longer
        if chosen is None:
            result.append(Namespaced("", name, title))
        else:
            result.append(Namespaced("_".join(chosen), _remainder(name, chosen), title))
    return result


# A server docstring lists each tool on a line up to this many tools; past it, one
# line per namespace (a gateway's 3,000 tools become a few hundred lines at most).
LISTED_TOOLS = 100
_EXAMPLES_WIDTH = 88


def listing(tools: Sequence[tuple[str, str, str | None, str]]) -> list[str]:
    """The lines of a server docstring that list its tools, given `(ident, name, title, summary)`.

    Up to `LISTED_TOOLS` tools: one line each, `ident  summary`. More: one line per
    namespace (`kick_com_api  10 tools: get_channel_clips, get_chat, ...`), then the
    tools without one, one line each while the list stays within `LISTED_TOOLS`
    lines, and a last line saying how many are left for `search_tools` to find.
    """
    if len(tools) <= LISTED_TOOLS:
        width = max((len(ident) for ident, _, _, _ in tools), default=0)
        return [f"{ident:<{width}}  {summary}".rstrip() for ident, _, _, summary in tools]
    found = namespaces([(name, title) for _, name, title, _ in tools])
    grouped: dict[str, list[str]] = {}
    loose: list[tuple[str, str]] = []
    for (ident, _, _, summary), namespaced in zip(tools, found, strict=True):
        if namespaced.namespace:
            grouped.setdefault(namespaced.namespace, []).append(ident)
        else:
            loose.append((ident, summary))
    lines = []
    if grouped:
        lines.append(f"{len(grouped)} namespaces (a prefix of the tool names):")
        width = max(len(namespace) for namespace in grouped)
        for namespace in sorted(grouped):
            idents = grouped[namespace]
            count = f"{len(idents)} tool" + ("" if len(idents) == 1 else "s")
            line = f"{namespace:<{width}}  {count}: " + ", ".join(idents)
            if len(line) > _EXAMPLES_WIDTH:
                line = line[: _EXAMPLES_WIDTH - 4].rsplit(", ", 1)[0] + ", ..."
            lines.append(line)
    shown = loose[: max(0, LISTED_TOOLS - len(lines))]
    if shown:
        lines += ["", f"{len(loose)} tools without a namespace:"] if grouped else []
        width = max(len(ident) for ident, _ in shown)
        lines += [f"{ident:<{width}}  {summary}".rstrip() for ident, summary in shown]
    if len(shown) < len(loose):
        lines += [
            "",
            f"... and {len(loose) - len(shown)} more; find them with search_tools(query).",
        ]
    return lines
