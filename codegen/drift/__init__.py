"""Drift: what changed between two snapshots, and how much it matters to callers.

`diff_snapshots(old, new)` lists every change with a severity:

- breaking: code written against `old` may fail against `new` (a tool or
  parameter removed, a required parameter added, an accepted input narrowed, an
  output field removed or made optional, an output widened);
- compatible: `old` callers keep working (a tool or optional parameter added,
  an input widened, an output narrowed);
- text: only words changed (descriptions, titles, annotations, server info).

`changes` holds the model (`Change`, `DriftReport`, severities and bumps),
`snapshots` the comparison of servers and tools, and `schemas` the JSON-Schema
variance rules that classify a change to a tool's input or output.
"""

from __future__ import annotations

from .changes import SEVERITIES, Bump, Change, DriftReport, Severity
from .snapshots import diff_snapshots

__all__ = ["SEVERITIES", "Bump", "Change", "DriftReport", "Severity", "diff_snapshots"]
