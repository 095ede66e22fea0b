"""Skills: functions agent code keeps for later, as modules of a `skills` package.

Inside the sandbox the host's skills directory is mounted read-only as the
namespace package `skills` (`from skills.summarize_report import summarize_report`).
`save_skill(fn)` turns a function or class of the running code into a module
(its source, plus the code's top-level imports its body uses) and sends it to
the host over the bridge, which checks it and writes it; the code never writes
the directory itself. A skill that fails to import is reported by name.

`skill_entries()` lists the skills for search: name, one-line summary, signature.

Standard library only: this module runs in the sandbox as well as on the host.
"""

from __future__ import annotations

import ast
import builtins
import importlib.abc
import importlib.machinery
import keyword
import linecache
import os
import re
import sys
import textwrap
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import McpCodegenError, TransportError

__all__ = [
    "SAVE_SERVER",
    "SKILLS_DIR_ENV",
    "STATE_DIR_ENV",
    "SkillEntry",
    "SkillError",
    "install_import_reports",
    "save_skill",
    "skill_entries",
    "skill_entry",
    "skill_module_source",
    "valid_skill_name",
]

SKILLS_DIR_ENV = "MCP_CODEGEN_SKILLS_DIR"
"""Environment variable holding the skills directories as the code sees them (`os.pathsep`
between the shared one and the session's own)."""

STATE_DIR_ENV = "MCP_CODEGEN_STATE_DIR"
"""Environment variable holding the session's state directory (`/state` in gVisor)."""

SAVE_SERVER = "$skills"
"""The reserved server name of bridge requests that the host answers itself."""

_SAVE_TIMEOUT = 30.0
_MISSING_NAME = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")


class SkillError(McpCodegenError):
    """A skill cannot be made, saved or imported; the message says why."""


@dataclass(frozen=True)
class SkillEntry:
    """One skill as search shows it."""

    name: str
    """The module name: `from skills.<name> import ...`."""
    summary: str
    """The first line of its docstring."""
    signature: str
    """`def name(...) -> ...` of its main function (or `class name(...)`)."""
    docstring: str
    """The main function's (or the module's) whole docstring."""

    @property
    def import_path(self) -> str:
        """`skills.<name>`, as `read_module` and `import` take it."""
        return f"skills.{self.name}"


def valid_skill_name(name: str) -> bool:
    """Whether `name` can name a skill module (an ASCII identifier, not private, no keyword)."""
    return (
        name.isidentifier()
        and name.isascii()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
    )


# --- listing -------------------------------------------------------------------------


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(base) for base in node.bases)
        return f"class {node.name}({bases})" if bases else f"class {node.name}"
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _main_definition(
    tree: ast.Module, name: str
) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None:
    """The definition named like the module, else the first public one."""
    definitions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and not node.name.startswith("_")
    ]
    named = [node for node in definitions if node.name == name]
    chosen = named or definitions
    return chosen[0] if chosen else None


def skill_entry(path: str | os.PathLike[str]) -> SkillEntry | None:
    """The entry of the skill module at `path`, or None if it cannot be read or parsed."""
    file = Path(path)
    name = file.stem
    if not valid_skill_name(name):
        return None
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError):
        return None
    main = _main_definition(tree, name)
    docstring = (ast.get_docstring(main) if main is not None else None) or ""
    docstring = docstring or ast.get_docstring(tree) or ""
    summary = docstring.strip().splitlines()[0].strip() if docstring.strip() else ""
    try:
        signature = _signature(main) if main is not None else ""
    except RecursionError:  # a hand-written file nested too deeply to print
        signature = ""
    return SkillEntry(name=name, summary=summary, signature=signature, docstring=docstring)


def skill_entries(skills_dir: str | os.PathLike[str] | None = None) -> list[SkillEntry]:
    """Every readable skill of `skills_dir` (default `$MCP_CODEGEN_SKILLS_DIR`), by name.

    `skills_dir` may name several directories joined by `os.pathsep` (the shared
    skills, then the session's own); a name found in two is taken from the first.
    A missing directory has no skills; a module that cannot be parsed is left out
    (`mcp-codegen skills list` reports it).
    """
    given = skills_dir if skills_dir is not None else os.environ.get(SKILLS_DIR_ENV)
    if not given:
        return []
    files: dict[str, Path] = {}
    for directory in str(os.fspath(given)).split(os.pathsep):
        if not directory:
            continue
        try:
            found = sorted(Path(directory).glob("*.py"))
        except OSError:
            continue
        for file in found:
            files.setdefault(file.stem, file)
    entries = [skill_entry(files[name]) for name in sorted(files)]
    return [entry for entry in entries if entry is not None]


