"""Turning MCP names into Python names: one function, and clash resolution.

MCP tool names follow `^[A-Za-z0-9._-]{1,128}$` (SEP-986) in principle; servers in
the wild also send spaces, unicode, leading digits, and names that collide with
keywords, builtins or the runtime's own names. `python_identifier` handles all of
them; `assign_unique` makes the results unique deterministically and reports
what it changed. The MCP name itself is kept and is what a call sends.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import re
import sys
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
    "check_package_name",
    "pascal_case",
    "python_identifier",
]

PythonIdentifier = NewType("PythonIdentifier", str)

MCP_NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

# Names a generated module or server package defines or imports itself; a tool
# function or module of the same name would shadow them (`resources` and `prompts`
# are modules of every server package that has them).
RESERVED = frozenset(
    {
        "annotations",
        "call_tool",
        "call_tool_structured",
        "lazy_tools",
        "prompts",
        "resources",
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
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def _camel_words(chunk: str, *, prose: bool) -> list[str]:
    """Split one run of letters and digits into words, keeping acronyms whole.

    `getHTTPResponse` -> get HTTP Response, `APIFor` -> API For; an acronym
    followed by one lowercase letter keeps it (`APIs`, `URLs`, `IPv6`). In names
    written as words (`prose`, with spaces), a one-letter lowercase prefix stays
    with its word (`oDesk`, `iPhone`); in identifiers `xAxis` is x Axis.
    """
    words: list[str] = []
    i, size = 0, len(chunk)
    while i < size:
        start = i
        while i < size and chunk[i].isupper():
            i += 1
        if i - start > 1:
            if i < size and chunk[i].islower():
                if i + 1 < size and chunk[i + 1].islower():
                    i -= 1  # `APIFor`: the last capital starts the next word
                else:
                    i += 1  # `APIs`, `IPv6`: a plural or a version letter
            while i < size and chunk[i].isdigit():
                i += 1
        else:
            while i < size and (chunk[i].islower() or chunk[i].isdigit()):
                i += 1
            if prose and start == 0 and i == 1 and i < size and chunk[i].isupper():
                rest = _camel_words(chunk[i:], prose=False)
                return [chunk[0] + rest[0], *rest[1:]]
        words.append(chunk[start:i])
    return words


def _ascii_words(name: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    prose = any(char.isspace() for char in folded.strip())
    return [
        word
        for chunk in _NOT_WORD.split(folded)
        if chunk
        for word in _camel_words(chunk, prose=prose)
    ]


def python_identifier(name: str, *, fallback: str = "tool") -> PythonIdentifier:
    """A snake_case identifier for an MCP name, safe as a module, function or package name.

    `getCurrentTime` -> `get_current_time`, `git.log` -> `git_log`, `3d-render` ->
    `n3d_render`, `class` -> `class_`, `print` -> `print_`, `天気` -> `tool`;
    acronyms stay whole: `listAPIs` -> `list_apis`, `oDesk APIs` -> `odesk_apis`.
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


_RUNTIME_DEPENDENCIES = ("pydantic", "mcp")
"""What a generated package depends on: pydantic, and the `mcp` SDK of its `[direct]` extra."""

_SANDBOX_TOP_LEVEL = frozenset({"servers", "skills", "codegen"})
"""Top-level packages agent code imports inside the sandbox, and mcp-codegen's own."""


@functools.cache
def _imported_by_runtime() -> frozenset[str]:
    """The top-level modules of the runtime's dependencies and of theirs (installed here).

    A package of the same name installed beside them would shadow one of them. The
    sandbox mounts the same distributions, so it knows how to list them.
    """
    from .sandbox.bundle import distribution_paths
    from .sandbox.errors import SandboxError

    names = {"pydantic", "pydantic_core", "mcp", "mcp_types", "typing_extensions"}
    try:
        paths = distribution_paths(_RUNTIME_DEPENDENCIES)
    except SandboxError:  # not installed here: the names above still hold
        paths = []
    names |= {path.name.removesuffix(".py") for path in paths}
    return frozenset(name for name in names if name.isidentifier() and not name.startswith("_"))


def check_package_name(name: str) -> str | None:
    """What is wrong with `name` as the import name of a generated package, or None.

    It must be an ASCII identifier not starting with `_`, not a keyword, and must
    not shadow a module the package or its runtime imports: the standard library,
    pydantic, the `mcp` SDK and their dependencies, or `servers`/`skills`, which
    code in the sandbox imports.
    """
    if not name.isascii() or not name.isidentifier() or name.startswith("_"):
        return f"{name!r} is not a Python package name (ASCII letters, digits and _, not first)"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a Python keyword; try {name}_tools"
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        return f"{name!r} would shadow the standard library's {name!r}; try {name}_tools"
    if name in _SANDBOX_TOP_LEVEL:
        return f"{name!r} is a package mcp-codegen itself provides; try mcp_{name}"
    if name in _imported_by_runtime():
        return (
            f"{name!r} would shadow the module {name!r} that the generated package imports; "
            f"try {name}_tools"
        )
    return None
