"""Render: the snapshot becomes the files of a package, in memory.

Reads only the snapshot. Every collection is sorted before it reaches a
template, nothing depends on the clock or the machine, and server text enters
source only through `escape`. The result is a mapping of relative paths to file
contents; `write` formats, verifies and puts it on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import __version__
from .cache import BuildCache, CachedTool, ServerRecord, file_key, server_key, tool_key
from .diagnostics import Diagnostic, Diagnostics
from .escape import doc_text, one_line
from .index import IndexEntry
from .names import MCP_NAME_PATTERN, assign_unique
from .namespaces import listing
from .progress import Progress, QuietProgress
from .render_extras import extras_listing, extras_offered, offers_extras, render_extras
from .snapshot import SNAPSHOT_FILENAME, ServerSnapshot, Snapshot
from .templating import render_template
from .toolmodule import BuiltTool, ToolJob, build_tools

__all__ = [
    "PackageOptions",
    "RenderedPackage",
    "RenderedServer",
    "RenderedTool",
    "header",
    "render_package",
]

RUNTIME_DIR = Path(__file__).parent / "runtime"


@dataclass(frozen=True)
class PackageOptions:
    """What the user chose about the package: its import name, distribution name, version."""

    name: str = "mcp_tools"
    dist_name: str | None = None
    version: str = "0.1.0"
    """The package version (the build computes it from the previous output unless given)."""

    @property
    def distribution(self) -> str:
        """The distribution name: given, or the import name with dashes."""
        return self.dist_name or self.name.replace("_", "-")


@dataclass(frozen=True)
class RenderedTool:
    """One tool module, and what the index needs to know of it.

    `reused` modules come from the build cache as their final bytes; the others
    are fresh source, still to be formatted and verified.
    """

    server: str
    tool: str
    ident: str
    path: PurePosixPath
    key: str
    entry: IndexEntry
    reused: bool = False


@dataclass
class RenderedServer:
    """One server's directory of the package (`<package>/servers/<ident>/`).

    A `kept` server is the previous build's directory, unchanged on disk and
    unchanged in the snapshot: none of its files is in `RenderedPackage.files`, and
    the build leaves it where it is.
    """

    name: str
    ident: str
    key: str
    """Its cache key (`cache.server_key`)."""
    directory: str
    """Its directory, relative to the output."""
    tool_count: int
    record: ServerRecord | None = None
    """What the previous build's cache says of it (kept servers: their files, entries)."""
    kept: bool = False
    reuse: dict[str, Any] | None = None
    """What a later build needs to keep it whole (None when it cannot: a tool failed)."""
    tools: list[RenderedTool] = field(default_factory=list)
    """Its tool modules (not for kept servers)."""
    keyed: dict[PurePosixPath, str] = field(default_factory=dict)
    """Cache keys of its files other than tool modules (its `__init__.py`)."""
    entries: list[IndexEntry] = field(default_factory=list)
    """Index entries of its functions outside tool modules (resources, prompts; not for
    kept servers: theirs are in the previous build's index parts and cache)."""


@dataclass
class RenderedPackage:
    """Every file of the package, by path relative to the output directory."""

    files: dict[PurePosixPath, str | bytes | Path] = field(default_factory=dict)
    """Text to write, bytes to write, or a file of the previous output to link (unchanged).
    Kept servers' files are not here: they stay where they are."""
    known: dict[PurePosixPath, str] = field(default_factory=dict)
    """The SHA-256 of the linked files, checked unchanged."""
    servers: list[RenderedServer] = field(default_factory=list)
    """The servers in the package (not those left out)."""
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    left_out: dict[str, str] = field(default_factory=dict)
    """Servers with no usable tool, which the package leaves out, with why."""
    digests: dict[str, str] = field(default_factory=dict)
    """Each snapshot server's content digest, for the next build's comparison."""
    idents: tuple[list[str], dict[str, str], list[list[str]]] = ([], {}, [])
    """The server names, sorted; the identifier given to each; those renamed."""

    @property
    def tool_count(self) -> int:
        """How many tool modules the package holds."""
        return sum(server.tool_count for server in self.servers)

    @property
    def reused(self) -> int:
        """How many of them the previous build made (kept, or linked from it)."""
        return sum(
            server.tool_count if server.kept else sum(tool.reused for tool in server.tools)
            for server in self.servers
        )


