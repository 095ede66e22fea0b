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
import multiprocessing
import os
import re
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from .names import pascal_case, python_identifier
from .snapshot import ToolSnapshot

__all__ = ["ModelError", "Param", "ToolModels", "generate_all", "generate_models"]

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


def _strip_top_descriptions(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
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


def generate_models(tool: ToolSnapshot, ident: str) -> ToolModels:
    """Generate the models of `tool`, whose function is named `ident`.

    Raises:
        ModelError: datamodel-code-generator rejected a schema, or its output lacks
            the input class.
    """
    from datamodel_code_generator import InputFileType, LiteralType, generate
    from datamodel_code_generator.enums import DataModelType
    from datamodel_code_generator.format import PythonVersion

    entry: dict[str, Any] = {
        "name": ident,
        "inputSchema": _strip_top_descriptions(tool.input_schema),
    }
    if tool.output_schema is not None:
        output = copy.deepcopy(tool.output_schema)
        for key in ("$schema", "title", "$id"):
            output.pop(key, None)
        _simplify(output)
        entry["outputSchema"] = output
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
    source = (
        "\n".join(
            line for line in source.splitlines() if not line.startswith(_HEADER_PREFIX)
        ).strip()
        + "\n"
    )
    base = pascal_case(ident)
    source = _rename_numbered(source)
    return _read_models(
        source,
        f"{base}Input",
        f"{base}Output" if "outputSchema" in entry else None,
        _descriptions(tool.input_schema),
    )


PARALLEL_THRESHOLD = 200
"""Below this many tools, worker processes cost more than they save."""


def _generate_or_error(job: tuple[ToolSnapshot, str]) -> ToolModels | str:
    try:
        return generate_models(*job)
    except ModelError as exc:
        return str(exc)


def generate_all(
    jobs: Sequence[tuple[ToolSnapshot, str]], on_done: Callable[[], None] | None = None
) -> list[ToolModels | str]:
    """`generate_models` for each (tool, ident), in order; an error's message in place of models.

    Large catalogs are spread over the machine's cores; the result is the same.
    `on_done` is called after each tool.
    """
    done = on_done or (lambda: None)
    workers = min(os.cpu_count() or 1, 8)
    results: list[ToolModels | str] = []
    if len(jobs) < PARALLEL_THRESHOLD or workers < 2:
        for job in jobs:
            results.append(_generate_or_error(job))
            done()
        return results
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for result in pool.map(_generate_or_error, jobs, chunksize=32):
            results.append(result)
            done()
    return results


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
    for node in classes:
        match = _NUMBERED.fullmatch(node.name)
        if match is None or match.group("base") not in names:
            continue
        for wanted in _variant_names(node, match.group("base"), classes):
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


def _variant_names(node: ast.ClassDef, base: str, classes: list[ast.ClassDef]) -> list[str]:
    wanted: list[str] = []
    for item in node.body:
        if isinstance(item, ast.AnnAssign):
            value = _single_literal(item.annotation)
            if value is not None and python_identifier(value, fallback="") != "":
                wanted.append(pascal_case(python_identifier(value, fallback="")) + base)
    for other in classes:
        if other is not node and any(
            isinstance(item, ast.Name) and item.id == node.name for item in ast.walk(other)
        ):
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
        annotation, alias = _unwrap(node.annotation, source)
        wire = alias or name
        default = _default(node.value, source)
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


def _unwrap(annotation: ast.expr, source: str) -> tuple[str, str | None]:
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
    text = ast.get_source_segment(source, annotation) or ast.unparse(annotation)
    return " ".join(text.split()), alias


def _optional(annotation: str) -> bool:
    parts = [part.strip() for part in annotation.split("|")]
    return "None" in parts or annotation.startswith(("Optional[", "Any"))


def _default(value: ast.expr | None, source: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, ast.Call):
        # Field(default_factory=...) and friends: the model fills it in when omitted.
        return "None"
    text = ast.get_source_segment(source, value) or ast.unparse(value)
    return text
