"""The check before code runs, against the golden demo package: real ty, no sandbox.

What blocks (certain errors at calls of tools, imports of what does not exist),
what is only a warning, and what is not reported at all (top-level await, the
runner's own names, arguments pydantic converts). The sandbox side, that a
blocked execution calls nothing, is in test_sandbox_policy.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from codegen.sandbox.bridge.limits import CpuBudget
from codegen.sandbox.bundle import distribution_paths
from codegen.sandbox.precheck import CheckReport, CodeChecker, syntax_error

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "generated" / "mcp_demo" / "mcp_demo"


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> CodeChecker:
    """A checker of the golden package, with pandas among the mounted libraries."""
    made = CodeChecker(
        PACKAGE,
        tmp_path_factory.mktemp("check"),
        site=distribution_paths(["pydantic", "numpy", "pandas"]),
    )
    made.prepare()
    assert made.ty is not None, "ty is not installed: run `make setup`"
    return made


def check(checker: CodeChecker, code: str, mode: str = "block") -> CheckReport:
    return asyncio.run(checker.check(code, mode))  # type: ignore[arg-type]


GOOD = """\
import asyncio
import pandas as pd
from servers.crm import search_customers, get_customer
from servers.time import get_current_time

now = await get_current_time(timezone="UTC")
found = await search_customers(query="acme", limit=20)
rows = []
for customer in found.customers[:5]:
    detail = await get_customer(customer_id=customer.id)
    rows.append({"id": customer.id, "name": detail.name})
async with asyncio.timeout(5):
    await asyncio.sleep(0)
frame = pd.DataFrame(rows)
save_skill(print)
search_tools("time")
print(now.datetime, len(frame))
"""

# Issue 17's names in the code's namespace, and a server's resources and prompts modules.
EXTRAS = """\
from servers.crm import prompts, resources
from servers.crm.resources import customer

page = await customer(customer_id="C00001")
note = await prompts.follow_up_email(customer_id="C00001")
listed = [item.uri for item in resources.RESOURCES]
report_progress(1, 2, "half way")
try:
    print(page.text, note.text, listed)
except ApprovalDenied as exc:
    print(exc)
