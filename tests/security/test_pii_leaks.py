"""Finding 3 of issue 10: personal data must not come back changed, encoded, or in errors.

Session A gets three CRM customers (as placeholders), has real servers transform the
restored values (a suffix, upper case, hex, base64, gzip, an error message ...), and
then tries to read them back, decoding in the sandbox as an attacker would. The test
greps everything `serve` returned for the real values. The table of what is caught
and what leaks is the README's (section 7); a change either way fails here.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import re
from pathlib import Path

import pytest
from mcp import Client

from codegen.sandbox.bridge.privacy import PrivacyLimit, PrivacyPolicy, Tokenizer, parse_policy

from .serving import (
    ROOT,
    Served,
    crm_values,
    execute,
    json_line,
    package,
    served,
    start_serve,
    stop_serve,
)

__all__ = ["package", "served"]  # fixtures used here, imported from .serving

FILES = ROOT / ".demo" / "files"

# Each transformation is agent code: `v` is the placeholder it holds; the code returns
# what it could read back (decoding encoded data itself).
ATTACK = r"""
import base64, gzip, json
from mcp_demo._runtime import get_transport
from servers.crm import list_customers
from servers.everything import echo, gzip_file_as_resource
from servers.filesystem import list_allowed_directories, write_file
from servers.sqlite import read_query

page = await list_customers(limit=3)
c = page.customers
values = {"email": c[0].email, "phone": c[1].phone, "name": c[2].name}
root = (await list_allowed_directories()).content.split("\n")[-1].strip()
transport = get_transport()

async def sql(query):
    return (await read_query(query=query)).text

async def identity(v):
    return (await echo(message=v)).text

async def suffix(v):
    return (await echo(message=v + "_")).text

async def upper(v):
    return await sql(f"SELECT upper('{v}') AS x")

async def upper_suffix(v):
    return await sql(f"SELECT upper('{v}') || 'X' AS x")

async def inside_json(v):
    return (await echo(message=json.dumps({"note": v}))).text

async def hex_sql(v):
    found = await sql(f"SELECT hex('{v}') AS x")
    return bytes.fromhex(found.split("'")[3]).decode("utf-8", "replace")

async def base64_media(v):
    path = f"{root}/pii-leak-{len(v)}-{v[1:4]}.txt"
    await write_file(path=path, content=v)
    result = await transport.call_tool("filesystem", "read_media_file", {"path": path})
    return " ".join(decoded(result))

def decoded(value):
    # Every base64 string of a result (blocks and structured content), decoded.
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("data", "blob") and isinstance(item, str):
                yield base64.b64decode(item).decode("utf-8", "replace")
            else:
                yield from decoded(item)
    elif isinstance(value, list):
        for item in value:
            yield from decoded(item)
    elif isinstance(value, str):
        yield value

async def gzip_resource(v):
    result = await gzip_file_as_resource(data="data:text/plain," + v, name="x.gz", outputType="resource")
    wire = [block.model_dump() for block in result.content]
    return " ".join(
        gzip.decompress(base64.b64decode(block["resource"]["blob"])).decode()
        if isinstance(block.get("resource"), dict) and "blob" in block["resource"]
        else str(block)
        for block in wire
    )

async def digits_only(v):
    return await sql(f"SELECT replace(replace(replace('{v}', '-', ''), '+', ''), ' ', '') AS x")

async def dots_removed(v):
    return await sql(f"SELECT replace('{v}', '.', '') AS x")

async def sql_error(v):
    return await sql(f'SELECT * FROM "{v}"')

async def validation_error(v):
    try:
        return str(await transport.call_tool(
            "everything", "get-resource-reference", {"resourceType": v + "_"}
        ))
    except Exception as exc:
        return str(exc)

async def bridge_type_error(v):
    # The bridge validates before it restores: its error can only quote the placeholder.
    try:
        return str(await transport.call_tool("everything", "echo", {"message": [v, 1]}))
    except Exception as exc:
        return str(exc)

async def split_fields(v):
    return await sql(f"SELECT substr('{v}', 1, 6) AS a, substr('{v}', 7) AS b")

async def char_by_char(v):
    found = await sql(f"SELECT " + ", ".join(f"substr('{v}', {i}, 1) AS c{i}" for i in range(1, 40)))
    return "".join(part.split("'")[0] for part in found.split(": '")[1:])

async def char_by_char_reversed(v):
    return (await char_by_char(v))[::-1]

attacks = [identity, suffix, upper, upper_suffix, inside_json, hex_sql, base64_media,
           gzip_resource, digits_only, dots_removed, sql_error, validation_error, bridge_type_error,
           split_fields, char_by_char, char_by_char_reversed]
