"""Run one piece of agent code in a fresh forked process and describe its outcome.

The code may use top-level `await`. The value of its last expression is kept
(like a notebook cell), and an exception is reported with a traceback trimmed to
the agent's own lines: frames of the runner, the generated package and the
libraries are dropped. `servers.<server>` is an alias of
`<package>.servers.<server>`: both spellings give the same module objects.
`save_skill` (from `<package>._runtime.skills`), `report_progress` and
`ApprovalDenied` are in the code's namespace, and a skill that fails to import
raises an ImportError naming it.

Connections the code opens directly (not through the proxy) are noted by an
audit hook, so the result lists them as refused: the sandbox has no route but
its loopback. When the policy allows hosts, the egress relay (see `relay`) is
started first, and `HTTP(S)_PROXY` name it. A write that fails because a file
system is full says which one and what sets its size.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import errno
import importlib
import importlib.abc
import importlib.machinery
import inspect
import json
import linecache
import os
import resource
import sys
import traceback
import types
from collections.abc import Sequence
from typing import Any

from .protocol import MAX_DIRECT, VALUE_LIMIT, DirectConnection, DiskQuota, Job, Outcome

__all__ = [
    "ServersAlias",
    "install_alias",
    "install_skills",
    "outcome_of",
    "prepare",
    "run_job",
]


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, real: types.ModuleType):
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.real

    def exec_module(self, module: types.ModuleType) -> None:
        # module_from_spec() set the alias spec on the real module; put its own back.
        module.__spec__ = self.real.__spec__


class ServersAlias(importlib.abc.MetaPathFinder):
    """Makes `servers.x.y` import `<package>.servers.x.y` and return the same module."""

    def __init__(self, package: str):
        self.target = f"{package}.servers"

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "servers" and not fullname.startswith("servers."):
            return None
        real = importlib.import_module(self.target + fullname[len("servers") :])
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real))


def install_alias(package: str) -> None:
    """Alias `servers` to `<package>.servers`, for modules imported now and later."""
    prefix = f"{package}.servers"
    for name, module in list(sys.modules.items()):
        if name == prefix or name.startswith(prefix + "."):
            sys.modules["servers" + name[len(prefix) :]] = module
    # First, before the path finder: it would find `servers.x` under the alias's
    # `__path__` and load a second copy of the module under the other name.
    sys.meta_path.insert(0, ServersAlias(package))


def install_skills(package: str) -> None:
    """Report skills that fail to import by name (packages built before skills: nothing)."""
    with contextlib.suppress(ImportError):
        importlib.import_module(f"{package}._runtime.skills").install_import_reports()


def _trimmed(exc: BaseException, filename: str) -> str:
    """The traceback of `exc` with only the frames of the agent's own code."""
    te = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    pending = [te]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        kept = [frame for frame in current.stack if frame.filename == filename]
        current.stack = traceback.StackSummary.from_list(kept)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return "".join(te.format())


def _jsonable(value: Any) -> tuple[bool, Any]:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            value = dump(mode="json")
        except Exception:
            return False, None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False, None
    if len(text) > VALUE_LIMIT:
        return False, None
    return True, value


def _cut(text: str) -> str:
    if len(text) <= VALUE_LIMIT:
        return text
    return text[:VALUE_LIMIT] + f"... [{len(text) - VALUE_LIMIT} characters cut]"


def outcome_of(value: Any, error: BaseException | None, filename: str) -> Outcome:
    """The JSON-ready outcome: the value (JSON and repr) or the error."""
    if error is not None:
        return {
            "error": {
                "type": type(error).__name__,
                "message": _cut(str(error)),
                "traceback": _cut(_trimmed(error, filename)),
            }
        }
    if value is None:
        return {}
    ok, as_json = _jsonable(value)
    try:
        shown = repr(value)
    except Exception as exc:
        shown = f"<repr failed: {type(exc).__name__}>"
    outcome: Outcome = {"repr": _cut(shown)}
    if ok:
        outcome["value"] = as_json
    return outcome


