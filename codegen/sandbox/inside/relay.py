"""Inside the sandbox: an HTTP proxy address on loopback that leads to the host's egress proxy.

`HTTP(S)_PROXY` must name a TCP address, and the sandbox has no network but its
own loopback (gVisor's netstack gives one even with `--network=none`). So an
execution whose policy allows hosts starts this relay in its own process: one
thread listens on `127.0.0.1:<free port>` and carries each connection, bytes
unchanged, to the host's proxy over the Unix socket bound into the sandbox,
after one line with the execution's token. Every decision is the host's; the
relay checks nothing, so code that bypasses it gains nothing.

One thread and a selector for every connection (threads count against the
execution's process limit), and it ends with the execution's process.
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from dataclasses import dataclass, field

__all__ = ["PROXY_VARIABLES", "start_relay"]

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
_CHUNK = 1 << 16
_BUFFER = 1 << 18


@dataclass(eq=False)
class _Side:
    sock: socket.socket
    peer: _Side | None = None
    outgoing: bytearray = field(default_factory=bytearray)
    """Bytes read from the peer, waiting to be written to this socket."""
    eof: bool = False
    """This socket will send nothing more."""
    shut: bool = False
    """Its peer's end-of-file has been passed on to this socket."""


class _Relay:
    def __init__(self, listener: socket.socket, path: str, token: str):
        self.listener = listener
        self.path = path
        self.preamble = (token + "\n").encode("ascii")
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)

    def run(self) -> None:
        while True:
            for key, mask in self.selector.select():
                if key.data is None:
                    self._accept()
                else:
                    self._event(key.data, mask)

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            host.connect(self.path)
        except OSError:
            client.close()
            host.close()
            return
        for sock in (client, host):
            sock.setblocking(False)
        inside, outside = _Side(client), _Side(host, outgoing=bytearray(self.preamble))
        inside.peer, outside.peer = outside, inside
        for side in (inside, outside):
            self._update(side)

    def _mask(self, side: _Side) -> int:
        assert side.peer is not None
        mask = 0
        if not side.eof and len(side.peer.outgoing) < _BUFFER:
            mask |= selectors.EVENT_READ
        if side.outgoing:
            mask |= selectors.EVENT_WRITE
        return mask

    def _update(self, side: _Side) -> None:
        """Watch `side` for what it can do now (nothing: not at all, until its peer acts)."""
        mask = self._mask(side)
        registered = side.sock.fileno() in self.selector.get_map()
        if mask and registered:
            self.selector.modify(side.sock, mask, side)
        elif mask:
            self.selector.register(side.sock, mask, side)
        elif registered:
            self.selector.unregister(side.sock)

    def _event(self, side: _Side, mask: int) -> None:
        peer = side.peer
        assert peer is not None
        try:
            if mask & selectors.EVENT_READ:
                data = side.sock.recv(_CHUNK)
                if data:
                    peer.outgoing += data
                else:
                    side.eof = True
            for end in (side, peer):
                if end.outgoing:
                    sent = end.sock.send(end.outgoing)
                    del end.outgoing[:sent]
                if end.peer is not None and end.peer.eof and not end.outgoing and not end.shut:
                    end.shut = True  # the other direction is done: pass its end-of-file on
                    end.sock.shutdown(socket.SHUT_WR)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(side)
            return
        if side.shut and peer.shut:
            self._drop(side)
            return
        self._update(side)
        self._update(peer)

    def _drop(self, side: _Side) -> None:
        for end in (side, side.peer):
            if end is None:
                continue
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(end.sock)
            end.sock.close()


def start_relay(socket_path: str, token: str) -> str:
    """Start the relay for this process; return its `http://127.0.0.1:PORT` proxy URL.

    The standard proxy variables are set to it, so `urllib` and the libraries that
    honour them use it unchanged.

    Raises:
        OSError: the loopback cannot be listened on.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    relay = _Relay(listener, socket_path, token)
    threading.Thread(target=relay.run, name="mcp-codegen-egress-relay", daemon=True).start()
    for name in PROXY_VARIABLES:
        os.environ[name] = url
    for name in ("no_proxy", "NO_PROXY"):
        os.environ.pop(name, None)
    return url
