"""The two functions every generated tool function ends in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ToolError, ToolOutputError
from .results import ToolResult
from .transport import get_transport

__all__ = ["call_tool", "call_tool_structured"]

OutputT = TypeVar("OutputT", bound=BaseModel)


def _arguments(params: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    # An argument left at None is an argument not given: the server sees it absent.
    given = {name: value for name, value in values.items() if value is not None}
    model = params.model_validate(given, by_name=True)
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dumped


async def _call(
    server: str, tool: str, params: type[BaseModel], values: Mapping[str, Any]
) -> dict[str, Any]:
    arguments = _arguments(params, values)
    result = await get_transport().call_tool(server, tool, arguments)
    if result.get("isError"):
        message = ToolResult.from_wire(result).text or "the tool reported an error"
        raise ToolError(server, tool, message, result)
    return result


async def call_tool(
    server: str, tool: str, params: type[BaseModel], values: Mapping[str, Any]
) -> ToolResult:
    """Validate `values` with the tool's input model, call the tool, return its result.

    Raises:
        pydantic.ValidationError: an argument does not match the tool's input schema.
        ToolError: the server reported an error.
        TransportError: the call did not reach the server or its answer was unreadable.
    """
    return ToolResult.from_wire(await _call(server, tool, params, values))


async def call_tool_structured(
    server: str,
    tool: str,
    params: type[BaseModel],
    values: Mapping[str, Any],
    output: type[OutputT],
) -> OutputT:
    """Like `call_tool`, for a tool with an outputSchema: return its output model.

    The structured content is validated into `output`; a server that sends only
    text gets that text parsed as JSON instead.

    Raises:
        pydantic.ValidationError: an argument does not match the tool's input schema.
        ToolError: the server reported an error.
        ToolOutputError: the output does not match the tool's outputSchema.
        TransportError: the call did not reach the server or its answer was unreadable.
    """
    result = await _call(server, tool, params, values)
    structured = result.get("structuredContent")
    if structured is None:
        text = ToolResult.from_wire(result).text
        try:
            structured = json.loads(text)
        except ValueError:
            raise ToolOutputError(
                server, tool, "no structured content, and its text is not JSON"
            ) from None
    try:
        return output.model_validate(structured)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "/".join(str(part) for part in first["loc"]) or "(root)"
        raise ToolOutputError(server, tool, f"{where}: {first['msg']}") from exc