def header(digest: str) -> str:
    """The first comment of every generated file: generated, do not edit, which input."""
    return f"Generated by mcp-codegen {__version__} from {SNAPSHOT_FILENAME} ({digest[:12]}). Do not edit."


@dataclass
class _Plan:
    """A server on its way: kept whole, or its tools to render or reuse one by one."""

    server: ServerSnapshot
    ident: str
    key: str
    record: ServerRecord | None
    kept: bool
    tool_idents: dict[str, str] = field(default_factory=dict)
    renamed: list[Diagnostic] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    hits: dict[str, CachedTool] = field(default_factory=dict)


def _server_idents(
    snapshot: Snapshot, cache: BuildCache
) -> tuple[list[str], dict[str, str], list[list[str]]]:
    """The identifier of each server (as `assign_unique` gives them), the same as last time
    when the servers are: each costs tens of microseconds, and a catalog has thousands."""
    names = sorted(server.name for server in snapshot.servers)
    known = cache.server_idents(names)
    if known is not None:
        mapping, renamed = known.get("mapping"), known.get("renamed")
        if isinstance(mapping, dict) and mapping.keys() == set(names) and isinstance(renamed, list):
            return names, mapping, renamed
    given, renamed_items = assign_unique(names, fallback="server")
    return (
        names,
        dict(given),
        [[item.original, item.wanted, item.given] for item in renamed_items],
    )


