"""The search index of a build, from each server's part: kept from the last build, or made.

A server the build kept whole (`RenderedServer.kept`) has its part in the parts
file of the previous build, under its cache key; the others' parts are made from
their index entries. The index is then written from all the parts, and so is the
new parts file. For a large package this runs in a forked process, beside the
writing and formatting of the rest.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .cache import ServerRecord
from .index import IndexBuildError, IndexEntry, write_index

if TYPE_CHECKING:
    from .indexparts import IndexPart
from .toolmodule import PARALLEL_THRESHOLD, worker_count

__all__ = ["IndexBuild", "IndexSource"]


@dataclass(frozen=True)
class IndexSource:
    """One server of the index: its cache key, and its entries or (kept) its cache record."""

    key: str
    entries: Sequence[IndexEntry] | None
    record: ServerRecord | None = None


def write_index_and_parts(
    sources: Sequence[IndexSource],
    index_path: Path,
    parts_in: Path | None,
    parts_out: Path,
    decoded: Mapping[str, tuple[IndexPart, Any]] | None = None,
) -> None:
    """Write the index of `sources` to `index_path`, and their parts to `parts_out`.

    `decoded` holds parts already read from `parts_in` (see `_read_kept`).

    Raises:
        IndexBuildError: the index cannot be written, or a kept server's part can be
            neither read from `parts_in` nor made from its cached entries.
    """
    from .indexparts import encode_part, part_of, write_parts

    if decoded is None:
        decoded = _read_kept(sources, parts_in)
    parts = []
    encoded: dict[str, Any] = {}
    for source in sources:
        entries = source.entries
        if entries is None and source.key in decoded:
            part, encoded[source.key] = decoded[source.key]
            parts.append(part)
            continue
        if entries is None:
            entries = source.record.entries() if source.record is not None else None
            if entries is None:
                raise IndexBuildError(
                    "the build cache is damaged (a server's index entries are unreadable); "
                    "remove the package's .mcp-codegen folder and build again"
                )
        part = part_of(entries)
        encoded[source.key] = encode_part(part)
        parts.append(part)
    write_index(parts, index_path, generator_version=__version__)
    try:
        write_parts(parts_out, encoded)
    except OSError as exc:
        raise IndexBuildError(f"cannot write {parts_out}: {exc.strerror}") from exc


def _read_kept(
    sources: Sequence[IndexSource], parts_in: Path | None
) -> dict[str, tuple[IndexPart, Any]]:
    """The parts of the kept servers among `sources` that `parts_in` holds and that read
    well, with their bytes, by key."""
    from .indexparts import decode_part, read_parts

    stored = read_parts(parts_in) if parts_in is not None else {}
    decoded = {}
    for source in sources:
        found = stored.get(source.key) if source.entries is None else None
        if found is not None:
            try:
                decoded[source.key] = (decode_part(found), found)
            except ValueError:
                continue
    return decoded


class IndexBuild:
    """The search index, built beside the rest of the build: in a forked process if large.

    `start` is given the servers kept from the previous build as soon as they are
    known, before any tool is rendered: a large build forks then, and the child
    reads their parts (and imports numpy) while the parent renders and writes the
    rest. `finish` hands it the other servers and where to write; `wait` waits.
    Writing thousands of files and formatting them leaves a core free most of the
    time; the index fills it. A small index is built in `wait()`, after the files:
    on a full disk the error is then the plain one of a file write (`File too
    large`), not sqlite's `disk I/O error`.
    """

    def __init__(self, parts_in: Path | None):
        self._parts_in = parts_in
        self._kept: list[IndexSource] = []
        self._started = False
        self._process: multiprocessing.process.BaseProcess | None = None
        self._sender: Any = None
        self._inline: tuple[Any, ...] | None = None
        self._context = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
        self._errors: Any = self._context.SimpleQueue() if self._context is not None else None

    def _parallel(self, tool_count: int) -> bool:
        return self._context is not None and tool_count >= PARALLEL_THRESHOLD and worker_count() > 1

    def start(self, kept: Sequence[IndexSource], tool_count: int) -> None:
        """Begin with the servers kept whole from the previous build (`entries` None)."""
        self._kept, self._started = list(kept), True
        if not kept or not self._parallel(tool_count):
            return
        assert self._context is not None
        receiver, self._sender = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=_early_child,
            args=(self._kept, self._parts_in, receiver, self._errors),
            name="mcp-codegen-index",
        )
        self._process.start()

    def finish(
        self, fresh: Sequence[IndexSource], index_path: Path, parts_out: Path, tool_count: int
    ) -> None:
        """Add the servers rendered afresh (`fresh`), and say where the index and parts go."""
        if self._process is not None:
            self._sender.send((list(fresh), index_path, parts_out))
            return
        args = ([*self._kept, *fresh], index_path, self._parts_in, parts_out)
        if not self._parallel(tool_count):
            self._inline = args
            return
        assert self._context is not None
        self._process = self._context.Process(
            target=_late_child, args=(*args, self._errors), name="mcp-codegen-index"
        )
        self._process.start()

    def wait(self) -> None:
        """Wait for the index to be written.

        Raises:
            IndexBuildError: it could not be.
        """
        inline, self._inline = self._inline, None
        if inline is not None:
            write_index_and_parts(*inline)
        process, self._process = self._process, None
        if process is None:
            return
        process.join()
        if process.exitcode != 0:
            said = self._errors.get() if not self._errors.empty() else ""
            raise IndexBuildError(said or f"the index process ended with status {process.exitcode}")

    def stop(self) -> None:
        """End the index process if the build failed before waiting for it."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join()


def _report(errors: Any, exc: Exception) -> None:
    errors.put(str(exc) if isinstance(exc, IndexBuildError) else f"{type(exc).__name__}: {exc}")


def _early_child(
    kept: Sequence[IndexSource], parts_in: Path | None, receiver: Any, errors: Any
) -> None:
    try:
        decoded = _read_kept(kept, parts_in)
        fresh, index_path, parts_out = receiver.recv()
        write_index_and_parts([*kept, *fresh], index_path, parts_in, parts_out, decoded)
    except Exception as exc:  # reported by the parent, which raises it
        _report(errors, exc)
        raise SystemExit(1) from None


def _late_child(
    sources: Sequence[IndexSource],
    index_path: Path,
    parts_in: Path | None,
    parts_out: Path,
    errors: Any,
) -> None:
    try:
        write_index_and_parts(sources, index_path, parts_in, parts_out)
    except Exception as exc:  # reported by the parent, which raises it
        _report(errors, exc)
        raise SystemExit(1) from None
