"""The session's state directory, `/state`: files that outlive executions and sandboxes.

Each session gets a tmpfs of its own, mounted on the host (`size=` and
`nr_inodes=` from its `Quotas`, `nosuid,nodev,noexec`) and bound read-write at
`/state` in gVisor, so a long task can checkpoint there and a later execution
resume, even in a new sandbox. A write past either bound fails in the code with
ENOSPC (measured with runsc: the bind passes the host's error through), and
nothing reaches the host's disk. The mount is undone when the session ends.

`run`/`exec --state DIR` keep the state: DIR is copied into the tmpfs at the
start and back at the end. Both copies take only what a state may hold:
directories, regular files (with their permission bits, never setuid, setgid or
sticky) and symlinks as links (never followed); device files, FIFOs and sockets
are left out. DIR must be new, empty, or a state kept before (it holds a marker).

Mounting needs root (as gVisor does without `--rootless`). Without it, `/state`
is a plain directory with no quota, and a warning says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .bundle import SANDBOX_USER, STATE_MOUNT
from .errors import SandboxError
from .quotas import Quotas

__all__ = [
    "KEPT_MARKER",
    "STATE_MOUNT",
    "StateDir",
    "close_state",
    "copy_state",
    "open_state",
    "prepare_state_dir",
    "unmount",
]

KEPT_MARKER = ".mcp-codegen-state"
"""The file that marks a directory as a state kept by `--state`."""
_MAX_DEPTH = 100
_log = logging.getLogger(__name__)


@dataclass
class StateDir:
    """One session's `/state` on the host."""

    path: Path
    """What is bound at `/state`: the tmpfs's mount point (or a plain directory)."""
    mounted: bool
    """Whether `path` is a size-limited tmpfs this process mounted."""
    keep: Path | None = None
    """The directory copied in at the start and out at the end, if any."""


def prepare_state_dir(path: Path, *, for_sandbox_user: bool) -> Path:
    """Make `path` (if missing) a directory the code may write, and return it resolved.

    With `for_sandbox_user` (gVisor, where the code runs as uid 65534) and when
    running as root, the directory itself (not its contents) is given to that
    user with mode 0700; otherwise the code runs as the host's user and owns it.

    Raises:
        SandboxError: it cannot be made or handed over.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = path.resolve()
        if for_sandbox_user and os.geteuid() == 0:
            uid, gid = SANDBOX_USER
            if path.stat().st_uid != uid:
                os.chown(path, uid, gid)
            os.chmod(path, 0o700)
    except OSError as exc:
        raise SandboxError(f"the state directory {path} cannot be prepared: {exc}") from None
    if not path.is_dir():
        raise SandboxError(f"the state directory {path} is not a directory")
    return path


def _mount_tmpfs(path: Path, quotas: Quotas, for_sandbox_user: bool) -> bool:
    """Mount a tmpfs of the quota's size at `path`; False if this process may not mount."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    uid, gid = SANDBOX_USER if for_sandbox_user else (os.getuid(), os.getgid())
    options = (
        f"size={quotas.state_mb}m,nr_inodes={quotas.state_files},mode=0700,"
        f"uid={uid},gid={gid},nosuid,nodev,noexec"
    )
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "mcp-codegen-state", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if run.returncode != 0:
        _log.warning("cannot mount a tmpfs for /state: %s", run.stderr.strip()[-300:])
        return False
    return True


def unmount(path: Path) -> None:
    """Undo a mount at `path` (lazily, if something still holds it); errors are ignored."""
    for command in (["umount", str(path)], ["umount", "-l", str(path)]):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            if (
                subprocess.run(command, capture_output=True, timeout=30, check=False).returncode
                == 0
            ):
                return


def _check_keep(keep: Path) -> None:
    """Refuse a `--state` directory that holds files this code did not put there.

    Raises:
        SandboxError: it is not a directory, or is neither empty nor a kept state.
    """
    if keep.is_symlink() or (keep.exists() and not keep.is_dir()):
        raise SandboxError(f"--state {keep}: not a directory")
    if keep.is_dir() and not (keep / KEPT_MARKER).is_file():
        with contextlib.suppress(OSError):
            if any(keep.iterdir()):
                raise SandboxError(
                    f"--state {keep}: the directory is not empty and was not made by --state; "
                    "pass a new or empty directory"
                )


