"""Putting a staged build in place: the whole tree at once, or only what changed.

A build is staged beside its output and only then put in place, so a build that
fails leaves the previous output as it was. A first build (or one that keeps
nothing of the previous output) replaces the whole tree with two renames
(`swap_into_place`). A rebuild that keeps most of the previous output moves in
only what changed (`commit_changes`): each changed server's directory and each
changed file replaces its previous version by renames, then the new build cache
replaces the old one. At 10,000 tools that is a few renames instead of making
2,000 directories and linking 10,000 files.

While the renames run, the new cache waits beside the old one as
`build-cache.pending.jsonl`: a build interrupted then (killed, power lost)
leaves an output that is part old, part new, whose files the next build still
knows as its own (both caches list them) and rebuilds where they differ. A
failure the process sees undoes the renames done so far. Whatever is replaced
goes to a folder of the cache and is removed only after it was checked to hold
nothing but files a build wrote.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Collection
from pathlib import Path

from .cache import CACHE_DIR, CACHE_PATH, DISPOSABLE, PENDING_PATH

__all__ = ["CommitRefused", "commit_changes", "swap_into_place"]

_TRASH = "replaced-"
"""Prefix of the folders (in the cache folder) that hold what a commit replaced."""


class CommitRefused(Exception):
    """A place the build would replace holds a file no build wrote. Nothing was changed."""


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


def _strays(target: str, unit: str, written: Collection[str]) -> list[str]:
    """The files at `target` (the place of `unit`) that no build wrote."""
    if not os.path.isdir(target) or os.path.islink(target):
        return [] if unit in written or not os.path.lexists(target) else [unit]
    found = []
    for folder, directories, names in os.walk(target):
        directories[:] = [name for name in directories if name not in DISPOSABLE]
        relative = os.path.relpath(folder, target)
        prefix = unit if relative == "." else f"{unit}/{relative.replace(os.sep, '/')}"
        found += [f"{prefix}/{name}" for name in names if f"{prefix}/{name}" not in written]
    return sorted(found)


def commit_changes(
    staging: Path,
    out: Path,
    staged: Collection[str],
    gone: Collection[str],
    written: Collection[str],
) -> None:
    """Move the units `staged` (files and directories, relative paths) from `staging` into
    `out`, and take the units `gone` out of it; then the new cache (`staging`'s) in.

    `written` lists every file the previous build wrote: a unit to replace or remove
    that holds anything else (caches such as `__pycache__` aside) is refused.

    Raises:
        CommitRefused: a unit to replace holds a file no build wrote; nothing was changed.
        OSError: a rename failed; the ones done were undone.
    """
    units = sorted(set(staged) | set(gone))
    for unit in units:
        if unit.startswith(f"{CACHE_DIR}/"):
            continue  # the cache's own files
        stray = _strays(os.path.join(out, unit), unit, written)
        if stray:
            raise CommitRefused(
                f"{out} holds files mcp-codegen did not write ({', '.join(stray[:4])})"
            )
    cache_dir = out / CACHE_DIR
    for leftover in cache_dir.glob(f"{_TRASH}*"):  # of a commit that was killed
        shutil.rmtree(leftover, ignore_errors=True)
    trash = cache_dir / f"{_TRASH}{secrets.token_hex(6)}"
    pending = out / PENDING_PATH
    done: list[tuple[str, str]] = []  # renames made, (from, to), to undo on failure
    made: list[str] = []  # directories made, to remove on failure
    os.makedirs(cache_dir, exist_ok=True)
    os.replace(staging / CACHE_PATH, pending)
    try:
        trash.mkdir()
        for number, unit in enumerate(units):
            target = os.path.join(out, unit)
            if os.path.lexists(target):
                aside = os.path.join(trash, str(number))
                os.rename(target, aside)
                done.append((aside, target))
            if unit in staged:
                made += _make_parents(out, unit)
                source = os.path.join(staging, unit)
                os.rename(source, target)
                done.append((target, source))
        os.replace(pending, out / CACHE_PATH)
    except BaseException:
        for back, to in reversed(done):
            with contextlib.suppress(OSError):
                os.rename(back, to)
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        with contextlib.suppress(OSError):
            pending.unlink()
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _make_parents(out: Path, unit: str) -> list[str]:
    """Make the missing folders above `out/unit`, outermost first; the ones made."""
    made = []
    parent = os.path.dirname(unit)
    missing = []
    while parent and not os.path.isdir(os.path.join(out, parent)):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for folder in reversed(missing):
        os.mkdir(os.path.join(out, folder))
        made.append(os.path.join(out, folder))
    return made
