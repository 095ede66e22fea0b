"""Approvals: which tool calls need a person's yes, and how the answer is reached.

The `approval` section of `mcp.json` sets a rule per server or tool:

    "approval": {
      "default": "destructive",
      "servers": {
        "filesystem": "destructive",
        "mail": {"default": "never", "tools": {"send_email": "always"}}
      },
      "unattended": "deny",
      "timeout": 120
    }

- `always`: every call needs a yes; `never`: none does; `destructive`: calls of tools
  whose annotations say `destructiveHint: true` and not `readOnlyHint: true` (as the
  snapshot recorded them) do. `"approval": "destructive"` alone sets the default.
  Without the section nothing needs approval.
- `unattended`: what happens when nobody can be asked (a `serve` client without
  elicitation, `exec`/`run` without a terminal and without `--approve-all`):
  `deny` (the default: a clear refusal, never a silent yes) or `allow`.
- `timeout`: seconds a person has to answer (default 120); no answer is a no.

The host asks through the execution's `Asker` (serve: MCP elicitation; exec/run:
the terminal), one question at a time per execution, and records each decision
in the call log. A denied call never reaches its server; the code gets
`ApprovalDenied`, which it may catch.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ...runtime.errors import ConfigError
from ...snapshot import ToolSnapshot
from ..result import Approval

__all__ = [
    "Answer",
    "ApprovalPolicy",
    "ApprovalRequest",
    "Asker",
    "approval_policy",
    "decide",
    "denial_message",
    "parse_approval",
    "shown_arguments",
]

Rule = Literal["always", "never", "destructive"]
_RULES: tuple[Rule, ...] = ("always", "never", "destructive")
DEFAULT_TIMEOUT = 120.0
_MAX_SHOWN = 2000


@dataclass(frozen=True)
class ApprovalPolicy:
    """The `approval` section, checked: a rule per server and tool, and what to do unattended."""

    default: Rule = "never"
    servers: Mapping[str, Rule | Mapping[str, Any]] = field(default_factory=dict)
    unattended: Literal["deny", "allow"] = "deny"
    timeout: float = DEFAULT_TIMEOUT

    def rule(self, server: str, tool: str) -> Rule:
        """The rule for `tool` of `server`: the tool's, else the server's, else the default."""
        setting = self.servers.get(server)
        if isinstance(setting, str):
            return setting
        if isinstance(setting, Mapping):
            tools = setting.get("tools") or {}
            found: Rule = tools.get(tool) or setting.get("default") or self.default
            return found
        return self.default

    def needs(self, server: str, tool: ToolSnapshot) -> bool:
        """Whether a call of `tool` needs a person's yes."""
        rule = self.rule(server, tool.name)
        if rule == "always":
            return True
        if rule == "never":
            return False
        hints = tool.annotations or {}
        return hints.get("destructiveHint") is True and hints.get("readOnlyHint") is not True

    @property
    def active(self) -> bool:
        """Whether any call could need approval (else the host skips the check)."""
        return self.default != "never" or any(
            setting != "never" for setting in self.servers.values()
        )


def parse_approval(raw: Any, source: str = "mcp.json") -> ApprovalPolicy:
    """Check the `approval` section of an `mcp.json` (absent: nothing needs approval).

    Raises:
        ConfigError: a key is unknown or a value is not what it should be.
    """
    if raw is None:
        return ApprovalPolicy()
    if isinstance(raw, str):
        return ApprovalPolicy(default=_rule(raw, f"{source}: approval"))
    if not isinstance(raw, dict) or set(raw) - {"default", "servers", "unattended", "timeout"}:
        raise ConfigError(
            f'{source}: \'approval\' is a rule ("always", "never", "destructive") or an '
            "object with 'default', 'servers', 'unattended' and 'timeout'"
        )
    default = _rule(raw.get("default", "never"), f"{source}: approval.default")
    unattended = raw.get("unattended", "deny")
    if unattended not in ("deny", "allow"):
        raise ConfigError(f'{source}: approval.unattended must be "deny" or "allow"')
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 1 <= timeout <= 3600
    ):
        raise ConfigError(f"{source}: approval.timeout must be seconds, from 1 to 3600")
    servers = raw.get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: approval.servers must be an object of servers")
    for name, setting in servers.items():
        where = f"{source}: approval.servers.{name}"
        if isinstance(setting, str):
            _rule(setting, where)
            continue
        if not isinstance(setting, dict) or set(setting) - {"default", "tools"}:
            raise ConfigError(f"{where}: give a rule, or an object with 'default' and 'tools'")
        if "default" in setting:
            _rule(setting["default"], f"{where}.default")
        tools = setting.get("tools", {})
        if not isinstance(tools, dict):
            raise ConfigError(f"{where}.tools must be an object of tool: rule")
        for tool, rule in tools.items():
            _rule(rule, f"{where}.tools.{tool}")
    return ApprovalPolicy(default, servers, unattended, float(timeout))


