"""How a long build shows where it is: a bar per stage on a terminal, plain lines elsewhere."""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

import click

__all__ = ["LineProgress", "Progress", "QuietProgress", "TerminalProgress", "progress_for"]


class Progress(Protocol):
    """Receives the stages of a build and, where a stage has a size, its steps."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A stage begins; `total` steps follow when it is known."""

    def advance(self, steps: int = 1) -> None:
        """`steps` more steps of the current stage are done."""

    def servers(self, done: int, running: int, queued: int, failed: int) -> None:
        """Introspection: how many servers are done (`failed` of them failed), running, queued."""

    def finish(self) -> None:
        """The build is over."""


class QuietProgress:
    """Shows nothing (for --json, and for the Python API)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Ignore."""

    def advance(self, steps: int = 1) -> None:
        """Ignore."""

    def servers(self, done: int, running: int, queued: int, failed: int) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""


class LineProgress:
    """One line per stage, with its duration: for CI logs, where bars become noise."""

    SERVERS_EVERY = 2.0
    """Seconds between two lines of server counts (the last one is always printed)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._name: str | None = None
        self._started = 0.0
        self._servers_shown = 0.0

    def _close(self) -> None:
        if self._name is not None:
            print(
                f"[mcp-codegen] {self._name}: done in {time.perf_counter() - self._started:.1f}s",
                file=self.stream,
                flush=True,
            )
        self._name = None

    def stage(self, name: str, total: int | None = None) -> None:
        """Print the stage's start (and its size)."""
        self._close()
        self._name, self._started = name, time.perf_counter()
        size = f" ({total})" if total is not None else ""
        print(f"[mcp-codegen] {name}{size}", file=self.stream, flush=True)

    def advance(self, steps: int = 1) -> None:
        """Steps are not printed, only stages."""

    def servers(self, done: int, running: int, queued: int, failed: int) -> None:
        """A line of counts every `SERVERS_EVERY` seconds, and when the last server is done."""
        now = time.perf_counter()
        if (running or queued) and now - self._servers_shown < self.SERVERS_EVERY:
            return
        self._servers_shown = now
        print(
            f"[mcp-codegen] servers: {_counts(done, running, queued, failed)}",
            file=self.stream,
            flush=True,
        )

    def finish(self) -> None:
        """Print the last stage's duration."""
        self._close()


class TerminalProgress:
    """A bar for each stage that has a size, a line for each that has none."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._servers_done = 0

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.render_finish()
            self._bar = None

    def stage(self, name: str, total: int | None = None) -> None:
        """Start a bar (or print a line) for the stage."""
        self._close()
        if total:
            self._bar = click.progressbar(length=total, label=name, file=sys.stderr, show_pos=True)
            self._bar.render_progress()
        else:
            click.secho(f"· {name}", err=True, dim=True)

    def advance(self, steps: int = 1) -> None:
        """Move the bar."""
        if self._bar is not None:
            self._bar.update(steps)

    def servers(self, done: int, running: int, queued: int, failed: int) -> None:
        """A bar of servers done, labelled with the running, queued and failed counts."""
        if self._bar is None:
            self._bar = click.progressbar(
                length=done + running + queued, label="servers", file=sys.stderr, show_pos=True
            )
            self._servers_done = 0
        self._bar.label = f"servers ({_counts(None, running, queued, failed)})"
        self._bar.update(done - self._servers_done)
        self._servers_done = done

    def finish(self) -> None:
        """Close the last bar."""
        self._close()


def _counts(done: int | None, running: int, queued: int, failed: int) -> str:
    parts = [] if done is None else [f"{done} done" + (f" ({failed} failed)" if failed else "")]
    parts += [f"{running} running", f"{queued} queued"]
    if done is None and failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


def progress_for(quiet: bool) -> Progress:
    """Quiet for machine output, bars on a terminal, lines in CI."""
    if quiet:
        return QuietProgress()
    return TerminalProgress() if sys.stderr.isatty() else LineProgress()
