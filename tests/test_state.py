"""The session's state directory: it outlives executions, timeouts and sandboxes.

Real gVisor and the demo CRM server (10,000 customers): a long loop is stopped
by its time limit, the next execution resumes from its checkpoint, and every
record is processed exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from codegen.sandbox import ExecutionResult, Executor
from codegen.sandbox.bundle import SANDBOX_USER, BundleOptions, build_bundle
from codegen.sandbox.state import KEPT_MARKER

TOTAL = 10_000

# The agent's loop: pages of 100 customers, a checkpoint every 500 records written
# atomically (temporary file + os.replace) with the ids processed so far, and a
# pause per page so that a 2 s limit stops the first run part-way.
LOOP = """
import json, os, time
from servers.crm import list_customers

state = os.environ["MCP_CODEGEN_STATE_DIR"]
checkpoint = os.path.join(state, "progress.json")
try:
    with open(checkpoint, encoding="utf-8") as file:
        progress = json.load(file)
except FileNotFoundError:
    progress = {"offset": 0, "processed": [], "runs": []}
progress["runs"].append(progress["offset"])
started = progress["offset"]

def save() -> None:
    temporary = checkpoint + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(progress, file)
    os.replace(temporary, checkpoint)

while progress["offset"] < 10_000:
    page = await list_customers(offset=progress["offset"], limit=100)
    for customer in page.customers:
        progress["processed"].append(customer.id)
    progress["offset"] += len(page.customers)
    time.sleep(0.02)
    if progress["offset"] % 500 == 0:
        save()
save()
{"started_at": started, "this_run": progress["offset"] - started}
"""


def execute(
    loop: asyncio.AbstractEventLoop, crm: dict[str, Path], code: str, state: Path, timeout: float
) -> ExecutionResult:
    """Run `code` once in a new executor (a new sandbox) keeping its state in `state`."""

    async def main() -> ExecutionResult:
        package, config = crm["package"], crm["config"]
        async with Executor(package, config=config, privacy=False, state_dir=state) as executor:
            # The CRM server starts on the first call: not inside the timed execution,
            # whose limit must stop the loop, not the server's start on a busy machine.
            warm = await executor.execute(
                "from servers.crm import list_customers\n(await list_customers(limit=1)).total"
            )
            assert warm.value == TOTAL, warm.error
            return await executor.execute(code, timeout=timeout)

    return loop.run_until_complete(main())


def test_an_interrupted_loop_resumes_in_a_new_sandbox_exactly_once(
    crm: dict[str, Path], loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = execute(loop, crm, LOOP, state, timeout=2.0)
    assert first.error is not None and first.error.type == "TimeoutError", first.error
    progress = json.loads((state / "progress.json").read_text(encoding="utf-8"))
    stopped_at = progress["offset"]
    assert 0 < stopped_at < TOTAL and stopped_at % 500 == 0
    assert len(progress["processed"]) == stopped_at
    # The state was copied out of the session's tmpfs into a directory of the host's user.
    assert (state / KEPT_MARKER).is_file() and state.stat().st_uid == os.getuid()

    # The first executor and its sandbox are gone; the state directory is not.
    second = execute(loop, crm, LOOP, state, timeout=30.0)
    assert second.error is None, second.error
    assert second.value == {"started_at": stopped_at, "this_run": TOTAL - stopped_at}
    final = json.loads((state / "progress.json").read_text(encoding="utf-8"))
    processed = final["processed"]
    assert len(processed) == TOTAL and len(set(processed)) == TOTAL  # no gap, no duplicate
    assert final["runs"] == [0, stopped_at]
    assert not (state / "progress.json.tmp").exists()


def test_session_state_survives_a_sandbox_crash_and_ends_with_the_session(
    crm: dict[str, Path], loop: asyncio.AbstractEventLoop
) -> None:
    write = "open('/state/note.txt', 'w').write('kept'); import os; os.getuid()"
    read = "open('/state/note.txt').read()"

    async def main() -> tuple[list[ExecutionResult], Path, ExecutionResult]:
        async with Executor(crm["package"], config=crm["config"], privacy=False) as executor:
            results = [await executor.execute(write)]
            # Kill the sandbox from outside (its runsc process); the next execution
            # runs in a new one.
            (sandbox,) = executor._live
            assert sandbox.worker.pid is not None
            os.kill(sandbox.worker.pid, signal.SIGKILL)
            while not sandbox.worker.dead:
                await asyncio.sleep(0.01)
            results.append(await executor.execute(read))
            assert sandbox not in executor._live
            state = executor.state_dir
            assert state is not None and (state / "note.txt").is_file()
            async with Executor(crm["package"], config=crm["config"], privacy=False) as other:
                elsewhere = await other.execute(read)
        return results, state, elsewhere

    (wrote, after_crash), state, elsewhere = loop.run_until_complete(main())
    assert wrote.error is None and wrote.value == SANDBOX_USER[0]
    assert after_crash.error is None and after_crash.value == "kept"
    assert elsewhere.error is not None and elsewhere.error.type == "FileNotFoundError"
    assert not state.exists()  # deleted with its session


def test_bundle_mounts_skills_read_only_and_state_read_write(tmp_path: Path) -> None:
    skills, state = tmp_path / "skills", tmp_path / "state"
    skills.mkdir()
    state.mkdir()
    options = BundleOptions(package_dir=None, skills_dir=skills, state_dir=state)
    layout = build_bundle(tmp_path / "bundle", options)
    spec = json.loads((tmp_path / "bundle" / "config.json").read_text(encoding="utf-8"))
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert mounts["/opt/mcp-codegen/skillpath/skills"]["options"] == ["rbind", "ro"]
    assert mounts["/state"]["options"] == ["rbind", "rw"]
    assert "/opt/mcp-codegen/skillpath" in layout.sys_path
    env = spec["process"]["env"]
    assert "MCP_CODEGEN_STATE_DIR=/state" in env
    assert "MCP_CODEGEN_SKILLS_DIR=/opt/mcp-codegen/skillpath/skills" in env
