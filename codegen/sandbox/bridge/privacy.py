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

import functools
import gzip
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...runtime.errors import ConfigError
from . import encoded
from .detectors import DETECTORS, PLACEHOLDER, TEXT_DETECTORS, find_all
from .known import KnownValues, Span

__all__ = [
    "DEFAULT_MAX_PLACEHOLDERS",
    "DETECTORS",
    "PrivacyLimit",
    "PrivacyPolicy",
    "Tokenizer",
    "parse_policy",
]

DEFAULT_MAX_PLACEHOLDERS = 50_000
"""Distinct values one session may tokenize: each costs host memory for the session's life."""
MAX_DEPTH = 64
"""Nesting a result or an argument may have to be scanned (deeper is refused, not passed)."""
_MAX_DECODED_BYTES = 16 * 1024 * 1024
_NESTED_DECODING = 2
"""Encodings peeled inside each other (base64 of gzip of text is two)."""
BlobPolicy = Literal["withhold", "pass"]
_MIME = re.compile(r"[\w.+-]{1,40}/[\w.+-]{1,60}")

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


@functools.lru_cache(maxsize=4096)
def _normal_key(key: str) -> str:
    return re.sub(r"[\s_-]", "", key[:100]).lower()


def _field_kind(key: str) -> str | None:
    return _FIELD_KINDS.get(_normal_key(key))


class PrivacyLimit(Exception):
    """A result or argument the tokenizer refuses to handle (too deep, too many values)."""


@dataclass(frozen=True)
class _Scope:
    detectors: frozenset[str]
    fields_off: frozenset[str] = frozenset()
    blobs: BlobPolicy = "withhold"


@dataclass(frozen=True)
class PrivacyPolicy:
    """Which detectors apply to which server, tool and field, and what passes as a blob."""

    defaults: frozenset[str] = frozenset(DETECTORS)
    servers: Mapping[str, Any] = field(default_factory=dict)
    blobs: BlobPolicy = "withhold"
    """Binary data that cannot be read for personal data: `withhold` (default) or `pass`."""

    def scope(self, server: str, tool: str) -> _Scope:
        """The detectors on for `tool` of `server`, its fields turned off, its blob policy."""
        setting = self.servers.get(server, True)
        blobs: BlobPolicy = self.blobs
        if setting is False:
            return _Scope(frozenset(), blobs="pass")
        detectors = set(self.defaults)
        fields_off: set[str] = set()
        if isinstance(setting, dict):
            _apply(detectors, setting.get("detectors", {}))
            blobs = setting.get("blobs", blobs)
            tool_setting = setting.get("tools", {}).get(tool, True)
            if tool_setting is False:
                return _Scope(frozenset(), blobs="pass")
            if isinstance(tool_setting, dict):
                _apply(detectors, tool_setting.get("detectors", {}))
                blobs = tool_setting.get("blobs", blobs)
                fields_off = {
                    name for name, on in tool_setting.get("fields", {}).items() if on is False
                }
        return _Scope(frozenset(detectors), frozenset(fields_off), blobs)


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
    if not isinstance(raw, dict) or set(raw) - {"detectors", "servers", "blobs"}:
        raise ConfigError(f"{source}: 'privacy' takes 'detectors', 'servers' and 'blobs'")
    defaults = set(DETECTORS)
    _apply(defaults, _switches(raw.get("detectors", {}), f"{source}: privacy.detectors"))
    blobs = _blobs(raw.get("blobs", "withhold"), f"{source}: privacy.blobs")
    servers = raw.get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: privacy.servers must be an object of servers")
    for name, setting in servers.items():
        where = f"{source}: privacy.servers.{name}"
        if isinstance(setting, bool):
            continue
        if not isinstance(setting, dict) or set(setting) - {"detectors", "tools", "blobs"}:
            raise ConfigError(
                f"{where}: give true, false, or an object with 'detectors', 'tools' and 'blobs'"
            )
        _switches(setting.get("detectors", {}), f"{where}.detectors")
        if "blobs" in setting:
            _blobs(setting["blobs"], f"{where}.blobs")
        for tool, tool_setting in setting.get("tools", {}).items():
            if isinstance(tool_setting, bool):
                continue
            if not isinstance(tool_setting, dict) or set(tool_setting) - {
                "detectors",
                "fields",
                "blobs",
            }:
                raise ConfigError(
                    f"{where}.tools.{tool}: give true, false, or 'detectors', 'fields' and 'blobs'"
                )
            _switches(tool_setting.get("detectors", {}), f"{where}.tools.{tool}.detectors")
            if "blobs" in tool_setting:
                _blobs(tool_setting["blobs"], f"{where}.tools.{tool}.blobs")
            if not all(isinstance(on, bool) for on in tool_setting.get("fields", {}).values()):
                raise ConfigError(f"{where}.tools.{tool}.fields: each field is true or false")
    return PrivacyPolicy(frozenset(defaults), servers, blobs)


