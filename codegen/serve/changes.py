"""Upstream changes: a server whose tools, resources or prompts change while `serve` runs.

An upstream server that sends `notifications/tools/list_changed` (or the resources
or prompts one) is listed again, in the background, and compared with what the
package was built from (`drift.diff_snapshots`). If anything differs, the package
is stale for that server: every session's next `search_tools` or `execute_code`
result carries a note naming the server, what changed, and the command that
refreshes the package. A notification that changes nothing (servers send them on
start, or on every call) says nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable
from typing import Any

import mcp_types as types

from ..drift import diff_snapshots
from ..introspect import relist_server
from ..runtime.direct import DirectTransport
from ..snapshot import Snapshot

__all__ = ["UpstreamChanges"]

_LIST_CHANGED = (
    types.ToolListChangedNotification,
    types.ResourceListChangedNotification,
    types.PromptListChangedNotification,
)
_SHOWN_CHANGES = 3
_MAX_SESSIONS_REMEMBERED = 10_000
_SETTLE_SECONDS = 5.0


class UpstreamChanges:
    """Notices upstream `list_changed` notifications and says, once per session, what changed.

    Args:
        snapshot: what the package was built from.
        transport: the host transport whose sessions receive the notifications.
        fix: the command that refreshes the package.
    """

    def __init__(self, snapshot: Snapshot, transport: DirectTransport, fix: str):
        self.snapshot = snapshot
        self.transport = transport
        self.fix = fix
        self.changed: dict[str, str] = {}
        """What changed, by server (a short description)."""
        self.version = 0
        self._seen: dict[Hashable, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def watch(self) -> None:
        """Receive the transport's notifications from now on."""
        self.transport.on_notification = self.notice

    async def notice(self, server: str, message: Any) -> None:
        """A notification of `server`'s session: a list changed, look again (in the background)."""
        if not isinstance(message, _LIST_CHANGED):
            return
        if server in self._tasks:
            self._again.add(server)  # listed again once the current look is done
            return
        self._tasks[server] = asyncio.get_running_loop().create_task(self._look(server))

    async def _look(self, server: str) -> None:
        try:
            while True:
                self._again.discard(server)
                self._compare(server, await self._describe(server))
                if server not in self._again:
                    return
        finally:
            self._tasks.pop(server, None)

    async def _describe(self, server: str) -> str | None:
        """What changed on `server` since the build, in a few words (None: nothing)."""
        before = self.snapshot.server(server)
        try:
            client = await self.transport.client(server)
            now = await relist_server(client, server)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return f"it said its list changed, and listing it again failed ({str(exc)[:200]})"
        old = Snapshot(servers=(before,)) if before is not None else Snapshot()
        report = diff_snapshots(old, Snapshot(servers=(now,)))
        changes = [change for change in report.changes if change.kind != "server-info-changed"]
        if not changes:
            return None
        counts = ", ".join(
            f"{count} {severity}"
            for severity, count in report.counts().items()
            if count and any(change.severity == severity for change in changes)
        )
        shown = "; ".join(
            f"{change.message} ({change.location()})" for change in changes[:_SHOWN_CHANGES]
        )
        more = (
            f"; ... {len(changes) - _SHOWN_CHANGES} more" if len(changes) > _SHOWN_CHANGES else ""
        )
        return f"{len(changes)} change{'' if len(changes) == 1 else 's'} ({counts}): {shown}{more}"

    def _compare(self, server: str, description: str | None) -> None:
        if description is None:
            if self.changed.pop(server, None) is not None:
                self.version += 1  # changed back: the package fits again
            return
        if self.changed.get(server) != description:
            self.changed[server] = description
            self.version += 1

    async def note_for(self, session: Hashable | None) -> str | None:
        """The note for `session`'s next result, once per change (None: nothing new).

        A server being listed again after a notification is waited for (a moment at
        most), so the result right after a change already says so.
        """
        pending = [task for task in self._tasks.values() if not task.done()]
        if pending:
            await asyncio.wait([asyncio.shield(task) for task in pending], timeout=_SETTLE_SECONDS)
        if not self.changed:
            return None
        key: Hashable = session if session is not None else object()
        if self._seen.get(key, 0) >= self.version:
            return None
        if len(self._seen) >= _MAX_SESSIONS_REMEMBERED:
            self._seen.clear()
        self._seen[key] = self.version
        lines = [
            f"note: the MCP server {name!r} changed since this package was built: {what}"
            for name, what in sorted(self.changed.items())
        ]
        lines.append(
            f"Its generated functions may be out of date; `{self.fix}` refreshes the package "
            "(restart serve to use it)."
        )
        return "\n".join(lines)

    def forget(self, session: Hashable) -> None:
        """A session ended: drop what it was shown."""
        self._seen.pop(session, None)

    async def aclose(self) -> None:
        """Stop looking."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