def open_state(
    path: Path, quotas: Quotas, *, keep: Path | None, for_sandbox_user: bool, bounded: bool = True
) -> StateDir:
    """Make the session's `/state` at `path`: a tmpfs of the quota's size, filled from `keep`.

    Raises:
        SandboxError: `keep` is not usable, or does not fit the quota, or `path`
            cannot be made.
    """
    if keep is not None:
        _check_keep(keep)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxError(f"the state directory {path} cannot be made: {exc}") from None
    mounted = bounded and _mount_tmpfs(path, quotas, for_sandbox_user)
    if bounded and not mounted:
        _log.warning(
            "/state has no quota: mounting its tmpfs needs root; it is a plain directory %s", path
        )
    state = StateDir(prepare_state_dir(path, for_sandbox_user=for_sandbox_user), mounted, keep)
    if keep is not None and keep.is_dir():
        owner = SANDBOX_USER if for_sandbox_user and os.geteuid() == 0 else None
        try:
            copy_state(keep, state.path, owner=owner)
        except OSError as exc:
            close_state(state, copy_out=False)
            raise SandboxError(
                f"--state {keep} cannot be copied into /state (quota {quotas.state_mb} MiB, "
                f"{quotas.state_files} files): {exc}"
            ) from None
    return state


def close_state(state: StateDir, *, copy_out: bool = True) -> None:
    """End the session's `/state`: copy it out to `keep` (if any), then unmount it.

    The sandboxes that wrote it must be gone. A failed copy is logged, not raised:
    the session is over either way.
    """
    if copy_out and state.keep is not None:
        try:
            _replace_keep(state.path, state.keep)
        except OSError as exc:
            _log.warning("the state could not be kept in %s: %s", state.keep, exc)
    if state.mounted:
        unmount(state.path)
        state.mounted = False


def _replace_keep(source: Path, keep: Path) -> None:
    """Make `keep` hold exactly what `source` holds (sanitized), swapping in a full copy."""
    keep.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    staging = keep.parent / f".{keep.name}.new-{token}"
    staging.mkdir(mode=0o700)
    try:
        copy_state(source, staging, owner=None)
        (staging / KEPT_MARKER).write_text("kept by mcp-codegen --state\n", encoding="utf-8")
        os.chmod(staging, 0o700)
        if keep.exists():
            old = keep.parent / f".{keep.name}.old-{token}"
            os.rename(keep, old)
            os.rename(staging, keep)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, keep)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def copy_state(source: Path, target: Path, *, owner: tuple[int, int] | None) -> None:
    """Copy the tree `source` into the existing directory `target`, keeping only what a
    state may hold (see the module's docstring); `owner` gets every copy.

    Iterative and without following any symlink, so a hostile tree (deep, or
    linking outside) costs no recursion and reaches no other file.

    Raises:
        OSError: something could not be read or written (e.g. the target is full).
    """
    todo: list[tuple[Path, Path, int]] = [(source, target, 0)]
    while todo:
        directory, into, depth = todo.pop()
        with os.scandir(directory) as entries:
            listed = list(entries)
        for entry in listed:
            if entry.name == KEPT_MARKER and directory == source:
                continue
            info = entry.stat(follow_symlinks=False)
            destination = into / entry.name
            mode = stat.S_IMODE(info.st_mode) & 0o777  # no setuid, setgid or sticky bit
            if stat.S_ISDIR(info.st_mode):
                if depth >= _MAX_DEPTH:
                    _log.warning("state: %s is nested too deeply and was left out", entry.path)
                    continue
                destination.mkdir(mode=0o700)
                todo.append((Path(entry.path), destination, depth + 1))
            elif stat.S_ISREG(info.st_mode):
                _copy_file(Path(entry.path), destination, mode)
            elif stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(entry.path), destination)
            else:
                continue  # devices, FIFOs, sockets: never copied
            if owner is not None:
                os.chown(destination, *owner, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                os.chmod(destination, mode | (0o700 if stat.S_ISDIR(info.st_mode) else 0))


def _copy_file(source: Path, destination: Path, mode: int) -> None:
    flags_in = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    flags_out = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    reading = os.open(source, flags_in)
    try:
        writing = os.open(destination, flags_out, mode | 0o600)
        try:
            while chunk := os.read(reading, 1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(writing, view) :]
        finally:
            os.close(writing)
    finally:
        os.close(reading)
