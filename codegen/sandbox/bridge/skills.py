"""The host's skills directory: check, store, list, show and remove skills.

A skill is a module `<name>.py` in the skills directory (by default
`<config dir>/.mcp-codegen/skills/`), mounted read-only into every sandbox of
that config as the package `skills`. Code in the sandbox saves one with
`save_skill(fn)`, which reaches `SkillStore.handle` through the bridge; a person
may also write a file there. Either way the module must pass `check_source`:

- it parses (libcst);
- its top level holds only a docstring, imports, functions and classes;
- every public function and class has a docstring, and there is at least one;
- it imports only the standard library, pydantic, the generated package
  (`servers` or `<package>`) and other skills, with absolute imports;
- what it imports from `servers` exists in the package, and the skills it imports exist.

A skill that passed once can break later (a tool it imports was removed by a
rebuild): `SkillStore.problems` finds that statically, and the sandbox reports
it by name when the import fails.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ...runtime.skills import SkillEntry, skill_entry, valid_skill_name

__all__ = [
    "MAX_SKILL_BYTES",
    "SKILLS_SUBDIR",
    "SkillError",
    "SkillInfo",
    "SkillStore",
    "check_source",
    "default_skills_dir",
    "skills_disabled",
]

SKILLS_SUBDIR = Path(".mcp-codegen") / "skills"
"""Where skills live, relative to the directory of the config."""
MAX_SKILL_BYTES = 256 * 1024
_LIBRARIES = frozenset({"pydantic", "pydantic_core", "annotated_types", "typing_extensions"})


class SkillError(Exception):
    """A skill is refused, missing, or cannot be written; the message says why."""


@dataclass(frozen=True)
class SkillInfo:
    """A stored skill: what search and `skills list` show, and what is wrong with it."""

    name: str
    path: Path
    entry: SkillEntry | None
    problems: tuple[str, ...]

    @property
    def summary(self) -> str:
        """The first line of its docstring ('' when it cannot be parsed)."""
        return self.entry.summary if self.entry else ""

    @property
    def broken(self) -> bool:
        """Whether it would fail to import or be refused if saved now."""
        return bool(self.problems)


def default_skills_dir(config: str | os.PathLike[str]) -> Path:
    """The skills directory of the config file `config`: `<its dir>/.mcp-codegen/skills`."""
    return Path(config).resolve().parent / SKILLS_SUBDIR


# --- checking ------------------------------------------------------------------------


def _dotted(node: cst.BaseExpression | None) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


@lru_cache(maxsize=256)
def _defined_names(path: Path, mtime: float) -> frozenset[str]:
    """Top-level names a generated tool module defines (mtime: a cache key)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def _missing_in_package(import_dir: Path, parts: list[str], names: list[str]) -> list[str]:
    """The dotted `servers....` paths of an import that the package does not have.

    `parts` is the module after `servers` (`["crm"]` for `servers.crm`), `names`
    what is imported from it (empty for `import servers.crm`).
    """
    servers = import_dir / "servers"
    shown = ".".join(["servers", *parts])
    if len(parts) == 0:
        return [f"servers.{n}" for n in names if not (servers / n / "__init__.py").is_file()]
    if not (servers / parts[0] / "__init__.py").is_file():
        return [shown]
    if len(parts) == 1:
        return [f"{shown}.{n}" for n in names if not (servers / parts[0] / f"{n}.py").is_file()]
    module = servers / parts[0] / f"{parts[1]}.py"
    if len(parts) > 2 or not module.is_file():
        return [shown]
    defined = _defined_names(module, module.stat().st_mtime)
    return [f"{shown}.{n}" for n in names if n not in defined]


