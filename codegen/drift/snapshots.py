"""Drift between two snapshots, server by server and tool by tool.

Servers and tools present on one side only are added or removed; a tool whose
definition changed is compared field by field, its schemas by `SchemaComparison`;
resources, templates and prompts by `extras.diff_extras`.
"""

from __future__ import annotations

from ..snapshot import ServerSnapshot, Snapshot, ToolSnapshot
from .changes import SEVERITIES, Change, DriftReport
from .extras import diff_extras
from .schemas import SchemaComparison, canon, short

__all__ = ["diff_snapshots"]


def diff_snapshots(old: Snapshot, new: Snapshot) -> DriftReport:
    """Compare two snapshots server by server and tool by tool.

    A server or tool present in only one of them is added or removed (each of
    its tools too). A tool removed and another added with identical schemas is
    noted as a likely rename; it still counts as removed (breaking) and added.
    """
    changes: list[Change] = []
    old_servers = {server.name: server for server in old.servers}
    new_servers = {server.name: server for server in new.servers}
    for name in sorted(old_servers.keys() | new_servers.keys()):
        before, after = old_servers.get(name), new_servers.get(name)
        if before is None and after is not None:
            changes.append(
                Change(
                    "server-added",
                    "compatible",
                    name,
                    None,
                    "",
                    f"server added with {_offers(after)}",
                )
            )
            changes.extend(_tool_added(name, tool, "with its server") for tool in after.tools)
        elif after is None and before is not None:
            changes.append(
                Change(
                    "server-removed",
                    "breaking",
                    name,
                    None,
                    "",
                    f"server removed with {_offers(before)}",
                )
            )
            changes.extend(_tool_removed(name, tool, "with its server") for tool in before.tools)
        elif before is not None and after is not None:
            changes.extend(_diff_server(before, after))
    rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    changes.sort(
        key=lambda c: (rank[c.severity], c.server, c.tool or "", c.pointer, c.kind, c.message)
    )
    return DriftReport(tuple(changes))


def _count(items: tuple[object, ...], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _offers(server: ServerSnapshot) -> str:
    """What a server offers, e.g. "2 tools", or "0 tools, 3 resources, 1 prompt" for one
    built for its resources or prompts (issue 17)."""
    offered = [_count(server.tools, "tool")]
    templates = server.resource_templates or ()
    for items, noun in (
        (server.resources or (), "resource"),
        (templates, "resource template"),
        (server.prompts or (), "prompt"),
    ):
        if items:
            offered.append(_count(items, noun))
    return ", ".join(offered)


def _tool_added(server: str, tool: ToolSnapshot, why: str = "") -> Change:
    return Change(
        "tool-added",
        "compatible",
        server,
        tool.name,
        "",
        "tool added" + (f" ({why})" if why else ""),
    )


def _tool_removed(server: str, tool: ToolSnapshot, why: str = "") -> Change:
    return Change(
        "tool-removed",
        "breaking",
        server,
        tool.name,
        "",
        "tool removed" + (f" ({why})" if why else ""),
    )


_SERVER_INFO = ("server_name", "server_title", "server_version", "protocol_version", "instructions")


def _diff_server(old: ServerSnapshot, new: ServerSnapshot) -> list[Change]:
    changes: list[Change] = []
    for key in _SERVER_INFO:
        before, after = getattr(old, key), getattr(new, key)
        if before != after:
            what = "changed" if key == "instructions" else f"{short(before)} -> {short(after)}"
            changes.append(
                Change("server-info-changed", "text", old.name, None, "", f"{key} {what}")
            )
    old_tools = {tool.name: tool for tool in old.tools}
    new_tools = {tool.name: tool for tool in new.tools}
    removed = sorted(old_tools.keys() - new_tools.keys())
    added = sorted(new_tools.keys() - old_tools.keys())
    shapes = {name: _shape(new_tools[name]) for name in added}
    renamed_to = {
        name: [other for other in added if shapes[other] == _shape(old_tools[name])]
        for name in removed
    }
    for name in removed:
        why = f"likely renamed to {renamed_to[name][0]!r}: same schemas" if renamed_to[name] else ""
        changes.append(_tool_removed(old.name, old_tools[name], why))
    for name in added:
        sources = [before for before in removed if name in renamed_to[before]]
        why = f"likely renamed from {sources[0]!r}: same schemas" if sources else ""
        changes.append(_tool_added(old.name, new_tools[name], why))
    for name in sorted(old_tools.keys() & new_tools.keys()):
        if old_tools[name].digest() != new_tools[name].digest():  # same definition, no change
            changes.extend(_diff_tool(old.name, old_tools[name], new_tools[name]))
    changes.extend(diff_extras(old, new))  # resources, templates, prompts (issue 17)
    return changes


def _shape(tool: ToolSnapshot) -> str:
    return canon([tool.input_schema, tool.output_schema])


def _diff_tool(server: str, old: ToolSnapshot, new: ToolSnapshot) -> list[Change]:
    changes: list[Change] = []

    def text(kind: str, pointer: str, message: str) -> None:
        changes.append(Change(kind, "text", server, old.name, pointer, message))

    if old.title != new.title:
        text("title-changed", "/title", f"title {short(old.title)} -> {short(new.title)}")
    if old.description != new.description:
        text("description-changed", "/description", "description changed")
    if old.annotations != new.annotations:
        keys = sorted(
            key
            for key in (old.annotations or {}).keys() | (new.annotations or {}).keys()
            if (old.annotations or {}).get(key) != (new.annotations or {}).get(key)
        )
        text("annotations-changed", "/annotations", f"annotations changed: {', '.join(keys)}")
    SchemaComparison(server, old.name, "input", old.input_schema, new.input_schema, changes).run(
        "/inputSchema"
    )
    if old.output_schema is None and new.output_schema is not None:
        changes.append(
            Change(
                "output-schema-added",
                "breaking",
                server,
                old.name,
                "/outputSchema",
                "outputSchema added: the generated function now returns a typed model, not a ToolResult",
            )
        )
    elif old.output_schema is not None and new.output_schema is None:
        changes.append(
            Change(
                "output-schema-removed",
                "breaking",
                server,
                old.name,
                "/outputSchema",
                "outputSchema removed: the generated function now returns a ToolResult",
            )
        )
    elif old.output_schema is not None and new.output_schema is not None:
        SchemaComparison(
            server, old.name, "output", old.output_schema, new.output_schema, changes
        ).run("/outputSchema")
    if not changes and old.digest() != new.digest():
        # Left: order within sets (required, enum, type lists) or $ref layout. Nothing for
        # callers, but the snapshot is stale and generated names may differ, so it counts.
        text(
            "definition-rewritten",
            "",
            "definition rewritten without changing what it accepts or returns "
            "(e.g. order of enum values, $defs layout)",
        )
    return changes
