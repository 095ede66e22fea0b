"""Benchmark the sandbox policy: the code check, the egress proxy, and starting with libraries.

    .venv/bin/python bench/policy_bench.py [--runs 40] [--compare]

1. Check latency: `CodeChecker.check` (syntax, imports, ty) on typical agent code (10-30
   lines importing 2-4 tools), p50/p95, against the demo package (69 tools) and one of
   3,000+ tools (the demo servers, the toucan corpus and StableToolBench endpoints; built
   once under .demo/build/policy_bench). With `--compare`, the candidate checkers' own
   command lines on the same code (ty, pyrefly, basedpyright, mypy with a warm cache),
   installed at pinned versions into .demo/checkers.
2. Egress: HTTPS requests (a new TLS connection each) to a local server, and a 20 MB
   download: from the host directly, from the host through the proxy, and from the
   sandbox through its relay and the proxy.
3. Sandbox start: `Executor.start()` without packages and with numpy+pandas mounted (and
   imported by the worker), and what an interpreter inside pays to import pandas itself.

Writes bench/results/policy.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import SHARED_DATA, corpus_snapshot, percentile, write_table  # noqa: E402
from codegen.build import build_package  # noqa: E402
from codegen.render import PackageOptions  # noqa: E402
from codegen.sandbox import Executor  # noqa: E402
from codegen.sandbox.bundle import distribution_paths  # noqa: E402
from codegen.sandbox.egress.proxy import EgressProxy, Resolver  # noqa: E402
from codegen.sandbox.egress.rules import Allowlist  # noqa: E402
from codegen.sandbox.policy import parse_sandbox_policy  # noqa: E402
from codegen.sandbox.precheck import CodeChecker, find_ty  # noqa: E402
from codegen.snapshot import SNAPSHOT_FILENAME, Snapshot  # noqa: E402
from tests.netservers import serving  # noqa: E402

DEMO = ROOT / "generated" / "mcp_demo"
BIG = ROOT / ".demo" / "build" / "policy_bench" / "mcp_big"
CHECKERS = ROOT / ".demo" / "checkers"
CANDIDATES = {"pyrefly": "1.4.1", "basedpyright": "1.40.2", "mypy": "2.4.1"}
DOWNLOAD = 20_000_000

SNIPPETS = [
    """\
import asyncio
from servers.time import get_current_time, convert_time

zones = ["Europe/Paris", "Asia/Tokyo", "America/New_York"]
nows = await asyncio.gather(*(get_current_time(timezone=zone) for zone in zones))
for zone, now in zip(zones, nows):
    print(zone, now.datetime, "DST" if now.is_dst else "")
later = await convert_time(source_timezone="Europe/Paris", time="16:30", target_timezone="Asia/Tokyo")
print("16:30 in Paris is", later.target.datetime, "in Tokyo")
{zone: now.day_of_week for zone, now in zip(zones, nows)}
""",
    """\
import asyncio
from servers.crm import search_customers, get_customer, log_contact
from servers.mail import send_email
from servers.time import get_current_time

now = await get_current_time(timezone="UTC")
found = await search_customers(query="acme", limit=20)
rows = []
for customer in found.customers[:5]:
    detail = await get_customer(customer_id=customer.id)
    rows.append((customer.id, detail.name))
    await log_contact(customer_id=customer.id, date=now.datetime[:10], note="checked")
summary = "\\n".join(f"{cid}: {name}" for cid, name in rows)
await send_email(to="team@example.com", subject="acme", body=summary)
print(len(rows))
""",
    """\
from servers.git import git_log, git_status
from servers.memory import create_entities, search_nodes

status = await git_status(repo_path="repo")
log = await git_log(repo_path="repo", max_count=20)
commits = [line for line in log.text.splitlines() if line.startswith("Commit:")]
await create_entities(entities=[{"name": "repo", "entityType": "project", "observations": commits[:3]}])
found = await search_nodes(query="repo")
stats = {"commits": len(commits), "clean": "clean" in status.text, "entities": len(found.entities)}
for key, value in sorted(stats.items()):
    print(key, value)
stats
""",
    """\
import json
from servers.docs import list_documents, get_document
from servers.crm import add_note, list_customers

documents = await list_documents()
page = await list_customers(limit=10, offset=0)
first = page.customers[0]
notes = 0
for doc in documents.documents[:3]:
    full = await get_document(doc_id=doc.id)
    if full.text:
        await add_note(customer_id=first.id, text=full.text[:200])
        notes += 1
