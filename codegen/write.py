"""Write: format, verify and index the rendered package, then swap it into place.

Everything is written into a staging directory beside the output first. ruff
formats it once (not once per file), every module is verified, the search index
is built, and only then does the staging directory replace the old output. A
build that fails anywhere leaves the previous output exactly as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from ruff.__main__ import find_ruff_bin

from . import __version__
from .cache import BuildCache
from .diagnostics import BuildError, Diagnostics
from .index import INDEX_FILENAME, build_index
from .render import RenderedPackage
from .verify import verify_package

__all__ = ["format_python", "stage_package", "swap_into_place", "write_package"]

LINE_LENGTH = 100


def format_python(paths: list[Path], root: Path | None = None) -> None:
    """Sort imports and format `paths` with the pinned ruff, in isolated mode: two spawns at most.

    Raises:
        BuildError: ruff failed, which means a generated file is not valid Python;
            the message is ruff's own, with paths relative to `root`.
    """
    if not paths:
        return
    ruff = os.fsdecode(find_ruff_bin())
    common = [
        "--isolated",
        "--no-respect-gitignore",
        f"--line-length={LINE_LENGTH}",
        "--target-version=py311",
    ]
    for command in (
        [ruff, "check", *common, "--quiet", "--select=I", "--fix", "--exit-zero"],
        # Not --quiet: it would hide the reason of a failure ("Expected an indented block...").
        [ruff, "format", *common],
    ):
        # All paths in one command line: 10,000 of them fit well within ARG_MAX.
        done = subprocess.run(
            [*command, *map(str, paths)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            said = "\n".join(
                line
                for line in (done.stderr + "\n" + done.stdout).splitlines()
                if line.strip() and not line.startswith(("warning:", "1 file", "Found "))
            )
            if root is not None:
                said = said.replace(f"{root}{os.sep}", "")
            raise BuildError(
                f"ruff {command[1]} failed on the generated code (a bug of mcp-codegen; please "
                f"report it): {said[:4000] or f'exit status {done.returncode}'}"
            )


def stage_package(
    rendered: RenderedPackage, staging: Path, package: str, cache: BuildCache, state: str
) -> Diagnostics:
    """Write, format, verify and index `rendered` under `staging`, recording it in `cache`.

    Modules reused from the cache are written as they were: only fresh source is
    formatted and verified.

    Raises:
        BuildError: formatting or verification failed.
    """
    reused = set(rendered.known)
    fresh: list[Path] = []
    for relative, content in sorted(rendered.files.items()):
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            _link_or_copy(content, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="\n")
        if (
            relative.suffix == ".py"
            and relative not in reused
            and relative.parts[1:2] != ("_runtime",)
        ):
            fresh.append(path)
    format_python(fresh, staging)
    problems = verify_package(staging / package, package, fresh)
    if problems.errors:
        raise BuildError("generated code failed verification", problems)

    def final_bytes(relative: PurePosixPath) -> bytes:
        known = rendered.known.get(relative)
        return known if known is not None else (staging / relative).read_bytes()

    for tool in rendered.tools:
        cache.record(tool.key, tool.path, final_bytes(tool.path), tool.entry)
    for relative, key in rendered.keyed.items():
        cache.record(key, relative, final_bytes(relative))
    build_index(
        [tool.entry for tool in rendered.tools],
        staging / package / INDEX_FILENAME,
        generator_version=__version__,
    )
    cache.save(
        staging,
        state,
        {relative.as_posix(): content for relative, content in rendered.known.items()},
    )
    return problems


def _link_or_copy(source: Path, target: Path) -> None:
    # An unchanged module of the previous output: a hard link costs no write. Files
    # are never modified in place, so sharing them between the two trees is safe.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def swap_into_place(staging: Path, out: Path) -> None:
    """Replace `out` with `staging` (two renames), removing the old output after."""
    old: Path | None = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_package(
    rendered: RenderedPackage, out: Path, package: str, cache: BuildCache, state: str
) -> Diagnostics:
    """Stage `rendered`, then swap it in as `out`; on any failure leave `out` untouched.

    Raises:
        BuildError: the staged package failed formatting or verification.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the package is read by others (the sandbox)
    try:
        problems = stage_package(rendered, staging, package, cache, state)
        swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return problems
