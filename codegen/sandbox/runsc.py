"""gVisor's `runsc`: finding it, checking that it runs, and never leaking a container.

Every container gets a unique id (`mcp-codegen-<pid>-<random>`) and lives under a
`--root` state directory this process owns. Each one is recorded while it lives;
`cleanup_all()` (also registered with `atexit`) force-deletes whatever is left.
The worker inside exits when its stdin closes, so a host that dies outright still
takes its sandboxes with it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SandboxUnavailableError

__all__ = [
    "INSTALL_HINT",
    "Runsc",
    "cleanup_all",
    "container_id",
    "find_runsc",
    "live_containers",
    "processes_naming",
    "register",
    "unregister",
]

INSTALL_HINT = (
    "install gVisor: `apt-get install runsc` (Debian/Ubuntu) or see "
    "https://gvisor.dev/docs/user_guide/install/; for development only, "
    "`--unsafe-local` runs code as a plain process without isolation"
)
_PREFIX = "mcp-codegen"


def container_id() -> str:
    """A fresh container id that names this process."""
    return f"{_PREFIX}-{os.getpid()}-{secrets.token_hex(4)}"


def find_runsc(path: str | None = None) -> str:
    """The `runsc` binary to use: `path`, else `$MCP_CODEGEN_RUNSC`, else `runsc` on PATH.

    Raises:
        SandboxUnavailableError: it is not there.
    """
    wanted = path or os.environ.get("MCP_CODEGEN_RUNSC") or "runsc"
    found = shutil.which(wanted)
    if found is None:
        raise SandboxUnavailableError(f"gVisor's `{wanted}` was not found; {INSTALL_HINT}")
    return found


@dataclass(frozen=True)
class Runsc:
    """One `runsc` binary, a state directory, and the global flags of every call."""

    binary: str
    root: Path
    flags: tuple[str, ...] = ("--network=none",)

    def base(self) -> list[str]:
        """`runsc` with its global flags."""
        extra = [] if os.geteuid() == 0 else ["--rootless", "--ignore-cgroups"]
        return [self.binary, "--root", str(self.root), *extra, *self.flags]

    def run_command(self, bundle: Path, container: str) -> list[str]:
        """The command that creates, starts and waits for a container, then deletes it."""
        return [*self.base(), "run", "--bundle", str(bundle), container]

    def check(self) -> None:
        """Prove that `runsc` runs here at all.

        Raises:
            SandboxUnavailableError: it does not (e.g. no ptrace in this container).
        """
        try:
            run = subprocess.run(
                [self.binary, "--version"], capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailableError(
                f"`{self.binary}` cannot run: {exc}; {INSTALL_HINT}"
            ) from None
        if run.returncode != 0:
            raise SandboxUnavailableError(
                f"`{self.binary} --version` failed: {run.stderr.strip()[-300:]}; {INSTALL_HINT}"
            )

    def delete(self, container: str, timeout: float = 30) -> None:
        """Kill and delete `container` if it still exists (errors are ignored)."""
        for command in (["kill", container, "KILL"], ["delete", "--force", container]):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [*self.base(), *command], capture_output=True, timeout=timeout, check=False
                )

    def containers(self) -> list[str]:
        """Ids of the containers under this state directory."""
        try:
            run = subprocess.run(
                [*self.base(), "list", "--quiet"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [line.strip() for line in run.stdout.splitlines() if line.strip()]


@dataclass
class _Registry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    live: dict[str, tuple[Runsc, int | None]] = field(default_factory=dict)


_registry = _Registry()


def register(runsc: Runsc, container: str, pid: int | None) -> None:
    """Record a container that is starting (with the pid of its `runsc run`)."""
    with _registry.lock:
        _registry.live[container] = (runsc, pid)


def unregister(container: str) -> None:
    """Forget a container that is gone."""
    with _registry.lock:
        _registry.live.pop(container, None)


def live_containers() -> list[str]:
    """Ids of containers this process started and has not yet seen gone."""
    with _registry.lock:
        return sorted(_registry.live)


def cleanup_all() -> None:
    """Kill every container this process started that is still recorded."""
    with _registry.lock:
        live, _registry.live = dict(_registry.live), {}
    for container, (runsc, pid) in live.items():
        if pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(pid, 9)
        runsc.delete(container, timeout=10)


def processes_naming(needle: str) -> list[int]:
    """Pids of host processes whose command line contains `needle` (for leak checks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in cmdline:
            found.append(int(entry.name))
    return found


atexit.register(cleanup_all)
