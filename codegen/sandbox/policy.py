"""The sandbox policy: the `sandbox` section of `mcp.json`, and the flags that override it.

    "sandbox": {
      "limits": {"timeout_s": 30, "memory_mb": 512, "cpu": 1, "processes": 32,
                 "tmp_mb": 256, "workspace_mb": 256, "state_mb": 100, "output_kb": 100},
      "packages": ["numpy", "pandas"],
      "network": {"allow": ["api.github.com:443", "*.internal.example.com"],
                  "bandwidth_kbps": 10240},
      "check_code": "block"
    }

Every field is optional and has a safe default (`SandboxPolicy`'s); the quotas
of `/tmp`, `/workspace` and `/state` default to those of `quotas.Quotas`. The
config module keeps the section raw; it is checked here, on the host, and every
error names the field (`mcp.json: sandbox.limits.cpu: ...`). `exec`, `run` and
`serve` read it, then apply their command-line flags (`SandboxPolicy.override`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from ..runtime.errors import ConfigError
from .egress.rules import Allowlist, RuleError
from .quotas import Quotas

if TYPE_CHECKING:
    from .executor import Limits

__all__ = [
    "CHECK_MODES",
    "DEFAULT_BANDWIDTH_KBPS",
    "CheckMode",
    "NetworkPolicy",
    "SandboxPolicy",
    "check_packages",
    "install_command",
    "load_sandbox_policy",
    "missing_packages",
    "network_policy",
    "parse_sandbox_policy",
]

CheckMode = Literal["block", "warn", "off"]
CHECK_MODES: tuple[CheckMode, ...] = get_args(CheckMode)

DEFAULT_BANDWIDTH_KBPS = 51_200
"""The egress cap when the policy allows a network but names none: 50 Mbit/s, both ways together."""

_DISTRIBUTION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_SECTION_KEYS = ("limits", "packages", "network", "check_code")
_NETWORK_KEYS = ("allow", "bandwidth_kbps")


@dataclass(frozen=True)
class NetworkPolicy:
    """Where the sandbox may connect (through the host's proxy), and how fast."""

    allow: Allowlist
    bandwidth_kbps: int | None = DEFAULT_BANDWIDTH_KBPS
    """Kilobits per second for all of a session's connections, both directions; None: no cap."""


@dataclass(frozen=True)
class SandboxPolicy:
    """What a session's sandbox may use; the defaults are the safe ones."""

    timeout: float = 30.0
    """Wall-clock seconds of one execution (`limits.timeout_s`)."""
    memory_mb: int = 512
    """Memory one execution's processes may each allocate (`limits.memory_mb`)."""
    cpu: float | None = None
    """CPUs the whole sandbox may use (a cgroup CFS quota); None: no quota."""
    processes: int = 32
    """Processes of one execution at once."""
    output_kb: int = 100
    """kB (1,000 bytes) of stdout, and of stderr, kept of one execution."""
    tmp_mb: int = Quotas.tmp_mb
    workspace_mb: int = Quotas.workspace_mb
    state_mb: int = Quotas.state_mb
    packages: tuple[str, ...] = ()
    """Distributions of this environment mounted read-only (their dependencies too)."""
    network: NetworkPolicy | None = None
    """None: no network at all."""
    check_code: CheckMode = "block"
    """What a type error the checker is certain of does: stop the execution, warn, or nothing."""

    def limits(self) -> Limits:
        """The per-execution `Limits` of this policy."""
        from .executor import Limits

        return Limits(
            timeout=self.timeout,
            memory_mb=self.memory_mb,
            max_processes=self.processes,
            max_output_bytes=self.output_kb * 1000,
        )

    def quotas(self, base: Quotas | None = None) -> Quotas:
        """`base` (by default `Quotas()`) with this policy's file-system sizes."""
        return dataclasses.replace(
            base or Quotas(),
            tmp_mb=self.tmp_mb,
            workspace_mb=self.workspace_mb,
            state_mb=self.state_mb,
        )

    def override(self, **fields: Any) -> SandboxPolicy:
        """This policy with the fields given and not None replaced (command-line flags)."""
        given = {name: value for name, value in fields.items() if value is not None}
        return dataclasses.replace(self, **given) if given else self


def _number(
    value: Any, where: str, *, integer: bool, minimum: float, maximum: float, hint: str
) -> float:
    kind = "a whole number" if integer else "a number"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not (isinstance(value, int) or float(value).is_integer()))
    ):
        raise ConfigError(f"{where}: must be {kind} {hint}, not {value!r}")
    if not minimum <= value <= maximum:
        raise ConfigError(f"{where}: must be {kind} from {minimum:g} to {maximum:g} {hint}")
    return value


_LIMITS: Mapping[str, tuple[str, bool, float, float, str]] = {
    # key in mcp.json: (field, integer, minimum, maximum, what it is)
    "timeout_s": ("timeout", False, 0.1, 86_400, "(seconds of one execution)"),
    "memory_mb": ("memory_mb", True, 16, 1_048_576, "(MB one execution may allocate)"),
    "cpu": ("cpu", False, 0.01, 1024, "(CPUs of the sandbox, e.g. 0.5 or 2)"),
    "processes": ("processes", True, 1, 4096, "(processes of one execution)"),
    "tmp_mb": ("tmp_mb", True, 1, 1_048_576, "(MB of /tmp)"),
    "workspace_mb": ("workspace_mb", True, 1, 1_048_576, "(MB of /workspace)"),
    "state_mb": ("state_mb", True, 1, 1_048_576, "(MB of /state)"),
    "output_kb": ("output_kb", True, 1, 1_048_576, "(kB of stdout, and of stderr, kept)"),
}


