"""The build's shortcuts give exactly what the long way gives.

- `flatmodels` writes, for flat schemas, the text datamodel-code-generator writes:
  compared byte for byte on real schemas (a sample here, all of both dev corpora
  in the slow suite) and on hand-made edge cases.
- Tools sharing a schema share one run of datamodel-code-generator, renamed: the
  same models as their own runs (sample here, all in the slow suite).
- The snapshot text rebuilt from an earlier one's unchanged servers is the text.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import codegen.models as models
from codegen.flatmodels import flat_source
from codegen.models import (
    ModelError,
    ToolModels,
    _descriptions,
    _entry,
    _read_models,
    _Segments,
    datamodel_source,
    generate_models,
    schema_key,
)
from codegen.snapshot import Snapshot, ToolSnapshot, server_chunks, server_from_chunk
from tests.conftest import SHARED_DATA, build

CORPORA = (
    SHARED_DATA / "toucan-tools-dev.jsonl",
    SHARED_DATA / "stabletoolbench-dev" / "tools.jsonl",
)


def distinct_tools(*, flat: bool) -> Iterator[ToolSnapshot]:
    """Each distinct input schema of the dev corpora once, flat ones or the others."""
    seen: set[str] = set()
    for corpus in CORPORA:
        for line in corpus.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            tool = ToolSnapshot.model_validate(
                {"name": row["name"], "inputSchema": row["inputSchema"]}
            )
            key = schema_key(tool)
            if key in seen:
                continue
            seen.add(key)
            if (flat_source(_entry(tool, "t")["inputSchema"], "TInput") is not None) == flat:
                yield tool


def assert_flat_equals_datamodel(tool: ToolSnapshot) -> None:
    entry = _entry(tool, "get_forecast")
    fast = flat_source(entry["inputSchema"], "GetForecastInput")
    assert fast is not None
    slow = datamodel_source(entry)
    assert fast == slow, json.dumps(entry["inputSchema"])
    # The parameters read off the model: from the fields the fast path knows, or by parsing.
    read = _read_models(slow, "GetForecastInput", None, _descriptions(tool.input_schema))
    assert generate_models(tool, "get_forecast") == read


EDGE_CASES: dict[str, dict[str, Any]] = {
    "everything": {
        "type": "object",
        "properties": {
            "q": {"type": "string", "default": 'it\'s "quoted" \\ and ünïcode'},
            "n": {"type": "integer", "minimum": -1, "maximum": 10, "default": 5, "examples": [1]},
            "x": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5, "default": 1e20},
            "b": {"type": "boolean", "default": True},
            "e": {"type": "string", "enum": ["a", "b"], "default": "a"},
            "i": {"type": "integer", "enum": [1, 2]},
            "c": {"type": "string", "const": "fixed"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "default": []},
            "any": {"type": "array"},
            "free": {},
            "maybe": {"type": ["null", "integer"]},
            "p": {"type": "string", "pattern": "^\\d+$", "minLength": 1, "maxLength": 9},
            "id": {"type": "string"},
            "fooBar": {"type": "string"},
        },
        "required": ["q", "e", "maybe", "tags"],
        "additionalProperties": False,
    },
    "unions_dicts_enum_lists": {
        "type": "object",
        "properties": {
            "opt": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "req_null": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "null_first": {"anyOf": [{"type": "null"}, {"type": "number"}], "default": 1.5},
            "two": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "two_opt": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
            "lists": {
                "anyOf": [
                    {"type": "array", "items": {"type": "integer"}},
                    {"type": "array"},
                    {"type": "string"},
                    {"type": "null"},
                ],
                "default": [],
            },
            "obj": {"type": "object"},
            "obj_any": {"type": "object", "additionalProperties": True, "default": {}},
            "obj_empty": {"type": "object", "additionalProperties": {}},
            "obj_str": {"type": "object", "additionalProperties": {"type": "string"}},
            "obj_null": {"type": ["object", "null"], "default": None},
            "kinds": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "codes": {
                "type": "array",
                "items": {"enum": [1, 2], "type": "integer"},
                "minItems": 1,
                "default": [1],
            },
            "anything": {"type": "array", "items": {}},
        },
        "required": ["req_null", "two", "obj", "obj_str", "kinds"],
    },
    "renamed_fields": {
        "type": "object",
        "properties": {
            "from": {"type": "string"},
            "class": {"type": "integer", "minimum": 1, "default": 3},
            "if": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "user-id": {"type": "string", "examples": ["u1"], "maxLength": 9},
            "Get-HTTP-url2": {"type": "object"},
            "a_b-c": {"type": "string"},
            "in-x": {"type": "boolean"},
        },
        "required": ["from", "user-id"],
    },
    "empty": {"type": "object"},
    "no_properties_extra_allowed": {
        "type": "object",
        "properties": {},
        "additionalProperties": True,
    },
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_flat_models_equal_datamodel_code_generators_on_edge_cases(name: str) -> None:
    assert_flat_equals_datamodel(
        ToolSnapshot.model_validate({"name": "t", "inputSchema": EDGE_CASES[name]})
    )


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"json": {"type": "string"}}},  # a BaseModel method
        {"type": "object", "properties": {"user.id": {"type": "string"}}},  # not an identifier
        {"type": "object", "properties": {"True": {"type": "string"}}},  # a capitalized keyword
        {"type": "object", "properties": {"a": {"type": "number", "enum": [1.5]}}},
        {"type": "object", "properties": {"a": {"type": "string", "default": {"x": 1}}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {}}},
        {"type": "object", "properties": {"a": {"type": "string", "default": "bell\u0007"}}},
        {"type": "object", "properties": {"TInput": {"type": "string"}}},  # the class's own name
        # Renamed fields that would clash: datamodel-code-generator numbers one of them.
        {"type": "object", "properties": {"x-y": {"type": "string"}, "x_y": {"type": "string"}}},
        {"type": "object", "properties": {"x_y": {"type": "string"}, "x-y": {"type": "string"}}},
        {"type": "object", "properties": {"from": {"type": "string"}, "from_": {}}},
        {"type": "object", "properties": {"a--b": {"type": "string"}}},
        {"type": "object", "properties": {"model-config": {"type": "string"}}},
        {"type": "object", "properties": {"None": {"type": "string"}}},
        # Unions: repeated members, one member, nested or constrained members, enums.
        {
            "type": "object",
            "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "string"}]}},
        },
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}},
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "null"}, {"type": "null"}]}}},
        {"type": "object", "properties": {"a": {"anyOf": [{"type": "object"}, {"type": "null"}]}}},
        {
            "type": "object",
            "properties": {"a": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]}},
        },
        {
            "type": "object",
            "properties": {"a": {"anyOf": [{"const": "x", "type": "string"}, {"type": "null"}]}},
        },
        {
            "type": "object",
            "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "A"}},
        },
        # Objects with more than a value type: models, or constraints datamodel-code-generator adds.
        {"type": "object", "properties": {"a": {"type": "object", "properties": {}}}},
        {"type": "object", "properties": {"a": {"type": "object", "additionalProperties": False}}},
        {
            "type": "object",
            "properties": {"a": {"type": "object", "additionalProperties": {"type": "array"}}},
        },
        {"type": "object", "properties": {"a": {"type": "object", "default": {"k": 1}}}},
        {"type": "object", "properties": {"a": {"type": "string", "additionalProperties": True}}},
        {"type": "object", "properties": {"a": {"type": "string", "default": {}}}},
        # Lists of enums of other kinds, or of objects.
        {
            "type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "number", "enum": [1.5]}}},
        },
        {"type": "object", "properties": {"a": {"type": "array", "items": {"enum": ["x"]}}}},
        {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object"}}}},
    ],
)
def test_what_is_not_flat_is_left_to_datamodel_code_generator(schema: dict[str, Any]) -> None:
    assert flat_source(schema, "TInput") is None


def test_flat_models_equal_datamodel_code_generators_on_a_corpus_sample() -> None:
    sample = list(distinct_tools(flat=True))[::12]  # about 220 of the 2,640 flat schemas
    assert len(sample) > 200
    for tool in sample:
        assert_flat_equals_datamodel(tool)


@pytest.mark.slow
def test_flat_models_equal_datamodel_code_generators_on_both_corpora() -> None:
    checked = 0
    for tool in distinct_tools(flat=True):
        assert_flat_equals_datamodel(tool)
        checked += 1
    assert checked > 2500


def assert_shared_equals_own(tool: ToolSnapshot) -> None:
    memo: dict[str, str | None] = {}
    for ident in ("get_forecast", "search"):
        try:
            own: ToolModels | str = generate_models(tool, ident)
        except ModelError as exc:
            own = str(exc)
        try:
            shared: ToolModels | str = generate_models(tool, ident, memo)
        except ModelError as exc:
            shared = str(exc)
        assert shared == own, json.dumps(tool.input_schema)


def test_tools_sharing_a_schema_get_their_own_models_from_one_run() -> None:
    sample = list(distinct_tools(flat=False))[::5]  # about 50 of the 250 others
    assert len(sample) > 40
    for tool in sample:
        assert_shared_equals_own(tool)


@pytest.mark.slow
def test_tools_sharing_a_schema_get_their_own_models_on_both_corpora() -> None:
    for tool in distinct_tools(flat=False):
        assert_shared_equals_own(tool)


def test_datamodel_code_generator_runs_once_per_shared_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = {
        "type": "object",
        "properties": {"point": {"type": "object", "properties": {"x": {"type": "integer"}}}},
    }
    tools = [
        {"name": name, "description": f"Tool {name}.", "inputSchema": nested}
        for name in ("alpha", "beta", "gamma", "delta")
    ]
    snapshot = Snapshot.model_validate({"servers": [{"name": "s", "tools": tools}]})
    calls: list[str] = []
    real = models.datamodel_source

    def counted(entry: dict[str, Any]) -> str:
        calls.append(entry["name"])
        return real(entry)

    monkeypatch.setattr(models, "datamodel_source", counted)
    report = build(tmp_path / "out", name="pkg", snapshot=snapshot)
    assert report.modules == 4 and len(calls) == 1
    source = (tmp_path / "out/pkg/servers/s/gamma.py").read_text(encoding="utf-8")
    assert "class GammaInput(BaseModel)" in source and "Alpha" not in source


def test_worker_processes_make_each_shared_schema_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large build spreads tools over worker processes; tools with the same schema go to
    the same one, so datamodel-code-generator still runs once per schema."""
    import codegen.toolmodule as toolmodule

    if toolmodule.worker_count() < 2:
        pytest.skip("one CPU: no worker processes")
    variants = [
        {
            "type": "object",
            "properties": {"point": {"type": "object", "properties": {name: {"type": "integer"}}}},
        }
        for name in ("x", "y", "z")
    ]
    count = toolmodule.PARALLEL_THRESHOLD + 40
    servers = [
        {
            "name": f"s{server}",
            "tools": [
                {"name": f"t{number}", "inputSchema": variants[number % 3]}
                for number in range(server, count, 4)
            ],
        }
        for server in range(4)
    ]
    snapshot = Snapshot.model_validate({"servers": servers})
    runs = tmp_path / "runs"  # the workers are other processes: they count in a file
    real = models.datamodel_source

    def counted(entry: dict[str, Any]) -> str:
        with runs.open("a", encoding="utf-8") as file:
            file.write("run\n")
        return real(entry)

    monkeypatch.setattr(models, "datamodel_source", counted)
    report = build(tmp_path / "out", name="pkg", snapshot=snapshot)
    assert report.modules == count
    assert runs.read_text(encoding="utf-8").count("run") == 3


