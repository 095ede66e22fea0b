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
import os
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from . import __version__
from .index import IndexEntry

__all__ = [
    "CACHE_PATH",
    "BuildCache",
    "CachedFile",
    "CachedTool",
    "Stamp",
    "build_state",
    "file_key",
    "generator_fingerprint",
    "sha256_file",
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


def tool_key(package: str, server: str, server_ident: str, ident: str, tool_digest: str) -> str:
    """The cache key of one tool module (`tool_digest`: its `ToolSnapshot.digest()`)."""
    parts = [generator_fingerprint(), package, server, server_ident, ident, tool_digest]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class CachedFile:
    """A file of the previous build, still as it was written."""

    source: Path
    sha256: str


@dataclass(frozen=True)
class CachedTool:
    """A module reused from the previous build: where it is, its SHA-256, its index entry."""

    source: Path
    sha256: str
    entry: IndexEntry


Stamp = tuple[int, int, int]
"""What `os.stat` says of a file: size, modification time (ns), inode."""


def _stamp(path: str) -> Stamp | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns, found.st_ino


def sha256_file(path: str) -> str:
    """The SHA-256 of the file at `path`.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


class BuildCache:
    """The previous build's cache, read from `out`, and the new one being recorded.

    The manifest records each file's SHA-256 and its stamp (size, mtime, inode).
    A file whose stamp is unchanged is taken to hold the recorded bytes without
    being read, as make and ninja do: a write changes the mtime, a replacement
    the inode (a stamp can match a changed file only if the change kept the size
    and came within the clock's tick of the build writing it, or reset the
    mtime on purpose). A changed stamp means the file is read and hashed, so a
    touched but unchanged file is still reused. (Not ctime: hard-linking an
    unchanged module into the next build changes it.)
    """

    def __init__(self, out: Path | None):
        self.out = out
        self._previous: dict[str, dict[str, Any]] = {}
        self._recorded: dict[str, dict[str, Any]] = {}
        self._state: str | None = None
        self._manifest: dict[str, list[Any]] = {}
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

    @property
    def state(self) -> str | None:
        """The state the previous output was built in (`build_state`), if it is known."""
        return self._state

    def _unchanged(self, name: str, sha256: str | None = None) -> bool:
        """Whether `out/name` still holds what the manifest recorded (and is `sha256`, if given)."""
        assert self.out is not None
        entry = self._manifest.get(name)
        if not isinstance(entry, list) or len(entry) != 4:
            return False
        recorded, *stamp = entry
        if sha256 is not None and recorded != sha256:
            return False
        path = os.path.join(self.out, name)
        if _stamp(path) == tuple(stamp):
            return True
        try:
            return bool(sha256_file(path) == recorded)
        except OSError:
            return False

    def up_to_date(self, state: str) -> bool:
        """Whether the output was built in `state` and every file is still as written."""
        if self.out is None or state != self._state or not self._manifest:
            return False
        names = _files(str(self.out))
        if names != set(self._manifest):
            return False
        return all(self._unchanged(name) for name in names)

    def lookup_file(self, key: str, path: PurePosixPath) -> CachedFile | None:
        """The previous file for `key` at `path`, if it is still on disk unchanged."""
        record = self._previous.get(key)
        name = str(path)
        if self.out is None or record is None or record.get("path") != name:
            return None
        sha256 = record.get("sha256")
        if not isinstance(sha256, str) or not self._unchanged(name, sha256):
            return None
        return CachedFile(Path(os.path.join(self.out, name)), sha256)

    def lookup(self, key: str, path: PurePosixPath) -> CachedTool | None:
        """The previous tool module for `key` at `path`, with its index entry, if unchanged."""
        found = self.lookup_file(key, path)
        record = self._previous.get(key)
        if found is None or record is None:
            return None
        try:
            fields = dict(record["entry"])
            fields["parameters"] = tuple(tuple(pair) for pair in fields["parameters"])
            return CachedTool(found.source, found.sha256, IndexEntry(**fields))
        except (KeyError, TypeError):
            return None

    def record(
        self, key: str, path: PurePosixPath, sha256: str, entry: IndexEntry | None = None
    ) -> None:
        """Remember the file at `path` (its final SHA-256, a module's entry) for the next build."""
        record: dict[str, Any] = {"path": path.as_posix(), "sha256": sha256}
        if entry is not None:
            # Shallow: its fields are strings and tuples, which JSON writes as they are.
            record["entry"] = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
        self._recorded[key] = record

    def save(self, root: Path, state: str, hashes: dict[str, str] | None = None) -> None:
        """Write what was recorded under `root` (the staged output, complete), built in `state`.

        `hashes` holds the SHA-256 of files the caller knows already, by relative path.
        """
        path = root / CACHE_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        # The folder ignores itself, so a committed package never commits its cache.
        (path.parent / ".gitignore").write_text("*\n", encoding="utf-8")
        document = {
            "generator": generator_fingerprint(),
            "state": state,
            "manifest": _manifest(str(root), hashes or {}),
            "tools": dict(sorted(self._recorded.items())),
        }
        path.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")


_ENTRY_FIELDS = tuple(field.name for field in fields(IndexEntry))


def build_state(snapshot_digest: str, *options: str | None) -> str:
    """The key of a whole build: generator, snapshot and package options."""
    parts = [generator_fingerprint(), snapshot_digest, *(option or "" for option in options)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _files(root: str) -> set[str]:
    """Every file under `root` but the cache and bytecode, by relative POSIX path."""
    found: set[str] = set()
    skip = {CACHE_PATH.parts[0], "__pycache__"}
    for folder, directories, names in os.walk(root):
        directories[:] = [name for name in directories if name not in skip]
        relative = os.path.relpath(folder, root)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        found.update(prefix + name for name in names)
    return found


def _manifest(root: str, hashes: dict[str, str]) -> dict[str, list[Any]]:
    """SHA-256 and stamp of every file under `root` but the cache and bytecode."""
    manifest: dict[str, list[Any]] = {}
    for name in sorted(_files(root)):
        path = os.path.join(root, name)
        sha256 = hashes.get(name) or sha256_file(path)
        stamp = _stamp(path)
        manifest[name] = [sha256, *(stamp or (-1, -1, -1))]
    return manifest
