"""The pattern detectors of personal data, each linear in the length of the text it scans.

Results come from servers and, through them, from sandboxed code: every pattern
here runs over hostile text. Python's `re` backtracks, so each pattern is written
so that the work per start position is bounded by a constant:

- every repetition has an upper bound (`{1,64}`, never `+` or `*`), and
- a run of the characters a pattern starts with can only be entered at its first
  character (a lookbehind for the same class), so a long run is tried once, not
  once per character.

`tests/security/test_host_stalls.py` checks both properties on the compiled
patterns and runs each detector over 1 MB of its worst case. Texts are scanned in
windows of `WINDOW` characters overlapping by more than the longest possible
match, so one call into the regex engine (which holds the GIL) stays short.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["DETECTORS", "PLACEHOLDER", "TEXT_DETECTORS", "WINDOW", "Detector", "find_all"]

DETECTORS = ("email", "phone", "card", "iban", "ip", "ssn", "fields")

PLACEHOLDER = re.compile(r"\[(EMAIL|PHONE|CARD|IBAN|IP|SSN|NAME|ADDRESS|DOB)_(\d{1,9})\]")

WINDOW = 1 << 16
"""Characters one regex call scans at most."""
_LONGEST_MATCH = 400
"""No pattern below matches more characters than this (the email's bounds add up to 371)."""

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
    r"(?:[A-Za-z0-9-]{1,63}\.){1,4}[A-Za-z]{2,24}(?![A-Za-z0-9])"
)
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}"
    r"(?![\w-]|[.:]\d)"
)
_DATE_LIKE = re.compile(
    r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}\b|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}\b|^\d{1,2}:\d{2}"
)
_NON_DIGIT = re.compile(r"\D")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_valid(text: str) -> bool:
    return _luhn(_NON_DIGIT.sub("", text))


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


def _always(text: str) -> bool:
    return True


@dataclass(frozen=True)
class Detector:
    """One pattern: the switch that turns it on, the placeholder kind, a check in code."""

    name: str
    kind: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool]


# Order matters: the more specific patterns claim their text first.
TEXT_DETECTORS: tuple[Detector, ...] = (
    Detector("email", "EMAIL", _EMAIL, _always),
    Detector("ssn", "SSN", _SSN, _always),
    Detector("iban", "IBAN", _IBAN, _iban_valid),
    Detector("card", "CARD", _CARD, _card_valid),
    Detector("ip", "IP", _IPV4, _ip_valid),
    Detector("ip", "IP", _IPV6, _ip_valid),
    Detector("phone", "PHONE", _PHONE, _phone_valid),
)


def find_all(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """The non-overlapping matches of `pattern` in `text`, scanned window by window.

    A window ends `_LONGEST_MATCH` characters past the part it owns, so a match that
    starts in the owned part is seen whole; the next window starts after it.
    """
    start = 0
    while start < len(text):
        owned = start + WINDOW
        end = min(len(text), owned + _LONGEST_MATCH)
        position = start
        for match in pattern.finditer(text, start, end):
            if match.start() >= owned:
                break
            if match.end() == end and end < len(text):
                # Cut by the window's edge: rescan from here in the next window.
                owned = match.start()
                break
            position = match.end()
            yield match
        start = max(owned, position)
