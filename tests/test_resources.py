"""Resources, resource templates and prompts (issue 17): listed at build, rendered typed, read
directly and from the gVisor sandbox through the host's checks, PII tokenized, found by search,
readable by read_module, classified by drift. Real servers: the demo's `everything` and CRM, and
tests/servers/offerings.py (pagination, hostile text, a server without templates/list) and
docs_only.py (no tools at all: built for its resources and prompts)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codegen.diagnostics import BuildError
from codegen.drift import diff_snapshots
from codegen.runtime.search import search_tools
from codegen.runtime.uritemplate import TemplateError, parse
from codegen.sandbox import Executor, Limits
from codegen.sandbox.result import ExecutionResult
from codegen.serve.modules import Catalogue
from codegen.snapshot import Snapshot
from tests.conftest import DEMO_CONFIG, GOLDEN, SERVERS, build, run_python, write_config

CRM_DEMO = Path(__file__).resolve().parent.parent / "demo" / "servers" / "crm.py"


# --- RFC 6570 -------------------------------------------------------------------------------

VALUES: dict[str, Any] = {
    "count": ["one", "two", "three"],
    "hello": "Hello World!",
    "half": "50%",
    "var": "value",
    "who": "fred",
    "base": "http://example.com/home/",
    "path": "/foo/bar",
    "list": ["red", "green", "blue"],
    "x": "1024",
    "y": "768",
    "empty": "",
}

# Examples from RFC 6570 section 3.2 (levels 1 to 4).
RFC_EXAMPLES = {
    "{var}": "value",
    "{hello}": "Hello%20World%21",
    "{half}": "50%25",
    "O{empty}X": "OX",
    "O{undef}X": "OX",
    "{x,y}": "1024,768",
    "{+var}": "value",
    "{+hello}": "Hello%20World!",
    "{+path}/here": "/foo/bar/here",
    "{base}index": "http%3A%2F%2Fexample.com%2Fhome%2Findex",
    "{+base}index": "http://example.com/home/index",
    "{#path,x}/here": "#/foo/bar,1024/here",
    "{.who,who}": ".fred.fred",
    "{/var,x}/here": "/value/1024/here",
    "{;x,y,empty}": ";x=1024;y=768;empty",
    "{?x,y,empty}": "?x=1024&y=768&empty=",
    "{&x,y,empty}": "&x=1024&y=768&empty=",
    "{var:3}": "val",
    "{count}": "one,two,three",
    "{count*}": "one,two,three",
    "{/count*}": "/one/two/three",
    "{;count*}": ";count=one;count=two;count=three",
    "{?count*}": "?count=one&count=two&count=three",
    "{/list*,path:4}": "/red/green/blue/%2Ffoo",
}


@pytest.mark.parametrize(("template", "expected"), sorted(RFC_EXAMPLES.items()))
def test_uri_templates_expand_as_rfc_6570_says_and_match_their_expansion(
    template: str, expected: str
) -> None:
    parsed = parse(template)
    assert parsed.expand(VALUES) == expected
    assert parsed.matches(expected)


def test_uri_template_matching_refuses_what_the_template_cannot_give() -> None:
    text = parse("demo://resource/dynamic/text/{resourceId}")
    assert text.matches("demo://resource/dynamic/text/12")
    assert not text.matches("demo://resource/dynamic/text/1/2")  # {x} cannot hold a /
    assert not text.matches("demo://resource/dynamic/blob/12")
    assert not text.matches("demo://resource/dynamic/text/12?x=1")
    repo = parse("repo://{owner}/{repo}/{+path}")
    assert repo.matches("repo://o/r/a/b/c.txt")
    assert not repo.matches("other://o/r/a")


def test_uri_template_matching_is_linear_on_a_megabyte_of_its_worst_case() -> None:
    # Each expression stops at the next literal or the first character it cannot hold:
    # no backtracking, whatever the uri.
    assert not parse("{a}{b}{c}{d}x").matches("a" * 1_000_000 + "y")
    assert not parse("p://{+a}/{+b}/{+c}.md").matches("p://" + "/" * 1_000_000)


@pytest.mark.parametrize("bad", ["{", "}", "{}", "{a b}", "{=x}", "{x:0}", "{x*:3}", "a" * 3000])
def test_invalid_uri_templates_are_refused(bad: str) -> None:
    with pytest.raises(TemplateError):
        parse(bad)


# --- build ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offerings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A package built from the offerings server and one that lacks templates/list."""
    base = tmp_path_factory.mktemp("offerings")
    server = {"command": sys.executable, "args": [str(SERVERS / "offerings.py")]}
    old = {"command": sys.executable, "args": [str(SERVERS / "offerings.py"), "--no-templates"]}
    config = write_config(base / "mcp.json", {"offerings": server, "old": old})
    report = build(base / "out", name="offer", config_path=config)
    return {"config": config, "out": base / "out", "report": report}