def _blobs(raw: Any, where: str) -> BlobPolicy:
    if raw == "pass":
        return "pass"
    if raw == "withhold":
        return "withhold"
    raise ConfigError(f'{where}: must be "withhold" or "pass", not {json.dumps(raw)[:40]}')


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
    """One session's placeholders: redacts results, restores arguments. Host side only.

    Every value it tokenizes is also remembered (`KnownValues`), so a value that
    comes back changed (a suffix, upper-cased, hex, base64, gzip, in an error
    message) is still found. Thread-safe: the host scans in worker threads.

    Args:
        policy: which detectors apply where, and what happens to binary blobs.
        max_placeholders: distinct values this session may tokenize; a result that
            would need more is refused (`PrivacyLimit`), never passed unscanned.
    """

    def __init__(
        self,
        policy: PrivacyPolicy | None = None,
        *,
        max_placeholders: int = DEFAULT_MAX_PLACEHOLDERS,
    ):
        self.policy = policy or PrivacyPolicy()
        self.max_placeholders = max_placeholders
        self.known = KnownValues()
        self._placeholders: dict[tuple[str, str], str] = {}
        self._values: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.RLock()
        self._batch: list[str] | None = None
        self._structured: tuple[Any, Any] | None = None
        self.restored = 0
        """Placeholders put back into arguments so far (telemetry counts them per call)."""

    def __len__(self) -> int:
        return len(self._values)

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder for `value`, the same one every time in this session.

        Raises:
            PrivacyLimit: the session already holds `max_placeholders` values.
        """
        key = (kind, value)
        found = self._placeholders.get(key)
        if found is None:
            if len(self._values) >= self.max_placeholders:
                raise PrivacyLimit(
                    f"this session has tokenized {len(self._values)} personal values, its "
                    "limit; the result was withheld (start a new session)"
                )
            self._counts[kind] = self._counts.get(kind, 0) + 1
            found = f"[{kind}_{self._counts[kind]}]"
            self._placeholders[key] = found
            self._values[found] = value
            self.known.add(kind, value, found)
        return found

    # Results -> sandbox --------------------------------------------------------
    def redact_result(self, server: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """A copy of the wire-form `result` with personal data replaced by placeholders.

        Text blocks are scanned as text or JSON; blobs (images, audio, binary
        resources) after decoding, when they are text; every other string too.

        Raises:
            PrivacyLimit: the result is nested too deeply, or holds too many values.
        """
        scope = self.policy.scope(server, tool)
        if not scope.detectors and not len(self.known):
            return result
        # A server with every detector off is still scanned for the values this session
        # has tokenized: a value once replaced is never handed back in clear.
        with self._lock:
            self._batch = []
            try:
                redacted: dict[str, Any] = {}
                structured = result.get("structuredContent")
                if structured is not None:
                    redacted["structuredContent"] = self._redact_value(structured, scope)
                    # Servers send structured output twice, once as a JSON text block:
                    # that block is the same value, redacted the same way, scanned once.
                    self._structured = (structured, redacted["structuredContent"])
                for key, value in result.items():
                    if key == "content" and isinstance(value, list):
                        redacted[key] = [self._redact_block(block, scope) for block in value]
                    elif key != "structuredContent":
                        redacted[key] = self._redact_strings(value, scope)
                texts = self._redact_many(self._batch, scope)
            finally:
                self._batch = None
                self._structured = None
            resolved: dict[str, Any] = _resolve(redacted, texts)
            return resolved

    def redact_text(self, text: str, server: str = "", tool: str = "") -> str:
        """`text` with every detected or known value replaced (for error messages, too)."""
        scope = self.policy.scope(server, tool) if server else _Scope(self.policy.defaults)
        with self._lock:
            return self._redact_free_text(text, scope)

    def hide_known(self, value: Any, depth: int = 0) -> Any:
        """`value` (an execution's output) with every value this session tokenized hidden.

        The code may have rebuilt a real value from pieces a server gave it (a
        character at a time); only values the session knows are replaced here, so
        the code's own output is otherwise left as it printed it.
        """
        if isinstance(value, str):
            with self._lock:
                return _replace(value, self.known.find(value)) if len(self.known) else value
        if depth > MAX_DEPTH:
            return "[nested too deeply to be shown]"
        if isinstance(value, dict):
            return {
                self.hide_known(key, depth + 1): self.hide_known(item, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.hide_known(item, depth + 1) for item in value]
        return value

    def _free(self, text: str, scope: _Scope) -> Any:
        """`text` redacted now, or (while a result is scanned) a mark for the batch."""
        if self._batch is None or "\x00" in text:
            return self._redact_free_text(text, scope)
        self._batch.append(text)
        return _Pending(len(self._batch) - 1)

    def _redact_many(self, texts: list[str], scope: _Scope) -> list[str]:
        """`texts` redacted in one pass over them joined (a result has thousands of
        short strings; a pass per string costs more in calls than in scanning)."""
        if not texts:
            return []
        before = len(self._values)
        joined = self._redact_free_text("\x00".join(texts), scope)
        if len(self._values) != before:
            # Values found in this result (a name in its field) hidden in the rest of it
            # (the same name inside a note).
            joined = _replace(joined, self.known.find(joined))
        parts = joined.split("\x00")
        if len(parts) != len(texts):  # cannot happen: nothing put in holds a NUL
            return [self._redact_free_text(text, scope) for text in texts]
        return parts

    def _redact_block(self, block: Any, scope: _Scope) -> Any:
        if not isinstance(block, dict):
            return self._redact_strings(block, scope)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            rest = self._redact_strings({k: v for k, v in block.items() if k != "text"}, scope)
            return {**rest, "text": self._redact_text_or_json(block["text"], scope)}
        if kind in ("image", "audio") and isinstance(block.get("data"), str):
            rest = self._redact_strings({k: v for k, v in block.items() if k != "data"}, scope)
            data = self._redact_blob(block["data"], scope)
            if data is None:
                return _withheld_block(kind, block)
            return {**rest, "data": data}
        if kind == "resource" and isinstance(block.get("resource"), dict):
            resource = block["resource"]
            rest = self._redact_strings(
                {k: v for k, v in resource.items() if k not in ("text", "blob")}, scope
            )
            if isinstance(resource.get("text"), str):
                rest["text"] = self._redact_text_or_json(resource["text"], scope)
            if isinstance(resource.get("blob"), str):
                blob = self._redact_blob(resource["blob"], scope)
                if blob is None:
                    rest["text"] = _withheld_text("resource", resource)
                else:
                    rest["blob"] = blob
            return {**block, "resource": rest}
        return self._redact_strings(block, scope)

    def _redact_blob(self, blob: str, scope: _Scope) -> str | None:
        """The blob with its text redacted, or unchanged, or None to withhold it."""
        decoded = encoded.decode_blob(blob, _MAX_DECODED_BYTES)
        if decoded is None:
            return None  # undecodable, or a gzip bomb: nothing about it can be vouched for
        text = encoded.as_text(decoded.data)
        if text is not None:
            redacted = self._redact_free_text(text, scope)
            if redacted == text:
                return blob
            data = redacted.encode("utf-8")
            if decoded.gzipped:
                data = gzip.compress(data, mtime=0)
            return encoded.encode_blob(data)
        if self.known.find_bytes(decoded.data):
            return None  # a known value inside binary data: never passed
        return blob if scope.blobs == "pass" else None

    def _redact_strings(self, value: Any, scope: _Scope, depth: int = 0) -> Any:
        """Every string in `value` redacted as free text (fields not otherwise understood)."""
        if depth > MAX_DEPTH:
            raise PrivacyLimit(f"the result is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            return self._free(value, scope)
        if isinstance(value, dict):
            return {
                self._free(key, scope) if isinstance(key, str) else key: (
                    self._redact_strings(item, scope, depth + 1)
                )
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._redact_strings(item, scope, depth + 1) for item in value]
        return value

    def _redact_text_or_json(self, text: str, scope: _Scope) -> Any:
        stripped = text.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):
                pass
            else:
                if self._structured is not None and parsed == self._structured[0]:
                    redacted = self._structured[1]
                else:
                    redacted = self._redact_value(parsed, scope)
                if self._batch is not None:
                    return _Json(redacted, 2 if "\n" in stripped else None)
                return json.dumps(
                    redacted, ensure_ascii=False, indent=2 if "\n" in stripped else None
                )
        return self._free(text, scope)

    def _redact_value(
        self, value: Any, scope: _Scope, kind: str | None = None, depth: int = 0
    ) -> Any:
        if depth > MAX_DEPTH:
            raise PrivacyLimit(f"the result is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            kinds = {key: _field_kind(key) for key in value} if "fields" in scope.detectors else {}
            person = bool(_PERSON_MARKERS & {kind for kind in kinds.values() if kind})
            redacted = {}
            for key, item in value.items():
                field_kind = kinds.get(key)
                if field_kind is None and person and _normal_key(key) == "name":
                    field_kind = "NAME"
                shown = self._free(key, scope) if isinstance(key, str) else key
                if key in scope.fields_off:
                    redacted[shown] = item
                else:
                    redacted[shown] = self._redact_value(item, scope, field_kind, depth + 1)
            return redacted
        if isinstance(value, list):
            return [self._redact_value(item, scope, kind, depth + 1) for item in value]
        if (
            kind is not None
            and isinstance(value, str | int)
            and not isinstance(value, bool)
            and str(value).strip()
            and not PLACEHOLDER.fullmatch(str(value))
        ):
            return self.placeholder(kind, str(value))
        if isinstance(value, str):
            return self._free(value, scope)
        return value

    def _redact_free_text(self, text: str, scope: _Scope, depth: int = 0) -> str:
        if not text:
            return text
        # Values this session already knows first: a suffix or a case change does not
        # hide them, and no pattern needs to recognize them.
        text = _replace(text, self.known.find(text))
        for detector in TEXT_DETECTORS:
            if detector.name not in scope.detectors:
                continue
            spans = [
                Span(match.start(), match.end(), self.placeholder(detector.kind, match.group()))
                for match in find_all(detector.pattern, text)
                if not PLACEHOLDER.fullmatch(match.group()) and detector.valid(match.group())
            ]
            text = _replace(text, spans)
        if depth < _NESTED_DECODING:
            text = self._redact_encoded_runs(text, scope, depth)
        return text

    def _redact_encoded_runs(self, text: str, scope: _Scope, depth: int) -> str:
        """Hex and base64 runs decoded and scanned; re-encoded redacted, or withheld."""
        spans: list[Span] = []
        taken_until = -1
        for run in encoded.runs(text, _MAX_DECODED_BYTES):
            if run.start < taken_until:
                continue
            inner = encoded.as_text(run.decoded.data)
            if inner is not None:
                redacted = self._redact_free_text(inner, scope, depth + 1)
                if redacted != inner:
                    spans.append(Span(run.start, run.end, run.encode(redacted, text)))
                    taken_until = run.end
            elif self.known.find_bytes(run.decoded.data):
                spans.append(Span(run.start, run.end, "[WITHHELD_DATA]"))
                taken_until = run.end
        return _replace(text, spans)

    # Arguments -> server -------------------------------------------------------
    def restore(self, value: Any, depth: int = 0) -> Any:
        """`value` (tool-call arguments) with every known placeholder replaced by its real value.

        Raises:
            PrivacyLimit: `value` is nested more than `MAX_DEPTH` levels deep.
        """
        if depth > MAX_DEPTH:
            raise PrivacyLimit(f"the arguments are nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, str):
            return PLACEHOLDER.sub(self._real, value)
        if isinstance(value, dict):
            return {key: self.restore(item, depth + 1) for key, item in value.items()}
        if isinstance(value, list):
            return [self.restore(item, depth + 1) for item in value]
        return value

    def _real(self, match: re.Match[str]) -> str:
        found = self._values.get(match.group(0))
        if found is None:
            return match.group(0)
        self.restored += 1
        return found


@dataclass(frozen=True)
class _Pending:
    """A string of a result waiting for the result's one scan: its place in the batch."""

    index: int


@dataclass(frozen=True, eq=False)
class _Json:
    """A text block that was JSON: dumped again once its strings are scanned."""

    value: Any
    indent: int | None


def _resolve(value: Any, texts: list[str]) -> Any:
    if isinstance(value, _Pending):
        return texts[value.index]
    if isinstance(value, _Json):
        return json.dumps(_resolve(value.value, texts), ensure_ascii=False, indent=value.indent)
    if isinstance(value, dict):
        return {_resolve(key, texts): _resolve(item, texts) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, texts) for item in value]
    return value


def _replace(text: str, spans: list[Span]) -> str:
    """`text` with each (non-overlapping, ordered) span replaced by its placeholder."""
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda span: span.start):
        if span.start < position:
            continue
        pieces.append(text[position : span.start])
        pieces.append(span.placeholder)
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


def _withheld_text(kind: str, block: Mapping[str, Any]) -> str:
    mime = str(block.get("mimeType", ""))
    mime = mime if _MIME.fullmatch(mime) else "binary"
    return (
        f"[withheld: a {kind} blob ({mime}) that is binary data, which cannot be checked for "
        'personal data; the privacy setting "blobs": "pass" lets such data through]'
    )


def _withheld_block(kind: str, block: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "text", "text": _withheld_text(kind, block)}
