"""The host's egress proxy: the only way out of a sandbox, and only where the allowlist says.

It listens on a Unix socket in the directory bound into the sandbox (beside the
bridge's). A connection starts with the execution's token on one line (the
relay inside sends it), then speaks the HTTP proxy protocol:

- `CONNECT host:port`: a tunnel, for HTTPS (its bytes are not inspected);
- `GET http://host/path` (any method, absolute URL): plain HTTP, forwarded as one
  request (`Connection: close`), only to hosts listed with `http://`.

The host name is matched against the allowlist as the code gave it, then
resolved here (a hosts file first when one is given, then the system resolver),
and every address is checked: loopback, private, link-local, metadata and
reserved addresses are refused unless the allowlist lists them, so a name that
resolves (or rebinds) to one gets nowhere. The connection goes to the address
that was checked; nothing is resolved twice. A refusal answers `403` with the
reason in its status line, which `urllib` shows the code.

Every connection is logged for its execution (host, port, address, bytes, allowed
or refused, why), a token bucket caps the bytes per second of all of a session's
connections, and when an execution ends its token is refused and its tunnels cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ...telemetry import current_execution, security_event_of
from ..result import NetworkConnection
from .rules import Address, Allowlist, host_address, normal_name, special

if TYPE_CHECKING:
    from ...telemetry.hooks import ExecutionTrace

__all__ = [
    "HOSTS_FILE_ENV",
    "MAX_CONNECTIONS",
    "MAX_LOGGED",
    "SOCKET_NAME",
    "ConnectionLog",
    "Decision",
    "EgressProxy",
    "Resolver",
    "TokenBucket",
    "decide",
]

SOCKET_NAME = "egress.sock"
HOSTS_FILE_ENV = "MCP_CODEGEN_HOSTS_FILE"
"""A hosts file the commands' egress proxies resolve names from first (for tests)."""
MAX_CONNECTIONS = 32
"""Connections of one execution open at once; more are refused."""
MAX_LOGGED = 256
"""Connections of one execution listed in its result; more are only counted."""
_HEAD_LIMIT = 16 * 1024
_HANDSHAKE_SECONDS = 10.0
_CONNECT_SECONDS = 10.0
_RESOLVE_SECONDS = 5.0
_CHUNK = 1 << 16
_HOP_HEADERS = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"proxy-authorization", b"te", b"upgrade"}
)
_PHRASE = re.compile(r"[^ -~]")


class Resolver:
    """Host names to addresses: a hosts file first (when given), then the system's resolver."""

    def __init__(self, hosts_file: str | os.PathLike[str] | None = None):
        self.hosts: dict[str, list[Address]] = {}
        if hosts_file is not None:
            self.hosts = _read_hosts(Path(hosts_file))

    async def resolve(self, name: str, port: int) -> list[Address]:
        """The addresses of `name`, in the resolver's order, without repeats.

        Raises:
            OSError: it cannot be resolved (or not in time).
        """
        if name in self.hosts:
            return list(self.hosts[name])
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, port, type=socket.SOCK_STREAM), _RESOLVE_SECONDS
            )
        except TimeoutError:
            raise OSError(f"resolving {name} took more than {_RESOLVE_SECONDS:g} s") from None
        found: list[Address] = []
        for info in infos:
            address = host_address(str(info[4][0]))
            if address is not None and address not in found:
                found.append(address)
        return found


def _read_hosts(path: Path) -> dict[str, list[Address]]:
    """An /etc/hosts-style file: `ADDRESS NAME...` per line, `#` comments."""
    hosts: dict[str, list[Address]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        address = host_address(fields[0]) if fields else None
        if address is None:
            continue
        for name in fields[1:]:
            normal = normal_name(name)
            if normal is not None:
                hosts.setdefault(normal, []).append(address)
    return hosts


class TokenBucket:
    """Bytes per second for everything that passes it; a burst of a twentieth of a second."""

    def __init__(self, bytes_per_second: float):
        self.rate = bytes_per_second
        self.burst = max(16 * 1024.0, bytes_per_second / 20)
        self.tokens = self.burst
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, size: int) -> None:
        """Wait until `size` bytes may pass (first come, first served)."""
        async with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= size
            if self.tokens < 0:
                await asyncio.sleep(-self.tokens / self.rate)