"""


@pytest.mark.parametrize("code", [GOOD, EXTRAS], ids=["tools", "resources-prompts"])
def test_typical_agent_code_has_nothing_to_report(checker: CodeChecker, code: str) -> None:
    report = check(checker, code)
    assert report.note is None
    assert report.diagnostics == (), [str(item) for item in report.diagnostics]


@pytest.mark.parametrize(
    ("code", "line", "rule", "says", "signature"),
    [
        (
            "from servers.time import get_current_time\nawait get_current_time(timezone='UTC', tz=1)",
            2,
            "unknown-argument",
            "`tz`",
            "servers.time.get_current_time(*, timezone: str) -> GetCurrentTimeOutput",
        ),
        (
            "from servers.crm import get_customer\n\nx = await get_customer()",
            3,
            "missing-argument",
            "`customer_id`",
            "servers.crm.get_customer(*, customer_id: str) -> GetCustomerOutput",
        ),
        (
            "from servers.crm import search_customers\nawait search_customers(query='a', limit='x')",
            2,
            "invalid-argument-type",
            'Literal["x"]',
            "servers.crm.search_customers(*, query: str, limit: int | None = 20) "
            "-> SearchCustomersOutput",
        ),
        (
            "import servers.time as t\nawait t.get_current_time(timezone=5)",
            2,
            "invalid-argument-type",
            "Literal[5]",
            "servers.time.get_current_time(*, timezone: str) -> GetCurrentTimeOutput",
        ),
        (
            "from servers.crm import get_customer\nawait get_customer('c1', customer_id='c1')",
            2,
            "too-many-positional-arguments",
            "",
            "servers.crm.get_customer(*, customer_id: str) -> GetCustomerOutput",
        ),
        (
            "from servers.time import get_time",
            1,
            "unknown-import",
            "servers.time has no tool 'get_time'; did you mean",
            None,
        ),
        (
            "import os\nfrom servers.tme import get_current_time",
            2,
            "unknown-import",
            "there is no server servers.tme; did you mean servers.time?",
            None,
        ),
        (
            "from mcp_demo.servers.crm.get_customer import get_customer, NoSuchModel",
            1,
            "unknown-import",
            "servers.crm.get_customer has no name 'NoSuchModel'",
            "servers.crm.get_customer(*, customer_id: str) -> GetCustomerOutput",
        ),
    ],
)
def test_certain_errors_come_with_their_line_and_signature(
    checker: CodeChecker, code: str, line: int, rule: str, says: str, signature: str | None
) -> None:
    report = check(checker, code)
    certain = report.certain
    assert [(item.line, item.rule) for item in certain] == [(line, rule)], [
        str(item) for item in report.diagnostics
    ]
    assert says in certain[0].message
    if signature is not None:
        assert certain[0].signature == signature
    message = report.blocking_message()
    assert message.startswith("the code was not run: the check found 1 error before it started")
    assert f"line {line}: " in message


def test_what_pydantic_accepts_is_not_certain(checker: CodeChecker) -> None:
    code = (
        "from servers.crm import search_customers\n"
        "from servers.memory import create_entities\n"
        "await search_customers(query='a', limit='20')\n"  # lax mode makes it 20
        "await create_entities(entities=[{'name': 'n', 'entityType': 't', 'observations': []}])\n"
        "arguments = {'query': 'a'}\n"
        "await search_customers(**arguments)\n"
        "count: int = 'three'\n"
    )
    report = check(checker, code)
    assert report.certain == []
    warnings = {(item.line, item.rule) for item in report.diagnostics}
    assert (3, "invalid-argument-type") in warnings
    assert (7, "invalid-assignment") in warnings
    assert not any(item.line == 4 for item in report.diagnostics)  # a dict for a model


def test_warn_and_off(checker: CodeChecker) -> None:
    code = "from servers.time import get_current_time\nawait get_current_time(timezon='UTC')"
    warned = check(checker, code, "warn")
    assert warned.certain, "warn still finds them; the executor lets the code run"
    off = check(checker, code, "off")
    assert off == CheckReport()
    assert check(checker, "x = (", "off").syntax_error is not None


def test_syntax_errors_never_need_the_checker(tmp_path: Path) -> None:
    assert syntax_error("await f()\nasync for x in y:\n    pass\n") is None
    problem = syntax_error("def f():\n    await g()\n")
    assert (
        problem is not None and "line 2" in problem and "'await' outside async function" in problem
    )
    assert "line 1" in (syntax_error("return 1") or "")
    assert syntax_error("x = '\\0'") is None
    assert syntax_error("x = 1\0") == "SyntaxError: source code string cannot contain null bytes"
    nested = "x = " + "(" * 300 + ")" * 300
    assert syntax_error(nested) is not None  # CPython's own bound on nesting
    without = CodeChecker(PACKAGE, tmp_path, ty="")
    report = asyncio.run(without.check("from servers.time import get_time", "block"))
    assert report.certain and report.note and "ty" in report.note


def test_a_missing_or_failing_checker_lets_the_code_run(tmp_path: Path) -> None:
    broken = tmp_path / "ty"
    broken.write_text("#!/bin/sh\necho boom >&2\nexit 2\n", encoding="utf-8")
    broken.chmod(0o755)
    checker = CodeChecker(PACKAGE, tmp_path / "root", ty=str(broken))
    checker.prepare()
    code = "from servers.time import get_current_time\nprint(get_current_time)"
    report = asyncio.run(checker.check(code, "block"))
    assert report.certain == [] and report.note is not None
    assert "the type checker failed (status 2: boom)" in report.note


def test_ty_only_checks_code_that_uses_the_package(checker: CodeChecker) -> None:
    """ty says nothing a run would not about code that imports neither the package nor
    skills: it does not run (a trivial execution does not pay for its start)."""
    plain = "count: int = 'many'\nprint(count)"
    assert check(checker, plain) == CheckReport()
    for uses in ("import servers.time", "from mcp_demo.servers import crm", "import skills"):
        report = check(checker, f"{uses}\n{plain}")  # (this checker has no skills directory)
        found = {(item.line, item.rule) for item in report.diagnostics}
        assert (2, "invalid-assignment") in found, (uses, found)


def test_ty_runs_first_only_when_it_could_stop_the_code(checker: CodeChecker) -> None:
    """Certain findings of ty are only at calls of tools: code calling one waits for
    ty (in `block` mode); other code runs while ty checks it, and gets its warnings after."""

    async def begin(code: str, mode: str) -> tuple[CheckReport, CheckReport]:
        checking = await checker.begin(code, mode)  # type: ignore[arg-type]
        return checking.report, await checking.finish()

    calls = (
        "from servers.time import get_current_time\nawait get_current_time(timezone='UTC', tz=1)"
    )
    before, after = asyncio.run(begin(calls, "block"))
    assert [item.rule for item in before.certain] == ["unknown-argument"]
    assert after == before
    before, after = asyncio.run(begin(calls, "warn"))
    assert before.diagnostics == ()  # the code runs while ty checks it
    assert [item.rule for item in after.certain] == ["unknown-argument"]
    imports = "from servers.time import get_current_time\ncount: int = 'many'"
    before, after = asyncio.run(begin(imports, "block"))
    assert before.diagnostics == ()
    assert [(item.line, item.rule, item.certain) for item in after.diagnostics] == [
        (2, "invalid-assignment", False)
    ]


def test_a_check_beside_the_code_ends_with_it(tmp_path: Path) -> None:
    """Cancelling a check that runs beside the code kills ty's process."""
    started = tmp_path / "started"
    slow = tmp_path / "ty"
    slow.write_text(f"#!/bin/sh\necho $$ > {started}\nexec sleep 60\n", encoding="utf-8")
    slow.chmod(0o755)
    checker = CodeChecker(PACKAGE, tmp_path / "root", ty=str(slow))
    checker.prepare()

    async def cancelled() -> int:
        checking = await checker.begin("import servers.time", "block")
        assert checking.report == CheckReport()
        while not started.exists() or not started.read_text(encoding="utf-8").strip():
            await asyncio.sleep(0.01)
        checking.cancel()
        await asyncio.sleep(0.2)
        return int(started.read_text(encoding="utf-8"))

    pid = asyncio.run(asyncio.wait_for(cancelled(), 30))
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            if stat.read().split(") ")[1].startswith("Z"):
                return  # killed, not yet reaped
        time.sleep(0.05)
    raise AssertionError(f"ty ({pid}) still runs after its check was cancelled")


