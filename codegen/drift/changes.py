"""The change model of drift: one `Change`, a `DriftReport` of them, severities and bumps.

- breaking: code written against the old snapshot may fail against the new one;
- compatible: old callers keep working;
- text: only words changed (descriptions, titles, annotations, server info).

The worst severity decides the semantic-version bump: major, minor or patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["SEVERITIES", "Bump", "Change", "DriftReport", "Severity"]

Severity = Literal["breaking", "compatible", "text"]
Bump = Literal["major", "minor", "patch"]
SEVERITIES: tuple[Severity, ...] = ("breaking", "compatible", "text")
_BUMPS: dict[Severity, Bump] = {"breaking": "major", "compatible": "minor", "text": "patch"}


@dataclass(frozen=True)
class Change:
    """One difference between two snapshots, located and classified."""

    kind: str
    """A stable name for machines, e.g. `parameter-removed`, `type-narrowed`."""
    severity: Severity
    server: str
    tool: str | None
    pointer: str
    """A JSON pointer into the tool in wire spelling (`/inputSchema/properties/q`); empty for the whole tool."""
    message: str

    def location(self) -> str:
        """`server/tool#/pointer`, with the parts that are known."""
        place = "/".join(part for part in (self.server, self.tool) if part)
        return place + (f"#{self.pointer}" if self.pointer else "")

    def __str__(self) -> str:
        return f"{self.severity}: {self.location()}: {self.message} [{self.kind}]"

    def to_json(self) -> dict[str, Any]:
        """The change as a JSON object; `tool` is left out for server-level changes."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "severity": self.severity,
            "server": self.server,
            "tool": self.tool,
            "pointer": self.pointer,
            "message": self.message,
        }
        return {key: value for key, value in data.items() if value is not None}


@dataclass(frozen=True)
class DriftReport:
    """Every change from one snapshot to another, breaking ones first."""

    changes: tuple[Change, ...] = ()

    def of(self, severity: Severity) -> tuple[Change, ...]:
        """The changes of one severity."""
        return tuple(change for change in self.changes if change.severity == severity)

    def counts(self) -> dict[Severity, int]:
        """How many changes of each severity (every severity is present)."""
        return {severity: len(self.of(severity)) for severity in SEVERITIES}

    def worst(self) -> Severity | None:
        """The most severe change's severity, or None when nothing changed."""
        return next((severity for severity in SEVERITIES if self.of(severity)), None)

    def bump(self) -> Bump | None:
        """The semantic-version bump the drift calls for: major, minor, patch, or None."""
        worst = self.worst()
        return _BUMPS[worst] if worst else None

    def to_json(self) -> dict[str, Any]:
        """Counts, worst severity, bump and the changes, as JSON values."""
        return {
            "drift": self.worst(),
            "bump": self.bump(),
            "counts": self.counts(),
            "changes": [change.to_json() for change in self.changes],
        }
