"""The audit log: one JSON line per execution, tool call and security event, for operators.

It needs no collector: `serve --audit FILE` (and `exec`/`run --audit FILE`)
appends to FILE. A line holds times, ids, names, durations, outcomes and sizes,
never an argument, a result, an error message or anything else a session wrote:
those can hold personal data (see `records`).

Safe with many sessions and many processes on one file: each line is written
with a single `write()` on a descriptor opened `O_APPEND`, so lines never
interleave. When the file passes `max_bytes` it is rotated (FILE -> FILE.1 ->
... -> FILE.<backups>) under an exclusive `flock` of FILE.lock; a process whose
descriptor still points at a rotated file notices at its next line (its file is
over the size, and FILE is now another inode) and reopens FILE, so at most one
line per process lands in FILE.1 after a rotation, and none is lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_AUDIT_BACKUPS", "DEFAULT_AUDIT_MAX_BYTES", "AuditError", "AuditLog"]

DEFAULT_AUDIT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_AUDIT_BACKUPS = 5
_MODE = 0o600  # who ran what, when: for the operator only


class AuditError(Exception):
    """The audit log cannot be opened or written (the message names the file)."""


class AuditLog:
    """Appends records as JSON lines to `path`, rotated past `max_bytes`.

    Args:
        path: the log file (created with mode 0600 if missing).
        max_bytes: the size past which the file is rotated.
        backups: rotated files kept (FILE.1 is the newest).

    Raises:
        AuditError: the file cannot be opened for appending.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_AUDIT_MAX_BYTES,
        backups: int = DEFAULT_AUDIT_BACKUPS,
    ):
        self.path = Path(path).absolute()
        self.max_bytes = max(1024, max_bytes)
        self.backups = max(1, backups)
        self._lock = threading.Lock()
        self._fd = self._open()

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, _MODE)
        except OSError as exc:
            raise AuditError(f"the audit log {self.path}: {exc.strerror or exc}") from None

    def write(self, record: dict[str, Any]) -> None:
        """Append `record` as one line; rotate first if the file is over its size.

        A failure to write is reported once per failure on stderr, never raised:
        the audit log must not end an execution.
        """
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                if os.fstat(self._fd).st_size >= self.max_bytes:
                    self._rotate()
                os.write(self._fd, line)
            except OSError as exc:
                os.write(2, f"warning: the audit log {self.path}: {exc.strerror}\n".encode())

    def _rotate(self) -> None:
        """Rotate the file, or reopen it if another process already did."""
        lock = os.open(f"{self.path}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, _MODE)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            mine = os.fstat(self._fd)
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == mine.st_ino:
                # Still the live file and over its size (checked under the lock): rotate it.
                for index in range(self.backups - 1, 0, -1):
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(f"{self.path}.{index}", f"{self.path}.{index + 1}")
                os.replace(self.path, f"{self.path}.1")
            fresh = self._open()
            os.close(self._fd)
            self._fd = fresh
        finally:
            os.close(lock)  # closing releases the flock

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def files(self) -> list[Path]:
        """The log and its rotated files that exist, oldest first."""
        rotated = [Path(f"{self.path}.{index}") for index in range(self.backups, 0, -1)]
        return [path for path in [*rotated, self.path] if path.exists()]