@dataclass
class ConnectionLog:
    """The connections of one execution."""

    entries: list[NetworkConnection] = field(default_factory=list)
    dropped: int = 0
    closed: bool = False
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """The handlers of its connections (each logs its connection when it ends)."""
    active: int = 0
    trace: ExecutionTrace | None = field(default_factory=current_execution)
    """telemetry: the execution's trace, taken when the log is opened in `execute` (the
    connections are handled in tasks of the proxy's server, not of the execution)."""

    def add(self, entry: NetworkConnection) -> None:
        """Log `entry`, or count it once the log is full."""
        if len(self.entries) < MAX_LOGGED:
            self.entries.append(entry)
        else:
            self.dropped += 1


@dataclass(frozen=True)
class Decision:
    """Where a connection may go, or why not."""

    address: Address | None
    reason: str | None = None
    """Why not, for the code and the result (it names the host)."""
    code: str | None = None
    """Why not, as one of a few words, for telemetry (it names nothing the code sent)."""


async def decide(
    allow: Allowlist, resolver: Resolver, host: str, port: int, plain_http: bool
) -> Decision:
    """Check `host:port` against `allow`, resolve it, and check every address it has."""
    kind = "plain HTTP" if plain_http else "HTTPS"
    literal = host_address(host)
    if literal is not None:
        if allow.address_rule(literal, port, plain_http) is None:
            return Decision(
                None,
                f"{host}:{port} is an address that sandbox.network.allow does not list",
                "address_not_listed",
            )
        return Decision(literal)
    name = normal_name(host)
    if name is None:
        return Decision(None, f"{host[:80]!r} is not a host name", "not_a_host_name")
    if allow.name_rule(name, port, plain_http) is None:
        if allow.name_rule(name, port, not plain_http) is not None:
            listed = "https" if plain_http else "http://"
            return Decision(
                None, f"{kind} to {name}:{port} is not allowed ({listed} only)", "scheme_not_listed"
            )
        return Decision(
            None, f"{name}:{port} ({kind}) is not in sandbox.network.allow", "host_not_listed"
        )
    try:
        addresses = await resolver.resolve(name, port)
    except OSError as exc:
        return Decision(None, f"{name} cannot be resolved: {exc}", "unresolvable")
    if not addresses:
        return Decision(None, f"{name} has no address", "no_address")
    for address in addresses:
        why = special(address)
        if why is None or allow.address_rule(address, port, plain_http) is not None:
            return Decision(address)
    first = addresses[0]
    return Decision(
        None,
        f"{name} resolves to {first} ({special(first)}), an address sandbox.network.allow "
        "does not list",
        "special_address",
    )