print(json.dumps({"customer": first.id, "notes": notes}))
""",
]


def big_package() -> Path:
    """The demo servers, the toucan corpus and StableToolBench endpoints: over 3,000 tools."""
    demo = Snapshot.read(DEMO / SNAPSHOT_FILENAME)
    extra = corpus_snapshot(SHARED_DATA / "stabletoolbench-dev" / "tools.jsonl")
    servers = [*demo.servers, *corpus_snapshot().servers]
    count = sum(len(server.tools) for server in servers)
    taken = {server.name for server in servers}
    for server in extra.servers:
        if count >= 3000:
            break
        if server.name not in taken:
            servers.append(server)
            count += len(server.tools)
    snapshot = Snapshot(servers=tuple(servers))
    build_package(options=PackageOptions(name="mcp_big"), out=BIG, snapshot=snapshot)
    return BIG


def tool_count(package: Path) -> int:
    return sum(len(s.tools) for s in Snapshot.read(package / SNAPSHOT_FILENAME).servers)


# --- 1. the check ----------------------------------------------------------------------


async def check_latency(package: Path, runs: int) -> tuple[list[float], int]:
    """Seconds of each `check` of the snippets in turn, and the diagnostics of the last round."""
    root = Path(tempfile.mkdtemp(prefix="policy-bench-check-"))
    import_dir = next(p for p in package.iterdir() if (p / "servers").is_dir())
    checker = CodeChecker(import_dir, root, site=distribution_paths(["pydantic"]))
    checker.prepare()
    await checker.check(SNIPPETS[0], "block")  # the first run reads ty from disk
    samples = []
    found = 0
    for index in range(runs):
        code = SNIPPETS[index % len(SNIPPETS)]
        started = time.perf_counter()
        report = await checker.check(code, "block")
        samples.append(time.perf_counter() - started)
        assert report.note is None, report.note
        found = len(report.certain)
    return samples, found


def candidates_venv() -> Path:
    """A virtualenv with the other checkers at pinned versions (made once)."""
    python = CHECKERS / "bin" / "python"
    stamp = CHECKERS / ".stamp"
    wanted = json.dumps(CANDIDATES, sort_keys=True)
    if not (stamp.exists() and stamp.read_text(encoding="utf-8") == wanted):
        subprocess.run([sys.executable, "-m", "venv", str(CHECKERS)], check=True)
        pins = [f"{name}=={version}" for name, version in CANDIDATES.items()]
        subprocess.run([str(python), "-m", "pip", "install", "-q", *pins, "pydantic"], check=True)
        stamp.write_text(wanted, encoding="utf-8")
    return CHECKERS


def compare_checkers(package: Path, runs: int) -> dict[str, list[float]]:
    """Wall seconds of each checker's command line on the snippets (same files, same package)."""
    venv = candidates_venv()
    import_dir = next(p for p in package.iterdir() if (p / "servers").is_dir())
    work = Path(tempfile.mkdtemp(prefix="policy-bench-cmp-"))
    (work / "servers").symlink_to(import_dir / "servers")
    files = []
    for index, code in enumerate(SNIPPETS):
        path = work / f"agent_{index}.py"
        path.write_text(code, encoding="utf-8")
        files.append(path.name)
    (work / "pyrightconfig.json").write_text(
        json.dumps({"extraPaths": [str(package)], "venvPath": str(venv.parent), "venv": venv.name}),
        encoding="utf-8",
    )
    (work / "pyrefly.toml").write_text(
        f'search-path = [".", "{package}"]\npython-interpreter-path = "{venv}/bin/python"\n',
        encoding="utf-8",
    )
    ty = find_ty()
    assert ty is not None
    commands = {
        "ty": [ty, "check", "--python", str(venv), "--extra-search-path", str(package)],
        "pyrefly": [str(venv / "bin" / "pyrefly"), "check"],
        "basedpyright": [str(venv / "bin" / "basedpyright")],
        "mypy (warm cache)": [
            str(venv / "bin" / "mypy"),
            "--python-executable",
            str(venv / "bin/python"),
        ],
    }
    env = dict(os.environ, MYPYPATH=str(package))
    timings: dict[str, list[float]] = {}
    for name, command in commands.items():
        samples = []
        for index in range(runs + 1):
            started = time.perf_counter()
            subprocess.run(
                [*command, files[index % len(files)]], cwd=work, env=env, capture_output=True
            )
            if index:  # the first run fills mypy's cache and the disk cache
                samples.append(time.perf_counter() - started)
        timings[name] = samples
    return timings


