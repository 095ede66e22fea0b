"""The rules a skill's source must follow, checked with CPython's own parser.

A skill is code from an untrusted author (a model, in a session that may be
hostile) that other code later imports. So importing it must run nothing but
plain definitions:

- the top level holds a docstring, imports and `def`/`async def`/`class`, nothing else;
- imports are absolute, of an allowlist: a set of standard-library modules that
  compute (no `os`, `sys`, `subprocess`, `socket`, `ctypes`, `importlib`,
  `pickle`, `threading`, ...), pydantic, the generated package (`servers`) and
  other skills;
- decorators only from a short allowlist (`staticmethod`, `property`,
  `functools.cache`, `dataclasses.dataclass`, ...), called, if at all, with constants;
- defaults are constants, names or displays of them; annotations are type
  expressions (names, `X[...]`, `X | Y`, string forms of those), so evaluating
  them (pydantic does, at import) calls nothing;
- a class has no keywords (no `metaclass=`), bases that are type expressions,
  and a body of methods, a docstring and annotated fields only; it does not
  define the hooks that run when a class is made or subscripted
  (`__init_subclass__`, `__class_getitem__`, `__set_name__`, ...);
- anywhere, even in function bodies: no `eval`, `exec`, `compile`, `__import__`,
  `globals`, `vars`, no attributes such as `__globals__`, `__subclasses__` or
  `os`, and no import outside the allowlist. These body rules make a hostile
  skill harder to hide from the person who promotes it; they are not the
  boundary (the sandbox is).

This file is standard library only and is run as a script by path
(`python -I -S skillcheck.py`), in a process of its own with limits on time and
memory: the host never parses a sandbox's source itself, so a parser that
crashes or runs long costs only that process. It reads one JSON request on
stdin (`{"name", "source", "package"}`) and writes one JSON report on stdout.
"""

from __future__ import annotations

import ast
import contextlib
import json
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALLOWED_MODULES",
    "MAX_DEPTH",
    "MAX_SOURCE_BYTES",
    "Report",
    "check",
    "main",
]

MAX_SOURCE_BYTES = 256 * 1024
"""Never parsed beyond this, whatever the quota says."""
MAX_DEPTH = 64
"""The deepest nesting of syntax tree nodes a skill may have."""
_MAX_NODES = 50_000
_MAX_LINES = 5_000

_STDLIB = frozenset(
    {
        "__future__",
        "abc",
        "array",
        "asyncio",
        "base64",
        "binascii",
        "bisect",
        "calendar",
        "cmath",
        "collections",
        "colorsys",
        "contextlib",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "email.utils",
        "enum",
        "errno",
        "fnmatch",
        "fractions",
        "functools",
        "graphlib",
        "gzip",
        "hashlib",
        "heapq",
        "hmac",
        "html",
        "io",
        "ipaddress",
        "itertools",
        "json",
        "keyword",
        "math",
        "numbers",
        "operator",
        "pprint",
        "random",
        "re",
        "reprlib",
        "secrets",
        "shlex",
        "statistics",
        "string",
        "struct",
        "textwrap",
        "time",
        "typing",
        "unicodedata",
        "urllib.parse",
        "uuid",
        "zlib",
        "zoneinfo",
    }
)
_LIBRARIES = frozenset({"pydantic", "pydantic_core", "annotated_types", "typing_extensions"})
ALLOWED_MODULES = _STDLIB | _LIBRARIES
"""Modules (and their submodules) a skill may import, besides `servers`, the package and skills."""

