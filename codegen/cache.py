"""The build cache: what is unchanged since the last build is not rendered, written or read again.

It lives beside the package it describes, in `<out>/.mcp-codegen/` (outside the
import package, so it is not installed), as `build-cache.jsonl`: a header line
(generator, build state, the files outside the servers' directories, each
server's digest), then one line per server. A server's line holds its cache key,
its files, what the build needs to reuse the whole server without looking at its
tools (its part of the READMEs and docstrings, its warnings), and each of its
tool modules by key with the module's index entry. Lines of unchanged servers are
read without parsing their tools and written back as they were, so a rebuild
costs what changed, not what the catalog holds.

Every file is recorded with its SHA-256 and a stamp (size, mtime, inode). A
module or a server is reused only when its key matches and its files on disk
still hold those bytes; anything else is rendered afresh, so the cache can make a
build faster but never different.

The keys cover everything a file's bytes depend on: the generator (templates,
the rendering code, datamodel-code-generator's and ruff's versions), the package
name, the server and function names given, and the server's or tool's definition.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from . import __version__
from .index import IndexEntry

__all__ = [
    "CACHE_DIR",
    "CACHE_PATH",
    "DISPOSABLE",
    "INDEX_PARTS_PATH",
    "PENDING_PATH",
    "BuildCache",
    "CachedFile",
    "CachedTool",
    "FileEntry",
    "ServerRecord",
    "Stamp",
    "build_state",
    "cache_header",
    "file_key",
    "generated_files",
    "generator_fingerprint",
    "output_files",
    "server_key",
    "server_line",
    "sha256_file",
    "stamp_of",
    "tool_key",
]

CACHE_DIR = ".mcp-codegen"
CACHE_PATH = PurePosixPath(CACHE_DIR, "build-cache.jsonl")
PENDING_PATH = PurePosixPath(CACHE_DIR, "build-cache.pending.jsonl")
"""The cache of a build whose files were being moved into place (see `codegen.commit`)."""
INDEX_PARTS_PATH = PurePosixPath(CACHE_DIR, "index-parts.bin")
"""Each server's share of the search index (`codegen.indexparts`)."""
_LEGACY_PATH = PurePosixPath(CACHE_DIR, "build-cache.json")
"""The cache of earlier versions: read only for the files it lists."""
CACHE_FORMAT = 2

DISPOSABLE = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})
"""Caches tools leave in a package; they are not part of it, and replacing them loses nothing."""

_HERE = Path(__file__).resolve().parent


@functools.cache
def generator_fingerprint() -> str:
    """A hash of everything that shapes a tool module, other than the tool itself."""
    digest = hashlib.sha256(__version__.encode())
    for package in ("datamodel-code-generator", "ruff", "pydantic", "numpy"):
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


def server_key(package: str, server: str, server_ident: str, content_digest: str) -> str:
    """The cache key of a whole server: its directory, docstrings and index part.

    `content_digest` is its `Snapshot.server_content_digest()`: every file of the
    server's directory depends only on that, its name, the package's, and the generator.
    """
    parts = [generator_fingerprint(), "server", package, server, server_ident, content_digest]
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

FileEntry = list[Any]
"""A file as the cache records it: `[sha256, size, mtime_ns, inode]`."""


def stamp_of(path: str) -> Stamp | None:
    """The stamp of the file at `path`, or None if it cannot be stat'ed."""
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


class ServerRecord:
    """One server as the previous build left it (a line of the cache)."""

    def __init__(
        self,
        name: str,
        key: str,
        files: dict[str, FileEntry],
        reuse: dict[str, Any] | None,
        tools_text: bytes,
        line: bytes,
    ):
        self.name = name
        self.key = key
        """The server's cache key (`server_key`) in the build that wrote the line."""
        self.files = files
        """Every file of the server's directory, by path relative to the output."""
        self.reuse = reuse
        """What reusing the whole server takes (its view, warnings, tool count), or None
        when it cannot be reused whole (a tool of it failed)."""
        self.tools_text = tools_text
        self.line = line
        """The line as read: written back as it is while nothing in it changed."""
        self.refreshed = False
        """A file's stamp changed but not its bytes: the line must be written anew."""

    @functools.cached_property
    def tools(self) -> dict[str, dict[str, Any]]:
        """The server's keyed files (tool modules with their index entries, its
        `__init__.py`), by key; parsed when first asked."""
        try:
            tools = json.loads(self.tools_text)
        except ValueError:
            return {}
        return tools if isinstance(tools, dict) else {}

    def entries(self) -> list[IndexEntry] | None:
        """The index entries of the server's tool modules, or None if one is unreadable."""
        entries = []
        for record in self.tools.values():
            if "entry" in record:
                entry = _entry(record["entry"])
                if entry is None:
                    return None
                entries.append(entry)
        return entries


