"""The real values a session has tokenized, found again wherever they reappear.

A pattern finds what looks like an email; it cannot know that `ADA@EXAMPLE.ORG`,
`ada@example.org_` or `Ada Lovelace` is a value the host already replaced. Every
value the host tokenized (and so every value it can restore) is added here, in
the forms it may come back in:

- the value itself, matched as a substring, ignoring case;
- its JSON-escaped and URL-quoted spellings, when they differ;
- for phone numbers, card numbers, SSNs and IBANs: its digits, matched in the
  digits of a run of digits and separators (`+1 (555) 123-4567` is `15551234567`),
  and a phone number's last ten digits (the number without its country code);
- its letters and digits alone (`adalovelace`, when at least 8 of them), matched in
  the letters and digits of the text: spaces, dots or dashes taken out or put in
  (`Ada-Lovelace`, `A d a L o v e l a c e`) do not hide it.

Matching uses Aho-Corasick automatons (linear in the text, whatever the number of
values). An automaton cannot grow, so values are kept in tiers: new values make a
small tier, and tiers of similar size are merged, so each value is rebuilt
O(log n) times. Encoded forms (base64, hex, gzip) are not listed here: the text's
encoded runs are decoded and scanned instead (`encoded.py`).
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import ahocorasick_rs

__all__ = ["MIN_LENGTH", "KnownValues", "Span"]

MIN_LENGTH = 4
"""Values shorter than this (after trimming) are not searched for: too many false hits."""
_WORD_BOUNDED_BELOW = 8
"""A value shorter than this counts only where it is not part of a longer word."""
_MIN_DIGITS = 7
_DIGIT_KINDS = frozenset({"PHONE", "CARD", "SSN", "IBAN"})
_DIGIT_RUN = re.compile(r"(?<![\d])\d(?:[ \t.()/+-]{0,3}\d){6,}")
_NON_DIGIT = re.compile(r"\D")
# NUL separates the strings of a result scanned together: a value never spans it.
_NOT_ALNUM = re.compile(r"(?:[^\w\x00]|_)+")
_KEPT = re.compile(r"[^\W_]")
_PLAIN = re.compile(r"[a-z0-9 .,_@+-]*")
_URL_ESCAPES = {" ": "%20", ",": "%2C", "@": "%40", "+": "%2B"}
_NUL = re.compile(r"\x00")
_MIN_COMPACT = 8
_MERGE_FACTOR = 4
_CHUNK = 1 << 18
_LONGEST = 500
"""Longer values are searched for by their first `_LONGEST` characters (chunks overlap by that)."""


@dataclass(frozen=True)
class Span:
    """A found value: where it is in the text, and the placeholder it stands for."""

    start: int
    end: int
    placeholder: str


@dataclass
class _Tier:
    needles: list[str]
    owners: list[str]
    automaton: ahocorasick_rs.AhoCorasick


@dataclass
class _Index:
    """The needles of one kind of matching, in tiers of automatons."""

    tiers: list[_Tier] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add(self, needle: str, owner: str) -> None:
        if needle not in self.seen:
            self.seen.add(needle)
            self.pending.append((needle, owner))

    def _settle(self) -> None:
        if not self.pending:
            return
        needles = [needle for needle, _ in self.pending]
        owners = [owner for _, owner in self.pending]
        self.pending = []
        while self.tiers and len(self.tiers[-1].needles) <= _MERGE_FACTOR * len(needles):
            last = self.tiers.pop()
            needles = last.needles + needles
            owners = last.owners + owners
        automaton = ahocorasick_rs.AhoCorasick(
            needles,
            matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
            # The fastest to build (values arrive with every result) and quick to scan.
            implementation=ahocorasick_rs.Implementation.ContiguousNFA,
        )
        self.tiers.append(_Tier(needles, owners, automaton))

    def find(self, haystack: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, owner) of every needle in `haystack` (overlaps between tiers too)."""
        self._settle()
        for tier in self.tiers:
            # One call per chunk: the automaton holds the GIL while it scans.
            for offset in range(0, len(haystack), _CHUNK):
                piece = haystack[offset : offset + _CHUNK + _LONGEST]
                for index, start, end in tier.automaton.find_matches_as_indexes(piece):
                    if start >= _CHUNK and offset + _CHUNK < len(haystack):
                        continue  # the next chunk owns it
                    yield offset + start, offset + end, tier.owners[index]


