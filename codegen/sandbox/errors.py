"""The errors the sandbox raises to its caller (not to the agent's code)."""

from __future__ import annotations

__all__ = ["SandboxError", "SandboxUnavailableError"]


class SandboxError(Exception):
    """The sandbox could not be prepared or started: a message for the user, one line."""


class SandboxUnavailableError(SandboxError):
    """gVisor's `runsc` is missing or cannot run on this machine."""