def render_package(
    snapshot: Snapshot,
    options: PackageOptions,
    cache: BuildCache | None = None,
    progress: Progress | None = None,
    *,
    snapshot_text: str | bytes | None = None,
    on_kept: Callable[[list[tuple[str, ServerRecord]]], None] | None = None,
) -> RenderedPackage:
    """Render every file of the package for `snapshot`.

    Per-tool problems (a schema that cannot become models, a renamed tool) are
    recorded in the result's diagnostics; those tools are left out. Servers and
    tools the `cache` holds unchanged are taken from it instead of being rendered.
    `snapshot_text` is the snapshot's `to_json()`, if the caller has it already.
    `on_kept` is told the servers kept whole (key, cache record) as soon as they are
    known, before any tool is rendered.
    """
    cache = cache or BuildCache(None)
    package = RenderedPackage()
    digest = snapshot.digest()
    root = PurePosixPath(options.name)
    package.idents = _server_idents(snapshot, cache)
    server_idents = package.idents[1]
    for original, wanted, given in package.idents[2]:
        package.diagnostics.warn(
            f"server package named {given!r}, since {wanted!r} is taken", server=original
        )
    plans: list[_Plan] = []
    jobs: list[ToolJob] = []
    for server in snapshot.servers:
        ident = server_idents[server.name]
        package.digests[server.name] = snapshot.server_content_digest(server.name)
        key = server_key(options.name, server.name, ident, package.digests[server.name])
        record = cache.servers.get(server.name)
        if (
            record is not None
            and record.key == key
            and record.reuse is not None
            and cache.server_unchanged(record)
        ):
            plan = _Plan(server, ident, key, record, kept=True)
            plan.renamed = [_diagnostic(item) for item in record.reuse["renamed"]]
            plans.append(plan)
            continue
        plan = _Plan(server, ident, key, record, kept=False)
        mapping, renamed_tools = assign_unique(tool.name for tool in server.tools)
        plan.tool_idents = dict(mapping)
        for item in renamed_tools:
            plan.renamed.append(
                Diagnostic(
                    "warning",
                    f"function named {item.given!r}, since {item.wanted!r} is taken by another tool",
                    server=server.name,
                    tool=item.original,
                )
            )
        for tool in server.tools:
            tool_ident = plan.tool_idents[tool.name]
            tool_digest = snapshot.tool_digest(server.name, tool.name)
            tool_cache_key = plan.keys[tool.name] = tool_key(
                options.name, server.name, ident, tool_ident, tool_digest
            )
            hit = cache.lookup(
                record, tool_cache_key, _module_path(options.name, ident, tool_ident)
            )
            if hit is None:
                jobs.append(
                    ToolJob(server.name, ident, tool, tool_ident, options.name, tool_digest)
                )
            else:
                plan.hits[tool.name] = hit
        plans.append(plan)
    for plan in plans:
        package.diagnostics.items.extend(plan.renamed)
    if on_kept is not None:
        on_kept([(plan.key, plan.record) for plan in plans if plan.kept and plan.record])
    progress = progress or QuietProgress()
    unchanged = sum(len(plan.server.tools) if plan.kept else len(plan.hits) for plan in plans)
    progress.stage(f"generating tool modules ({unchanged} tools unchanged)", len(jobs))
    fresh = iter(build_tools(jobs, progress.advance))
    servers_view: list[dict[str, Any]] = []
    for plan in plans:
        view = _render_plan(plan, snapshot, options, package, fresh, cache)
        if view is not None:
            servers_view.append(view)
    package.files[root / "servers" / "__init__.py"] = render_template(
        "servers_init.py.jinja",
        header=header(digest),
        docstring=_servers_docstring(servers_view),
        servers=servers_view,
    )
    package.files[root / "__init__.py"] = render_template(
        "package_init.py.jinja",
        header=header(digest),
        docstring=_package_docstring(options, servers_view),
    )
    package.files[root / "py.typed"] = ""
    for path in sorted(RUNTIME_DIR.glob("*.py")):
        package.files[root / "_runtime" / path.name] = path.read_text(encoding="utf-8")
    example_server, example_tool = _example(servers_view)
    version = options.version
    common = {
        "header": header(digest),
        "dist_name": options.distribution,
        "package": options.name,
        "version": version,
        "digest": digest,
        "server_count": len(snapshot.servers),
        "tool_count": package.tool_count,
    }
    package.files[PurePosixPath("pyproject.toml")] = render_template(
        "pyproject.toml.jinja", **common
    )
    package.files[PurePosixPath("README.md")] = render_template(
        "README.md.jinja",
        servers_text=readme_servers(servers_view),
        example_server=example_server,
        example_tool=example_tool,
        example_args="",
        **common,
    )
    package.files[PurePosixPath(SNAPSHOT_FILENAME)] = snapshot_text or snapshot.to_json()
    return package


def _diagnostic(fields: dict[str, Any]) -> Diagnostic:
    return Diagnostic(**fields)


