"""The worker: the first process of a sandbox, warm and idle between executions.

It imports pydantic and the generated package once (not its tool modules: the
child imports the tools its code uses), then forks a spare child that drops to
the unprivileged user and waits for a job. An execution hands the job to the
spare, so it starts in a few milliseconds from clean process state.
While the child runs, the worker:

- captures its stdout and stderr (pipes), keeping the first `max_output` bytes;
- ends it at the deadline, when its output passes `output_kill_bytes`, or when
  the host says `cancel` (its caller went away).

When the child has closed its pipes (it does so as it exits, so the worker need
not wait for its tear-down), the worker answers the host with one result line,
kills every other process of the sandbox (as pid 1, `kill(-1)`), and a moment
later (at once when jobs come back to back; see `_SPARE_DELAY`) imports the tool
modules the child used (a bounded number: later executions of the session find
them imported) and forks the next spare. A child that dies or is killed
with its pipes still open (a process it forked holds them) is answered for after
the kill instead.

The channel to the host is the worker's stdin and stdout, one JSON line per
message, each starting with `W` (the messages are in `protocol`). The child cannot write there: its stdout is a
pipe to the worker, and the worker's descriptors belong to another user. The
child's tool calls go to the host on a channel of their own (the bridge socket,
see `codegen/runtime/bridge.py`), so they never pass through the worker.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import re
import resource
import selectors
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from . import runner
from .protocol import (
    FAILED_TO_REPORT,
    VALUE_LIMIT,
    ExecMessage,
    Job,
    Outcome,
    ResultMessage,
    Settings,
    WorkerMessage,
    decode_host_message,
    encode,
)

__all__ = ["learnable", "main"]

_HOST_IN = 0
_HOST_OUT = 1
_CHUNK = 1 << 16


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            selectors.DefaultSelector().select(0.01)
            continue
        view = view[written:]


def _send(message: WorkerMessage) -> None:
    _write_all(_HOST_OUT, encode(message))


@dataclass
class _Capture:
    """One output stream: the kept head and how much came in total."""

    limit: int
    kept: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - len(self.kept)
        if room > 0:
            self.kept += data[:room]

    def text(self, name: str) -> tuple[str, int]:
        cut = self.total - len(self.kept)
        text = self.kept.decode("utf-8", errors="replace")
        if cut:
            text += f"\n[... {cut} more bytes of {name} cut ...]\n"
        return text, cut


@dataclass
class _Child:
    """A forked child: its pid and the worker's ends of its pipes."""

    pid: int
    job: int
    stdout: int
    stderr: int
    outcome: int
    exited: int | None = None
    outcome_data: bytearray = field(default_factory=bytearray)
    open_fds: set[int] = field(default_factory=set)
    usage: Any = None
    """Its resource usage (`os.wait4`), once reaped: CPU time and peak memory for telemetry."""
    ended_fds: list[int] = field(default_factory=list)
    """Pipes at their end, still to unregister and close."""


