"""`serve` applies the sandbox policy: real serve over HTTP, the SDK's client, real gVisor.

Its default is `check_code: block`: a model's mistake comes back as the result,
with the line and the right signature, before any tool is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from tests.security.serving import Served, execute, package, start_serve, stop_serve

__all__ = ["package"]


@pytest.fixture(scope="module")
def served(package: Path) -> Iterator[Served]:
    """`serve` with the demo config and its default policy, plus a CPU quota from the flags."""
    running = start_serve(package, "--cpu", "1.5", "--output-kb", "50")
    try:
        yield running
    finally:
        stop_serve(running)


def test_a_certain_mistake_comes_back_before_any_call(served: Served) -> None:
    code = (
        "from servers.mail import send_email\n"
        "await send_email(to='a@example.org', subject='hello', body='first')\n"
        "await send_email(to='b@example.org', subjct='typo', body='second')\n"
    )
    good = "from servers.crm import search_customers\n(await search_customers(query='a', limit='2')).customers[0].id"

    async def scenario() -> tuple[tuple[str, bool], tuple[str, bool]]:
        async with Client(served.url) as client:
            return await execute(client, code), await execute(client, good)

    (blocked, error), (ran, failed) = asyncio.run(scenario())
    assert error, blocked
    assert "CheckError: the code was not run: the check found 2 errors" in blocked
    assert "line 3: " in blocked and "`subjct`" in blocked
    assert (
        "servers.mail.send_email(*, body: str, subject: str, to: str) -> SendEmailOutput" in blocked
    )
    assert "tool calls: none" in blocked
    assert served.mails() == []
    assert not failed, ran
    assert "warnings (code check):\nline 2: " in ran and "[invalid-argument-type]" in ran
    assert "tool calls: 1 (crm.search_customers)" in ran
