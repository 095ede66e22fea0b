"""The per-session host CPU budget (sandbox.bridge.limits.CpuBudget): where work runs and
what it is charged, inline on the event loop or in a worker thread."""

from __future__ import annotations

import asyncio
import threading
import time

from codegen.sandbox.bridge.limits import CpuBudget


def _busy(seconds: float) -> int:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    return threading.get_ident()


def test_small_work_runs_inline_and_is_still_charged() -> None:
    async def main() -> tuple[int, int, int, CpuBudget]:
        budget = CpuBudget()
        loop_thread = threading.get_ident()
        inline = await budget.run(_busy, 0.005, inline=True)
        threaded = await budget.run(_busy, 0.005)
        return loop_thread, inline, threaded, budget

    loop_thread, inline, threaded, budget = asyncio.run(main())
    assert inline == loop_thread
    assert threaded != loop_thread
    assert budget.spent >= 0.009


def test_an_overdrawn_session_waits_even_for_small_work() -> None:
    async def main() -> tuple[int, int, CpuBudget]:
        budget = CpuBudget(rate=0.1, burst=0.001)
        await budget.run(_busy, 0.02, inline=True)  # overdraws the bucket
        return threading.get_ident(), await budget.run(_busy, 0.0, inline=True), budget

    loop_thread, second, budget = asyncio.run(main())
    assert second != loop_thread  # paced, as any other work of the session
    assert budget.waited > 0.005
