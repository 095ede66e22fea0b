"""RFC 6570 URI templates (level 4): parse, expand, and match a URI against one.

MCP resource templates are RFC 6570 templates (`repo://{owner}/{repo}/{+path}`).
The generated function of a template takes its variables as keyword arguments and
expands them here; the host expands them again itself (the code's expansion is
never trusted) and checks a plain URI against the server's templates with
`matches`, which runs in time linear in the URI for a given template.

Standard library only: this module runs in the sandbox as well as on the host.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "MAX_TEMPLATE_CHARS",
    "Expression",
    "Template",
    "TemplateError",
    "Variable",
    "parse",
]

MAX_TEMPLATE_CHARS = 2048
"""The longest template parsed (a server's text; longer ones are refused)."""
_MAX_EXPRESSIONS = 64

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_RESERVED = ":/?#[]@!$&'()*+,;="
_VARNAME = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})+(?:\.(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})+)*")


class TemplateError(ValueError):
    """A URI template that is not valid RFC 6570, or values that do not fit it."""


@dataclass(frozen=True)
class _Operator:
    first: str
    separator: str
    named: bool
    if_empty: str
    reserved: bool


_OPERATORS = {
    "": _Operator("", ",", False, "", False),
    "+": _Operator("", ",", False, "", True),
    "#": _Operator("#", ",", False, "", True),
    ".": _Operator(".", ".", False, "", False),
    "/": _Operator("/", "/", False, "", False),
    ";": _Operator(";", ";", True, "", False),
    "?": _Operator("?", "&", True, "=", False),
    "&": _Operator("&", "&", True, "=", False),
}


@dataclass(frozen=True)
class Variable:
    """One variable of an expression: `name`, `name:3` (a prefix), or `name*` (exploded)."""

    name: str
    prefix: int | None = None
    explode: bool = False


@dataclass(frozen=True)
class Expression:
    """One `{...}` of a template: its operator and variables."""

    operator: str
    variables: tuple[Variable, ...]

    @property
    def optional(self) -> bool:
        """Whether its variables may be left out naturally (query forms `{?x}`, `{&x}`)."""
        return self.operator in ("?", "&")


Part = str | Expression


@dataclass(frozen=True)
class Template:
    """A parsed URI template: literal text and expressions, in order."""

    text: str
    parts: tuple[Part, ...]

    @property
    def variables(self) -> tuple[Variable, ...]:
        """Every variable, in order of first appearance (each name once)."""
        seen: dict[str, Variable] = {}
        for part in self.parts:
            if isinstance(part, Expression):
                for variable in part.variables:
                    seen.setdefault(variable.name, variable)
        return tuple(seen.values())

    def required(self) -> frozenset[str]:
        """The variables outside the query forms: a URI without them is rarely what is meant."""
        return frozenset(
            variable.name
            for part in self.parts
            if isinstance(part, Expression) and not part.optional
            for variable in part.variables
        )

    def expand(self, values: Mapping[str, str | Sequence[str] | None]) -> str:
        """The URI for `values` (None or missing: the variable is undefined, as RFC 6570 says).

        Raises:
            TemplateError: a value is neither a string nor a list of strings, or a
                variable that is not exploded got a list it cannot take.
        """
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(_encode(part, reserved=True))
            else:
                pieces.append(_expand_expression(part, values))
        return "".join(pieces)

    def matches(self, uri: str) -> bool:
        """Whether `uri` is an expansion of this template (in time linear in `uri`).

        Each expression takes the characters its operator allows, up to the next
        literal text; a value holding that text (possible only in `{+x}` and `{#x}`)
        is not recognized, so a false "no" is possible there, never a false "yes".
        """
        position = 0
        parts = self.parts
        for index, part in enumerate(parts):
            if isinstance(part, str):
                if not uri.startswith(part, position):
                    return False
                position += len(part)
                continue
            following = next(
                (later for later in parts[index + 1 :] if isinstance(later, str)), None
            )
            adjacent = index + 1 < len(parts) and isinstance(parts[index + 1], Expression)
            end = _expression_end(part, uri, position, following if not adjacent else None)
            if not _value_fits(part, uri[position:end]):
                return False
            position = end
        return position == len(uri)