@dataclass
class _Checker:
    name: str
    package: str | None
    import_dir: Path | None
    skills_dir: Path | None
    problems: list[str]
    missing: list[str]

    def imports(self, module: str, names: list[str], line: int) -> None:
        root = module.split(".")[0]
        allowed = {"servers", "skills", *_LIBRARIES, *([self.package] if self.package else [])}
        if root not in allowed and root not in sys.stdlib_module_names:
            package = f"{self.package} (servers)" if self.package else "servers"
            self.problems.append(
                f"line {line}: import of {module!r} is not allowed; a skill may import the "
                f"standard library, pydantic, {package} and other skills"
            )
            return
        parts = module.split(".")
        if root == self.package:
            if len(parts) < 2 or parts[1] != "servers":
                return  # the package's own API (search_tools, _runtime, ...)
            parts = parts[1:]
        if parts[0] == "servers" and self.import_dir is not None:
            self.missing += _missing_in_package(self.import_dir, parts[1:], names)
        if parts[0] == "skills":
            skills = parts[1:2] if len(parts) > 1 else names
            for skill in skills:
                if skill == self.name:
                    self.problems.append(f"line {line}: a skill cannot import itself")
                elif (
                    self.skills_dir is not None and not (self.skills_dir / f"{skill}.py").is_file()
                ):
                    self.problems.append(f"line {line}: skill {skill!r} does not exist")


def check_source(
    name: str,
    source: str,
    *,
    package: str | None = None,
    import_dir: Path | None = None,
    skills_dir: Path | None = None,
) -> tuple[list[str], list[str]]:
    """Check a skill module: (its problems, the `servers...` paths it imports that are missing).

    `package` is the generated import package's name, `import_dir` its directory
    (to check what is imported from `servers`), `skills_dir` where other skills are.
    """
    if not valid_skill_name(name):
        return [
            f"{name!r} is not a valid skill name (a Python identifier, not starting with _)"
        ], []
    if len(source.encode("utf-8")) > MAX_SKILL_BYTES:
        return [f"the skill is over {MAX_SKILL_BYTES} bytes"], []
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        return [f"line {exc.raw_line}: syntax error: {exc.message}"], []
    checker = _Checker(name, package, import_dir, skills_dir, [], [])
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    definitions = 0
    for index, statement in enumerate(wrapper.module.body):
        line = positions[statement].start.line
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            public = not statement.name.value.startswith("_")
            definitions += public
            if public and not statement.get_docstring():
                kind = "class" if isinstance(statement, cst.ClassDef) else "function"
                checker.problems.append(
                    f"line {line}: {kind} {statement.name.value} has no docstring; say what it does"
                )
            continue
        if not isinstance(statement, cst.SimpleStatementLine):
            checker.problems.append(_not_allowed(statement, line))
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    checker.imports(_dotted(alias.name), [], line)
            elif isinstance(small, cst.ImportFrom):
                if small.relative:
                    checker.problems.append(
                        f"line {line}: relative imports are not allowed; "
                        "write `from skills.other import name`"
                    )
                    continue
                names = (
                    []
                    if isinstance(small.names, cst.ImportStar)
                    else [_dotted(alias.name) for alias in small.names]
                )
                checker.imports(_dotted(small.module), names, line)
            elif (
                index == 0
                and isinstance(small, cst.Expr)
                and isinstance(small.value, cst.SimpleString | cst.ConcatenatedString)
            ):
                continue  # the module's docstring
            else:
                checker.problems.append(_not_allowed(small, line))
    if not definitions:
        checker.problems.append("the skill defines no public function or class")
    return checker.problems, checker.missing


def _not_allowed(node: cst.CSTNode, line: int) -> str:
    kind = type(node).__name__
    return (
        f"line {line}: only imports, functions and classes may be at the top level of a "
        f"skill (found {kind})"
    )


# --- the store -----------------------------------------------------------------------