def test_build_lists_every_page_of_resources_templates_and_prompts(
    offerings: dict[str, Any],
) -> None:
    snapshot = Snapshot.read(offerings["out"] / "mcp-snapshot.json")
    server = snapshot.server("offerings")
    assert server is not None
    assert [r.uri for r in server.resources or ()] == [f"notes://note/{n}" for n in range(1, 6)]
    assert [t.uri_template for t in server.resource_templates or ()] == [
        "broken://{oops",
        "files://{owner}/{repo}/{+path}{?ref}",
        "notes://note/{id}",
    ]
    assert [p.name for p in server.prompts or ()] == ["get_prompt", "hello", "summarize"]
    # "method not found" for templates/list is an old server, not a problem.
    old = snapshot.server("old")
    assert old is not None and old.resource_templates is None and old.resources is not None
    warnings = [str(item) for item in offerings["report"].diagnostics.items]
    assert not any("old" in warning and "templates" in warning for warning in warnings)
    assert any("broken://{oops" in warning for warning in warnings)


def test_servers_without_resources_or_prompts_keep_their_snapshot_text(
    demo_snapshot: Snapshot,
) -> None:
    time = demo_snapshot.server("time")
    assert time is not None
    assert set(time.model_dump(by_alias=True, exclude_none=True)) == {
        "name",
        "server_name",
        "server_version",
        "protocol_version",
        "tools",
    }


def test_generated_functions_take_template_variables_and_prompt_arguments(
    offerings: dict[str, Any],
) -> None:
    out = offerings["out"]
    code = """
import inspect
from offer.servers.offerings import resources, prompts
print(inspect.signature(resources.class_))
print(inspect.signature(resources.note))
print(inspect.signature(prompts.summarize))
print(inspect.signature(prompts.get_prompt_))
print(len(resources.RESOURCES), resources.RESOURCES[0].description)
"""
    lines = run_python(code, out).splitlines()
    assert lines == [
        "(*, owner: 'str', repo: 'str', path: 'str', ref: 'str | None' = None) -> "
        "'ResourceContents'",
        "(*, id_: 'str') -> 'ResourceContents'",
        "(*, note_id: 'str', style: 'str | None' = None) -> 'PromptResult'",
        "(*, get_prompt_: 'str') -> 'PromptResult'",
        '5 Note with """quotes""" and a \\ backslash',
    ]


def test_generated_functions_call_the_server_directly(offerings: dict[str, Any]) -> None:
    code = f"""
import asyncio, offer
from offer.servers.offerings import resources, prompts
offer.configure({str(offerings["config"])!r})
async def main():
    print((await resources.class_(owner="o", repo="r", path="a/b c.txt", ref="main")).text)
    print((await resources.read("notes://note/2")).text)
    print((await prompts.summarize(note_id="7")).text)
    print((await prompts.get_prompt_(get_prompt_="x")).messages[0].role)
    await offer.aclose()
asyncio.run(main())
"""
    assert run_python(code, offerings["out"]).splitlines() == [
        "read files://o/r/a/b%20c.txt?ref=main",
        "read notes://note/2",
        "user: summarize with [('note-id', '7')]",
        "user",
    ]


def test_a_tool_named_like_the_resources_module_does_not_shadow_it() -> None:
    from codegen.names import python_identifier

    assert python_identifier("resources") == "resources_"
    assert python_identifier("prompts") == "prompts_"


# --- the demo servers: directly and in the sandbox -----------------------------------------------


