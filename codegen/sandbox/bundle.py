"""The OCI bundle of a sandbox: an empty read-only root and a few read-only binds.

What the sandbox sees, and nothing else of the host:

- the interpreter binary and its standard library (read-only, at their host paths,
  which Python needs to find its prefix; the directories above them are empty
  directories of the bundle's own root, so `/root` shows only the way down), with
  the base interpreter's `site-packages` hidden under an empty tmpfs;
- the shared libraries the interpreter and its extension modules link (one bind
  per file; see `libraries`);
- the distributions the generated package needs (pydantic and its dependencies),
  each bound read-only under `/opt/mcp-codegen/site`;
- the generated import package, read-only at `/opt/mcp-codegen/pkg/<name>`;
- the worker and runner (`codegen/sandbox/inside`), read-only;
- the directory of the host's bridge socket, read-only at `/run/mcp-codegen`
  (connecting to it needs `runsc --host-uds=open`);
- the shared skills directory and the session's own, read-only, together the
  namespace package `skills` (both on `sys.path`, the shared one first);
- the session's state directory, read-write at `/state`;
- `/workspace` and `/tmp`, tmpfs private to this sandbox.

The process starts as the sandbox's own root with only the capabilities to drop
privileges and to kill its children; the agent's code runs as uid 65534.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime.skills import SKILLS_DIR_ENV, STATE_DIR_ENV
from .errors import SandboxError
from .inside.protocol import Settings
from .libraries import needed_libraries
from .quotas import Quotas

__all__ = [
    "BRIDGE_MOUNT",
    "INSIDE_PACKAGE",
    "SANDBOX_USER",
    "SESSION_SKILLS_PATH",
    "SKILLS_PATH",
    "STATE_MOUNT",
    "BundleOptions",
    "Layout",
    "build_bundle",
    "distribution_paths",
    "worker_command",
]

SANDBOX_USER = (65534, 65534)
"""uid and gid of the agent's code inside the sandbox (nobody)."""

INSIDE_PACKAGE = "_mcp_codegen_inside"
BRIDGE_MOUNT = "/run/mcp-codegen"
"""Where the bridge socket's directory appears inside the sandbox."""
_OPT = "/opt/mcp-codegen"
SKILLS_PATH = f"{_OPT}/skillpath"
"""On `sys.path` in the sandbox; the shared skills directory is bound at `SKILLS_PATH/skills`."""
SESSION_SKILLS_PATH = f"{_OPT}/sessionskills"
"""On `sys.path` after `SKILLS_PATH`; the session's own skills are at `SESSION_SKILLS_PATH/skills`."""
STATE_MOUNT = "/state"
"""Where the session's state directory appears inside the sandbox."""
_INSIDE_SOURCE = Path(__file__).parent / "inside"
_CAPABILITIES = ["CAP_SETUID", "CAP_SETGID", "CAP_KILL"]
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class BundleOptions:
    """What goes into a bundle and the sandbox-wide backstop limits."""

    package_dir: Path | None
    """The generated import package (`generated/mcp_demo`), or None for plain Python."""
    distributions: Sequence[str] = ("pydantic",)
    """Distributions the package imports; their dependencies are added."""
    memory_limit_mb: int = 2048
    """The sandbox's cgroup memory limit: a backstop that kills the whole sandbox."""
    pids_limit: int = 2048
    """The cgroup limit on host threads of the sandbox (the sentry needs many)."""
    tmp_mb: int = Quotas.tmp_mb
    """The size of the sandbox's `/tmp` tmpfs (gVisor enforces it: ENOSPC)."""
    workspace_mb: int = Quotas.workspace_mb
    """The size of the sandbox's `/workspace` tmpfs."""
    bridge_dir: Path | None = None
    """The host directory of the bridge socket."""
    skills_dir: Path | None = None
    """The host's shared skills directory (bound read-only), or None."""
    session_skills_dir: Path | None = None
    """The session's own skills directory (bound read-only), or None."""
    state_dir: Path | None = None
    """The session's state directory (bound read-write at `/state`), or None."""


@dataclass(frozen=True)
class Layout:
    """Where things are as the worker sees them (inside the sandbox, or on the host)."""

    python: str
    inside_root: str
    sys_path: tuple[str, ...]
    package: str | None
    workspace: str
    user: tuple[int, int] | None

    def settings(self) -> Settings:
        """The worker's JSON settings."""
        return {
            "sys_path": list(self.sys_path),
            "package": self.package,
            "workspace": self.workspace,
            "user": list(self.user) if self.user else None,
        }


def worker_command(layout: Layout) -> list[str]:
    """The command line that starts the worker with `layout`."""
    bootstrap = (
        f"import sys; sys.path.insert(0, {layout.inside_root!r}); "
        f"from {INSIDE_PACKAGE}.worker import main; main()"
    )
    return [layout.python, "-I", "-S", "-B", "-c", bootstrap, json.dumps(layout.settings())]


def _requirement_names(dist: importlib.metadata.Distribution) -> Iterable[str]:
    for requirement in dist.requires or ():
        name, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        match = _REQUIREMENT_NAME.match(name)
        if match:
            yield match.group(1)


def distribution_paths(names: Iterable[str]) -> list[Path]:
    """The top-level files and directories of `names` and their installed dependencies.

    Raises:
        SandboxError: a named distribution is not installed.
    """
    seen: set[str] = set()
    paths: set[Path] = set()
    todo = list(names)
    required = set(todo)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            if name in required:
                raise SandboxError(
                    f"{name} is not installed in {sys.prefix}; the sandbox needs it"
                ) from None
            continue  # an optional dependency for another platform
        root = Path(str(dist.locate_file(""))).resolve()
        for file in dist.files or ():
            parts = Path(file).parts
            if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".pth"):
                continue
            top = root / parts[0]
            if top.exists() and top.parent == root:
                paths.add(top)
        todo.extend(_requirement_names(dist))
    return sorted(paths)