def _unknown(key: str, known: tuple[str, ...] | list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"expected {', '.join(known)}"
    return ConfigError(f"{where}.{key}: unknown key; {hint}")


def _object(value: Any, where: str, keys: tuple[str, ...] | list[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be an object with {', '.join(keys)}")
    for key in value:
        if key not in keys:
            raise _unknown(key, keys, where)
    return value


def parse_sandbox_policy(raw: Any, source: str = "mcp.json") -> SandboxPolicy:
    """Check the `sandbox` section of an `mcp.json` (absent: the defaults).

    Only the form is checked here; `missing_packages` says whether the packages
    it names are installed.

    Raises:
        ConfigError: a key is unknown or a value is not what it should be; the
            message names the field.
    """
    if raw is None:
        return SandboxPolicy()
    where = f"{source}: sandbox"
    section = _object(raw, where, _SECTION_KEYS)
    fields: dict[str, Any] = {}
    limits = section.get("limits")
    if limits is not None:
        for key, value in _object(limits, f"{where}.limits", list(_LIMITS)).items():
            name, integer, low, high, hint = _LIMITS[key]
            if value is None and key == "cpu":
                continue
            number = _number(
                value,
                f"{where}.limits.{key}",
                integer=integer,
                minimum=low,
                maximum=high,
                hint=hint,
            )
            fields[name] = int(number) if integer else float(number)
    packages = section.get("packages")
    if packages is not None:
        fields["packages"] = _packages(packages, f"{where}.packages")
    network = section.get("network")
    if network is not None:
        fields["network"] = _network(network, f"{where}.network")
    check = section.get("check_code")
    if check is not None:
        if check not in CHECK_MODES:
            raise ConfigError(
                f"{where}.check_code: must be one of {', '.join(CHECK_MODES)}, not {check!r}"
            )
        fields["check_code"] = check
    return SandboxPolicy(**fields)


def _packages(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(
            f"{where}: must be a list of distribution names, e.g. ['numpy', 'pandas']"
        )
    names: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _DISTRIBUTION.match(item):
            raise ConfigError(
                f"{where}[{index}]: {item!r} is not a distribution name (as pip knows it, "
                "e.g. 'pandas')"
            )
        if item not in names:
            names.append(item)
    return tuple(names)


def _network(value: Any, where: str) -> NetworkPolicy | None:
    section = _object(value, where, _NETWORK_KEYS)
    allow = section.get("allow", [])
    if not isinstance(allow, list):
        raise ConfigError(f"{where}.allow: must be a list such as ['api.github.com:443']")
    try:
        allowlist = Allowlist.of(allow)
    except RuleError as exc:
        index = next(i for i, entry in enumerate(allow) if _bad_rule(entry))
        raise ConfigError(f"{where}.allow[{index}]: {exc}") from None
    bandwidth: int | None = DEFAULT_BANDWIDTH_KBPS
    if "bandwidth_kbps" in section:
        raw = section["bandwidth_kbps"]
        bandwidth = (
            None
            if raw is None
            else int(
                _number(
                    raw,
                    f"{where}.bandwidth_kbps",
                    integer=True,
                    minimum=8,
                    maximum=100_000_000,
                    hint="(kilobits per second, or null for no cap)",
                )
            )
        )
    if not allowlist.rules:
        return None
    return NetworkPolicy(allow=allowlist, bandwidth_kbps=bandwidth)


def _bad_rule(entry: Any) -> bool:
    try:
        Allowlist.of([entry])
    except RuleError:
        return True
    return False


def network_policy(
    entries: list[str], bandwidth_kbps: int | None, *, where: str = "--allow"
) -> NetworkPolicy | None:
    """A network policy from command-line entries (None for none).

    Raises:
        ConfigError: an entry cannot be read.
    """
    try:
        allowlist = Allowlist.of(entries)
    except RuleError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not allowlist.rules:
        return None
    return NetworkPolicy(allow=allowlist, bandwidth_kbps=bandwidth_kbps)


def missing_packages(
    packages: tuple[str, ...], installed: Callable[[str], object] = importlib.metadata.distribution
) -> list[str]:
    """The names of `packages` that are not installed in this environment."""
    missing = []
    for name in packages:
        try:
            installed(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def install_command(names: list[str]) -> str:
    """The command that installs `names` into the environment the sandbox mounts from."""
    return f"{sys.executable} -m pip install {' '.join(names)}"


def check_packages(packages: tuple[str, ...], where: str = "mcp.json: sandbox.packages") -> None:
    """Make sure every one of `packages` is installed here, where the sandbox mounts them from.

    Raises:
        ConfigError: one is not; the message names it and the command that installs it.
    """
    missing = missing_packages(packages)
    if missing:
        names = ", ".join(repr(name) for name in missing)
        verb = "is" if len(missing) == 1 else "are"
        raise ConfigError(
            f"{where}: {names} {verb} not installed in {sys.prefix}, where the sandbox mounts "
            f"packages from; install with `{install_command(missing)}`"
        )


def load_sandbox_policy(config: str | os.PathLike[str]) -> SandboxPolicy:
    """The checked `sandbox` section of the `mcp.json` at `config`, its packages installed.

    Raises:
        ConfigError: the config cannot be read, the section is invalid, or a package
            it names is not installed.
    """
    from ..runtime.config import load_config

    loaded = load_config(config)
    policy = parse_sandbox_policy(loaded.sandbox, loaded.path)
    check_packages(policy.packages, f"{loaded.path}: sandbox.packages")
    return policy