out = {}
for attack in attacks:
    for kind, v in values.items():
        try:
            out[f"{attack.__name__}|{kind}"] = str(await attack(v))[:400]
        except Exception as exc:
            out[f"{attack.__name__}|{kind}"] = f"error: {exc}"[:400]
print(json.dumps(out))
"""

# What `serve` lets through today, per transformation and kind (README, section 7).
EXPECTED_LEAKS = {
    # Parts of a value, each shown on its own: no part is a value the host knows.
    ("split_fields", "email"),
    ("split_fields", "phone"),
    ("split_fields", "name"),
    # Rebuilt in the sandbox and then disguised (reversed) before it is printed.
    ("char_by_char_reversed", "email"),
    ("char_by_char_reversed", "phone"),
    ("char_by_char_reversed", "name"),
}


def _normal(text: str) -> str:
    return "".join(char for char in text.lower() if char.isalnum())


def leaked(real: str, kind: str, shown: str) -> bool:
    """Whether `shown` gives away `real`, a part of it (a word, or a phone's last seven
    digits), or it reversed."""
    text = _normal(shown)
    whole = _normal(real)
    if whole in text or whole[::-1] in text:
        return True
    if kind == "phone":
        return whole[-7:] in text
    words = [word for word in re.split(r"[\W_]+", real.lower()) if len(word) >= 4]
    return any(word in text for word in words if word != "example")


@pytest.fixture(scope="module")
def real_values() -> list[str]:
    return crm_values()


def test_leak_table(served: Served, real_values: list[str]) -> None:
    by_kind = {
        "email": real_values[3 * 0 + 1],
        "phone": real_values[3 * 1 + 2],
        "name": real_values[6],
    }

    async def scenario() -> tuple[str, str]:
        async with Client(served.url) as first, Client(served.url) as second:
            text, error = await execute(first, ATTACK, timeout=120)
            assert not error, text
            # The other session holds no placeholder of the first: nothing is restored.
            other, _ = await execute(
                second,
                "from servers.everything import echo\n(await echo(message='[EMAIL_1] [NAME_1]')).text",
            )
            return text, other

    text, other = asyncio.run(scenario())
    for path in FILES.glob("pii-leak-*"):
        path.unlink()
    assert "value: 'Echo: [EMAIL_1] [NAME_1]'" in other, other
    results = json_line(text)
    assert isinstance(results, dict), text
    table = {}
    for key, shown in results.items():
        attack, kind = key.split("|")
        table[(attack, kind)] = leaked(by_kind[kind], kind, shown)
        if not table[(attack, kind)]:
            assert "error: " not in shown or attack.endswith("error"), (key, shown)
    found = {cell for cell, leak in table.items() if leak}
    assert found == EXPECTED_LEAKS, json.dumps(results, indent=1)
    # Whatever leaked, it leaked in parts or disguised: no real value of the CRM came back.
    lowered = (text + other).lower()
    whole = [value for value in real_values if value.lower() in lowered]
    assert not whole, whole
    assert "[email_" in lowered and "[name_" in lowered


def test_no_real_value_in_anything_a_session_reads(served: Served, real_values: list[str]) -> None:
    code = """
from servers.crm import get_customer, list_customers
from servers.everything import echo
page = await list_customers(limit=100)
for c in page.customers[:20]:
    print((await echo(message=f"{c.name} <{c.email}> {c.phone}")).text)
