"""How a worker process is started: in gVisor (the default), or unsafely as a plain process.

A launcher prepares once (checks `runsc`, writes the OCI bundle) and then gives
the command of each new worker, and cleans up after each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..runtime.skills import SKILLS_DIR_ENV, STATE_DIR_ENV
from . import runsc as runsc_module
from .bridge.server import SOCKET_NAME
from .bundle import (
    BRIDGE_MOUNT,
    INSIDE_PACKAGE,
    BundleOptions,
    Layout,
    build_bundle,
    distribution_paths,
    worker_command,
)
from .egress.proxy import SOCKET_NAME as EGRESS_SOCKET

__all__ = ["GvisorLauncher", "Launcher", "SharedDirs", "UnsafeLocalLauncher", "WorkerSpec"]

_INSIDE_SOURCE = Path(__file__).parent / "inside"


@dataclass(frozen=True)
class WorkerSpec:
    """One worker to start: its command, environment, directory and container id."""

    command: list[str]
    env: dict[str, str] | None
    cwd: str | None
    container: str | None


@dataclass(frozen=True)
class SharedDirs:
    """Host directories bound into every worker of a launcher."""

    skills: Path | None = None
    """The shared skills directory (read-only, part of the package `skills`)."""
    session_skills: Path | None = None
    """The session's own skills directory (read-only, the rest of the package `skills`)."""
    state: Path | None = None
    """The session's state directory (read-write, `$MCP_CODEGEN_STATE_DIR`)."""
    skills_view: Path | None = None
    """A directory of links to the session's skills (read-only at `/skills`)."""


class Launcher(Protocol):
    """Starts workers of one kind."""

    unsafe: bool

    def prepare(self, workdir: Path, bridge_dir: Path, shared: SharedDirs | None = None) -> None:
        """Do the one-time work (bundle, checks) in `workdir`; calls go to `bridge_dir`.

        `shared` are the host directories every worker sees (skills, state).

        Raises:
            SandboxError: something the workers need is missing.
        """
        ...

    def bridge_socket(self) -> str:
        """The bridge socket's path as the code sees it."""
        ...

    def egress_socket(self) -> str:
        """The egress proxy's socket path as the code sees it (beside the bridge's)."""
        ...

    def spec(self) -> WorkerSpec:
        """The command of a new worker."""
        ...

    def started(self, spec: WorkerSpec, pid: int | None) -> None:
        """Record that the worker of `spec` runs as `pid`."""
        ...

    async def dispose(self, spec: WorkerSpec) -> None:
        """Make sure nothing of the worker of `spec` is left (its process has ended)."""
        ...


class GvisorLauncher:
    """Each worker is a gVisor sandbox started with `runsc run`."""

    unsafe = False

    def __init__(
        self, options: BundleOptions, *, runsc: str | None = None, flags: Sequence[str] = ()
    ):
        self.options = options
        self.runsc_path = runsc
        self.flags = ("--network=none", "--host-uds=open", *flags)
        self.runsc: runsc_module.Runsc | None = None
        self.bundle: Path | None = None
        self.layout: Layout | None = None

    def prepare(self, workdir: Path, bridge_dir: Path, shared: SharedDirs | None = None) -> None:
        """Find and check `runsc`, then write the bundle.

        Raises:
            SandboxUnavailableError: `runsc` is missing or cannot run.
            SandboxError: the bundle cannot be built.
        """
        binary = runsc_module.find_runsc(self.runsc_path)
        state = workdir / "state"
        state.mkdir(mode=0o700, exist_ok=True)
        self.runsc = runsc_module.Runsc(binary, state, self.flags)
        self.runsc.check()
        self.bundle = workdir / "bundle"
        shared = shared or SharedDirs()
        options = dataclasses.replace(
            self.options,
            bridge_dir=bridge_dir,
            skills_dir=shared.skills,
            session_skills_dir=shared.session_skills,
            state_dir=shared.state,
            skills_view=shared.skills_view,
        )
        self.layout = build_bundle(self.bundle, options)

    def bridge_socket(self) -> str:
        """The socket under the bridge directory's mount point."""
        return f"{BRIDGE_MOUNT}/{SOCKET_NAME}"

    def egress_socket(self) -> str:
        """The egress socket under the bridge directory's mount point."""
        return f"{BRIDGE_MOUNT}/{EGRESS_SOCKET}"

    def spec(self) -> WorkerSpec:
        """`runsc run` of the bundle under a fresh container id."""
        assert self.runsc is not None and self.bundle is not None
        container = runsc_module.container_id()
        return WorkerSpec(self.runsc.run_command(self.bundle, container), None, None, container)

    def started(self, spec: WorkerSpec, pid: int | None) -> None:
        """Record the container, so an exit of this process deletes it."""
        assert self.runsc is not None and spec.container is not None
        runsc_module.register(self.runsc, spec.container, pid)

    async def dispose(self, spec: WorkerSpec) -> None:
        """Delete the container if `runsc run` did not (it normally does)."""
        runsc = self.runsc
        container = spec.container
        if runsc is None or container is None:
            return
        if container in await asyncio.to_thread(runsc.containers):
            await asyncio.to_thread(runsc.delete, container)
        runsc_module.unregister(container)


