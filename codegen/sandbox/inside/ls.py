"""`ls` inside the sandbox, in Python.

The host's GNU `ls` (coreutils 9) asks `statx` for flags that gVisor's ptrace
platform of the Debian package refuses ("Invalid argument"), so the sandbox's
`ls` is this: names one per line (or `-l` with type, size and name), `-a` for
dot files, `-R` for subdirectories, `-d` for a directory itself. Enough for an
agent's `ls /servers`; standard library only.
"""

from __future__ import annotations

import os
import stat
import sys

__all__ = ["main"]


def _line(path: str, name: str, long: bool) -> str:
    if not long:
        return name
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"?????????? {name} ({exc.strerror})"
    suffix = f" -> {os.readlink(path)}" if stat.S_ISLNK(info.st_mode) else ""
    return f"{stat.filemode(info.st_mode)} {info.st_size:>10} {name}{suffix}"


def _list(path: str, flags: set[str], out: list[str], heading: bool) -> int:
    long, every = "l" in flags, "a" in flags
    if "d" in flags or not os.path.isdir(path):
        if not os.path.lexists(path):
            print(f"ls: cannot access '{path}': No such file or directory", file=sys.stderr)
            return 2
        out.append(_line(path, path, long))
        return 0
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        print(f"ls: cannot open directory '{path}': {exc.strerror}", file=sys.stderr)
        return 2
    if not every:
        names = [name for name in names if not name.startswith(".")]
    if heading:
        out.append(f"{path}:")
    out.extend(_line(os.path.join(path, name), name, long) for name in names)
    status = 0
    if "R" in flags:
        for name in names:
            child = os.path.join(path, name)
            if os.path.isdir(child) and not os.path.islink(child):
                out.append("")
                status = max(status, _list(child, flags, out, True))
    return status


def main(argv: list[str] | None = None) -> None:
    """List the paths in `argv` (default: `.`) and exit with ls's status."""
    args = sys.argv[1:] if argv is None else argv
    flags = {char for arg in args if arg.startswith("-") and arg != "-" for char in arg[1:]}
    paths = [arg for arg in args if not arg.startswith("-") or arg == "-"] or ["."]
    out: list[str] = []
    status = 0
    for index, path in enumerate(paths):
        if index:
            out.append("")
        status = max(status, _list(path, flags, out, len(paths) > 1 or "R" in flags))
    if out:
        print("\n".join(out))
    raise SystemExit(status)


if __name__ == "__main__":
    main()