# --- 2. egress -------------------------------------------------------------------------


async def egress(runs: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="policy-bench-net-"))
    hosts = work / "hosts"
    hosts.write_text("127.0.0.1 api.test\n", encoding="utf-8")
    with serving(["api.test"], work) as servers:
        port = servers.https_port
        url = f"https://api.test:{port}"
        context = ssl.create_default_context(cadata=servers.pem)
        allow = Allowlist.of([f"api.test:{port}", f"127.0.0.1:{port}"])

        def direct(path: str) -> bytes:
            with (
                socket.create_connection(("127.0.0.1", port)) as raw,
                context.wrap_socket(raw, server_hostname="api.test") as tls,
            ):
                return _get(tls, path)

        proxy = EgressProxy(work / "proxy", allow, bandwidth_kbps=None, resolver=Resolver(hosts))
        await proxy.start()
        proxy.open("bench")

        def proxied(path: str) -> bytes:
            with socket.socket(socket.AF_UNIX) as raw:
                raw.connect(str(proxy.path))
                raw.sendall(f"bench\nCONNECT api.test:{port} HTTP/1.1\r\n\r\n".encode())
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    head += raw.recv(1)
                assert b" 200 " in head, head
                with context.wrap_socket(raw, server_hostname="api.test") as tls:
                    return _get(tls, path)

        medians = {}
        for label, fetch in (("host, direct", direct), ("host, through the proxy", proxied)):
            latencies = await asyncio.to_thread(_timed, fetch, "/hello", runs)
            medians[label] = percentile(latencies, 0.5)
            figures[f"{label}: one HTTPS request, new connection, p50 / p95 (ms)"] = _p(latencies)
            seconds = min(await asyncio.to_thread(_timed, fetch, f"/bytes/{DOWNLOAD}", 3))
            figures[f"{label}: 20 MB download (MB/s, best of 3)"] = DOWNLOAD / seconds / 1e6
        await proxy.aclose()

        policy = parse_sandbox_policy(
            {"network": {"allow": [f"api.test:{port}", f"127.0.0.1:{port}"], "bandwidth_kbps": None},
             "check_code": "off"}
        )  # fmt: skip
        executor = Executor(DEMO, policy=policy, resolver=Resolver(hosts))
        await executor.start()
        code = f"""
import ssl, time, urllib.request
ctx = ssl.create_default_context(cadata={servers.pem!r})
def get(path):
    return urllib.request.urlopen("{url}" + path, context=ctx).read()
get("/hello")
times = []
for _ in range({runs}):
    started = time.perf_counter()
    get("/hello")
    times.append(time.perf_counter() - started)
loads = []
for _ in range(3):
    started = time.perf_counter()
    assert len(get("/bytes/{DOWNLOAD}")) == {DOWNLOAD}
    loads.append(time.perf_counter() - started)
times, min(loads)
"""
        result = await executor.execute(code, timeout=300)
        await executor.aclose()
        assert result.error is None, result.error
        times, seconds = result.value
        figures["sandbox, relay + proxy: one HTTPS request, new connection, p50 / p95 (ms)"] = _p(
            times
        )
        direct_ms = medians["host, direct"] * 1000
        figures["added per HTTPS request at p50: the proxy alone (ms)"] = (
            medians["host, through the proxy"] * 1000 - direct_ms
        )
        figures["added per HTTPS request at p50: from the sandbox, vs host direct (ms)"] = (
            percentile(times, 0.5) * 1000 - direct_ms
        )
        figures["sandbox, relay + proxy: 20 MB download (MB/s, best of 3)"] = (
            DOWNLOAD / seconds / 1e6
        )
    return figures