class EgressProxy:
    """Accepts the relays' connections and lets through those the allowlist permits."""

    def __init__(
        self,
        directory: Path,
        allow: Allowlist,
        *,
        bandwidth_kbps: int | None = None,
        resolver: Resolver | None = None,
    ):
        self.directory = directory
        self.path = directory / SOCKET_NAME
        self.allow = allow
        self.resolver = resolver or Resolver()
        self.bucket = TokenBucket(bandwidth_kbps * 1000 / 8) if bandwidth_kbps else None
        self._logs: dict[str, ConnectionLog] = {}
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on `directory/egress.sock` (reachable by the sandbox's unprivileged user)."""
        self.directory.mkdir(mode=0o755, exist_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=_HEAD_LIMIT
        )
        os.chmod(self.path, 0o777)

    def open(self, token: str) -> ConnectionLog:
        """Accept connections that present `token`, logging them in the returned log."""
        log = self._logs[token] = ConnectionLog()
        return log

    def close_now(self, token: str) -> None:
        """Refuse `token` from now on and cut its connections (safe in a task being cancelled)."""
        log = self._logs.pop(token, None)
        if log is None:
            return
        log.closed = True
        for writer in list(log.writers):
            writer.transport.abort()

    async def close(self, token: str, log: ConnectionLog) -> None:
        """`close_now`, then wait (a second at most) until its connections are logged."""
        self.close_now(token)
        if log.tasks:
            await asyncio.wait(list(log.tasks), timeout=1.0)

    async def aclose(self) -> None:
        """Stop listening and cut every connection."""
        for token in list(self._logs):
            self.close_now(token)
        if self._server is not None:
            self._server.close()
        # Cut connections end their handlers by themselves; cancelling a handler instead
        # makes Python 3.11's stream callback log the cancellation as an error.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        log: ConnectionLog | None = None
        try:
            line = await asyncio.wait_for(reader.readline(), _HANDSHAKE_SECONDS)
            log = self._logs.get(line.strip().decode("ascii", "replace"))
            if log is None or log.closed:
                return
            log.writers.add(writer)
            if task is not None:
                log.tasks.add(task)
            log.active += 1
            await self._handle(reader, writer, log)
            await _close(writer)
        except (
            OSError,
            TimeoutError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # a relay that went away or spoke nonsense (or too much): nothing to answer
        finally:
            if log is not None:
                log.writers.discard(writer)
                log.active -= 1
                if task is not None:
                    log.tasks.discard(task)
            writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: ConnectionLog
    ) -> None:
        started = time.monotonic()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HANDSHAKE_SECONDS)
        request = _Request.parse(head)
        if request is None:
            await _answer(writer, 400, "Bad Request: not an HTTP proxy request")
            return
        entry = NetworkConnection(
            host=request.host[:255],
            port=request.port,
            kind="http" if request.plain_http else "https",
            allowed=False,
        )
        if log.active > MAX_CONNECTIONS:
            reason = f"more than {MAX_CONNECTIONS} connections of one execution at once"
            log.add(entry.model_copy(update={"reason": reason}))
            _refused(log, "too_many_connections", entry)  # telemetry
            await _answer(writer, 429, reason)
            return
        decision = await decide(
            self.allow, self.resolver, request.host, request.port, request.plain_http
        )
        if decision.address is None:
            log.add(entry.model_copy(update={"reason": decision.reason}))
            _refused(log, decision.code, entry)  # telemetry
            await _answer(writer, 403, f"Refused by the sandbox: {decision.reason}")
            return
        address = str(decision.address)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(address, request.port), _CONNECT_SECONDS
            )
        except (OSError, TimeoutError) as exc:
            reason = f"cannot connect to {address}:{request.port}: {exc or type(exc).__name__}"
            log.add(entry.model_copy(update={"address": address, "reason": reason}))
            await _answer(writer, 502, reason)
            return
        counts = [0, 0]
        log.writers.add(upstream_writer)  # cut with the execution, like the sandbox's side
        try:
            if request.plain_http:
                upstream_writer.write(request.forwarded())
                counts[0] += len(request.forwarded())
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(
                self._pipe(reader, upstream_writer, counts, 0),
                self._pipe(upstream_reader, writer, counts, 1),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            log.writers.discard(upstream_writer)
            await _close(upstream_writer)
            log.add(
                entry.model_copy(
                    update={
                        "allowed": True,
                        "address": address,
                        "bytes_sent": counts[0],
                        "bytes_received": counts[1],
                        "duration_ms": round((time.monotonic() - started) * 1000, 3),
                    }
                )
            )

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        counts: list[int],
        slot: int,
    ) -> None:
        try:
            while chunk := await source.read(_CHUNK):
                if self.bucket is not None:
                    await self.bucket.take(len(chunk))
                sink.write(chunk)
                counts[slot] += len(chunk)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        with contextlib.suppress(OSError, RuntimeError):
            if sink.can_write_eof():
                sink.write_eof()


@dataclass(frozen=True)
class _Request:
    method: bytes
    host: str
    port: int
    plain_http: bool
    target: bytes = b""
    headers: tuple[bytes, ...] = ()

    @classmethod
    def parse(cls, head: bytes) -> _Request | None:
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return None
        method, target, _version = parts
        try:
            text = target.decode("ascii")
        except UnicodeDecodeError:
            return None
        if method == b"CONNECT":
            host, port = _authority(text)
            if host is None or port is None:
                return None
            return cls(method, host, port, plain_http=False)
        url = urlsplit(text)
        if url.scheme.lower() != "http" or not url.hostname:
            return None
        try:
            port = url.port or 80
        except ValueError:
            return None
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        return cls(
            method,
            url.hostname,
            port,
            plain_http=True,
            target=path.encode("ascii"),
            headers=tuple(lines[1:]),
        )

    def forwarded(self) -> bytes:
        """The request head as the origin server gets it: origin-form, one request only."""
        kept = [
            line
            for line in self.headers
            if line.split(b":", 1)[0].strip().lower() not in _HOP_HEADERS
        ]
        lines = [self.method + b" " + self.target + b" HTTP/1.1", *kept, b"Connection: close"]
        return b"\r\n".join(lines) + b"\r\n\r\n"


def _authority(text: str) -> tuple[str | None, int | None]:
    """`host:port` (`[v6]:port` too) of a CONNECT request."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        return None, None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _refused(log: ConnectionLog, code: str | None, entry: NetworkConnection) -> None:
    """A security event of the connection's execution: why, the kind and the port (never the
    host: a value the code chose, which could carry anything)."""
    security_event_of(
        log.trace, "egress_refused", reason=code or "refused", scheme=entry.kind, port=entry.port
    )


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close after what is buffered has been sent (or cut it after a few seconds)."""
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 5.0)
    writer.transport.abort()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    phrase = _PHRASE.sub("?", reason)[:300]
    body = (phrase + "\n").encode("ascii")
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii")
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()
