"""Names become identifiers one way; server text becomes source one way."""

from __future__ import annotations

import ast
import json
import sys
import types

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from codegen.escape import doc_text, one_line, py_literal
from codegen.models import generate_models
from codegen.names import assign_unique, check_package_name, pascal_case, python_identifier
from codegen.snapshot import ToolSnapshot


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("getCurrentTime", "get_current_time"),
        ("git.log", "git_log"),
        ("get-sum", "get_sum"),
        ("HTMLParser", "html_parser"),
        ("3d-render", "n3d_render"),
        ("class", "class_"),
        ("print", "print_"),
        ("match", "match_"),
        ("call_tool", "call_tool_"),
        ("model_dump", "model_dump_"),
        ("Votars fetch recent", "votars_fetch_recent"),
        ("!export-data", "export_data"),
        ("café_crème", "cafe_creme"),
        ("天気", "tool"),
        ("", "tool"),
        # Acronyms stay whole (issue 11): plurals, versions, and a prefix in written names.
        ("oDesk APIs", "odesk_apis"),
        ("RealtorAPIForRealEstateData", "realtor_api_for_real_estate_data"),
        ("listAPIs", "list_apis"),
        ("Temp Upload URLs", "temp_upload_urls"),
        ("getIPv6Address", "get_ipv6_address"),
        ("userIDsFor", "user_ids_for"),
        ("UUIDv4 generator", "uuidv4_generator"),
        ("iPhone 15 Pro", "iphone_15_pro"),
        ("xAxis", "x_axis"),
        ("HTTP2Server", "http2_server"),
        ("listS3Buckets", "list_s3_buckets"),
    ],
)
def test_python_identifier(name: str, expected: str) -> None:
    ident = python_identifier(name)
    assert ident == expected
    assert ident.isidentifier()


@given(st.text(max_size=40))
def test_any_name_gives_a_valid_identifier(name: str) -> None:
    ident = python_identifier(name)
    assert ident.isidentifier() and ident.isascii()


def test_clashes_get_deterministic_suffixes_and_are_reported() -> None:
    names = ["get-time", "get_time", "getTime", "other"]
    mapping, renamed = assign_unique(reversed(names))
    # The name that already is an identifier keeps it; the others follow in sorted order.
    assert mapping == {
        "get-time": "get_time_2",
        "getTime": "get_time_3",
        "get_time": "get_time",
        "other": "other",
    }
    assert [(item.original, item.given) for item in renamed] == [
        ("get-time", "get_time_2"),
        ("getTime", "get_time_3"),
    ]
    assert assign_unique(names) == (mapping, renamed)


def test_pascal_case() -> None:
    assert pascal_case("get_current_time") == "GetCurrentTime"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_py_literal_evaluates_to_the_value(value: object) -> None:
    source = py_literal(value)
    assert ast.literal_eval(source) == value
    compile(f"x = {source}\n", "<test>", "exec")


@given(st.text())
@example('"""')  # found by hypothesis: the escaped quotes' last one was escaped again
@example('x \\"')
def test_doc_text_cannot_break_out_of_a_docstring(text: str) -> None:
    module = f'def f():\n    """{doc_text(text)}"""\n    return 1\n'
    tree = ast.parse(module)
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef) and len(function.body) == 2
    docstring = ast.get_docstring(function, clean=False) or ""
    # What the reader sees is the text itself, up to whitespace and visible escapes.
    visible = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    if all(ch.isprintable() or ch == "\n" for ch in visible):
        assert [line.rstrip() for line in docstring.strip("\n").split("\n")] == [
            line.rstrip() for line in visible.strip("\n").split("\n")
        ] or not visible.strip()


def test_hostile_text_stays_text() -> None:
    hostile = 'x """\n\nimport os\nos.system("rm -rf /")\n\\'
    module = f'def f():\n    """{doc_text(hostile)}"""\n'
    tree = ast.parse(module)
    assert len(tree.body) == 1
    assert "import os" in (ast.get_docstring(tree.body[0]) or "")  # type: ignore[arg-type]


def test_one_line() -> None:
    assert one_line("# Title\n\nMore text.") == "Title"
    assert one_line("First sentence. Second one.") == "First sentence."
    assert one_line("x" * 300, limit=20) == "x" * 19 + "…"
    assert one_line(None) == ""


def test_py_literal_rejects_non_json() -> None:
    with pytest.raises(TypeError):
        py_literal(object())
    assert json.loads(py_literal("a\u2028b")) == "a\u2028b"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("class", "keyword"),
        ("match", "keyword"),
        ("json", "standard library"),
        ("asyncio", "standard library"),
        ("pydantic", "would shadow the module 'pydantic'"),
        ("pydantic_core", "would shadow the module 'pydantic_core'"),
        ("mcp", "would shadow the module 'mcp'"),
        ("anyio", "would shadow the module 'anyio'"),
        ("typing_extensions", "would shadow the module 'typing_extensions'"),
        ("servers", "mcp-codegen itself provides"),
        ("skills", "mcp-codegen itself provides"),
        ("_private", "not a Python package name"),
        ("my-tools", "not a Python package name"),
    ],
)
def test_package_names_that_would_break_the_package(name: str, problem: str) -> None:
    found = check_package_name(name)
    assert found is not None and problem in found


def test_good_package_names() -> None:
    for name in ("mcp_tools", "my_tools", "mcp_demo", "crm2"):
        assert check_package_name(name) is None


def _item(extra: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {"name": {"type": "string"}, **(extra or {})},
        "required": ["name"],
    }


def test_nested_models_are_named_after_what_they_are() -> None:
    tool = ToolSnapshot(
        name="create_entities",
        description="",
        inputSchema={
            "type": "object",
            "properties": {"entities": {"type": "array", "items": _item()}},
            "required": ["entities"],
        },
        outputSchema={
            "type": "object",
            "properties": {
                "entities": {"type": "array", "items": {**_item(), "additionalProperties": False}},
                "content": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            _item({"type": {"enum": ["image", "audio"], "type": "string"}}),
                            _item({"type": {"const": "resource", "type": "string"}}),
                        ]
                    },
                },
            },
            "required": ["entities"],
        },
    )
    models = generate_models(tool, "create_entities")
    assert not [name for name in models.class_names if name[-1].isdigit()], models.class_names
    assert {"Entity", "CreateEntitiesOutputEntity", "Content", "ResourceContent"} <= set(
        models.class_names
    )
    assert [param.annotation for param in models.params] == ["list[Entity]"]
    module = types.ModuleType("renamed_models")
    sys.modules[module.__name__] = module  # pydantic resolves annotations in the module
    try:
        exec(compile(models.source, "<models>", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    output = module.CreateEntitiesOutput.model_validate(
        {"entities": [{"name": "a"}], "content": [{"name": "b", "type": "resource"}]}
    )
    assert type(output.entities[0]).__name__ == "CreateEntitiesOutputEntity"
    assert type(output.content[0]).__name__ == "ResourceContent"
