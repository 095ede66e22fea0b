"""Code checked before it runs: its syntax, what it imports from the package, and its types.

Three steps, the first two in this process (bounded: code over `MAX_CHECK_BYTES`
is only compiled by the sandbox itself), the last in a process of its own:

1. CPython's parser (with top-level `await` allowed): a syntax error is the
   result, with its line, and nothing runs. This never needs the checker.
2. Imports from `servers` (or `<package>.servers`): a server or tool that does
   not exist is an error (`unknown-import`), with the names that come closest.
   A type checker cannot see these, since each server module makes its tools
   lazily (PEP 562 `__getattr__`).
3. ty (pinned in pyproject.toml; measured against pyrefly, basedpyright and mypy
   in `bench/results/check.md`) checks the code against the package and the
   libraries mounted in the sandbox, and nothing else of the host: it runs in
   a directory with an empty virtual environment whose `site-packages` holds
   links to exactly those. Its complaints about top-level `await` are dropped
   (CPython accepted the code in step 1), as are the names the runner provides
   (`save_skill`, `search_tools`, `report_progress`, `ApprovalDenied`).

A diagnostic is *certain* when it is one of the mistakes a call of a generated
tool cannot survive: an unknown keyword, a missing required argument, too many
positional arguments (at a call of a tool without `*`/`**` unpacking), a constant
that the parameter refuses even in pydantic's lax mode, which the generated input
models use (`timezone=5`, `limit="twenty"`; not `limit="20"`, which pydantic
converts, nor a dict for a model), or an import of a server or tool that does not
exist. Those carry the
tool's signature. With `check_code: block` certain errors stop the execution
before anything runs; everything else comes back as warnings beside the result.

ty runs only on code that imports the package or `skills` (on other code it has
nothing to say that the run itself does not), and the code waits for it only
when ty could stop it: in `block` mode, when the code calls a tool or imports
what does not exist. Otherwise ty runs beside the code and its warnings join
the result (`CodeChecker.begin`, `Checking.finish`): a trivial execution does
not pay for a type checker's start.

ty runs with the limits of `concurrency.TYPE_CHECK` (10 s, 8 s of CPU, 1 GiB of
address space; checker processes two at a time per event loop); if it is missing,
fails or passes a limit, the code still runs and the report says why it was not
type-checked.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import difflib
import json
import os
import resource
import secrets
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..pyparse import parse
from .bridge.limits import INLINE_CODE_CHARS, CpuBudget
from .concurrency import TYPE_CHECK, run_checker
from .policy import CheckMode
from .result import CheckDiagnostic

__all__ = [
    "CERTAIN_RULES",
    "MAX_CHECK_BYTES",
    "CheckReport",
    "Checking",
    "CodeChecker",
    "find_ty",
    "syntax_error",
]

MAX_CHECK_BYTES = 256 * 1024
"""Code longer than this is not analysed here (the sandbox still compiles it)."""
CERTAIN_RULES = frozenset(
    {
        "unknown-argument",
        "missing-argument",
        "invalid-argument-type",
        "too-many-positional-arguments",
        "parameter-already-assigned",
    }
)
"""ty's rules that, at a call of a generated tool, are mistakes the call cannot survive."""
MAX_WARNINGS = 20
_INJECTED = ("save_skill", "search_tools", "report_progress", "ApprovalDenied")
_MAX_NODES = 100_000
_MESSAGE_CHARS = 400


def find_ty() -> str | None:
    """The `ty` binary: `$MCP_CODEGEN_TY`, the one installed beside this Python, or on PATH."""
    given = os.environ.get("MCP_CODEGEN_TY")
    if given:
        return shutil.which(given)
    try:
        from ty import find_ty_bin

        return find_ty_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("ty")