def _compile(source: str, filename: str) -> tuple[types.CodeType, types.CodeType | None]:
    """The body, and the last expression apart (if the code ends in one)."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = ast.parse(source, filename, "exec")
    last: types.CodeType | None = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        expression = ast.Expression(final.value)
        last = compile(expression, filename, "eval", flags=flags, dont_inherit=True)
    body = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    return body, last


def _is_async(code: types.CodeType | None) -> bool:
    return code is not None and bool(code.co_flags & inspect.CO_COROUTINE)


def _execute(source: str, filename: str, namespace: dict[str, Any]) -> Any:
    body, last = _compile(source, filename)
    if not (_is_async(body) or _is_async(last)):
        # No top-level await: run plainly, so the code may call asyncio.run itself.
        exec(body, namespace)
        return eval(last, namespace) if last is not None else None

    async def both() -> Any:
        result = eval(body, namespace)
        if inspect.isawaitable(result):
            await result
        if last is None:
            return None
        value = eval(last, namespace)
        return (await value) if _is_async(last) else value

    return asyncio.run(both())


def _namespace(package: str | None, filename: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__builtins__": builtins,
        "__file__": filename,
    }
    if package:
        search = getattr(sys.modules.get(package), "search_tools", None)
        if search is not None:
            namespace["search_tools"] = search
        save = getattr(sys.modules.get(f"{package}._runtime.skills"), "save_skill", None)
        if save is not None:
            namespace["save_skill"] = save
        runtime = sys.modules.get(f"{package}._runtime")
        for name in ("report_progress", "ApprovalDenied"):  # packages built before: absent
            if hasattr(runtime, name):
                namespace[name] = getattr(runtime, name)
    return namespace


def _limit(kind: int, value: int) -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(kind, (value, value))


def _address_space() -> int:
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


_WRITING = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT
_written: list[str] = []
"""The last files the code opened for writing (for the message when a disk is full)."""


def _note_write(args: tuple[Any, ...]) -> None:
    path, mode, flags = [*args, None, None, None][:3]
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
        isinstance(flags, int) and flags & _WRITING
    )
    if writing and isinstance(path, str | bytes):
        text = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
        _written.append(os.path.abspath(text))
        del _written[:-16]


def _watch_connections(seen: list[DirectConnection]) -> None:
    """Note each connection the code starts (or name it looks up) other than on loopback,
    and the files it opens for writing.

    A name is looked up before a connection to it, and with no resolver in the
    sandbox that fails first, so the lookup is what shows.
    """

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            _note_write(args)
            return
        if len(seen) >= MAX_DIRECT:
            return
        if event == "socket.connect":
            address = args[1] if len(args) > 1 else None
            if not isinstance(address, tuple) or len(address) < 2:
                return  # a Unix socket: the bridge, the relay
            host, port = address[0], address[1]
        elif event == "socket.getaddrinfo" and len(args) > 1:
            host, port = args[0], args[1]
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
        else:
            return
        host = str(host)
        if host in ("", "localhost", "::1", "0.0.0.0") or host.startswith("127."):
            return
        with contextlib.suppress(TypeError, ValueError):
            entry: DirectConnection = {"host": host[:255], "port": int(port or 0)}
            if not seen or seen[-1] != entry:  # an address is looked up, then connected to
                seen.append(entry)

    sys.addaudithook(hook)


_FULL_BYTES = 1024 * 1024


def _mount_of(path: str, disks: dict[str, DiskQuota]) -> str | None:
    for mount in disks:
        if path == mount or path.startswith(mount.rstrip("/") + "/"):
            return mount
    return None


def _disk_hint(disks: dict[str, DiskQuota], exc: OSError) -> str:
    """Which file system is full, its quota, and what sets it.

    The one the failing path is on, else one with no room left, else the one
    the code last opened a file for writing on (the code may have cleaned up
    before the error reached us), else all of them.
    """
    named = _mount_of(os.path.abspath(str(exc.filename)), disks) if exc.filename else None
    candidates = [named] if named else []
    for mount in disks:
        try:
            stats = os.statvfs(mount)
        except OSError:
            continue
        if stats.f_bavail * stats.f_frsize < _FULL_BYTES or (
            stats.f_files > 0 and stats.f_favail == 0
        ):
            candidates.append(mount)
    if not candidates:
        recent = [_mount_of(path, disks) for path in reversed(_written)]
        candidates = [mount for mount in recent if mount][:1]
    if not candidates:
        listed = [
            f"{mount}: {quota['mb']} MB ({quota['setting']})" for mount, quota in disks.items()
        ]
        return "; a file system of the sandbox is full: " + "; ".join(listed)
    full = [
        f"{mount} is full (its quota is {disks[mount]['mb']} MB: {disks[mount]['setting']})"
        for mount in dict.fromkeys(candidates)
    ]
    return "; " + "; ".join(full)


def prepare() -> int:
    """Do in a spare process, before its job arrives, what every job needs; return the
    address space it maps (the base of the job's memory limit).

    Runs a trivial job's path once: its first run in a forked process costs
    milliseconds under gVisor (copy-on-write faults of the memory it touches),
    which are then off the job's own path. So is reading `/proc/self/status`.
    """
    with contextlib.suppress(Exception):
        filename = "<prepare>"
        value = _execute("0", filename, _namespace(None, filename))
        json.loads(json.dumps(outcome_of(value, None, filename), ensure_ascii=False))
    return _address_space()


def run_job(job: Job, package: str | None, mapped: int | None = None) -> Outcome:
    """Apply the job's limits, run its code, and return the outcome.

    The memory limit is counted above what the process already maps (`mapped`,
    else read now), so a limit of N MB lets the code allocate about N MB more.
    """
    memory = int(job.get("memory_mb") or 0)
    if memory > 0:
        base = _address_space() if mapped is None else mapped
        _limit(resource.RLIMIT_AS, base + memory * 1024 * 1024)
    processes = int(job.get("max_processes") or 0)
    if processes > 0:
        _limit(resource.RLIMIT_NPROC, processes)
    _limit(resource.RLIMIT_NOFILE, 256)
    filename = str(job.get("filename") or "<exec>")
    source = str(job.get("code", ""))
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    bridge = job.get("bridge") or {}
    os.environ["MCP_CODEGEN_TRANSPORT"] = "bridge"
    os.environ["MCP_CODEGEN_BRIDGE_SOCKET"] = str(bridge.get("socket", ""))
    os.environ["MCP_CODEGEN_BRIDGE_TOKEN"] = str(bridge.get("token", ""))
    direct: list[DirectConnection] = []
    _watch_connections(direct)
    egress = job.get("egress")
    if egress:
        from .relay import start_relay

        with contextlib.suppress(OSError):  # then every connection fails, and says so
            start_relay(str(egress.get("socket", "")), str(egress.get("token", "")))
    namespace = _namespace(package, filename)
    sys.argv = [filename]
    outcome = _run(source, filename, namespace, job, processes)
    if direct:
        outcome["connections"] = list(direct)
    return outcome


def _run(
    source: str, filename: str, namespace: dict[str, Any], job: Job, processes: int
) -> Outcome:
    try:
        value = _execute(source, filename, namespace)
    except BaseException as exc:
        # SystemExit(0) and SystemExit(None) end the code normally, as they would a script.
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            return {}
        if isinstance(exc, MemoryError):
            namespace.clear()  # free what the code held, so the report itself fits
        outcome = outcome_of(None, exc, filename)
        if isinstance(exc, BlockingIOError) and exc.errno == errno.EAGAIN and processes > 0:
            outcome["error"]["message"] += (
                f" (an execution may run at most {processes} processes at once)"
            )
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = _disk_hint(job.get("disks") or {}, exc)
            outcome["error"]["message"] += hint
            outcome["error"]["traceback"] = outcome["error"]["traceback"].rstrip("\n") + hint + "\n"
        return outcome
    return outcome_of(value, None, filename)