def _render_plan(
    plan: _Plan,
    snapshot: Snapshot,
    options: PackageOptions,
    package: RenderedPackage,
    fresh: Iterator[BuiltTool],
    cache: BuildCache,
) -> dict[str, Any] | None:
    """Render one server's directory (or keep it); its view for the package's docstrings."""
    server, ident = plan.server, plan.ident
    directory = f"{options.name}/servers/{ident}"
    if plan.kept:
        assert plan.record is not None and plan.record.reuse is not None
        reuse = plan.record.reuse
        package.diagnostics.items.extend(_diagnostic(item) for item in reuse["warnings"])
        package.servers.append(
            RenderedServer(
                server.name,
                ident,
                plan.key,
                directory,
                reuse["count"],
                record=plan.record,
                kept=True,
                reuse=reuse,
            )
        )
        return dict(reuse["view"])
    generated = [
        (plan.keys[tool.name], plan.hits.get(tool.name) or next(fresh)) for tool in server.tools
    ]
    found = Diagnostics()
    rendered = RenderedServer(server.name, ident, plan.key, directory, 0, record=plan.record)
    tools_view = _render_server(
        server, ident, plan.tool_idents, generated, options, package, rendered, found
    )
    package.diagnostics.extend(found)
    if not tools_view and (server.tools or not offers_extras(server)):
        # A server package of nothing would be a module of nothing: the server is
        # left out and said so. One with no tools but resources or prompts is built.
        if server.tools:
            why = f"none of its {len(server.tools)} tools could be generated"
        else:
            why = "it offers no tools, resources or prompts"
            package.diagnostics.warn(f"{why}; left out of the package", server=server.name)
        package.left_out[server.name] = why
        return None
    view = {
        "ident": ident,
        "name": server.name,
        "server_name": server.server_name or server.name,
        "version": server.server_version,
        "summary": one_line(server.instructions) or (server.server_title or ""),
        "tools": tools_view,
        "extras": extras_offered(server),
    }
    rendered.tool_count = len(rendered.tools)
    if not found.errors:
        rendered.reuse = {
            "count": rendered.tool_count,
            "view": view,
            "renamed": [item.to_json() for item in plan.renamed],
            "warnings": [item.to_json() for item in found],
        }
    package.servers.append(rendered)
    init_path = PurePosixPath(directory, "__init__.py")
    server_digest = snapshot.server_digest(server.name)
    init_key = file_key(
        options.name,
        init_path.as_posix(),
        server_digest,
        *(tool["ident"] for tool in tools_view),
    )
    previous = cache.lookup_file(plan.record, init_key, init_path)
    if previous is not None:
        package.files[init_path] = previous.source
        package.known[init_path] = previous.sha256
    else:
        package.files[init_path] = render_template(
            "server_init.py.jinja",
            header=f"Generated by mcp-codegen {__version__} from server {server.name!r} of "
            f"{SNAPSHOT_FILENAME} ({server_digest[:12]}). Do not edit.",
            package=options.name,
            docstring=_server_docstring(server, ident, tools_view),
            tools=tools_view,
        )
    rendered.keyed[init_path] = init_key
    return view


def _render_server(
    server: ServerSnapshot,
    server_ident: str,
    idents: dict[str, str],
    generated: list[tuple[str, BuiltTool | CachedTool]],
    options: PackageOptions,
    package: RenderedPackage,
    rendered: RenderedServer,
    found: Diagnostics,
) -> list[dict[str, str]]:
    view: list[dict[str, str]] = []
    for tool, (key, built) in zip(server.tools, generated, strict=True):
        if not MCP_NAME_PATTERN.match(tool.name):
            found.warn(
                f"tool name is outside the MCP pattern [A-Za-z0-9._-]{{1,128}}; "
                f"generated as {idents[tool.name]!r}",
                server=server.name,
                tool=tool.name,
            )
        ident = idents[tool.name]
        path = _module_path(options.name, server_ident, ident)
        if isinstance(built, CachedTool):
            rendered.tools.append(
                RenderedTool(server.name, tool.name, ident, path, key, built.entry, reused=True)
            )
            package.files[path] = built.source
            package.known[path] = built.sha256
        elif built.source is None or built.entry is None:
            found.error(
                built.error or "failed",
                server=server.name,
                tool=tool.name,
                pointer=None if built.bug else "/inputSchema",
                hint=(
                    "this is a bug of mcp-codegen: please report it with the tool's schema"
                    if built.bug
                    else "the tool is left out; fix the server's schema or pass --keep-going"
                ),
            )
            continue
        else:
            rendered.tools.append(
                RenderedTool(server.name, tool.name, ident, path, key, built.entry)
            )
            package.files[path] = built.source
        view.append(
            {
                "ident": ident,
                "name": tool.name,
                "summary": one_line(tool.description or tool.title),
                "required": "yes" if tool.input_schema.get("required") else "",
            }
        )
    if view or not server.tools:  # a server left out keeps no resources or prompts modules either
        extras = render_extras(server, server_ident, options.name, found)
        package.files.update(extras.files)
        rendered.entries.extend(extras.entries)
    return view