# Names and attributes that reach the interpreter's machinery or modules outside
# the allowlist; refused anywhere in a skill.
_DENIED_NAMES = frozenset(
    {
        "__import__",
        "__builtins__",
        "breakpoint",
        "compile",
        "eval",
        "exec",
        "globals",
        "locals",
        "vars",
    }
)
_DENIED_ATTRIBUTES = frozenset(
    {
        "__base__",
        "__bases__",
        "__builtins__",
        "__closure__",
        "__code__",
        "__dict__",
        "__func__",
        "__getattribute__",
        "__globals__",
        "__import__",
        "__loader__",
        "__mro__",
        "__reduce__",
        "__reduce_ex__",
        "__spec__",
        "__subclasses__",
        "builtins",
        "create_subprocess_exec",
        "create_subprocess_shell",
        "ctypes",
        "gc",
        "importlib",
        "marshal",
        "mmap",
        "multiprocessing",
        "os",
        "pickle",
        "posix",
        "pty",
        "shutil",
        "signal",
        "socket",
        "subprocess",
        "sys",
        "threading",
        "_thread",
    }
)
# Methods that run when a class is created, subclassed, subscripted or given an
# attribute, or when a module attribute is looked up: import-time code in disguise.
_DENIED_METHODS = frozenset(
    {
        "__init_subclass__",
        "__class_getitem__",
        "__set_name__",
        "__prepare__",
        "__pydantic_init_subclass__",
        "__get_pydantic_core_schema__",
        "__get_pydantic_json_schema__",
    }
)
_DENIED_MODULE_FUNCTIONS = frozenset({"__getattr__", "__dir__"})

_BUILTIN_DECORATORS = frozenset({"staticmethod", "classmethod", "property"})
_DECORATORS = frozenset(
    {
        "abc.abstractmethod",
        "contextlib.asynccontextmanager",
        "contextlib.contextmanager",
        "dataclasses.dataclass",
        "enum.unique",
        "functools.cache",
        "functools.cached_property",
        "functools.lru_cache",
        "functools.total_ordering",
        "pydantic.field_validator",
        "pydantic.model_validator",
        "typing.final",
        "typing.overload",
        "typing_extensions.final",
        "typing_extensions.overload",
        "typing_extensions.override",
    }
)
_DECORATOR_FACTORIES = frozenset(
    {
        "dataclasses.dataclass",
        "functools.lru_cache",
        "pydantic.field_validator",
        "pydantic.model_validator",
    }
)
_PROPERTY_PARTS = frozenset({"setter", "getter", "deleter"})


@dataclass
class Report:
    """What the checker found: problems (each `line N: ...`), and the imports to verify."""

    problems: list[str] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)
    """Each `{"module", "names", "line"}` of `servers...`, `<package>...` and `skills...`."""
    main: str | None = None
    """The name of the main definition (named like the skill, else the first public one)."""

    def to_json(self) -> dict[str, Any]:
        """The report as the JSON the host reads."""
        return {"problems": self.problems, "imports": self.imports, "main": self.main}


def _too_deep(tree: ast.AST) -> bool:
    """Whether the tree nests deeper than MAX_DEPTH or has too many nodes (iteratively)."""
    todo: deque[tuple[ast.AST, int]] = deque([(tree, 0)])
    seen = 0
    while todo:
        node, depth = todo.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > _MAX_NODES:
            return True
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return False


