"""The generated package's version: it moves by the class of change since the previous build.

Breaking changes bump the major version, compatible ones the minor, text-only
changes the patch; an unchanged snapshot keeps the version. The previous version
is read from the previous output's pyproject.toml, the previous snapshot beside it.
A version given explicitly (`--version`) is used as it is.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .drift import diff_snapshots
from .snapshot import (
    SNAPSHOT_FILENAME,
    SNAPSHOT_FORMAT,
    ServerSnapshot,
    Snapshot,
    server_chunks,
    server_from_chunk,
)

__all__ = [
    "INITIAL_VERSION",
    "Comparison",
    "PreviousOutput",
    "bump_version",
    "next_version",
    "previous_output",
]

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


class PreviousOutput:
    """What a build needs of the package already in `out`: its version and, on demand, snapshot."""

    def __init__(self, out: Path, version: str):
        self.out = out
        self.version = version

    @functools.cached_property
    def data(self) -> bytes:
        """The snapshot file's bytes (empty if it cannot be read)."""
        try:
            return (self.out / SNAPSHOT_FILENAME).read_bytes()
        except OSError:
            return b""

    @functools.cached_property
    def wire(self) -> dict[str, Any]:
        """The snapshot file, parsed but not validated (validating 10,000 tools takes a second)."""
        try:
            wire = json.loads(self.data)
        except ValueError:
            return {}
        return wire if isinstance(wire, dict) and wire.get("format") == SNAPSHOT_FORMAT else {}

    def servers(self) -> dict[str, dict[str, Any]]:
        """The previous snapshot's servers in wire form, by name."""
        servers = self.wire.get("servers")
        if not isinstance(servers, list):
            return {}
        return {
            server["name"]: server
            for server in servers
            if isinstance(server, dict) and isinstance(server.get("name"), str)
        }

    @functools.cached_property
    def chunks(self) -> dict[str, bytes] | None:
        """Each server's lines of the snapshot file, by name (see `server_chunks`)."""
        return server_chunks(self.data) if self.data else None

    def compare(self, snapshot: Snapshot, digests: Mapping[str, str] | None) -> Comparison:
        """What changed from the previous snapshot to `snapshot`.

        `digests` are the previous servers' `server_content_digest()`s, if known
        (the build cache records them): then only the changed servers are parsed.
        """
        after = {server["name"]: server for server in snapshot.wire()["servers"]}
        chunks = self.chunks
        if chunks is not None and digests is not None and digests.keys() == chunks.keys():
            same = {
                name for name in after if digests.get(name) == snapshot.server_content_digest(name)
            }
            before_names: set[str] = set(chunks)
            load: Callable[[str], dict[str, Any]] = functools.partial(_from_chunks, chunks)
        else:
            before = self.servers()
            if not before and not self.wire:
                return Comparison(set(), None, snapshot)
            same = {name for name, server in after.items() if before.get(name) == server}
            before_names = set(before)
            load = before.__getitem__
        changed = sorted((before_names | after.keys()) - same)
        try:
            old = Snapshot(
                servers=tuple(
                    ServerSnapshot.model_validate(load(name))
                    for name in changed
                    if name in before_names
                )
            )
        except (ValidationError, ValueError):  # no snapshot this version wrote
            return Comparison(set(), None, snapshot)
        new = Snapshot(
            servers=tuple(server for server in snapshot.servers if server.name in changed)
        )
        return Comparison(same, old, new)


def _from_chunks(chunks: Mapping[str, bytes], name: str) -> dict[str, Any]:
    return server_from_chunk(chunks[name])


@dataclass(frozen=True)
class Comparison:
    """The previous snapshot against the new one.

    Attributes:
        same: the servers both hold unchanged.
        old: the previous snapshot's other servers, or None if it could not be read.
        new: the new snapshot's other servers.
    """

    same: set[str]
    old: Snapshot | None
    new: Snapshot


def previous_output(out: Path) -> PreviousOutput | None:
    """The package built in `out`, if there is one with a version."""
    try:
        match = _VERSION_LINE.search((out / "pyproject.toml").read_text(encoding="utf-8"))
    except OSError:
        return None
    return PreviousOutput(out, ".".join(match.groups())) if match else None


def next_version(
    previous: PreviousOutput | None, snapshot: Snapshot, comparison: Comparison | None = None
) -> tuple[str, str | None]:
    """The version for building `snapshot` over `previous`, and the bump that led to it.

    Without a previous output the version is `INITIAL_VERSION`. Only the servers
    whose definitions differ are validated and compared (`comparison`, made by
    `PreviousOutput.compare` if not given).
    """
    if previous is None:
        return INITIAL_VERSION, None
    comparison = comparison or previous.compare(snapshot, None)
    if comparison.old is None:
        return INITIAL_VERSION, None
    bump = diff_snapshots(comparison.old, comparison.new).bump()
    return bump_version(previous.version, bump), bump
