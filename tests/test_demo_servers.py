"""The demo's CRM, mail and document servers, called from agent code in the real gVisor sandbox
through the golden package (real servers started from `demo/mcp.json`)."""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from codegen.sandbox import Executor, Limits
from codegen.sandbox.result import ExecutionResult
from tests.conftest import DEMO_CONFIG, GOLDEN, ROOT

SERVERS = ROOT / "demo" / "servers"


def load(name: str) -> ModuleType:
    """A demo server's module, imported on the host to compute what the sandbox should see."""
    spec = importlib.util.spec_from_file_location(f"demo_{name}", SERVERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the module's annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mail_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the mail server appends what it receives ($MAIL_LOG_PATH in demo/mcp.json)."""
    path = tmp_path_factory.mktemp("mail") / "sent.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAIL_LOG_PATH", str(path))
        yield path


@pytest.fixture(scope="module")
def run(mail_log: Path) -> Iterator[Any]:
    """`run(code)` executes in one sandbox whose calls reach the real demo servers."""
    loop = asyncio.new_event_loop()
    executor = Executor(GOLDEN / "mcp_demo", config=DEMO_CONFIG, limits=Limits(timeout=40))
    loop.run_until_complete(executor.start())

    def execute(code: str) -> ExecutionResult:
        result = loop.run_until_complete(executor.execute(code))
        assert result.error is None, result.error
        return result

    yield execute
    loop.run_until_complete(executor.aclose())
    loop.close()


STALE = """
import asyncio, datetime
from servers.crm import list_customers, today

now = datetime.date.fromisoformat((await today()).result)
cutoff = (now - datetime.timedelta(days=90)).isoformat()
first = await list_customers(limit=100)
pages = [first] + await asyncio.gather(
    *(list_customers(offset=offset, limit=100) for offset in range(100, first.total, 100))
)
customers = [customer for page in pages for customer in page.customers]
stale = [customer for customer in customers if customer.last_contacted < cutoff]
print(len(customers), "customers")
[customer.id for customer in stale]
"""


def test_crm_stale_count_is_what_the_code_computes(run: Any) -> None:
    crm = load("crm")
    cutoff = (crm.TODAY - datetime.timedelta(days=90)).isoformat()
    expected = sorted(c.id for c in crm.DB.values() if c.last_contacted < cutoff)
    result = run(STALE)
    assert result.stdout == "10000 customers\n"
    assert sorted(result.value) == expected
    assert len(expected) == crm.STALE_COUNT == 250
    assert len(result.calls) == 101 and all(call.ok for call in result.calls)


def test_mail_server_records_the_real_addresses(run: Any, mail_log: Path) -> None:
    code = """
from servers.crm import search_customers
from servers.mail import count_sent, send_email

found = await search_customers(query="Lisbon", limit=3)
for customer in found.customers:
    await send_email(to=customer.email, subject="Hello", body=f"Dear {customer.name}, hi.")
[(await count_sent()).result, [customer.email for customer in found.customers]]
"""
    fields = ("name", "email", "company", "city")
    customers = load("crm").DB.values()
    lisbon = [c for c in customers if any("lisbon" in getattr(c, f).lower() for f in fields)][:3]
    count, shown = run(code).value
    assert count >= 3 and len(shown) == 3
    # What the server received are the real addresses, whatever the sandbox was shown of them.
    sent = [json.loads(line) for line in mail_log.read_text(encoding="utf-8").splitlines()]
    assert [message["to"] for message in sent[-3:]] == [customer.email for customer in lisbon]
    assert [message["body"] for message in sent[-3:]] == [
        f"Dear {customer.name}, hi." for customer in lisbon
    ]


def test_document_moves_from_the_store_to_the_crm_without_reaching_the_output(run: Any) -> None:
    text = load("docs").DOCUMENTS["D001"].text
    code = """
from servers.crm import add_note, get_customer
from servers.docs import get_document

document = await get_document(doc_id="D001")
receipt = await add_note(customer_id="C00042", text=document.text)
customer = await get_customer(customer_id="C00042")
[receipt.chars, customer.note_count, customer.notes[-1].text == document.text]
"""
    result = run(code)
    assert 50_000 < len(text) < 100_000
    assert result.value == [len(text), 1, True]
    assert result.stdout == ""
    document_call = result.calls[0]
    assert (document_call.server, document_call.tool) == ("docs", "get_document")
    assert document_call.bytes_out > len(text) > 100 * len(result.model_dump_json())


def test_pii_never_reaches_the_agent_but_the_mail_server_gets_real_addresses(
    mail_log: Path,
) -> None:
    """Issue 6's scenario: the stale customers of the 10,000-record CRM are emailed from code."""
    code = STALE.replace(
        "[customer.id for customer in stale]",
        """from servers.mail import send_email
for customer in stale:
    await send_email(to=customer.email, subject="We miss you",
                     body=f"Dear {customer.name}, it has been a while. Call us at {customer.phone}?")
print("sample:", stale[0].name, stale[0].email, stale[0].phone)
len(stale)""",
    )
    crm = load("crm")
    customers = list(crm.DB.values())
    cutoff = (crm.TODAY - datetime.timedelta(days=90)).isoformat()
    stale = [customer for customer in customers if customer.last_contacted < cutoff]
    before = mail_log.read_text(encoding="utf-8").splitlines() if mail_log.exists() else []

    async def scenario() -> ExecutionResult:
        async with Executor(
            GOLDEN / "mcp_demo", config=DEMO_CONFIG, limits=Limits(timeout=60)
        ) as ex:
            return await ex.execute(code)

    result = asyncio.run(scenario())
    assert result.error is None, result.error
    assert result.value == len(stale) == 250
    assert (
        "sample: [NAME_" in result.stdout
        and "[EMAIL_" in result.stdout
        and "[PHONE_" in result.stdout
    )
    # Everything that goes back to the client: output, value, error, the call log.
    returned = result.model_dump_json()
    personal = [value for c in customers for value in (c.email, c.phone, c.name)]
    leaked = [value for value in personal if value in returned]
    assert leaked == []
    # The mail server received the real values, one message per stale customer.
    sent = [
        json.loads(line)
        for line in mail_log.read_text(encoding="utf-8").splitlines()[len(before) :]
    ]
    assert sorted(message["to"] for message in sent) == sorted(customer.email for customer in stale)
    by_address = {customer.email: customer for customer in stale}
    for message in sent:
        customer = by_address[message["to"]]
        assert customer.name in message["body"] and customer.phone in message["body"]
