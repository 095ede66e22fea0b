"""The generated package's version: it moves by the class of change since the previous build.

Breaking changes bump the major version, compatible ones the minor, text-only
changes the patch; an unchanged snapshot keeps the version. The previous version
is read from the previous output's pyproject.toml, the previous snapshot beside it.
A version given explicitly (`--version`) is used as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

from .drift import diff_snapshots
from .snapshot import SNAPSHOT_FILENAME, Snapshot, SnapshotError

__all__ = ["INITIAL_VERSION", "bump_version", "next_version"]

INITIAL_VERSION = "0.1.0"
_VERSION_LINE = re.compile(r'^version = "(\d+)\.(\d+)\.(\d+)"$', re.MULTILINE)


def bump_version(version: str, bump: str | None) -> str:
    """`1.4.2` bumped by "major" is `2.0.0`, by "minor" `1.5.0`, by "patch" `1.4.3`, by None itself.

    Raises:
        ValueError: `version` is not MAJOR.MINOR.PATCH.
    """
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"{version!r} is not a MAJOR.MINOR.PATCH version")
    major, minor, patch = (int(part) for part in match.groups())
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    if bump == "patch":
        return f"{major}.{minor}.{patch + 1}"
    return version


def next_version(out: Path, snapshot: Snapshot) -> tuple[str, str | None]:
    """The version for building `snapshot` into `out`, and the bump that led to it.

    Without a readable previous output the version is `INITIAL_VERSION`.
    """
    try:
        match = _VERSION_LINE.search((out / "pyproject.toml").read_text(encoding="utf-8"))
        previous = Snapshot.read(out / SNAPSHOT_FILENAME)
    except (OSError, SnapshotError):
        return INITIAL_VERSION, None
    if match is None:
        return INITIAL_VERSION, None
    bump = diff_snapshots(previous, snapshot).bump()
    return bump_version(".".join(match.groups()), bump), bump