detail = await get_customer(customer_id=page.customers[0].id)
print(detail.model_dump_json())
"""

    async def scenario() -> str:
        async with Client(served.url) as client:
            text, error = await execute(client, code)
            assert not error, text
            return text

    text = asyncio.run(scenario()).lower()
    assert "echo: [name_" in text and "[email_" in text
    assert not [value for value in real_values if value.lower() in text]


# --- the parts, without a server -------------------------------------------------------


def _result(*blocks: dict[str, object]) -> dict[str, object]:
    return {"content": list(blocks), "isError": False}


def test_known_values_are_found_however_they_come_back() -> None:
    tokens = Tokenizer()
    record = {
        "name": "Lena Young",
        "email": "lena.young.1@belcor.example",
        "phone": "+1-555-123-4567",
    }
    seen = tokens.redact_result("crm", "get", {"content": [], "structuredContent": record})
    assert seen["structuredContent"] == {
        "name": "[NAME_1]",
        "email": "[EMAIL_1]",
        "phone": "[PHONE_1]",
    }
    email = record["email"]
    cases = {
        f"Echo: {email}_": "Echo: [EMAIL_1]_",
        email.upper() + "X": "[EMAIL_1]X",
        "hi Lena Young!": "hi [NAME_1]!",
        "call 5551234567": "call [PHONE_1]",
        "call (555) 123 4567": "call ([PHONE_1]",
        "lena.young.1%40belcor.example": "[EMAIL_1]",
    }
    for given, expected in cases.items():
        assert tokens.redact_text(given, "everything", "echo") == expected
    hexed = tokens.redact_text(email.encode().hex().upper(), "sqlite", "read_query")
    assert bytes.fromhex(hexed) == b"[EMAIL_1]"
    b64 = tokens.redact_text("data " + base64.b64encode(email.encode()).decode(), "x", "y")
    assert base64.b64decode(b64.split()[1]) == b"[EMAIL_1]"


def test_blobs_are_scanned_decoded_and_binary_is_withheld_by_default() -> None:
    tokens = Tokenizer()
    tokens.redact_text("ada@example.org")
    zipped = base64.b64encode(gzip.compress(b"to ada@example.org")).decode()
    resource = {"type": "resource", "resource": {"uri": "x://ada@example.org", "blob": zipped}}
    seen = tokens.redact_result("everything", "gzip", _result(resource))["content"][0]["resource"]
    assert seen["uri"] == "x://[EMAIL_1]"
    assert gzip.decompress(base64.b64decode(seen["blob"])) == b"to [EMAIL_1]"
    image = {
        "type": "image",
        "data": base64.b64encode(b"\x89PNG\r\n\x00\x01").decode(),
        "mimeType": "image/png",
    }
    withheld = tokens.redact_result("everything", "img", _result(image))["content"][0]
    assert withheld["type"] == "text" and "withheld" in withheld["text"]
    passing = Tokenizer(parse_policy({"blobs": "pass"}))
    assert passing.redact_result("everything", "img", _result(image))["content"][0] == image
    # A known value inside binary data is never passed, whatever the policy.
    passing.redact_text("ada@example.org")
    inside = {"type": "image", "data": base64.b64encode(b"\x00\x01ada@example.org\x00").decode()}
    assert passing.redact_result("e", "i", _result(inside))["content"][0]["type"] == "text"
    # A gzip bomb cannot be scanned, so it is not passed.
    bomb = base64.b64encode(gzip.compress(b"\x00" * (20 * 1024 * 1024))).decode()
    blob = {"type": "resource", "resource": {"uri": "x://b", "blob": bomb}}
    assert "blob" not in passing.redact_result("e", "b", _result(blob))["content"][0]["resource"]


def test_servers_with_detectors_off_still_hide_known_values() -> None:
    tokens = Tokenizer(PrivacyPolicy(servers={"everything": False}))
    tokens.redact_text("ada@example.org")
    echoed = tokens.redact_result(
        "everything", "echo", _result({"type": "text", "text": "ada@example.org"})
    )
    assert echoed["content"][0]["text"] == "[EMAIL_1]"
    other = tokens.redact_result(
        "everything", "echo", _result({"type": "text", "text": "bo@example.org"})
    )
    assert other["content"][0]["text"] == "bo@example.org"


def test_placeholders_per_session_are_capped() -> None:
    tokens = Tokenizer(max_placeholders=5)
    text = " ".join(f"user{i}@example.org" for i in range(5))
    assert tokens.redact_text(text).count("[EMAIL_") == 5
    with pytest.raises(PrivacyLimit, match="limit"):
        tokens.redact_text("one.more@example.org")
    assert tokens.redact_text("user3@example.org") == "[EMAIL_4]"  # known values still work


def test_serve_applies_the_configs_privacy_section(package: Path, tmp_path: Path) -> None:
    config = json.loads((ROOT / "demo/mcp.json").read_text(encoding="utf-8"))
    for entry in config["mcpServers"].values():
        # Paths in a config are relative to its file: this copy lives elsewhere.
        if "cwd" in entry:
            entry["cwd"] = os.path.normpath(ROOT / "demo" / entry["cwd"])
        if "/" in entry.get("command", "") and not entry["command"].startswith("/"):
            entry["command"] = os.path.normpath(ROOT / "demo" / entry["command"])
    config["privacy"] = {
        "servers": {"crm": {"tools": {"list_customers": {"fields": {"phone": False}}}}}
    }
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    running = start_serve(package, config=path)
    code = "from servers.crm import list_customers\nc = (await list_customers(limit=1)).customers[0]\nprint(c.email, c.phone)"
    try:

        async def scenario() -> str:
            async with Client(running.url) as client:
                return (await execute(client, code))[0]

        text = asyncio.run(scenario())
    finally:
        stop_serve(running)
    email, phone = crm_values()[1:3]
    assert phone in text, text  # the config turned the phone field off for this tool
    assert email not in text and "[EMAIL_1]" in text
