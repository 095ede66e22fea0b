"""Pydantic models for a tool's input and output, by datamodel-code-generator.

Each tool's schemas go through datamodel-code-generator's `mcp-tools` input type,
which names the classes `<Tool>Input` and `<Tool>Output`. The generated function's
parameters are then read off the input model's fields (ast), so a parameter has
exactly the type and default the model validates against.

Descriptions of top-level properties are taken out of the schema first: they are
the docstring's Args section, and printing them twice would double the tokens an
agent spends reading the module. Nested models keep theirs.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import tokenize
import warnings
from dataclasses import dataclass
from typing import Any

from .flatmodels import FlatModels, flat_models
from .names import pascal_case, python_identifier
from .snapshot import ToolSnapshot

__all__ = [
    "ModelError",
    "Param",
    "ToolModels",
    "datamodel_source",
    "generate_models",
    "rename_models",
    "schema_key",
]

_HEADER_PREFIX = "#"


class ModelError(Exception):
    """A schema datamodel-code-generator cannot turn into models."""


@dataclass(frozen=True)
class Param:
    """One keyword-only parameter of a generated function."""

    name: str
    wire_name: str
    annotation: str
    default: str | None
    description: str

    @property
    def required(self) -> bool:
        """Whether the caller must pass it."""
        return self.default is None


@dataclass(frozen=True)
class ToolModels:
    """The model source for one tool, and what the function needs from it."""

    source: str
    input_class: str
    output_class: str | None
    params: tuple[Param, ...]
    class_names: tuple[str, ...]


def _simplify(node: Any) -> None:
    """Drop what would cost tokens or extras, or force callers to build objects.

    String formats go: `uri` would make a parameter `AnyUrl`, `date-time` a
    `datetime`, `email` an `EmailStr` that needs `pydantic[email]`; agent code
    passes strings, the wire carries strings, and the server checks its own
    formats. Property titles go too: pydantic servers derive them from the
    property name (`day_of_week` -> "Day Of Week").
    """
    if isinstance(node, dict):
        if isinstance(node.get("format"), str):
            del node["format"]
        properties = node.get("properties")
        if isinstance(properties, dict):
            for prop in properties.values():
                if isinstance(prop, dict) and isinstance(prop.get("title"), str):
                    del prop["title"]
        for value in node.values():
            _simplify(value)
    elif isinstance(node, list):
        for value in node:
            _simplify(value)


_SECTIONS = ("$defs", "definitions")
_LOCAL_REF = re.compile(r"#/(\$defs|definitions)/([A-Za-z0-9_.-]+)")


def _without_unused_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without the top-level definitions that nothing in it refers to.

    Servers generated from an API spec often give every tool the whole spec's
    `$defs` (one server of the dev corpus: 34 response models beside a few
    boolean parameters). datamodel-code-generator writes a class for each: a 70 KB
    module an agent reads for nothing, and a quarter-second to make it. Only
    references of the plain form `#/$defs/<name>` (or `#/definitions/<name>`) are
    followed; with any other, or one to a missing name, the schema is left whole.
    The original is not modified.
    """
    sections = {key: schema[key] for key in _SECTIONS if key in schema}
    if not sections or not all(isinstance(value, dict) for value in sections.values()):
        return schema
    wanted: set[tuple[str, str]] = set()
    pending: list[Any] = [value for key, value in schema.items() if key not in sections]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if "$ref" in node:
            found = _LOCAL_REF.fullmatch(node["$ref"]) if isinstance(node["$ref"], str) else None
            if found is None or found.group(2) not in sections.get(found.group(1), {}):
                return schema
            target = (found.group(1), found.group(2))
            if target not in wanted:
                wanted.add(target)
                pending.append(sections[target[0]][target[1]])
        pending.extend(node.values())
    pruned: dict[str, Any] = {}
    for key, value in schema.items():  # in the schema's own order, which the output follows
        if key in sections:
            kept = {name: item for name, item in value.items() if (key, name) in wanted}
            if kept:
                pruned[key] = kept
        else:
            pruned[key] = value
    return pruned


def _strip_top_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(_without_unused_definitions(schema))
    _simplify(schema)
    for key in ("$schema", "title", "description", "$id"):
        schema.pop(key, None)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for prop in properties.values():
            if isinstance(prop, dict):
                prop.pop("description", None)
                prop.pop("title", None)
    return schema


