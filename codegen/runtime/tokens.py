"""Where OAuth logins are kept: one file per server URL in the user's config directory.

`$XDG_CONFIG_HOME/mcp-codegen/oauth/` (default `~/.config/mcp-codegen/oauth/`):
the directories are mode 0700 and each file 0600, written atomically, so no
other user can read a token and a crash never leaves half a file. Nothing here
is ever written beside a project (snapshot, package, cache), and nothing of a
record is printed: `describe()` gives what `login --list` shows (server URL,
expiry, whether a refresh token is held), never a token.

A record is the JSON object the OAuth client needs to resume without a person:
the tokens with their absolute expiry, the registered client, and the metadata
of the authorization server it was issued by (refreshing needs its token
endpoint). Standard library only: a generated package reads these files too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LoginInfo", "TokenStore", "default_store_dir", "describe"]

_SUBDIR = "oauth"


def default_store_dir() -> Path:
    """`$XDG_CONFIG_HOME/mcp-codegen/oauth`, else `~/.config/mcp-codegen/oauth`."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "mcp-codegen" / _SUBDIR


@dataclass(frozen=True)
class LoginInfo:
    """What may be shown about a stored login: no secret."""

    server_url: str
    expires_at: float | None
    refreshable: bool
    scope: str | None

    def state(self, now: float | None = None) -> str:
        """`valid until ...`, `expired (refreshable)`, `expired` or `no expiry`."""
        now = time.time() if now is None else now
        if self.expires_at is None:
            return "valid (no expiry given)"
        if self.expires_at > now:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.expires_at))
            return f"valid until {when}" + (", refreshable" if self.refreshable else "")
        return "expired, will refresh" if self.refreshable else "expired: log in again"


class TokenStore:
    """The stored logins, one JSON file per server URL."""

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self.directory = Path(directory) if directory is not None else default_store_dir()

    def path_for(self, server_url: str) -> Path:
        """The file of `server_url` (a hash of the URL: the name says nothing about it)."""
        digest = hashlib.sha256(server_url.encode("utf-8")).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    def load(self, server_url: str) -> dict[str, Any]:
        """The record of `server_url`, or an empty one. An unreadable file counts as none."""
        path = self.path_for(server_url)
        try:
            if path.is_symlink():
                return {}
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(record, dict) or record.get("server_url") != server_url:
            return {}
        return record

    def save(self, server_url: str, record: dict[str, Any]) -> None:
        """Replace the record of `server_url` atomically (a 0600 file in a 0700 directory).

        Raises:
            OSError: the directory cannot be made or written.
        """
        self._make_directory()
        data = json.dumps({**record, "server_url": server_url}, indent=2, sort_keys=True)
        path = self.path_for(server_url)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        # O_EXCL: never write through a file (or link) someone else put there.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    def update(self, server_url: str, **fields: Any) -> None:
        """Set some fields of `server_url`'s record, keeping the others.

        Raises:
            OSError: the record cannot be written.
        """
        self.save(server_url, {**self.load(server_url), **fields})

    def delete(self, server_url: str, *, keep_client: bool = False) -> bool:
        """Forget the tokens of `server_url` (and its client, unless `keep_client`).

        Returns whether there was anything to forget.

        Raises:
            OSError: the file cannot be removed.
        """
        record = self.load(server_url)
        if not record:
            return False
        had_tokens = bool(record.get("tokens"))
        if keep_client and record.get("client"):
            kept: dict[str, Any] = {
                key: record[key] for key in ("client", "authorization_server") if key in record
            }
            self.save(server_url, kept)
        else:
            self.path_for(server_url).unlink(missing_ok=True)
        return had_tokens or not keep_client

    def logins(self) -> list[LoginInfo]:
        """Every stored login that holds tokens, sorted by server URL."""
        found: list[LoginInfo] = []
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and isinstance(record.get("server_url"), str):
                info = describe(record)
                if info is not None:
                    found.append(info)
        return sorted(found, key=lambda info: info.server_url)

    def _make_directory(self) -> None:
        # Our two directories (mcp-codegen/ and oauth/) are 0700 even if they existed looser.
        for directory in (self.directory.parent, self.directory):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(directory.stat().st_mode) != 0o700:
                directory.chmod(0o700)


def describe(record: dict[str, Any]) -> LoginInfo | None:
    """What `login --list` shows of a record; None when it holds no tokens."""
    tokens = record.get("tokens")
    if not isinstance(tokens, dict) or not tokens.get("access_token"):
        return None
    expires_at = record.get("expires_at")
    return LoginInfo(
        server_url=str(record.get("server_url")),
        expires_at=float(expires_at) if isinstance(expires_at, int | float) else None,
        refreshable=bool(tokens.get("refresh_token")),
        scope=tokens.get("scope") if isinstance(tokens.get("scope"), str) else None,
    )