def test_golden_package_reads_everything_resources_and_prompts_directly() -> None:
    code = f"""
import asyncio, mcp_demo
from mcp_demo.servers.everything import resources, prompts
mcp_demo.configure({str(DEMO_CONFIG)!r})
async def main():
    static = await resources.read("demo://resource/static/document/features.md")
    print(static.mime_type, static.text.splitlines()[0])
    dynamic = await resources.dynamic_text_resource(resource_id="7")
    print(dynamic.text.split(":")[0])
    blob = await resources.dynamic_blob_resource(resource_id="7")
    print(blob.data.decode().split(":")[0])
    print((await prompts.args_prompt(city="Lyon", state="Rhone")).text)
    await mcp_demo.aclose()
asyncio.run(main())
"""
    assert run_python(code, GOLDEN).splitlines() == [
        "text/markdown # Everything Server - Features",
        "Resource 7",
        "Resource 7",
        "user: What's weather in Lyon, Rhone?",
    ]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """`run(code)` in one gVisor sandbox whose calls reach the real demo servers."""
    loop = asyncio.new_event_loop()
    executor = Executor(GOLDEN / "mcp_demo", config=DEMO_CONFIG, limits=Limits(timeout=60))
    loop.run_until_complete(executor.start())

    def execute(code: str) -> ExecutionResult:
        return loop.run_until_complete(executor.execute(code))

    yield execute
    loop.run_until_complete(executor.aclose())
    loop.close()


def test_sandboxed_code_reads_static_and_templated_resources_and_gets_prompts(
    sandbox: Any,
) -> None:
    result = sandbox(
        """
from servers.everything import resources, prompts
static = await resources.read("demo://resource/static/document/features.md")
dynamic = await resources.dynamic_text_resource(resource_id="5")
prompt = await prompts.args_prompt(city="Paris", state="TX")
[static.text.splitlines()[0], dynamic.text.split(":")[0], prompt.text, len(resources.RESOURCES)]
"""
    )
    assert result.error is None, result.error
    assert result.value == [
        "# Everything Server - Features",
        "Resource 5",
        "user: What's weather in Paris, TX?",
        7,
    ]
    assert [(call.kind, call.tool, call.ok) for call in result.calls] == [
        ("resource", "demo://resource/static/document/features.md", True),
        ("resource", "demo://resource/dynamic/text/5", True),
        ("prompt", "args-prompt", True),
    ]


def test_the_host_refuses_uris_and_prompts_the_server_did_not_offer(sandbox: Any) -> None:
    result = sandbox(
        """
from servers.everything import resources, prompts
from mcp_demo._runtime import get_prompt, read_resource, read_template
errors = []
for attempt in (
    lambda: resources.read("demo://resource/secret/passwords"),
    lambda: resources.read("demo://resource/dynamic/text/1/../../secret"),
    lambda: read_template("everything", "demo://{anything}", {"anything": "x"}),
    lambda: read_template("everything", "demo://resource/dynamic/text/{resourceId}", {"other": "1"}),
    lambda: read_resource("time", "time://now"),
    lambda: get_prompt("everything", "no-such-prompt", {}),
    lambda: get_prompt("everything", "args-prompt", {}),
    lambda: get_prompt("everything", "args-prompt", {"city": "x", "country": "y"}),
):
    try:
        await attempt()
        errors.append("no error")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
errors
"""
    )
    assert result.error is None, result.error
    assert result.value == [
        "TransportError: 'demo://resource/secret/passwords' is none of the resources of server "
        "'everything' and matches none of its templates (see servers.<server>.resources)",
        "TransportError: 'demo://resource/dynamic/text/1/../../secret' is none of the resources "
        "of server 'everything' and matches none of its templates (see "
        "servers.<server>.resources)",
        "TransportError: server 'everything' has no resource template 'demo://{anything}'",
        "TransportError: everything: template 'demo://resource/dynamic/text/{resourceId}' has no "
        "variable 'other' (it has: resourceId)",
        "TransportError: server 'time' offers no resources",
        "TransportError: server 'everything' has no prompt 'no-such-prompt' (prompts: "
        "args-prompt, completable-prompt, resource-prompt, simple-prompt)",
        "TransportError: prompt everything.args-prompt needs the argument 'city'",
        "TransportError: prompt everything.args-prompt takes no argument 'country' (it takes: "
        "city, state)",
    ]
    # Nothing refused reached a server: every refusal is logged as failed, quickly.
    assert len(result.calls) == 8 and not any(call.ok for call in result.calls)