def _module_path(package: str, server_ident: str, ident: str) -> PurePosixPath:
    # One parse, not three joins: at 10,000 tools, pathlib's joins cost a tenth of a second.
    return PurePosixPath(f"{package}/servers/{server_ident}/{ident}.py")


def readme_servers(servers: list[dict[str, Any]]) -> str:
    """The README's list of servers and their tools.

    Plain Python, not a template loop: at 10,000 tools jinja took a tenth of a second.
    """
    lines = []
    for server in servers:
        about = f" ({server['server_name']} {server['version']})" if server["version"] else ""
        lines.append(f"\n### `{server['ident']}`{about}\n")
        for tool in server["tools"]:
            lines.append(
                f"- `{tool['ident']}`" + (f": {tool['summary']}" if tool["summary"] else "") + "\n"
            )
        if not server["tools"]:
            modules = " and ".join(
                f"`servers.{server['ident']}.{module}`" for module in server.get("extras", ())
            )
            lines.append(f"- no tools; {modules}\n")
    return "".join(lines)


def _example(servers: list[dict[str, Any]]) -> tuple[str, str]:
    """A tool to show in the README: the first that needs no arguments, else the first.

    With no tool in the package, a server's `resources` module (its `read`), else `prompts`.
    """
    candidates = [(server, tool) for server in servers for tool in server["tools"]]
    for server, tool in sorted(candidates, key=lambda pair: bool(pair[1]["required"])):
        return str(server["ident"]), str(tool["ident"])
    # No tool at all: servers that offer only resources or prompts (one at least has either).
    for server in servers:
        if "resources" in server.get("extras", ()):
            return str(server["ident"]), "resources"
    if servers:
        return str(servers[0]["ident"]), "prompts"
    return "example", "example_tool"


def _server_docstring(server: ServerSnapshot, ident: str, tools: list[dict[str, str]]) -> str:
    about = " ".join(part for part in (server.server_name, server.server_version) if part)
    about = f" ({about})" if about else ""
    if tools:
        count = f"{len(tools)} tool" + ("" if len(tools) == 1 else "s")
        lines = [f"{ident}: {count} of the MCP server {server.name!r}{about}."]
    else:
        lines = [
            f"{ident}: the MCP server {server.name!r}{about} offers no tools, "
            f"only {' and '.join(extras_offered(server))}."
        ]
    if server.instructions:
        lines += ["", doc_text(server.instructions)]
    if tools:
        titles = {tool.name: tool.title for tool in server.tools}
        # Namespaces may come from titles, server text like the summaries: escaped line by line.
        listed = listing(
            [(t["ident"], t["name"], titles.get(t["name"]), t["summary"]) for t in tools]
        )
        lines += ["", *(doc_text(line) for line in listed)]
    lines += extras_listing(server, ident)
    return "\n".join(lines) + "\n"


def _servers_docstring(servers: list[dict[str, Any]]) -> str:
    lines = ["The servers; each is a package with one module per tool.", ""]
    width = max((len(server["ident"]) for server in servers), default=0)
    for server in servers:
        summary = doc_text(server["summary"]) if server["summary"] else ""
        count = len(server["tools"])
        tools = (f"{count} tool" + ("" if count == 1 else "s")) if count else "no tools"
        lines.append(f"{server['ident']:<{width}}  {tools:<9}  {summary}".rstrip())
    return "\n".join(lines) + "\n"


def _package_docstring(options: PackageOptions, servers: list[dict[str, Any]]) -> str:
    count = sum(len(server["tools"]) for server in servers)
    return (
        f"{options.distribution}: typed functions for {count} MCP tools of {len(servers)} servers.\n\n"
        f"Find tools with `search_tools(query)`; each lives at `{options.name}.servers.<server>.<tool>`.\n"
        "Servers: " + ", ".join(str(server["ident"]) for server in servers) + ".\n"
    )
