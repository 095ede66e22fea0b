"""The search index of a build, from each server's part: kept from the last build, or made.

A server the build kept whole (`RenderedServer.kept`) has its part in the parts
file of the previous build (`codegen.indexstore`), under its cache key; the
others' parts are made from their index entries. The stored parts, less those of
the servers that changed, and the new ones are laid end to end
(`codegen.postings.combine`); the index is written from them, and so is the new
parts file. For a large package this runs in a forked process, beside the
writing and formatting of the rest.
"""

from __future__ import annotations

import contextlib
import pickle
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .index import IndexBuildError, IndexEntry, write_index

if TYPE_CHECKING:
    from .cache import ServerRecord
    from .indexparts import IndexPart
    from .indexstore import StoredParts
    from .postings import Merged

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
    stored: StoredParts | None = None,
    previous_index: Path | None = None,
    prepared: sqlite3.Connection | None = None,
) -> None:
    """Write the index of `sources` to `index_path`, and their parts to `parts_out`.

    `stored` is the parts file `parts_in` as already read (`read_stored`), if it
    was; `previous_index` is the index written with it, if it is intact;
    `prepared` is `codegen.index.prepare_index(previous_index)`, if already made.

    Raises:
        IndexBuildError: the index cannot be written, or a kept server's part can be
            neither read from `parts_in` nor made from its cached entries.
    """
    from .indexparts import part_of
    from .indexstore import read_stored
    from .postings import combine, merge

    if stored is None:
        stored = read_stored(parts_in)
    kept = {source.key for source in sources if source.entries is None} & set(stored.keys)
    keep = [key in kept for key in stored.keys]
    parts = [part for part, keeping in zip(stored.parts, keep, strict=True) if keeping]
    keys = [key for key, keeping in zip(stored.keys, keep, strict=True) if keeping]
    others = []
    for source in sources:
        if source.key in kept:
            continue
        entries = source.entries
        if entries is None:
            entries = source.record.entries() if source.record is not None else None
            if entries is None:
                raise IndexBuildError(
                    "the build cache is damaged (a server's index entries are unreadable); "
                    "remove the package's .mcp-codegen folder and build again"
                )
        others.append(part_of(entries))
        keys.append(source.key)
    merged = combine(stored.merged, keep, merge(others))
    parts += others
    # The parts file is written beside the index (file writes and sqlite release the GIL).
    failed: list[OSError] = []
    writing = threading.Thread(target=_write_parts, args=(parts_out, keys, parts, merged, failed))
    writing.start()
    try:
        write_index(
            parts,
            index_path,
            generator_version=__version__,
            previous=previous_index,
            merged=merged,
            prepared=prepared,
        )
    finally:
        writing.join()
    if failed:
        raise IndexBuildError(f"cannot write {parts_out}: {failed[0].strerror}")


def _write_parts(
    path: Path,
    keys: Sequence[str],
    parts: Sequence[IndexPart],
    merged: Merged,
    failed: list[OSError],
) -> None:
    from .indexstore import write_stored

    try:
        write_stored(path, keys, parts, merged)
    except OSError as exc:
        failed.append(exc)


