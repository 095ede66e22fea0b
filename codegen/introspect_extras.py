"""Introspection of what a server offers besides tools: resources, resource templates, prompts.

Listed only when the server declares the capability (`resources`, `prompts`), with
pagination followed. A server without them is fine, and so is one that declares a
capability but does not implement a list (many older servers answer
`resources/templates/list` with "method not found"): that list is simply empty. Any
other failure is a warning naming the server and the list; the tools still count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from .snapshot import PromptSnapshot, ResourceSnapshot, ResourceTemplateSnapshot

if TYPE_CHECKING:
    from mcp import Client

__all__ = ["MAX_LISTED", "METHOD_NOT_FOUND", "Extras", "list_extras"]

MAX_PAGES = 1000
MAX_LISTED = 10_000
"""Items of one list kept per server; a server listing more (every row of a database as
a resource) is cut there, with a warning: its templates usually reach the rest."""
METHOD_NOT_FOUND = -32601
"""JSON-RPC's "method not found": what a server answers for a list it does not implement."""


@dataclass
class Extras:
    """The snapshot fields of one server's resources, templates and prompts, and what went wrong."""

    fields: dict[str, Any] = field(default_factory=dict)
    """`resources`, `resource_templates`, `prompts` for `ServerSnapshot`, where non-empty."""
    warnings: list[str] = field(default_factory=list)


class _ListFailed(Exception):
    pass


async def list_extras(client: Client) -> Extras:
    """List the resources, resource templates and prompts of a connected server.

    Never raises for what the server does: failures become `warnings`; only
    cancellation (the server's deadline) passes through.
    """
    extras = Extras()
    capabilities = client.server_capabilities
    if capabilities.resources is not None:
        resources = await _collect(
            extras,
            "resources/list",
            lambda cursor: client.list_resources(cursor=cursor),
            "resources",
            _resource,
            key=lambda item: item.uri,
        )
        templates = await _collect(
            extras,
            "resources/templates/list",
            lambda cursor: client.list_resource_templates(cursor=cursor),
            "resource_templates",
            _template,
            key=lambda item: item.uri_template,
        )
        if resources:
            extras.fields["resources"] = tuple(resources)
        if templates:
            extras.fields["resource_templates"] = tuple(templates)
    if capabilities.prompts is not None:
        prompts = await _collect(
            extras,
            "prompts/list",
            lambda cursor: client.list_prompts(cursor=cursor),
            "prompts",
            _prompt,
            key=lambda item: item.name,
        )
        if prompts:
            extras.fields["prompts"] = tuple(prompts)
    return extras


async def _collect(
    extras: Extras,
    method: str,
    fetch: Callable[[str | None], Awaitable[Any]],
    attribute: str,
    convert: Callable[[dict[str, Any]], BaseModel],
    *,
    key: Callable[[Any], str],
) -> list[Any]:
    try:
        items = await _pages(method, fetch, attribute)
    except _ListFailed as exc:
        extras.warnings.append(str(exc))
        return []
    kept: dict[str, Any] = {}
    skipped: list[str] = []
    for item in items:
        try:
            converted = convert(item.model_dump(by_alias=True, exclude_none=True, mode="json"))
        except (ValidationError, KeyError) as exc:
            extras.warnings.append(f"{method}: left out an invalid item: {_first(exc)}")
            continue
        name = key(converted)
        if name in kept:
            skipped.append(name)
            continue
        kept[name] = converted
    if skipped:
        extras.warnings.append(
            f"{method} listed {len(skipped)} item(s) twice (first: {skipped[0][:120]!r}); "
            "the first of each is kept"
        )
    if len(kept) > MAX_LISTED:
        extras.warnings.append(
            f"{method} listed {len(kept)} items; the first {MAX_LISTED} are kept"
        )
    return list(kept.values())[:MAX_LISTED]


async def _pages(
    method: str, fetch: Callable[[str | None], Awaitable[Any]], attribute: str
) -> Sequence[Any]:
    """Every item of a paginated list, following `nextCursor`.

    Raises:
        _ListFailed: the server answered with an error (other than "method not found",
            which counts as an empty list), invalid data, or endless pages.
    """
    from mcp.shared.exceptions import MCPError

    items: list[Any] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        try:
            page = await fetch(cursor)
        except MCPError as exc:
            if exc.error.code == METHOD_NOT_FOUND:
                return items
            raise _ListFailed(f"{method} failed: {exc.error.message[:200]}") from None
        except ValidationError as exc:
            raise _ListFailed(f"{method} answered with invalid data: {_first(exc)}") from None
        items.extend(getattr(page, attribute))
        if len(items) > 2 * MAX_LISTED:
            return items  # enough: the rest would be cut anyway
        cursor = page.next_cursor
        if cursor is None:
            return items
        if cursor in seen:
            raise _ListFailed(f"{method} repeated the cursor {cursor[:60]!r}; it was left out")
        seen.add(cursor)
    raise _ListFailed(f"{method} went on for more than {MAX_PAGES} pages; it was left out")


def _resource(wire: dict[str, Any]) -> ResourceSnapshot:
    return ResourceSnapshot.model_validate(
        {key: wire[key] for key in _RESOURCE_KEYS if key in wire}
    )


def _template(wire: dict[str, Any]) -> ResourceTemplateSnapshot:
    return ResourceTemplateSnapshot.model_validate(
        {key: wire[key] for key in _TEMPLATE_KEYS if key in wire}
    )


def _prompt(wire: dict[str, Any]) -> PromptSnapshot:
    arguments = [
        {key: argument[key] for key in _ARGUMENT_KEYS if key in argument}
        for argument in wire.get("arguments") or ()
    ]
    return PromptSnapshot.model_validate(
        {
            **{key: wire[key] for key in ("name", "title", "description") if key in wire},
            "arguments": arguments,
        }
    )


_RESOURCE_KEYS = ("uri", "name", "title", "description", "mimeType")
_TEMPLATE_KEYS = ("uriTemplate", "name", "title", "description", "mimeType")
_ARGUMENT_KEYS = ("name", "title", "description", "required")


def _first(exc: ValidationError | KeyError) -> str:
    if isinstance(exc, KeyError):
        return f"{exc.args[0]}: missing"
    error = exc.errors()[0]
    return f"{'/'.join(str(part) for part in error['loc'])}: {error['msg']}"