def _drop_privileges(user: list[int] | None) -> None:
    if user is None:
        return
    uid, gid = user
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _child_main(job_fd: int, outcome_fd: int, settings: Settings) -> None:
    """The spare: get ready, wait for the job, run it, write the outcome, exit."""
    workspace = settings.get("workspace")
    if workspace:
        os.chdir(workspace)
    mapped = runner.prepare()  # while no job waits
    me = os.getpid()
    # Every system call costs ~0.1-0.4 ms under gVisor's ptrace platform: the job is
    # one line (JSON has no raw newline), so one read usually takes it all, and the
    # pipe is left open (the worker closes its end after the result).
    received = bytearray()
    while not received.endswith(b"\n"):
        data = os.read(job_fd, _CHUNK)
        if not data:
            os._exit(0)  # the worker is shutting down
        received += data
    job: Job = json.loads(received)
    package = settings.get("package")
    modules = len(sys.modules)
    outcome = runner.run_job(job, package, mapped)
    if os.getpid() != me:
        os._exit(0)  # a process the code forked: only the child reports
    # Only when the code imported something: walking the modules touches each name,
    # and every page touched first after the fork is a copy (slow under gVisor).
    if len(sys.modules) != modules:
        with contextlib.suppress(Exception):
            outcome["imported"] = _imported_tools(package)
    # The worker answers before it reaps this process (see below), so its CPU time and
    # peak memory come from here: its own, and of the processes it waited for.
    with contextlib.suppress(OSError):
        own, waited = (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
        cpu = own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime
        outcome["usage"] = [round(cpu, 6), max(own.ru_maxrss, waited.ru_maxrss)]
    data = json.dumps(outcome, ensure_ascii=False).encode("utf-8")
    # Every pipe to the worker is closed before the exit: the worker answers once all
    # three are at their end, without waiting for the process's tear-down (milliseconds
    # under gVisor). The outcome last, so the worker finds the others ended with it.
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        with contextlib.suppress(Exception):
            stream.flush()
        with contextlib.suppress(OSError):
            os.close(fd)
    _write_all(outcome_fd, data)
    os.close(outcome_fd)
    os._exit(0)


def _fork_spare(settings: Settings, close_in_child: list[int]) -> _Child:
    job_r, job_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            for fd in (null, out_w, err_w, job_w, out_r, err_r, res_r, *close_in_child):
                with contextlib.suppress(OSError):
                    os.close(fd)
            os.setsid()
            _drop_privileges(settings.get("user"))
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
            _child_main(job_r, res_w, settings)
            status = 0
        except MemoryError:
            status = FAILED_TO_REPORT
        except BaseException:
            with contextlib.suppress(BaseException):
                import traceback

                traceback.print_exc()
        finally:
            os._exit(status)
    for fd in (job_r, out_w, err_w, res_w):
        os.close(fd)
    for fd in (out_r, err_r, res_r):
        os.set_blocking(fd, False)
    return _Child(
        pid=pid,
        job=job_w,
        stdout=out_r,
        stderr=err_r,
        outcome=res_r,
        open_fds={out_r, err_r, res_r},
    )


_SPARE_DELAY = 0.02
"""Seconds between a result and the fork of the next spare, unless jobs come back to back.

Forking costs tens of milliseconds of CPU under gVisor's ptrace platform; started at
once it competes with the host forwarding the result (on 2 cores, warm executions
through `serve` 0.2 s apart: p90 57 -> 29 ms). A job that comes sooner forks its own."""
_BACK_TO_BACK = 0.05
"""A job this soon after the last result: the next spare is forked at once."""
_LEARN_PER_JOB = 32
"""Tool modules the worker imports after one execution (see `Worker._learn`)."""
_LEARN_LIMIT = 256
"""Tool modules the worker imports over its life, so its memory stays bounded."""
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REHEARSAL = encode(
    {
        "type": "exec",
        "id": "00000000",
        "code": "0",
        "filename": "<rehearsal>",
        "timeout": 30.0,
        "memory_mb": 512,
        "max_processes": 32,
        "max_output": 100_000,
        "output_kill_bytes": 16 * 1024 * 1024,
        "bridge": {"socket": "/bridge/socket", "token": "0" * 32},
        "disks": {"/tmp": {"mb": 256, "setting": "sandbox.limits.tmp_mb"}},
    }
).rstrip(b"\n")
"""A job line as the host sends one (see `Worker._rehearse`)."""


def _preload(settings: Settings) -> None:
    """Import what every execution needs, once, so forked children start warm.

    Not the tool modules: a package may hold thousands, and importing them all
    made a sandbox's start and memory grow with the catalog (10 s and 136 MiB
    at 3,243 tools). A child imports the tools its code uses (the server
    packages are lazy), and the worker learns them for later children.
    """
    for name in ("pydantic", "asyncio", "json", *settings.get("modules", ())):
        with contextlib.suppress(Exception):  # a policy package that fails raises in the code
            importlib.import_module(name)
    package = settings.get("package")
    if not package:
        return
    module = importlib.import_module(package)
    with contextlib.suppress(Exception):
        runtime = importlib.import_module(f"{package}._runtime.bridge")
        del runtime
    with contextlib.suppress(ImportError):
        importlib.import_module(f"{package}.servers")
    del module
    runner.install_alias(package)
    runner.install_skills(package)


def learnable(names: object, package: str, limit: int) -> list[str]:
    """The names in `names` of tool modules the worker may import: at most `limit`.

    `names` came from the agent's process, so it is anything: only strings
    naming a server package or tool module of the read-only package
    (`<package>.servers.<server>[.<tool>]`, identifiers) not imported yet count.
    """
    if not isinstance(names, list) or limit <= 0:
        return []
    prefix = f"{package}.servers."
    found: list[str] = []
    for name in names[: 8 * _LEARN_PER_JOB]:
        if len(found) >= limit:
            break
        if not isinstance(name, str) or not name.startswith(prefix) or name in sys.modules:
            continue
        parts = name[len(prefix) :].split(".")
        if len(parts) <= 2 and all(
            _IDENTIFIER.fullmatch(part) and not part.startswith("__") for part in parts
        ):
            found.append(name)
    return found


def _imported_tools(package: str | None) -> list[str]:
    """The package's server and tool modules this process has imported."""
    if not package:
        return []
    prefix = f"{package}.servers."
    return [name for name in list(sys.modules) if name.startswith(prefix)]


class Worker:
    """The worker's event loop: one execution at a time."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.selector = selectors.DefaultSelector()
        self.inbox = bytearray()
        self.child: _Child | None = None
        self.spare: _Child | None = None
        self.job: ExecMessage | None = None
        self.deadline = 0.0
        self.started = 0.0
        self.kill_reason: Literal["timeout", "output", "cancelled"] | None = None
        self.captures: dict[str, _Capture] = {}
        self.learned = 0
        """Tool modules imported by `_learn` so far."""
        self.answered = 0.0
        """When the last result was sent (monotonic)."""
        self.back_to_back = False
        self.spare_due = 0.0
        """When the next spare is to be forked (0: not waiting for that)."""
        self.to_learn: object = None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        os.set_blocking(_HOST_IN, False)
        self.selector.register(_HOST_IN, selectors.EVENT_READ, "host")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")

    def _shared_fds(self) -> list[int]:
        return [self.wake_r, self.wake_w, self.selector.fileno()]

    def _fork_spare(self, rehearse: bool = True) -> _Child:
        """A new spare, its pipes watched already (not on the path of its job); then,
        unless a job waits for it, `_rehearse`."""
        spare = _fork_spare(self.settings, self._shared_fds())
        for fd, name in ((spare.stdout, "stdout"), (spare.stderr, "stderr")):
            self.selector.register(fd, selectors.EVENT_READ, name)
        self.selector.register(spare.outcome, selectors.EVENT_READ, "outcome")
        if rehearse:
            with contextlib.suppress(Exception):  # only ever a rehearsal
                self._rehearse()
        return spare

    def _rehearse(self) -> None:
        """Walk the worker's part of a job once, with a made-up one, right after a fork.

        After a fork every page the worker writes is copied first, and under gVisor's
        ptrace platform each copy is a fault the sentry handles: the next job's path
        (decode, hand-over, result) spent 1.5-4 ms in them. Done now, while the worker
        is idle, the copies are off that path (measured: job read -> handed to the
        spare 4.2 -> 0.2 ms p50). The job is made up, so no real job's text lingers.
        """
        message = decode_host_message(_REHEARSAL)
        assert message is not None and message["type"] == "exec"
        saved = self.job, self.captures, self.started
        try:
            self.job = message
            self.captures = {"stdout": _Capture(100), "stderr": _Capture(100)}
            self.started = time.monotonic()
            json.dumps(message, ensure_ascii=False).encode("utf-8")
            self.captures["stdout"].add(b"0\n")
            child = _Child(pid=0, job=-1, stdout=-1, stderr=-1, outcome=-1)
            child.outcome_data += b'{"value": 0, "repr": "0", "usage": [0.001, 1024]}'
            result, _ = self._result(child)
            encode(result)
        finally:
            self.job, self.captures, self.started = saved

    def _from_spare(self, fd: int) -> None:
        """The spare wrote before its job (dropped) or is ending (its reaping closes it)."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)  # else reported again until the reaping

    def run(self) -> None:
        """Serve until the host closes the channel or says `shutdown`."""
        self.spare = self._fork_spare()
        _send({"type": "ready", "pid": os.getpid()})
        while True:
            timeout = None
            if self.child is not None:
                timeout = max(0.0, self.deadline - time.monotonic())
            elif self.spare_due:
                timeout = max(0.0, self.spare_due - time.monotonic())
            for key, _mask in self.selector.select(timeout):
                if key.data == "host" and not self._from_host():
                    return
                if key.data == "wake":
                    self._reap()
                elif key.data in ("stdout", "stderr", "outcome"):
                    if self.child is not None and key.fd in self.child.open_fds:
                        self._read_output(key.fd, key.data)
                    else:
                        self._from_spare(key.fd)
            child = self.child
            if child is None:
                if self.spare_due and time.monotonic() >= self.spare_due and self.spare is None:
                    self.spare = self._next_spare()
                continue
            if child.ended_fds and child.open_fds:
                # The child closes its three pipes one after the other as it ends: one
                # at its end, the others likely are too. Reading them now saves a round
                # of the loop each (slow under gVisor).
                for fd in list(child.open_fds):
                    self._read_output(fd, self._name_of(child, fd))
            if child.exited is None and time.monotonic() >= self.deadline:
                self.kill_reason = "timeout"
                self._kill_child()
            if child.exited is not None or (child.outcome_data and not child.open_fds):
                self._finish()
            else:
                self._close_ended(child)

    # --- the host side -------------------------------------------------------

    def _from_host(self) -> bool:
        try:
            data = os.read(_HOST_IN, _CHUNK)
        except BlockingIOError:
            return True
        if not data:
            return False
        self.inbox += data
        while True:
            end = self.inbox.find(b"\n")
            if end < 0:
                return True
            line = bytes(self.inbox[:end])
            del self.inbox[: end + 1]
            if not self._command(line):
                return False

    def _command(self, line: bytes) -> bool:
        message = decode_host_message(line)
        if message is None:
            return True
        if message["type"] == "shutdown":
            return False
        if message["type"] == "cancel":
            # The caller went away: end the job now; its result says "cancelled".
            if self.child is not None and self.child.exited is None and not self.kill_reason:
                self.kill_reason = "cancelled"
                self._kill_child()
            return True
        self._start(message)
        return True

    # --- one execution -------------------------------------------------------

    def _start(self, job: ExecMessage) -> None:
        if self.child is not None:
            _send({"type": "result", "id": job.get("id"), "busy": True})
            return
        self.back_to_back = 0 < time.monotonic() - self.answered < _BACK_TO_BACK
        child = self.spare or self._next_spare(rehearse=False)
        self.spare = None
        self.child = child
        self.job = job
        self.kill_reason = None
        limit = int(job.get("max_output") or 100_000)
        self.captures = {"stdout": _Capture(limit), "stderr": _Capture(limit)}
        self.started = time.monotonic()
        self.deadline = self.started + float(job.get("timeout") or 30.0)
        # One line, left open (see `_child_main`). A spare that died makes this fail;
        # its SIGCHLD wakes the loop, which reaps it and answers.
        with contextlib.suppress(OSError):
            _write_all(child.job, json.dumps(job, ensure_ascii=False).encode("utf-8") + b"\n")

    def _read_output(self, fd: int, name: str) -> None:
        child = self.child
        if child is None:
            return
        for _ in range(64):  # then back to the loop, so a flood cannot starve the deadline
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                # Closed after the result is sent, or at the end of this round of the loop.
                if fd in child.open_fds:
                    child.open_fds.discard(fd)
                    child.ended_fds.append(fd)
                return
            if name == "outcome":
                if len(child.outcome_data) < 4 * VALUE_LIMIT + 65536:
                    child.outcome_data += data
                continue
            self.captures[name].add(data)
            flood = sum(capture.total for capture in self.captures.values())
            limit = self.job.get("output_kill_bytes") if self.job else None
            if flood > int(limit or 1 << 60) and not self.kill_reason:
                self.kill_reason = "output"
                self._kill_child()
                return

    def _kill_child(self) -> None:
        child = self.child
        if child is None:
            return
        with contextlib.suppress(OSError):
            os.kill(child.pid, signal.SIGKILL)
        self._kill_rest()

    def _kill_rest(self) -> None:
        """Kill everything the execution left behind (only pid 1 may use kill(-1))."""
        child = self.child
        if os.getpid() == 1:
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)
        elif child is not None:
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)

    def _reap(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.wake_r, 512):
                pass
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.child is not None and pid == self.child.pid:
                self.child.exited = status
                self.child.usage = usage
            elif self.spare is not None and pid == self.spare.pid:
                self._close(self.spare)
                self.spare = None

    @staticmethod
    def _name_of(child: _Child, fd: int) -> str:
        return {child.stdout: "stdout", child.stderr: "stderr"}.get(fd, "outcome")

    def _close_ended(self, child: _Child) -> None:
        """Unregister and close the pipes at their end (a level-triggered selector would
        report them again at once)."""
        for fd in child.ended_fds:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        child.ended_fds.clear()

    def _close(self, child: _Child) -> None:
        child.ended_fds += child.open_fds
        child.open_fds.clear()
        self._close_ended(child)
        with contextlib.suppress(OSError):
            os.close(child.job)

    def _drain(self, child: _Child) -> None:
        """Read what is left in the pipes once every writer is dead (bounded wait)."""
        end = time.monotonic() + 1.0
        while child.open_fds and time.monotonic() < end:
            for fd in list(child.open_fds):
                self._read_output(fd, self._name_of(child, fd))
            if child.open_fds:
                time.sleep(0.002)

    def _finish(self) -> None:
        child = self.child
        assert child is not None
        # With every pipe at its end nothing more can come: answer first. The processes
        # the job left are killed right after, before the worker reads another command.
        ended = not child.open_fds
        if not ended:
            self._kill_rest()
            self._drain(child)
        self.child = None
        result, imported = self._result(child)
        _send(result)
        self._close(child)
        if ended:
            self._kill_rest()
        self._reap()
        self.answered = time.monotonic()
        self.to_learn = imported
        if self.back_to_back:
            self.spare = self._next_spare()
        else:
            self.spare_due = self.answered + _SPARE_DELAY

    def _next_spare(self, rehearse: bool = True) -> _Child:
        """Import what the last job used (see `_learn`), then fork the next spare."""
        self.spare_due = 0.0
        names, self.to_learn = self.to_learn, None
        self._learn(names)
        return self._fork_spare(rehearse)

    def _learn(self, names: object) -> None:
        """Import the tool modules the last execution used, so later children have them."""
        package = self.settings.get("package")
        if not package:
            return
        wanted = learnable(names, package, min(_LEARN_PER_JOB, _LEARN_LIMIT - self.learned))
        self.learned += len(wanted)
        for name in wanted:
            with contextlib.suppress(Exception):  # a module that fails is the code's error
                importlib.import_module(name)

    def _result(self, child: _Child) -> tuple[ResultMessage, object]:
        """The result for the host, and the tool modules the child said it imported."""
        stdout, stdout_cut = self.captures["stdout"].text("stdout")
        stderr, stderr_cut = self.captures["stderr"].text("stderr")
        result: ResultMessage = {
            "type": "result",
            "id": self.job.get("id") if self.job else None,
            "stdout": stdout,
            "stderr": stderr,
            "stdout_cut": stdout_cut,
            "stderr_cut": stderr_cut,
            "seconds": time.monotonic() - self.started,
        }
        if child.usage is not None:
            # The child's own, and of the processes it waited for (Linux and gVisor alike).
            result["cpu_seconds"] = round(child.usage.ru_utime + child.usage.ru_stime, 6)
            result["max_rss_kb"] = child.usage.ru_maxrss
        outcome: Outcome | None = None
        imported: object = None
        if child.outcome_data:
            with contextlib.suppress(ValueError):
                outcome = json.loads(child.outcome_data)
        if isinstance(outcome, dict):
            imported = outcome.pop("imported", None)
            usage = outcome.pop("usage", None)
            if child.usage is None and isinstance(usage, list) and len(usage) == 2:
                result["cpu_seconds"], result["max_rss_kb"] = float(usage[0]), int(usage[1])
        if self.kill_reason is not None:
            result["killed"] = self.kill_reason
        elif isinstance(outcome, dict):
            result["outcome"] = outcome
        else:
            status = child.exited or 0
            if os.WIFSIGNALED(status):
                result["died"] = {"signal": os.WTERMSIG(status)}
            else:
                result["died"] = {"status": os.WEXITSTATUS(status)}
        return result, imported


def main(argv: list[str] | None = None) -> None:
    """Start the worker with the JSON settings in `argv[1]`."""
    args = sys.argv if argv is None else argv
    settings: Settings = json.loads(args[1])
    inside_root = sys.path[0]
    sys.path[:] = [*settings.get("sys_path", []), *sys.path[1:]]
    try:
        _preload(settings)
    except BaseException as exc:
        _send({"type": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None
    del inside_root
    try:
        Worker(settings).run()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
