"""`codegen.pyparse.parse` from many threads at once (CPython 3.11's AST depth counter is shared)."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from codegen.pyparse import parse

SOURCE = "\n".join(
    f"x{i} = [(a, b) for a in range({i}) if a and (b := f(a, {i}))]" for i in range(60)
)


class _Cycle:
    """Garbage only the cyclic collector frees; its finalizer lets another thread run."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        time.sleep(0)


@pytest.fixture
def eager_collector() -> Iterator[None]:
    """The collector runs every few allocations, as it may in a busy `serve`."""
    threshold = gc.get_threshold()
    gc.set_threshold(50, 1, 1)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.collect()


def _parse_in_threads(parser: Callable[[str], object], threads: int = 6) -> list[BaseException]:
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(60):
                _Cycle()
                parser(SOURCE)
        except SystemError as exc:  # "AST constructor recursion depth mismatch"
            failures.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return failures


def test_parses_in_many_threads_at_once_do_not_mix(eager_collector: None) -> None:
    assert _parse_in_threads(parse) == []
