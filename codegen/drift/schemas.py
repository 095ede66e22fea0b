"""JSON-Schema variance: how a change to one tool's input or output schema affects callers.

Input and output schemas are compared with opposite variance: the server must
accept every input it accepted before (narrowing an input breaks callers), and
must not return a value the old generated models would reject (widening an
output breaks callers, because generated code validates outputs).

Local `$ref`s are followed (cycles stop at the first revisit), so pointers name
the property path a caller sees (`/inputSchema/properties/point/properties/x`)
even where the schema spells it through `$defs`. A keyword this module cannot
reason about is compared for equality, and any difference in it counts as
breaking: a drift check must not call a change safe that it did not understand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from .changes import Change, Severity

__all__ = ["MAX_DEPTH", "SchemaComparison", "canon", "short"]

_Direction = Literal["input", "output"]
_Effect = Literal["narrowed", "widened", "changed"]

MAX_DEPTH = 64
"""Deeper schemas are compared for equality only (a guard, not a limit anyone meets)."""

_ANNOTATIONS = (
    "description",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
)
_TEXT_ONLY = frozenset({"description", "title", "examples", "$comment"})
_STRUCTURAL = frozenset(
    {
        "type", "enum", "const", "anyOf", "oneOf", "nullable", "$defs", "definitions", "$schema", "$id",
        "properties", "required", "additionalProperties", "minProperties", "maxProperties",
        "items", "minItems", "maxItems", "uniqueItems",
        "minLength", "maxLength", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    }
)  # fmt: skip
_KNOWN = _STRUCTURAL | frozenset(_ANNOTATIONS)
_OBJECT_KEYWORDS = (
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
)
_ARRAY_KEYWORDS = ("items", "minItems", "maxItems", "uniqueItems")
_NUMERIC = ("integer", "number")


@dataclass
class SchemaComparison:
    """One schema pair (a tool's input or output) being compared; changes go to `changes`."""

    server: str
    tool: str
    direction: _Direction
    old_root: Any
    new_root: Any
    changes: list[Change]
    active: set[tuple[str, str]] = field(default_factory=set)

    def run(self, pointer: str) -> None:
        """Compare the two roots; `pointer` is where they sit in the tool (`/inputSchema`)."""
        self.compare(self.old_root, self.new_root, pointer, 0)

    def add(self, kind: str, severity: Severity, pointer: str, message: str) -> None:
        self.changes.append(Change(kind, severity, self.server, self.tool, pointer, message))

    def effect(self, effect: _Effect, kind: str, pointer: str, message: str) -> None:
        """Record a change whose severity follows from its effect on the accepted values."""
        if effect == "changed":
            severity: Severity = "breaking"
        elif self.direction == "input":
            severity = "breaking" if effect == "narrowed" else "compatible"
        else:
            severity = "compatible" if effect == "narrowed" else "breaking"
        self.add(kind, severity, pointer, message)

    # -- nodes --------------------------------------------------------------

    def compare(self, old: Any, new: Any, pointer: str, depth: int) -> None:
        old_node, old_ref = _resolve(old, self.old_root)
        new_node, new_ref = _resolve(new, self.new_root)
        key = (old_ref, new_ref)
        if key != ("", ""):
            if key in self.active:
                return  # a recursive schema, already being compared further up
            self.active.add(key)
        try:
            if depth > MAX_DEPTH:
                self.opaque(old_node, new_node, pointer)
            else:
                self.compare_node(old_node, new_node, pointer, depth)
        finally:
            self.active.discard(key)

    def compare_node(
        self, old: dict[str, Any], new: dict[str, Any], pointer: str, depth: int
    ) -> None:
        self.annotations(old, new, pointer)
        self.unknown(old, new, pointer)
        combined = any(key in node for node in (old, new) for key in ("anyOf", "oneOf"))
        if not combined and (_enum(old) is not None or _enum(new) is not None):
            self.enums(old, new, pointer)
            return
        old_branches, new_branches = _branches(old, self.old_root), _branches(new, self.new_root)
        if old_branches is None or new_branches is None:
            self.opaque(old, new, pointer)
            return
        self.types(_types_of(old_branches), _types_of(new_branches), pointer)
        for kind, before, after in _pairs(old_branches, new_branches):
            self.branch(kind, before, after, pointer, depth)

    def annotations(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        for key in _ANNOTATIONS:
            if not _differs(old, new, key):
                continue
            where = f"{pointer}/{key}"
            if key in _TEXT_ONLY or self.direction == "output" or key in ("readOnly", "writeOnly"):
                self.add(f"{key.lstrip('$')}-changed", "text", where, f"{key} changed")
            elif key == "default":
                # Callers that omit the argument now get other behaviour; no call fails.
                self.add(
                    "default-changed",
                    "compatible",
                    where,
                    f"default {_shown(old, key)} -> {_shown(new, key)}",
                )
            else:
                self.add(
                    "deprecated-changed",
                    "text",
                    where,
                    f"deprecated {_shown(old, key)} -> {_shown(new, key)}",
                )

    def unknown(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        for key in sorted((old.keys() | new.keys()) - _KNOWN):
            if _differs(old, new, key):
                self.add(
                    "schema-changed",
                    "breaking",
                    f"{pointer}/{_escape(key)}",
                    f"{key!r} changed; mcp-codegen cannot tell whether callers are affected, so counts it as breaking",
                )

    def opaque(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        if canon(_without(old, _ANNOTATIONS)) != canon(_without(new, _ANNOTATIONS)):
            self.add(
                "schema-changed",
                "breaking",
                pointer,
                "schema changed in a way mcp-codegen cannot classify (e.g. a union of several objects); "
                "counted as breaking",
            )

    def types(self, old: frozenset[str] | None, new: frozenset[str] | None, pointer: str) -> None:
        forward, backward = _subset(new, old), _subset(old, new)
        if forward and backward:
            return
        message = f"type {_type_text(old)} -> {_type_text(new)}"
        if forward:
            self.effect("narrowed", "type-narrowed", f"{pointer}/type", message)
        elif backward:
            self.effect("widened", "type-widened", f"{pointer}/type", message)
        else:
            self.effect("changed", "type-changed", f"{pointer}/type", message)

    def enums(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        old_values, new_values = _enum(old), _enum(new)
        where = f"{pointer}/{'const' if 'const' in new and 'enum' not in new else 'enum'}"
        if old_values is not None and new_values is not None:
            before = {canon(value): value for value in old_values}
            after = {canon(value): value for value in new_values}
            for text in sorted(before.keys() - after.keys()):
                self.effect("narrowed", "enum-value-removed", where, f"enum value {text} removed")
            for text in sorted(after.keys() - before.keys()):
                self.effect("widened", "enum-value-added", where, f"enum value {text} added")
        elif new_values is not None:
            old_types = _types_of(_branches(old, self.old_root))
            if all(_accepts(old_types, _json_type(value)) for value in new_values):
                self.effect(
                    "narrowed", "enum-added", where, f"now limited to {_values(new_values)}"
                )
            else:
                self.effect(
                    "changed",
                    "type-changed",
                    where,
                    f"type {_type_text(old_types)} -> {_values(new_values)}",
                )
        elif old_values is not None:
            new_types = _types_of(_branches(new, self.new_root))
            if all(_accepts(new_types, _json_type(value)) for value in old_values):
                self.effect(
                    "widened", "enum-removed", where, f"no longer limited to {_values(old_values)}"
                )
            else:
                self.effect(
                    "changed",
                    "type-changed",
                    where,
                    f"type {_values(old_values)} -> {_type_text(new_types)}",
                )

    # -- one type of a node -------------------------------------------------

    def branch(
        self, kind: str, old: dict[str, Any], new: dict[str, Any], pointer: str, depth: int
    ) -> None:
        if _enum(old) is not None or _enum(new) is not None:
            self.enums(old, new, pointer)
        elif kind == "string":
            self.bound(old, new, "maxLength", pointer, upper=True)
            self.bound(old, new, "minLength", pointer, upper=False)
            self.keyword(old, new, "pattern", pointer)
            self.keyword(old, new, "format", pointer)
        elif kind in _NUMERIC:
            self.bound(old, new, "maximum", pointer, upper=True)
            self.bound(old, new, "exclusiveMaximum", pointer, upper=True)
            self.bound(old, new, "minimum", pointer, upper=False)
            self.bound(old, new, "exclusiveMinimum", pointer, upper=False)
            self.multiple_of(old, new, pointer)
        elif kind == "array":
            self.bound(old, new, "maxItems", pointer, upper=True)
            self.bound(old, new, "minItems", pointer, upper=False)
            if bool(old.get("uniqueItems")) != bool(new.get("uniqueItems")):
                effect: _Effect = "narrowed" if new.get("uniqueItems") else "widened"
                self.effect(
                    effect,
                    f"constraint-{'added' if effect == 'narrowed' else 'removed'}",
                    f"{pointer}/uniqueItems",
                    f"uniqueItems {short(new.get('uniqueItems', False))}",
                )
            items_old, items_new = old.get("items", {}), new.get("items", {})
            if isinstance(items_old, list) or isinstance(items_new, list):
                if canon(items_old) != canon(items_new):
                    self.opaque({"items": items_old}, {"items": items_new}, f"{pointer}/items")
            else:
                self.compare(items_old, items_new, f"{pointer}/items", depth + 1)
        elif kind == "object":
            self.object(old, new, pointer, depth)

    def bound(
        self, old: dict[str, Any], new: dict[str, Any], key: str, pointer: str, *, upper: bool
    ) -> None:
        before, after = old.get(key), new.get(key)
        if before == after:
            return
        where, message = f"{pointer}/{key}", f"{key} {short(before)} -> {short(after)}"
        if not all(value is None or _is_number(value) for value in (before, after)):
            self.effect("changed", "constraint-changed", where, message)
        elif before is None:
            self.effect("narrowed", "constraint-added", where, f"{key} {short(after)} added")
        elif after is None:
            self.effect("widened", "constraint-removed", where, f"{key} {short(before)} removed")
        elif (after < before) == upper:
            self.effect("narrowed", "constraint-tightened", where, message)
        else:
            self.effect("widened", "constraint-loosened", where, message)

    def keyword(self, old: dict[str, Any], new: dict[str, Any], key: str, pointer: str) -> None:
        before, after = old.get(key), new.get(key)
        if canon(before) == canon(after):
            return
        where = f"{pointer}/{key}"
        if before is None:
            self.effect("narrowed", "constraint-added", where, f"{key} {short(after)} added")
        elif after is None:
            self.effect("widened", "constraint-removed", where, f"{key} {short(before)} removed")
        else:
            self.effect(
                "changed", "constraint-changed", where, f"{key} {short(before)} -> {short(after)}"
            )

    def multiple_of(self, old: dict[str, Any], new: dict[str, Any], pointer: str) -> None:
        before, after = old.get("multipleOf"), new.get("multipleOf")
        if before == after:
            return
        if _is_number(before) and _is_number(after) and before and after:
            if _divides(before, after):
                self.effect(
                    "narrowed",
                    "constraint-tightened",
                    f"{pointer}/multipleOf",
                    f"multipleOf {before} -> {after}",
                )
                return
            if _divides(after, before):
                self.effect(
                    "widened",
                    "constraint-loosened",
                    f"{pointer}/multipleOf",
                    f"multipleOf {before} -> {after}",
                )
                return
        self.keyword(old, new, "multipleOf", pointer)

    def object(self, old: dict[str, Any], new: dict[str, Any], pointer: str, depth: int) -> None:
        role = (
            "output-field"
            if self.direction == "output"
            else ("parameter" if pointer == "/inputSchema" else "field")
        )
        old_props, new_props = _mapping(old.get("properties")), _mapping(new.get("properties"))
        old_required, new_required = _names(old.get("required")), _names(new.get("required"))
        for name in sorted(old_props.keys() | new_props.keys()):
            where = f"{pointer}/properties/{_escape(name)}"
            if name not in new_props:
                self.add(
                    f"{role}-removed",
                    "breaking",
                    where,
                    f"{role.replace('-', ' ')} {name!r} removed",
                )
            elif name not in old_props:
                if self.direction == "output":
                    self.add(
                        "output-field-added", "compatible", where, f"output field {name!r} added"
                    )
                elif name in new_required:
                    self.add(
                        f"required-{role}-added",
                        "breaking",
                        where,
                        f"required {role} {name!r} added",
                    )
                else:
                    self.add(
                        f"optional-{role}-added",
                        "compatible",
                        where,
                        f"optional {role} {name!r} added",
                    )
            else:
                self.requiredness(role, name, name in old_required, name in new_required, where)
                self.compare(old_props[name], new_props[name], where, depth + 1)
        self.additional(old, new, pointer, depth)
        self.bound(old, new, "maxProperties", pointer, upper=True)
        self.bound(old, new, "minProperties", pointer, upper=False)

    def requiredness(self, role: str, name: str, before: bool, after: bool, where: str) -> None:
        if before == after:
            return
        noun = role.replace("-", " ")
        if after:
            severity: Severity = "compatible" if self.direction == "output" else "breaking"
            self.add(f"{role}-made-required", severity, where, f"{noun} {name!r} is now required")
        else:
            severity = "breaking" if self.direction == "output" else "compatible"
            self.add(f"{role}-made-optional", severity, where, f"{noun} {name!r} is now optional")

    def additional(
        self, old: dict[str, Any], new: dict[str, Any], pointer: str, depth: int
    ) -> None:
        before, after = old.get("additionalProperties", True), new.get("additionalProperties", True)
        if canon(before) == canon(after):
            return
        where = f"{pointer}/additionalProperties"
        if after is False:
            self.effect(
                "narrowed",
                "additional-properties-closed",
                where,
                "additionalProperties: false added (properties it does not list are rejected)",
            )
        elif before is False:
            self.effect(
                "widened",
                "additional-properties-opened",
                where,
                "additionalProperties: false removed (other properties are allowed)",
            )
        else:
            self.compare(before, after, where, depth + 1)


# -- schema helpers ---------------------------------------------------------


def _resolve(node: Any, root: Any) -> tuple[dict[str, Any], str]:
    """Follow local `$ref`s: the schema they lead to (siblings applied) and the last ref followed."""
    schema = _as_schema(node)
    followed = ""
    seen: set[str] = set()
    while isinstance(schema.get("$ref"), str) and schema["$ref"] not in seen:
        ref = schema["$ref"]
        target = _pointer_get(root, ref)
        if target is None:
            break  # a remote or broken ref: compared as written
        seen.add(ref)
        followed = ref
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**_as_schema(target), **siblings}
    return schema, followed


def _as_schema(node: Any) -> dict[str, Any]:
    if node is False:
        return {"enum": []}  # accepts nothing
    return node if isinstance(node, dict) else {}


def _pointer_get(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node = root
    for part in [unquote(part) for part in ref[1:].split("/")][1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _enum(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    values = node.get("enum")
    return list(values) if isinstance(values, list) else None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _declared_types(node: dict[str, Any]) -> frozenset[str] | None:
    declared = node.get("type")
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list):
        types = {item for item in declared if isinstance(item, str)}
    elif any(key in node for key in _OBJECT_KEYWORDS):
        types = {"object"}
    elif any(key in node for key in _ARRAY_KEYWORDS):
        types = {"array"}
    else:
        return None
    if node.get("nullable") is True:  # the OpenAPI 3.0 spelling of "or null"
        types.add("null")
    return frozenset(types)


def _branches(node: dict[str, Any], root: Any, depth: int = 0) -> dict[str, dict[str, Any]] | None:
    """The node split by JSON type: {"string": schema, ...}, {"any": node} when untyped.

    None when it cannot be split unambiguously (two branches of one type that
    differ, an allOf, ...): such nodes are compared for equality only.
    """
    options = node.get("anyOf", node.get("oneOf"))
    if options is not None:
        if (
            ("anyOf" in node and "oneOf" in node)
            or not isinstance(options, list)
            or depth > MAX_DEPTH
        ):
            return None
        merged: dict[str, dict[str, Any]] = {}
        for option in options:
            resolved, _ = _resolve(option, root)
            if resolved.keys() - _KNOWN:
                return None
            parts = _branches(resolved, root, depth + 1)
            if parts is None:
                return None
            if "any" in parts:
                return {"any": node}
            for kind, schema in parts.items():
                if kind in merged and canon(_without(merged[kind], _ANNOTATIONS)) != canon(
                    _without(schema, _ANNOTATIONS)
                ):
                    return None
                merged[kind] = schema
        return merged
    values = _enum(node)
    if values is not None:
        declared = _declared_types(node)
        grouped: dict[str, list[Any]] = {}
        for value in values:
            if _accepts(declared, _json_type(value)):
                grouped.setdefault(_json_type(value), []).append(value)
        return {
            kind: {**_without(node, ("const",)), "type": kind, "enum": group}
            for kind, group in grouped.items()
        }
    declared = _declared_types(node)
    if declared is None:
        return {"any": node}
    return {kind: node for kind in declared}


def _types_of(branches: dict[str, dict[str, Any]] | None) -> frozenset[str] | None:
    if branches is None or "any" in branches:
        return None
    return frozenset(branches)


def _pairs(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    pairs = [
        (kind, old[kind], new[kind]) for kind in sorted(old.keys() & new.keys()) if kind != "any"
    ]
    for before, after in (("number", "integer"), ("integer", "number")):
        if before in old and before not in new and after in new and after not in old:
            pairs.append(("number", old[before], new[after]))
    return pairs


def _accepts(types: frozenset[str] | None, kind: str) -> bool:
    return types is None or kind in types or (kind == "integer" and "number" in types)


def _subset(inner: frozenset[str] | None, outer: frozenset[str] | None) -> bool:
    if outer is None:
        return True
    if inner is None:
        return False
    return all(_accepts(outer, kind) for kind in inner)


def _type_text(types: frozenset[str] | None) -> str:
    if types is None:
        return "any"
    return " | ".join(sorted(types)) or "nothing"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _divides(small: float, large: float) -> bool:
    ratio = large / small
    return abs(ratio - round(ratio)) < 1e-9


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> set[str]:
    return {item for item in value if isinstance(item, str)} if isinstance(value, list) else set()


def _without(node: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if key not in keys}


def _differs(old: dict[str, Any], new: dict[str, Any], key: str) -> bool:
    """Whether `key` differs between the nodes; absent and null differ."""
    return (key in old) != (key in new) or canon(old.get(key)) != canon(new.get(key))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def canon(value: Any) -> str:
    """The value as compact JSON with sorted keys: equal values, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def short(value: Any, limit: int = 60) -> str:
    """The value as JSON for a message, cut to `limit` characters."""
    text = "(none)" if value is None else canon(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(node: dict[str, Any], key: str) -> str:
    return short(node[key]) if node.get(key) is not None else ("null" if key in node else "(none)")


def _values(values: list[Any]) -> str:
    shown = ", ".join(canon(value) for value in values[:5])
    return "{" + shown + (", …" if len(values) > 5 else "") + "}"
