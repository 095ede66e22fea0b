"""The OCI bundle of a sandbox: an empty read-only root and a few read-only binds.

What the sandbox sees, and nothing else of the host:

- the interpreter binary and its standard library (read-only, at their host paths,
  which Python needs to find its prefix; the directories above them are empty
  directories of the bundle's own root, so `/root` shows only the way down), with
  the base interpreter's `site-packages` hidden under an empty tmpfs;
- the shared libraries the interpreter and its extension modules link (one bind
  per file; see `libraries`);
- a few of the host's commands for looking around (`sh`, `cat`, `head`, `tail`,
  `grep`, `find`, `wc`, `sort`), read-only, and an `ls` of our own (`inside/ls.py`:
  GNU `ls` asks gVisor for `statx` flags it refuses), so `ls /servers` works as
  agents expect;
- the distributions the generated package needs (pydantic and its dependencies),
  each bound read-only under `/opt/mcp-codegen/site`;
- the distributions the sandbox policy names (`packages`: numpy, pandas...) and
  their dependencies, the same way;
- the generated import package, read-only at `/opt/mcp-codegen/pkg/<name>`, and
  its `servers` directory again at `/servers`, where agents look (`ls /servers`);
- the worker and runner (`codegen/sandbox/inside`), read-only;
- the directory of the host's bridge socket, read-only at `/run/mcp-codegen`
  (connecting to it needs `runsc --host-uds=open`);
- the shared skills directory and the session's own, read-only, together the
  namespace package `skills` (both on `sys.path`, the shared one first);
- `/skills`: a read-only directory of links to every skill the session imports;
- the session's state directory, read-write at `/state`;
- `/workspace` and `/tmp`, tmpfs private to this sandbox;
- with a network policy, the host's CA certificates at `/etc/ssl/certs/ca-certificates.crt`.

The sandbox's cgroup limits its memory and threads, and with `cpu` its CPU time
(a CFS quota: `cpu` CPUs' worth of each 100 ms period).

The process starts as the sandbox's own root with only the capabilities to drop
privileges and to kill its children; the agent's code runs as uid 65534.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
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
    "CA_FILE",
    "INSIDE_PACKAGE",
    "SANDBOX_USER",
    "SERVERS_MOUNT",
    "SESSION_SKILLS_PATH",
    "SKILLS_MOUNT",
    "SKILLS_PATH",
    "STATE_MOUNT",
    "BundleOptions",
    "Layout",
    "build_bundle",
    "distribution_paths",
    "import_names",
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
SERVERS_MOUNT = "/servers"
"""Where the package's `servers` directory appears again, for `ls` and `cat`."""
SKILLS_MOUNT = "/skills"
"""Where the links to the session's skills appear."""
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
"""Where the host's CA certificates appear when the sandbox may reach hosts."""
_CPU_PERIOD_US = 100_000
_COMMANDS = ("sh", "cat", "head", "tail", "grep", "find", "wc", "sort")
"""Commands agents use to look around (`ls /servers`); the host's, bound read-only."""
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
    skills_view: Path | None = None
    """A host directory of links to the session's skills (bound read-only at `/skills`)."""
    cpu: float | None = None
    """CPUs the sandbox may use (its cgroup's CFS quota); None for no quota."""
    modules: tuple[str, ...] = ()
    """Modules the worker imports once, besides pydantic and the package (policy packages)."""
    ca_file: Path | None = None
    """The host's CA certificates, bound at `CA_FILE` (with a network policy)."""
    env: tuple[str, ...] = ()
    """More `NAME=value` variables for the sandbox's processes."""


@dataclass(frozen=True)
class Layout:
    """Where things are as the worker sees them (inside the sandbox, or on the host)."""

    python: str
    inside_root: str
    sys_path: tuple[str, ...]
    package: str | None
    workspace: str
    user: tuple[int, int] | None
    modules: tuple[str, ...] = ()

    def settings(self) -> Settings:
        """The worker's JSON settings."""
        settings: Settings = {
            "sys_path": list(self.sys_path),
            "package": self.package,
            "workspace": self.workspace,
            "user": list(self.user) if self.user else None,
        }
        if self.modules:
            settings["modules"] = list(self.modules)
        return settings


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


