"""Write: format, verify and index the rendered package, then swap it into place.

Everything is written into a staging directory beside the output first. ruff
formats it once (not once per file), every module is verified (tool modules
already were, as they were rendered: see `toolmodule`), the search index is
built (in a forked process beside the rest, for large packages), and only then
does the staging directory replace the old output. A build that fails anywhere
leaves the previous output exactly as it was. Unchanged modules are hard links
to the previous output's files, which are never modified in place.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.process
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ruff.__main__ import find_ruff_bin

from . import __version__
from .cache import BuildCache, sha256_file
from .diagnostics import BuildError, Diagnostics
from .index import INDEX_FILENAME, IndexBuildError, IndexEntry, build_index
from .render import RenderedPackage
from .toolmodule import PARALLEL_THRESHOLD, worker_count
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

    Modules reused from the cache are linked as they were: only fresh source is
    formatted, and verified unless it is a tool module (verified when rendered).

    Raises:
        BuildError: formatting or verification failed.
    """
    root = str(staging)
    index = _IndexBuild([tool.entry for tool in rendered.tools], staging / package / INDEX_FILENAME)
    try:
        return _stage(rendered, staging, root, package, cache, state, index)
    finally:
        index.stop()


def _stage(
    rendered: RenderedPackage,
    staging: Path,
    root: str,
    package: str,
    cache: BuildCache,
    state: str,
    index: _IndexBuild,
) -> Diagnostics:
    # Tool modules were verified as they were rendered (see `toolmodule`); the rest here.
    modules = {tool.path for tool in rendered.tools}
    hashes: dict[str, str] = {name.as_posix(): sha for name, sha in rendered.known.items()}
    fresh: list[str] = []
    unverified: list[Path] = []
    for folder in sorted({os.path.dirname(name.as_posix()) for name in rendered.files}):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for relative, content in rendered.files.items():
        name = relative.as_posix()
        path = os.path.join(root, name)
        if isinstance(content, Path):
            _link_or_copy(content, path)
            continue
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        with open(path, "wb") as file:
            file.write(data)
        if name.endswith(".py") and relative.parts[1:2] != ("_runtime",):
            fresh.append(path)  # hashed once ruff has formatted it
            if relative not in modules:
                unverified.append(Path(path))
        else:
            hashes[name] = hashlib.sha256(data).hexdigest()
    format_python([Path(path) for path in sorted(fresh)], staging)
    problems = verify_package(staging / package, package, unverified)
    if problems.errors:
        raise BuildError("generated code failed verification", problems)
    for path in fresh:
        hashes[os.path.relpath(path, root).replace(os.sep, "/")] = sha256_file(path)
    for tool in rendered.tools:
        cache.record(tool.key, tool.path, hashes[tool.path.as_posix()], tool.entry)
    for relative, key in rendered.keyed.items():
        cache.record(key, relative, hashes[relative.as_posix()])
    index.wait()
    cache.save(staging, state, hashes)
    return problems


class _IndexBuild:
    """The search index, built beside the rest of the staging: in a forked process if large.

    Writing ten thousand files and formatting them leaves a core free most of
    the time; the index (a second at 10,000 tools) fills it.
    """

    def __init__(self, entries: list[IndexEntry], path: Path):
        self._process: multiprocessing.process.BaseProcess | None = None
        if len(entries) < PARALLEL_THRESHOLD or worker_count() < 2 or not hasattr(os, "fork"):
            build_index(entries, path, generator_version=__version__)
            return
        context = multiprocessing.get_context("fork")
        self._errors = context.SimpleQueue()
        self._process = context.Process(
            target=_index_child, args=(entries, path, self._errors), name="mcp-codegen-index"
        )
        self._process.start()

    def wait(self) -> None:
        """Wait for the index to be written.

        Raises:
            IndexBuildError: it could not be.
        """
        process, self._process = self._process, None
        if process is None:
            return
        process.join()
        if process.exitcode != 0:
            said = self._errors.get() if not self._errors.empty() else ""
            raise IndexBuildError(said or f"the index process ended with status {process.exitcode}")

    def stop(self) -> None:
        """End the index process if the staging failed before waiting for it."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.join()


def _index_child(entries: list[IndexEntry], path: Path, errors: Any) -> None:
    try:
        build_index(entries, path, generator_version=__version__)
    except Exception as exc:  # reported by the parent, which raises it
        errors.put(str(exc) if isinstance(exc, IndexBuildError) else f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None


def _link_or_copy(source: Path, target: str) -> None:
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