def test_segments_are_the_standard_source_segments() -> None:
    source = (
        "class Ünï(BaseModel):\n"
        "    a: Annotated[\n        list[str] | None, Field(examples=['é\\u2028'])\n    ] = None\r\n"
        "    b: Literal['x', 'ÿ'] = 'ÿ'\n"
    )
    segments = _Segments(source)
    nodes = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.expr)]
    assert len(nodes) > 10
    for node in nodes:
        assert segments.text(node) == ast.get_source_segment(source, node)


def test_snapshot_text_reusing_unchanged_servers_is_the_text() -> None:
    rows = [json.loads(line) for line in CORPORA[0].read_text(encoding="utf-8").splitlines()][:400]
    servers: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        servers.setdefault(row["server"], []).append(
            {
                "name": row["name"],
                "description": row.get("description") or "",
                "inputSchema": row["inputSchema"],
            }
        )
    wire = {"servers": [{"name": name, "tools": tools} for name, tools in servers.items()]}
    before = Snapshot.model_validate(wire)
    text = before.to_json()
    changed = copy.deepcopy(before.wire())
    changed["servers"][3]["tools"][0]["description"] += " Now better."
    del changed["servers"][5]
    changed["servers"].append({"name": "~new", "tools": [{"name": "t", "inputSchema": {}}]})
    after = Snapshot.model_validate(changed)
    chunks = server_chunks(text.encode("utf-8"))
    assert chunks is not None and list(chunks) == [
        server["name"] for server in before.wire()["servers"]
    ]
    old = {server["name"]: server for server in before.wire()["servers"]}
    same = {
        server["name"] for server in after.wire()["servers"] if old.get(server["name"]) == server
    }
    assert len(same) == len(after.servers) - 2  # the changed one and the new one are written
    expected = Snapshot.model_validate(changed).to_json().encode("utf-8")
    assert after.text_reusing(chunks, same) == expected
    assert after.text_reusing(chunks, set()) == expected
    assert all(server_from_chunk(chunks[name]) == old[name] for name in same)
    empty = Snapshot()
    assert empty.text_reusing(chunks, same) == empty.to_json().encode("utf-8")
    assert server_chunks(b"not a snapshot") is None