def import_names(names: Iterable[str]) -> tuple[str, ...]:
    """The top-level modules the distributions `names` provide (`python-dateutil`: `dateutil`).

    Private ones (`_cffi_backend`) are left out; a distribution that is not
    installed gives nothing.
    """
    found: set[str] = set()
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        listed = dist.read_text("top_level.txt")
        if listed:
            found.update(line.strip() for line in listed.splitlines() if line.strip())
            continue
        for file in dist.files or ():
            parts = Path(file).parts
            if len(parts) == 2 and parts[1] == "__init__.py":
                found.add(parts[0])
            elif len(parts) == 1 and parts[0].endswith(".py"):
                found.add(parts[0][:-3])
    return tuple(sorted(name for name in found if name.isidentifier() and not name.startswith("_")))


def _write_ls(rootfs: Path, python: Path) -> None:
    """`/usr/bin/ls` and `/bin/ls` of the bundle's own root: a script running `inside/ls.py`."""
    script = (
        f"#!{python} -IS\nimport sys\nsys.path.insert(0, {_OPT + '/inside'!r})\n"
        f"from {INSIDE_PACKAGE}.ls import main\nmain()\n"
    )
    for directory in ("usr/bin", "bin"):
        target = rootfs / directory / "ls"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(script, encoding="utf-8")
        target.chmod(0o755)


def _commands() -> dict[str, Path]:
    """The host's `_COMMANDS`: where the sandbox sees each (/usr/bin and /bin) -> real file."""
    found: dict[str, Path] = {}
    for name in _COMMANDS:
        real = shutil.which(name, path="/usr/bin:/bin")
        if real is not None:
            for directory in ("/usr/bin", "/bin"):
                found[f"{directory}/{name}"] = Path(real).resolve()
    return found


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
    commands = _commands()
    extensions = [*stdlib.glob("lib-dynload/*.so"), *commands.values()]
    extensions += [p for top in site for p in ([top] if top.is_file() else top.rglob("*.so"))]
    for looked_up, real in sorted(needed_libraries(executable, extensions).items()):
        if not str(real).startswith(str(stdlib)):
            bundle.bind(real, looked_up)
    for top in site:
        bundle.bind(top, f"{_OPT}/site/{top.name}")
    for looked_up, real in sorted(commands.items()):
        bundle.bind(real, looked_up)
    _write_ls(bundle.rootfs, executable)
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
        if (package_dir / "servers").is_dir():
            bundle.bind(package_dir / "servers", SERVERS_MOUNT)
    if options.skills_dir is not None:
        bundle.bind(options.skills_dir, f"{SKILLS_PATH}/skills")
        sys_path.append(SKILLS_PATH)
    if options.session_skills_dir is not None:
        bundle.bind(options.session_skills_dir, f"{SESSION_SKILLS_PATH}/skills")
        sys_path.append(SESSION_SKILLS_PATH)
    if options.state_dir is not None:
        bundle.bind(options.state_dir, STATE_MOUNT, writable=True)
    if options.skills_view is not None:
        bundle.bind(options.skills_view, SKILLS_MOUNT)
    if options.ca_file is not None:
        bundle.bind(options.ca_file.resolve(), CA_FILE)

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
        modules=options.modules,
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
    if options.ca_file is not None:
        env.append(f"SSL_CERT_FILE={CA_FILE}")
    env.extend(options.env)
    resources: dict[str, Any] = {
        "memory": {"limit": options.memory_limit_mb * 1024 * 1024},
        "pids": {"limit": options.pids_limit},
    }
    if options.cpu is not None:
        resources["cpu"] = {
            "quota": max(1000, round(options.cpu * _CPU_PERIOD_US)),
            "period": _CPU_PERIOD_US,
        }
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
            "resources": resources,
        },
    }
