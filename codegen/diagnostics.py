"""Problems with the user's input, as values: collected, located, printed once.

A `Diagnostic` says how bad (warning or error), where (server, tool, JSON
pointer), what, and what to do. A stage appends to a `Diagnostics` and goes on,
so one broken tool does not hide the others; the CLI prints them all at the end.
Tracebacks are only for bugs of mcp-codegen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["BuildError", "Diagnostic", "Diagnostics", "Level"]

Level = Literal["warning", "error"]


@dataclass(frozen=True)
class Diagnostic:
    """One problem, located."""

    level: Level
    message: str
    server: str | None = None
    tool: str | None = None
    pointer: str | None = None
    hint: str | None = None

    def location(self) -> str:
        """`server/tool#/pointer`, with the parts that are known."""
        place = "/".join(part for part in (self.server, self.tool) if part)
        if self.pointer:
            place += f"#{self.pointer}"
        return place

    def __str__(self) -> str:
        where = self.location()
        text = f"{self.level}: {where + ': ' if where else ''}{self.message}"
        return text + (f" ({self.hint})" if self.hint else "")

    def to_json(self) -> dict[str, Any]:
        """The diagnostic as a JSON object, without empty fields."""
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass
class Diagnostics:
    """The problems one build found, in the order found."""

    items: list[Diagnostic] = field(default_factory=list)

    def warn(self, message: str, **where: str | None) -> None:
        """Record a warning at `where` (server, tool, pointer, hint)."""
        self.items.append(Diagnostic("warning", message, **where))

    def error(self, message: str, **where: str | None) -> None:
        """Record an error at `where` (server, tool, pointer, hint)."""
        self.items.append(Diagnostic("error", message, **where))

    def extend(self, other: Diagnostics) -> None:
        """Append every item of `other`."""
        self.items.extend(other.items)

    @property
    def errors(self) -> list[Diagnostic]:
        """The errors only."""
        return [item for item in self.items if item.level == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        """The warnings only."""
        return [item for item in self.items if item.level == "warning"]

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class BuildError(Exception):
    """The build stopped; its diagnostics say why. Nothing was written."""

    def __init__(self, message: str, diagnostics: Diagnostics | None = None):
        super().__init__(message)
        self.diagnostics = diagnostics or Diagnostics()