def test_definitions_nothing_refers_to_are_left_out() -> None:
    """A server that gives every tool its whole API's `$defs` gets models for what the tool uses."""
    used = {"type": "object", "properties": {"x": {"$ref": "#/$defs/Point"}}}
    schema = {
        "type": "object",
        "$defs": {
            "Unused": {"type": "object", "properties": {"u": {"type": "string"}}},
            "Shape": used,
            "Point": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
        "properties": {"shape": {"$ref": "#/$defs/Shape"}, "n": {"type": "integer"}},
        "required": ["n"],
    }
    models_ = generate_models(
        ToolSnapshot.model_validate({"name": "t", "inputSchema": schema}), "t"
    )
    # Point is used by a used definition; Unused by nothing.
    assert models_.class_names == ("TInputPoint", "TInputShape", "TInput")
    assert "Unused" not in models_.source
    # Only unused ones: the schema becomes flat, with the text of one that never had them.
    only_unused = dict(schema, properties={"n": {"type": "integer"}})
    plain = {key: value for key, value in only_unused.items() if key != "$defs"}
    assert flat_source(_entry(_tool(only_unused), "t")["inputSchema"], "TInput") is not None
    assert generate_models(_tool(only_unused), "t") == generate_models(_tool(plain), "t")


@pytest.mark.parametrize(
    "ref",
    ["#/$defs/Missing", "#/properties/n", "#/$defs/A~1B", "https://example.com/s.json", 7],
)
def test_definitions_are_kept_whole_beside_a_reference_they_cannot_follow(ref: object) -> None:
    schema = {
        "type": "object",
        "$defs": {"Unused": {"type": "string"}},
        "properties": {"n": {"type": "integer"}, "r": {"$ref": ref}},
    }
    assert _entry(_tool(schema), "t")["inputSchema"]["$defs"] == {"Unused": {"type": "string"}}


def _tool(schema: dict[str, Any]) -> ToolSnapshot:
    return ToolSnapshot.model_validate({"name": "t", "inputSchema": schema})