@pytest.mark.parametrize(
    ("arguments", "certain"),
    [
        ("city=5", True),  # an int is never a str to pydantic
        ("limit=2.5", True),  # a fraction is never an int
        ("limit='ten'", True),
        ("limit=2.0", False),  # pydantic takes a whole float
        ("limit='10'", False),  # and a numeric string
        ("limit=True", False),  # and a bool
        ("city=None", False),  # str | None
    ],
)
def test_constants_follow_pydantics_lax_rules(
    checker: CodeChecker, arguments: str, certain: bool
) -> None:
    code = f"from servers.crm import list_customers\nawait list_customers({arguments})"
    report = check(checker, code)
    assert bool(report.certain) is certain, [str(item) for item in report.diagnostics]


def test_the_check_is_charged_to_the_sessions_cpu_budget(checker: CodeChecker) -> None:
    """The parse and the analysis are host work on hostile code: they draw on the
    session's budget (bridge.limits), as its tool calls do."""
    budget = CpuBudget()
    code = "\n".join(f"x{i} = [{i}] * {i}" for i in range(2000))
    report = asyncio.run(checker.check(code, "off", budget=budget))
    assert report == CheckReport()
    assert budget.spent > 0


def test_code_nested_past_the_parsers_bound_says_so() -> None:
    deep = "x = " + "-" * 50_000 + "a"
    assert syntax_error(deep) == "the code is nested too deeply to parse; split it into functions"
