"""Flat input models written directly: what datamodel-code-generator writes, without its cost.

datamodel-code-generator costs about 3.5 ms of CPU per call however small the
schema, and 7 ms on average over real tools: at 10,000 tools, a minute of CPU.
Yet eleven real input schemas in twelve are flat (2,850 of the 3,099 distinct
ones of the dev corpora): an object whose properties are strings, numbers,
integers, booleans, arrays or dicts of those, or unions of them with null, with
defaults, enums and simple constraints. For exactly those, `flat_source` writes
the same module text datamodel-code-generator writes for them (with the options
`models` gives it), in about 0.05 ms; for anything else it returns None and the caller asks
datamodel-code-generator. It is an optimization, never a second dialect: tests
compare its output with datamodel-code-generator's, byte for byte, on every
flat schema of the real tool corpora in ../shared/data, and the cache key of a
module includes datamodel-code-generator's version, so an upgrade that changes
its output shows there first.

What is flat (anything else is not, and goes to datamodel-code-generator):

- the schema has `type: object` and at most `properties`, `required` (names of
  properties) and `additionalProperties` (a boolean: `extra='allow'` or `'forbid'`);
- each property name is a plain ASCII identifier that datamodel-code-generator
  keeps as it is (not a name pydantic or the module itself uses), or one it renames
  by a plain rule, with an alias: a lowercase keyword (`from` -> `from_`), or words
  joined by dashes (`user-id` -> `user_id`), unless the new name is taken;
- each property has a `type` of `string`, `integer`, `number`, `boolean`,
  `array` (of items that are one of those four, a string or integer enum, `{}`,
  or absent), `object` with no `properties` (a dict whose `additionalProperties`
  is absent, true, `{}` or one of the four types), or `[that, "null"]`, or no
  type at all (`Any`), with at most `default`, `enum` / `const`, `examples` and
  the numeric, length and item-count constraints below; or instead of a type an
  `anyOf` of distinct plain types (arrays of one among them, at most one null)
  with at most a `default` beside it (FastMCP's `str | None = None`);
- every value that reaches the source (defaults, enum members, examples,
  constraints) is a string, integer, float or boolean, or a list of them (or `{}`
  as a dict's default), and is written with `repr`, as datamodel-code-generator
  writes it.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FlatField", "FlatModels", "flat_models", "flat_source"]

_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
_TOP_KEYS = frozenset({"type", "properties", "required", "additionalProperties"})
_PROPERTY_KEYS = frozenset(
    {
        "type",
        "default",
        "enum",
        "const",
        "examples",
        "items",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "additionalProperties",
        "anyOf",
    }
)
_CONSTRAINTS = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "minItems": "min_length",
    "maxItems": "max_length",
}
_NUMERIC = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
_LENGTHS = frozenset({"minLength", "maxLength"})
_ITEMS = frozenset({"minItems", "maxItems"})
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Names datamodel-code-generator renames, aliases or imports around, and names the
# module's own source uses: a field named like one of them is left to it.
_TAKEN = frozenset(
    {"Annotated", "Any", "BaseModel", "ConfigDict", "Field", "Literal", "Optional", "Union"}
    | {"annotations", "model_config", "schema", "json", "copy", "dict", "validate"}
    | {"construct", "fields", "parse_obj", "parse_raw", "parse_file", "from_orm"}
    | {"int", "str", "float", "bool", "list", "bytes", "None", "True", "False"}
)


def _usable_name(name: str) -> bool:
    if not _NAME.fullmatch(name) or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return False
    if name in _TAKEN or name.startswith("model_") or name.endswith("_"):
        return False
    from pydantic import BaseModel

    return not hasattr(BaseModel, name) and (not hasattr(builtins, name) or name in _KEPT_BUILTINS)


# Builtin names datamodel-code-generator keeps as field names (checked on the corpora).
_KEPT_BUILTINS = frozenset(
    {"id", "type", "input", "filter", "format", "max", "min", "range", "hash", "object"}
    | {"all", "any", "map", "next", "open", "round", "sorted", "sum", "zip", "vars", "len"}
    | {"help", "print", "set", "slice", "tuple", "iter", "property", "compile", "exec"}
)


def _literal(value: Any) -> str | None:
    """`repr(value)` for a value that may reach the source, None for one that may not."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        # Printable text only: how control characters are escaped is the generator's business.
        return repr(value) if value.isprintable() else None
    if isinstance(value, list):
        items = [_literal(item) for item in value]
        if any(item is None or isinstance(value[i], list) for i, item in enumerate(items)):
            return None
        return "[" + ", ".join(item for item in items if item is not None) + "]"
    return None


def _enum_member(value: Any) -> str | None:
    # Literal members: strings and integers only (floats, booleans and null have other spellings).
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, str) and not value.isprintable():
        return None
    return repr(value)