def approval_policy(config: str | os.PathLike[str] | None) -> ApprovalPolicy:
    """The `approval` section of the config at `config`, checked (none: nothing needs it).

    Raises:
        ConfigError: the config or its `approval` section is invalid.
    """
    if config is None:
        return ApprovalPolicy()
    from ...runtime.config import load_config

    loaded = load_config(config)
    return parse_approval(loaded.approval, loaded.path)


def _rule(raw: Any, where: str) -> Rule:
    if raw in _RULES:
        rule: Rule = raw
        return rule
    shown = json.dumps(raw)[:40] if not isinstance(raw, str) else repr(raw[:40])
    raise ConfigError(f'{where}: must be "always", "never" or "destructive", not {shown}')


@dataclass(frozen=True)
class ApprovalRequest:
    """One call waiting for a yes: what the person is shown (personal data as placeholders)."""

    server: str
    tool: str
    arguments: str
    """The arguments as JSON, personal data replaced by placeholders, cut to 2,000 characters."""
    title: str | None = None
    destructive: bool = False

    def message(self) -> str:
        """The question, in a few lines."""
        what = f"{self.server}.{self.tool}" + (f" ({self.title})" if self.title else "")
        kind = "a destructive call" if self.destructive else "a call"
        return (
            f"Code running in the sandbox wants to make {kind}: {what}\n"
            f"arguments: {self.arguments}\n"
            "Allow this call?"
        )


@dataclass(frozen=True)
class Answer:
    """What asking gave: yes (True), no (False), or nobody could be asked (None)."""

    approved: bool | None
    by: str
    """Who or what answered: "person", "approve-all", or why nobody could be asked."""
    reason: str = ""


Asker = Callable[[ApprovalRequest], Awaitable[Answer]]
"""Asks a person about one call (serve: elicitation; exec/run: the terminal)."""


def shown_arguments(arguments: Mapping[str, Any]) -> str:
    """The arguments as a person reads them: JSON, cut to a readable length."""
    text = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
    if len(text) > _MAX_SHOWN:
        text = text[:_MAX_SHOWN] + f" [... {len(text)} characters in all]"
    return text


async def decide(policy: ApprovalPolicy, asker: Asker | None, request: ApprovalRequest) -> Approval:
    """Ask about one call and turn the answer into the decision the call log records.

    Nobody to ask (no asker, or it says it cannot) follows `policy.unattended`; no
    answer within `policy.timeout` is a no.
    """
    if asker is None:
        answer = Answer(None, "unattended", "nobody can be asked here")
    else:
        try:
            answer = await asyncio.wait_for(asker(request), policy.timeout)
        except TimeoutError:
            return Approval(
                decision="denied", by="timeout", reason=f"no answer within {policy.timeout:g} s"
            )
    if answer.approved is None:
        if policy.unattended == "allow":
            return Approval(
                decision="approved",
                by="policy",
                reason=f'{answer.reason}; approval.unattended is "allow"',
            )
        return Approval(decision="denied", by=answer.by, reason=answer.reason)
    return Approval(
        decision="approved" if answer.approved else "denied", by=answer.by, reason=answer.reason
    )


def denial_message(request: ApprovalRequest, approval: Approval) -> str:
    """What the code's `ApprovalDenied` says: the call, why, and what would let it through."""
    call = f"{request.server}.{request.tool}"
    if approval.by == "person":
        return f"{call} was not approved: {approval.reason or 'the person said no'}"
    if approval.by == "timeout":
        return f"{call} was not approved: {approval.reason}"
    return (
        f"{call} needs a person's approval (the approval policy of mcp.json), and {approval.reason}; "
        "the call was not made"
    )
