"""Skills: saved from sandboxed code, checked on the host, imported later, managed by the CLI.

The sandbox tests use real gVisor and the demo CRM server; the rest check the
pieces (the module `save_skill` makes, the host's checks, the listing) directly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import linecache
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from codegen.cli.skills import skills_command
from codegen.runtime.skills import SkillError, skill_entries, skill_module_source
from codegen.sandbox import ExecutionResult, Executor
from codegen.sandbox.bridge.skills import SkillStore, check_source, default_skills_dir
from codegen.serve.modules import Catalogue, ModuleError

_files = itertools.count()

GOOD = '''"""Customers' lines."""

import json

from pydantic import BaseModel

from servers.crm import get_customer


class Line(BaseModel):
    """A customer's line."""

    text: str


async def customer_line(customer_id: str) -> Line:
    """One line about a customer."""
    customer = await get_customer(customer_id=customer_id)
    return Line(text=json.dumps(customer.name))
'''


def save(store: SkillStore, name: str, source: str) -> bool:
    """`store.save` (checked in a process of its own, as a save from a sandbox is)."""
    return asyncio.run(store.save(name, source))


def define(source: str, name: str) -> Any:
    """Run `source` as the sandbox's runner does (its text in linecache) and return `name`."""
    filename = f"<agent-{next(_files)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


# --- the module save_skill makes ------------------------------------------------------


def test_skill_source_takes_only_the_imports_the_function_uses() -> None:
    fn = define(
        "import json, textwrap\nimport os.path as osp\nfrom collections import Counter as C\n"
        "import re\n\n"
        "def count_words(text: str) -> str:\n"
        '    """Count the words of `text`, as JSON."""\n'
        "    words = re.findall(r'\\w+', text)\n"
        "    return json.dumps(C(words))\n",
        "count_words",
    )
    source = skill_module_source(fn)
    assert source == (
        '"""Count the words of `text`, as JSON."""\n\n'
        "import json\nimport re\nfrom collections import Counter as C\n\n\n"
        "def count_words(text: str) -> str:\n"
        '    """Count the words of `text`, as JSON."""\n'
        "    words = re.findall(r'\\w+', text)\n"
        "    return json.dumps(C(words))\n"
    )
    assert check_source("count_words", source) == ([], [])


def test_skill_source_refuses_what_a_later_import_could_not_find() -> None:
    helper = define(
        "LIMIT = 3\n\ndef top(xs: list[int]) -> list[int]:\n"
        '    """The largest few."""\n    return sorted(xs)[-LIMIT:]\n',
        "top",
    )
    with pytest.raises(SkillError, match="uses LIMIT, defined outside it"):
        skill_module_source(helper)
    bare = define("def bare():\n    return 1\n", "bare")
    with pytest.raises(SkillError, match="bare has no docstring"):
        skill_module_source(bare)
    with pytest.raises(SkillError, match="not a valid skill name"):
        skill_module_source(define('def f():\n    """D."""\n', "f"), name="_private")
    with pytest.raises(SkillError, match="function or a class"):
        skill_module_source(len)


def test_skill_source_of_a_class_and_of_a_nested_name() -> None:
    cls = define(
        "import math\n\nclass Circle:\n"
        '    """A circle."""\n\n    def __init__(self, r: float):\n        self.r = r\n\n'
        "    def area(self) -> float:\n        return math.pi * self.r**2\n",
        "Circle",
    )
    source = skill_module_source(cls)
    assert source.startswith('"""A circle."""\n\nimport math\n\n\nclass Circle:')
    assert check_source("Circle", source) == ([], [])


# --- the host's checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def f(:\n", "line 1: syntax error"),
        ("def f():\n    return 1\n", "function f has no docstring"),
        ('"""M."""\nX = 1\n', "line 2: only imports, functions and classes"),
        ('"""M."""\nif True:\n    pass\n', "at the top level of a skill (found If)"),
        ('"""M."""\nprint("hi")\n', "found Expr"),
        ('import requests\n\ndef f():\n    """D."""\n', "import of 'requests' is not allowed"),
        ('from . import other\n\ndef f():\n    """D."""\n', "relative imports are not allowed"),
        ('"""Only a docstring."""\n', "defines no public function or class"),
        ('from skills.nope import nope\n\ndef f():\n    """D."""\n', "skill 'nope' does not exist"),
    ],
)
def test_check_source_refuses_with_a_reason(tmp_path: Path, source: str, reason: str) -> None:
    problems, _ = check_source("f", source, package="mcp_demo", skills_dir=tmp_path)
    assert any(reason in problem for problem in problems), problems


def test_store_saves_atomically_replaces_and_lists(tmp_path: Path) -> None:
    session = tmp_path / "session"
    session.mkdir()
    store = SkillStore(tmp_path / "skills", session=session)
    assert store.names() == [] and list(store.infos()) == []
    assert save(store, "customer_line", GOOD) is False
    assert save(store, "customer_line", GOOD) is True  # saving again replaces the session's own
    assert sorted(p.name for p in session.iterdir()) == ["customer_line.py"]
    assert not store.directory.exists()  # nothing reached the shared skills
    assert store.path("customer_line").stat().st_mode & 0o777 == 0o644
    with pytest.raises(Exception, match="was not saved:\nline 1: syntax error"):
        save(store, "broken", "def (")
    assert not store.path("broken").exists()
    (entry,) = skill_entries(store.search_path)
    assert (entry.name, entry.summary) == ("customer_line", "One line about a customer.")
    assert entry.signature == "async def customer_line(customer_id: str) -> Line"
    assert entry.import_path == "skills.customer_line"
    assert default_skills_dir(tmp_path / "mcp.json") == tmp_path / ".mcp-codegen" / "skills"

    # Saving straight into the shared skills (for who a policy lets share) never replaces one.
    shared = SkillStore(tmp_path / "skills")
    assert save(shared, "customer_line", GOOD) is False
    with pytest.raises(Exception, match="a shared skill of that name exists"):
        save(shared, "customer_line", GOOD)
    with pytest.raises(Exception, match="a shared skill of that name exists"):
        save(store, "customer_line", GOOD)  # nor may a session shadow it


# --- in the sandbox ------------------------------------------------------------------------


def run_all(
    loop: asyncio.AbstractEventLoop, package: Path, config: Path, *codes: str
) -> list[ExecutionResult]:
    """Run `codes` one after another in one new executor (one sandbox) of `package`."""

    async def main() -> list[ExecutionResult]:
        async with Executor(package, config=config, privacy=False) as executor:
            return [await executor.execute(code) for code in codes]

    return loop.run_until_complete(main())


SAVE = """
import json
import os
from servers.crm import get_customer

async def customer_line(customer_id: str) -> str:
    '''One line about a customer: name, company, city.'''
    customer = await get_customer(customer_id=customer_id)
    return json.dumps([customer.name, customer.company, customer.city])

def no_docstring():
    return 1

first = save_skill(customer_line)
again = save_skill(customer_line)
try:
    save_skill(no_docstring)
except Exception as exc:
    refused = f"{type(exc).__name__}: {exc}"
read_only = []
for directory in os.environ["MCP_CODEGEN_SKILLS_DIR"].split(os.pathsep):  # shared, session
    try:
        open(directory + "/evil.py", "w")
    except OSError as exc:
        read_only.append(exc.errno)
from skills.customer_line import customer_line as now  # usable at once
[first, again, refused, read_only, await now("C00001")]
"""

USE = """
from skills.customer_line import customer_line
import skills
json_line = await customer_line("C00002")
[json_line, sorted(e.name for e in __import__("mcp_demo._runtime.skills",
                                               fromlist=["x"]).skill_entries())]
"""


def test_save_in_one_execution_import_in_the_next(
    crm: dict[str, Path], loop: asyncio.AbstractEventLoop
) -> None:
    shared = default_skills_dir(crm["config"])
    sessions = shared.with_name("skills.sessions")
    saved, used = run_all(loop, crm["package"], crm["config"], SAVE, USE)
    assert saved.error is None, saved.error
    first, again, refused, read_only, line = saved.value
    assert first == (
        "saved the skill 'customer_line'; import it with "
        "`from skills.customer_line import customer_line`; it is this session's only, until "
        "a person shares it (`mcp-codegen skills promote customer_line`)"
    )
    assert again.startswith("replaced the skill 'customer_line'")
    assert (
        refused
        == "SkillError: no_docstring has no docstring; a skill needs one that says what it does"
    )
    assert len(read_only) == 2 and set(read_only) <= {13, 30}  # EACCES/EROFS: only the host
    assert len(json.loads(line)) == 3
    assert [call.server for call in saved.calls] == ["$skills", "$skills", "crm"]
    assert used.error is None, used.error
    assert len(json.loads(used.value[0])) == 3
    assert used.value[1] == ["customer_line"]
    # The skill was the session's own: gone with it, never in the shared skills.
    assert list(shared.iterdir()) == []
    assert list(sessions.iterdir()) == []


def test_a_skill_whose_tool_was_removed_is_reported_by_name(
    crm: dict[str, Path], loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    store = SkillStore(tmp_path / "skills", crm["package"] / "mcp_demo")
    contact = GOOD.replace("get_customer", "log_contact").replace("customer_line", "contact")
    save(store, "contact", contact)
    save(store, "customer_line", GOOD)
    # The package is rebuilt without log_contact (a copy, with its module gone).
    rebuilt = tmp_path / "pkg"
    shutil.copytree(crm["package"], rebuilt)
    (rebuilt / "mcp_demo" / "servers" / "crm" / "log_contact.py").unlink()

    cli = CliRunner()
    options = ["--skills", str(store.directory), "--package", str(rebuilt)]
    listed = cli.invoke(skills_command, [*options, "list"])
    assert listed.exit_code == 1
    assert "contact        One line about a customer." in listed.stdout
    assert "error: skill 'contact': servers.crm.log_contact no longer exists" in listed.stderr
    assert "customer_line" in listed.stdout and "'customer_line'" not in listed.stderr
    as_json = json.loads(cli.invoke(skills_command, [*options, "list", "--json"]).stdout)
    assert [(s["name"], len(s["problems"])) for s in as_json] == [
        ("contact", 1),
        ("customer_line", 0),
    ]

    code = "from skills.contact import contact\n"
    (result,) = _run_with(loop, rebuilt, store.directory, code)
    assert result.error is not None
    assert result.error.type == "ImportError"
    assert result.error.message == (
        "skill 'contact' cannot be imported: servers.crm.log_contact no longer exists"
    )


def _run_with(
    loop: asyncio.AbstractEventLoop, package: Path, skills: Path, code: str
) -> list[ExecutionResult]:
    async def main() -> list[ExecutionResult]:
        async with Executor(package, transport=_NoCalls(), skills_dir=skills) as executor:
            return [await executor.execute(code)]

    return loop.run_until_complete(main())


class _NoCalls:
    """A transport for executions that make no tool call."""

    async def call_tool(self, server: str, tool: str, arguments: Any) -> dict[str, Any]:
        raise AssertionError("no call expected")

    async def aclose(self) -> None:
        return None


def test_cli_show_and_rm(tmp_path: Path) -> None:
    store = SkillStore(tmp_path / "skills")
    save(store, "customer_line", GOOD)
    cli = CliRunner()
    options = ["--skills", str(store.directory), "--package", str(tmp_path / "none")]
    assert cli.invoke(skills_command, [*options, "list"]).exit_code != 0  # no such package
    options = ["--skills", str(store.directory), "--config", str(tmp_path / "mcp.json")]
    shown = cli.invoke(skills_command, [*options, "show", "customer_line"])
    assert shown.exit_code == 0 and shown.stdout == GOOD
    missing = cli.invoke(skills_command, [*options, "show", "nope"])
    assert missing.exit_code == 1 and "no skill 'nope' (skills: customer_line)" in missing.stderr
    removed = cli.invoke(skills_command, [*options, "rm", "customer_line"])
    assert removed.exit_code == 0 and "removed skill 'customer_line'" in removed.stdout
    assert "no skills in" in cli.invoke(skills_command, [*options, "list"]).stdout
    bad = cli.invoke(skills_command, [*options, "rm", "../x"])
    assert bad.exit_code == 1 and "not a valid skill name" in bad.stderr


def test_serve_reads_skills_on_demand(crm: dict[str, Path], tmp_path: Path) -> None:
    store = SkillStore(tmp_path / "skills", crm["package"] / "mcp_demo")
    catalogue = Catalogue.of(crm["package"] / "mcp_demo", store)
    assert "none saved yet" in catalogue.read("skills")[1]
    save(store, "customer_line", GOOD)  # saved while serving
    dotted, index = catalogue.read("skills")
    assert dotted == "skills"
    assert "customer_line  One line about a customer." in index
    assert catalogue.read("skills.customer_line") == ("skills.customer_line", GOOD)
    assert catalogue.read("mcp_demo/skills/customer_line.py")[0] == "skills.customer_line"
    assert catalogue.skill_paths() == ["skills", "skills.customer_line"]
    for path, reason in [("skills.nope", "no skill 'nope'"), ("skills.a.b", "no skill 'a.b'")]:
        with pytest.raises(ModuleError, match=reason):
            catalogue.read(path)


def test_saving_without_a_sandbox_or_a_skills_directory_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from codegen.runtime.skills import save_skill
    from codegen.sandbox.bridge.skills import skills_disabled

    monkeypatch.delenv("MCP_CODEGEN_BRIDGE_SOCKET", raising=False)
    fn = define('def f():\n    """D."""\n', "f")
    with pytest.raises(SkillError, match="works only in code run by mcp-codegen's sandbox"):
        save_skill(fn)
    answer = asyncio.run(skills_disabled("save", {}))
    assert answer["isError"] and "no skills directory" in answer["content"][0]["text"]


def test_search_lists_matching_skills_before_the_tools(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from codegen.cli import main
    from codegen.runtime.search import find
    from tests.conftest import GOLDEN

    skills = tmp_path / "skills"
    skills.mkdir()
    (skills / "stale_customers.py").write_text(
        '"""Customers not contacted for a while."""\n\n\n'
        "async def stale_customers(days: int = 90) -> list[str]:\n"
        '    """List the CRM customers not contacted in `days` days."""\n'
        "    return []\n",
        encoding="utf-8",
    )
    index = GOLDEN / "mcp_demo" / "search_index.sqlite3"
    hits = find("customers not contacted in 90 days", 5, index_path=index, skills_dir=skills)
    assert hits[0].import_path == "skills.stale_customers"
    assert len(hits) == 5 and all(hit.server != "skills" for hit in hits[1:])
    unrelated = find("what time is it in Tokyo", 5, index_path=index, skills_dir=skills)
    assert "skills.stale_customers" not in [hit.import_path for hit in unrelated]
    shown = CliRunner().invoke(
        main,
        [
            "search",
            "stale customers",
            "--package",
            str(GOLDEN),
            "--skills",
            str(skills),
            "--detail",
            "name",
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0] == "skills.stale_customers"
