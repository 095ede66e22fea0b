"""What a tool call returns: `ToolResult`, and the content blocks inside it."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AudioContent",
    "ContentBlock",
    "EmbeddedResource",
    "ImageContent",
    "ResourceLink",
    "TextContent",
    "ToolResult",
]


class _Block(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class TextContent(_Block):
    """Text the tool returned."""

    type: Literal["text"] = "text"
    text: str


class ImageContent(_Block):
    """An image, base64-encoded."""

    type: Literal["image"] = "image"
    data: str
    mime_type: str = Field(alias="mimeType")


class AudioContent(_Block):
    """Audio, base64-encoded."""

    type: Literal["audio"] = "audio"
    data: str
    mime_type: str = Field(alias="mimeType")


class ResourceLink(_Block):
    """A link to a resource the server offers."""

    type: Literal["resource_link"] = "resource_link"
    uri: str
    name: str = ""


class EmbeddedResource(_Block):
    """A resource embedded in the result (`resource.text` or `resource.blob`)."""

    type: Literal["resource"] = "resource"
    resource: dict[str, Any]


ContentBlock = TextContent | ImageContent | AudioContent | ResourceLink | EmbeddedResource
_BLOCKS: dict[str, type[_Block]] = {
    "text": TextContent,
    "image": ImageContent,
    "audio": AudioContent,
    "resource_link": ResourceLink,
    "resource": EmbeddedResource,
}


class ToolResult(BaseModel):
    """The result of a tool that declares no outputSchema.

    `text` joins the text blocks, which is what most tools return; `json()` parses
    the structured content, or else that text, as JSON.
    """

    model_config = ConfigDict(frozen=True)

    content: tuple[ContentBlock, ...] = ()
    structured_content: dict[str, Any] | None = None

    @classmethod
    def from_wire(cls, result: dict[str, Any]) -> ToolResult:
        """Build from a wire-form `CallToolResult` dict; unknown block types are kept as text."""
        blocks: list[ContentBlock] = []
        for raw in result.get("content") or ():
            block_type = _BLOCKS.get(raw.get("type", "")) if isinstance(raw, dict) else None
            if block_type is None:
                blocks.append(TextContent(text=json.dumps(raw, ensure_ascii=False)))
            else:
                blocks.append(block_type.model_validate(raw))  # type: ignore[arg-type]
        structured = result.get("structuredContent")
        return cls(
            content=tuple(blocks),
            structured_content=structured if isinstance(structured, dict) else None,
        )

    @property
    def text(self) -> str:
        """The text blocks, joined by newlines."""
        return "\n".join(block.text for block in self.content if isinstance(block, TextContent))

    def json(self) -> Any:  # type: ignore[override]
        """The structured content if any, else the text parsed as JSON.

        Raises:
            ValueError: there is no structured content and the text is not JSON.
        """
        if self.structured_content is not None:
            return self.structured_content
        return json.loads(self.text)

    def __str__(self) -> str:
        return self.text
