"""Write: format, verify and index the rendered package, then swap it into place.

Everything is written into a staging directory beside the output first. ruff
formats it once (not once per file), every module is verified (tool modules
already were, as they were rendered: see `toolmodule`), the search index is
built (in a forked process beside the rest, for large packages), and only then
does the staging directory replace the old output. A build that fails anywhere
leaves the previous output exactly as it was. Unchanged modules are hard links
to the previous output's files, which are never modified in place.

The output is replaced only when it is missing, an empty directory, or a package
mcp-codegen built holding nothing but what it wrote (`check_output_dir`, called
before any server is started): no file a build did not create is ever removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

from ruff.__main__ import find_ruff_bin

from .cache import (
    CACHE_DIR,
    CACHE_PATH,
    INDEX_PARTS_PATH,
    BuildCache,
    FileEntry,
    cache_header,
    output_files,
    server_line,
    sha256_file,
)
from .commit import CommitRefused, commit_changes, swap_into_place
from .diagnostics import BuildError, Diagnostics
from .index import INDEX_FILENAME, IndexBuildError, IndexEntry
from .indexbuild import IndexBuild, IndexSource
from .package import import_names, is_built_package
from .render import RenderedPackage
from .snapshot import SNAPSHOT_FILENAME
from .verify import verify_package

__all__ = [
    "UNHASHED",
    "OutputError",
    "Staged",
    "check_output_dir",
    "format_python",
    "stage_package",
    "swap_into_place",
    "unit_of",
    "write_package",
]


class OutputError(Exception):
    """The output directory must not be replaced, or cannot be written. Nothing was changed."""


_SHOWN = 4
"""Stray files named in an error, at most."""


def check_output_dir(out: Path, written: frozenset[str] | None = None) -> None:
    """Refuse an `out` a build must not replace, or cannot write; before any server starts.

    `out` may be missing, an empty directory, or a package mcp-codegen built that
    holds only files it wrote (caches such as `__pycache__` aside): the files its
    build cache lists (`written`, read from the cache when not given), or without a
    cache the files a build writes by place. Its parent (or the nearest existing
    ancestor) must be a directory this process can write.

    Raises:
        OutputError: anything else, with what `out` holds and what to do.
    """
    if out.is_symlink():
        raise OutputError(f"{out} is a symlink; pass the directory it points to as --package")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is not a directory; choose another --package")
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        # Replacing it would pull the directory out from under the shell that runs the build.
        raise OutputError(
            f"cannot build into {out}, the current directory or one above it; nothing was "
            f"changed. Build into a new directory, e.g. --package {out / 'generated' / 'my_tools'}"
        )
    if out.is_dir():
        try:
            entries = list(out.iterdir())
        except OSError as exc:
            raise OutputError(f"{out}: cannot read ({exc.strerror})") from None
        if entries and not is_built_package(out):
            raise OutputError(
                f"{out} is not empty and not a package mcp-codegen built (it holds "
                f"{_listing(sorted(entry.name for entry in entries))}); nothing was changed. "
                f"Build into a new or empty directory, e.g. --package {out / 'my_tools'}"
            )
        stray = _stray_files(out, written) if entries else []
        if stray:
            raise OutputError(
                f"{out} holds files mcp-codegen did not write ({_listing(stray)}); "
                "nothing was changed. Move them out of the package, or build into another "
                "--package"
            )
    _check_writable(out.parent)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _stray_files(out: Path, written: frozenset[str] | None) -> list[str]:
    """Files under a built package that its build did not write, by relative path."""
    if written is None:
        written = BuildCache(out).written
    imports = set(import_names(out))
    stray: list[str] = []
    for path in output_files(str(out), ordered=True):
        if written is not None:
            if path not in written:
                stray.append(path)
        elif not _generated_path(PurePosixPath(path), imports):
            stray.append(path)
    return stray


def _generated_path(relative: PurePosixPath, imports: set[str]) -> bool:
    # Without a cache (a fresh clone: the cache ignores itself in git), the files a
    # build writes are known by place: the three at the top and the import package.
    top = relative.parts[0]
    if len(relative.parts) == 1:
        return top in ("pyproject.toml", "README.md", SNAPSHOT_FILENAME)
    return top in imports


def _check_writable(directory: Path) -> None:
    existing = directory.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{existing} is not a directory; choose another --package")
    try:
        probe = tempfile.mkdtemp(prefix=".mcp-codegen-probe-", dir=existing)
    except OSError as exc:
        raise OutputError(
            f"cannot write in {existing} ({exc.strerror}); choose another --package"
        ) from None
    os.rmdir(probe)


LINE_LENGTH = 100


def format_python(paths: list[Path], root: Path | None = None) -> None:
    """Sort imports and format `paths` with the pinned ruff, in isolated mode: two spawns at most.

    Raises:
        BuildError: ruff failed, which means a generated file is not valid Python;
            the message is ruff's own, with paths relative to `root`.
    """
    if not paths:
        return
    ruff = os.fsdecode(find_ruff_bin())
    common = [
        "--isolated",
        "--no-respect-gitignore",
        f"--line-length={LINE_LENGTH}",
        "--target-version=py311",
        "--no-cache",  # else every build leaves .ruff_cache/ in the current directory
    ]
    for command in (
        [ruff, "check", *common, "--quiet", "--select=I", "--fix", "--exit-zero"],
        # Not --quiet: it would hide the reason of a failure ("Expected an indented block...").
        [ruff, "format", *common],
    ):
        # All paths in one command line: 10,000 of them fit well within ARG_MAX.
        done = subprocess.run(
            [*command, *map(str, paths)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            said = "\n".join(
                line
                for line in (done.stderr + "\n" + done.stdout).splitlines()
                if line.strip() and not line.startswith(("warning:", "1 file", "Found "))
            )
            if root is not None:
                said = said.replace(f"{root}{os.sep}", "")
            raise BuildError(
                f"ruff {command[1]} failed on the generated code (a bug of mcp-codegen; please "
                f"report it): {said[:4000] or f'exit status {done.returncode}'}"
            )


@dataclass
class Staged:
    """What a build staged, for `commit_changes`: the units (server directories and other
    files, relative paths) it replaces, and those of the previous build it removes."""

    staged: set[str]
    gone: set[str]


UNHASHED = ""
"""The recorded SHA-256 of the two large files every change rewrites (the snapshot and the
index: 30 MB at 10,000 tools, 50 ms to hash). Recorded so, such a file counts as unchanged
only while its stamp is: touched, it is written again, not trusted."""


def unit_of(name: str) -> str:
    """The unit of the output a file moves in with: its server's directory, or itself."""
    parts = name.split("/", 3)
    return "/".join(parts[:3]) if len(parts) == 4 and parts[1] == "servers" else name