def _descriptions(schema: dict[str, Any]) -> dict[str, str]:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    found: dict[str, str] = {}
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        text = prop.get("description")
        title = prop.get("title")
        if (
            not text
            and isinstance(title, str)
            and python_identifier(title) != python_identifier(name)
        ):
            text = title  # a title that says more than the name restated
        found[name] = text if isinstance(text, str) else ""
    return found


def _entry(tool: ToolSnapshot, ident: str) -> dict[str, Any]:
    """The `mcp-tools` entry datamodel-code-generator is given for `tool`."""
    entry: dict[str, Any] = {
        "name": ident,
        "inputSchema": _strip_top_descriptions(tool.input_schema),
    }
    if tool.output_schema is not None:
        output = copy.deepcopy(_without_unused_definitions(tool.output_schema))
        for key in ("$schema", "title", "$id"):
            output.pop(key, None)
        _simplify(output)
        entry["outputSchema"] = output
    return entry


def datamodel_source(entry: dict[str, Any]) -> str:
    """datamodel-code-generator's module for one `mcp-tools` entry, without its header comment.

    Raises:
        ModelError: datamodel-code-generator rejected a schema.
    """
    from datamodel_code_generator import InputFileType, LiteralType, generate
    from datamodel_code_generator.enums import DataModelType
    from datamodel_code_generator.format import PythonVersion

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = generate(
                [entry],
                input_file_type=InputFileType.MCPTools,
                output_model_type=DataModelType.PydanticV2BaseModel,
                target_python_version=PythonVersion.PY_311,
                disable_timestamp=True,
                use_annotated=True,
                formatters=[],
                allow_population_by_field_name=True,
                enum_field_as_literal=LiteralType.All,
                field_constraints=True,
                use_union_operator=True,
                use_standard_collections=True,
                capitalise_enum_members=False,
                allow_remote_refs=False,  # a schema is data: never fetch what it points to
            )
    except RecursionError:
        raise ModelError("the schema nests too deeply to generate models") from None
    except Exception as exc:  # datamodel-code-generator raises many kinds on bad schemas
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(message) from None
    if not isinstance(source, str):
        raise ModelError("datamodel-code-generator produced several modules for one tool")
    return (
        "\n".join(
            line for line in source.splitlines() if not line.startswith(_HEADER_PREFIX)
        ).strip()
        + "\n"
    )


_SHARED_IDENT = "mcp_codegen_shared_schema"
_SHARED_BASE = pascal_case(_SHARED_IDENT)


def schema_key(tool: ToolSnapshot) -> str:
    """What a tool's models depend on besides its name: equal keys, models equal but for names."""
    entry = _entry(tool, _SHARED_IDENT)
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rename_models(source: str, old: str, new: str) -> str | None:
    """`source` with the classes `<old>Input` / `<old>Output` renamed `<new>...`, if that is safe.

    Safe means the old name occurs only as those two class names (never inside
    another name, a string or a comment) and the new names occur nowhere yet, so
    the result is what datamodel-code-generator writes when given the new name;
    otherwise None.
    """
    wanted = {f"{old}Input": f"{new}Input", f"{old}Output": f"{new}Output"}
    taken = set(wanted.values())
    edits: list[tuple[int, int, int, str]] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME:
                if token.string in wanted:
                    (row, col), (_, end) = token.start, token.end
                    edits.append((row, col, end, wanted[token.string]))
                    continue
                if old in token.string or token.string in taken:
                    return None
            elif old in token.string or any(name in token.string for name in taken):
                return None
    except (tokenize.TokenError, SyntaxError):
        return None
    lines = source.splitlines(keepends=True)
    for row, col, end, name in reversed(edits):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + name + line[end:]
    return "".join(lines)


