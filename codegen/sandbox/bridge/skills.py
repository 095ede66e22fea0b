"""Skills on the host: checked in a process of their own, stored per session, shared by a person.

A skill is a module `<name>.py`. There are two kinds of directory:

- the shared directory (by default `<config dir>/.mcp-codegen/skills/`): skills
  every session imports (as the package `skills`), mounted read-only; only a
  person writes it (`mcp-codegen skills promote|rm`, or by hand), or sandboxes
  that a policy names (by default `run`/`exec`, a person at the keyboard);
- a session's own directory (see `skillsessions`): what `save_skill(fn)` keeps
  for that session only, mounted read-only into its sandbox alone.

`SkillStore` is one session's view: the shared skills, then its own. A save from
the sandbox (`handle`, the `$skills` server of the bridge) is checked by
`skillcheck` in a separate process with limits on time and memory, since the
source comes from a sandbox: size and nesting are bounded before any parser
sees it, and a parser that crashes or runs long costs only that process. Then
what it imports from `servers` and `skills` is looked up, the session's quotas
(count, size) are applied, and it is written atomically. A save never replaces
a shared skill.

A skill that passed once can break later (a tool it imports was removed by a
rebuild): `SkillStore.problems` finds that statically, and the sandbox reports
it by name when the import fails.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...pyparse import parse
from ...runtime.skills import SkillEntry, skill_entry, valid_skill_name
from ...telemetry import security_event
from ..concurrency import SKILL_CHECK, run_checker
from ..quotas import Quotas
from . import skillcheck
from .skillsessions import SessionSkills, live_sessions

__all__ = [
    "SKILLS_SUBDIR",
    "SkillError",
    "SkillInfo",
    "SkillStore",
    "check_isolated",
    "check_source",
    "default_skills_dir",
    "parse_skills_policy",
    "promote",
    "skills_disabled",
]

SKILLS_SUBDIR = Path(".mcp-codegen") / "skills"
"""Where skills live, relative to the directory of the config."""
SHARE_ORIGINS = ("run", "stdio", "http")
"""Who a policy may let save straight into the shared directory."""
_DEFAULT_SHARE = frozenset({"run"})
_CHECKER = Path(skillcheck.__file__)
_CHECK = SKILL_CHECK


class SkillError(Exception):
    """A skill is refused, missing, or cannot be written; the message says why."""


@dataclass(frozen=True)
class SkillInfo:
    """A stored skill: what search and `skills list` show, and what is wrong with it."""

    name: str
    path: Path
    entry: SkillEntry | None
    problems: tuple[str, ...]
    shared: bool = True

    @property
    def summary(self) -> str:
        """The first line of its docstring ('' when it cannot be parsed)."""
        return self.entry.summary if self.entry else ""

    @property
    def broken(self) -> bool:
        """Whether it would fail to import or be refused if saved now."""
        return bool(self.problems)


def default_skills_dir(config: str | os.PathLike[str]) -> Path:
    """The shared skills directory of the config file `config`: `<its dir>/.mcp-codegen/skills`."""
    return Path(config).resolve().parent / SKILLS_SUBDIR


def parse_skills_policy(raw: Any, source: str = "mcp.json") -> frozenset[str]:
    """Who saves straight into the shared skills, from the config's `skills` section.

    `{"skills": {"share": ["run"]}}` (the default) lets `mcp-codegen run`/`exec`
    share what they save; add `"stdio"` or `"http"` for `serve`'s sessions of that
    transport. Everyone else saves for their own session only.

    Raises:
        ConfigError: the section is not of that shape.
    """
    from ...runtime.errors import ConfigError

    if raw is None:
        return _DEFAULT_SHARE
    if not isinstance(raw, dict) or set(raw) - {"share"}:
        raise ConfigError(
            f"{source}: 'skills' must be an object with one key, 'share' "
            f"(a list of {', '.join(SHARE_ORIGINS)})"
        )
    share = raw.get("share", sorted(_DEFAULT_SHARE))
    if not isinstance(share, list) or not all(item in SHARE_ORIGINS for item in share):
        raise ConfigError(
            f"{source}: field 'skills.share' must be a list of {', '.join(SHARE_ORIGINS)}"
        )
    return frozenset(share)


# --- checking ------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _defined_names(path: Path, mtime: float) -> frozenset[str]:
    """Top-level names a generated tool module defines (mtime: a cache key)."""
    try:
        tree = parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
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
    if any(not part.isidentifier() for part in [*parts, *names]):
        return [shown]
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


def _verify_imports(
    name: str,
    imports: list[dict[str, Any]],
    package: str | None,
    import_dir: Path | None,
    skill_dirs: list[Path] | None,
    missing_skill: str = "does not exist",
) -> tuple[list[str], list[str]]:
    """(problems, missing `servers...` paths) of the imports a checker report lists."""
    problems: list[str] = []
    missing: list[str] = []
    for item in imports:
        module, names, line = str(item["module"]), [str(n) for n in item["names"]], item["line"]
        parts = module.split(".")
        if parts[0] == package:
            if len(parts) < 2 or parts[1] != "servers":
                continue  # the package's own API (search_tools, _runtime, ...)
            parts = parts[1:]
        if parts[0] == "servers" and import_dir is not None:
            missing += _missing_in_package(import_dir, parts[1:], names)
        if parts[0] == "skills":
            for skill in parts[1:2] if len(parts) > 1 else names:
                if skill == name:
                    problems.append(f"line {line}: a skill cannot import itself")
                elif skill_dirs is not None and not any(
                    (directory / f"{skill}.py").is_file() for directory in skill_dirs
                ):
                    problems.append(f"line {line}: skill {skill!r} {missing_skill}")
    return problems, missing


def check_source(
    name: str,
    source: str,
    *,
    package: str | None = None,
    import_dir: Path | None = None,
    skills_dir: Path | list[Path] | None = None,
    missing_skill: str = "does not exist",
) -> tuple[list[str], list[str]]:
    """Check a skill module in this process: (its problems, the `servers...` paths it imports
    that are missing).

    For sources already on the host's disk (stored skills, a person's files); a
    source from a sandbox goes through `check_isolated`. `package` is the generated
    import package's name, `import_dir` its directory, `skills_dir` where the
    skills it may import are.
    """
    if not valid_skill_name(name):
        return [
            f"{name!r} is not a valid skill name (a Python identifier, not starting with _)"
        ], []
    report = skillcheck.check(name, source, package)
    return _with_imports(name, report.to_json(), package, import_dir, skills_dir, missing_skill)


def _with_imports(
    name: str,
    report: dict[str, Any],
    package: str | None,
    import_dir: Path | None,
    skills_dir: Path | list[Path] | None,
    missing_skill: str = "does not exist",
) -> tuple[list[str], list[str]]:
    dirs = [skills_dir] if isinstance(skills_dir, Path) else skills_dir
    problems, missing = _verify_imports(
        name, report["imports"], package, import_dir, dirs, missing_skill
    )
    return [*report["problems"], *problems], missing


async def check_isolated(name: str, source: str, package: str | None) -> dict[str, Any]:
    """`skillcheck` of `source` in a process of its own, with limits; its report.

    The process gets the address space and CPU of `concurrency.SKILL_CHECK`, and is
    killed past its seconds or when the caller is cancelled; checker processes share
    one bound on how many run at once (`concurrency.run_checker`). A crash, a limit
    or an unreadable answer is a report with one problem, never an exception.
    """
    if len(source) > skillcheck.MAX_SOURCE_BYTES:
        return {"problems": [f"the skill is over {skillcheck.MAX_SOURCE_BYTES} bytes"]}
    request = json.dumps({"name": name, "source": source, "package": package}).encode("utf-8")
    bounds = _CHECK
    command = [sys.executable, "-I", "-S", str(_CHECKER)]
    command += [str(bounds.memory_mb), str(bounds.cpu_seconds)]  # it limits itself first
    finished = await run_checker(command, bounds.seconds, input=request)
    if finished is None:
        return {"problems": [f"checking the skill took more than {bounds.seconds:g} s"]}
    output = finished.stdout
    try:
        report = json.loads(output[: 4 * 1024 * 1024])
    except ValueError:
        report = None
    if finished.returncode != 0 or not isinstance(report, dict):
        return {
            "problems": [
                f"the skill could not be checked (the checker ended with status "
                f"{finished.returncode}): it is too large or too deeply nested"
            ]
        }
    return _well_formed(report)


def _well_formed(report: dict[str, Any]) -> dict[str, Any]:
    """The checker's report with every field of the expected type (it parsed hostile text)."""
    problems = [str(p) for p in report.get("problems") or [] if isinstance(p, str)]
    imports = []
    for item in report.get("imports") or []:
        if isinstance(item, dict) and isinstance(item.get("module"), str):
            names = [str(n) for n in item.get("names") or [] if isinstance(n, str)]
            line = item.get("line") if isinstance(item.get("line"), int) else 0
            imports.append({"module": item["module"], "names": names, "line": line})
    main = report.get("main") if isinstance(report.get("main"), str) else None
    return {"problems": problems, "imports": imports, "main": main}


