"""The egress allowlist: which host names, addresses and ports sandboxed code may reach.

An entry of `sandbox.network.allow` is one string:

- `api.github.com` or `api.github.com:443`: HTTPS (a CONNECT tunnel) to that host on
  port 443 (the default port), or on the port given; `:*` allows every port;
- `*.internal.example.com`: any name under that domain (not the domain itself);
  `*` alone is any name;
- `http://example.com[:port]`: plain HTTP to that host (port 80 by default): the
  proxy forwards HTTP requests, which are refused for entries without `http://`;
- an address or a network, `10.0.0.5:5432`, `10.0.0.0/8`, `[fd00::1]:443`: tunnels
  to it by address, and the one way to reach a loopback, private, link-local or
  metadata address, whether asked for directly or reached through a name.

Names are matched as given to the proxy (before resolution); every address they
resolve to is then checked (`special`), so a listed name that resolves to a
private address is refused unless that address is listed too.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Allowlist",
    "Rule",
    "RuleError",
    "host_address",
    "normal_name",
    "parse_rule",
    "special",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_PORT = re.compile(r"^(?:\*|[0-9]{1,5})$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT; Alibaba's metadata is here
_METADATA = frozenset(
    ipaddress.ip_address(text) for text in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class RuleError(ValueError):
    """An allowlist entry cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Rule:
    """One entry of the allowlist."""

    text: str
    """As written in the config."""
    host: str | None = None
    """A lower-case name, `*.domain`, or `*`; None for an address rule."""
    network: Network | None = None
    """The addresses of an address rule."""
    ports: frozenset[int] | None = frozenset({443})
    """Ports allowed; None for every port."""
    plain_http: bool = False
    """Plain HTTP requests (`http://` entries) rather than CONNECT tunnels."""

    def allows_port(self, port: int, plain_http: bool) -> bool:
        """Whether this rule's kind and ports cover a connection to `port`."""
        return self.plain_http == plain_http and (self.ports is None or port in self.ports)

    def matches_name(self, name: str) -> bool:
        """Whether the (lower-case, dot-less) `name` is one this rule names."""
        if self.host is None:
            return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return name.endswith(self.host[1:]) and len(name) > len(self.host) - 1
        return name == self.host


def host_address(host: str) -> Address | None:
    """`host` as an IP address (`[::1]` too), or None for a name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def normal_name(host: str) -> str | None:
    """`host` lower-cased without a trailing dot, or None when it is not a valid DNS name."""
    name = host.rstrip(".").lower()
    if not name or len(name) > 253:
        return None
    if not all(_LABEL.match(label) for label in name.split(".")):
        return None
    return name


def special(address: Address) -> str | None:
    """Why `address` is not a public one (`loopback`, `private`...), or None when it is.

    IPv4 addresses inside IPv6 (mapped, 6to4, Teredo) are judged as IPv4.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if address.teredo is not None:
            inner = address.teredo[1]
        if inner is not None:
            return special(inner)
    if address in _METADATA:
        return "metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "reserved"
    if address.is_private or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED):
        return "private"
    return None


def parse_rule(text: str) -> Rule:
    """One allowlist entry (see the module's docstring).

    Raises:
        RuleError: it is not a host name, pattern, address or network with an optional port.
    """
    if not isinstance(text, str) or not text.strip():
        raise RuleError("must be a non-empty string such as 'api.github.com:443'")
    rest = text.strip()
    plain_http = False
    scheme, sep, after = rest.partition("://")
    if sep:
        if scheme.lower() not in ("http", "https"):
            raise RuleError(f"{text!r}: only http:// (plain HTTP) or https:// may lead an entry")
        plain_http = scheme.lower() == "http"
        rest = after.rstrip("/")
    host, port_text = _split_port(rest, text)
    default = 80 if plain_http else 443
    ports: frozenset[int] | None
    if port_text is None:
        ports = frozenset({default})
    elif port_text == "*":
        ports = None
    else:
        port = int(port_text)
        if not 0 < port < 65536:
            raise RuleError(f"{text!r}: the port must be 1-65535 or *")
        ports = frozenset({port})
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        network = ipaddress.ip_network(bare, strict=False)
    except ValueError:
        network = None
    if network is not None:
        return Rule(text=text, network=network, ports=ports, plain_http=plain_http)
    pattern = host.lower().rstrip(".")
    name = pattern[2:] if pattern.startswith("*.") else pattern
    if (pattern != "*" or host != "*") and normal_name(name) is None:
        raise RuleError(
            f"{text!r}: not a host name ('api.example.com'), a pattern ('*.example.com'), "
            "an address or a network ('10.0.0.0/8')"
        )
    return Rule(text=text, host=pattern, ports=ports, plain_http=plain_http)


def _split_port(rest: str, text: str) -> tuple[str, str | None]:
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise RuleError(f"{text!r}: an IPv6 address needs its closing ']'")
        host, tail = rest[: end + 1], rest[end + 1 :]
        if not tail:
            return host, None
        if not tail.startswith(":") or not _PORT.match(tail[1:]):
            raise RuleError(f"{text!r}: expected ':PORT' after the address")
        return host, tail[1:]
    if rest.count(":") > 1:  # a bare IPv6 address (or network) has no port
        return rest, None
    host, sep, port = rest.partition(":")
    if sep and not _PORT.match(port):
        raise RuleError(f"{text!r}: the port must be a number or *")
    return host, port if sep else None


@dataclass(frozen=True)
class Allowlist:
    """The parsed `sandbox.network.allow`."""

    rules: tuple[Rule, ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowlist:
        """Parse every entry.

        Raises:
            RuleError: one cannot be read.
        """
        return cls(tuple(parse_rule(entry) for entry in entries))

    def name_rule(self, name: str, port: int, plain_http: bool) -> Rule | None:
        """The first name rule that allows `name:port` of this kind."""
        for rule in self.rules:
            if rule.matches_name(name) and rule.allows_port(port, plain_http):
                return rule
        return None

    def address_rule(self, address: Address, port: int, plain_http: bool) -> Rule | None:
        """The first address rule that lists `address` (and allows the port and kind)."""
        for rule in self.rules:
            if (
                rule.network is not None
                and rule.network.version == address.version
                and address in rule.network
                and rule.allows_port(port, plain_http)
            ):
                return rule
        return None