def _dotted(node: ast.AST) -> str | None:
    """`a.b.c` of a Name or a chain of Attributes on a Name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _allowed_module(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:n]) in ALLOWED_MODULES for n in range(1, len(parts) + 1))


class _Checker:
    def __init__(self, name: str, package: str | None):
        self.name = name
        self.package = package
        self.report = Report()
        # Top-level names bound by imports -> what they are ("functools.cache"),
        # and by definitions -> "" (a name of the skill itself).
        self.bound: dict[str, str] = {}

    def problem(self, node: ast.AST, text: str) -> None:
        line = getattr(node, "lineno", 0)
        self.report.problems.append(f"line {line}: {text}")

    # --- imports -------------------------------------------------------------

    def _module_allowed(self, module: str, node: ast.AST) -> bool:
        root = module.split(".")[0]
        if root in ("servers", "skills") or (self.package and root == self.package):
            return True
        if _allowed_module(module):
            return True
        package = f"{self.package} (servers)" if self.package else "servers"
        self.problem(
            node,
            f"import of {module!r} is not allowed; a skill may import computing modules of "
            f"the standard library (json, re, datetime, asyncio, ...), pydantic, {package} "
            "and other skills",
        )
        return False

    def _record(self, module: str, names: list[str], node: ast.AST) -> None:
        root = module.split(".")[0]
        if root in ("servers", "skills") or (self.package and root == self.package):
            self.report.imports.append(
                {"module": module, "names": names, "line": getattr(node, "lineno", 0)}
            )

    def import_(self, node: ast.Import, top: bool) -> None:
        for alias in node.names:
            if not self._module_allowed(alias.name, node):
                continue
            if top:
                self._record(alias.name, [], node)
                bound = alias.asname or alias.name.split(".")[0]
                self.bound[bound] = alias.name if alias.asname else bound

    def import_from(self, node: ast.ImportFrom, top: bool) -> None:
        if node.level:
            self.problem(
                node, "relative imports are not allowed; write `from skills.other import name`"
            )
            return
        module = node.module or ""
        if any(alias.name == "*" for alias in node.names):
            self.problem(node, f"`from {module} import *` is not allowed; name what you import")
            return
        if not self._module_allowed(module, node):
            return
        if top:
            names = [alias.name for alias in node.names]
            self._record(module, names, node)
            for alias in node.names:
                self.bound[alias.asname or alias.name] = f"{module}.{alias.name}"

    # --- expressions that are evaluated at import -------------------------------

    def type_expression(self, node: ast.expr | None, where: str) -> None:
        """An annotation or a base: names, X[...], X | Y, constants, and strings of those."""
        if node is None:
            return
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                self._string_annotation(node, where)
            return
        if isinstance(node, ast.Name | ast.Attribute):
            if _dotted(node) is None:
                self.problem(node, f"{where} must be a type, not an expression")
            return
        if isinstance(node, ast.Subscript):
            if _dotted(node.value) is None:
                self.problem(node, f"{where} must be a type, not an expression")
                return
            self.type_expression(node.slice, where)
            return
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            self.type_expression(node.left, where)
            self.type_expression(node.right, where)
            return
        if isinstance(node, ast.Tuple | ast.List):
            for element in node.elts:
                self.type_expression(element, where)
            return
        self.problem(
            node, f"{where} must be a type (a name, X[...] or X | Y), not {type(node).__name__}"
        )

    def _string_annotation(self, node: ast.Constant, where: str) -> None:
        # pydantic and typing.get_type_hints evaluate string annotations: check them too.
        text = str(node.value)
        if len(text) > 1000:
            self.problem(node, f"{where} is too long")
            return
        try:
            parsed = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return  # not evaluable as code: a plain string (Literal["..."] values)
        if _too_deep(parsed):
            self.problem(node, f"{where} is nested too deeply")
            return
        inner = parsed.body
        for child in ast.walk(inner):
            ast.copy_location(child, node)
        self.type_expression(inner, where)

    def inert(self, node: ast.expr | None, where: str) -> None:
        """A default or a field's value: constants, names, and displays of them."""
        if node is None:
            return
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, ast.Name | ast.Attribute):
            if _dotted(node) is None:
                self.problem(node, f"{where} must be a constant or a name, not an expression")
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            return
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            for element in node.elts:
                self.inert(element, where)
            return
        if isinstance(node, ast.Dict):
            for key in node.keys:
                self.inert(key, where)
            for value in node.values:
                self.inert(value, where)
            return
        kind = "a call" if isinstance(node, ast.Call) else type(node).__name__
        self.problem(
            node,
            f"{where} must be a constant, a name, or a tuple/list/dict of those ({kind} runs "
            "code at import)",
        )

    def decorator(self, node: ast.expr, class_names: dict[str, bool] | None) -> None:
        target = node.func if isinstance(node, ast.Call) else node
        dotted = _dotted(target)
        resolved = self._resolve(dotted, class_names) if dotted else None
        if resolved is None and dotted and class_names is not None:
            head, _, part = dotted.partition(".")
            if class_names.get(head) and part in _PROPERTY_PARTS and not isinstance(node, ast.Call):
                return  # @name.setter of a property of this class
        if resolved is None or resolved not in (_DECORATORS | _BUILTIN_DECORATORS):
            shown = dotted or type(node).__name__
            self.problem(
                node,
                f"decorator @{shown} is not allowed; a skill may use staticmethod, "
                "classmethod, property, functools.cache/lru_cache/cached_property, "
                "dataclasses.dataclass, abc.abstractmethod, typing.overload, "
                "contextlib.contextmanager and pydantic validators",
            )
            return
        if isinstance(node, ast.Call):
            if resolved not in _DECORATOR_FACTORIES:
                self.problem(node, f"decorator @{dotted} takes no arguments here")
                return
            for argument in node.args:
                self.inert(argument, "a decorator's argument")
            for keyword in node.keywords:
                self.inert(keyword.value, "a decorator's argument")

    def _resolve(self, dotted: str, class_names: dict[str, bool] | None) -> str | None:
        """The qualified name a decorator refers to, or None if it is the skill's own."""
        head, _, rest = dotted.partition(".")
        if class_names is not None and head in class_names:
            return None  # a name of the class body shadows the module's
        if head in self.bound:
            base = self.bound[head]
            if not base:
                return None
            return f"{base}.{rest}" if rest else base
        if not rest and head in _BUILTIN_DECORATORS:
            return head
        return None

    # --- definitions -----------------------------------------------------------

    def function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, class_names: dict[str, bool] | None
    ) -> None:
        kind = "method" if class_names is not None else "function"
        if class_names is not None and node.name in _DENIED_METHODS:
            self.problem(node, f"method {node.name} is not allowed: it runs when a class is made")
        if class_names is None and node.name in _DENIED_MODULE_FUNCTIONS:
            self.problem(node, f"a module-level {node.name} is not allowed in a skill")
        for decorator in node.decorator_list:
            self.decorator(decorator, class_names)
        arguments = node.args
        for default in [*arguments.defaults, *arguments.kw_defaults]:
            self.inert(default, f"a default of {kind} {node.name}")
        for argument in [
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            *([arguments.vararg] if arguments.vararg else []),
            *([arguments.kwarg] if arguments.kwarg else []),
        ]:
            self.type_expression(argument.annotation, f"the annotation of {argument.arg}")
        self.type_expression(node.returns, f"the return annotation of {node.name}")

    def class_(self, node: ast.ClassDef, outer: dict[str, bool] | None) -> None:
        for decorator in node.decorator_list:
            self.decorator(decorator, outer)
        if node.keywords:
            self.problem(
                node,
                f"class {node.name}: keywords in its bases (metaclass=...) are not allowed",
            )
        for base in node.bases:
            self.type_expression(base, f"a base of class {node.name}")
        names: dict[str, bool] = {}  # name in the class body -> is a property
        for index, statement in enumerate(node.body):
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                self.function(statement, names)
                names[statement.name] = any(
                    _dotted(d) == "property" for d in statement.decorator_list
                ) or names.get(statement.name, False)
            elif isinstance(statement, ast.ClassDef):
                self.class_(statement, names)
                names[statement.name] = False
            elif isinstance(statement, ast.AnnAssign):
                if not isinstance(statement.target, ast.Name):
                    self.problem(statement, "a class field must be a plain name")
                    continue
                self.type_expression(statement.annotation, f"field {statement.target.id}")
                self.inert(statement.value, f"the value of field {statement.target.id}")
                names[statement.target.id] = False
            elif _is_docstring(statement, index) or isinstance(statement, ast.Pass):
                continue
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                continue  # `...`
            else:
                self.problem(
                    statement,
                    f"class {node.name}: only methods, a docstring and annotated fields "
                    f"(`name: type = constant`) may be in a class body (found "
                    f"{type(statement).__name__})",
                )

    # --- the whole module ------------------------------------------------------

    def module(self, tree: ast.Module) -> None:
        definitions: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = []
        for index, statement in enumerate(tree.body):
            if isinstance(statement, ast.Import):
                self.import_(statement, top=True)
            elif isinstance(statement, ast.ImportFrom):
                self.import_from(statement, top=True)
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                definitions.append(statement)
                if isinstance(statement, ast.ClassDef):
                    self.class_(statement, None)
                else:
                    self.function(statement, None)
                self.bound[statement.name] = ""
                if not statement.name.startswith("_") and not ast.get_docstring(statement):
                    kind = "class" if isinstance(statement, ast.ClassDef) else "function"
                    self.problem(
                        statement, f"{kind} {statement.name} has no docstring; say what it does"
                    )
            elif _is_docstring(statement, index):
                continue
            else:
                self.problem(
                    statement,
                    "only imports, functions and classes may be at the top level of a skill "
                    f"(found {type(statement).__name__})",
                )
        self._everywhere(tree)
        public = [d for d in definitions if not d.name.startswith("_")]
        if not public:
            self.report.problems.append("the skill defines no public function or class")
        named = [d for d in public if d.name == self.name]
        self.report.main = (named or public)[0].name if public else None

    def _everywhere(self, tree: ast.Module) -> None:
        """The rules that hold in function bodies too (ast.walk is iterative)."""
        top = {id(s) for s in tree.body if isinstance(s, ast.Import | ast.ImportFrom)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in _DENIED_NAMES:
                self.problem(node, f"{node.id} is not allowed in a skill")
            elif isinstance(node, ast.Attribute) and node.attr in _DENIED_ATTRIBUTES:
                self.problem(node, f"the attribute .{node.attr} is not allowed in a skill")
            elif isinstance(node, ast.Call) and _dotted(node.func) in (
                "getattr",
                "setattr",
                "delattr",
            ):
                self._attribute_call(node)
            elif isinstance(node, ast.Import) and id(node) not in top:
                self.import_(node, top=False)
            elif isinstance(node, ast.ImportFrom) and id(node) not in top:
                self.import_from(node, top=False)

    def _attribute_call(self, node: ast.Call) -> None:
        name = node.args[1] if len(node.args) > 1 else None
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            self.problem(node, f"{_dotted(node.func)} needs the attribute's name as a constant")
        elif name.value in _DENIED_ATTRIBUTES or name.value in _DENIED_NAMES:
            self.problem(node, f"the attribute .{name.value} is not allowed in a skill")


def _is_docstring(statement: ast.stmt, index: int) -> bool:
    return (
        index == 0
        and isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _line_of(problem: str) -> int:
    head = problem.split(":", 1)[0]
    number = head.removeprefix("line ")
    return int(number) if head.startswith("line ") and number.isdigit() else 1 << 30


def check(name: str, source: str, package: str | None = None) -> Report:
    """Check `source` as skill `name` (see the module's docstring); never raises for bad input."""
    report = Report()
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError:
        report.problems.append("the skill is not valid UTF-8 text")
        return report
    if size > MAX_SOURCE_BYTES:
        report.problems.append(f"the skill is {size} bytes, over {MAX_SOURCE_BYTES}")
        return report
    if source.count("\n") > _MAX_LINES:
        report.problems.append(f"the skill has more than {_MAX_LINES} lines")
        return report
    try:
        tree = ast.parse(source, f"<skill {name}>")
    except SyntaxError as exc:
        report.problems.append(f"line {exc.lineno}: syntax error: {exc.msg}")
        return report
    except (RecursionError, MemoryError):
        report.problems.append("the skill is nested too deeply to be parsed")
        return report
    except ValueError as exc:  # a NUL byte
        report.problems.append(f"the skill cannot be parsed: {exc}")
        return report
    if _too_deep(tree):
        report.problems.append(
            f"the skill is nested too deeply (more than {MAX_DEPTH} levels) or too large"
        )
        return report
    checker = _Checker(name, package)
    checker.module(tree)
    # One line per problem and place, in the order of the source.
    problems = list(dict.fromkeys(checker.report.problems))
    checker.report.problems = sorted(problems, key=_line_of)
    return checker.report


def _limit_self(memory_mb: int, cpu_seconds: int) -> None:
    """Limits on this process, set before any untrusted byte is read."""
    import resource

    for limit, value in (
        (resource.RLIMIT_AS, memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_NOFILE, 16),
    ):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(limit, (value, value))


def main() -> None:
    """Read one request from stdin, check it, write the report to stdout."""
    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    cpu_seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    _limit_self(memory_mb, cpu_seconds)
    request = json.loads(sys.stdin.buffer.read(MAX_SOURCE_BYTES * 8))
    report = check(str(request["name"]), str(request["source"]), request.get("package"))
    sys.stdout.write(json.dumps(report.to_json()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
