"""The messages between the host and a sandbox's worker, and how they travel.

The host starts the worker with its `Settings` (JSON, the last argument). Then
each side writes one JSON object per line, prefixed with `W`: the host on the
worker's stdin (`exec` with a `Job`, `cancel`, `shutdown`), the worker on its stdout
(`ready`, `failed`, `result`). The worker hands a job to a forked child, which
writes its `Outcome` back to the worker; the worker sends it in the `Result`.

Standard library only: the worker imports this inside the sandbox (as part of
`_mcp_codegen_inside`), the host as `codegen.sandbox.inside.protocol`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Required, TypedDict, cast

__all__ = [
    "FAILED_TO_REPORT",
    "LINE_PREFIX",
    "MAX_DIRECT",
    "VALUE_LIMIT",
    "BridgeAddress",
    "CancelMessage",
    "Died",
    "DirectConnection",
    "DiskQuota",
    "ErrorInfo",
    "ExecMessage",
    "FailedMessage",
    "HostMessage",
    "Job",
    "Outcome",
    "ReadyMessage",
    "ResultMessage",
    "Settings",
    "ShutdownMessage",
    "WorkerMessage",
    "decode_host_message",
    "decode_worker_message",
    "encode",
    "exec_message",
]

LINE_PREFIX = b"W"
"""The first byte of every protocol line; other output on the channel is ignored."""

FAILED_TO_REPORT = 86
"""Exit status of a child that could not even write its outcome (e.g. out of memory)."""

MAX_DIRECT = 100
"""Direct connection attempts an outcome lists."""

VALUE_LIMIT = 100_000
"""Characters of a value's repr (or JSON), a message or a traceback kept in an outcome."""


class Settings(TypedDict):
    """How the worker starts (the JSON in its last argument)."""

    sys_path: list[str]
    package: str | None
    """The generated import package, imported (not its tools) and aliased as `servers`."""
    workspace: str
    """The directory the code runs in."""
    user: list[int] | None
    """[uid, gid] the child drops to, or None to stay."""
    modules: NotRequired[list[str]]
    """More modules to import before the first job (the policy's packages)."""


class BridgeAddress(TypedDict):
    """Where the code's tool calls go: the host's bridge socket, and this execution's token."""

    socket: str
    token: str


class DiskQuota(TypedDict):
    """The size of one of the sandbox's file systems, for the message when it is full."""

    mb: int
    setting: str
    """What sets it (`sandbox.limits.tmp_mb`)."""


class Job(TypedDict):
    """One execution: the code and its limits."""

    id: str
    code: str
    filename: str
    timeout: float
    memory_mb: int
    max_processes: int
    max_output: int
    """Bytes of stdout, and of stderr, kept."""
    output_kill_bytes: int
    """Output past which the child is killed."""
    bridge: BridgeAddress
    egress: NotRequired[BridgeAddress]
    """The host's egress proxy and this execution's token, when the policy allows hosts."""
    disks: NotRequired[dict[str, DiskQuota]]
    """The quotas of the sandbox's file systems, by mount point."""


class ExecMessage(Job):
    """Host -> worker: run this job."""

    type: Literal["exec"]


class CancelMessage(TypedDict):
    """Host -> worker: kill the running job and every process it made, then answer its result."""

    type: Literal["cancel"]


class ShutdownMessage(TypedDict):
    """Host -> worker: exit."""

    type: Literal["shutdown"]


class ReadyMessage(TypedDict):
    """Worker -> host: prepared, with a spare child forked."""

    type: Literal["ready"]
    pid: int


class FailedMessage(TypedDict):
    """Worker -> host: the worker could not prepare (e.g. the package does not import)."""

    type: Literal["failed"]
    error: str


class ErrorInfo(TypedDict):
    """An exception the code raised."""

    type: str
    message: str
    traceback: str


class DirectConnection(TypedDict):
    """A connection the code tried without the proxy (the sandbox has no route for it)."""

    host: str
    port: int


class Outcome(TypedDict, total=False):
    """Child -> worker: the value of the code's last expression, or its error; {} for none."""

    repr: str
    value: Any
    """The value as JSON, when it is JSON-able and small enough."""
    error: ErrorInfo
    connections: list[DirectConnection]
    """Connections the code tried to open directly (at most `MAX_DIRECT`)."""
    imported: list[str]
    """The package's server and tool modules the child had imported (child -> worker
    only: the worker imports them for later children and removes this field)."""
    usage: list[float]
    """[CPU seconds, peak memory in KiB] of the child and the processes it waited for
    (child -> worker only: the worker answers before it reaps the child)."""


class Died(TypedDict, total=False):
    """How a child ended without an outcome: a signal, or an exit status."""

    signal: int
    status: int


class ResultMessage(TypedDict, total=False):
    """Worker -> host: what one job did."""

    type: Required[Literal["result"]]
    id: Required[str | None]
    busy: bool
    """The worker was still running another job; nothing else is set."""
    stdout: str
    stderr: str
    stdout_cut: int
    stderr_cut: int
    seconds: float
    cpu_seconds: float
    """User + system CPU time of the job's processes that the worker reaped."""
    max_rss_kb: int
    """Peak resident set of the job's process (and the processes it waited for), in KiB."""
    killed: Literal["timeout", "output", "cancelled"]
    """Why the worker killed the child, if it did."""
    outcome: Outcome
    died: Died


HostMessage = ExecMessage | CancelMessage | ShutdownMessage
WorkerMessage = ReadyMessage | FailedMessage | ResultMessage

_HOST_TYPES = frozenset({"exec", "cancel", "shutdown"})
_WORKER_TYPES = frozenset({"ready", "failed", "result"})


def exec_message(job: Job) -> ExecMessage:
    """The `exec` message that carries `job`."""
    message: dict[str, Any] = {"type": "exec", **job}
    return cast(ExecMessage, message)


def encode(message: Mapping[str, Any]) -> bytes:
    """One protocol line: the prefix, the message as JSON, a newline."""
    return LINE_PREFIX + json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"


def _decode(line: bytes, types: frozenset[str]) -> dict[str, Any] | None:
    if not line.startswith(LINE_PREFIX):
        return None
    try:
        message = json.loads(line[len(LINE_PREFIX) :])
    except (ValueError, RecursionError):  # not JSON, or nested past the decoder's guard
        return None
    if not isinstance(message, dict) or message.get("type") not in types:
        return None
    return message


def decode_host_message(line: bytes) -> HostMessage | None:
    """The host's message on `line` (without its newline), or None for any other line."""
    return cast("HostMessage | None", _decode(line, _HOST_TYPES))


def decode_worker_message(line: bytes) -> WorkerMessage | None:
    """The worker's message on `line` (without its newline), or None for any other line.

    Only the prefix, the JSON and the `type` are checked: the host reads every
    other field defensively, as text from inside a sandbox.
    """
    return cast("WorkerMessage | None", _decode(line, _WORKER_TYPES))
