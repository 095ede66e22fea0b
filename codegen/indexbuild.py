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
from typing import Any

from . import __version__
from .cache import ServerRecord
from .index import IndexBuildError, IndexEntry, write_index
from .toolmodule import PARALLEL_THRESHOLD, worker_count

__all__ = ["IndexBuild", "IndexSource"]


@dataclass(frozen=True)
class IndexSource:
    """One server of the index: its cache key, and its entries or (kept) its cache record."""

    key: str
    entries: Sequence[IndexEntry] | None
    record: ServerRecord | None = None


def write_index_and_parts(
    sources: Sequence[IndexSource], index_path: Path, parts_in: Path | None, parts_out: Path
) -> None:
    """Write the index of `sources` to `index_path`, and their parts to `parts_out`.

    Raises:
        IndexBuildError: the index cannot be written, or a kept server's part can be
            neither read from `parts_in` nor made from its cached entries.
    """
    from .indexparts import decode_part, encode_part, part_of, read_parts, write_parts

    previous: Mapping[str, Any] = read_parts(parts_in) if parts_in is not None else {}
    parts = []
    encoded: dict[str, Any] = {}
    for source in sources:
        part = None
        entries = source.entries
        if entries is None:
            found = previous.get(source.key)
            if found is not None:
                try:
                    part = decode_part(found)
                    encoded[source.key] = found
                except ValueError:
                    part = None
            if part is None:
                entries = source.record.entries() if source.record is not None else None
                if entries is None:
                    raise IndexBuildError(
                        "the build cache is damaged (a server's index entries are unreadable); "
                        "remove the package's .mcp-codegen folder and build again"
                    )
        if part is None:
            assert entries is not None
            part = part_of(entries)
            encoded[source.key] = encode_part(part)
        parts.append(part)
    write_index(parts, index_path, generator_version=__version__)
    try:
        write_parts(parts_out, encoded)
    except OSError as exc:
        raise IndexBuildError(f"cannot write {parts_out}: {exc.strerror}") from exc


class IndexBuild:
    """The search index, built beside the rest of the staging: in a forked process if large.

    Writing thousands of files and formatting them leaves a core free most of the
    time; the index fills it. A small one is built in `wait()`, after the files: on
    a full disk the error is then the plain one of a file write (`File too large`),
    not sqlite's `disk I/O error`.
    """

    def __init__(
        self,
        sources: Sequence[IndexSource],
        index_path: Path,
        parts_in: Path | None,
        parts_out: Path,
        tool_count: int,
    ):
        self._process: multiprocessing.process.BaseProcess | None = None
        args = (sources, index_path, parts_in, parts_out)
        self._inline: tuple[Any, ...] | None = None
        if tool_count < PARALLEL_THRESHOLD or worker_count() < 2 or not hasattr(os, "fork"):
            self._inline = args
            return
        context = multiprocessing.get_context("fork")
        self._errors = context.SimpleQueue()
        self._process = context.Process(
            target=_index_child, args=(*args, self._errors), name="mcp-codegen-index"
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
        """End the index process if the staging failed before waiting for it."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join()


def _index_child(
    sources: Sequence[IndexSource],
    index_path: Path,
    parts_in: Path | None,
    parts_out: Path,
    errors: Any,
) -> None:
    try:
        write_index_and_parts(sources, index_path, parts_in, parts_out)
    except Exception as exc:  # reported by the parent, which raises it
        errors.put(str(exc) if isinstance(exc, IndexBuildError) else f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None
