"""The one way server text reaches generated source.

Descriptions, titles, enum values and defaults come from servers: they are data.
Templates never interpolate them raw; they go through `py_literal` (a Python
literal of any JSON value) or `doc_text` (text safe inside a triple-quoted
docstring). `verify` then parses every module and checks its structure, so a
mistake here would fail the build rather than ship.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["doc_text", "one_line", "py_literal"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")


def py_literal(value: Any) -> str:
    """A Python expression equal to the JSON value `value`.

    Strings are double-quoted with every quote, backslash and control character
    escaped; numbers, booleans, None, lists and dicts nest the same way.

    Raises:
        TypeError: `value` is not a JSON value.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"float({str(value)!r})"
        return repr(value)
    if isinstance(value, str):
        # json.dumps escapes quotes, backslashes and every control character, and its
        # escapes mean the same in Python source.
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: spell everything as escapes
            return json.dumps(value)
        literal = json.dumps(value, ensure_ascii=False)
        return literal.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(py_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{py_literal(str(key))}: {py_literal(item)}" for key, item in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def doc_text(text: str) -> str:
    """`text`, made safe inside a `\"\"\"` docstring without changing what it reads as.

    Backslashes are doubled, `\"\"\"` cannot close the string, control characters
    become visible escapes, trailing whitespace goes, and a trailing quote is
    kept away from the closing quotes.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    # A bare quote at the end would run into the closing quotes; one escaped already
    # (an odd number of backslashes before it, as `\"\"\"` leaves) must stay as it is.
    backslashes = len(text[:-1]) - len(text[:-1].rstrip("\\"))
    if text.endswith('"') and backslashes % 2 == 0:
        text = text[:-1] + '\\"'
    return text


def one_line(text: str | None, limit: int = 100) -> str:
    """The first sentence or line of `text`, at most `limit` characters (plain text)."""
    if not text:
        return ""
    lines = [line.strip().lstrip("#").strip() for line in text.strip().splitlines()]
    first = next((line for line in lines if line), "")
    sentence = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0]
    if len(sentence) > limit:
        sentence = sentence[: limit - 1].rstrip() + "…"
    return sentence
