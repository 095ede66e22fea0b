"""One tool's module from start to end, in worker processes: models, source, index entry, check.

Everything a fresh tool module needs is CPU-bound and independent of the other
tools, so large builds spread it over the machine's cores (`build_tools`): the
models (`models.generate_models`), the module's source (`templates/tool_module.py.jinja`),
its index entry, and the verification that it holds only what the generator
means to emit (`verify`). Verification runs here, on the source before `ruff`
formats it: ruff's formatting and import sorting keep the syntax tree, so what
is checked is what is shipped, and a module that fails is left out like a tool
whose schema failed (an error; the build fails unless `--keep-going`).

Tools whose schemas are the same share one run of datamodel-code-generator per
worker (`models.generate_models` with a memo): real catalogs repeat schemas a lot
(a third of the dev corpus's tools share theirs with another tool).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from . import __version__
from .escape import doc_text, py_literal
from .index import IndexEntry
from .models import ModelError, Param, ToolModels, generate_models
from .snapshot import ToolSnapshot
from .templating import render_template
from .verify import verify_module

__all__ = ["BuiltTool", "ToolJob", "build_tool", "build_tools", "render_tool", "worker_count"]

PARALLEL_THRESHOLD = 200
"""Below this many tools, worker processes cost more than they save."""

RUNTIME_NAMES = frozenset({"ToolResult", "call_tool", "call_tool_structured"})
"""Names a tool module imports from the runtime, which no model class may take."""


@dataclass(frozen=True)
class ToolJob:
    """A tool to build: where it goes (server, function name) and what it is."""

    server: str
    server_ident: str
    tool: ToolSnapshot
    ident: str
    package: str
    digest: str
    """The tool's `ToolSnapshot.digest()` (the snapshot computes them all at once)."""


@dataclass(frozen=True)
class BuiltTool:
    """A tool module's source (not yet formatted) and index entry, or why there is none."""

    source: str | None = None
    entry: IndexEntry | None = None
    error: str | None = None
    bug: bool = False
    """The error is mcp-codegen's (the module failed verification), not the schema's."""


_memo: dict[str, str | None] = {}
"""Shared-schema models made in this process (see `models.generate_models`)."""


def build_tool(job: ToolJob) -> BuiltTool:
    """Models, source, index entry and verification of one tool."""
    try:
        models = generate_models(job.tool, job.ident, _memo)
    except ModelError as exc:
        return BuiltTool(error=f"cannot generate models: {exc}")
    clash = sorted(set(models.class_names) & RUNTIME_NAMES)
    if clash:
        return BuiltTool(error=f"a model class would be named {clash[0]!r}, which the runtime uses")
    source, entry = render_tool(
        job.server, job.server_ident, job.tool, job.ident, models, job.package, job.digest
    )
    problems = verify_module(source, job.package)
    if problems:
        return BuiltTool(
            error="the generated module failed verification: " + "; ".join(problems[:3]), bug=True
        )
    return BuiltTool(source=source, entry=entry)


