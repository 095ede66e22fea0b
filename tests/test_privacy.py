"""PII tokenization: what each detector finds, what it leaves, and that real values go back out."""

from __future__ import annotations

import json

import pytest

from codegen.runtime.errors import ConfigError
from codegen.sandbox.bridge.privacy import Tokenizer, parse_policy


def text_result(text: str) -> dict[str, object]:
    return {"content": [{"type": "text", "text": text}], "isError": False}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to ada.lovelace@example.org today", "EMAIL"),
        ("call +1 (415) 555-0132 now", "PHONE"),
        ("call 020 7946 0958", "PHONE"),
        ("card 4111 1111 1111 1111 on file", "CARD"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN"),
        ("iban DE89370400440532013000", "IBAN"),
        ("from 192.168.10.42 at noon", "IP"),
        ("from 2001:db8:85a3::8a2e:370:7334 too", "IP"),
        ("ssn 078-05-1120 filed", "SSN"),
    ],
)
def test_detectors_find_personal_data_in_free_text(text: str, kind: str) -> None:
    redacted = Tokenizer().redact_text(text)
    assert f"[{kind}_1]" in redacted, redacted
    assert redacted != text


@pytest.mark.parametrize(
    "text",
    [
        "released 2024-01-15T14:30:25 as version 1.2.3",
        "Date: 2024-01-03 12:00:00+00:00",
        "on 03/01/2024 10:30 and 15.01.2024 09:00",
        "order 100234567 shipped, 3 items, 12:30",
        "card 4111 1111 1111 1112 fails Luhn",
        "IBAN GB82WEST12345698765433 fails its checksum",
        "999.1.1.1 is not an address",
        "call 555-0132",
        "The sum of 2 and 3 is 5.",
    ],
)
def test_detectors_leave_lookalikes(text: str) -> None:
    assert Tokenizer().redact_text(text) == text


def test_same_value_same_placeholder_and_restore() -> None:
    tokens = Tokenizer()
    first = tokens.redact_text("a@example.com and b@example.com and a@example.com")
    assert first == "[EMAIL_1] and [EMAIL_2] and [EMAIL_1]"
    arguments = {"to": "[EMAIL_2]", "body": "Hi [EMAIL_1], cc [EMAIL_9]", "list": ["[EMAIL_1]"]}
    assert tokens.restore(arguments) == {
        "to": "b@example.com",
        "body": "Hi a@example.com, cc [EMAIL_9]",  # an unknown placeholder stays as it is
        "list": ["a@example.com"],
    }


def test_fields_by_name_and_names_in_person_records() -> None:
    record = {
        "id": 7,
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "phone_number": "+44 20 7946 0958",
        "address": "12 St James's Square, London",
        "company": "Analytical Engines Ltd",
        "notes": "met at 10.0.0.8",
    }
    tokens = Tokenizer()
    result = tokens.redact_result("crm", "get_customer", text_result(json.dumps(record)))
    seen = json.loads(result["content"][0]["text"])
    assert seen == {
        "id": 7,
        "name": "[NAME_1]",
        "email": "[EMAIL_1]",
        "phone_number": "[PHONE_1]",
        "address": "[ADDRESS_1]",
        "company": "Analytical Engines Ltd",
        "notes": "met at [IP_1]",
    }
    structured = tokens.redact_result(
        "crm", "get_customer", {"content": [], "structuredContent": record}
    )
    assert structured["structuredContent"]["email"] == "[EMAIL_1]"  # same session, same placeholder
    # A "name" outside a person record (a table, a file) is left alone.
    assert (
        tokens.redact_result("db", "tables", text_result('[{"name": "orders"}]'))["content"][0][
            "text"
        ]
        == '[{"name": "orders"}]'
    )


def test_policy_turns_detectors_off_per_server_tool_and_field() -> None:
    policy = parse_policy(
        {
            "detectors": {"ip": False},
            "servers": {
                "time": False,
                "crm": {
                    "detectors": {"phone": False},
                    "tools": {"get_customer": {"fields": {"email": False}}},
                },
            },
        }
    )
    tokens = Tokenizer(policy)
    text = "x@example.com +1 415 555 0132 10.1.2.3"
    assert tokens.redact_result("time", "now", text_result(text))["content"][0]["text"] == text
    assert (
        tokens.redact_result("crm", "list", text_result(text))["content"][0]["text"]
        == "[EMAIL_1] +1 415 555 0132 10.1.2.3"
    )
    assert (
        tokens.redact_result("other", "x", text_result(text))["content"][0]["text"]
        == "[EMAIL_1] [PHONE_1] 10.1.2.3"
    )
    record = json.dumps({"email": "x@example.com", "name": "Bo"})
    seen = json.loads(
        tokens.redact_result("crm", "get_customer", text_result(record))["content"][0]["text"]
    )
    assert seen == {"email": "x@example.com", "name": "[NAME_1]"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"detectors": {"faces": True}}, "unknown detector 'faces'"),
        ({"detectors": {"email": "yes"}}, "privacy.detectors.email: must be true or false"),
        (
            {"servers": {"crm": {"tools": {"t": {"fields": {"email": 1}}}}}},
            "privacy.servers.crm.tools.t.fields",
        ),
        ({"servers": {"crm": "off"}}, "privacy.servers.crm: give true, false"),
        ({"other": 1}, "'privacy' takes 'detectors', 'servers' and 'blobs'"),
        ({"blobs": "keep"}, 'privacy.blobs: must be "withhold" or "pass"'),
    ],
)
def test_bad_policy_is_a_clear_config_error(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_policy(raw, "mcp.json")