def _entry(fields: Any) -> IndexEntry | None:
    try:
        values = dict(fields)
        values["parameters"] = tuple(tuple(pair) for pair in values["parameters"])
        return IndexEntry(**values)
    except (KeyError, TypeError, ValueError):
        return None


def _file_entry(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 4 and isinstance(value[0], str)


class BuildCache:
    """The previous build's cache, read from `out`.

    A file whose stamp (size, mtime, inode) is unchanged is taken to hold the
    recorded bytes without being read, as make and ninja do: a write changes the
    mtime, a replacement the inode (a stamp can match a changed file only if the
    change kept the size and came within the clock's tick of the build writing
    it, or reset the mtime on purpose). A changed stamp means the file is read and
    hashed, so a touched but unchanged file is still reused. (Not ctime: hard-linking
    an unchanged module into the next build changes it.)
    """

    def __init__(self, out: Path | None):
        self.out = out
        self.servers: dict[str, ServerRecord] = {}
        """Each server of the previous build, by name."""
        self.top: dict[str, FileEntry] = {}
        """The previous build's files outside the servers' directories, by relative path."""
        self.header: dict[str, Any] = {}
        self.written: frozenset[str] | None = None
        """Every file of the previous build by relative path (whatever generator wrote it),
        or None without a readable cache: what a rebuild may replace."""
        self._state: str | None = None
        if out is not None:
            self._load(out)

    def _load(self, out: Path) -> None:
        written: set[str] = set()
        for listing in (_LEGACY_PATH, PENDING_PATH):  # files an older or an interrupted build wrote
            written |= _listed(out / listing)
        try:
            # Bytes: the tools of unchanged servers are never decoded, only written back.
            data = (out / CACHE_PATH).read_bytes()
        except OSError:
            self.written = frozenset(written) or None
            return
        lines = data.split(b"\n")
        try:
            header = json.loads(lines[0])
            top = header["files"]
            servers = {}
            for line in lines[1:]:
                if not line:
                    continue
                name, key, files, reuse, tools_text = line.split(b"\t", 4)
                record = ServerRecord(
                    json.loads(name),
                    key.decode("ascii"),
                    json.loads(files),
                    json.loads(reuse),
                    tools_text,
                    line,
                )
                servers[record.name] = record
            listed = [top, *(record.files for record in servers.values())]
            if not all(
                isinstance(files, dict) and all(map(_file_entry, files.values()))
                for files in listed
            ):
                raise ValueError("a file entry is not [sha256, size, mtime, inode]")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            self.written = frozenset(written) or None
            return
        for files in listed:
            written.update(files)
        self.written = frozenset(written) or None
        if (
            header.get("format") != CACHE_FORMAT
            or header.get("generator") != generator_fingerprint()
        ):
            return  # its files may be replaced, but nothing in it is reused
        self.header = header
        self.top = top
        self.servers = servers
        self._state = header.get("state") if isinstance(header.get("state"), str) else None

    @property
    def state(self) -> str | None:
        """The state the previous output was built in (`build_state`), if it is known."""
        return self._state

    def check(self, name: str, entry: FileEntry, sha256: str | None = None) -> bool:
        """Whether `out/name` still holds what `entry` records (and is `sha256`, if given).

        A file whose stamp changed but whose bytes did not gets its new stamp in `entry`.
        """
        assert self.out is not None
        if sha256 is not None and entry[0] != sha256:
            return False
        path = os.path.join(self.out, name)
        stamp = stamp_of(path)
        if stamp is None:
            return False
        if list(stamp) == entry[1:]:
            return True
        try:
            same: bool = sha256_file(path) == entry[0]
        except OSError:
            return False
        if same:
            entry[1:] = stamp
        return same

    def server_unchanged(self, record: ServerRecord) -> bool:
        """Whether every file of `record`'s directory is still on disk as written."""
        assert self.out is not None
        root = str(self.out)
        for name, entry in record.files.items():
            try:  # the common case inline: thousands of files, one stat each
                found = os.stat(f"{root}/{name}")
            except OSError:
                return False
            if (
                found.st_size == entry[1]
                and found.st_mtime_ns == entry[2]
                and found.st_ino == entry[3]
            ):
                continue
            if not self.check(name, entry):
                return False
            record.refreshed = True
        return True

    def up_to_date(self, state: str) -> bool:
        """Whether the output was built in `state` and every file is still as written."""
        if self.out is None or state != self._state or not self.top:
            return False
        manifest = dict(self.top)
        for record in self.servers.values():
            manifest.update(record.files)
        if generated_files(str(self.out)) != manifest.keys():
            return False
        return all(self.check(name, entry) for name, entry in manifest.items())

    def lookup_file(
        self, record: ServerRecord | None, key: str, path: PurePosixPath
    ) -> CachedFile | None:
        """The previous file for `key` at `path` among `record`'s, if still on disk unchanged."""
        if self.out is None or record is None:
            return None
        found = record.tools.get(key)
        name = str(path)
        if not isinstance(found, dict) or found.get("path") != name:
            return None
        sha256, entry = found.get("sha256"), record.files.get(name)
        if not isinstance(sha256, str) or entry is None or not self.check(name, entry, sha256):
            return None
        return CachedFile(Path(os.path.join(self.out, name)), sha256)

    def lookup(
        self, record: ServerRecord | None, key: str, path: PurePosixPath
    ) -> CachedTool | None:
        """The previous tool module for `key` at `path`, with its index entry, if unchanged."""
        found = self.lookup_file(record, key, path)
        if found is None or record is None:
            return None
        entry = _entry(record.tools[key].get("entry"))
        return None if entry is None else CachedTool(found.source, found.sha256, entry)

    def snapshot_digests(self, snapshot_file: str) -> dict[str, str] | None:
        """Each server's content digest in the previous snapshot, if its file is unchanged."""
        digests = self.header.get("digests")
        entry = self.top.get(snapshot_file)
        if not isinstance(digests, dict) or entry is None or not self.check(snapshot_file, entry):
            return None
        return digests

    def server_idents(self, names: list[str]) -> dict[str, Any] | None:
        """The server names given last time (`names`: every server, sorted), if the same."""
        idents = self.header.get("idents")
        if not isinstance(idents, dict) or idents.get("names") != _names_digest(names):
            return None
        return idents


def _listed(path: Path) -> set[str]:
    """The files a cache file at `path` lists (of any format), or none."""
    try:
        data = path.read_bytes()
    except OSError:
        return set()
    found: set[str] = set()
    try:
        if path.suffix == ".json":  # the format before 2: one JSON document with a manifest
            manifest = json.loads(data).get("manifest")
            return set(manifest) if isinstance(manifest, dict) else set()
        lines = data.split(b"\n")
        found.update(json.loads(lines[0])["files"])
        for line in lines[1:]:
            if line:
                found.update(json.loads(line.split(b"\t", 4)[2]))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError):
        return found
    return found