class UnsafeLocalLauncher:
    """Each worker is a plain child process: NO isolation, for development only."""

    unsafe = True

    def __init__(self, package_dir: Path | None, distributions: Sequence[str] = ("pydantic",)):
        self.package_dir = package_dir
        self.distributions = tuple(distributions)
        self.layout: Layout | None = None
        self.workspace: Path | None = None
        self.bridge_dir: Path | None = None
        self.env: dict[str, str] = {}

    def bridge_socket(self) -> str:
        """The socket's host path."""
        assert self.bridge_dir is not None
        return str(self.bridge_dir / SOCKET_NAME)

    def egress_socket(self) -> str:
        """The egress socket's host path."""
        assert self.bridge_dir is not None
        return str(self.bridge_dir / EGRESS_SOCKET)

    def prepare(self, workdir: Path, bridge_dir: Path, shared: SharedDirs | None = None) -> None:
        """Link the inside code and make a workspace directory.

        Raises:
            SandboxError: a needed distribution is not installed.
        """
        self.bridge_dir = bridge_dir
        inside = workdir / "inside"
        inside.mkdir(exist_ok=True)
        link = inside / INSIDE_PACKAGE
        if not link.exists():
            link.symlink_to(_INSIDE_SOURCE, target_is_directory=True)
        self.workspace = workdir / "workspace"
        self.workspace.mkdir(exist_ok=True)
        site = sorted({str(path.parent) for path in distribution_paths(self.distributions)})
        sys_path = list(site)
        package = None
        if self.package_dir is not None:
            package = self.package_dir.resolve().name
            sys_path.insert(0, str(self.package_dir.resolve().parent))
        shared = shared or SharedDirs()
        self.env = {}
        skill_dirs = []
        for place, directory in (
            ("skillpath", shared.skills),
            ("sessionskills", shared.session_skills),
        ):
            if directory is None:
                continue
            # `import skills.x` needs a directory named `skills` on sys.path.
            link = workdir / place / "skills"
            link.parent.mkdir(exist_ok=True)
            if not link.exists():
                link.symlink_to(directory, target_is_directory=True)
            sys_path.append(str(link.parent))
            skill_dirs.append(str(link))
        if skill_dirs:
            self.env[SKILLS_DIR_ENV] = os.pathsep.join(skill_dirs)
        if shared.state is not None:
            self.env[STATE_DIR_ENV] = str(shared.state)
        self.layout = Layout(
            python=os.path.realpath(sys.executable),
            inside_root=str(inside),
            sys_path=tuple(sys_path),
            package=package,
            workspace=str(self.workspace),
            user=None,
        )

    def spec(self) -> WorkerSpec:
        """The worker as a plain interpreter, with a minimal environment."""
        assert self.layout is not None and self.workspace is not None
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(self.workspace),
            "TMPDIR": str(self.workspace),
            **self.env,
        }
        return WorkerSpec(worker_command(self.layout), env, str(self.workspace), None)

    def started(self, spec: WorkerSpec, pid: int | None) -> None:
        """Nothing to record: the process group is killed on stop."""

    async def dispose(self, spec: WorkerSpec) -> None:
        """Nothing beyond the process, which has ended."""