def _shared_source(entry: dict[str, Any], memo: dict[str, str | None]) -> str | None:
    """The models of `entry`'s schemas under the shared name, made once per `memo`."""
    shared = dict(entry, name=_SHARED_IDENT)
    key = json.dumps(shared, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if key not in memo:
        try:
            memo[key] = datamodel_source(shared)
        except ModelError:
            memo[key] = None  # the tool's own call reports it, in its own words
    return memo[key]


def generate_models(
    tool: ToolSnapshot, ident: str, memo: dict[str, str | None] | None = None
) -> ToolModels:
    """Generate the models of `tool`, whose function is named `ident`.

    A flat input schema (most are) is written by `flatmodels`, with the very
    text datamodel-code-generator would write; any other goes to
    datamodel-code-generator. With a `memo`, tools whose schemas are the same
    (`schema_key`) share one run of it, under a shared name, renamed for each
    (`rename_models`) where that gives the text their own run would give.

    Raises:
        ModelError: datamodel-code-generator rejected a schema, or its output lacks
            the input class.
    """
    entry = _entry(tool, ident)
    base = pascal_case(ident)
    source = None
    if "outputSchema" not in entry:
        flat = flat_models(entry["inputSchema"], f"{base}Input")
        if flat is not None:
            return _flat_models(flat, f"{base}Input", _descriptions(tool.input_schema))
    if source is None and memo is not None:
        shared = _shared_source(entry, memo)
        if shared is not None:
            source = rename_models(shared, _SHARED_BASE, base)
    if source is None:
        source = datamodel_source(entry)
    # After the shared run's renaming: its numbered classes are named from `base`.
    source = _rename_numbered(source)
    return _read_models(
        source,
        f"{base}Input",
        f"{base}Output" if "outputSchema" in entry else None,
        _descriptions(tool.input_schema),
    )


def _flat_models(flat: FlatModels, input_class: str, descriptions: dict[str, str]) -> ToolModels:
    """`_read_models` of a flat model, from the fields its writer knows (no parse needed)."""
    required: list[Param] = []
    optional: list[Param] = []
    for field in flat.fields:
        annotation = field.annotation
        if field.default == "None" and not _optional(annotation):
            annotation += " | None"
        wire = field.alias or field.name
        param = Param(field.name, wire, annotation, field.default, descriptions.get(wire, ""))
        (required if field.default is None else optional).append(param)
    return ToolModels(
        source=flat.source,
        input_class=input_class,
        output_class=None,
        params=tuple(required + optional),
        class_names=(input_class,),
    )


_NUMBERED = re.compile(r"(?P<base>[A-Za-z_][A-Za-z0-9_]*?)[0-9]+")


def _rename_numbered(source: str) -> str:
    """Name `Entity1` (datamodel-code-generator's second `Entity`) after what it is.

    Two nested models that would share a name (an input's item and an output's,
    two variants of a union) get numeric suffixes. The numbered one is renamed
    by its single-valued `Literal` field when it has one (`Content1` with
    `type: Literal["resource"]` -> `ResourceContent`), else by the model that
    refers to it (`Entity1` in `CreateEntitiesOutput` -> `CreateEntitiesOutputEntity`).
    Source that refers to a class in a string is left as it is.
    """
    tree = ast.parse(source)
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    names = {node.name for node in classes}
    taken = set(names)
    renames: dict[str, str] = {}
    referenced: dict[int, frozenset[str]] | None = None
    for node in classes:
        match = _NUMBERED.fullmatch(node.name)
        if match is None or match.group("base") not in names:
            continue
        if referenced is None:
            # Each class's names, walked once: walking every other class again for each
            # numbered one was quadratic, seconds of a 10,000-tool build.
            referenced = {
                id(other): frozenset(
                    item.id for item in ast.walk(other) if isinstance(item, ast.Name)
                )
                for other in classes
            }
        for wanted in _variant_names(node, match.group("base"), classes, referenced):
            if wanted not in taken:
                renames[node.name] = wanted
                taken.add(wanted)
                break
    if not renames:
        return source
    edits: list[tuple[int, int, str]] = []
    for item in ast.walk(tree):
        if isinstance(item, ast.ClassDef) and item.name in renames:
            edits.append((item.lineno, item.col_offset + len("class "), item.name))
        elif isinstance(item, ast.Name) and item.id in renames:
            edits.append((item.lineno, item.col_offset, item.id))
        elif isinstance(item, ast.Constant) and item.value in renames:
            return source  # a forward reference in a string: renaming could break it
    lines = [line.encode() for line in source.splitlines(keepends=True)]
    for lineno, offset, old in sorted(edits, reverse=True):
        line = lines[lineno - 1]  # ast offsets count UTF-8 bytes
        if line[offset : offset + len(old)] != old.encode():
            return source
        lines[lineno - 1] = line[:offset] + renames[old].encode() + line[offset + len(old) :]
    return b"".join(lines).decode()


def _variant_names(
    node: ast.ClassDef,
    base: str,
    classes: list[ast.ClassDef],
    referenced: dict[int, frozenset[str]],
) -> list[str]:
    """Names for the numbered class `node`: by its single-valued Literal, then by the first
    class that refers to it (`referenced`: the names each class uses, by `id` of the class)."""
    wanted: list[str] = []
    for item in node.body:
        if isinstance(item, ast.AnnAssign):
            value = _single_literal(item.annotation)
            if value is not None and python_identifier(value, fallback="") != "":
                wanted.append(pascal_case(python_identifier(value, fallback="")) + base)
    for other in classes:
        if other is not node and node.name in referenced[id(other)]:
            wanted.append(other.name + base)
            break
    return wanted


def _single_literal(annotation: ast.expr) -> str | None:
    """`"x"` for `Literal["x"]` (also inside `Annotated[...]` or `| None`), else None."""
    if (
        isinstance(annotation, ast.BinOp)
        and isinstance(annotation.op, ast.BitOr)
        and isinstance(annotation.right, ast.Constant)
        and annotation.right.value is None
    ):
        annotation = annotation.left
    if (
        isinstance(annotation, ast.Subscript)
        and isinstance(annotation.value, ast.Name)
        and annotation.value.id == "Annotated"
        and isinstance(annotation.slice, ast.Tuple)
        and annotation.slice.elts
    ):
        annotation = annotation.slice.elts[0]
    if (
        isinstance(annotation, ast.Subscript)
        and isinstance(annotation.value, ast.Name)
        and annotation.value.id == "Literal"
        and isinstance(annotation.slice, ast.Constant)
        and isinstance(annotation.slice.value, str)
    ):
        return annotation.slice.value
    return None


def _read_models(
    source: str, input_class: str, output_class: str | None, descriptions: dict[str, str]
) -> ToolModels:
    tree = ast.parse(source)
    segments = _Segments(source)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    if input_class not in classes:
        raise ModelError(f"datamodel-code-generator did not produce {input_class}")
    if output_class is not None and output_class not in classes:
        raise ModelError(f"datamodel-code-generator did not produce {output_class}")
    required: list[Param] = []
    optional: list[Param] = []
    for node in classes[input_class].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        if name == "model_config":
            continue
        annotation, alias = _unwrap(node.annotation, segments)
        wire = alias or name
        default = _default(node.value, segments)
        if default == "None" and not _optional(annotation):
            annotation += " | None"
        param = Param(name, wire, annotation, default, descriptions.get(wire, ""))
        (required if default is None else optional).append(param)
    return ToolModels(
        source=source,
        input_class=input_class,
        output_class=output_class,
        params=tuple(required + optional),
        class_names=tuple(classes),
    )


class _Segments:
    """`ast.get_source_segment` for many nodes of one source, splitting its lines once.

    (The standard one splits the whole source again for every node: a third of
    the time of a flat tool's models went there.)
    """

    def __init__(self, source: str):
        # Lines end at \n, \r\n or \r only, as the parser (and ast's own helper) count them.
        self.lines = [
            line.encode() for line in re.split(r"(?<=\r\n)|(?<=\n)|(?<=\r)(?!\n)", source)
        ]

    def text(self, node: ast.expr) -> str:
        """The source text of `node`."""
        end_line, end_col = node.end_lineno, node.end_col_offset
        if end_line is None or end_col is None:
            return ast.unparse(node)
        first, last = node.lineno - 1, end_line - 1
        if first == last:
            return self.lines[first][node.col_offset : end_col].decode()
        parts = [self.lines[first][node.col_offset :], *self.lines[first + 1 : last]]
        parts.append(self.lines[last][:end_col])
        return b"".join(parts).decode()


def _unwrap(annotation: ast.expr, segments: _Segments) -> tuple[str, str | None]:
    """`Annotated[T, Field(alias="x")]` -> ("T", "x"); anything else -> (its text, None)."""
    alias = None
    if (
        isinstance(annotation, ast.Subscript)
        and isinstance(annotation.value, ast.Name)
        and annotation.value.id == "Annotated"
        and isinstance(annotation.slice, ast.Tuple)
    ):
        inner, *extras = annotation.slice.elts
        for extra in extras:
            if isinstance(extra, ast.Call):
                for keyword in extra.keywords:
                    if keyword.arg == "alias" and isinstance(keyword.value, ast.Constant):
                        alias = str(keyword.value.value)
        annotation = inner
    text = segments.text(annotation) or ast.unparse(annotation)
    return " ".join(text.split()), alias


def _optional(annotation: str) -> bool:
    parts = [part.strip() for part in annotation.split("|")]
    return "None" in parts or annotation.startswith(("Optional[", "Any"))


def _default(value: ast.expr | None, segments: _Segments) -> str | None:
    if value is None:
        return None
    if isinstance(value, ast.Call):
        # Field(default_factory=...) and friends: the model fills it in when omitted.
        return "None"
    text = segments.text(value) or ast.unparse(value)
    return text