def _names_digest(names: list[str]) -> str:
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()


def cache_header(
    state: str,
    files: dict[str, FileEntry],
    digests: dict[str, str],
    idents: tuple[list[str], dict[str, str], list[list[str]]],
) -> bytes:
    """The first line of the cache: `files` are those outside the servers' directories,
    `digests` each snapshot server's content digest, `idents` the server names given
    (all names, sorted; the mapping; the renamed ones)."""
    names, mapping, renamed = idents
    return json.dumps(
        {
            "format": CACHE_FORMAT,
            "generator": generator_fingerprint(),
            "state": state,
            "files": dict(sorted(files.items())),
            "digests": digests,
            "idents": {"names": _names_digest(names), "mapping": mapping, "renamed": renamed},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


def server_line(
    name: str,
    key: str,
    files: dict[str, FileEntry],
    reuse: dict[str, Any] | None,
    tools_text: bytes,
) -> bytes:
    """A server's line of the cache (see `ServerRecord`); `tools_text` is its keyed files
    as compact JSON."""

    def dump(value: Any) -> bytes:
        # Compact JSON escapes tabs and newlines inside strings: the line's separators stay unique.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    return b"\t".join(
        [
            dump(name),
            key.encode("ascii"),
            dump(dict(sorted(files.items()))),
            dump(reuse),
            tools_text,
        ]
    )


def build_state(snapshot_digest: str, *options: str | None) -> str:
    """The key of a whole build: generator, snapshot and package options."""
    parts = [generator_fingerprint(), snapshot_digest, *(option or "" for option in options)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def output_files(root: str, *, ordered: bool = False) -> Iterator[str]:
    """Every file under `root` but the cache and tools' caches (`DISPOSABLE`), by relative
    path (folder by folder, each sorted, if `ordered`)."""
    # Each folder's relative prefix, set when its parent is walked: `os.walk` names a
    # folder by joining its parent's name and its own, and `os.path.relpath` (which
    # makes both absolute) took half the walk's time over 2,000 folders.
    prefixes = {root: ""}
    for folder, directories, names in os.walk(root):
        prefix = prefixes.pop(folder)
        kept = [
            name
            for name in directories
            if name not in DISPOSABLE and not (not prefix and name == CACHE_DIR)
        ]
        directories[:] = sorted(kept) if ordered else kept
        for name in directories:
            prefixes[os.path.join(folder, name)] = f"{prefix}{name}/"
        yield from (prefix + name for name in (sorted(names) if ordered else names))


def generated_files(root: str) -> set[str]:
    """Every file under `root` but the cache and tools' caches (`DISPOSABLE`), by relative path."""
    return set(output_files(root))
