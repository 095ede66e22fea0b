"""The host side of a tool call from the sandbox, in the order a call meets it.

- `server`: the Unix socket the sandbox's code connects to; one token per execution;
- `host`: each request line checked (size, shape, server, tool, arguments) and
  forwarded to a real server, or to a handler of a reserved server;
- `privacy`: PII in results tokenized before the code sees it, and put back in
  the arguments of later calls;
- `skills`: the handler of `$skills` (`save_skill`), and the store of skills.

The other end, inside the sandbox, is the generated package's `_runtime/bridge.py`.
"""

from __future__ import annotations

__all__: list[str] = []
