"""The sandbox policy without a sandbox: the `sandbox` section, the allowlist, the proxy's
decisions, and the command line's errors (each one line naming the field, exit 3)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.runtime.errors import ConfigError
from codegen.sandbox.egress.proxy import EgressProxy, Resolver, decide
from codegen.sandbox.egress.rules import Allowlist, RuleError, parse_rule, special
from codegen.sandbox.policy import (
    DEFAULT_BANDWIDTH_KBPS,
    SandboxPolicy,
    check_packages,
    parse_sandbox_policy,
)
from codegen.sandbox.quotas import Quotas

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "generated" / "mcp_demo"

ISSUE_EXAMPLE = {
    "limits": {
        "timeout_s": 30,
        "memory_mb": 512,
        "cpu": 1,
        "processes": 32,
        "tmp_mb": 256,
        "workspace_mb": 256,
        "state_mb": 100,
        "output_kb": 100,
    },
    "packages": ["numpy", "pandas"],
    "network": {"allow": ["api.github.com:443", "*.internal.example.com"], "bandwidth_kbps": 10240},
}


def test_the_issues_example_sets_every_field() -> None:
    policy = parse_sandbox_policy(ISSUE_EXAMPLE)
    assert (policy.timeout, policy.memory_mb, policy.cpu, policy.processes) == (30.0, 512, 1.0, 32)
    assert (policy.tmp_mb, policy.workspace_mb, policy.state_mb) == (256, 256, 100)
    assert policy.packages == ("numpy", "pandas")
    assert policy.check_code == "block"
    assert policy.network is not None and policy.network.bandwidth_kbps == 10240
    limits = policy.limits()
    assert (limits.timeout, limits.max_processes, limits.max_output_bytes) == (30.0, 32, 100_000)
    quotas = policy.quotas(Quotas(skills=7))
    assert (quotas.tmp_mb, quotas.workspace_mb, quotas.state_mb, quotas.skills) == (
        256,
        256,
        100,
        7,
    )


def test_defaults_are_the_safe_ones() -> None:
    policy = parse_sandbox_policy(None)
    assert policy == SandboxPolicy()
    assert policy.network is None and policy.cpu is None and policy.packages == ()
    assert policy.quotas() == Quotas()
    empty = parse_sandbox_policy({"network": {"allow": []}})
    assert empty.network is None  # an empty list: no network, as without one
    named = parse_sandbox_policy({"network": {"allow": ["example.com"]}})
    assert named.network is not None and named.network.bandwidth_kbps == DEFAULT_BANDWIDTH_KBPS
    assert SandboxPolicy().override(cpu=0.5, timeout=None).cpu == 0.5


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ([], "mcp.json: sandbox: must be an object with limits, packages, network, check_code"),
        ({"limit": {}}, "mcp.json: sandbox.limit: unknown key; did you mean 'limits'?"),
        (
            {"limits": {"cpus": 2}},
            "mcp.json: sandbox.limits.cpus: unknown key; did you mean 'cpu'?",
        ),
        ({"limits": {"cpu": "two"}}, "mcp.json: sandbox.limits.cpu: must be a number"),
        ({"limits": {"cpu": 0}}, "mcp.json: sandbox.limits.cpu: must be a number from 0.01"),
        ({"limits": {"tmp_mb": 1.5}}, "mcp.json: sandbox.limits.tmp_mb: must be a whole number"),
        ({"limits": {"memory_mb": True}}, "mcp.json: sandbox.limits.memory_mb: must be a whole"),
        ({"packages": "numpy"}, "mcp.json: sandbox.packages: must be a list of distribution"),
        ({"packages": ["ok", "no way"]}, "mcp.json: sandbox.packages[1]: 'no way' is not a"),
        ({"check_code": "strict"}, "mcp.json: sandbox.check_code: must be one of block, warn, off"),
        ({"network": {"allow": "x.com"}}, "mcp.json: sandbox.network.allow: must be a list"),
        ({"network": {"allow": ["a.com", "ftp://b.com"]}}, "mcp.json: sandbox.network.allow[1]:"),
        (
            {"network": {"allow": ["a.com:99999"]}},
            "mcp.json: sandbox.network.allow[0]: 'a.com:99999'",
        ),
        ({"network": {"alow": []}}, "mcp.json: sandbox.network.alow: unknown key; did you mean"),
        ({"network": {"bandwidth_kbps": 0}}, "mcp.json: sandbox.network.bandwidth_kbps: must be"),
    ],
)
def test_every_mistake_names_its_field(section: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_sandbox_policy(section)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_package_that_is_not_installed_names_the_install_command() -> None:
    check_packages(("numpy", "pandas", "pydantic"))  # installed by make setup (the sandbox extra)
    with pytest.raises(ConfigError) as caught:
        check_packages(("numpy", "surely-not-installed-dist"), "x.json: sandbox.packages")
    text = str(caught.value)
    assert text.startswith("x.json: sandbox.packages: 'surely-not-installed-dist' is not installed")
    assert f"`{sys.executable} -m pip install surely-not-installed-dist`" in text
    assert "numpy" not in text.split("is not installed")[0]


# --- the allowlist ----------------------------------------------------------------------------


def test_entries_read_as_documented() -> None:
    rule = parse_rule("api.github.com")
    assert (rule.host, rule.ports, rule.plain_http) == ("api.github.com", frozenset({443}), False)
    assert parse_rule("API.GitHub.com.:8443").host == "api.github.com"
    assert parse_rule("api.github.com:8443").ports == frozenset({8443})
    assert parse_rule("x.com:*").ports is None
    plain = parse_rule("http://example.com")
    assert (plain.plain_http, plain.ports) == (True, frozenset({80}))
    assert parse_rule("https://example.com/").ports == frozenset({443})
    network = parse_rule("10.0.0.0/8:5432")
    assert network.network == ipaddress.ip_network("10.0.0.0/8") and network.host is None
    assert parse_rule("[fd00::1]:443").network == ipaddress.ip_network("fd00::1/128")
    assert parse_rule("fd00::/8").network == ipaddress.ip_network("fd00::/8")
    for bad in ("", "a b", "*.", "exa*mple.com", "ftp://x.com", "x.com:http", "[::1", "-x.com"):
        with pytest.raises(RuleError):
            parse_rule(bad)


def test_patterns_match_subdomains_only() -> None:
    allow = Allowlist.of(["*.internal.example.com", "api.github.com:443"])
    assert allow.name_rule("a.internal.example.com", 443, False) is not None
    assert allow.name_rule("a.b.internal.example.com", 443, False) is not None
    assert allow.name_rule("internal.example.com", 443, False) is None
    assert allow.name_rule("evilinternal.example.com", 443, False) is None
    assert allow.name_rule("api.github.com", 80, False) is None
    assert allow.name_rule("api.github.com", 443, True) is None  # plain HTTP: not listed


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "private"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("0.0.0.0", "reserved"),
        ("224.0.0.1", "reserved"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_special_addresses(address: str, kind: str | None) -> None:
    assert special(ipaddress.ip_address(address)) == kind


def test_the_proxy_decides_after_resolving(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.0.1 api.test  # a local test server\n"
        "10.0.0.5 private.test\n"
        "10.0.0.6 rebound.test\n8.8.4.4 rebound.test\n"
        "10.9.9.9 listed-private.test\n",
        encoding="utf-8",
    )
    resolver = Resolver(hosts)
    allow = Allowlist.of(
        [
            "api.test:8443",
            "127.0.0.1:8443",
            "private.test:443",
            "rebound.test",
            "listed-private.test",
            "10.9.9.9",
            "http://plain.test:8080",
        ]
    )

    def run(host: str, port: int, plain: bool = False) -> tuple[str | None, str | None]:
        decision = asyncio.run(decide(allow, resolver, host, port, plain))
        return (str(decision.address) if decision.address else None), decision.reason

    assert run("api.test", 8443) == ("127.0.0.1", None)  # loopback, listed explicitly
    assert run("API.test.", 8443) == ("127.0.0.1", None)
    address, reason = run("private.test", 443)
    assert address is None and reason == (
        "private.test resolves to 10.0.0.5 (private), an address sandbox.network.allow does not list"
    )
    assert run("rebound.test", 443) == ("8.8.4.4", None)  # only the public address is used
    assert run("listed-private.test", 443) == ("10.9.9.9", None)
    assert run("other.test", 443) == (
        None,
        "other.test:443 (HTTPS) is not in sandbox.network.allow",
    )
    assert run("api.test", 9999)[1] == "api.test:9999 (HTTPS) is not in sandbox.network.allow"
    assert run("127.0.0.1", 8443) == ("127.0.0.1", None)  # the address is listed
    assert run("127.0.0.2", 8443)[1] == (
        "127.0.0.2:8443 is an address that sandbox.network.allow does not list"
    )
    assert (
        run("8.8.8.8", 443)[1]
        == "8.8.8.8:443 is an address that sandbox.network.allow does not list"
    )
    assert run("api.test", 8443, plain=True)[1] == (
        "plain HTTP to api.test:8443 is not allowed (https only)"
    )
    assert run("plain.test", 8080)[1] == "HTTPS to plain.test:8080 is not allowed (http:// only)"
    assert run("bad_host name", 443)[1] == "'bad_host name' is not a host name"


# --- the command line -------------------------------------------------------------------------


def _exec(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen", "exec", "-c", "1", "--config", str(config),
         "--package", str(GOLDEN), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("sandbox", "args", "message"),
    [
        (
            {"limits": {"cpu": "two"}},
            (),
            "sandbox.limits.cpu: must be a number (CPUs of the sandbox, e.g. 0.5 or 2), not 'two'",
        ),
        (
            {"packages": ["surely-not-installed-dist"]},
            (),
            "sandbox.packages: 'surely-not-installed-dist' is not installed",
        ),
        ({}, ("--with", "surely-not-installed-dist"), "sandbox.packages (with --with): 'surely"),
        ({}, ("--allow", "a b"), "--allow: 'a b': not a host name"),
    ],
)
def test_exec_refuses_a_bad_policy_before_any_sandbox(
    tmp_path: Path, sandbox: dict[str, object], args: tuple[str, ...], message: str
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {}, "sandbox": sandbox}), encoding="utf-8")
    done = _exec(config, *args)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in done.stderr


def test_the_proxy_answers_only_its_executions_and_bounds_what_it_reads(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes, bytes, list[str]]:
        proxy = EgressProxy(tmp_path / "proxy", Allowlist.of(["api.test:443"]))
        await proxy.start()
        log = proxy.open("token-1")

        async def exchange(data: bytes) -> bytes:
            reader, writer = await asyncio.open_unix_connection(str(proxy.path))
            writer.write(data)
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer

        unknown = await exchange(b"token-2\nCONNECT api.test:443 HTTP/1.1\r\n\r\n")
        flood = await exchange(b"token-1\nCONNECT x" + b"x" * 40_000 + b":443 HTTP/1.1\r\n\r\n")
        refused = await exchange(b"token-1\nCONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n")
        proxy.close_now("token-1")
        after = await exchange(b"token-1\nCONNECT api.test:443 HTTP/1.1\r\n\r\n")
        await proxy.aclose()
        return unknown, flood, refused + after, [str(entry.reason) for entry in log.entries]

    unknown, flood, answers, reasons = asyncio.run(scenario())
    assert unknown == b"" and flood == b""  # no answer to a stranger, nor to 40 kB of head
    assert answers.startswith(
        b"HTTP/1.1 403 Refused by the sandbox: 10.0.0.1:443 is an address that "
        b"sandbox.network.allow does not list\r\n"
    )
    assert answers.endswith(b"does not list\n")  # then the closed token got nothing
    assert reasons == ["10.0.0.1:443 is an address that sandbox.network.allow does not list"]
