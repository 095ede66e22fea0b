"""PII tokenization at the bridge: personal data flows between tools, never into the sandbox.

Results leaving a server are scanned on the host; personal data is replaced by
stable placeholders (`[EMAIL_1]`, `[PHONE_3]`, `[NAME_2]`) before agent code sees
them. When agent code passes a placeholder back in a tool call's arguments, the
host puts the real value back before the call reaches the server. The same value
gets the same placeholder for the whole session; the mapping lives only in the
host process (a `Tokenizer`), never in logs, results or sandbox files.

What it protects: values a detector recognizes (emails, phone numbers, Luhn-valid
card numbers, IBANs with a valid checksum, IP addresses, US SSNs) anywhere in a
result, and whole values of fields whose names say what they hold (`email`,
`phone`, `full_name`, `address`, ...; `name` too, in an object that also has an
email or phone field). What it does not: a name inside free text with no field to
mark it ("call Ada tomorrow"), data in images or binary blobs, and anything the
agent's code derives from a placeholder (it cannot filter on the real value it
never sees).

The `privacy` section of `mcp.json` turns detectors off per server, tool or field;
everything is on unless the user says otherwise:

    "privacy": {
      "detectors": {"ip": false},
      "servers": {
        "time": false,
        "crm": {"detectors": {"phone": false},
                "tools": {"get_customer": {"fields": {"company": false}}}}
      }
    }
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...runtime.errors import ConfigError

__all__ = ["DETECTORS", "PrivacyPolicy", "Tokenizer", "parse_policy"]

DETECTORS = ("email", "phone", "card", "iban", "ip", "ssn", "fields")

# Field names (lower-case, without _ - or spaces) and the kind of data they hold.
_FIELD_KINDS: dict[str, str] = {
    **dict.fromkeys(("email", "emailaddress", "email_address", "mail", "emails"), "EMAIL"),
    **dict.fromkeys(("phone", "phonenumber", "mobile", "telephone", "tel", "cell", "fax"), "PHONE"),
    **dict.fromkeys(
        (
            "fullname",
            "firstname",
            "lastname",
            "givenname",
            "familyname",
            "surname",
            "middlename",
            "customername",
            "contactname",
            "displayname",
            "username",
        ),
        "NAME",
    ),
    **dict.fromkeys(
        (
            "address",
            "streetaddress",
            "street",
            "homeaddress",
            "postaladdress",
            "mailingaddress",
            "billingaddress",
            "shippingaddress",
            "addressline1",
            "addressline2",
        ),
        "ADDRESS",
    ),
    **dict.fromkeys(("ssn", "socialsecuritynumber"), "SSN"),
    **dict.fromkeys(("dob", "dateofbirth", "birthdate", "birthday"), "DOB"),
    **dict.fromkeys(("iban",), "IBAN"),
    **dict.fromkeys(("cardnumber", "creditcard", "creditcardnumber"), "CARD"),
}
_PERSON_MARKERS = {"EMAIL", "PHONE"}
_PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|CARD|IBAN|IP|SSN|NAME|ADDRESS|DOB)_(\d+)\]")

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w-]|[.:]\d)"
)
_DATE_LIKE = re.compile(
    r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}\b|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}\b|^\d{1,2}:\d{2}"
)


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _ip_valid(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone_valid(text: str) -> bool:
    digits = sum(char.isdigit() for char in text)
    # A date, alone or followed by an hour ("2024-01-03 12"), is not a phone number.
    return 9 <= digits <= 15 and not _DATE_LIKE.match(text.strip())


# Order matters: the more specific patterns claim their text first.
_TEXT_DETECTORS: tuple[tuple[str, str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("email", "EMAIL", _EMAIL, lambda text: True),
    ("ssn", "SSN", _SSN, lambda text: True),
    ("iban", "IBAN", _IBAN, _iban_valid),
    ("card", "CARD", _CARD, lambda text: _luhn(re.sub(r"\D", "", text))),
    ("ip", "IP", _IPV4, _ip_valid),
    ("ip", "IP", _IPV6, _ip_valid),
    ("phone", "PHONE", _PHONE, _phone_valid),
)


def _field_kind(key: str) -> str | None:
    return _FIELD_KINDS.get(re.sub(r"[\s_-]", "", key).lower())


@dataclass(frozen=True)
class _Scope:
    detectors: frozenset[str]
    fields_off: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PrivacyPolicy:
    """Which detectors apply to which server, tool and field."""

    defaults: frozenset[str] = frozenset(DETECTORS)
    servers: Mapping[str, Any] = field(default_factory=dict)

    def scope(self, server: str, tool: str) -> _Scope:
        """The detectors on for `tool` of `server`, and its fields turned off."""
        setting = self.servers.get(server, True)
        if setting is False:
            return _Scope(frozenset())
        detectors = set(self.defaults)
        fields_off: set[str] = set()
        if isinstance(setting, dict):
            _apply(detectors, setting.get("detectors", {}))
            tool_setting = setting.get("tools", {}).get(tool, True)
            if tool_setting is False:
                return _Scope(frozenset())
            if isinstance(tool_setting, dict):
                _apply(detectors, tool_setting.get("detectors", {}))
                fields_off = {
                    name for name, on in tool_setting.get("fields", {}).items() if on is False
                }
        return _Scope(frozenset(detectors), frozenset(fields_off))


def _apply(detectors: set[str], switches: Mapping[str, bool]) -> None:
    for name, on in switches.items():
        (detectors.add if on else detectors.discard)(name)


def parse_policy(raw: Any, source: str = "mcp.json") -> PrivacyPolicy:
    """Check the `privacy` section of an `mcp.json` (absent: everything on).

    Raises:
        ConfigError: a key is unknown or a value is not what it should be.
    """
    if raw is None:
        return PrivacyPolicy()
    if not isinstance(raw, dict) or set(raw) - {"detectors", "servers"}:
        raise ConfigError(f"{source}: 'privacy' takes 'detectors' and 'servers'")
    defaults = set(DETECTORS)
    _apply(defaults, _switches(raw.get("detectors", {}), f"{source}: privacy.detectors"))
    servers = raw.get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: privacy.servers must be an object of servers")
    for name, setting in servers.items():
        where = f"{source}: privacy.servers.{name}"
        if isinstance(setting, bool):
            continue
        if not isinstance(setting, dict) or set(setting) - {"detectors", "tools"}:
            raise ConfigError(
                f"{where}: give true, false, or an object with 'detectors' and 'tools'"
            )
        _switches(setting.get("detectors", {}), f"{where}.detectors")
        for tool, tool_setting in setting.get("tools", {}).items():
            if isinstance(tool_setting, bool):
                continue
            if not isinstance(tool_setting, dict) or set(tool_setting) - {"detectors", "fields"}:
                raise ConfigError(
                    f"{where}.tools.{tool}: give true, false, or 'detectors' and 'fields'"
                )
            _switches(tool_setting.get("detectors", {}), f"{where}.tools.{tool}.detectors")
            if not all(isinstance(on, bool) for on in tool_setting.get("fields", {}).values()):
                raise ConfigError(f"{where}.tools.{tool}.fields: each field is true or false")
    return PrivacyPolicy(frozenset(defaults), servers)


def _switches(raw: Any, where: str) -> dict[str, bool]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be an object of detector: true/false")
    for name, on in raw.items():
        if name not in DETECTORS:
            raise ConfigError(f"{where}: unknown detector {name!r}; known: {', '.join(DETECTORS)}")
        if not isinstance(on, bool):
            raise ConfigError(f"{where}.{name}: must be true or false")
    return raw


class Tokenizer:
    """One session's placeholders: redacts results, restores arguments. Host side only."""

    def __init__(self, policy: PrivacyPolicy | None = None):
        self.policy = policy or PrivacyPolicy()
        self._placeholders: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder for `value`, the same one every time in this session."""
        key = (kind, value)
        found = self._placeholders.get(key)
        if found is None:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            found = f"[{kind}_{self._counts[kind]}]"
            self._placeholders[key] = found
            self._values[found] = value
        return found

    # Results -> sandbox --------------------------------------------------------
    def redact_result(self, server: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """A copy of the wire-form `result` with personal data replaced by placeholders."""
        scope = self.policy.scope(server, tool)
        if not scope.detectors:
            return result
        redacted = dict(result)
        blocks = []
        for block in result.get("content") or ():
            if (
                isinstance(block, dict)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
            ):
                block = {**block, "text": self._redact_text_or_json(block["text"], scope)}
            elif isinstance(block, dict) and block.get("type") == "resource":
                resource = block.get("resource")
                if isinstance(resource, dict) and isinstance(resource.get("text"), str):
                    block = {
                        **block,
                        "resource": {
                            **resource,
                            "text": self._redact_text_or_json(resource["text"], scope),
                        },
                    }
            blocks.append(block)
        if "content" in result:
            redacted["content"] = blocks
        if "structuredContent" in result:
            redacted["structuredContent"] = self._redact_value(result["structuredContent"], scope)
        return redacted

    def redact_text(self, text: str, server: str = "", tool: str = "") -> str:
        """`text` with every detected value replaced (for error messages, too)."""
        return self._redact_free_text(
            text, self.policy.scope(server, tool) if server else _Scope(self.policy.defaults)
        )

    def _redact_text_or_json(self, text: str, scope: _Scope) -> str:
        stripped = text.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                pass
            else:
                redacted = self._redact_value(parsed, scope)
                return json.dumps(
                    redacted, ensure_ascii=False, indent=2 if "\n" in stripped else None
                )
        return self._redact_free_text(text, scope)

    def _redact_value(self, value: Any, scope: _Scope, kind: str | None = None) -> Any:
        if isinstance(value, dict):
            kinds = {key: _field_kind(key) for key in value} if "fields" in scope.detectors else {}
            person = bool(_PERSON_MARKERS & {kind for kind in kinds.values() if kind})
            redacted = {}
            for key, item in value.items():
                field_kind = kinds.get(key)
                if field_kind is None and person and re.sub(r"[\s_-]", "", key).lower() == "name":
                    field_kind = "NAME"
                if key in scope.fields_off:
                    redacted[key] = item
                else:
                    redacted[key] = self._redact_value(item, scope, field_kind)
            return redacted
        if isinstance(value, list):
            return [self._redact_value(item, scope, kind) for item in value]
        if (
            kind is not None
            and isinstance(value, str | int)
            and not isinstance(value, bool)
            and str(value).strip()
        ):
            return self.placeholder(kind, str(value))
        if isinstance(value, str):
            return self._redact_free_text(value, scope)
        return value

    def _redact_free_text(self, text: str, scope: _Scope) -> str:
        for detector, kind, pattern, valid in _TEXT_DETECTORS:
            if detector not in scope.detectors:
                continue

            def replace(
                match: re.Match[str], kind: str = kind, valid: Callable[[str], bool] = valid
            ) -> str:
                found = match.group(0)
                if _PLACEHOLDER.fullmatch(found) or not valid(found):
                    return found
                return self.placeholder(kind, found)

            text = pattern.sub(replace, text)
        return text

    # Arguments -> server -------------------------------------------------------
    def restore(self, value: Any) -> Any:
        """`value` (tool-call arguments) with every known placeholder replaced by its real value."""
        if isinstance(value, str):
            return _PLACEHOLDER.sub(
                lambda match: self._values.get(match.group(0), match.group(0)), value
            )
        if isinstance(value, dict):
            return {key: self.restore(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.restore(item) for item in value]
        return value
