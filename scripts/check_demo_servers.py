"""Smoke-check the demo MCP servers of an mcpServers config (default: demo/mcp.json).

    .venv/bin/python scripts/check_demo_servers.py demo/mcp.json [--only time,git] \
        [--dump-tools tools.json] [--show-server-stderr]

For every server: connect over stdio with the official SDK (mcp 2.3.0), list tools
(following next_cursor), print name/version/protocol and the tools, call a few real
tools, and scan the tool metadata for machine-specific text (absolute paths, the
host name, today's date, random ids) that would break a committed golden snapshot.

Relative paths are resolved the way our config loader does: a relative `command`
that contains a `/` and a relative `cwd` are taken against the directory of the
config file (and made absolute: with `cwd` set, the OS would otherwise look the
command up relative to the child's cwd). Args are passed through unchanged.

Exit status: 0 if every server connected and every call succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import getpass
import hashlib
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------
def load_servers(config_path: Path) -> dict[str, StdioServerParameters]:
    base = config_path.resolve().parent
    raw = json.loads(config_path.read_text())["mcpServers"]
    servers: dict[str, StdioServerParameters] = {}
    for name, spec in raw.items():
        command = spec["command"]
        if "/" in command and not os.path.isabs(command):
            command = str((base / command).resolve())
        cwd = spec.get("cwd")
        if cwd is not None and not os.path.isabs(cwd):
            cwd = str((base / cwd).resolve())
        servers[name] = StdioServerParameters(
            command=command, args=list(spec.get("args", [])), env=spec.get("env"), cwd=cwd
        )
    return servers


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def short(text: str, limit: int = 160) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def result_text(result: Any) -> str:
    parts = []
    for block in result.content:
        if getattr(block, "type", None) == "text":
            parts.append(block.text)
        else:
            parts.append(f"<{getattr(block, 'type', type(block).__name__)}>")
    text = " | ".join(parts)
    if result.structured_content is not None:
        text += f"  [structured: {json.dumps(result.structured_content, sort_keys=True)}]"
    return text


def tool_json(tool: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def walk_strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(json-path, string) for every string, including object keys."""
    out: list[tuple[str, str]] = []
    if isinstance(value, str):
        out.append((path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            out.append((f"{path}.{key}<key>", key))
            out.extend(walk_strings(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.extend(walk_strings(item, f"{path}[{i}]"))
    return out


def machine_patterns() -> list[tuple[str, re.Pattern[str]]]:
    today = datetime.date.today()
    literal = {
        "repo root": str(ROOT),
        "home dir": str(Path.home()),
        "hostname": socket.gethostname(),
        "cwd": os.getcwd(),
        "today": today.isoformat(),
    }
    with contextlib.suppress(Exception):
        literal["user"] = getpass.getuser()
    pats = [
        (f"{k} ({v})", re.compile(rf"(?<![\w-]){re.escape(v)}(?![\w-])"))
        for k, v in literal.items()
        if v and len(v) > 3 and v != "/"
    ]
    pats += [
        ("absolute path", re.compile(r"(?<![\w.:/~-])/(?:[\w.@-]+/)+[\w.@-]*")),
        ("date/time", re.compile(r"\b(?:19|20)\d\d-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d)?)?")),
        (
            "uuid",
            re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        ),
        ("long hex id", re.compile(r"\b[0-9a-f]{16,}\b", re.I)),
        ("port / localhost", re.compile(r"\b(?:localhost|127\.0\.0\.1):?\d*")),
    ]
    return pats


def scan(server: str, tools: list[dict[str, Any]], extra: dict[str, Any]) -> list[str]:
    findings = []
    pats = machine_patterns()
    targets: list[tuple[str, Any]] = [(t["name"], t) for t in tools]
    targets += [(f"<{k}>", v) for k, v in extra.items() if v is not None]
    for label, obj in targets:
        for jpath, text in walk_strings(obj):
            for kind, pat in pats:
                for m in pat.finditer(text):
                    findings.append(
                        f"{server}/{label} {jpath or '.'}: {kind}: {m.group(0)!r} in {short(text, 120)!r}"
                    )
    return findings


# ---------------------------------------------------------------------------
# tool calls per server
# ---------------------------------------------------------------------------
Call = tuple[str, dict[str, Any]]

CALLS: dict[str, list[Call]] = {
    "time": [
        ("get_current_time", {"timezone": "UTC"}),
        (
            "convert_time",
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"},
        ),
    ],
    "git": [
        ("git_status", {"repo_path": "repo"}),
        ("git_log", {"repo_path": "repo", "max_count": 3}),
    ],
    "sqlite": [
        (
            "create_table",
            {
                "query": "CREATE TABLE IF NOT EXISTS check_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"
            },
        ),
        ("write_query", {"query": "DELETE FROM check_items"}),
        (
            "write_query",
            {"query": "INSERT INTO check_items (id, name) VALUES (1, 'alpha'), (2, 'beta')"},
        ),
        ("read_query", {"query": "SELECT id, name FROM check_items ORDER BY id"}),
    ],
    "fetch": [],  # no network here: listing tools is the check
    "everything": [
        ("echo", {"message": "hello from check_demo_servers"}),
        ("get-sum", {"a": 2, "b": 3}),
    ],
    "filesystem": [
        # relative paths are resolved against the allowed directory (.demo/files), not cwd
        (
            "write_file",
            {"path": "check_demo_servers.txt", "content": "written by check_demo_servers\n"},
        ),
        ("read_text_file", {"path": "check_demo_servers.txt"}),
        ("list_directory", {"path": "."}),
    ],
    "memory": [
        (
            "create_entities",
            {
                "entities": [
                    {
                        "name": "mcp-codegen",
                        "entityType": "project",
                        "observations": ["compiles MCP servers"],
                    },
                ]
            },
        ),
        ("read_graph", {}),
    ],
}


async def check_server(name: str, params: StdioServerParameters, report: dict[str, Any]) -> bool:
    ok = True
    async with Client(params) as client:
        info = client.server_info
        if info is None:
            raise RuntimeError("server sent no serverInfo")
        pages: list[list[Any]] = []
        cursor: str | None = None
        while True:
            result = await client.list_tools(cursor=cursor)
            pages.append(list(result.tools))
            cursor = result.next_cursor
            if not cursor:
                break
            if len(pages) > 100:
                raise RuntimeError("tools/list did not stop paginating after 100 pages")
        tools = [t for page in pages for t in page]
        tools_json = [tool_json(t) for t in tools]
        blob = json.dumps(tools_json, ensure_ascii=False, indent=2)
        print(
            f"== {name}: {info.name} {info.version}  protocol={client.protocol_version}  "
            f"tools={len(tools)} pages={len(pages)} sha256={hashlib.sha256(blob.encode()).hexdigest()[:16]}"
        )
        if client.instructions:
            print(f"   instructions: {short(client.instructions, 100)}")
        for t in tools:
            flags = []
            if t.output_schema is not None:
                flags.append("outputSchema")
            if t.annotations is not None:
                flags.append("annotations")
            if t.title:
                flags.append(f"title={t.title!r}")
            args = ", ".join((t.input_schema or {}).get("properties", {}))
            print(f"   - {t.name}({args})" + (f"  [{'; '.join(flags)}]" if flags else ""))
        report[name] = {
            "server_info": info.model_dump(by_alias=True, exclude_none=True, mode="json"),
            "protocol_version": client.protocol_version,
            "instructions": client.instructions,
            "pages": len(pages),
            "tools": tools_json,
        }
        for tool, arguments in CALLS.get(name, []):
            res = await client.call_tool(tool, arguments)
            status = "ERROR" if res.is_error else "ok"
            ok &= not res.is_error
            print(
                f"   call {tool}({json.dumps(arguments)[:80]}) -> {status}: {short(result_text(res), 300)}"
            )
    return ok


async def main_async(args: argparse.Namespace) -> int:
    servers = load_servers(Path(args.config))
    if args.only:
        wanted = args.only.split(",")
        servers = {k: v for k, v in servers.items() if k in wanted}
    report: dict[str, Any] = {}
    failed: list[str] = []
    for name, params in servers.items():
        try:
            with anyio.fail_after(args.timeout):
                if not await check_server(name, params, report):
                    failed.append(name)
        except BaseException as exc:  # report it and go on with the next server
            if isinstance(exc, KeyboardInterrupt):
                raise
            failed.append(name)
            print(f"== {name}: FAILED: {type(exc).__name__}: {short(str(exc) or repr(exc), 400)}")

    print("\n== summary")
    for name, r in report.items():
        with_out = [t["name"] for t in r["tools"] if "outputSchema" in t]
        print(
            f"   {name}: {r['server_info']['name']} {r['server_info']['version']} "
            f"protocol={r['protocol_version']} tools={len(r['tools'])} pages={r['pages']} "
            f"outputSchema={len(with_out)}/{len(r['tools'])}"
        )
    print("\n== machine-specific text in tool metadata / server info / instructions")
    findings = []
    for name, r in report.items():
        findings += scan(
            name, r["tools"], {"instructions": r["instructions"], "server_info": r["server_info"]}
        )
    for f in findings:
        print(f"   {f}")
    if not findings:
        print("   none")

    if args.dump_tools:
        dump = {name: r["tools"] for name, r in report.items()}
        Path(args.dump_tools).write_text(json.dumps(dump, ensure_ascii=False, indent=2) + "\n")
        print(f"\ntools written to {args.dump_tools}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    print(f"\nOK: {len(report)} servers")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", nargs="?", default=str(ROOT / "demo" / "mcp.json"))
    parser.add_argument("--only", help="comma-separated server keys")
    parser.add_argument("--dump-tools", help="write {server: [tool, ...]} as JSON here")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per server")
    parser.add_argument(
        "--show-server-stderr",
        action="store_true",
        help="let the servers' stderr through (default: write it to .demo/check_demo_servers.stderr.log)",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if not args.show_server_stderr:
        # The SDK hands sys.stderr's fd to the server processes; send it to a log
        # file so the servers' banners and warnings don't drown the report.
        log = ROOT / ".demo" / "check_demo_servers.stderr.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    return anyio.run(main_async, args)


if __name__ == "__main__":
    sys.exit(main())