def _get(tls: ssl.SSLSocket, path: str) -> bytes:
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n".encode())
    chunks = []
    while chunk := tls.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _timed(fetch: Any, path: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fetch(path)
        samples.append(time.perf_counter() - started)
    return samples


def _p(samples: list[float]) -> str:
    return f"{percentile(samples, 0.5) * 1000:.2f} / {percentile(samples, 0.95) * 1000:.2f}"


# --- 3. start with libraries -----------------------------------------------------------


async def starts(rounds: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    fresh: list[float] = []
    for label, packages in (("no packages", []), ("numpy + pandas", ["numpy", "pandas"])):
        seconds = []
        first = []
        for _ in range(rounds):
            policy = parse_sandbox_policy({"packages": packages, "check_code": "off"})
            executor = Executor(DEMO, policy=policy)
            started = time.perf_counter()
            await executor.start()
            seconds.append(time.perf_counter() - started)
            code = "import pandas as pd\nlen(pd.DataFrame({'a': [1, 2]}))" if packages else "1"
            started = time.perf_counter()
            result = await executor.execute(code)
            first.append(time.perf_counter() - started)
            assert result.error is None, result.error
            if packages:
                imported = await executor.execute(
                    "import subprocess, sys, time\nt = time.perf_counter()\n"
                    "subprocess.run([sys.executable, '-I', '-c', "
                    "f'import sys; sys.path[:0] = {sys.path!r}; import pandas'], check=True)\n"
                    "time.perf_counter() - t"
                )
                assert imported.error is None, imported.error
                fresh.append(float(imported.value))
            await executor.aclose()
        figures[f"Executor.start(), {label} (s, median of {rounds})"] = statistics.median(seconds)
        figures[
            f"first execution after start, {label}{' (import pandas, a DataFrame)' if packages else ''} (ms, median)"
        ] = statistics.median(first) * 1000
    figures["a new interpreter in the sandbox importing pandas itself (s, median)"] = (
        statistics.median(fresh)
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--compare", action="store_true", help="also time the other checkers")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "policy.md"))
    args = parser.parse_args()

    big = big_package()
    rows: list[list[object]] = []
    packages = {"demo": DEMO, "3,000+": big}
    for name, package in packages.items():
        samples, _ = asyncio.run(check_latency(package, args.runs))
        rows.append(
            [
                f"check (syntax, imports, ty), {name} package ({tool_count(package):,} tools): p50 / p95 (ms)",
                _p(samples),
            ]
        )
    if args.compare:
        for name, package in packages.items():
            for checker, samples in compare_checkers(package, max(5, args.runs // 4)).items():
                rows.append(
                    [f"{checker} command line alone, {name} package: p50 / p95 (ms)", _p(samples)]
                )
    print("\n".join(f"{a}: {b}" for a, b in rows), flush=True)
    for label, value in asyncio.run(egress(args.runs)).items():
        rows.append([label, f"{value:.2f}" if isinstance(value, float) else value])
    for label, value in asyncio.run(starts(3)).items():
        rows.append([label, f"{value:.3f}" if isinstance(value, float) else value])

    load = os.getloadavg()[0]
    header = (
        f"`bench/policy_bench.py --runs {args.runs}{' --compare' if args.compare else ''}`: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f} at the end of the run."
    )
    notes = f"""
{header}

How to read it:

- *check* is what an execution waits for before it starts under `check_code: block` (or
  `warn`): CPython's compile, the import check against the package's files, and one `ty check`
  process (0.0.104) in a directory whose empty environment links only the package and the
  libraries the sandbox mounts. The snippets are four typical agent programs of 10-16 lines
  importing 2-4 tools (they use the demo servers, which the large package also holds). The
  target was p50 <= 150 ms at both sizes: ty reads only the modules the code imports, so the
  catalog's size barely shows.
- *command line alone* (with `--compare`) is each candidate checker run on the same files
  with the package on its search path: the choice of ty rests on these. basedpyright starts
  node; mypy is timed with its cache warm, which a sandbox's fresh code never has for itself.
- *egress*: a local HTTPS server (self-signed certificate made for the run). "host, through
  the proxy" is the proxy's own cost (Unix socket, CONNECT, resolution from a hosts file, the
  allowlist); "sandbox" adds gVisor's network stack, the relay thread on its loopback and
  Python's TLS inside gVisor. No bandwidth cap in these rows.
- *start*: numpy and pandas are mounted read-only and imported once by the worker, so
  executions get them already imported (forked); the last row is what a process that was not
  forked from the worker pays instead.
"""
    write_table("policy", "Sandbox policy benchmark", ["measure", "value"], rows, notes)
    if args.out != str(ROOT / "bench" / "results" / "policy.md"):
        Path(args.out).write_text((ROOT / "bench/results/policy.md").read_text(), encoding="utf-8")


if __name__ == "__main__":
    main()