class IndexBuild:
    """The search index, built beside the rest of the build: in another process if large.

    A build of a large package starts the index process at once (`prefetch`,
    `codegen.indexchild`): it reads the previous build's parts of every server
    that may be kept, and imports numpy, while this process compares the snapshot
    and renders. `start` is told which servers were kept whole, `finish` hands over
    the others and where to write; `wait` waits. Writing thousands of files and
    formatting them leaves a core free most of the time; the index fills it. A
    small index is built in `wait()`, after the files: on a full disk the error is
    then the plain one of a file write (`File too large`), not sqlite's `disk I/O
    error`.
    """

    def __init__(self, parts_in: Path | None, previous_index: Path | None = None):
        self._parts_in = parts_in
        self.previous_index = previous_index
        """The previous output's index, if intact: the kept servers' rows are copied from it."""
        self._kept: list[IndexSource] = []
        self._records: dict[str, ServerRecord | None] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._prefetched = False
        self._sending: threading.Thread | None = None
        self._inline: tuple[Any, ...] | None = None
        self._stderr: Any = None

    def spawn(self, tool_count: int) -> None:
        """Start the index process now if the index is large (it imports while the build reads)."""
        from .toolmodule import PARALLEL_THRESHOLD, worker_count

        if self._process is not None or tool_count < PARALLEL_THRESHOLD or worker_count() < 2:
            return
        # Isolated (-I): neither the working directory nor PYTHONPATH can put another
        # `codegen` package first; this one's parent directory is put there explicitly.
        root = str(Path(__file__).resolve().parent.parent)
        code = (
            f"import sys; sys.path.insert(0, {root!r}); from codegen.indexchild import main; main()"
        )
        # Its stderr goes to a file, not a pipe: a pipe nobody reads could fill and stall it.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `stop`)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
            )
        except OSError:  # no interpreter to start: the index is built here, after the files
            self._process = None
            self._stderr.close()
            self._stderr = None

    def prefetch(self, candidates: Sequence[IndexSource], tool_count: int) -> None:
        """Have the index process read the previous parts of `candidates` (servers the build
        may keep whole), starting it if the index is large."""
        self.spawn(tool_count)
        if self._process is None or self._prefetched:
            return
        self._prefetched = True
        self._records = {source.key: source.record for source in candidates}
        with contextlib.suppress(OSError):  # the process ended; `wait` says why
            self._send((self._parts_in, list(self._records), self.previous_index))

    def _send(self, message: Any) -> None:
        assert self._process is not None and self._process.stdin is not None
        pickle.dump(message, self._process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self._process.stdin.flush()

    def start(self, kept: Sequence[IndexSource], tool_count: int) -> None:
        """Say which servers were kept whole from the previous build (`entries` None)."""
        self._kept = list(kept)
        if not self._prefetched:
            self.prefetch(self._kept, tool_count)

    def finish(
        self, fresh: Sequence[IndexSource], index_path: Path, parts_out: Path, tool_count: int
    ) -> None:
        """Add the servers rendered afresh (`fresh`), and say where the index and parts go."""
        self.spawn(tool_count)
        if self._process is None:
            self._inline = (
                [*self._kept, *fresh],
                index_path,
                self._parts_in,
                parts_out,
                None,
                self.previous_index,
            )
            return
        if not self._prefetched:
            self.prefetch([], tool_count)
        kept = [source.key for source in self._kept]
        message = (kept, list(fresh), index_path, parts_out, self.previous_index)
        # In a thread: the process may still be reading the parts, and a large message
        # (a first build's every entry) would fill the pipe and block until it has.
        self._sending = threading.Thread(target=self._send_quietly, args=(message,))
        self._sending.start()

    def _send_quietly(self, message: Any) -> None:
        with contextlib.suppress(OSError):  # the process ended; `wait` says why
            self._send(message)

    def wait(self) -> None:
        """Wait for the index to be written.

        Raises:
            IndexBuildError: it could not be.
        """
        inline, self._inline = self._inline, None
        if inline is not None:
            write_index_and_parts(*inline)
        process = self._process
        if process is None:
            return
        assert process.stdout is not None
        if self._sending is not None:
            self._sending.join()
        try:
            while True:
                kind, value = pickle.load(process.stdout)
                if kind == "need":
                    self._send({key: self._entries(key) for key in value})
                elif kind == "error":
                    raise IndexBuildError(value)
                else:
                    break
        except (EOFError, OSError, pickle.UnpicklingError):
            process.wait()
            said = ""
            if self._stderr is not None:
                self._stderr.seek(0)
                said = self._stderr.read().decode("utf-8", "replace")
            raise IndexBuildError(
                said.strip().splitlines()[-1] if said.strip() else "the index process ended"
            ) from None
        finally:
            self.stop()

    def _entries(self, key: str) -> list[IndexEntry]:
        record = self._records.get(key)
        entries = record.entries() if record is not None else None
        if entries is None:
            raise IndexBuildError(
                "the build cache is damaged (a server's index entries are unreadable); "
                "remove the package's .mcp-codegen folder and build again"
            )
        return entries

    def stop(self) -> None:
        """End the index process (if the build ended before it did), and close its pipes."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, self._stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._sending is not None:
            self._sending.join()