def worker_count() -> int:
    """The CPUs this process may use (at most 8)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def build_tools(
    jobs: Sequence[ToolJob], on_done: Callable[[], None] | None = None
) -> list[BuiltTool]:
    """`build_tool` for each job, in order; large builds use every core. `on_done` after each."""
    global _jobs
    done = on_done or (lambda: None)
    workers = worker_count()
    results: list[BuiltTool] = []
    try:
        if len(jobs) < PARALLEL_THRESHOLD or workers < 2:
            for job in jobs:
                results.append(build_tool(job))
                done()
            return results
        # Fork: the workers start with the templates and the jobs already in memory, so
        # only numbers cross to them (pickling 10,000 tools would be the parent's work).
        _jobs = jobs
        groups = _same_schemas(jobs)
        context = multiprocessing.get_context("fork")
        chunk = max(1, min(64, len(groups) // (workers * 8)))
        built: list[BuiltTool | None] = [None] * len(jobs)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for group, tools in zip(
                groups, pool.map(_build_group, groups, chunksize=chunk), strict=True
            ):
                for number, result in zip(group, tools, strict=True):
                    built[number] = result
                    done()
        results = [result for result in built if result is not None]
        assert len(results) == len(jobs)
        return results
    finally:
        _memo.clear()
        _jobs = ()


_jobs: Sequence[ToolJob] = ()
"""The jobs of the running `build_tools`, as the forked workers inherit them."""


def _same_schemas(jobs: Sequence[ToolJob]) -> list[list[int]]:
    """The jobs' numbers in groups of tools with the same schemas, in order of first sight.

    A group goes to one worker, whose memo then runs datamodel-code-generator once for
    it: spread over the workers, a schema shared by tools of one server was made once
    per worker (a tenth more runs at 10,000 tools). The key is the schemas' JSON as they
    are (not sorted: equal schemas of one server list their keys alike); 0.1 s for 10,000.
    """
    groups: dict[str, list[int]] = {}
    for number, job in enumerate(jobs):
        key = json.dumps(
            (job.tool.input_schema, job.tool.output_schema),
            ensure_ascii=False,
            separators=(",", ":"),
        )
        groups.setdefault(key, []).append(number)
    return list(groups.values())


def _build_group(numbers: list[int]) -> list[BuiltTool]:
    return [build_tool(_jobs[number]) for number in numbers]


def _signature(ident: str, params: Sequence[Param], returns: str) -> str:
    parts = [
        f"{param.name}: {param.annotation}"
        + (f" = {param.default}" if param.default is not None else "")
        for param in params
    ]
    inside = ("*, " + ", ".join(parts)) if parts else ""
    return f"async def {ident}({inside}) -> {returns}"


def _docstring(tool: ToolSnapshot, models: ToolModels, returns: str) -> str:
    summary = tool.description.strip() or tool.title or f"Call the MCP tool {tool.name!r}."
    lines = [doc_text(summary).replace("\n", "\n    ")]
    hints = _hints(tool.annotations)
    if hints:
        lines += ["", f"Hints: {hints}."]
    if models.params:
        lines += ["", "Args:"]
        for param in models.params:
            text = doc_text(" ".join(param.description.split())) if param.description else ""
            lines.append(f"    {param.name}: {text}".rstrip())
    lines += ["", "Returns:"]
    if models.output_class:
        lines.append(f"    {returns}: the tool's structured output.")
    else:
        lines.append(
            "    ToolResult: the tool's content; `.text` joins its text, `.json()` parses it."
        )
    lines += ["", "Raises:", "    ToolError: the server reported an error."]
    return "\n    ".join(lines) + "\n    "


def _hints(annotations: dict[str, Any] | None) -> str:
    if not annotations:
        return ""
    words = []
    for key, word in (
        ("readOnlyHint", "read-only"),
        ("destructiveHint", "destructive"),
        ("idempotentHint", "idempotent"),
        ("openWorldHint", "open world"),
    ):
        value = annotations.get(key)
        if value is True:
            words.append(word)
        elif (
            value is False
            and key == "destructiveHint"
            and annotations.get("readOnlyHint") is not True
        ):
            words.append("not destructive")
    return ", ".join(words)


def render_tool(
    server: str,
    server_ident: str,
    tool: ToolSnapshot,
    ident: str,
    models: ToolModels,
    package: str,
    digest: str | None = None,
) -> tuple[str, IndexEntry]:
    """The source of one tool module (before formatting), and its index entry.

    `digest` is the tool's `ToolSnapshot.digest()`, when it is known already.
    """
    returns = models.output_class or "ToolResult"
    signature = _signature(ident, models.params, returns)
    docstring = _docstring(tool, models, returns)
    imports, classes = _split_imports(models.source)
    runtime_imports = "call_tool_structured" if models.output_class else "ToolResult, call_tool"
    arguments = "{" + ", ".join(f"{py_literal(p.name)}: {p.name}" for p in models.params) + "}"
    source = render_template(
        "tool_module.py.jinja",
        header=f"Generated by mcp-codegen {__version__} from tool {tool.name!r} of server "
        f"{server!r} ({(digest or tool.digest())[:12]}). Do not edit.".replace("\n", " "),
        package=package,
        model_imports=imports,
        runtime_imports=runtime_imports,
        model_classes=classes,
        signature=signature,
        docstring=docstring,
        output_class=models.output_class,
        server_literal=py_literal(server),
        tool_literal=py_literal(tool.name),
        input_class=models.input_class,
        arguments=arguments,
    )
    entry = IndexEntry(
        server=server,
        tool=tool.name,
        import_path=f"servers.{server_ident}.{ident}",
        title=tool.title,
        description=tool.description,
        parameters=tuple((param.name, param.description) for param in models.params),
        signature=signature,
        docstring=docstring,
    )
    return source, entry


def _split_imports(source: str) -> tuple[str, str]:
    imports: list[str] = []
    lines = source.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("from __future__"):
            index += 1
            continue
        if line.startswith(("from ", "import ")):
            statement = [line]
            while statement[-1].rstrip().endswith(("(", ",")) or (
                "(" in statement[0] and ")" not in statement[-1]
            ):
                index += 1
                statement.append(lines[index])
            imports.append("\n".join(statement))
            index += 1
            continue
        if line.strip() == "":
            index += 1
            continue
        break
    return "\n".join(imports), "\n".join(lines[index:]).strip()
