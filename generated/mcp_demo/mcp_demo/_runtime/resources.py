"""Resources and prompts: what the generated `resources` and `prompts` modules end in.

`servers.<server>.resources` has `read(uri)`, a catalogue of the server's static
resources (`RESOURCES`, each a `ResourceInfo`), and one function per resource
template whose keyword arguments are the template's variables; they end in
`read_resource` and `read_template` here. `servers.<server>.prompts` has one
function per prompt, ending in `get_prompt`. The transport carries them as it
carries tool calls: the direct transport over the process's own MCP sessions,
the bridge transport to the host, which checks each against the snapshot.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import TransportError
from .results import ContentBlock, ToolResult
from .transport import get_transport
from .uritemplate import TemplateError, parse

__all__ = [
    "PromptMessage",
    "PromptResult",
    "ResourceContents",
    "ResourceInfo",
    "ResourceItem",
    "get_prompt",
    "read_resource",
    "read_template",
]


class ResourceInfo(BaseModel):
    """A static resource a server listed when the package was built."""

    model_config = ConfigDict(frozen=True)

    uri: str
    name: str
    title: str | None = None
    mime_type: str | None = None
    description: str | None = None


class ResourceItem(BaseModel):
    """One part of a resource as read: `text`, or `blob` (base64) for binary data."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    uri: str = ""
    mime_type: str | None = Field(default=None, alias="mimeType")
    text: str | None = None
    blob: str | None = None

    @property
    def data(self) -> bytes:
        """The bytes: the blob decoded, or the text as UTF-8."""
        if self.blob is not None:
            try:
                return base64.b64decode(self.blob, validate=True)
            except (binascii.Error, ValueError):
                return b""
        return (self.text or "").encode("utf-8")


class ResourceContents(BaseModel):
    """What reading a resource gave: its parts (most resources have one).

    `text` joins the text parts; `json()` parses that text; `data` is the first
    part's bytes (for binary resources).
    """

    model_config = ConfigDict(frozen=True)

    contents: tuple[ResourceItem, ...] = ()

    @classmethod
    def from_wire(cls, result: Mapping[str, Any]) -> ResourceContents:
        """Build from a wire-form `ReadResourceResult` dict."""
        items = [
            ResourceItem.model_validate(item)
            for item in result.get("contents") or ()
            if isinstance(item, dict)
        ]
        return cls(contents=tuple(items))

    @property
    def text(self) -> str:
        """The text parts, joined by newlines."""
        return "\n".join(item.text for item in self.contents if item.text is not None)

    @property
    def data(self) -> bytes:
        """The first part's bytes (empty when there is no part)."""
        return self.contents[0].data if self.contents else b""

    @property
    def mime_type(self) -> str | None:
        """The first part's MIME type, if the server said."""
        return self.contents[0].mime_type if self.contents else None

    def json(self) -> Any:  # type: ignore[override]
        """The text parsed as JSON.

        Raises:
            ValueError: the text is not JSON.
        """
        return json.loads(self.text)

    def __str__(self) -> str:
        return self.text


class PromptMessage(BaseModel):
    """One message of a prompt: who says it, and what (a content block)."""

    model_config = ConfigDict(frozen=True)

    role: str
    content: ContentBlock


class PromptResult(BaseModel):
    """A prompt filled in by the server: its messages, in order."""

    model_config = ConfigDict(frozen=True)

    description: str | None = None
    messages: tuple[PromptMessage, ...] = ()

    @classmethod
    def from_wire(cls, result: Mapping[str, Any]) -> PromptResult:
        """Build from a wire-form `GetPromptResult` dict (unknown content kept as text)."""
        messages = []
        for message in result.get("messages") or ():
            if not isinstance(message, dict):
                continue
            blocks = ToolResult.from_wire({"content": [message.get("content")]}).content
            if blocks:
                messages.append(PromptMessage(role=str(message.get("role", "")), content=blocks[0]))
        description = result.get("description")
        return cls(
            description=description if isinstance(description, str) else None,
            messages=tuple(messages),
        )

    @property
    def text(self) -> str:
        """The messages' text, each as `role: text`, one per line."""
        return "\n".join(
            f"{message.role}: {getattr(message.content, 'text', '')}" for message in self.messages
        )

    def __str__(self) -> str:
        return self.text


def _method(name: str) -> Any:
    transport = get_transport()
    method = getattr(transport, name, None)
    if method is None:
        raise TransportError(
            f"the transport in use ({type(transport).__name__}) cannot {name.replace('_', ' ')}"
        )
    return method


async def read_resource(server: str, uri: str) -> ResourceContents:
    """Read the resource `uri` of `server`.

    Raises:
        TransportError: the read did not reach the server, the server refused it (an
            unknown uri), or (in the sandbox) the uri is not one of the server's
            resources or templates.
    """
    return ResourceContents.from_wire(await _method("read_resource")(server, uri))


async def read_template(
    server: str, template: str, values: Mapping[str, str | Sequence[str] | None]
) -> ResourceContents:
    """Read the resource that `template` (RFC 6570) of `server` names for `values`.

    Raises:
        TransportError: as `read_resource`, or a value does not fit the template.
    """
    given = {name: value for name, value in values.items() if value is not None}
    reader = getattr(get_transport(), "read_template", None)
    if reader is not None:  # the bridge: the host expands the template itself
        return ResourceContents.from_wire(await reader(server, template, given))
    try:
        uri = parse(template).expand(given)
    except TemplateError as exc:
        raise TransportError(f"{server}: resource template {template!r}: {exc}") from None
    return await read_resource(server, uri)


async def get_prompt(server: str, name: str, arguments: Mapping[str, str | None]) -> PromptResult:
    """Get the prompt `name` of `server` filled in with `arguments` (None: left out).

    Raises:
        TransportError: the request did not reach the server, or it refused it (an
            unknown prompt, a missing required argument).
    """
    given = {key: value for key, value in arguments.items() if value is not None}
    return PromptResult.from_wire(await _method("get_prompt")(server, name, given))