# --- the store -----------------------------------------------------------------------


def _write_atomically(directory: Path, name: str, source: str) -> None:
    """Write `directory/name.py`, readable by the sandbox's user, in one step.

    Raises:
        OSError: it cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(source)
        os.chmod(temporary, 0o644)
        os.replace(temporary, directory / f"{name}.py")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class SkillStore:
    """The skills one session sees: the shared ones, then its own.

    Args:
        directory: the shared skills directory.
        import_dir: the generated import package (`generated/mcp_demo/mcp_demo`);
            None skips the check of what skills import from `servers`.
        session: the session's own directory, where its saves go; None saves into
            the shared directory (for who the policy lets share, and for tests).
        quotas: the count and sizes of skills one session may save.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        import_dir: Path | None = None,
        *,
        session: Path | None = None,
        quotas: Quotas | None = None,
    ):
        self.directory = Path(directory)
        self.session = session
        self.import_dir = import_dir
        self.package = import_dir.name if import_dir is not None else None
        self.quotas = quotas or Quotas()
        self._saved: dict[str, int] = {}
        """name -> bytes of what this store saved into the shared directory."""
        self._lock: asyncio.Lock | None = None

    @property
    def directories(self) -> list[Path]:
        """Where skills are looked up, in order: the shared directory, then the session's."""
        return [self.directory, *([self.session] if self.session is not None else [])]

    @property
    def search_path(self) -> str:
        """The directories as one string, as search and `$MCP_CODEGEN_SKILLS_DIR` take them."""
        return os.pathsep.join(str(directory) for directory in self.directories)

    def path(self, name: str) -> Path:
        """The file of skill `name` (shared first), or where saving it would put it.

        Raises:
            SkillError: `name` is not a valid skill name.
        """
        if not valid_skill_name(name):
            raise SkillError(
                f"{name!r} is not a valid skill name (a Python identifier, not starting with _)"
            )
        for directory in self.directories:
            if (directory / f"{name}.py").is_file():
                return directory / f"{name}.py"
        return (self.session or self.directory) / f"{name}.py"

    def _names_in(self, directory: Path | None) -> list[str]:
        if directory is None:
            return []
        with contextlib.suppress(OSError):
            return sorted(p.stem for p in directory.glob("*.py") if valid_skill_name(p.stem))
        return []

    def names(self) -> list[str]:
        """The names of the skills this session sees, sorted."""
        return sorted({name for d in self.directories for name in self._names_in(d)})

    def shared(self, name: str) -> bool:
        """Whether `name` is a shared skill (which no sandbox may replace)."""
        return valid_skill_name(name) and (self.directory / f"{name}.py").is_file()

    def check(self, name: str, source: str) -> tuple[list[str], list[str]]:
        """(problems, missing `servers...` paths) of `source` as skill `name`, in this process."""
        return check_source(
            name,
            source,
            package=self.package,
            import_dir=self.import_dir,
            skills_dir=self.directories,
        )

    def _quota_problem(self, name: str, size: int) -> str | None:
        quotas = self.quotas
        if size > quotas.skill_bytes:
            return f"the skill is {size} bytes, over the limit of {quotas.skill_bytes}"
        if self.session is not None:
            held = {
                p.stem: p.stat().st_size
                for p in self.session.glob("*.py")
                if valid_skill_name(p.stem) and p.is_file()
            }
        else:
            held = dict(self._saved)
        held[name] = size
        if len(held) > quotas.skills:
            return (
                f"this session already has {len(held) - 1} skills, the most it may keep; "
                "replace one of them instead"
            )
        if sum(held.values()) > quotas.skills_bytes:
            return f"this session's skills would pass {quotas.skills_bytes} bytes together"
        return None

    async def save(self, name: str, source: str) -> bool:
        """Check `source` (in a process of its own) and write it as skill `name`;
        True if it replaced one of the session's.

        Raises:
            SkillError: refused (every reason, one per line) or cannot be written.
        """
        if not valid_skill_name(name):
            security_event("skill_rejected", reason="name")  # telemetry
            raise SkillError(
                f"{name!r} is not a valid skill name (a Python identifier, not starting with _)"
            )
        if self.shared(name):
            security_event("skill_rejected", reason="shared_name")  # telemetry
            raise SkillError(
                f"skill {name!r} was not saved: a shared skill of that name exists, and a "
                "sandbox cannot replace it; save yours under another name"
            )
        size = len(source.encode("utf-8", "replace"))
        quota = self._quota_problem(name, size)
        if quota:
            security_event("skill_rejected", reason="quota")  # telemetry
            raise SkillError(f"skill {name!r} was not saved: {quota}")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one check at a time per session
            report = await check_isolated(name, source, self.package)
            problems, missing = _with_imports(
                name, report, self.package, self.import_dir, self.directories
            )
            problems += [f"{dotted} does not exist in the package" for dotted in missing]
            if problems:
                security_event("skill_rejected", reason="checker")  # telemetry
                raise SkillError(f"skill {name!r} was not saved:\n" + "\n".join(problems))
            quota = self._quota_problem(name, size)  # again: another save may have landed
            if quota:
                security_event("skill_rejected", reason="quota")  # telemetry
                raise SkillError(f"skill {name!r} was not saved: {quota}")
            target = self.session or self.directory
            replaced = (target / f"{name}.py").exists()
            try:
                await asyncio.to_thread(_write_atomically, target, name, source)
            except OSError as exc:
                raise SkillError(f"skill {name!r} cannot be written to {target}: {exc}") from None
            if self.session is None:
                self._saved[name] = size
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
        """Delete skill `name` (the shared one if there is one).

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
        return SkillInfo(
            name,
            path,
            skill_entry(path),
            tuple(self.problems(name)),
            shared=path.parent == self.directory,
        )

    def infos(self) -> Iterator[SkillInfo]:
        """Every skill this session sees, by name."""
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
            mine = "" if info.shared or self.session is None else "  [this session only]"
            note = "  [BROKEN: " + "; ".join(info.problems) + "]" if info.broken else ""
            lines.append(f"{info.name:<{width}}  {info.summary}{mine}{note}".rstrip())
        return '"""' + "\n".join(lines).replace('"""', "'''") + '\n"""\n'

    async def handle(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Answer a bridge request to the reserved `$skills` server (a tool result)."""
        if tool != "save":
            return _text(f"unknown skills request {tool!r}", error=True)
        name, source = arguments.get("name"), arguments.get("source")
        if not isinstance(name, str) or not isinstance(source, str):
            return _text("a save request needs string 'name' and 'source'", error=True)
        try:
            replaced = await self.save(name, source)
        except SkillError as exc:
            return _text(str(exc), error=True)
        verb = "replaced the skill" if replaced else "saved the skill"
        main = skill_entry(self.path(name))
        function = main.signature.split("(")[0].split()[-1] if main and main.signature else name
        scope = (
            "; it is this session's only, until a person shares it "
            f"(`mcp-codegen skills promote {name}`)"
            if self.session is not None
            else ""
        )
        return _text(
            f"{verb} {name!r}; import it with `from skills.{name} import {function}`{scope}"
        )

    def missing_message(self, name: str) -> str:
        """The error text for a skill `name` that does not exist, with the ones that do."""
        known = ", ".join(self.names()) or "none"
        return f"no skill {name!r} (skills: {known})"


def promote(
    shared: Path,
    name: str,
    *,
    session: str | None = None,
    import_dir: Path | None = None,
    replace: bool = False,
) -> tuple[SessionSkills, Path]:
    """Move session skill `name` into the shared directory: (its session, its new path).

    The skill is checked again, and the skills it imports must be shared already.

    Raises:
        SkillError: no live session holds it (or several do and `session` is not
            given), it is refused, a shared skill of that name exists and
            `replace` is not set, or it cannot be written.
    """
    if not valid_skill_name(name):
        raise SkillError(
            f"{name!r} is not a valid skill name (a Python identifier, not starting with _)"
        )
    sessions = live_sessions(shared)
    holding = [s for s in sessions if (s.skills / f"{name}.py").is_file()]
    if session is not None:
        holding = [s for s in holding if s.id == session]
    if not holding:
        where = f"session {session!r}" if session else "no live session"
        known = ", ".join(s.id for s in sessions) or "none"
        raise SkillError(f"{where} holds a skill {name!r} (live sessions: {known})")
    if len(holding) > 1:
        ids = ", ".join(s.id for s in holding)
        raise SkillError(f"sessions {ids} each hold a skill {name!r}; pass --session ID")
    (chosen,) = holding
    source = (chosen.skills / f"{name}.py").read_text(encoding="utf-8")
    store = SkillStore(shared, import_dir)
    # What it imports from skills must be shared too, or other sessions could not import it.
    problems, missing = check_source(
        name,
        source,
        package=store.package,
        import_dir=import_dir,
        skills_dir=shared,
        missing_skill="is not shared; promote it first",
    )
    problems += [f"{dotted} does not exist in the package" for dotted in missing]
    if problems:
        raise SkillError(f"skill {name!r} was not promoted:\n" + "\n".join(problems))
    if store.shared(name) and not replace:
        raise SkillError(
            f"a shared skill {name!r} exists; pass --replace to replace it with the one of "
            f"session {chosen.id}"
        )
    try:
        _write_atomically(shared, name, source)
        (chosen.skills / f"{name}.py").unlink()
    except OSError as exc:
        raise SkillError(f"skill {name!r} cannot be promoted to {shared}: {exc}") from None
    return chosen, shared / f"{name}.py"


async def skills_disabled(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The `$skills` answer of an executor that has no skills directory."""
    return _text(
        "skills are off for this sandbox: it has no skills directory (give the executor "
        "a config or skills_dir, or `--skills DIR`)",
        error=True,
    )


def _text(text: str, *, error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": error}
