"""The index process: `python -m codegen.indexchild`, driven by `codegen.indexbuild`.

A fresh interpreter, not a fork: after a fork, every page of the build's large
heap that either process touches is copied (measured at 10,000 tools: the
parent's snapshot digest took 0.6 s instead of 0.15 s). It talks pickles over
its standard input and output:

1. it reads `(parts_in, candidates, previous_index)`, reads the previous build's
   parts file (`codegen.indexstore`; `candidates`, the keys of servers that may be
   kept, say whether that is worth it) and starts the new index with the rows of
   the previous one (`codegen.index.prepare_index`);
2. it reads `(kept, fresh, index_path, parts_out, previous_index)`: the keys of the
   servers kept whole, the other servers' `IndexSource`s, and the previous index to
   copy the kept servers' rows from; if a kept server's part could not
   be read it writes `("need", keys)` and reads their entries `{key: entries}`;
3. it writes the index and the parts file, then `("done", None)`, or
   `("error", message)` if it could not.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import sys
import types
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["main"]


def _send(stream: BinaryIO, message: Any) -> None:
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def serve(incoming: BinaryIO, outgoing: BinaryIO) -> None:
    """Run the protocol above over `incoming` and `outgoing`."""
    import sqlite3

    from .index import IndexBuildError, prepare_index
    from .indexbuild import IndexSource, write_index_and_parts
    from .indexstore import empty_stored, read_stored

    parts_in, candidates, previous = pickle.load(incoming)
    # While the build renders: the parts, already laid end to end as the last build
    # left them, and the index with the last one's tools.
    stored = read_stored(parts_in) if candidates else empty_stored()
    prepared = None
    if candidates and previous is not None:
        with contextlib.suppress(sqlite3.Error):  # made again after the parts come
            prepared = prepare_index(previous)
    kept, fresh, index_path, parts_out, previous_index = pickle.load(incoming)
    if prepared is not None and previous_index != previous:
        prepared.close()
        prepared = None
    have = set(stored.keys)
    missing = [key for key in kept if key not in have]
    entries: dict[str, Any] = {}
    if missing:
        _send(outgoing, ("need", missing))
        entries = pickle.load(incoming)
    sources = [IndexSource(key, entries.get(key)) for key in kept]
    try:
        write_index_and_parts(
            [*sources, *fresh], index_path, parts_in, parts_out, stored, previous_index, prepared
        )
    except IndexBuildError as exc:
        _send(outgoing, ("error", str(exc)))
        return
    _send(outgoing, ("done", None))


def _without_runtime_init() -> None:
    """Load `codegen.runtime`'s modules without its `__init__`, which imports pydantic.

    The index needs the runtime's tokenizer (`codegen.runtime.search`, standard
    library only), not its models: this saves the process a tenth of a second.
    """
    if "codegen.runtime" in sys.modules:
        return
    package = types.ModuleType("codegen.runtime")
    package.__path__ = [str(Path(__file__).resolve().parent / "runtime")]
    sys.modules["codegen.runtime"] = package


def main() -> None:
    """Serve the parent over this process's standard input and output."""
    # A short-lived process of a million small acyclic objects: cyclic collection
    # would only walk them (see `codegen.build._collector_paused`).
    gc.disable()
    _without_runtime_init()
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
