"""`ast.parse` that is safe to call from several threads at once.

CPython 3.11 keeps the depth counter of its AST-to-object conversion in state
shared by every thread of the interpreter. The conversion allocates, an
allocation can start the cyclic collector, and a finalizer it runs can let
another thread take the interpreter and parse as well: both counters then mix
and the parse fails with `SystemError: AST constructor recursion depth mismatch`
(python/cpython gh-106905 and its reports). `serve` parses the code of many
sessions in worker threads at once (`CpuBudget`), and one such failure broke a
session's `execute_code` in the 50-session benchmark. Parses are short (the
sources are bounded before they get here), so one lock costs nothing that shows.
"""

from __future__ import annotations

import ast
import threading

__all__ = ["parse"]

_LOCK = threading.Lock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """`ast.parse(source, filename)`, one thread at a time.

    Raises:
        SyntaxError, ValueError, RecursionError, MemoryError: as `ast.parse` does.
    """
    with _LOCK:
        return ast.parse(source, filename)
