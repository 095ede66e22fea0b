"""The shared libraries an interpreter and its extension modules need, found fast.

`ldd` runs the loader once per file (~25 ms each, seconds for a whole
`lib-dynload`), so it is asked only once, about the interpreter, to learn where
this system keeps its libraries. Every other file's `DT_NEEDED` entries are read
from its ELF dynamic section and looked up in its `RUNPATH` and those directories,
recursively.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .errors import SandboxError

__all__ = ["needed_libraries"]

_DT_NEEDED = 1
_DT_STRTAB = 5
_DT_RPATH = 15
_DT_RUNPATH = 29
_PT_LOAD = 1
_PT_DYNAMIC = 2
_FALLBACK_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)


def _dynamic(path: Path) -> tuple[list[str], list[str]]:
    """(DT_NEEDED names, RUNPATH/RPATH directories) of a 64-bit little-endian ELF file."""
    try:
        data = path.read_bytes()
    except OSError:
        return [], []
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return [], []
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads: list[tuple[int, int, int]] = []
    dynamic: tuple[int, int] | None = None
    for index in range(phnum):
        kind, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + index * phentsize
        )
        if kind == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return [], []
    entries: list[tuple[int, int]] = []
    for position in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, position)
        if tag == 0:
            break
        entries.append((tag, value))
    strtab_address = next((value for tag, value in entries if tag == _DT_STRTAB), None)
    if strtab_address is None:
        return [], []
    strtab = next(
        (
            offset + strtab_address - vaddr
            for vaddr, offset, size in loads
            if vaddr <= strtab_address < vaddr + size
        ),
        strtab_address,
    )

    def text(offset: int) -> str:
        end = data.index(b"\0", strtab + offset)
        return data[strtab + offset : end].decode("utf-8", "replace")

    needed = [text(value) for tag, value in entries if tag == _DT_NEEDED]
    paths: list[str] = []
    for tag, value in entries:
        if tag in (_DT_RPATH, _DT_RUNPATH):
            origin = str(path.parent)
            paths += [p.replace("$ORIGIN", origin) for p in text(value).split(":") if p]
    return needed, paths


def _system_dirs(interpreter: Path) -> tuple[list[str], dict[str, Path]]:
    """Directories this system's loader finds libraries in, and what it found for `interpreter`.

    Raises:
        SandboxError: `ldd` is missing or fails on the interpreter.
    """
    ldd = shutil.which("ldd")
    if ldd is None:
        raise SandboxError("`ldd` was not found; it is needed to find the interpreter's libraries")
    run = subprocess.run([ldd, str(interpreter)], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SandboxError(
            f"`ldd {interpreter}` failed: {run.stderr.strip() or run.stdout.strip()}"
        )
    found: dict[str, Path] = {}
    for line in run.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (", 1)[0]
        elif line.startswith("/") and " (" in line:
            target = line.split(" (", 1)[0]
        else:
            continue
        if target.startswith("/"):
            found[target] = Path(target).resolve()
    dirs = list(dict.fromkeys(str(Path(p).parent) for p in found))
    return [*dirs, *(d for d in _FALLBACK_DIRS if d not in dirs)], found


def needed_libraries(interpreter: Path, files: Iterable[Path]) -> dict[str, Path]:
    """Every shared library `interpreter` and `files` load: path looked up -> real file.

    Raises:
        SandboxError: `ldd` is missing or fails on the interpreter.
    """
    search, found = _system_dirs(interpreter)
    by_name = {Path(looked_up).name: looked_up for looked_up in found}
    todo = [Path(f) for f in files]
    seen: set[Path] = set()
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        needed, runpath = _dynamic(file)
        for name in needed:
            if name in by_name:
                continue
            for directory in (*runpath, *search):
                candidate = os.path.join(directory, name)
                if os.path.exists(candidate):
                    by_name[name] = candidate
                    found[candidate] = Path(candidate).resolve()
                    todo.append(found[candidate])
                    break
    return found