def parse(text: str) -> Template:
    """Parse an RFC 6570 template.

    Raises:
        TemplateError: braces do not pair, an expression is empty or malformed, or
            the template is longer than `MAX_TEMPLATE_CHARS`.
    """
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"the template is longer than {MAX_TEMPLATE_CHARS} characters")
    parts: list[Part] = []
    position = 0
    while position < len(text):
        start = text.find("{", position)
        close = text.find("}", position)
        if close != -1 and (start == -1 or close < start):
            raise TemplateError(f"'}}' without '{{' at {close}")
        if start == -1:
            parts.append(text[position:])
            break
        if start > position:
            parts.append(text[position:start])
        end = text.find("}", start)
        if end == -1:
            raise TemplateError(f"'{{' at {start} is never closed")
        parts.append(_expression(text[start + 1 : end]))
        position = end + 1
    if sum(isinstance(part, Expression) for part in parts) > _MAX_EXPRESSIONS:
        raise TemplateError(f"the template has more than {_MAX_EXPRESSIONS} expressions")
    return Template(text, tuple(parts))


def _expression(body: str) -> Expression:
    operator = body[:1] if body[:1] in _OPERATORS and body[:1] else ""
    if body[:1] and body[:1] in "=,!@|":
        raise TemplateError(f"operator {body[:1]!r} is reserved in {{{body}}}")
    specs = body[len(operator) :]
    if not specs:
        raise TemplateError(f"empty expression {{{body}}}")
    variables = []
    for spec in specs.split(","):
        explode = spec.endswith("*")
        name, _, prefix = spec.removesuffix("*").partition(":")
        if not _VARNAME.fullmatch(name):
            raise TemplateError(f"{name!r} is not a variable name in {{{body}}}")
        length = None
        if prefix:
            if explode or not prefix.isdigit() or not 0 < int(prefix) < 10000:
                raise TemplateError(f"bad prefix {prefix!r} in {{{body}}}")
            length = int(prefix)
        variables.append(Variable(name, length, explode))
    return Expression(operator, tuple(variables))


def _encode(text: str, *, reserved: bool) -> str:
    if not reserved:
        return quote(text, safe="")  # letters, digits and -._~ are always kept
    # Reserved expansion keeps reserved characters and existing %XX triplets.
    out = []
    for piece in re.split(r"(%[0-9A-Fa-f]{2})", text):
        if re.fullmatch(r"%[0-9A-Fa-f]{2}", piece):
            out.append(piece)
        else:
            out.append(quote(piece, safe=_RESERVED + "-._~"))
    return "".join(out)


def _expand_expression(
    expression: Expression, values: Mapping[str, str | Sequence[str] | None]
) -> str:
    operator = _OPERATORS[expression.operator]
    pieces: list[str] = []
    for variable in expression.variables:
        value = values.get(variable.name)
        if value is None:
            continue
        if isinstance(value, str):
            text = value[: variable.prefix] if variable.prefix else value
            encoded = _encode(text, reserved=operator.reserved)
            if operator.named:
                pieces.append(variable.name + (f"={encoded}" if encoded else operator.if_empty))
            else:
                pieces.append(encoded)
            continue
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise TemplateError(
                f"{variable.name}: give a string or a list of strings, not {type(value).__name__}"
            )
        if not value:
            continue
        if variable.prefix is not None:
            raise TemplateError(f"{variable.name}: a prefix ({{x:n}}) takes a string, not a list")
        items = [_encode(item, reserved=operator.reserved) for item in value]
        if variable.explode:
            if operator.named:
                pieces.extend(
                    variable.name + (f"={item}" if item else operator.if_empty) for item in items
                )
            else:
                pieces.extend(items)
        elif operator.named:
            pieces.append(f"{variable.name}=" + ",".join(items))
        else:
            pieces.append(",".join(items))
    if not pieces:
        return ""
    return operator.first + operator.separator.join(pieces)


_SIMPLE_CHARS = frozenset(_UNRESERVED + "%,")


def _allowed(expression: Expression) -> frozenset[str] | None:
    """The characters an expansion of `expression` may hold (None: any, for `+` and `#`)."""
    operator = _OPERATORS[expression.operator]
    if operator.reserved:
        return None
    extra = operator.first + operator.separator + ("=" if operator.named else "")
    return _SIMPLE_CHARS | frozenset(extra)


def _expression_end(expression: Expression, uri: str, start: int, following: str | None) -> int:
    allowed = _allowed(expression)
    limit = len(uri)
    if following:
        found = uri.find(following, start)
        limit = found if found != -1 else len(uri)
    if allowed is None:
        return limit
    end = start
    while end < limit and uri[end] in allowed:
        end += 1
    return end


def _value_fits(expression: Expression, value: str) -> bool:
    if not value:
        return True  # every variable undefined (or empty): an empty expansion
    operator = _OPERATORS[expression.operator]
    return value.startswith(operator.first) if operator.first else True
