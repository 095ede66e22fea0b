"""Drift: every change class classified right, offline and against a real server that changes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from codegen.build import introspect_snapshot
from codegen.cli.drift import (
    EXIT_BREAKING,
    EXIT_COMPATIBLE,
    EXIT_ERROR,
    EXIT_NO_DRIFT,
    EXIT_TEXT,
    check_command,
    diff_command,
)
from codegen.cli.errors import EXIT_CODES
from codegen.diagnostics import Diagnostics
from codegen.drift import Change, DriftReport, diff_snapshots
from codegen.snapshot import ServerSnapshot, Snapshot

from .conftest import SERVERS, build, write_config

Schema = dict[str, Any]


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


def tool(
    name: str = "t", inp: Schema | None = None, out: Schema | None = None, **extra: Any
) -> Schema:
    wire: Schema = {"name": name, "inputSchema": inp if inp is not None else obj({}), **extra}
    if out is not None:
        wire["outputSchema"] = out
    return wire


def snapshot(*tools: Schema, server: str = "s") -> Snapshot:
    return Snapshot.model_validate({"servers": [{"name": server, "tools": list(tools)}]})


def found(report: DriftReport) -> set[tuple[str, str, str]]:
    return {(change.kind, change.severity, change.pointer) for change in report.changes}


def diff_tools(old: Schema, new: Schema) -> set[tuple[str, str, str]]:
    return found(diff_snapshots(snapshot(old), snapshot(new)))


P = "/inputSchema/properties"
OUT = "/outputSchema/properties"
STRING = {"type": "string"}

# (id, old tool, new tool, the changes expected: kind, severity, pointer)
CASES: list[tuple[str, Schema, Schema, set[tuple[str, str, str]]]] = [
    ("required parameter added", tool(inp=obj({})), tool(inp=obj({"q": STRING}, ("q",))),
     {("required-parameter-added", "breaking", f"{P}/q")}),
    ("optional parameter added", tool(inp=obj({})), tool(inp=obj({"q": STRING})),
     {("optional-parameter-added", "compatible", f"{P}/q")}),
    ("parameter removed", tool(inp=obj({"q": STRING})), tool(inp=obj({})),
     {("parameter-removed", "breaking", f"{P}/q")}),
    ("parameter made required", tool(inp=obj({"q": STRING})), tool(inp=obj({"q": STRING}, ("q",))),
     {("parameter-made-required", "breaking", f"{P}/q")}),
    ("parameter made optional", tool(inp=obj({"q": STRING}, ("q",))), tool(inp=obj({"q": STRING})),
     {("parameter-made-optional", "compatible", f"{P}/q")}),
    ("number narrowed to integer", tool(inp=obj({"n": {"type": "number"}})), tool(inp=obj({"n": {"type": "integer"}})),
     {("type-narrowed", "breaking", f"{P}/n/type")}),
    ("integer widened to number", tool(inp=obj({"n": {"type": "integer"}})), tool(inp=obj({"n": {"type": "number"}})),
     {("type-widened", "compatible", f"{P}/n/type")}),
    ("type changed", tool(inp=obj({"n": STRING})), tool(inp=obj({"n": {"type": "integer"}})),
     {("type-changed", "breaking", f"{P}/n/type")}),
    ("null removed from a type list", tool(inp=obj({"n": {"type": ["string", "null"]}})), tool(inp=obj({"n": STRING})),
     {("type-narrowed", "breaking", f"{P}/n/type")}),
    ("null added through anyOf", tool(inp=obj({"n": STRING})),
     tool(inp=obj({"n": {"anyOf": [STRING, {"type": "null"}]}})),
     {("type-widened", "compatible", f"{P}/n/type")}),
    ("nullable (OpenAPI) removed", tool(inp=obj({"n": {"type": "string", "nullable": True}})), tool(inp=obj({"n": STRING})),
     {("type-narrowed", "breaking", f"{P}/n/type")}),
    ("any narrowed to a type", tool(inp=obj({"n": {}})), tool(inp=obj({"n": STRING})),
     {("type-narrowed", "breaking", f"{P}/n/type")}),
    ("maxLength added", tool(inp=obj({"n": STRING})), tool(inp=obj({"n": {"type": "string", "maxLength": 5}})),
     {("constraint-added", "breaking", f"{P}/n/maxLength")}),
    ("maximum raised", tool(inp=obj({"n": {"type": "integer", "maximum": 5}})),
     tool(inp=obj({"n": {"type": "integer", "maximum": 9}})),
     {("constraint-loosened", "compatible", f"{P}/n/maximum")}),
    ("minimum raised", tool(inp=obj({"n": {"type": "integer", "minimum": 0}})),
     tool(inp=obj({"n": {"type": "integer", "minimum": 1}})),
     {("constraint-tightened", "breaking", f"{P}/n/minimum")}),
    ("pattern added", tool(inp=obj({"n": STRING})), tool(inp=obj({"n": {"type": "string", "pattern": "^a"}})),
     {("constraint-added", "breaking", f"{P}/n/pattern")}),
    ("pattern changed", tool(inp=obj({"n": {"type": "string", "pattern": "^a"}})),
     tool(inp=obj({"n": {"type": "string", "pattern": "^b"}})),
     {("constraint-changed", "breaking", f"{P}/n/pattern")}),
    ("pattern removed", tool(inp=obj({"n": {"type": "string", "pattern": "^a"}})), tool(inp=obj({"n": STRING})),
     {("constraint-removed", "compatible", f"{P}/n/pattern")}),
    ("enum value removed", tool(inp=obj({"e": {"enum": ["a", "b"]}})), tool(inp=obj({"e": {"enum": ["a"]}})),
     {("enum-value-removed", "breaking", f"{P}/e/enum")}),
    ("enum value added", tool(inp=obj({"e": {"enum": ["a"]}})), tool(inp=obj({"e": {"enum": ["a", "b"]}})),
     {("enum-value-added", "compatible", f"{P}/e/enum")}),
    ("enum inside Optional", tool(inp=obj({"e": {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]}})),
     tool(inp=obj({"e": {"anyOf": [{"enum": ["a"], "type": "string"}, {"type": "null"}]}})),
     {("enum-value-removed", "breaking", f"{P}/e/enum")}),
    ("free string limited to an enum", tool(inp=obj({"e": STRING})), tool(inp=obj({"e": {"type": "string", "enum": ["a"]}})),
     {("enum-added", "breaking", f"{P}/e/enum")}),
    ("additionalProperties false added", tool(inp=obj({})), tool(inp=obj({}, additionalProperties=False)),
     {("additional-properties-closed", "breaking", "/inputSchema/additionalProperties")}),
    ("array items narrowed", tool(inp=obj({"a": {"type": "array", "items": {"type": "number"}}})),
     tool(inp=obj({"a": {"type": "array", "items": {"type": "integer"}}})),
     {("type-narrowed", "breaking", f"{P}/a/items/type")}),
    ("nested required field added", tool(inp=obj({"p": obj({"x": STRING})})),
     tool(inp=obj({"p": obj({"x": STRING, "y": STRING}, ("y",))})),
     {("required-field-added", "breaking", f"{P}/p/properties/y")}),
    ("output field removed", tool(out=obj({"a": STRING, "b": STRING}, ("a", "b"))), tool(out=obj({"a": STRING}, ("a",))),
     {("output-field-removed", "breaking", f"{OUT}/b")}),
    ("output field made optional", tool(out=obj({"a": STRING}, ("a",))), tool(out=obj({"a": STRING})),
     {("output-field-made-optional", "breaking", f"{OUT}/a")}),
    ("output field made required", tool(out=obj({"a": STRING})), tool(out=obj({"a": STRING}, ("a",))),
     {("output-field-made-required", "compatible", f"{OUT}/a")}),
    ("output field added", tool(out=obj({"a": STRING})), tool(out=obj({"a": STRING, "b": STRING})),
     {("output-field-added", "compatible", f"{OUT}/b")}),
    # Outputs have the opposite variance: old generated models reject a wider value.
    ("output widened", tool(out=obj({"n": {"type": "integer"}})), tool(out=obj({"n": {"type": "number"}})),
     {("type-widened", "breaking", f"{OUT}/n/type")}),
    ("output narrowed", tool(out=obj({"n": {"type": "number"}})), tool(out=obj({"n": {"type": "integer"}})),
     {("type-narrowed", "compatible", f"{OUT}/n/type")}),
    ("output enum value added", tool(out=obj({"e": {"enum": ["a"]}})), tool(out=obj({"e": {"enum": ["a", "b"]}})),
     {("enum-value-added", "breaking", f"{OUT}/e/enum")}),
    ("outputSchema added", tool(), tool(out=obj({})), {("output-schema-added", "breaking", "/outputSchema")}),
    ("outputSchema removed", tool(out=obj({})), tool(), {("output-schema-removed", "breaking", "/outputSchema")}),
    ("description changed", tool(description="a"), tool(description="b"), {("description-changed", "text", "/description")}),
    ("title changed", tool(title="A"), tool(title="B"), {("title-changed", "text", "/title")}),
    ("parameter description changed", tool(inp=obj({"q": {"type": "string", "description": "a"}})),
     tool(inp=obj({"q": {"type": "string", "description": "b"}})),
     {("description-changed", "text", f"{P}/q/description")}),
    ("annotations changed", tool(annotations={"readOnlyHint": True}), tool(annotations={"readOnlyHint": False}),
     {("annotations-changed", "text", "/annotations")}),
    ("default removed", tool(inp=obj({"q": {"type": "string", "default": None}})), tool(inp=obj({"q": STRING})),
     {("default-changed", "compatible", f"{P}/q/default")}),
    ("unknown keyword changed", tool(inp=obj({"q": {"not": {"type": "null"}}})), tool(inp=obj({"q": {"not": STRING}})),
     {("schema-changed", "breaking", f"{P}/q/not")}),
    ("order only", tool(inp=obj({"e": {"enum": ["a", "b"]}})), tool(inp=obj({"e": {"enum": ["b", "a"]}})),
     {("definition-rewritten", "text", "")}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_each_change_class_is_classified(
    old: Schema, new: Schema, expected: set[tuple[str, str, str]]
) -> None:
    assert diff_tools(old, new) == expected


def test_identical_snapshots_have_no_drift() -> None:
    old = snapshot(tool(inp=obj({"q": STRING}, ("q",)), out=obj({"a": STRING}), description="d"))
    report = diff_snapshots(old, snapshot(*[t.to_json() for t in old.servers[0].tools]))
    assert report.changes == () and report.worst() is None and report.bump() is None


def test_refs_are_resolved_before_comparing() -> None:
    inline = tool(inp=obj({"p": obj({"x": {"type": "integer"}}, ("x",))}))
    via_ref = tool(
        inp={
            **obj({"p": {"$ref": "#/$defs/P"}}),
            "$defs": {"P": obj({"x": {"type": "integer"}}, ("x",))},
        }
    )
    # Same meaning, other bytes: only the snapshot is stale.
    assert diff_tools(inline, via_ref) == {("definition-rewritten", "text", "")}
    narrowed = tool(
        inp={
            **obj({"p": {"$ref": "#/definitions/P"}}),
            "definitions": {"P": obj({"x": {"type": "integer", "maximum": 3}}, ("x",))},
        }
    )
    assert diff_tools(via_ref, narrowed) == {
        ("constraint-added", "breaking", f"{P}/p/properties/x/maximum")
    }


def test_recursive_schemas_terminate() -> None:
    def tree(leaf: str) -> Schema:
        node = obj(
            {
                "value": {"type": leaf},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            }
        )
        return tool(inp={**obj({"root": {"$ref": "#/$defs/Node"}}), "$defs": {"Node": node}})

    assert diff_tools(tree("integer"), tree("number")) == {
        ("type-widened", "compatible", f"{P}/root/properties/value/type")
    }


def test_tools_and_servers_added_and_removed() -> None:
    a, b = tool("a"), tool("b", inp=obj({"x": STRING}))
    report = diff_snapshots(snapshot(a, b), snapshot(b, tool("c")))
    assert {(c.kind, c.severity, c.tool) for c in report.changes} == {
        ("tool-removed", "breaking", "a"),
        ("tool-added", "compatible", "c"),
    }
    both = Snapshot.model_validate(
        {"servers": [{"name": "s", "tools": [a]}, {"name": "u", "tools": [b]}]}
    )
    report = diff_snapshots(both, snapshot(a))
    assert {(c.kind, c.server, c.tool) for c in report.changes} == {
        ("server-removed", "u", None),
        ("tool-removed", "u", "b"),
    }
    assert diff_snapshots(snapshot(a), both).worst() == "compatible"


def test_a_server_added_or_removed_says_what_it_offers() -> None:
    docs = {
        "name": "docs",
        "resources": [
            {"uri": "file:///a.md", "name": "a"},
            {"uri": "file:///b.md", "name": "b"},
        ],
        "prompts": [{"name": "summarize"}],
    }
    base = snapshot(tool("a"))
    grown = Snapshot.model_validate({"servers": [*base.model_dump(by_alias=True)["servers"], docs]})
    added = {c.message for c in diff_snapshots(base, grown).changes if c.kind == "server-added"}
    assert added == {"server added with 0 tools, 2 resources, 1 prompt"}
    removed = {c.message for c in diff_snapshots(grown, base).changes if c.kind == "server-removed"}
    assert removed == {"server removed with 0 tools, 2 resources, 1 prompt"}
    plain = diff_snapshots(Snapshot.model_validate({"servers": []}), base).changes
    assert [c.message for c in plain if c.kind == "server-added"] == ["server added with 1 tool"]


def test_a_rename_is_removed_plus_added_with_a_note() -> None:
    report = diff_snapshots(snapshot(tool("old_name")), snapshot(tool("new_name")))
    removed, added = report.changes
    assert (removed.kind, removed.severity, added.kind) == (
        "tool-removed",
        "breaking",
        "tool-added",
    )
    assert "renamed to 'new_name'" in removed.message and "renamed from 'old_name'" in added.message


def test_report_order_counts_and_bump() -> None:
    old = snapshot(tool("z", inp=obj({"q": STRING}), description="a"), tool("a"))
    new = snapshot(tool("z", inp=obj({"q": STRING, "r": STRING}), description="b"))
    report = diff_snapshots(old, new)
    assert [c.severity for c in report.changes] == ["breaking", "compatible", "text"]
    assert report.counts() == {"breaking": 1, "compatible": 1, "text": 1}
    assert report.bump() == "major"
    assert (
        diff_snapshots(
            new, snapshot(tool("z", inp=obj({"q": STRING, "r": STRING}), description="c"))
        ).bump()
        == "patch"
    )
    assert diff_snapshots(snapshot(tool("a")), snapshot(tool("a"), tool("b"))).bump() == "minor"
    assert str(report.changes[0]) == "breaking: s/a: tool removed [tool-removed]"
    assert Change("k", "text", "s", None, "", "m").to_json() == {
        "kind": "k",
        "severity": "text",
        "server": "s",
        "pointer": "",
        "message": "m",
    }


# -- diff: offline, two files ------------------------------------------------


def invoke(command: Any, *args: str) -> Result:
    return CliRunner().invoke(command, list(args), catch_exceptions=False)


def test_diff_command_exit_codes_and_json(tmp_path: Path) -> None:
    old, same, text, compatible, breaking = (
        tmp_path / f"{name}.json" for name in ("old", "same", "text", "compatible", "breaking")
    )
    base = tool("t", inp=obj({"q": STRING}, ("q",)), description="d")
    snapshot(base).write(old)
    snapshot(base).write(same)
    snapshot({**base, "description": "e"}).write(text)
    snapshot(base, tool("u")).write(compatible)
    snapshot(tool("t", inp=obj({}), description="d")).write(breaking)
    assert invoke(diff_command, str(old), str(same)).exit_code == EXIT_NO_DRIFT
    assert invoke(diff_command, str(old), str(text)).exit_code == EXIT_TEXT
    assert invoke(diff_command, str(old), str(compatible)).exit_code == EXIT_COMPATIBLE
    result = invoke(diff_command, str(old), str(breaking))
    assert result.exit_code == EXIT_BREAKING
    assert (
        "breaking: s/t#/inputSchema/properties/q: parameter 'q' removed [parameter-removed]"
        in result.stdout
    )
    document = json.loads(invoke(diff_command, "--json", str(old), str(breaking)).stdout)
    assert (
        document["exit_code"] == EXIT_BREAKING
        and document["ok"] is True
        and document["bump"] == "major"
    )
    assert document["counts"] == {"breaking": 1, "compatible": 0, "text": 0}
    assert document["changes"][0]["pointer"] == "/inputSchema/properties/q"
    assert set(document["seconds"]) == {"total"} and document["old"]["tools"] == 1


def test_diff_command_unreadable_snapshot_is_an_error(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    snapshot(tool()).write(good)
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    result = invoke(diff_command, str(good), str(tmp_path / "bad.json"))
    assert result.exit_code == EXIT_CODES["snapshot"] and "bad.json:1: not JSON" in result.stderr
    document = json.loads(
        invoke(diff_command, "--json", str(good), str(tmp_path / "missing.json")).stdout
    )
    assert (
        document["ok"] is False
        and document["exit_code"] == EXIT_CODES["snapshot"]
        and document["compared"] is False
    )
    assert "missing.json" in document["errors"][0]["message"]


# -- check: a real server whose tools change between two runs ----------------

V1: list[Schema] = [
    tool(
        "search",
        inp=obj(
            {
                "q": STRING,
                "limit": {"type": "number"},
                "mode": {"enum": ["fast", "slow"]},
                "when": STRING,
                "tags": {"type": "array", "items": STRING},
                "opts": {"$ref": "#/$defs/Opts"},
            },
            ("q",),
            **{"$defs": {"Opts": obj({"verbose": {"type": "boolean"}})}},
        ),
        out=obj(
            {"hits": {"type": "array", "items": STRING}, "total": {"type": "integer"}},
            ("hits", "total"),
        ),
        description="Search.",
        title="Search",
    ),
    tool("gone", description="Goes away."),
    tool("old_name", inp=obj({"x": {"type": "integer"}}, ("x",))),
]
V2: list[Schema] = [
    tool(
        "search",
        inp=obj(
            {
                "q": {"type": "string", "maxLength": 50},
                "limit": {"type": "integer"},
                "mode": {"enum": ["fast", "medium"]},
                "when": {"type": "integer"},
                "opts": obj({"verbose": {"type": "boolean"}}, additionalProperties=False),
                "region": STRING,
                "page": {"type": "integer"},
            },
            ("region",),
        ),
        out=obj({"hits": {"type": "array", "items": STRING}, "next": STRING}),
        description="Search everything.",
        title="Search all",
    ),
    tool("new_name", inp=obj({"x": {"type": "integer"}}, ("x",))),
    tool("added"),
]
EXPECTED_V1_TO_V2 = {
    ("breaking", "tool-removed", "gone", ""),
    ("breaking", "tool-removed", "old_name", ""),
    ("breaking", "required-parameter-added", "search", f"{P}/region"),
    ("breaking", "parameter-removed", "search", f"{P}/tags"),
    ("breaking", "type-narrowed", "search", f"{P}/limit/type"),
    ("breaking", "type-changed", "search", f"{P}/when/type"),
    ("breaking", "constraint-added", "search", f"{P}/q/maxLength"),
    ("breaking", "enum-value-removed", "search", f"{P}/mode/enum"),
    ("breaking", "additional-properties-closed", "search", f"{P}/opts/additionalProperties"),
    ("breaking", "output-field-removed", "search", f"{OUT}/total"),
    ("breaking", "output-field-made-optional", "search", f"{OUT}/hits"),
    ("compatible", "tool-added", "added", ""),
    ("compatible", "tool-added", "new_name", ""),
    ("compatible", "optional-parameter-added", "search", f"{P}/page"),
    ("compatible", "parameter-made-optional", "search", f"{P}/q"),
    ("compatible", "enum-value-added", "search", f"{P}/mode/enum"),
    ("compatible", "output-field-added", "search", f"{OUT}/next"),
    ("text", "description-changed", "search", "/description"),
    ("text", "title-changed", "search", "/title"),
}


class Drifting:
    """The drifting test server behind an mcp.json, its tools set by `define`."""

    def __init__(self, base: Path) -> None:
        self.tools_file = base / "tools.json"
        entry: dict[str, object] = {
            "command": sys.executable,
            "args": [str(SERVERS / "drifting.py"), str(self.tools_file)],
        }
        self.config = write_config(base / "mcp.json", {"drifting": entry})
        self.snapshot = base / "mcp-snapshot.json"

    def define(self, tools: list[Schema]) -> None:
        self.tools_file.write_text(json.dumps(tools), encoding="utf-8")

    def commit(self, tools: list[Schema]) -> Snapshot:
        """Start the server with `tools` and write its snapshot, as `build` would."""
        self.define(tools)
        diagnostics = Diagnostics()
        taken, failed = introspect_snapshot(self.config, diagnostics, timeout=20)
        assert not failed, [str(item) for item in diagnostics]
        taken.write(self.snapshot)
        return taken

    def check(self, *args: str) -> Result:
        return invoke(
            check_command, "--config", str(self.config), "--snapshot", str(self.snapshot), *args
        )


def test_check_against_a_real_server_classifies_every_change(tmp_path: Path) -> None:
    server = Drifting(tmp_path)
    server.commit(V1)
    assert server.check().exit_code == EXIT_NO_DRIFT

    server.define(V2)
    result = server.check("--json")
    assert result.exit_code == EXIT_BREAKING, result.stdout
    document = json.loads(result.stdout)
    got = {(c["severity"], c["kind"], c["tool"], c["pointer"]) for c in document["changes"]}
    assert got == EXPECTED_V1_TO_V2
    assert document["counts"] == {"breaking": 11, "compatible": 6, "text": 2}
    assert document["bump"] == "major" and document["ok"] is True and document["errors"] == []
    assert set(document["seconds"]) == {"introspect", "diff", "total"}
    renamed = next(c for c in document["changes"] if c["tool"] == "old_name")
    assert "likely renamed to 'new_name'" in renamed["message"]

    human = server.check()
    assert human.exit_code == EXIT_BREAKING
    lines = human.stdout.splitlines()
    assert lines[0].startswith("breaking: drifting/gone: tool removed")
    assert (
        lines[-1].startswith("breaking drift between")
        and "11 breaking, 6 compatible, 2 text" in lines[-1]
    )

    server.define([*V1, tool("extra")])  # compatible only
    assert server.check().exit_code == EXIT_COMPATIBLE
    server.define([{**V1[0], "description": "Search, reworded."}, *V1[1:]])  # text only
    assert server.check().exit_code == EXIT_TEXT


def test_a_server_that_is_down_is_an_error_not_drift(tmp_path: Path) -> None:
    server = Drifting(tmp_path)
    taken = server.commit(V1)
    # The committed snapshot also has a server that will be down during the check.
    crashed = ServerSnapshot.model_validate({"name": "crash", "tools": [tool("t")]})
    Snapshot(servers=(*taken.servers, crashed)).write(server.snapshot)
    entries = json.loads(server.config.read_text(encoding="utf-8"))["mcpServers"]
    entries["crash"] = {"command": sys.executable, "args": [str(SERVERS / "crash.py")]}
    entries["exits"] = {"command": sys.executable, "args": ["-c", "import sys; sys.exit(1)"]}
    write_config(server.config, entries)
    server.define([*V1, tool("extra")])

    result = server.check()
    assert result.exit_code == EXIT_ERROR
    assert "error: crash:" in result.stderr and "EXAMPLE_API_KEY is not set" in result.stderr
    assert "error: exits:" in result.stderr
    assert "2 of 3 servers failed (crash, exits); nothing was compared" in result.stderr
    assert result.stdout == ""  # no drift reported: a failed server is not a removed one

    document = json.loads(server.check("--json").stdout)
    assert (
        document["exit_code"] == EXIT_ERROR
        and document["ok"] is False
        and document["compared"] is False
    )
    assert {error.get("server") for error in document["errors"]} >= {"crash", "exits"}
    assert document["failed_servers"] == ["crash", "exits"]

    kept = server.check("--keep-going", "--json")
    document = json.loads(kept.stdout)
    assert kept.exit_code == EXIT_ERROR and document["compared"] is True
    # The crashed server's tools are not reported as removed; the live server's drift is.
    assert [(c["kind"], c["server"], c.get("tool")) for c in document["changes"]] == [
        ("tool-added", "drifting", "extra")
    ]


def test_check_setup_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MCP_CODEGEN_CONFIG", raising=False)
    result = invoke(check_command)  # the config is named first
    assert result.exit_code == EXIT_CODES["config"] and "mcp.json: no such file" in result.stderr
    (tmp_path / "mcp.json").write_text('{"mcpServers": {}}', encoding="utf-8")
    result = invoke(check_command)
    assert result.exit_code == EXIT_CODES["package"]
    assert "no package built by mcp-codegen in generated/" in result.stderr
    build(tmp_path / "generated" / "pkg", snapshot=snapshot(tool()))
    result = invoke(check_command)  # finds the package's snapshot; the config has no server
    assert result.exit_code == EXIT_CODES["config"] and "no servers to introspect" in result.stderr
    assert json.loads(invoke(check_command, "--json").stdout)["old"]["source"] == str(
        Path("generated/pkg/mcp-snapshot.json")
    )


def test_the_ci_examples_parse_and_use_real_options() -> None:
    import re
    import shlex

    import yaml  # type: ignore[import-untyped]

    docs = Path(__file__).resolve().parent.parent / "docs"
    calls = []
    for name in ("github-actions.yml", "pre-commit-config.yaml"):
        text = (docs / "examples" / name).read_text(encoding="utf-8")
        assert yaml.safe_load(text)
        calls += re.findall(r"mcp-codegen check( --[^;\n>']*)", text)
    assert len(calls) >= 3
    for call in calls:
        args = shlex.split(call)
        with check_command.make_context("check", args) as ctx:  # raises on an unknown option
            assert ctx.params["config_path"] == Path("mcp.json")
    ci = (docs / "ci.md").read_text(encoding="utf-8")
    for code in {EXIT_NO_DRIFT, *EXIT_CODES.values()}:
        assert re.search(rf"^\|\s*{code}\s*\|", ci, re.MULTILINE), f"exit {code} is not documented"
