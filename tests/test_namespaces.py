"""Namespaces inside tool names: what counts as one, and a huge server's docstring."""

from __future__ import annotations

import ast
from pathlib import PurePosixPath

import pytest

from codegen.namespaces import LISTED_TOOLS, Namespaced, listing, namespaces
from codegen.render import PackageOptions, render_package
from codegen.snapshot import ServerSnapshot, Snapshot, ToolSnapshot


def _split(*names: str) -> list[tuple[str, str]]:
    return [(n.namespace, n.local) for n in namespaces([(name, None) for name in names])]


def test_double_underscore_and_dot_are_namespaces_even_for_one_tool() -> None:
    assert _split("github__create_issue", "slack.post_message", "get_time") == [
        ("github", "create_issue"),
        ("slack", "post_message"),
        ("", "get_time"),
    ]


def test_words_before_the_first_action_word_shared_by_several_tools() -> None:
    assert _split(
        "kick_com_api_get_channel_clips",
        "kick_com_api_get_chat_messages",
        "crm_batch_create_contacts",
        "crm_search_leads",
        "MinecraftWiki_listCategoryMembers",
        "MinecraftWiki_getPage",
        "get_channel_clips",
        "lonely_prefix_list_things",
    ) == [
        ("kick_com_api", "get_channel_clips"),
        ("kick_com_api", "get_chat_messages"),
        ("crm", "batch_create_contacts"),
        ("crm", "search_leads"),
        ("minecraft_wiki", "listCategoryMembers"),
        ("minecraft_wiki", "getPage"),
        ("", "get_channel_clips"),  # starts with its action: no namespace
        ("", "lonely_prefix_list_things"),  # a prefix no other tool shares
    ]


def test_a_prefix_every_tool_shares_is_the_server_not_a_namespace() -> None:
    assert _split("git_add", "git_log", "git_status") == [
        ("", n) for n in ("git_add", "git_log", "git_status")
    ]


def test_title_prefix_is_a_namespace() -> None:
    found = namespaces([("send", "Slack: Send a message"), ("open", "Jira - Open an issue")])
    assert found == [
        Namespaced("Slack", "send", "Send a message"),
        Namespaced("Jira", "open", "Open an issue"),
    ]


def test_namespaces_do_not_depend_on_the_order_of_the_tools() -> None:
    names = ["a_x_get_one", "a_x_get_two", "b_list_all", "b_list_none", "get_z", "c__d"]
    forward = dict(zip(names, namespaces([(n, None) for n in names]), strict=True))
    backward = dict(zip(names[::-1], namespaces([(n, None) for n in names[::-1]]), strict=True))
    assert forward == backward


def _gateway(count: int) -> list[tuple[str, str, str | None, str]]:
    apis = [f"api{i:03d}" for i in range(count // 3)]
    return [
        (f"{api}_{verb}", f"{api}__{verb}", None, f"{verb} of {api}")
        for api in apis
        for verb in ("get_item", "list_items", "delete_item")
    ]


def test_small_server_lists_every_tool() -> None:
    lines = listing([("get_time", "get_time", None, "Get the time"), ("x", "x", None, "")])
    assert lines == ["get_time  Get the time", "x"]


def test_huge_server_lists_namespaces_not_tools() -> None:
    tools = _gateway(3000)
    lines = listing(tools)
    assert lines[0] == "1000 namespaces (a prefix of the tool names):"
    assert lines[1] == "api000  3 tools: api000_get_item, api000_list_items, api000_delete_item"
    assert len(lines) == 1001 and all(len(line) <= 88 for line in lines)


def test_huge_server_without_namespaces_is_cut_with_a_pointer_to_search() -> None:
    tools = [
        (f"get_thing_{i}", f"get_thing_{i}", None, "A thing") for i in range(LISTED_TOOLS + 50)
    ]
    lines = listing(tools)
    assert len(lines) == LISTED_TOOLS + 2
    assert lines[-1] == "... and 50 more; find them with search_tools(query)."


@pytest.mark.parametrize("count", [30, 150])
def test_rendered_server_docstring(count: int) -> None:
    tools = tuple(
        ToolSnapshot(name=name, description=summary, inputSchema={"type": "object"})
        for _, name, _, summary in _gateway(count)
    )
    package = render_package(
        Snapshot(servers=(ServerSnapshot(name="gateway", tools=tools),)), PackageOptions(name="p")
    )
    init = package.files[PurePosixPath("p/servers/gateway/__init__.py")]
    docstring = init.split('"""')[1]
    if count <= LISTED_TOOLS:
        assert "\napi000_get_item     get_item of api000\n" in docstring
    else:
        assert (
            "50 namespaces" in docstring
            and "\napi049  3 tools: api049_delete_item, api049_get_item, api049_list_items\n"
            in docstring
        )
        assert "get_item of api000" not in docstring


def test_a_namespace_from_a_hostile_title_cannot_break_the_docstring() -> None:
    tools = tuple(
        ToolSnapshot(
            name=f"tool_{i}",
            title=f'Evil"""\\{i % 2}: do it',
            description="Does it",
            inputSchema={"type": "object"},
        )
        for i in range(LISTED_TOOLS + 20)
    )
    package = render_package(
        Snapshot(servers=(ServerSnapshot(name="gateway", tools=tools),)), PackageOptions(name="p")
    )
    init = package.files[PurePosixPath("p/servers/gateway/__init__.py")]
    module = ast.parse(init)
    docstring = ast.get_docstring(module, clean=False) or ""
    # Escaped in the source, read back as the title says it.
    assert "2 namespaces" in docstring and 'Evil"""\\0  60 tools' in docstring
    assert [type(node).__name__ for node in module.body][:2] == ["Expr", "ImportFrom"]