# --- saving --------------------------------------------------------------------------


def _bound_names(node: ast.AST) -> set[str]:
    """Names the definition binds itself: parameters, assignments, nested definitions."""
    bound: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
            bound.add(child.id)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if child is not node:
                bound.add(child.name)
        elif isinstance(child, ast.Import | ast.ImportFrom):
            for alias in child.names:
                bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(child, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and child.name:
            bound.add(child.name)
    return bound


def _top_level_imports(tree: ast.Module) -> dict[str, str]:
    """Each name the code's top-level imports bind -> the import statement of that name."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                text = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                found[alias.asname or alias.name.split(".")[0]] = text
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "__future__":
                continue
            for alias in node.names:
                if alias.name == "*":
                    continue
                shown = alias.name + (f" as {alias.asname}" if alias.asname else "")
                found[alias.asname or alias.name] = f"from {node.module} import {shown}"
    return found


def _definition(
    obj: Any,
) -> tuple[ast.Module, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, list[str]]:
    """(the code's tree, the definition of `obj` in it, the code's lines).

    Found through `linecache`, where the sandbox's runner keeps the executed code:
    `inspect.getsource` cannot find a class defined in code run from a string.

    Raises:
        SkillError: the source is not available.
    """
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
    elif isinstance(obj, type):
        functions = [v for v in vars(obj).values() if isinstance(v, types.FunctionType)]
        if not functions:
            raise SkillError(f"class {obj.__name__} has no methods; its source cannot be found")
        code = functions[0].__code__
    else:
        raise SkillError(
            f"save_skill takes a function or a class defined in your code, not {type(obj).__name__}"
        )
    filename = code.co_filename
    lines = linecache.getlines(filename)
    if not lines:
        raise SkillError(f"the source of {obj.__name__} is not available ({filename})")
    try:
        tree = ast.parse("".join(lines), filename)
    except SyntaxError as exc:
        raise SkillError(f"the source of {obj.__name__} cannot be parsed: {exc}") from None
    kinds = (
        (ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(obj, types.FunctionType)
        else (ast.ClassDef,)
    )
    candidates = [
        node for node in ast.walk(tree) if isinstance(node, kinds) and node.name == obj.__name__
    ]
    line = code.co_firstlineno

    def starts(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
        return min([node.lineno, *(d.lineno for d in node.decorator_list)])

    if isinstance(obj, types.FunctionType):
        chosen = [node for node in candidates if starts(node) == line]
    else:
        chosen = [node for node in candidates if starts(node) <= line <= (node.end_lineno or 0)]
    if not chosen:
        raise SkillError(f"the source of {obj.__name__} was not found in {filename}")
    return tree, chosen[-1], lines


def _quoted(text: str) -> str:
    return '"""' + text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '"""'


def skill_module_source(obj: Any, name: str | None = None) -> str:
    """The module that `save_skill(obj)` saves: a docstring, the imports `obj` uses, `obj`.

    The imports are the code's own top-level import statements whose names the
    definition uses (only those names). Any other name the definition takes from
    the code around it (a helper function, a constant) is refused: move it inside,
    or save it as a skill of its own first and import it from `skills`.

    Raises:
        SkillError: `obj` is not a function or class of the code, its source is not
            available, it has no docstring, or it uses names defined outside it.
    """
    tree, node, lines = _definition(obj)
    name = obj.__name__ if name is None else name
    if not valid_skill_name(name):
        raise SkillError(
            f"{name!r} is not a valid skill name (a Python identifier, not starting with _)"
        )
    docstring = ast.get_docstring(node)
    if not docstring or not docstring.strip():
        raise SkillError(f"{node.name} has no docstring; a skill needs one that says what it does")
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    source = textwrap.dedent("".join(lines[start - 1 : node.end_lineno])).rstrip() + "\n"
    used = {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}
    free = used - _bound_names(node) - {node.name}
    imports = _top_level_imports(tree)
    namespace: dict[str, Any] = getattr(obj, "__globals__", {})
    needed: set[str] = set()
    outside: list[str] = []
    for used_name in sorted(free):
        if used_name in imports:
            needed.add(imports[used_name])
        elif hasattr(builtins, used_name):
            continue
        elif used_name in namespace or isinstance(obj, type):
            outside.append(used_name)
    if outside and isinstance(obj, type):
        outside = [n for n in outside if n in _module_level_names(tree)]
    if outside:
        raise SkillError(
            f"{node.name} uses {', '.join(outside)}, defined outside it in your code; move "
            "that inside the function, or save it as a skill first and import it from skills"
        )
    summary = docstring.strip().splitlines()[0].strip()
    ordered = sorted(needed, key=lambda line: (line.startswith("from "), line))
    parts = [_quoted(summary), "", *ordered, "", "", ""] if ordered else [_quoted(summary), "", ""]
    return "\n".join(parts) + source


def _module_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def _ask_host(arguments: dict[str, Any], tool: str) -> str:
    """Send one request to the host's skills handler over the bridge; its answer's text.

    Blocking: `save_skill` is called from plain and from async code alike.

    Raises:
        SkillError: not in a sandbox, the bridge failed, or the host refused.
    """
    # Imported here: the bridge imports asyncio, which importing the package (and its
    # search) does not need.
    from .bridge import BRIDGE_SOCKET_ENV, call_tool_blocking

    if not os.environ.get(BRIDGE_SOCKET_ENV):
        raise SkillError("save_skill works only in code run by mcp-codegen's sandbox")
    try:
        result = call_tool_blocking(SAVE_SERVER, tool, arguments, timeout=_SAVE_TIMEOUT)
    except TransportError as exc:
        raise SkillError(str(exc)) from None
    text = "".join(
        str(block.get("text", ""))
        for block in result.get("content") or ()
        if isinstance(block, dict) and block.get("type") == "text"
    )
    if result.get("isError"):
        raise SkillError(text or "the host refused the skill")
    return text


def save_skill(obj: Any, name: str | None = None) -> str:
    """Keep the function (or class) `obj` as the skill `name` (default: its own name).

    Later executions import it: `from skills.<name> import <function>`. Its source
    and the code's top-level imports it uses are saved; saving a name again
    replaces the skill. Returns the host's confirmation.

    Raises:
        SkillError: the skill was refused (the message says why) or could not be sent.
    """
    source = skill_module_source(obj, name)
    return _ask_host({"name": name or obj.__name__, "source": source}, "save")


# --- importing -----------------------------------------------------------------------


def _explain(exc: BaseException) -> str:
    text = str(exc)
    for pattern, shape in ((_MISSING_NAME, "{1}.{0}"), (_MISSING_MODULE, "{0}")):
        match = pattern.search(text)
        if match:
            dotted = shape.format(*match.groups())
            if ".servers." in dotted:
                dotted = "servers." + dotted.split(".servers.", 1)[1]
            if dotted.startswith("servers."):
                return f"{dotted} no longer exists"
    return f"{type(exc).__name__}: {text}"


class _ReportingLoader(importlib.abc.Loader):
    """Runs a skill module; a failure names the skill."""

    def __init__(self, loader: importlib.abc.Loader, fullname: str):
        self.loader = loader
        self.fullname = fullname

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        try:
            self.loader.exec_module(module)
        except Exception as exc:
            name = self.fullname.partition(".")[2]
            raise ImportError(
                f"skill {name!r} cannot be imported: {_explain(exc)}", name=self.fullname
            ) from exc

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.loader, attribute)  # get_source, get_filename, ...


class _SkillFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("skills.") or fullname.count(".") != 1 or path is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _ReportingLoader(spec.loader, fullname)
        return spec


def install_import_reports() -> None:
    """Make a skill that fails to import raise an ImportError naming the skill."""
    if not any(isinstance(finder, _SkillFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SkillFinder())
