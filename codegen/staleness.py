"""Is a committed package what its snapshot renders? (`mcp-codegen build --check`)"""

from __future__ import annotations

import difflib
import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .build import build_package
from .cache import CACHE_PATH
from .package import import_names
from .render import PackageOptions
from .snapshot import SNAPSHOT_FILENAME, Snapshot

__all__ = ["fix_command", "stale_files"]

_SKIPPED = {"__pycache__", ".mypy_cache", CACHE_PATH.parts[0]}
_TEXT = (".py", ".md", ".toml", ".json", ".txt", ".typed")


def _files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not _SKIPPED & set(path.relative_to(root).parts)
    }


def _not_generated(out: Path) -> Callable[[str, list[str]], set[str]]:
    imports = set(import_names(out))
    kept = {"pyproject.toml", "README.md", SNAPSHOT_FILENAME, *imports}

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {name for name in names if name in _SKIPPED}
        if Path(directory) == out:
            skipped |= {name for name in names if name not in kept}
        return skipped

    return ignore


def stale_files(
    out: Path, options: PackageOptions, *, context: int = 2, limit: int = 60
) -> list[str]:
    """How `out` differs from what its own snapshot renders: a diff per file, empty when equal.

    The rendering happens in a copy of `out` (so the version is carried over as a
    rebuild would), and `out` itself is not touched.

    Raises:
        SnapshotError: `out` has no readable snapshot.
    """
    snapshot = Snapshot.read(out / SNAPSHOT_FILENAME)
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / out.name
        # Only what a build writes is copied: a stray file would make the build of
        # the copy refuse, where it should show up as not rendered from the snapshot.
        shutil.copytree(out, fresh, ignore=_not_generated(out))
        build_package(options=options, out=fresh, snapshot=snapshot, keep_going=True)
        expected, actual = _files(fresh), _files(out)
    problems = [f"missing: {name}" for name in sorted(expected.keys() - actual.keys())]
    problems += [
        f"not rendered from the snapshot: {name}"
        for name in sorted(actual.keys() - expected.keys())
    ]
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] == actual[name]:
            continue
        if not name.endswith(_TEXT):
            problems.append(f"differs: {name}")
            continue
        diff = difflib.unified_diff(
            actual[name].decode("utf-8", "replace").splitlines(),
            expected[name].decode("utf-8", "replace").splitlines(),
            f"{out.name}/{name} (committed)",
            f"{out.name}/{name} (rendered)",
            lineterm="",
            n=context,
        )
        lines = list(diff)
        problems.append(
            "\n".join(
                lines[:limit]
                + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else [])
            )
        )
    return problems


def fix_command(out: Path, options: PackageOptions) -> str:
    """The command that brings `out` in line with its snapshot, quoted for a shell.

    It names the package and distribution explicitly, so pasting it rebuilds the
    same package in place (cache and all), never a new one inside it.
    """
    words = ["mcp-codegen", "build", "--from-snapshot", str(out / SNAPSHOT_FILENAME)]
    words += ["--package", str(out), "--name", options.name]
    if options.dist_name:
        words += ["--dist-name", options.dist_name]
    return shlex.join(words)
