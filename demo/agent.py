# Agent code for `make demo`: it runs inside gVisor, imports the generated package,
# and calls real tools through the bridge. Only what it prints, and the value of
# its last expression, come back.
import asyncio

from servers.crm import list_customers
from servers.filesystem import list_directory, write_file
from servers.git import git_log
from servers.memory import create_entities, search_nodes
from servers.sqlite import read_query
from servers.time import convert_time, get_current_time

# Several servers at once.
tokyo, commits, tables = await asyncio.gather(
    get_current_time(timezone="Asia/Tokyo"),
    git_log(repo_path="repo", max_count=50),
    read_query(query="SELECT name FROM sqlite_master WHERE type = 'table'"),
)
meeting = await convert_time(
    source_timezone="Europe/Paris", time="16:00", target_timezone="Asia/Tokyo"
)

# Intermediate data stays in the sandbox: the log is parsed here, not shown.
authors = sorted(
    {
        line.split(":", 1)[1].strip()
        for line in commits.text.splitlines()
        if line.startswith("Author:")
    }
)
report = f"{len(authors)} authors, {commits.text.count('Commit:')} commits"

# Data flows from one server to another without passing through the output.
await write_file(path="demo-report.txt", content=report)
files = (await list_directory(path=".")).content
await create_entities(
    entities=[{"name": "demo-run", "entityType": "run", "observations": [report]}]
)
remembered = await search_nodes(query="demo-run")

print(
    f"Tokyo: {tokyo.datetime[11:16]} ({tokyo.day_of_week}); 16:00 in Paris is {meeting.target.datetime[11:16]} there"
)
print(f"git: {report}; sqlite: {tables.text.count('name')} tables")
print(f"filesystem: {files.count('[FILE]')} files; memory: {len(remembered.entities)} entity found")

# Personal data from the CRM reaches this code only as placeholders; calls that pass
# them back get the real values on the host.
customers = (await list_customers(limit=2)).customers
print("crm:", "; ".join(f"{c.name} <{c.email}>, {c.phone}" for c in customers))
{"authors": authors, "files": files.count("[FILE]")}
