"""The session's state directory: host files that outlive executions and sandboxes.

Mounted read-write at `/state` in gVisor (`$MCP_CODEGEN_STATE_DIR` says where), so
a long task can checkpoint there and a later execution resume, even in a new
sandbox. The executor makes a private one per session and deletes it with the
session, unless it was given a path to keep.
"""

from __future__ import annotations

import os
from pathlib import Path

from .bundle import SANDBOX_USER, STATE_MOUNT
from .errors import SandboxError

__all__ = ["STATE_MOUNT", "prepare_state_dir"]


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