def test_personal_data_in_resources_and_prompt_messages_is_tokenized(sandbox: Any) -> None:
    sys.modules.pop("demo_crm_resources", None)
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_crm_resources", CRM_DEMO)
    assert spec is not None and spec.loader is not None
    crm = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = crm
    spec.loader.exec_module(crm)
    customer = crm.DB["C00042"]
    result = sandbox(
        """
from servers.crm import resources, prompts
record = (await resources.customer(customer_id="C00042")).json()
draft = await prompts.follow_up_email(customer_id="C00042", tone="warm")
again = (await resources.read("crm://customers/C00042")).json()
[record["name"], record["email"], record["phone"], draft.text, again["email"]]
"""
    )
    assert result.error is None, result.error
    name, email, phone, draft, again = result.value
    assert (name, email, again) == ("[NAME_1]", "[EMAIL_1]", "[EMAIL_1]")
    assert phone.startswith("[PHONE_")
    assert draft.startswith("user: Write a warm follow-up email to [NAME_1] <[EMAIL_1]> of ")
    shown = json.dumps(result.model_dump())
    for value in (customer.name, customer.email, customer.phone):
        assert value not in shown


# --- search, read_module, drift --------------------------------------------------------------


def test_search_finds_resource_templates_and_prompts() -> None:
    index = GOLDEN / "mcp_demo" / "search_index.sqlite3"
    found = search_tools("customer record", index_path=index).splitlines()
    assert found[0].startswith("servers.crm.resources.customer: ")
    found = search_tools("draft a follow-up email", index_path=index).splitlines()
    assert found[0].startswith("servers.crm.prompts.follow_up_email: ")
    full = search_tools("weather prompt for a city", "full", 1, index_path=index)
    assert "async def args_prompt(*, city: str, state: str | None = None) -> PromptResult:" in full


def test_read_module_reads_resources_and_prompts_by_module_or_function_path() -> None:
    catalogue = Catalogue.of(GOLDEN / "mcp_demo")
    dotted, source = catalogue.read("servers.everything.resources.dynamic_text_resource")
    assert dotted == "servers.everything.resources"
    assert "async def dynamic_text_resource(*, resource_id: str) -> ResourceContents:" in source
    dotted, source = catalogue.read("servers.crm.prompts")
    assert "async def follow_up_email(" in source
    _, index = catalogue.read("servers.crm")
    assert "servers.crm.resources" in index and "prompts (follow_up_email)" in index


def _server(demo_snapshot: Snapshot, name: str) -> dict[str, Any]:
    server = demo_snapshot.server(name)
    assert server is not None
    dumped: dict[str, Any] = server.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def test_drift_classifies_resource_template_and_prompt_changes(demo_snapshot: Snapshot) -> None:
    everything = _server(demo_snapshot, "everything")
    changed = json.loads(json.dumps(everything))
    changed["resources"] = [r for r in changed["resources"] if not r["uri"].endswith("features.md")]
    changed["resources"].append({"uri": "demo://new", "name": "new"})
    changed["resources"][0]["description"] = "Reworded."
    templates = {t["name"]: t for t in changed["resourceTemplates"]}
    templates["Dynamic Text Resource"]["name"] = "Text Resource"
    changed["resourceTemplates"] = [
        t for t in changed["resourceTemplates"] if t["name"] != "Dynamic Blob Resource"
    ]
    prompts = {p["name"]: p for p in changed["prompts"]}
    prompts["args-prompt"]["arguments"][1]["required"] = True  # state: now required
    prompts["args-prompt"]["arguments"].append({"name": "units", "required": False})
    prompts["completable-prompt"]["arguments"][0]["required"] = False
    changed["prompts"] = [p for p in changed["prompts"] if p["name"] != "simple-prompt"]
    changed["prompts"].append({"name": "brand-new", "arguments": []})
    old = Snapshot(servers=(demo_snapshot.server("everything"),))  # type: ignore[arg-type]
    new = Snapshot.model_validate({"servers": [changed]})
    found = {(c.kind, c.severity, c.pointer) for c in diff_snapshots(old, new).changes}
    assert found == {
        (
            "resource-removed",
            "breaking",
            "/resources/demo:~1~1resource~1static~1document~1features.md",
        ),
        ("resource-added", "compatible", "/resources/demo:~1~1new"),
        (
            "resource-text-changed",
            "text",
            "/resources/demo:~1~1resource~1static~1document~1architecture.md",
        ),
        (
            "template-removed",
            "breaking",
            "/resourceTemplates/demo:~1~1resource~1dynamic~1blob~1{resourceId}",
        ),
        (
            "template-renamed",
            "breaking",
            "/resourceTemplates/demo:~1~1resource~1dynamic~1text~1{resourceId}",
        ),
        ("prompt-removed", "breaking", "/prompts/simple-prompt"),
        ("prompt-added", "compatible", "/prompts/brand-new"),
        ("prompt-argument-required", "breaking", "/prompts/args-prompt/arguments/state"),
        ("prompt-argument-added", "compatible", "/prompts/args-prompt/arguments/units"),
        (
            "prompt-argument-optional",
            "compatible",
            "/prompts/completable-prompt/arguments/department",
        ),
    }
    assert diff_snapshots(old, new).bump() == "major"
    # Additions alone are a minor version.
    added = json.loads(json.dumps(everything))
    added["prompts"].append({"name": "extra", "arguments": []})
    assert diff_snapshots(old, Snapshot.model_validate({"servers": [added]})).bump() == "minor"


