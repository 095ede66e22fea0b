"""serve's stdin and stdout on the event loop (codegen/serve/stdio.py), in a real process
whose stdin and stdout are pipes, as an MCP client starts serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import asyncio, os, sys
import codegen.serve.stdio as stdio

stdio.MAX_LINE_BYTES = 1000

async def main():
    async with stdio.event_loop_stdio() as streams:
        assert streams is not None, "pipes: the event loop reads them"
        reader, writer = streams
        os.write(1, b"stray\\n")  # a handler or a child writing to fd 1: not the client's
        assert os.read(0, 10) == b""  # nor reads its messages
        lines = [line async for line in reader]
        for line in lines:
            await writer.write("got " + line.strip() + "\\n")
            await writer.flush()
    os.write(1, b"restored\\n")

asyncio.run(main())
"""


def test_messages_pass_on_the_event_loop_and_nothing_else_reaches_the_client() -> None:
    sent = "first\n" + "x" * 5000 + "\nsecond\n"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        input=sent,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    received = done.stdout.splitlines()
    # The line over the limit is dropped whole (an empty line: the SDK's parse error).
    assert received[0] == "got first" and received[-2:] == ["got second", "restored"]
    assert all(not line.startswith("got x") for line in received)
    assert "stray" in done.stderr and "stray" not in done.stdout


def test_a_terminal_or_a_file_keeps_the_sdks_own_streams(tmp_path: Path) -> None:
    script = (
        "import asyncio, codegen.serve.stdio as s\n"
        "async def main():\n"
        "    async with s.event_loop_stdio() as streams:\n"
        "        print(streams)\n"
        "asyncio.run(main())\n"
    )
    source = tmp_path / "in.txt"
    source.write_text("{}\n", encoding="utf-8")
    with source.open(encoding="utf-8") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", script],
            stdin=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
