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
import multiprocessing
import multiprocessing.process
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from ruff.__main__ import find_ruff_bin

from . import __version__
from .cache import CACHE_PATH, BuildCache, sha256_file
from .diagnostics import BuildError, Diagnostics
from .index import INDEX_FILENAME, IndexBuildError, IndexEntry, build_index
from .package import import_names, is_built_package
from .render import RenderedPackage
from .snapshot import SNAPSHOT_FILENAME
from .toolmodule import PARALLEL_THRESHOLD, worker_count
from .verify import verify_package

__all__ = [
    "OutputError",
    "check_output_dir",
    "format_python",
    "stage_package",
    "swap_into_place",
    "write_package",
]


class OutputError(Exception):
    """The output directory must not be replaced, or cannot be written. Nothing was changed."""


_DISPOSABLE = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})
"""Caches tools leave in a package; replacing them loses nothing."""

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
        written = _written_by_last_build(out)
    imports = set(import_names(out))
    stray: list[str] = []
    for directory, subdirectories, files in os.walk(out):
        relative = PurePosixPath(Path(directory).relative_to(out).as_posix())
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if name not in _DISPOSABLE
            and not (relative.parts == () and name == CACHE_PATH.parts[0])
        )
        for name in sorted(files):
            path = relative / name
            if written is not None:
                if path.as_posix() not in written:
                    stray.append(path.as_posix())
            elif not _generated_path(path, imports):
                stray.append(path.as_posix())
    return stray


def _written_by_last_build(out: Path) -> frozenset[str] | None:
    """The files the build cache lists (every file of the last build), or None without a cache."""
    try:
        data = json.loads((out / CACHE_PATH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    manifest = data.get("manifest") if isinstance(data, dict) else None
    return frozenset(manifest) if isinstance(manifest, dict) and manifest else None


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


def stage_package(
    rendered: RenderedPackage, staging: Path, package: str, cache: BuildCache, state: str
) -> Diagnostics:
    """Write, format, verify and index `rendered` under `staging`, recording it in `cache`.

    Modules reused from the cache are linked as they were: only fresh source is
    formatted, and verified unless it is a tool module (verified when rendered).

    Raises:
        BuildError: formatting or verification failed.
    """
    root = str(staging)
    index = _IndexBuild(
        [tool.entry for tool in rendered.tools] + rendered.entries,
        staging / package / INDEX_FILENAME,
    )
    try:
        return _stage(rendered, staging, root, package, cache, state, index)
    finally:
        index.stop()


def _stage(
    rendered: RenderedPackage,
    staging: Path,
    root: str,
    package: str,
    cache: BuildCache,
    state: str,
    index: _IndexBuild,
) -> Diagnostics:
    # Tool modules were verified as they were rendered (see `toolmodule`); the rest here.
    modules = {tool.path for tool in rendered.tools}
    hashes: dict[str, str] = {name.as_posix(): sha for name, sha in rendered.known.items()}
    fresh: list[str] = []
    unverified: list[Path] = []
    for folder in sorted({os.path.dirname(name.as_posix()) for name in rendered.files}):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for relative, content in rendered.files.items():
        name = relative.as_posix()
        path = os.path.join(root, name)
        if isinstance(content, Path):
            _link_or_copy(content, path)
            continue
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        with open(path, "wb") as file:
            file.write(data)
        if name.endswith(".py") and relative.parts[1:2] != ("_runtime",):
            fresh.append(path)  # hashed once ruff has formatted it
            if relative not in modules:
                unverified.append(Path(path))
        else:
            hashes[name] = hashlib.sha256(data).hexdigest()
    format_python([Path(path) for path in sorted(fresh)], staging)
    problems = verify_package(staging / package, package, unverified)
    if problems.errors:
        raise BuildError("generated code failed verification", problems)
    for path in fresh:
        hashes[os.path.relpath(path, root).replace(os.sep, "/")] = sha256_file(path)
    for tool in rendered.tools:
        cache.record(tool.key, tool.path, hashes[tool.path.as_posix()], tool.entry)
    for relative, key in rendered.keyed.items():
        cache.record(key, relative, hashes[relative.as_posix()])
    index.wait()
    cache.save(staging, state, hashes)
    return problems


class _IndexBuild:
    """The search index, built beside the rest of the staging: in a forked process if large.

    Writing ten thousand files and formatting them leaves a core free most of
    the time; the index (a second at 10,000 tools) fills it. A small one is built
    in `wait()`, after the files: on a full disk the error is then the plain one of
    a file write (`File too large`), not sqlite's `disk I/O error`.
    """

    def __init__(self, entries: list[IndexEntry], path: Path):
        self._process: multiprocessing.process.BaseProcess | None = None
        self._inline: tuple[list[IndexEntry], Path] | None = None
        if len(entries) < PARALLEL_THRESHOLD or worker_count() < 2 or not hasattr(os, "fork"):
            self._inline = (entries, path)
            return
        context = multiprocessing.get_context("fork")
        self._errors = context.SimpleQueue()
        self._process = context.Process(
            target=_index_child, args=(entries, path, self._errors), name="mcp-codegen-index"
        )
        self._process.start()

    def wait(self) -> None:
        """Wait for the index to be written.

        Raises:
            IndexBuildError: it could not be.
        """
        inline, self._inline = self._inline, None
        if inline is not None:
            build_index(*inline, generator_version=__version__)
        process, self._process = self._process, None
        if process is None:
            return
        process.join()
        if process.exitcode != 0:
            said = self._errors.get() if not self._errors.empty() else ""
            raise IndexBuildError(said or f"the index process ended with status {process.exitcode}")

    def stop(self) -> None:
        """End the index process if the staging failed before waiting for it."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join()


def _index_child(entries: list[IndexEntry], path: Path, errors: Any) -> None:
    try:
        build_index(entries, path, generator_version=__version__)
    except Exception as exc:  # reported by the parent, which raises it
        errors.put(str(exc) if isinstance(exc, IndexBuildError) else f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None


def _link_or_copy(source: Path, target: str) -> None:
    # An unchanged module of the previous output: a hard link costs no write. Files
    # are never modified in place, so sharing them between the two trees is safe.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def swap_into_place(staging: Path, out: Path) -> None:
    """Replace `out` with `staging` (two renames), removing the old output after.

    The old output moves aside under a name no other file has, so nothing but it
    is removed (and only after `check_output_dir` accepted it).
    """
    old: Path | None = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{secrets.token_hex(6)}")
        while old.exists():
            old = out.with_name(f".{out.name}.old-{secrets.token_hex(6)}")
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_package(
    rendered: RenderedPackage, out: Path, package: str, cache: BuildCache, state: str
) -> Diagnostics:
    """Stage `rendered`, then swap it in as `out`; on any failure leave `out` untouched.

    Raises:
        BuildError: the staged package failed formatting or verification.
        OutputError: `out` must not be replaced (see `check_output_dir`), or the
            disk refused a write (full, read-only, permissions).
    """
    check_output_dir(out, cache.written)  # again: the servers took a while, the user did not wait
    out = out.absolute()  # `.` has no name to stage beside
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    except OSError as exc:
        raise OutputError(f"cannot write {out} ({exc.strerror}); nothing was changed") from None
    staging.chmod(0o755)  # mkdtemp makes it private; the package is read by others (the sandbox)
    try:
        problems = stage_package(rendered, staging, package, cache, state)
        swap_into_place(staging, out)
    except (OSError, IndexBuildError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OutputError(f"cannot write {out} ({reason}); nothing was changed") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return problems