def _formatted(name: str) -> bool:
    """Whether ruff formats the file (its final bytes are known only once it did)."""
    return name.endswith(".py") and name.split("/")[1:2] != ["_runtime"]


def _encoded(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode("utf-8")


def stage_package(
    rendered: RenderedPackage,
    staging: Path,
    package: str,
    cache: BuildCache,
    state: str,
    index: IndexBuild | None = None,
) -> tuple[Diagnostics, Staged]:
    """Write, format, verify and index `rendered` under `staging`, with the new build cache.

    Modules reused from the cache are linked as they were: only fresh source is
    formatted, and verified unless it is a tool module (verified when rendered).
    When the build keeps servers of the previous output in place, only what
    differs from it is staged (see `commit_changes`). `index` is the index build
    the caller started with the kept servers, if it did.

    Raises:
        BuildError: formatting or verification failed.
        IndexBuildError: the search index could not be written.
    """
    patch = any(server.kept for server in rendered.servers)
    digests = {
        relative.as_posix(): (
            UNHASHED
            if relative.as_posix() == SNAPSHOT_FILENAME
            else hashlib.sha256(_encoded(content)).hexdigest()
        )
        for relative, content in rendered.files.items()
        if not isinstance(content, Path) and not _formatted(relative.as_posix())
    }
    kept_top: dict[str, FileEntry] = {}
    if patch:  # files the same as the previous output's stay where they are
        for name, digest in digests.items():
            entry = cache.top.get(name)
            if (
                digest != UNHASHED
                and entry is not None
                and unit_of(name) == name
                and cache.check(name, entry, digest)
            ):
                kept_top[name] = entry
    files = {
        relative: content
        for relative, content in rendered.files.items()
        if relative.as_posix() not in kept_top
    }
    if index is None:
        index = IndexBuild(cache.out / INDEX_PARTS_PATH if cache.out is not None else None)
        kept = [
            IndexSource(server.key, None, server.record)
            for server in rendered.servers
            if server.kept
        ]
        index.start(kept, rendered.tool_count)
    fresh = [
        IndexSource(server.key, [*(tool.entry for tool in server.tools), *server.entries])
        for server in rendered.servers
        if not server.kept
    ]
    (staging / CACHE_DIR).mkdir()
    index.finish(
        fresh, staging / package / INDEX_FILENAME, staging / INDEX_PARTS_PATH, rendered.tool_count
    )
    try:
        problems, entries = _stage(rendered, files, digests, staging, package, index)
        # The servers' lines of the cache while the index is being written: only the
        # header needs the index file's stamp.
        lines = _server_lines(rendered, entries)
        index.wait()
    finally:
        index.stop()
    index_name = f"{package}/{INDEX_FILENAME}"
    found = os.stat(staging / index_name)
    entries[index_name] = [UNHASHED, found.st_size, found.st_mtime_ns, found.st_ino]
    _save_cache(rendered, staging, state, entries, kept_top, lines)
    new_units = {unit_of(name) for name in entries} | {INDEX_PARTS_PATH.as_posix()}
    kept_units = {server.directory for server in rendered.servers if server.kept} | set(kept_top)
    old_units = {unit_of(name) for name in cache.top}
    for record in cache.servers.values():
        old_units |= {unit_of(name) for name in record.files}
    return problems, Staged(new_units, old_units - new_units - kept_units)


def _stage(
    rendered: RenderedPackage,
    files: dict[PurePosixPath, str | bytes | Path],
    digests: dict[str, str],
    staging: Path,
    package: str,
    index: IndexBuild,
) -> tuple[Diagnostics, dict[str, FileEntry]]:
    root = str(staging)
    # Tool modules were verified as they were rendered (see `toolmodule`); the rest here.
    modules = {tool.path for server in rendered.servers for tool in server.tools}
    hashes: dict[str, str] = {name.as_posix(): sha for name, sha in rendered.known.items()}
    fresh: list[str] = []
    unverified: list[Path] = []
    for folder in sorted({os.path.dirname(name.as_posix()) for name in files}):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for relative, content in files.items():
        name = relative.as_posix()
        path = os.path.join(root, name)
        if isinstance(content, Path):
            _link_or_copy(content, path)
            continue
        with open(path, "wb") as file:
            file.write(_encoded(content))
        if _formatted(name):
            fresh.append(path)  # hashed once ruff has formatted it
            if relative not in modules:
                unverified.append(Path(path))
        else:
            hashes[name] = digests[name]
    format_python([Path(path) for path in sorted(fresh)], staging)
    problems = verify_package(staging / package, package, unverified)
    if problems.errors:
        raise BuildError("generated code failed verification", problems)
    for path in fresh:
        hashes[os.path.relpath(path, root).replace(os.sep, "/")] = sha256_file(path)
    entries: dict[str, FileEntry] = {}
    for relative in files:
        name = relative.as_posix()
        found = os.stat(os.path.join(root, name))
        entries[name] = [hashes[name], found.st_size, found.st_mtime_ns, found.st_ino]
    return problems, entries


def _server_lines(rendered: RenderedPackage, entries: dict[str, FileEntry]) -> list[bytes]:
    """Each server's line of the new build cache (`entries`: the staged files)."""
    by_unit: dict[str, dict[str, FileEntry]] = defaultdict(dict)
    for name, entry in entries.items():
        unit = unit_of(name)
        if unit != name:
            by_unit[unit][name] = entry
    lines = []
    for server in rendered.servers:
        record = server.record
        if server.kept and record is not None:
            lines.append(
                server_line(record.name, record.key, record.files, record.reuse, record.tools_text)
                if record.refreshed
                else record.line
            )
            continue
        files = by_unit[server.directory]
        keyed: dict[str, dict[str, Any]] = {
            tool.key: {
                "path": tool.path.as_posix(),
                "sha256": files[tool.path.as_posix()][0],
                # Shallow: its fields are strings and tuples, which JSON writes as they are.
                "entry": {name: getattr(tool.entry, name) for name in _ENTRY_FIELDS},
            }
            for tool in server.tools
        }
        for relative, key in server.keyed.items():
            keyed[key] = {"path": relative.as_posix(), "sha256": files[relative.as_posix()][0]}
        # Its resources' and prompts' entries: no file of their own to key them by, and
        # read back (`ServerRecord.entries`) when the index parts cannot be.
        for number, extra in enumerate(server.entries):
            keyed[f"extra:{number}"] = {
                "entry": {name: getattr(extra, name) for name in _ENTRY_FIELDS}
            }
        tools_text = json.dumps(
            dict(sorted(keyed.items())), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        lines.append(server_line(server.name, server.key, files, server.reuse, tools_text))
    return lines


def _save_cache(
    rendered: RenderedPackage,
    staging: Path,
    state: str,
    entries: dict[str, FileEntry],
    kept_top: dict[str, FileEntry],
    lines: list[bytes],
) -> None:
    """Write the new build cache into `staging`: the staged files, and those kept in place.

    `lines` are the servers' (`_server_lines`).
    """
    top = dict(kept_top)
    top.update((name, entry) for name, entry in entries.items() if unit_of(name) == name)
    header = cache_header(state, top, rendered.digests, rendered.idents)
    # The folder ignores itself, so a committed package never commits its cache.
    (staging / CACHE_DIR / ".gitignore").write_text("*\n", encoding="utf-8")
    (staging / CACHE_PATH).write_bytes(b"\n".join([header, *lines]) + b"\n")


_ENTRY_FIELDS = tuple(item.name for item in fields(IndexEntry))


def _link_or_copy(source: Path, target: str) -> None:
    # An unchanged module of the previous output: a hard link costs no write. Files
    # are never modified in place, so sharing them between the two trees is safe.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def write_package(
    rendered: RenderedPackage,
    out: Path,
    package: str,
    cache: BuildCache,
    state: str,
    index: IndexBuild | None = None,
) -> Diagnostics:
    """Stage `rendered`, then put it in place as `out`; on any failure leave `out` untouched.

    A build that keeps servers of the previous output moves in only what changed
    (`commit_changes`); any other replaces the whole tree (`swap_into_place`).

    Raises:
        BuildError: the staged package failed formatting or verification.
        OutputError: `out` must not be replaced (see `check_output_dir`), or the
            disk refused a write (full, read-only, permissions).
    """
    patch = any(server.kept for server in rendered.servers)
    if not patch:  # again: the servers took a while, the user did not wait
        check_output_dir(out, cache.written)
    out = out.absolute()  # `.` has no name to stage beside
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"cannot write {out} ({exc.strerror}); nothing was changed") from None
    staging.chmod(0o755)  # mkdtemp makes it private; the package is read by others (the sandbox)
    try:
        problems, staged = stage_package(rendered, staging, package, cache, state, index)
        if patch:
            commit_changes(staging, out, staged.staged, staged.gone, cache.written or ())
            shutil.rmtree(staging, ignore_errors=True)
        else:
            swap_into_place(staging, out)
    except CommitRefused as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(
            f"{exc}; nothing was changed. Move them out of the package, or build into another "
            "--package"
        ) from None
    except (OSError, IndexBuildError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write {out} ({reason}); nothing was changed") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return problems
