"""Egress for sandboxed code: an allowlist enforced by a proxy on the host.

The sandbox keeps `--network=none`. When the policy allows hosts, each execution
gets a relay on the sandbox's own loopback (`inside/relay.py`, named by
`HTTP(S)_PROXY`) that carries every connection over a Unix socket bound into the
sandbox to `proxy.EgressProxy` on the host, which checks it against `rules`,
resolves names itself, connects, logs and caps the bandwidth.
"""

from __future__ import annotations

from .proxy import SOCKET_NAME, EgressProxy, Resolver
from .rules import Allowlist, Rule, RuleError

__all__ = ["SOCKET_NAME", "Allowlist", "EgressProxy", "Resolver", "Rule", "RuleError"]