def test_check_against_a_live_server_whose_templates_are_gone(
    offerings: dict[str, Any], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from codegen.cli.drift import EXIT_BREAKING, check_command

    # The same server, now answering resources/templates/list with "method not found".
    args = [str(SERVERS / "offerings.py"), "--no-templates"]
    config = write_config(
        tmp_path / "mcp.json",
        {
            "offerings": {"command": sys.executable, "args": args},
            "old": {"command": sys.executable, "args": args},
        },
    )
    snapshot = offerings["out"] / "mcp-snapshot.json"
    result = CliRunner().invoke(
        check_command,
        ["--config", str(config), "--snapshot", str(snapshot), "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == EXIT_BREAKING, result.output
    document = json.loads(result.stdout)
    assert {(c["severity"], c["kind"], c["server"], c["pointer"]) for c in document["changes"]} == {
        ("breaking", "template-removed", "offerings", pointer)
        for pointer in (
            "/resourceTemplates/broken:~1~1{oops",
            "/resourceTemplates/files:~1~1{owner}~1{repo}~1{+path}{?ref}",
            "/resourceTemplates/notes:~1~1note~1{id}",
        )
    }


# --- a server with no tools, only resources and prompts ------------------------------------------


@pytest.fixture(scope="module")
def docs_only(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A package built from tests/servers/docs_only.py (no tools capability at all), next to
    a server that offers nothing (left out)."""
    base = tmp_path_factory.mktemp("docs_only")
    script = str(SERVERS / "docs_only.py")
    config = write_config(
        base / "mcp.json",
        {
            "docs": {"command": sys.executable, "args": [script]},
            "empty": {"command": sys.executable, "args": [script, "--nothing"]},
        },
    )
    report = build(base / "out", name="docs_pkg", config_path=config, keep_going=True)
    return {"config": config, "out": base / "out", "report": report, "script": script}


def test_a_server_with_only_resources_and_prompts_is_built(docs_only: dict[str, Any]) -> None:
    report = docs_only["report"]
    assert report.left_out == {"empty": "it offers no tools, resources or prompts"}
    folder = docs_only["out"] / "docs_pkg" / "servers" / "docs"
    assert sorted(path.name for path in folder.iterdir()) == [
        "__init__.py",
        "prompts.py",
        "resources.py",
    ]
    assert not (folder.parent / "empty").exists()
    code = """
import sys, inspect
import docs_pkg.servers.docs as docs
print(docs.__doc__.splitlines()[0])
print(docs.__all__, "docs_pkg.servers.docs.resources" in sys.modules)  # lazy: nothing loaded
from docs_pkg.servers.docs import resources, prompts
print(inspect.signature(resources.page), inspect.signature(prompts.explain))
print([info.uri for info in resources.RESOURCES])
"""
    assert run_python(code, docs_only["out"]).splitlines() == [
        "docs: the MCP server 'docs' (docs 1) offers no tools, only resources and prompts.",
        "[] False",
        "(*, slug: 'str') -> 'ResourceContents' (*, topic: 'str') -> 'PromptResult'",
        "['docs://guide']",
    ]


def test_a_tool_less_servers_resources_and_prompts_are_read_directly(
    docs_only: dict[str, Any],
) -> None:
    code = f"""
import asyncio, docs_pkg
from docs_pkg.servers.docs import resources, prompts
docs_pkg.configure({str(docs_only["config"])!r})
async def main():
    print((await resources.read("docs://guide")).text)
    print((await resources.page(slug="install")).text)
    print((await prompts.explain(topic="search")).text)
    await docs_pkg.aclose()
asyncio.run(main())
"""
    assert run_python(code, docs_only["out"]).splitlines() == [
        "# Guide",
        "# Page install",
        "user: Explain search.",
    ]


def test_a_tool_less_servers_resources_are_read_in_the_sandbox(docs_only: dict[str, Any]) -> None:
    async def run() -> ExecutionResult:
        executor = Executor(
            docs_only["out"] / "docs_pkg", config=docs_only["config"], limits=Limits(timeout=60)
        )
        await executor.start()
        try:
            return await executor.execute(
                """
from servers.docs import resources, prompts
guide = await resources.read("docs://guide")
page = await resources.page(slug="faq")
try:
    await resources.read("docs://secret")
    refused = "no error"
except Exception as exc:
    refused = type(exc).__name__
[guide.text, page.text, (await prompts.explain(topic="x")).text, refused]
"""
            )
        finally:
            await executor.aclose()

    result = asyncio.run(run())
    assert result.error is None, result.error
    assert result.value == ["# Guide", "# Page faq", "user: Explain x.", "TransportError"]
    assert [(call.kind, call.tool, call.ok) for call in result.calls] == [
        ("resource", "docs://guide", True),
        ("resource", "docs://pages/faq", True),
        ("resource", "docs://secret", False),  # the host's check: never reached the server
        ("prompt", "explain", True),
    ]


def test_search_and_read_module_find_a_tool_less_server(docs_only: dict[str, Any]) -> None:
    index = docs_only["out"] / "docs_pkg" / "search_index.sqlite3"
    assert search_tools("user guide", index_path=index).startswith("servers.docs.resources.read: ")
    assert search_tools("docs page by slug", index_path=index).startswith(
        "servers.docs.resources.page: "
    )
    _, source = Catalogue.of(docs_only["out"] / "docs_pkg").read("servers.docs")
    assert "servers.docs.resources" in source and "offers no tools" in source


def test_check_of_a_tool_less_server_sees_no_drift_then_its_resources_gone(
    docs_only: dict[str, Any], tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from codegen.cli.drift import EXIT_BREAKING, EXIT_NO_DRIFT, check_command

    snapshot = str(docs_only["out"] / "mcp-snapshot.json")
    same = CliRunner().invoke(
        check_command,
        ["--config", str(docs_only["config"]), "--snapshot", snapshot, "--json"],
        catch_exceptions=False,
    )
    assert same.exit_code == EXIT_NO_DRIFT, same.output
    # The same server, now offering nothing: each of its resources, templates and prompts is gone.
    emptied = {"command": sys.executable, "args": [docs_only["script"], "--nothing"]}
    config = write_config(tmp_path / "mcp.json", {"docs": emptied, "empty": emptied})
    gone = CliRunner().invoke(
        check_command,
        ["--config", str(config), "--snapshot", snapshot, "--json"],
        catch_exceptions=False,
    )
    assert gone.exit_code == EXIT_BREAKING, gone.output
    document = json.loads(gone.stdout)
    assert {(c["kind"], c["server"], c["pointer"]) for c in document["changes"]} == {
        ("resource-removed", "docs", "/resources/docs:~1~1guide"),
        ("template-removed", "docs", "/resourceTemplates/docs:~1~1pages~1{slug}"),
        ("prompt-removed", "docs", "/prompts/explain"),
    }


def test_a_build_of_servers_offering_nothing_is_still_an_error(
    docs_only: dict[str, Any], tmp_path: Path
) -> None:
    snapshot = Snapshot.read(docs_only["out"] / "mcp-snapshot.json")
    empty = snapshot.server("empty")
    assert empty is not None and not empty.tools
    nothing = Snapshot(servers=(empty,))
    with pytest.raises(BuildError, match="no tool could be generated"):
        build(tmp_path / "none", name="pkg", snapshot=nothing, keep_going=True)
    assert not (tmp_path / "none").exists()
