"""The package's modules as an agent reads them: by dotted path, or as MCP resources.

Only the agent-facing modules are readable: `servers` (the list of servers),
`servers.<server>` (a server's tools), `servers.<server>.<tool>` (one tool's
signature, models and docstring), and `servers.<server>.resources` and
`.prompts` (also by the path of one of their functions, as search shows it).
The catalogue is a fixed allow-list made when the server starts, so a path is
looked up, never joined onto the file system:
`..`, absolute paths and the `_runtime` internals are simply not in it.

Skills (`skills`, the index, and `skills.<name>`) are looked up on demand in the
skills directory, since code saves them while the server runs; a name must be
an identifier, so it cannot leave the directory either.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from ..sandbox.bridge.skills import SkillError, SkillStore

__all__ = ["URI_PREFIX", "Catalogue", "ModuleError"]

URI_PREFIX = "mcp-codegen://"
"""Resource URIs are `mcp-codegen://<package>/<dotted path>`."""
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FUNCTION_MODULES = ("resources", "prompts")
"""Modules of a server that hold several functions (search names each function)."""


class ModuleError(ValueError):
    """The path names no readable module."""


@dataclass(frozen=True)
class Catalogue:
    """Every readable module of one import package: dotted path -> file."""

    package: str
    files: dict[str, Path]
    skills: SkillStore | None = None

    @classmethod
    def of(cls, import_dir: Path, skills: SkillStore | None = None) -> Catalogue:
        """The modules under `import_dir/servers`, and the skills of `skills`."""
        servers = import_dir / "servers"
        files: dict[str, Path] = {}
        if (servers / "__init__.py").is_file():
            files["servers"] = servers / "__init__.py"
        for init in sorted(servers.glob("*/__init__.py")):
            server = init.parent.name
            if not _IDENTIFIER.match(server):
                continue
            files[f"servers.{server}"] = init
            for module in sorted(init.parent.glob("*.py")):
                if module.name != "__init__.py" and _IDENTIFIER.match(module.stem):
                    files[f"servers.{server}.{module.stem}"] = module
        return cls(import_dir.name, files, skills)

    def skill_paths(self) -> list[str]:
        """`skills` and `skills.<name>` of every skill saved now (none without a store)."""
        if self.skills is None:
            return []
        return ["skills", *(f"skills.{name}" for name in self.skills.names())]

    def resolve(self, path: str) -> str:
        """The dotted path `path` names (`servers.git.git_log`, also given with the
        package name in front, with slashes, or with `.py`).

        Raises:
            ModuleError: no such readable module; the message says what exists.
        """
        given = path.strip()
        if not given:
            raise ModuleError("empty path; start with read_module('servers')")
        if given.startswith("/") or ".." in given or "\\" in given:
            raise ModuleError(f"{_show(given)} is not a module path; use e.g. 'servers.time'")
        dotted = given.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        dotted = dotted.removeprefix(f"{self.package}.")
        if dotted in self.files:
            return dotted
        parent, _, _ = dotted.rpartition(".")
        if parent.rpartition(".")[2] in _FUNCTION_MODULES and parent in self.files:
            return parent  # `servers.x.resources.read`, as search shows it: its module
        if self.skills is not None and (dotted == "skills" or dotted.startswith("skills.")):
            name = dotted.partition(".")[2]
            if not name or name in self.skills.names():
                return dotted
            raise ModuleError(self.skills.missing_message(name))
        raise ModuleError(self._unknown(given, dotted))

    def read(self, path: str) -> tuple[str, str]:
        """(dotted path, source) of the module `path` names.

        Raises:
            ModuleError: no such readable module, or it cannot be read.
        """
        dotted = self.resolve(path)
        if self.skills is not None and (dotted == "skills" or dotted.startswith("skills.")):
            name = dotted.partition(".")[2]
            try:
                return dotted, self.skills.read(name) if name else self.skills.index_text()
            except SkillError as exc:
                raise ModuleError(str(exc)) from None
        try:
            return dotted, self.files[dotted].read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModuleError(f"{dotted}: cannot be read: {exc}") from None

    def uri(self, dotted: str) -> str:
        """The resource URI of a module."""
        return f"{URI_PREFIX}{self.package}/{dotted}"

    def from_uri(self, uri: str) -> str:
        """The dotted path of a resource URI.

        Raises:
            ModuleError: not one of this package's resources.
        """
        prefix = f"{URI_PREFIX}{self.package}/"
        if not uri.startswith(prefix):
            raise ModuleError(f"unknown resource {_show(uri)}; resources start with {prefix}")
        return self.resolve(uri[len(prefix) :])

    def _unknown(self, given: str, dotted: str) -> str:
        parts = dotted.split(".")
        if parts[0] != "servers" or not all(_IDENTIFIER.match(part) for part in parts):
            return (
                f"{_show(given)} is not a readable module; paths are 'servers', "
                "'servers.<server>' or 'servers.<server>.<tool>'"
            )
        parent = ".".join(parts[:-1]) if len(parts) > 1 else "servers"
        while parent and parent not in self.files:
            parent = parent.rpartition(".")[0]
        children = sorted(
            name.rpartition(".")[2]
            for name in self.files
            if name.rpartition(".")[0] == (parent or "servers")
        )
        close = difflib.get_close_matches(parts[-1], children, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        listing = ", ".join(children) if len(children) <= 40 else f"{len(children)} modules"
        return f"no module {_show(given)}{hint} ({parent or 'servers'} has: {listing})"


def _show(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
