"""The build cache: a tool whose definition and generator are unchanged is not rendered again.

It lives beside the package it describes, at `<out>/.mcp-codegen/build-cache.json`
(outside the import package, so it is not installed). For each tool it records a
key, the module's path and the SHA-256 of its final bytes, and the tool's index
entry. A tool is reused only when its key matches and the file on disk still has
those bytes; anything else is rendered afresh, so the cache can make a build
faster but never different.

The key covers everything a module's bytes depend on: the generator (templates,
the rendering code, datamodel-code-generator's and ruff's versions), the package
name, the server and function names given, and the tool's definition.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from . import __version__
from .index import IndexEntry
from .snapshot import ToolSnapshot

__all__ = [
    "CACHE_PATH",
    "BuildCache",
    "CachedFile",
    "CachedTool",
    "build_state",
    "file_key",
    "generator_fingerprint",
    "tool_key",
]

CACHE_PATH = PurePosixPath(".mcp-codegen/build-cache.json")
_HERE = Path(__file__).resolve().parent


@functools.cache
def generator_fingerprint() -> str:
    """A hash of everything that shapes a tool module, other than the tool itself."""
    digest = hashlib.sha256(__version__.encode())
    for package in ("datamodel-code-generator", "ruff", "pydantic"):
        digest.update(f"{package}={metadata.version(package)}".encode())
    templates = _HERE / "templates"
    if not templates.is_dir():
        templates = _HERE.parent / "templates"
    # All of the compiler and the runtime it copies: any change to them rebuilds everything,
    # which is slower than needed but never wrong.
    sources = [
        *sorted(_HERE.glob("*.py")),
        *sorted((_HERE / "runtime").glob("*.py")),
        *sorted(templates.glob("*.jinja")),
    ]
    for path in sources:
        digest.update(path.relative_to(_HERE.parent).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def file_key(*parts: str) -> str:
    """The cache key of a generated file that depends on `parts` and the generator."""
    return hashlib.sha256("\0".join([generator_fingerprint(), *parts]).encode()).hexdigest()


def tool_key(package: str, server: str, server_ident: str, ident: str, tool: ToolSnapshot) -> str:
    """The cache key of one tool module."""
    parts = [generator_fingerprint(), package, server, server_ident, ident, tool.digest()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class CachedFile:
    """A file of the previous build, still as it was written."""

    source: Path
    content: bytes


@dataclass(frozen=True)
class CachedTool:
    """A module reused from the previous build: where it is, its final bytes, its index entry."""

    source: Path
    content: bytes
    entry: IndexEntry


class BuildCache:
    """The previous build's cache, read from `out`, and the new one being recorded."""

    def __init__(self, out: Path | None):
        self.out = out
        self._previous: dict[str, dict[str, Any]] = {}
        self._recorded: dict[str, dict[str, Any]] = {}
        self._state: str | None = None
        self._manifest: dict[str, str] = {}
        self.written: frozenset[str] | None = None
        """Every file of the previous build by relative path (whatever generator wrote it),
        or None without a readable cache: what a rebuild may replace."""
        if out is not None:
            self._load(out / CACHE_PATH)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        manifest = data.get("manifest") if isinstance(data, dict) else None
        if isinstance(manifest, dict) and manifest:
            self.written = frozenset(manifest)
        if not isinstance(data, dict) or data.get("generator") != generator_fingerprint():
            return
        tools, manifest = data.get("tools"), data.get("manifest")
        self._previous = tools if isinstance(tools, dict) else {}
        self._manifest = manifest if isinstance(manifest, dict) else {}
        self._state = data.get("state") if isinstance(data.get("state"), str) else None

    def up_to_date(self, state: str) -> bool:
        """Whether the output was built in `state` and every file is still as written."""
        if self.out is None or state != self._state or not self._manifest:
            return False
        return _manifest(self.out) == self._manifest

    def lookup_file(self, key: str, path: PurePosixPath) -> CachedFile | None:
        """The previous file for `key` at `path`, if it is still on disk unchanged."""
        record = self._previous.get(key)
        if self.out is None or record is None or record.get("path") != path.as_posix():
            return None
        try:
            content = (self.out / path).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(content).hexdigest() != record.get("sha256"):
            return None
        return CachedFile(self.out / path, content)

    def lookup(self, key: str, path: PurePosixPath) -> CachedTool | None:
        """The previous tool module for `key` at `path`, with its index entry, if unchanged."""
        found = self.lookup_file(key, path)
        record = self._previous.get(key)
        if found is None or record is None:
            return None
        try:
            fields = dict(record["entry"])
            fields["parameters"] = tuple(tuple(pair) for pair in fields["parameters"])
            return CachedTool(found.source, found.content, IndexEntry(**fields))
        except (KeyError, TypeError):
            return None

    def record(
        self, key: str, path: PurePosixPath, content: bytes, entry: IndexEntry | None = None
    ) -> None:
        """Remember the final bytes of the file at `path` (and a module's entry) for the next build."""
        record: dict[str, Any] = {
            "path": path.as_posix(),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
        if entry is not None:
            record["entry"] = asdict(entry)
        self._recorded[key] = record

    def save(self, root: Path, state: str, known: dict[str, bytes] | None = None) -> None:
        """Write what was recorded under `root` (the staged output, complete), built in `state`.

        `known` holds files whose bytes the caller already has, by relative path.
        """
        path = root / CACHE_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        # The folder ignores itself, so a committed package never commits its cache.
        (path.parent / ".gitignore").write_text("*\n", encoding="utf-8")
        document = {
            "generator": generator_fingerprint(),
            "state": state,
            "manifest": _manifest(root, known or {}),
            "tools": dict(sorted(self._recorded.items())),
        }
        path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")


def build_state(snapshot_digest: str, *options: str | None) -> str:
    """The key of a whole build: generator, snapshot and package options."""
    parts = [generator_fingerprint(), snapshot_digest, *(option or "" for option in options)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _manifest(root: Path, known: dict[str, bytes] | None = None) -> dict[str, str]:
    """SHA-256 of every file under `root` but the cache and bytecode, by relative path."""
    found: dict[str, str] = {}
    known = known or {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if (
            relative.parts[0] == CACHE_PATH.parts[0]
            or "__pycache__" in relative.parts
            or not path.is_file()
        ):
            continue
        name = relative.as_posix()
        content = known[name] if name in known else path.read_bytes()
        found[name] = hashlib.sha256(content).hexdigest()
    return dict(sorted(found.items()))