def _interpreter() -> tuple[Path, Path]:
    """The real interpreter binary and its standard library directory."""
    executable = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    if not (stdlib / "os.py").exists():
        raise SandboxError(f"cannot find the standard library of {executable}")
    return executable, stdlib


class _Bundle:
    def __init__(self, directory: Path):
        self.directory = directory
        self.rootfs = directory / "rootfs"
        self.mounts: list[dict[str, Any]] = []

    def point(self, destination: str, is_file: bool) -> None:
        target = self.rootfs / destination.lstrip("/")
        if is_file:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)

    def bind(self, source: Path, destination: str, *, writable: bool = False) -> None:
        self.point(destination, source.is_file())
        options = ["rbind", "rw" if writable else "ro"]
        self.mounts.append(
            {"destination": destination, "type": "bind", "source": str(source), "options": options}
        )

    def tmpfs(self, destination: str, options: list[str]) -> None:
        self.point(destination, False)
        self.mounts.append(
            {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options}
        )


def build_bundle(directory: Path, options: BundleOptions) -> Layout:
    """Write an OCI bundle (`config.json` and `rootfs/`) into `directory`.

    Returns the layout the worker sees inside.

    Raises:
        SandboxError: the package directory is missing, or something the sandbox
            needs (a distribution, `ldd`, the standard library) cannot be found.
    """
    executable, stdlib = _interpreter()
    bundle = _Bundle(directory)
    bundle.rootfs.mkdir(parents=True, exist_ok=True)
    bundle.mounts.append({"destination": "/proc", "type": "proc", "source": "proc"})
    bundle.point("/proc", False)
    bundle.tmpfs("/tmp", ["mode=1777", f"size={options.tmp_mb}m"])
    bundle.tmpfs("/workspace", ["mode=1777", f"size={options.workspace_mb}m"])

    bundle.bind(executable, str(executable))
    bundle.bind(stdlib, str(stdlib))
    if (stdlib / "site-packages").is_dir():
        bundle.tmpfs(str(stdlib / "site-packages"), ["ro", "mode=755"])

    site = distribution_paths(options.distributions)
    extensions = [*stdlib.glob("lib-dynload/*.so")]
    extensions += [p for top in site for p in ([top] if top.is_file() else top.rglob("*.so"))]
    for looked_up, real in sorted(needed_libraries(executable, extensions).items()):
        if not str(real).startswith(str(stdlib)):
            bundle.bind(real, looked_up)
    for top in site:
        bundle.bind(top, f"{_OPT}/site/{top.name}")
    bundle.bind(_INSIDE_SOURCE, f"{_OPT}/inside/{INSIDE_PACKAGE}")
    if options.bridge_dir is not None:
        bundle.bind(options.bridge_dir, BRIDGE_MOUNT)

    package: str | None = None
    sys_path = [f"{_OPT}/site"]
    if options.package_dir is not None:
        package_dir = options.package_dir.resolve()
        if not (package_dir / "__init__.py").is_file():
            raise SandboxError(f"{options.package_dir}: not a generated package (no __init__.py)")
        package = package_dir.name
        bundle.bind(package_dir, f"{_OPT}/pkg/{package}")
        sys_path.insert(0, f"{_OPT}/pkg")
    if options.skills_dir is not None:
        bundle.bind(options.skills_dir, f"{SKILLS_PATH}/skills")
        sys_path.append(SKILLS_PATH)
    if options.session_skills_dir is not None:
        bundle.bind(options.session_skills_dir, f"{SESSION_SKILLS_PATH}/skills")
        sys_path.append(SESSION_SKILLS_PATH)
    if options.state_dir is not None:
        bundle.bind(options.state_dir, STATE_MOUNT, writable=True)

    etc = bundle.rootfs / "etc"
    etc.mkdir(exist_ok=True)
    uid, gid = SANDBOX_USER
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:{uid}:{gid}:nobody:/workspace:/sbin/nologin\n",
        encoding="utf-8",
    )
    (etc / "group").write_text(f"root:x:0:\nnogroup:x:{gid}:\n", encoding="utf-8")

    layout = Layout(
        python=str(executable),
        inside_root=f"{_OPT}/inside",
        sys_path=tuple(sys_path),
        package=package,
        workspace="/workspace",
        user=SANDBOX_USER,
    )
    spec = _spec(layout, bundle.mounts, options)
    (directory / "config.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return layout


def _spec(layout: Layout, mounts: list[dict[str, Any]], options: BundleOptions) -> dict[str, Any]:
    env = ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/workspace", "TMPDIR=/tmp"]
    skill_dirs = [f"{SKILLS_PATH}/skills"] if options.skills_dir is not None else []
    if options.session_skills_dir is not None:
        skill_dirs.append(f"{SESSION_SKILLS_PATH}/skills")
    if skill_dirs:
        env.append(f"{SKILLS_DIR_ENV}={os.pathsep.join(skill_dirs)}")
    if options.state_dir is not None:
        env.append(f"{STATE_DIR_ENV}={STATE_MOUNT}")
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": worker_command(layout),
            "env": env,
            "cwd": layout.workspace,
            "capabilities": {
                "bounding": _CAPABILITIES,
                "effective": _CAPABILITIES,
                "permitted": _CAPABILITIES,
                "inheritable": [],
                "ambient": [],
            },
            "noNewPrivileges": True,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "sandbox",
        "mounts": mounts,
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
            "resources": {
                "memory": {"limit": options.memory_limit_mb * 1024 * 1024},
                "pids": {"limit": options.pids_limit},
            },
        },
    }