class SkillStore:
    """The skills of one directory, checked against one generated package.

    Args:
        directory: the skills directory (made when a skill is first saved).
        import_dir: the generated import package (`generated/mcp_demo/mcp_demo`);
            None skips the check of what skills import from `servers`.
    """

    def __init__(self, directory: str | os.PathLike[str], import_dir: Path | None = None):
        self.directory = Path(directory)
        self.import_dir = import_dir
        self.package = import_dir.name if import_dir is not None else None

    def path(self, name: str) -> Path:
        """The file of skill `name`.

        Raises:
            SkillError: `name` is not a valid skill name.
        """
        if not valid_skill_name(name):
            raise SkillError(
                f"{name!r} is not a valid skill name (a Python identifier, not starting with _)"
            )
        return self.directory / f"{name}.py"

    def names(self) -> list[str]:
        """The names of the stored skills, sorted."""
        with contextlib.suppress(OSError):
            return sorted(p.stem for p in self.directory.glob("*.py") if valid_skill_name(p.stem))
        return []

    def check(self, name: str, source: str) -> tuple[list[str], list[str]]:
        """(problems, missing `servers...` paths) of `source` as skill `name`."""
        return check_source(
            name,
            source,
            package=self.package,
            import_dir=self.import_dir,
            skills_dir=self.directory,
        )

    def save(self, name: str, source: str) -> bool:
        """Check `source` and write it as skill `name` atomically; True if it replaced one.

        Raises:
            SkillError: refused (every reason, one per line) or cannot be written.
        """
        path = self.path(name)
        problems, missing = self.check(name, source)
        problems += [f"{dotted} does not exist in the package" for dotted in missing]
        if problems:
            raise SkillError(f"skill {name!r} was not saved:\n" + "\n".join(problems))
        replaced = path.exists()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(source)
                os.chmod(temporary, 0o644)  # the sandbox's user reads it
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise SkillError(
                f"skill {name!r} cannot be written to {self.directory}: {exc}"
            ) from None
        return replaced

    def read(self, name: str) -> str:
        """The source of skill `name`.

        Raises:
            SkillError: no such skill, or it cannot be read.
        """
        path = self.path(name)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SkillError(self.missing_message(name)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SkillError(f"skill {name!r} cannot be read: {exc}") from None

    def remove(self, name: str) -> None:
        """Delete skill `name`.

        Raises:
            SkillError: no such skill, or it cannot be deleted.
        """
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise SkillError(self.missing_message(name)) from None
        except OSError as exc:
            raise SkillError(f"skill {name!r} cannot be removed: {exc}") from None

    def problems(self, name: str) -> list[str]:
        """What is wrong with the stored skill `name`, each as `skill 'name': ...`."""
        try:
            source = self.read(name)
        except SkillError as exc:
            return [str(exc)]
        problems, missing = self.check(name, source)
        found = [f"{dotted} no longer exists" for dotted in missing] + problems
        return [f"skill {name!r}: {problem}" for problem in found]

    def info(self, name: str) -> SkillInfo:
        """The entry and the problems of skill `name`."""
        path = self.path(name)
        return SkillInfo(name, path, skill_entry(path), tuple(self.problems(name)))

    def infos(self) -> Iterator[SkillInfo]:
        """Every stored skill, by name."""
        for name in self.names():
            yield self.info(name)

    def index_text(self) -> str:
        """What `read_module("skills")` shows: every skill with its summary, and the broken ones."""
        infos = list(self.infos())
        if not infos:
            return (
                '"""skills: none saved yet.\n\nIn execute_code, save_skill(fn) keeps a function '
                '(with a docstring) for later: from skills.<name> import <name>.\n"""\n'
            )
        width = max(len(info.name) for info in infos)
        lines = [f"skills: {len(infos)} saved functions; from skills.<name> import <name>.", ""]
        for info in infos:
            note = "  [BROKEN: " + "; ".join(info.problems) + "]" if info.broken else ""
            lines.append(f"{info.name:<{width}}  {info.summary}{note}".rstrip())
        return '"""' + "\n".join(lines).replace('"""', "'''") + '\n"""\n'

    async def handle(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Answer a bridge request to the reserved `$skills` server (a tool result)."""
        if tool != "save":
            return _text(f"unknown skills request {tool!r}", error=True)
        name, source = arguments.get("name"), arguments.get("source")
        if not isinstance(name, str) or not isinstance(source, str):
            return _text("a save request needs string 'name' and 'source'", error=True)
        try:
            replaced = self.save(name, source)
        except SkillError as exc:
            return _text(str(exc), error=True)
        verb = "replaced the skill" if replaced else "saved the skill"
        main = skill_entry(self.path(name))
        function = main.signature.split("(")[0].split()[-1] if main and main.signature else name
        return _text(f"{verb} {name!r}; import it with `from skills.{name} import {function}`")

    def missing_message(self, name: str) -> str:
        """The error text for a skill `name` that does not exist, with the ones that do."""
        known = ", ".join(self.names()) or "none"
        return f"no skill {name!r} (skills: {known})"


async def skills_disabled(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The `$skills` answer of an executor that has no skills directory."""
    return _text(
        "skills are off for this sandbox: it has no skills directory (give the executor "
        "a config or skills_dir, or `--skills DIR`)",
        error=True,
    )


def _text(text: str, *, error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": error}