class KnownValues:
    """Every value tokenized in one session, and where it reappears in a text."""

    def __init__(self) -> None:
        self._text = _Index()
        self._digits = _Index()
        self._compact = _Index()
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def add(self, kind: str, value: str, placeholder: str) -> None:
        """Remember `value` (of `kind`), to be replaced by `placeholder` wherever found."""
        trimmed = value.strip()
        self.count += 1
        if len(trimmed) >= MIN_LENGTH:
            lowered = trimmed.lower()
            self._text.add(lowered[:_LONGEST], placeholder)
            for form in _spellings(lowered):  # as JSON and URLs spell it
                self._text.add(form[:_LONGEST], placeholder)
            compact = _NOT_ALNUM.sub("", lowered)
            if len(compact) >= _MIN_COMPACT and kind not in _DIGIT_KINDS:
                self._compact.add(compact[:_LONGEST], placeholder)
        if kind in _DIGIT_KINDS:
            digits = _NON_DIGIT.sub("", trimmed)
            if len(digits) >= _MIN_DIGITS:
                self._digits.add(digits, placeholder)
                if kind == "PHONE" and len(digits) > 10:
                    self._digits.add(digits[-10:], placeholder)

    def find(self, text: str) -> list[Span]:
        """The known values in `text`, longest first where they overlap, in text order."""
        if not self.count:
            return []
        spans: list[Span] = []
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters lower-case to two: map per character
            lowered = "".join(char.lower()[:1] or char for char in text)
        for start, end, placeholder in self._text.find(lowered):
            if end - start < _WORD_BOUNDED_BELOW and not _bounded(text, start, end):
                continue
            spans.append(Span(start, end, placeholder))
        spans.extend(self._find_digits(text))
        spans.extend(self._find_compact(lowered))
        return _non_overlapping(spans)

    def find_bytes(self, data: bytes) -> bool:
        """Whether `data` (binary, not text) holds a known value as bytes (ASCII case ignored)."""
        if not self.count:
            return False
        return any(True for _ in self._text.find(data.lower().decode("latin-1")))

    def _find_digits(self, text: str) -> Iterator[Span]:
        if not self._digits.seen:
            return
        runs = list(_DIGIT_RUN.finditer(text))
        if not runs:
            return
        # The digits of every run, joined by a NUL (no needle holds one): one scan for all.
        digits = [_NON_DIGIT.sub("", run.group()) for run in runs]
        starts = list(itertools.accumulate((len(d) + 1 for d in digits), initial=0))
        found = list(self._digits.find("\x00".join(digits)))
        for start, end, placeholder in found:
            index = bisect.bisect_right(starts, start) - 1
            run = runs[index]
            group = run.group()
            positions = [run.start() + i for i, char in enumerate(group) if char.isdigit()]
            offset = starts[index]
            yield Span(positions[start - offset], positions[end - 1 - offset] + 1, placeholder)

    def _find_compact(self, lowered: str) -> Iterator[Span]:
        if not self._compact.seen:
            return
        compact = _NOT_ALNUM.sub("", lowered)
        if len(compact) == len(lowered):
            return  # nothing was taken out: the plain search saw the same text
        found = list(self._compact.find(compact))
        if not found:
            return
        # Map back within the string (between NULs) that holds the match: a result's
        # strings are short, and only those with a match are walked.
        compact_nuls = [match.start() for match in _NUL.finditer(compact)]
        text_nuls = [match.start() for match in _NUL.finditer(lowered)]
        walked: dict[int, list[int]] = {}
        for start, end, placeholder in found:
            piece = bisect.bisect_right(compact_nuls, start)
            if piece not in walked:
                begin = text_nuls[piece - 1] + 1 if piece else 0
                stop = text_nuls[piece] if piece < len(text_nuls) else len(lowered)
                walked[piece] = [m.start() for m in _KEPT.finditer(lowered, begin, stop)]
            positions = walked[piece]
            offset = compact_nuls[piece - 1] + 1 if piece else 0
            yield Span(positions[start - offset], positions[end - 1 - offset] + 1, placeholder)


def _spellings(value: str) -> set[str]:
    """`value` as JSON (escaped) and a URL (quoted) spell it, where that differs."""
    if _PLAIN.fullmatch(value):  # the common case, without the cost of `quote`
        url = "".join(_URL_ESCAPES.get(char, char) for char in value)
        return {url} - {value}
    return {json.dumps(value)[1:-1], quote(value, safe="")} - {value}


def _bounded(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not before.isalnum() and not after.isalnum()


def _non_overlapping(spans: list[Span]) -> list[Span]:
    spans.sort(key=lambda span: (span.start, -(span.end - span.start)))
    kept: list[Span] = []
    for span in spans:
        if kept and span.start < kept[-1].end:
            if span.end > kept[-1].end:  # overlapping values: cover both
                last = kept.pop()
                kept.append(Span(last.start, span.end, last.placeholder))
            continue
        kept.append(span)
    return kept