def _members(members: Any) -> str | None:
    """The inside of `Literal[...]` for an enum's members, or None if they cannot be one."""
    if not isinstance(members, list) or not members or len(set(map(repr, members))) != len(members):
        return None
    written = [_enum_member(member) for member in members]
    if any(member is None for member in written):
        return None
    return ", ".join(member for member in written if member)


@dataclass(frozen=True)
class FlatField:
    """A field of a flat model, as `models` reads fields off a model's source."""

    name: str
    annotation: str
    """Its type, without `Annotated[...]` around it."""
    default: str | None
    """The source of its default; None for a required field."""
    alias: str | None = None
    """The property's own name, when the field's differs (`from` -> `from_`)."""


@dataclass(frozen=True)
class FlatModels:
    """A flat input model: its module's source and its fields, in schema order."""

    source: str
    fields: tuple[FlatField, ...]


_DASHED = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)*")


def _field_name(name: str) -> str | None:
    """The field name datamodel-code-generator gives the property `name`, for the names
    whose rule is plain: usable as they are, a lowercase keyword (`from` -> `from_`), or
    words joined by dashes (`user-id` -> `user_id`); None for any other."""
    if _usable_name(name):
        return name
    if keyword.iskeyword(name) and name.islower():
        return name + "_"
    if "-" in name and _DASHED.fullmatch(name):
        python = name.replace("-", "_")
        return python if _usable_name(python) else None
    return None


def _field(
    name: str, spec: Any, required: bool, alias: str | None = None
) -> tuple[str, set[str], FlatField] | None:
    """The field's line, the names it needs imported and the field, or None if not flat.

    `alias` is the property's name when the field's (`name`) differs from it.
    """
    if not isinstance(spec, dict) or not set(spec) <= _PROPERTY_KEYS:
        return None
    kind = spec.get("type")
    nullable = False
    if isinstance(kind, list):
        if len(kind) != 2 or "null" not in kind or kind[0] == kind[1]:
            return None
        kind = kind[0] if kind[1] == "null" else kind[1]
        nullable = True
    needs: set[str] = set()
    if "additionalProperties" in spec and kind != "object":
        return None
    if "anyOf" in spec:
        # A union of plain types, as pydantic writes `str | None`: only with a default beside.
        union = _union(spec["anyOf"], required) if set(spec) <= {"anyOf", "default"} else None
        if union is None:
            return None
        base, needs = union
        return _finish(name, spec, required, base, needs, {}, alias)
    if kind is None:
        if set(spec) - {"default", "examples"}:
            return None
        base = "Any"
        needs.add("Any")
    elif kind == "array":
        items = _array_items(spec.get("items"), needs)
        if items is None:
            return None
        base = f"list[{items}]"
    elif kind == "object":
        # A free-form object: a dict (with properties it would be a nested model).
        if set(spec) - {"type", "additionalProperties", "default"}:
            return None
        if "default" in spec and spec["default"] not in (None, {}):
            return None
        values = _dict_values(spec.get("additionalProperties", True), needs)
        if values is None:
            return None
        base = f"dict[str, {values}]"
    elif isinstance(kind, str) and kind in _TYPES:
        if "items" in spec:
            return None
        base = _TYPES[kind]
    else:
        return None
    if "enum" in spec or "const" in spec:
        if kind not in ("string", "integer") or ("enum" in spec and "const" in spec):
            return None
        literal = _members(spec["enum"] if "enum" in spec else [spec["const"]])
        if literal is None:
            return None
        base = f"Literal[{literal}]"
        needs.add("Literal")
    arguments: dict[str, str] = {}
    for key, argument in _CONSTRAINTS.items():
        if key not in spec:
            continue
        value = spec[key]
        if key in _NUMERIC:
            if kind not in ("integer", "number") or isinstance(value, bool):
                return None
            if kind == "integer" and not isinstance(value, int):
                return None
            if not isinstance(value, int | float):
                return None
            value = float(value) if kind == "number" else value
        elif key in _LENGTHS:
            if kind != "string" or isinstance(value, bool) or not isinstance(value, int):
                return None
        elif key in _ITEMS:
            if kind != "array" or isinstance(value, bool) or not isinstance(value, int):
                return None
        elif key == "pattern" and (kind != "string" or not isinstance(value, str)):
            return None
        written_value = _literal(value)
        if written_value is None or argument in arguments:
            return None
        arguments[argument] = written_value
    if "examples" in spec:
        examples = _literal(spec["examples"])
        if examples is None or not isinstance(spec["examples"], list):
            return None
        arguments["examples"] = examples
    plain = base if required and not nullable else f"{base} | None"
    return _finish(name, spec, required, plain, needs, arguments, alias)