def syntax_error(code: str, filename: str = "<code>") -> str | None:
    """Why `code` does not compile (its line, column and text), else None; top-level `await` is fine.

    A full compile (not only the parse), so `return` outside a function and `await`
    in a plain `def` are found too.
    """
    try:
        compile(code, filename, "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, True)
    except SyntaxError as exc:
        where = f" (line {exc.lineno}" + (f", column {exc.offset})" if exc.offset else ")")
        line = (exc.text or "").rstrip()
        shown = f"\n    {line}" if line else ""
        return f"SyntaxError: {exc.msg}{where if exc.lineno else ''}{shown}"
    except ValueError as exc:  # e.g. a NUL byte in the source
        return f"the code cannot be parsed: {exc}"
    except (RecursionError, MemoryError):  # CPython's guards against deep nesting
        return "the code is nested too deeply to parse; split it into functions"
    return None


@dataclass(frozen=True)
class CheckReport:
    """What the check found."""

    syntax_error: str | None = None
    """The code does not compile: nothing may run."""
    diagnostics: tuple[CheckDiagnostic, ...] = ()
    note: str | None = None
    """Why the code was not (fully) checked, when it was not."""

    @property
    def certain(self) -> list[CheckDiagnostic]:
        """The errors the code would certainly hit."""
        return [item for item in self.diagnostics if item.certain]

    def blocking_message(self) -> str:
        """The message of an execution these errors stopped."""
        errors = self.certain
        noun = "error" if len(errors) == 1 else "errors"
        lines = [f"the code was not run: the check found {len(errors)} {noun} before it started"]
        lines += [str(item) for item in errors]
        return "\n".join(lines)


class Checking:
    """A check under way: what was known before the code runs, and ty's part if it runs beside.

    Args:
        report: what the code must not run without (syntax, imports, and ty's findings
            when they could block it).
        typing: ty's check of the code, running while the code does (its findings can
            only be warnings), or None.
    """

    def __init__(self, report: CheckReport, typing: asyncio.Future[CheckReport] | None = None):
        self.report = report
        self._typing = typing

    async def finish(self) -> CheckReport:
        """The whole report: `report`, with ty's findings once it is done.

        Cancelling the caller cancels ty too (its process is killed).
        """
        if self._typing is None:
            return self.report
        try:
            return await self._typing
        finally:
            self._typing.cancel()

    def cancel(self) -> None:
        """Stop ty if it still runs (the code was refused, or its caller went away)."""
        if self._typing is not None:
            self._typing.cancel()


# --- the package, as the check sees it -------------------------------------------


@lru_cache(maxsize=4096)
def _module_names(path: Path, mtime: float) -> tuple[frozenset[str], tuple[str, ...]]:
    """(top-level names a module defines or imports, its `__all__`) (mtime: a cache key)."""
    del mtime
    try:
        tree = parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
        return frozenset(), ()
    names: set[str] = set()
    exported: tuple[str, ...] = ()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
                    if target.id == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                        exported = tuple(
                            item.value
                            for item in node.value.elts
                            if isinstance(item, ast.Constant) and isinstance(item.value, str)
                        )
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return frozenset(names), exported


@dataclass(frozen=True)
class _Function:
    """A tool function's signature, and the annotation of each of its parameters."""

    text: str
    annotations: dict[str, ast.expr | None]


def _format_arguments(args: ast.arguments) -> str:
    """`*, timezone: str, limit: int | None = 20`: as PEP 8 writes annotated defaults."""

    def one(arg: ast.arg, default: ast.expr | None) -> str:
        text = arg.arg + (f": {ast.unparse(arg.annotation)}" if arg.annotation else "")
        if default is not None:
            text += f" = {ast.unparse(default)}" if arg.annotation else f"={ast.unparse(default)}"
        return text

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    parts = [
        one(arg, default)
        for arg, default in zip(positional, [*defaults, *args.defaults], strict=True)
    ]
    if args.vararg is not None:
        parts.append("*" + one(args.vararg, None))
    elif args.kwonlyargs:
        parts.append("*")
    parts += [
        one(arg, default) for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    if args.kwarg is not None:
        parts.append("**" + one(args.kwarg, None))
    return ", ".join(parts)


@lru_cache(maxsize=4096)
def _function(path: Path, mtime: float, name: str) -> _Function | None:
    del mtime
    try:
        tree = parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == name:
            returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
            every = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            return _Function(
                text=f"{name}({_format_arguments(node.args)}){returns}",
                annotations={arg.arg: arg.annotation for arg in every},
            )
    return None


@lru_cache(maxsize=64)
def _listing(directory: Path, mtime: float) -> tuple[str, ...]:
    del mtime
    try:
        return tuple(sorted(entry.name for entry in os.scandir(directory) if entry.is_dir()))
    except OSError:
        return ()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return -1.0


@dataclass(frozen=True)
class _Package:
    """The generated package's `servers` tree (read from its files, cached by mtime)."""

    name: str | None
    servers_dir: Path | None

    def servers(self) -> list[str]:
        if self.servers_dir is None:
            return []
        names = _listing(self.servers_dir, _mtime(self.servers_dir))
        return [name for name in names if (self.servers_dir / name / "__init__.py").is_file()]

    def has_server(self, server: str) -> bool:
        return (
            self.servers_dir is not None
            and server.isidentifier()
            and (self.servers_dir / server / "__init__.py").is_file()
        )

    def tools(self, server: str) -> tuple[str, ...]:
        assert self.servers_dir is not None
        init = self.servers_dir / server / "__init__.py"
        return _module_names(init, _mtime(init))[1]

    def tool_path(self, server: str, tool: str) -> Path | None:
        if self.servers_dir is None or not tool.isidentifier():
            return None
        path = self.servers_dir / server / f"{tool}.py"
        return path if path.is_file() else None

    def module_names(self, server: str, tool: str) -> frozenset[str]:
        path = self.tool_path(server, tool)
        return _module_names(path, _mtime(path))[0] if path else frozenset()

    def function(self, server: str, tool: str) -> _Function | None:
        path = self.tool_path(server, tool)
        return _function(path, _mtime(path), tool) if path is not None else None

    def signature(self, server: str, tool: str) -> str | None:
        found = self.function(server, tool)
        return f"servers.{server}.{found.text}" if found else None

    def servers_path(self, module: str | None) -> list[str] | None:
        """The parts after `servers` of an absolute module path into the package, else None."""
        if not module:
            return None
        parts = module.split(".")
        if self.name and parts[0] == self.name:
            parts = parts[1:]
        if not parts or parts[0] != "servers":
            return None
        return parts[1:]


# --- step 2: imports and calls of tools ------------------------------------------


Binding = tuple[str, ...]
"""What a name in the code is: ("servers",), ("server", s), ("tool", s, t) or ("module", s, t)."""


@dataclass
class _Analysis:
    problems: list[CheckDiagnostic] = field(default_factory=list)
    calls: list[tuple[tuple[int, int, int, int], ast.Call, tuple[str, str]]] = field(
        default_factory=list
    )
    """(span, call, (server, tool)) of each call of a tool."""
    touches: bool = False
    """Whether the code imports from the package (`servers`, `<package>`) or `skills`."""


def _char_column(lines: Sequence[str], line: int, byte_offset: int) -> int:
    """The 1-based character column of a 0-based UTF-8 byte offset (as the AST gives)."""
    if 0 < line <= len(lines):
        return len(lines[line - 1].encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1
    return byte_offset + 1


def _span(node: ast.AST, lines: Sequence[str]) -> tuple[int, int, int, int]:
    start_line = getattr(node, "lineno", 0)
    end_line = getattr(node, "end_lineno", None) or start_line
    return (
        start_line,
        _char_column(lines, start_line, getattr(node, "col_offset", 0)),
        end_line,
        _char_column(lines, end_line, getattr(node, "end_col_offset", None) or 0),
    )


def _inside(span: tuple[int, int, int, int], line: int, column: int) -> bool:
    start_line, start_col, end_line, end_col = span
    return (start_line, start_col) <= (line, column) < (end_line, end_col) or (
        (line, column) == (start_line, start_col)
    )


def _closest(name: str, options: Sequence[str]) -> str | None:
    found = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return found[0] if found else None


class _Imports:
    """Checks the imports of `servers` in one tree and finds the calls of tools."""

    def __init__(self, package: _Package, lines: Sequence[str]):
        self.package = package
        self.lines = lines
        self.bindings: dict[str, Binding] = {}
        self.result = _Analysis()

    def problem(self, node: ast.AST, message: str, signature: str | None = None) -> None:
        line, column, _, _ = _span(node, self.lines)
        self.result.problems.append(
            CheckDiagnostic(
                line=line,
                column=column,
                rule="unknown-import",
                message=message,
                certain=True,
                signature=signature,
            )
        )

    def unknown_server(self, node: ast.AST, server: str) -> None:
        servers = self.package.servers()
        close = _closest(server, servers)
        shown = ", ".join(servers[:12]) + (", ..." if len(servers) > 12 else "")
        hint = f"did you mean servers.{close}?" if close else f"the servers are: {shown or 'none'}"
        self.problem(node, f"there is no server servers.{server}; {hint}")

    def unknown_tool(self, node: ast.AST, server: str, tool: str) -> None:
        close = _closest(tool, self.package.tools(server))
        elsewhere = [s for s in self.package.servers() if tool in self.package.tools(s)][:3]
        hint = f"; did you mean {close}?" if close else ""
        if elsewhere:
            hint += f" ({tool} is a tool of {', '.join(f'servers.{s}' for s in elsewhere)})"
        signature = self.package.signature(server, close) if close else None
        self.problem(node, f"servers.{server} has no tool {tool!r}{hint}", signature)

    def note_import(self, module: str | None) -> None:
        """Remember an import of the package or of skills (what ty has something to say about)."""
        top = (module or "").split(".")[0]
        if top in ("servers", "skills") or (top and top == self.package.name):
            self.result.touches = True

    def visit_import_from(self, node: ast.ImportFrom) -> None:
        if not node.level:
            self.note_import(node.module)
        parts = None if node.level else self.package.servers_path(node.module)
        if parts is None:
            return
        if not parts:
            for alias in node.names:
                if alias.name == "*":
                    continue
                if self.package.has_server(alias.name):
                    self.bindings[alias.asname or alias.name] = ("server", alias.name)
                else:
                    self.unknown_server(node, alias.name)
            return
        server = parts[0]
        if not self.package.has_server(server):
            self.unknown_server(node, server)
            return
        if len(parts) == 1:
            tools = self.package.tools(server)
            for alias in node.names:
                if alias.name == "*":
                    continue
                if alias.name in tools:
                    self.bindings[alias.asname or alias.name] = ("tool", server, alias.name)
                elif self.package.tool_path(server, alias.name) is None:
                    self.unknown_tool(node, server, alias.name)
            return
        tool = parts[1]
        if len(parts) > 2 or self.package.tool_path(server, tool) is None:
            self.unknown_tool(node, server, tool)
            return
        names = self.package.module_names(server, tool)
        for alias in node.names:
            if alias.name == tool:
                self.bindings[alias.asname or alias.name] = ("tool", server, tool)
            elif alias.name != "*" and alias.name not in names:
                self.problem(
                    node,
                    f"servers.{server}.{tool} has no name {alias.name!r}",
                    self.package.signature(server, tool),
                )

    def visit_import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.note_import(alias.name)
            parts = self.package.servers_path(alias.name)
            if parts is None:
                continue
            if parts and not self.package.has_server(parts[0]):
                self.unknown_server(node, parts[0])
                continue
            if len(parts) >= 2 and (
                len(parts) > 2 or self.package.tool_path(parts[0], parts[1]) is None
            ):
                self.unknown_tool(node, parts[0], parts[1])
                continue
            if alias.asname is None:
                if alias.name.split(".")[0] == "servers":
                    self.bindings["servers"] = ("servers",)
            elif not parts:
                self.bindings[alias.asname] = ("servers",)
            elif len(parts) == 1:
                self.bindings[alias.asname] = ("server", parts[0])
            else:
                self.bindings[alias.asname] = ("module", parts[0], parts[1])

    def tool_of(self, func: ast.expr) -> tuple[str, str] | None:
        """The (server, tool) a call's function names, if it is a tool of the package."""
        dotted: list[str] = []
        while isinstance(func, ast.Attribute):
            dotted.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name) or func.id not in self.bindings:
            return None
        dotted.reverse()
        binding = self.bindings[func.id]
        path = list(binding[1:])
        if binding[0] == "servers":
            path = dotted[:2]
            dotted = dotted[2:]
        elif binding[0] in ("server", "module"):
            path = [binding[1], *dotted[:1]]
            dotted = dotted[1:]
        if dotted or len(path) != 2 or (binding[0] == "module" and path[1] != binding[2]):
            return None
        return (path[0], path[1])

    def run(self, tree: ast.Module) -> _Analysis:
        for count, node in enumerate(ast.walk(tree)):
            if count > _MAX_NODES:
                break
            if isinstance(node, ast.ImportFrom):
                self.visit_import_from(node)
            elif isinstance(node, ast.Import):
                self.visit_import(node)
        for count, node in enumerate(ast.walk(tree)):
            if count > _MAX_NODES:
                break
            if isinstance(node, ast.Call):
                tool = self.tool_of(node.func)
                if tool is not None:
                    self.result.calls.append((_span(node, self.lines), node, tool))
        return self.result


_BOOL_TEXT = frozenset({"0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"})


def _scalar(node: ast.expr) -> tuple[bool, object]:
    """(True, value) when `node` is a constant of a scalar type (a negative number too)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = node.operand
        if isinstance(inner, ast.Constant) and isinstance(inner.value, int | float):
            number = inner.value
            return True, -number if isinstance(node.op, ast.USub) else number
        return False, None
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, float, bool, type(None)):
        return True, node.value
    return False, None


def _numeric(text: str) -> bool:
    try:
        float(text.strip().replace("_", ""))
    except ValueError:
        return False
    return True


def _accepts(kind: str, value: object) -> bool | None:
    """Whether pydantic (lax mode, as the generated input models use it) takes `value`
    for the plain type `kind`; None when the rule for `kind` is not known here."""
    if kind == "str":
        return isinstance(value, str)
    if kind == "None":
        return value is None
    if kind == "int":
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, str) and _numeric(value)
    if kind == "float":
        return isinstance(value, int | float) or (isinstance(value, str) and _numeric(value))
    if kind == "bool":
        if isinstance(value, bool):
            return True
        if isinstance(value, int | float):
            return value in (0, 1)
        return isinstance(value, str) and value.strip().lower() in _BOOL_TEXT
    return None


def _fits(annotation: ast.expr, value: object) -> bool | None:
    """Whether a parameter annotated `annotation` takes the constant `value` at run time;
    None when that cannot be told for sure from the annotation alone."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        answers = [_fits(annotation.left, value), _fits(annotation.right, value)]
        if True in answers:
            return True
        return False if answers == [False, False] else None
    if isinstance(annotation, ast.Constant) and annotation.value is None:
        return value is None
    if isinstance(annotation, ast.Name):
        return _accepts(annotation.id, value)
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.value, ast.Name):
        name = annotation.value.id
        items = (
            annotation.slice.elts if isinstance(annotation.slice, ast.Tuple) else [annotation.slice]
        )
        if name == "Literal":
            options = [item.value for item in items if isinstance(item, ast.Constant)]
            if len(options) != len(items):
                return None
            return any(option == value and type(option) is type(value) for option in options)
        if name == "Optional" and len(items) == 1:
            return True if value is None else _fits(items[0], value)
        if name == "Annotated" and items:
            return _fits(items[0], value)  # constraints only refuse more
    return None


def _holds_mapping(call: ast.Call, line: int, column: int, lines: Sequence[str]) -> bool:
    """Whether the keyword argument at this position holds a dict (pydantic makes models of
    dicts, which a type checker does not know)."""
    for keyword in call.keywords:
        if keyword.arg is not None and _inside(_span(keyword, lines), line, column):
            return any(
                isinstance(node, ast.Dict | ast.DictComp)
                or (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "dict"
                )
                for node in ast.walk(keyword.value)
            )
    return False


def _wrong_literal(
    call: ast.Call, line: int, column: int, lines: Sequence[str], function: _Function | None
) -> bool:
    """Whether the keyword argument of `call` at this position is a constant that its
    parameter certainly refuses (`limit="twenty"` for an int; not `limit="20"`,
    which pydantic converts)."""
    if function is None:
        return False
    for keyword in call.keywords:
        if keyword.arg is None or not _inside(_span(keyword, lines), line, column):
            continue
        annotation = function.annotations.get(keyword.arg)
        constant, value = _scalar(keyword.value)
        return constant and annotation is not None and _fits(annotation, value) is False
    return False


# --- step 3: ty --------------------------------------------------------------------


def _limit_checker() -> None:  # pragma: no cover - runs in the child before exec
    cpu, memory = TYPE_CHECK.cpu_seconds, TYPE_CHECK.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


@dataclass(frozen=True)
class _TyDiagnostic:
    rule: str
    message: str
    line: int
    column: int


def _parse_ty(output: bytes, name: str) -> list[_TyDiagnostic] | None:
    """ty's GitLab-format JSON, defensively; None when it is not that."""
    try:
        items = json.loads(output[: 8 * 1024 * 1024])
    except ValueError:
        return None
    if not isinstance(items, list):
        return None
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        location = item.get("location") or {}
        begin = ((location.get("positions") or {}).get("begin")) or {}
        if location.get("path") != name:
            continue
        rule = str(item.get("check_name", ""))
        message = str(item.get("description", ""))
        message = message.removeprefix(f"{rule}: ")
        line, column = begin.get("line"), begin.get("column")
        if isinstance(line, int) and isinstance(column, int):
            found.append(_TyDiagnostic(rule, message[:_MESSAGE_CHARS], line, column))
    return found


class CodeChecker:
    """Checks code against one package before it runs (see the module's docstring).

    Args:
        package_dir: the generated import package, or None.
        root: a directory of this checker's own (made by `prepare`).
        site: top-level files and directories of the distributions the sandbox
            mounts (pydantic, the policy's packages).
        skill_dirs: the skills directories the sandbox imports `skills` from.
        ty: the ty binary (by default `find_ty()`).
    """

    def __init__(
        self,
        package_dir: Path | None,
        root: Path,
        *,
        site: Sequence[Path] = (),
        skill_dirs: Sequence[Path] = (),
        ty: str | None = None,
    ):
        self.package = _Package(
            package_dir.name if package_dir else None,
            package_dir / "servers" if package_dir and (package_dir / "servers").is_dir() else None,
        )
        self.package_dir = package_dir
        self.root = root
        self.site = tuple(site)
        self.skill_dirs = tuple(skill_dirs)
        self.ty = ty if ty is not None else find_ty()
        self._env = root / "env"
        self._prepared = False

    def prepare(self) -> None:
        """Make the checker's directory: an empty environment whose site-packages links to
        the package, `servers`, the mounted distributions and the skills.

        Raises:
            OSError: it cannot be written.
        """
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        site = self._env / "lib" / version / "site-packages"
        site.mkdir(parents=True, exist_ok=True)
        (self._env / "pyvenv.cfg").write_text(
            f"home = {Path(sys.base_prefix) / 'bin'}\ninclude-system-site-packages = false\n"
            f"version = {'.'.join(map(str, sys.version_info[:3]))}\n",
            encoding="utf-8",
        )
        links: dict[str, Path] = {top.name: top for top in self.site}
        if self.package_dir is not None:
            links[self.package_dir.name] = self.package_dir
            if self.package.servers_dir is not None:
                links["servers"] = self.package.servers_dir
        for name, target in links.items():
            link = site / name
            if not link.is_symlink():
                link.symlink_to(target.resolve(), target_is_directory=target.is_dir())
        for index, directory in enumerate(self.skill_dirs):
            holder = self.root / f"skills{index}"
            holder.mkdir(exist_ok=True)
            link = holder / "skills"
            if not link.is_symlink():
                link.symlink_to(directory.resolve(), target_is_directory=True)
        self._prepared = True

    async def check(
        self,
        code: str,
        mode: CheckMode,
        filename: str = "<code>",
        *,
        budget: CpuBudget | None = None,
    ) -> CheckReport:
        """Check `code`: syntax always; imports and types unless `mode` is `off`.

        The whole report: `begin` and then `Checking.finish`.
        Never raises for anything about the code; a checker that cannot run is a note.
        """
        checking = await self.begin(code, mode, filename, budget=budget)
        return await checking.finish()

    async def begin(
        self,
        code: str,
        mode: CheckMode,
        filename: str = "<code>",
        *,
        budget: CpuBudget | None = None,
    ) -> Checking:
        """Check what must be known before `code` runs; type-check the rest beside its run.

        ty only runs when the code imports the package or `skills` (on other code
        it has nothing to say that the run itself does not). Its findings can
        only be certain inside a call of a tool (see `_classify`), so ty runs
        before the code when the code calls a tool, or imports something that
        does not exist, and `mode` is `block`; otherwise the code need not wait
        for it, and its warnings are added by `Checking.finish`.

        The parse and the analysis are host work on hostile input: they run off the
        event loop, charged to the session's `budget` (a fresh one if none is given).
        Never raises for anything about the code; a checker that cannot run is a note.
        """
        if len(code.encode("utf-8", "replace")) > MAX_CHECK_BYTES:
            return Checking(
                CheckReport(note=f"code over {MAX_CHECK_BYTES // 1024} KiB is not checked")
            )
        analysed = await (budget or CpuBudget()).run(
            self._analyse, code, filename, mode, inline=self._small(code)
        )
        if isinstance(analysed, str):
            return Checking(CheckReport(syntax_error=analysed))
        if analysed is None:
            return Checking(CheckReport())
        analysis, lines = analysed
        if not self.ty:
            note = "the type checker (ty) is not installed; only syntax and imports were checked"
            return Checking(self._report(analysis, lines, None, note))
        if not self._prepared or not analysis.touches:
            return Checking(self._report(analysis, lines, None, None))
        if mode == "block" and (analysis.calls or analysis.problems):
            return Checking(await self._typed(code, analysis, lines))
        typing = asyncio.ensure_future(self._typed(code, analysis, lines))
        return Checking(self._report(analysis, lines, None, None), typing)

    def _small(self, code: str) -> bool:
        """Whether the analysis of `code` is bounded below a thread's hand-over: short
        code (`INLINE_CODE_CHARS`) that cannot import the package or skills (whose
        check reads the package's files)."""
        if len(code) > INLINE_CODE_CHARS:
            return False
        names = ("servers", "skills", self.package.name or "servers")
        return not any(name in code for name in names)

    async def _typed(self, code: str, analysis: _Analysis, lines: list[str]) -> CheckReport:
        """The report with ty's findings (or a note saying why there are none)."""
        found = await self._run_ty(code)
        if isinstance(found, str):
            return self._report(analysis, lines, None, found)
        return self._report(analysis, lines, found, None)

    def _report(
        self,
        analysis: _Analysis,
        lines: list[str],
        found: list[_TyDiagnostic] | None,
        note: str | None,
    ) -> CheckReport:
        diagnostics = list(analysis.problems)
        if found is not None:
            diagnostics += self._classify(found, analysis, lines)
        certain = [item for item in diagnostics if item.certain]
        warnings = [item for item in diagnostics if not item.certain][:MAX_WARNINGS]
        ordered = sorted([*certain, *warnings], key=lambda item: (item.line, item.column))
        return CheckReport(diagnostics=tuple(ordered), note=note)

    def _analyse(
        self, code: str, filename: str, mode: CheckMode
    ) -> str | tuple[_Analysis, list[str]] | None:
        problem = syntax_error(code, filename)
        if problem is not None:
            return problem
        if mode == "off":
            return None
        try:
            tree = parse(code, filename)  # the parser takes top-level await as it is
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        lines = code.splitlines()
        return _Imports(self.package, lines).run(tree), lines

    def _classify(
        self, found: list[_TyDiagnostic], analysis: _Analysis, lines: Sequence[str]
    ) -> Iterator[CheckDiagnostic]:
        for item in found:
            if item.rule == "invalid-syntax":
                continue  # top-level await and the like: CPython compiled the code
            if item.rule == "unresolved-reference" and any(
                f"`{name}`" in item.message for name in _INJECTED
            ):
                continue
            if item.rule == "unresolved-import" and "`servers" in item.message:
                continue  # said better by the import check
            containing = [
                (span, call, tool)
                for span, call, tool in analysis.calls
                if _inside(span, item.line, item.column)
            ]
            certain = False
            signature = None
            if containing and item.rule in CERTAIN_RULES:
                _, call, (server, tool) = min(
                    containing, key=lambda entry: (entry[0][2] - entry[0][0], -entry[0][1])
                )
                function = self.package.function(server, tool)
                # `tool(**arguments)` or `tool(*values)` may supply what ty cannot see.
                unpacked = any(k.arg is None for k in call.keywords) or any(
                    isinstance(a, ast.Starred) for a in call.args
                )
                certain = not unpacked
                if item.rule == "invalid-argument-type":
                    if _holds_mapping(call, item.line, item.column, lines):
                        continue  # dicts for models: pydantic validates them at run time
                    certain = _wrong_literal(call, item.line, item.column, lines, function)
                signature = self.package.signature(server, tool)
            yield CheckDiagnostic(
                line=item.line,
                column=item.column,
                rule=item.rule,
                message=item.message,
                certain=certain,
                signature=signature,
            )

    async def _run_ty(self, code: str) -> list[_TyDiagnostic] | str | None:
        assert self.ty is not None
        name = f"check_{secrets.token_hex(6)}.py"
        path = self.root / name
        try:
            path.write_text(code, encoding="utf-8")
        except OSError as exc:
            return f"the type checker could not start ({exc}); the code ran unchecked"
        command = [
            self.ty,
            "check",
            "--python",
            str(self._env),
            "--python-version",
            f"{sys.version_info[0]}.{sys.version_info[1]}",
            "--output-format",
            "gitlab",
            "--no-progress",
            "--color",
            "never",
            *(
                arg
                for index in range(len(self.skill_dirs))
                for arg in ("--extra-search-path", str(self.root / f"skills{index}"))
            ),
            name,
        ]
        # No host environment: ty must not find a virtual environment or a config of its own.
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "TY_MAX_PARALLELISM": "2",  # one file: more threads only cost memory
        }
        try:
            finished = await run_checker(
                command, TYPE_CHECK.seconds, cwd=str(self.root), env=env, preexec_fn=_limit_checker
            )
        except OSError as exc:
            return f"the type checker could not start ({exc}); the code ran unchecked"
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        if finished is None:
            return f"the type check took more than {TYPE_CHECK.seconds:g} s; the code ran unchecked"
        output, errors, returncode = finished.stdout, finished.stderr, finished.returncode
        parsed = _parse_ty(output, name) if returncode in (0, 1) else None
        if parsed is None:
            tail = errors.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            return (
                f"the type checker failed (status {returncode}: {tail[0][:200]}); "
                "the code ran unchecked"
            )
        return parsed
