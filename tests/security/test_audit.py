"""`serve --audit FILE --log-level info` under concurrent sessions (issue 15).

Two sessions of a real `serve` over HTTP each run 10 executions at once against
the demo CRM and mail servers (a customer's personal data read, and sent back
as an email address). The audit log must hold exactly one line per execution
and per tool call, each tied to its session and execution, and none of the
CRM's real names, emails or phone numbers; stderr shows the sessions and the
executions, one line each. `mcp-codegen audit FILE` then summarizes it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from mcp import Client

from codegen.cli import main

from .serving import crm_values, execute, package, start_serve, stop_serve

__all__ = ["package"]

CODE = """
from servers.crm import get_customer
from servers.mail import send_email
customer = await get_customer(customer_id="C%05d")
await send_email(to=customer.email, subject="audit", body="hello " + customer.name)
print(customer.name, customer.email)
"""


def test_audit_of_concurrent_sessions_has_every_line_and_no_personal_data(
    package: Path, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    served = start_serve(package, "--audit", str(audit), "--log-level", "info")
    try:

        async def session(client: Client, first: int) -> list[str]:
            gate = asyncio.Semaphore(5)  # under the 8 requests a session may have in flight

            async def one(index: int) -> str:
                async with gate:
                    text, error = await execute(client, CODE % index)
                    assert not error, text
                    return text

            return await asyncio.gather(*(one(first + i) for i in range(10)))

        async def scenario() -> list[str]:
            async with Client(served.url) as one, Client(served.url) as two:
                outputs = await asyncio.gather(session(one, 1), session(two, 101))
            return outputs[0] + outputs[1]

        outputs = asyncio.run(scenario())
        assert all("[NAME_" in text and "[EMAIL_" in text for text in outputs), outputs[0]
        assert len(served.mails()) == 20
    finally:
        stop_serve(served)
    stderr = served.process.stderr.read() if served.process.stderr else ""

    text = audit.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    executions = [r for r in records if r["event"] == "execution"]
    calls = [r for r in records if r["event"] == "tool_call"]
    assert len(executions) == 20 and len(calls) == 40 and len(records) == 60
    by_session = Counter(r["session"] for r in executions)
    assert sorted(by_session.values()) == [10, 10]
    assert all(r["outcome"] == "ok" and r["tool_calls"] == 2 for r in executions)
    assert all(r["origin"] == "serve-http" and r["cpu_seconds"] > 0 for r in executions)
    ids = {r["execution"]: r["session"] for r in executions}
    assert len(ids) == 20
    assert Counter((r["server"], r["tool"]) for r in calls) == {
        ("crm", "get_customer"): 20,
        ("mail", "send_email"): 20,
    }
    assert all(ids[r["execution"]] == r["session"] and r["outcome"] == "ok" for r in calls)
    assert all(r["pii_created"] >= 2 for r in calls if r["tool"] == "get_customer")
    assert all(r["pii_restored"] == 2 for r in calls if r["tool"] == "send_email")
    # Names, sizes and outcomes only: none of the CRM's 30,000 real values.
    leaked = [value for value in crm_values() if value in text]
    assert not leaked, leaked[:5]

    lines = stderr.splitlines()
    assert sum(" INFO session open " in line for line in lines) == 2, stderr[-3000:]
    assert sum(" INFO session close " in line for line in lines) == 2, stderr[-3000:]
    assert sum(" INFO execution " in line and "outcome=ok" in line for line in lines) == 20
    assert not [value for value in crm_values() if value in stderr]

    summary = CliRunner().invoke(main, ["audit", str(audit), "--json"])
    assert summary.exit_code == 0, summary.output
    document = json.loads(summary.output)
    assert document["executions"] == 20 and document["sessions"] == 2
    assert document["tool_calls_by_outcome"] == {"ok": 40}
    assert {tool["tool"]: tool["calls"] for tool in document["top_tools"]} == {
        "crm.get_customer": 20,
        "mail.send_email": 20,
    }
