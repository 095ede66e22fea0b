"""Data inside data: base64 and hex runs in text, blobs, gzip; decoded so they can be scanned.

A server can hand back a real value encoded: `hex()` in SQL, a file read as a
base64 media blob, a gzip resource. The scanner decodes what it can (within
bounds: a gzip stream may expand to at most `max_bytes`), scans the result as
text when it is text, and encodes the redacted text back the way it came, so code
still gets the shape it expects. Binary data cannot be read for personal data;
what happens to it is the privacy policy's `blobs` choice.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Decoded", "Run", "as_text", "decode_blob", "encode_blob", "runs"]

_HEX_RUN = re.compile(r"[0-9A-Fa-f]{16,65536}")
# Unpadded base64 from 16 characters; padded (a strong sign) from 6 (4 bytes).
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,65536}={0,2}|[A-Za-z0-9+/_-]{6,15}={1,2}")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Decoded:
    """Bytes decoded from a blob, gunzipped if they were a gzip stream."""

    data: bytes
    gzipped: bool


@dataclass(frozen=True)
class Run:
    """A run of text that may be encoded data, and one way to decode it."""

    start: int
    end: int
    encoding: str
    """`hex`, `base64` or `base64url`."""
    skip: int
    """Characters of the run before the encoded data starts (alignment)."""
    padded: bool
    upper: bool
    decoded: Decoded

    def encode(self, text: str, original: str) -> str:
        """`text` encoded as this run was (gzip, alphabet, case, padding), prefix kept."""
        data = text.encode("utf-8")
        if self.decoded.gzipped:
            data = gzip.compress(data, mtime=0)
        if self.encoding == "hex":
            body = data.hex().upper() if self.upper else data.hex()
        else:
            body = encode_blob(data, urlsafe=self.encoding == "base64url")
            if not self.padded:
                body = body.rstrip("=")
        return original[self.start : self.start + self.skip] + body


def as_text(data: bytes) -> str | None:
    """`data` as text, if it is UTF-8 with (almost) no control characters; else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(_CONTROL.findall(text)) * 100 > len(text):
        return None
    return text


def _gunzip(data: bytes, max_bytes: int) -> bytes | None:
    """The gzip stream `data` inflated, or None if it is broken or inflates past `max_bytes`."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error:
        return None
    return None if len(out) > max_bytes else out


def _unwrap(data: bytes, max_bytes: int) -> Decoded | None:
    if data[:2] == _GZIP_MAGIC:
        inflated = _gunzip(data, max_bytes)
        return None if inflated is None else Decoded(inflated, True)
    return Decoded(data, False)


def decode_blob(blob: str, max_bytes: int) -> Decoded | None:
    """The bytes of a base64 blob, gunzipped if gzip; None if it cannot be decoded in bounds."""
    try:
        data = base64.b64decode(blob, validate=False)
    except (binascii.Error, ValueError):
        return None
    return _unwrap(data, max_bytes)


def encode_blob(data: bytes, *, urlsafe: bool = False) -> str:
    """`data` as base64 text."""
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode("ascii")


def runs(text: str, max_bytes: int) -> Iterator[Run]:
    """Every way a hex or base64 run of `text` decodes (each alignment), gunzipped if gzip."""
    for match in _HEX_RUN.finditer(text):
        body = match.group()
        upper = any("A" <= char <= "F" for char in body)
        for skip in (0, 1):
            piece = body[skip : skip + (len(body) - skip) // 2 * 2]
            decoded = _unwrap(bytes.fromhex(piece), max_bytes)
            if decoded is not None:
                yield Run(match.start(), match.end(), "hex", skip, False, upper, decoded)
    for match in _B64_RUN.finditer(text):
        body = match.group()
        padded = body.endswith("=")
        core = body.rstrip("=")
        urlsafe = "-" in core or "_" in core
        if urlsafe and ("+" in core or "/" in core):
            continue  # two alphabets at once: not base64
        for skip in range(4):
            piece = core[skip:]
            if len(piece) % 4 == 1:
                piece = piece[:-1]  # one character cannot be a byte: not part of the data
            if len(piece) < 6:
                continue
            try:
                raw = (base64.urlsafe_b64decode if urlsafe else base64.b64decode)(
                    piece + "=" * (-len(piece) % 4)
                )
            except (binascii.Error, ValueError):
                continue
            decoded = _unwrap(raw, max_bytes)
            if decoded is not None:
                encoding = "base64url" if urlsafe else "base64"
                yield Run(match.start(), match.end(), encoding, skip, padded, False, decoded)
