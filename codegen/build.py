"""The build: config -> introspect -> snapshot -> render -> write (-> index).

`build_package` runs the pipeline and returns a report; it raises `BuildError`
when the output must not be written, in which case nothing on disk changed.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from .cache import CACHE_PATH, INDEX_PARTS_PATH, BuildCache, ServerRecord, build_state
from .config import ConfigError, load_config
from .diagnostics import BuildError, Diagnostics
from .index import INDEX_FILENAME
from .indexbuild import IndexBuild, IndexSource
from .introspect import DEFAULT_SERVER_TIMEOUT, introspect, run_introspection
from .package import DEFAULT_OUT_ROOT
from .progress import Progress, QuietProgress
from .render import PackageOptions, render_package
from .snapshot import SNAPSHOT_FILENAME, Snapshot
from .telemetry import traced_build, traced_progress
from .versioning import Comparison, next_version, previous_output
from .write import check_output_dir, write_package

__all__ = ["BuildReport", "build_package", "introspect_snapshot"]


@dataclass
class BuildReport:
    """What a build did."""

    out: Path
    package: str
    snapshot: Snapshot
    diagnostics: Diagnostics
    modules: int
    reused: int = 0
    up_to_date: bool = False
    version: str = ""
    bump: str | None = None
    failed_servers: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    """Every server that is not in the package, with why (failed, or no usable tool)."""
    seconds: dict[str, float] = field(default_factory=dict)


def introspect_snapshot(
    config_path: Path | str,
    diagnostics: Diagnostics,
    *,
    timeout: float = DEFAULT_SERVER_TIMEOUT,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> tuple[Snapshot, list[str]]:
    """Introspect every server of the config into a snapshot of the ones that answered.

    At most `jobs` servers run at once (default: from the CPU count). Returns the
    snapshot and the names of the servers that failed (recorded in `diagnostics`).

    Raises:
        ConfigError: the config cannot be read, has no enabled server, or a
            `${VAR}` in it is not set.
    """
    config = load_config(config_path)
    if not config.servers:
        raise ConfigError(
            f"{config.path}: no servers to introspect "
            + ("(every server is disabled)" if config.disabled else "('mcpServers' is empty)")
            + "; add one under 'mcpServers', or run `mcp-codegen init`"
        )
    for server in config.servers:
        server.resolve()  # an unset ${VAR} is a config error before any server starts
    listings = run_introspection(
        introspect(config, diagnostics, timeout=timeout, jobs=jobs, progress=progress)
    )
    failed = [listing.name for listing in listings if listing.snapshot is None]
    servers = tuple(listing.snapshot for listing in listings if listing.snapshot is not None)
    return Snapshot(servers=servers), failed


def _state(snapshot: Snapshot, options: PackageOptions, version: str) -> str:
    return build_state(snapshot.digest(), options.name, options.dist_name, version)


def _why(diagnostics: Diagnostics, server: str) -> str:
    """The first line of the first error about `server`: why it was left out."""
    for item in diagnostics.errors:
        if item.server == server and item.tool is None:
            return item.message.splitlines()[0]
    return "failed"


@traced_build  # telemetry: a `build` span, with one per stage below it
def build_package(
    *,
    options: PackageOptions,
    out: Path | None = None,
    config_path: Path | str | None = None,
    snapshot: Snapshot | None = None,
    version: str | None = None,
    keep_going: bool = False,
    fail_on_warning: bool = False,
    timeout: float = DEFAULT_SERVER_TIMEOUT,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Build the package from live servers (`config_path`) or a `snapshot`.

    The version is `version` if given, else the previous output's version moved
    by the class of change since its snapshot (see `versioning`). With
    `keep_going`, servers that failed and servers left with no usable tool are
    left out (`BuildReport.left_out` says why); a package with no server left
    (no tool, and no server offering only resources or prompts) is still an error.

    Raises:
        ConfigError: the config cannot be read.
        OutputError: `out` holds files mcp-codegen did not write, or cannot be
            written; checked before any server is started.
        BuildError: a server or tool failed (without `keep_going`), no server or
            no tool was left to build, a warning occurred (with
            `fail_on_warning`), or the generated code failed verification.
            Nothing was written.
    """
    progress = traced_progress(progress or QuietProgress())  # telemetry: a span per stage
    out = out or DEFAULT_OUT_ROOT / options.name
    index = IndexBuild(out / INDEX_PARTS_PATH)
    if snapshot is not None and (out / CACHE_PATH).is_file():
        # A rebuild of a large package: the index process imports while the cache is read.
        index.spawn(snapshot.tool_count())
    try:
        with _collector_paused():  # the cache of a large package is a million small objects
            cache = BuildCache(out)
            check_output_dir(out, cache.written)
        return _build(
            index=index,
            options=options,
            out=out,
            cache=cache,
            config_path=config_path,
            snapshot=snapshot,
            version=version,
            keep_going=keep_going,
            fail_on_warning=fail_on_warning,
            timeout=timeout,
            jobs=jobs,
            progress=progress,
        )
    finally:
        index.stop()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a build.

    A large build holds millions of objects (the snapshot, its dumps, the cache)
    and allocates millions more: each full collection walks them all, for
    garbage that has no cycles. Measured at 10,000 tools: a tenth or more of the
    build's CPU. Reference counting still frees everything as usual.

    When it resumes, everything allocated meanwhile that is still alive (the cache,
    the caller's snapshot) would be in the youngest generation, and the next
    allocation would walk it all (measured at 10,000 tools: 45 ms, after the build's
    work is done). So it is moved to the oldest generation at once: freezing then
    unfreezing everything is two list splices. Skipped if the caller froze objects
    itself, which unfreezing would undo.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def _build(
    *,
    index: IndexBuild,
    options: PackageOptions,
    out: Path,
    cache: BuildCache,
    config_path: Path | str | None,
    snapshot: Snapshot | None,
    version: str | None,
    keep_going: bool,
    fail_on_warning: bool,
    timeout: float,
    jobs: int | None,
    progress: Progress,
) -> BuildReport:
    diagnostics = Diagnostics()
    seconds: dict[str, float] = {}
    failed: list[str] = []
    started = time.perf_counter()
    if snapshot is None:
        if config_path is None:
            raise ValueError("build_package needs a config_path or a snapshot")
        progress.stage(f"introspecting the servers of {config_path}")
        snapshot, failed = introspect_snapshot(
            config_path, diagnostics, timeout=timeout, jobs=jobs, progress=progress
        )
        seconds["introspect"] = time.perf_counter() - started
        total = len(failed) + len(snapshot.servers)
        if failed and not keep_going:
            raise BuildError(
                f"{len(failed)} of {total} servers failed; nothing was written "
                "(--keep-going builds the others)",
                diagnostics,
            )
        if failed and not snapshot.servers:
            raise BuildError(
                f"none of the {total} servers could be listed; nothing was written", diagnostics
            )
    left_out = {name: _why(diagnostics, name) for name in failed}
    with _collector_paused():
        return _compile(
            index=index,
            snapshot=snapshot,
            options=options,
            out=out,
            cache=cache,
            version=version,
            keep_going=keep_going,
            fail_on_warning=fail_on_warning,
            progress=progress,
            diagnostics=diagnostics,
            seconds=seconds,
            failed=failed,
            left_out=left_out,
            started=started,
        )


def _compile(
    *,
    index: IndexBuild,
    snapshot: Snapshot,
    options: PackageOptions,
    out: Path,
    cache: BuildCache,
    version: str | None,
    keep_going: bool,
    fail_on_warning: bool,
    progress: Progress,
    diagnostics: Diagnostics,
    seconds: dict[str, float],
    failed: list[str],
    left_out: dict[str, str],
    started: float,
) -> BuildReport:
    """Snapshot -> render -> write, the part of a build that is all CPU and files."""
    index.previous_index = _intact_index(cache, options.name)
    bump: str | None = None
    previous = previous_output(out)
    comparison: Comparison | None = None
    # A large package's index starts at once, reading the previous build's parts of
    # every server it may keep while the snapshot is hashed, compared and rendered (if
    # the package turns out up to date, it is stopped).
    candidates = [
        IndexSource(record.key, None, record)
        for record in cache.servers.values()
        if record.reuse is not None
    ]
    index.prefetch(candidates, snapshot.tool_count())
    if version is None:
        if previous is not None and cache.state == _state(snapshot, options, previous.version):
            version = previous.version  # unchanged since the last build (no diff needed)
        else:
            if previous is not None:
                comparison = previous.compare(snapshot, cache.snapshot_digests(SNAPSHOT_FILENAME))
            version, bump = next_version(previous, snapshot, comparison)
    options = replace(options, version=version)
    state = _state(snapshot, options, version)
    if cache.up_to_date(state):
        progress.finish()
        seconds["total"] = time.perf_counter() - started
        return BuildReport(
            out=out,
            package=options.name,
            snapshot=snapshot,
            diagnostics=diagnostics,
            modules=snapshot.tool_count(),
            reused=snapshot.tool_count(),
            failed_servers=failed,
            left_out=left_out,
            seconds=seconds,
            up_to_date=True,
            version=options.version,
        )
    mark = time.perf_counter()
    text = None
    if previous is not None and previous.chunks is not None:
        if comparison is None:
            comparison = previous.compare(snapshot, cache.snapshot_digests(SNAPSHOT_FILENAME))
        text = snapshot.text_reusing(previous.chunks, comparison.same)
    return _render_and_write(
        snapshot=snapshot,
        options=options,
        out=out,
        cache=cache,
        keep_going=keep_going,
        fail_on_warning=fail_on_warning,
        progress=progress,
        diagnostics=diagnostics,
        seconds=seconds,
        failed=failed,
        left_out=left_out,
        started=started,
        state=state,
        text=text,
        bump=bump,
        index=index,
        mark=mark,
    )


def _intact_index(cache: BuildCache, package: str) -> Path | None:
    """The previous output's search index, if it is as that build wrote it."""
    name = f"{package}/{INDEX_FILENAME}"
    entry = cache.top.get(name)
    if cache.out is None or entry is None or not cache.check(name, entry):
        return None
    return cache.out / name


def _render_and_write(
    *,
    snapshot: Snapshot,
    options: PackageOptions,
    out: Path,
    cache: BuildCache,
    keep_going: bool,
    fail_on_warning: bool,
    progress: Progress,
    diagnostics: Diagnostics,
    seconds: dict[str, float],
    failed: list[str],
    left_out: dict[str, str],
    started: float,
    state: str,
    text: bytes | None,
    bump: str | None,
    index: IndexBuild,
    mark: float,
) -> BuildReport:
    """Render and write the package: the part of `_compile` with an index build under way."""

    def start_index(kept: list[tuple[str, ServerRecord]]) -> None:
        sources = [IndexSource(key, None, record) for key, record in kept]
        index.start(sources, snapshot.tool_count())

    rendered = render_package(
        snapshot, options, cache, progress, snapshot_text=text, on_kept=start_index
    )
    seconds["render"] = time.perf_counter() - mark
    diagnostics.extend(rendered.diagnostics)
    left_out |= rendered.left_out
    if snapshot.servers and not rendered.servers:
        # Not one server built: neither a tool nor a server's resources or prompts.
        raise BuildError("no tool could be generated; nothing was written", diagnostics)
    if diagnostics.errors and not keep_going:
        raise BuildError(
            f"{len(diagnostics.errors)} errors; nothing was written (--keep-going leaves out what failed)",
            diagnostics,
        )
    if fail_on_warning and diagnostics.warnings:
        raise BuildError(
            f"{len(diagnostics.warnings)} warnings and --fail-on-warning; nothing was written",
            diagnostics,
        )
    progress.stage(f"formatting, verifying and indexing into {out}")
    mark = time.perf_counter()
    try:
        diagnostics.extend(write_package(rendered, out, options.name, cache, state, index))
    except BuildError as exc:
        diagnostics.extend(exc.diagnostics)
        raise BuildError(str(exc), diagnostics) from None
    seconds["write"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    progress.finish()
    return BuildReport(
        out=out,
        package=options.name,
        snapshot=snapshot,
        diagnostics=diagnostics,
        modules=rendered.tool_count,
        reused=rendered.reused,
        version=options.version,
        bump=bump,
        failed_servers=failed,
        left_out=left_out,
        seconds=seconds,
    )
