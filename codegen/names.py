"""Turning MCP names into Python names: one function, and clash resolution.

MCP tool names follow `^[A-Za-z0-9._-]{1,128}$` (SEP-986) in principle; servers in
the wild also send spaces, unicode, leading digits, and names that collide with
keywords, builtins or the runtime's own names. `python_identifier` handles all of
them; `assign_unique` makes the results unique deterministically and reports
what it changed. The MCP name itself is kept and is what a call sends.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NewType

__all__ = [
    "MCP_NAME_PATTERN",
    "RESERVED",
    "PythonIdentifier",
    "Renamed",
    "assign_unique",
    "pascal_case",
    "python_identifier",
]

PythonIdentifier = NewType("PythonIdentifier", str)

MCP_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Names a generated module or server package defines or imports itself; a tool
# function or module of the same name would shadow them.
RESERVED = frozenset(
    {
        "annotations",
        "call_tool",
        "call_tool_structured",
        "lazy_tools",
        "servers",
        "search_tools",
        "TYPE_CHECKING",
        "ToolResult",
        # pydantic BaseModel attributes, which field and parameter names must avoid
        "model_config",
        "model_fields",
        "model_dump",
        "model_validate",
        "model_construct",
        "model_copy",
        "schema",
        "json",
        "dict",
        "copy",
    }
)
_AVOID = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def _ascii_words(name: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    spaced = _CAMEL_BOUNDARY.sub(" ", folded)
    return [word for word in _NOT_WORD.split(spaced) if word]


def python_identifier(name: str, *, fallback: str = "tool") -> PythonIdentifier:
    """A snake_case identifier for an MCP name, safe as a module, function or package name.

    `getCurrentTime` -> `get_current_time`, `git.log` -> `git_log`, `3d-render` ->
    `n3d_render`, `class` -> `class_`, `print` -> `print_`, `天気` -> `tool`.
    """
    words = [word.lower() for word in _ascii_words(name)]
    ident = "_".join(words) or fallback
    if ident[0].isdigit():
        ident = "n" + ident
    if ident in _AVOID or ident in RESERVED or ident.startswith("model_"):
        ident += "_"
    return PythonIdentifier(ident)


def pascal_case(ident: str) -> str:
    """`get_current_time` -> `GetCurrentTime`, for model class names."""
    return "".join(word[:1].upper() + word[1:] for word in ident.split("_") if word) or "Tool"


@dataclass(frozen=True)
class Renamed:
    """A name that had to change beyond plain conversion, to stay unique."""

    original: str
    wanted: str
    given: str


def assign_unique(
    names: Iterable[str], *, fallback: str = "tool"
) -> tuple[dict[str, PythonIdentifier], list[Renamed]]:
    """Give each MCP name a distinct identifier; clashing names get `_2`, `_3`.

    A name that already is its identifier keeps it; the others follow in sorted
    order. Returns the mapping (in sorted order) and the names that were
    suffixed, so the caller can warn.
    """
    unique = sorted(set(names))
    exact = [name for name in unique if python_identifier(name, fallback=fallback) == name]
    taken: set[str] = set()
    mapping: dict[str, PythonIdentifier] = {}
    renamed: list[Renamed] = []
    for original in exact + [name for name in unique if name not in set(exact)]:
        wanted = python_identifier(original, fallback=fallback)
        given, counter = str(wanted), 2
        while given in taken:
            given = f"{wanted.rstrip('_')}_{counter}"
            counter += 1
        taken.add(given)
        mapping[original] = PythonIdentifier(given)
        if given != wanted:
            renamed.append(Renamed(original, wanted, given))
    return {name: mapping[name] for name in unique}, sorted(renamed, key=lambda item: item.original)