def _finish(
    name: str,
    spec: dict[str, Any],
    required: bool,
    plain: str,
    needs: set[str],
    arguments: dict[str, str],
    alias: str | None,
) -> tuple[str, set[str], FlatField] | None:
    """The field's line from its type (`plain`, `| None` included) and `Field` arguments."""
    annotation = plain
    if alias is not None:
        arguments = dict(arguments, alias=repr(alias))
    if arguments:
        needs.add("Annotated")
        needs.add("Field")
        inside = ", ".join(f"{key}={arguments[key]}" for key in sorted(arguments))
        annotation = f"Annotated[{plain}, Field({inside})]"
    if required:
        return f"    {name}: {annotation}", needs, FlatField(name, plain, None, alias)
    if "default" not in spec:
        default: str | None = "None"
    elif spec["default"] == {} and plain.startswith("dict["):
        default = "{}"  # the one dict default a free-form object may have here
    else:
        default = _literal(spec["default"])
    if default is None:
        return None
    return f"    {name}: {annotation} = {default}", needs, FlatField(name, plain, default, alias)


def _array_items(items: Any, needs: set[str]) -> str | None:
    """The item type of an array: absent or `{}` (Any), a plain type, or a string or
    integer enum (a Literal); None for anything else."""
    if items is None or items == {}:
        needs.add("Any")
        return "Any"
    if not isinstance(items, dict) or items.get("type") not in _TYPES:
        return None
    if set(items) == {"type"}:
        return _TYPES[items["type"]]
    if set(items) != {"type", "enum"} or items["type"] not in ("string", "integer"):
        return None
    members = _members(items["enum"])
    if members is None:
        return None
    needs.add("Literal")
    return f"Literal[{members}]"


def _dict_values(values: Any, needs: set[str]) -> str | None:
    """The value type of a free-form object's `additionalProperties`: true or `{}` (Any),
    or a plain type; None for anything else (false, a schema with more in it)."""
    if values is True or values == {}:
        needs.add("Any")
        return "Any"
    if isinstance(values, dict) and set(values) == {"type"} and values["type"] in _TYPES:
        return _TYPES[values["type"]]
    return None


def _union(members: Any, required: bool) -> tuple[str, set[str]] | None:
    """`anyOf` of two or more distinct plain types (arrays of one among them), at most one
    of them null: their types joined with `|`, `None` last; None for any other anyOf."""
    if not isinstance(members, list) or len(members) < 2:
        return None
    if any(not isinstance(member, dict) for member in members):
        return None
    if len({repr(sorted(member.items())) for member in members}) != len(members):
        return None  # a repeated member: datamodel-code-generator's to merge, not ours
    needs: set[str] = set()
    types: list[str] = []
    nullable = False
    for member in members:
        kind = member.get("type")
        if set(member) == {"type"} and kind == "null":
            nullable = True
        elif set(member) == {"type"} and isinstance(kind, str) and kind in _TYPES:
            types.append(_TYPES[kind])
        elif kind == "array" and set(member) <= {"type", "items"}:
            items = member.get("items")
            if items is not None and not (
                isinstance(items, dict) and set(items) == {"type"} and items["type"] in _TYPES
            ):
                return None
            types.append(f"list[{_array_items(items, needs)}]")
        else:
            return None
    if not types or len(set(types)) != len(types):
        return None
    return " | ".join(types) + (" | None" if nullable or not required else ""), needs


def flat_source(schema: dict[str, Any], class_name: str) -> str | None:
    """datamodel-code-generator's module for the flat input `schema`, or None if it is not flat.

    `schema` is as `models` hands it over (top-level descriptions and titles
    removed, formats dropped); `class_name` is the input model's name.
    """
    found = flat_models(schema, class_name)
    return found.source if found is not None else None


def flat_models(schema: dict[str, Any], class_name: str) -> FlatModels | None:
    """`flat_source`'s module and its fields (so nobody parses the module to read them)."""
    if schema.get("type") != "object" or not set(schema) <= _TOP_KEYS:
        return None
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    extra = schema.get("additionalProperties")
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    if not isinstance(extra, bool | None) or not all(
        isinstance(name, str) and name in properties for name in required
    ):
        return None
    lines: list[str] = []
    needs: set[str] = set()
    fields: list[FlatField] = []
    given: set[str] = set()
    for name, spec in properties.items():
        python = _field_name(name)
        if python is None or python == class_name or python in given:
            return None
        if python != name and python in properties:
            return None  # `user-id` beside `user_id`: datamodel-code-generator numbers one
        given.add(python)
        field = _field(python, spec, name in required, None if python == name else name)
        if field is None:
            return None
        lines.append(field[0])
        needs |= field[1]
        fields.append(field[2])
    typing_names = sorted(needs & {"Annotated", "Any", "Literal"})
    head = ["from __future__ import annotations"]
    if typing_names:
        head.append(f"from typing import {', '.join(typing_names)}")
    head.append(
        "from pydantic import BaseModel, ConfigDict" + (", Field" if "Field" in needs else "")
    )
    config = ["    model_config = ConfigDict("]
    if extra is not None:
        config.append("        extra='allow'," if extra else "        extra='forbid',")
    config += ["        populate_by_name=True,", "    )"]
    body = [f"class {class_name}(BaseModel):", *config, *lines]
    return FlatModels("\n".join(head) + "\n\n\n" + "\n".join(body) + "\n", tuple(fields))
