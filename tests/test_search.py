"""Tool search: tokenizing, the index file, queries, the three levels of detail, the CLI.

The known answers use the real tool names and descriptions of mcp-server-time and
mcp-server-git, in a snapshot built here; `KNOWN_ANSWERS` and `assert_finds` serve
the same checks against the demo package's own index once it is built.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import sqlite3
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from codegen import __version__
from codegen.cli.search import search_command
from codegen.index import (
    FIELDS,
    INDEX_FILENAME,
    K1,
    IndexBuildError,
    IndexEntry,
    build_index,
    entries_from_snapshot,
    group_numbers,
    indexed_text,
    parameters_from_schema,
)
from codegen.runtime import search as search_module
from codegen.runtime.search import SearchError, search, search_tools, stem, tokenize
from codegen.snapshot import ServerSnapshot, Snapshot, ToolSnapshot
from tests.conftest import build

ROOT = Path(__file__).resolve().parent.parent
DEMO_INDEX = ROOT / "generated" / "mcp_demo" / "mcp_demo" / INDEX_FILENAME

_TZ = "IANA timezone name (e.g., 'America/New_York', 'Europe/London'). Use 'UTC' as local timezone if no timezone provided by the user."
_SINCE = "timestamp for filtering commits. Accepts: ISO 8601 format (e.g., '2024-01-15T14:30:25'), relative dates (e.g., '2 weeks ago', 'yesterday'), or absolute dates (e.g., '2024-01-15', 'Jan 15 2024')"
_SHA = "The commit sha that branch should {}contain. Do not pass anything to this param if no commit sha is specified"

# (server, tool, description, {parameter: description}) as mcp-server-time,
# mcp-server-git and (as distractors) mcp-server-filesystem list them.
TOOLS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("time", "get_current_time", "Get current time in a specific timezone", {"timezone": _TZ}),
    ("time", "convert_time", "Convert time between timezones", {
        "source_timezone": "Source " + _TZ, "target_timezone": "Target " + _TZ,
        "time": "Time to convert in 24-hour format (HH:MM)"}),
    ("git", "git_add", "Adds file contents to the staging area", {"files": "", "repo_path": ""}),
    ("git", "git_branch", "List Git branches", {
        "branch_type": "Whether to list local branches ('local'), remote branches ('remote') or all branches('all').",
        "contains": _SHA.format(""), "not_contains": _SHA.format("NOT "),
        "repo_path": "The path to the Git repository."}),
    ("git", "git_checkout", "Switches branches", {"branch_name": "", "repo_path": ""}),
    ("git", "git_commit", "Records changes to the repository", {"message": "", "repo_path": ""}),
    ("git", "git_create_branch", "Creates a new branch from an optional base branch", {
        "base_branch": "", "branch_name": "", "repo_path": ""}),
    ("git", "git_diff", "Shows differences between branches or commits", {
        "context_lines": "", "repo_path": "", "target": ""}),
    ("git", "git_diff_staged", "Shows changes that are staged for commit", {"context_lines": "", "repo_path": ""}),
    ("git", "git_diff_unstaged", "Shows changes in the working directory that are not yet staged", {
        "context_lines": "", "repo_path": ""}),
    ("git", "git_log", "Shows the commit logs", {
        "end_timestamp": "End " + _SINCE, "max_count": "", "repo_path": "", "start_timestamp": "Start " + _SINCE}),
    ("git", "git_reset", "Unstages all staged changes", {"repo_path": ""}),
    ("git", "git_show", "Shows the contents of a commit, or of a file or directory given as <revision>:<path>", {
        "repo_path": "", "revision": ""}),
    ("git", "git_status", "Shows the working tree status", {"repo_path": ""}),
    ("filesystem", "read_text_file", "Read the complete contents of a file from the file system as text.", {
        "path": "", "head": "If provided, returns only the first N lines of the file"}),
    ("filesystem", "list_directory", "Get a detailed listing of all files and directories in a specified path.", {"path": ""}),
    ("filesystem", "get_file_info", "Retrieve detailed metadata about a file or directory, including size, creation time, last modified time.", {"path": ""}),
    ("filesystem", "search_files", "Recursively search for files and directories matching a pattern.", {"path": "", "pattern": ""}),
)  # fmt: skip

# (query, import path expected, found within the first n hits)
KNOWN_ANSWERS: tuple[tuple[str, str, int], ...] = (
    ("what time is it in Tokyo", "servers.time.get_current_time", 2),
    ("convert 3pm New York time to London", "servers.time.convert_time", 1),
    ("commit history", "servers.git.git_log", 3),
    ("show the working tree status", "servers.git.git_status", 1),
    ("create a new branch", "servers.git.git_create_branch", 1),
    ("what changed but is not staged yet", "servers.git.git_diff_unstaged", 2),
    ("gitStatus", "servers.git.git_status", 1),
    ("read a file", "servers.filesystem.read_text_file", 1),
)


def snapshot() -> Snapshot:
    """The snapshot of `TOOLS`, validated like one introspection wrote."""
    servers: dict[str, list[ToolSnapshot]] = {}
    for server, name, description, params in TOOLS:
        schema = {
            "type": "object",
            "properties": {
                key: {"type": "string", "description": text} for key, text in params.items()
            },
            "required": sorted(params),
        }
        servers.setdefault(server, []).append(
            ToolSnapshot(name=name, description=description, inputSchema=schema)
        )
    return Snapshot(
        servers=tuple(ServerSnapshot(name=k, tools=tuple(v)) for k, v in servers.items())
    )


def assert_finds(query: str, import_path: str, within: int, index_path: Path) -> None:
    """`query` finds `import_path` among its first `within` hits of the index at `index_path`."""
    found = [hit.import_path for hit in search(query, 10, index_path=index_path)]
    assert import_path in found[:within], f"{query!r} -> {found}"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pkg") / INDEX_FILENAME
    build_index(entries_from_snapshot(snapshot()), path, generator_version=__version__)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- tokenizing


@pytest.mark.parametrize(
    "text",
    [
        "getCurrentTime",
        "get_current_time",
        "get-current-time",
        "get.current.time",
        "GET CURRENT TIME",
    ],
)
def test_identifiers_split_into_the_same_words(text: str) -> None:
    assert tokenize(text) == ["get", "current", "time"]


def test_tokenize_splits_acronyms_folds_accents_and_drops_stop_words() -> None:
    assert tokenize("HTTPServer") == ["http", "server"]
    assert tokenize("Café of the 東京") == ["cafe", "東京"]
    assert tokenize("what is the weather") == ["weather"]


@pytest.mark.parametrize(
    ("word", "expected"),
    [("histories", "histori"), ("commits", "commit"), ("running", "run"), ("relational", "relat"),
     ("generalizations", "gener"), ("hopping", "hop"), ("agreed", "agre"), ("sky", "sky")],
)  # fmt: skip
def test_porter_stemmer(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_parameters_from_schema() -> None:
    schema = {"type": "object", "properties": {"b": {"description": "B"}, "a": {"type": "string"}}}
    assert parameters_from_schema(schema) == (("b", "B"), ("a", ""))
    assert parameters_from_schema({"type": "object"}) == ()
    assert parameters_from_schema([]) == ()


# ------------------------------------------------------------- known answers


@pytest.mark.parametrize(("query", "import_path", "within"), KNOWN_ANSWERS)
def test_known_answers(index: Path, query: str, import_path: str, within: int) -> None:
    assert_finds(query, import_path, within, index)


# In the real demo, "read a file" competes with read_graph, read_query and
# read_multiple_files: read_text_file comes 4th, so it is checked within 5 there.
DEMO_ANSWERS = (*KNOWN_ANSWERS[:-1], ("read a file", "servers.filesystem.read_text_file", 5))


@pytest.mark.parametrize(("query", "import_path", "within"), DEMO_ANSWERS)
def test_known_answers_in_the_demo_package(query: str, import_path: str, within: int) -> None:
    # The golden package is committed with its index; test_golden keeps it current.
    assert_finds(query, import_path, within, DEMO_INDEX)


def _reference_ranking(entries: list[IndexEntry], query: str) -> list[tuple[str, float]]:
    # BM25F written out plainly from the index's fields, for every tool and every
    # query term (words, then adjacent pairs), to check the precomputed postings.
    ordered = sorted(entries, key=lambda entry: entry.import_path)
    texts = indexed_text(ordered)
    count = len(texts)
    averages = {
        field.name: (sum(len(text[field.name]) for text in texts) / count) or 1.0
        for field in FIELDS
    }
    words = search_module._query_terms(query)
    terms = words + search_module._pairs(query)
    ranking = []
    for entry, text, group in zip(ordered, texts, group_numbers(ordered), strict=True):
        score = 0.0
        for term in terms:
            holders = sum(any(term in other[field.name] for field in FIELDS) for other in texts)
            f = sum(
                field.weight
                * text[field.name].count(term)
                / (1 - field.b + field.b * len(text[field.name]) / averages[field.name])
                for field in FIELDS
            )
            if f:
                idf = math.log(1 + (count - holders + 0.5) / (holders + 0.5))
                score += idf * f * (K1 + 1) / (f + K1)
        if score > 0:
            ranking.append((entry.import_path, score, group))
    # The second stage: each of the best GROUP_DEPTH gains a share of its group's best.
    ranking.sort(key=lambda row: (-row[1], row[0]))
    ranking = ranking[: max(100, search_module.GROUP_DEPTH)]
    leaders: dict[int, float] = {}
    for _, score, group in ranking:
        leaders.setdefault(group, score)
    fused = [
        (path, score + search_module.GROUP_BOOST * leaders[group]) for path, score, group in ranking
    ]
    fused.sort(key=lambda pair: (-pair[1], pair[0]))
    return [(path, round(score, 6)) for path, score in fused[:100]]


@pytest.mark.parametrize(
    "query",
    ["commit history", "show changes", "git", "time time zone timezone", "file directory path",
     "what changed but is not staged yet", "the of and", "branch commit sha repository status"],
)  # fmt: skip
def test_scores_are_bm25f_over_the_indexed_fields(index: Path, query: str) -> None:
    hits = search(query, 100, index_path=index)
    expected = _reference_ranking(entries_from_snapshot(snapshot()), query)
    assert [(hit.import_path, pytest.approx(hit.score, abs=2e-6)) for hit in hits] == expected


def test_repeated_query_words_count_once(index: Path) -> None:
    assert search("log log commit log", 5, index_path=index) == search(
        "commit log", 5, index_path=index
    )


def test_results_are_deterministic(index: Path) -> None:
    first = search_tools("show changes", "summary", 10, index_path=index)
    assert all(
        search_tools("show changes", "summary", 10, index_path=index) == first for _ in range(3)
    )


# ------------------------------------------------------------ detail levels


def test_detail_name_is_one_import_path_a_line(index: Path) -> None:
    text = search_tools("commit history", detail="name", limit=3, index_path=index)
    lines = text.splitlines()
    assert len(lines) == 3 and all(line.startswith("servers.git.") for line in lines)


def test_detail_summary_adds_the_first_sentence(index: Path) -> None:
    text = search_tools("get file info", detail="summary", limit=1, index_path=index)
    assert text == (
        "servers.filesystem.get_file_info: Retrieve detailed metadata about a file or directory, "
        "including size, creation time, last modified time.\n"
    )


def test_detail_full_gives_signature_and_docstring(index: Path) -> None:
    text = search_tools("current time in a timezone", detail="full", limit=1, index_path=index)
    assert text.startswith(
        "# servers.time.get_current_time\n"
        "async def get_current_time(*, timezone: str) -> ToolResult:\n"
        '    """Get current time in a specific timezone\n'
    )
    assert "\n    Args:\n        timezone: IANA timezone name" in text
    assert text.endswith('    """\n') and "class " not in text


def test_full_detail_dedents_an_indented_docstring() -> None:
    hit = search_module.Hit(
        "servers.s.t", "s", "t", None, "Do it.", "async def t() -> ToolResult",
        "Do it.\n    \n    Args:\n        x: y\n    ", 1.0,
    )  # fmt: skip
    assert search_module.format_hits([hit], "full") == (
        '# servers.s.t\nasync def t() -> ToolResult:\n    """Do it.\n\n    Args:\n        x: y\n    """\n'
    )


def test_limit_bounds_the_hits(index: Path) -> None:
    assert len(search("git", 4, index_path=index)) == 4
    assert len(search("git", 100, index_path=index)) == 12  # every git tool, nothing else


# ---------------------------------------------------------------- the file


def test_index_is_byte_identical_for_identical_input(tmp_path: Path) -> None:
    entries = entries_from_snapshot(snapshot())
    paths = []
    for i, order in enumerate([entries, entries[::-1], entries]):
        path = tmp_path / str(i) / INDEX_FILENAME
        build_index(order, path, generator_version="1.2.3")
        paths.append(path)
    assert len({_sha(path) for path in paths}) == 1
    assert sorted(os.listdir(tmp_path / "0")) == [INDEX_FILENAME]  # no temporary left behind


def test_index_changes_with_its_input(tmp_path: Path) -> None:
    entries = entries_from_snapshot(snapshot())
    build_index(entries, tmp_path / "a", generator_version="1")
    build_index(entries[1:], tmp_path / "b", generator_version="1")
    assert _sha(tmp_path / "a") != _sha(tmp_path / "b")


def test_duplicate_import_paths_are_refused(tmp_path: Path) -> None:
    entry = entries_from_snapshot(snapshot())[0]
    with pytest.raises(IndexBuildError, match="listed twice"):
        build_index([entry, entry], tmp_path / INDEX_FILENAME, generator_version="1")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "ro"
    build_index(
        entries_from_snapshot(snapshot()), directory / INDEX_FILENAME, generator_version="1"
    )
    (directory / INDEX_FILENAME).chmod(stat.S_IRUSR)
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    yield directory
    directory.chmod(stat.S_IRWXU)


def test_index_works_from_a_read_only_directory(read_only: Path) -> None:
    before = _sha(read_only / INDEX_FILENAME)
    assert search("commit history", 3, index_path=read_only / INDEX_FILENAME)
    assert os.listdir(read_only) == [INDEX_FILENAME]  # no journal, no lock file
    assert _sha(read_only / INDEX_FILENAME) == before


def test_empty_index_finds_nothing(tmp_path: Path) -> None:
    build_index([], tmp_path / INDEX_FILENAME, generator_version="1")
    assert search_tools("anything", index_path=tmp_path / INDEX_FILENAME).startswith(
        "no tool matches"
    )


def test_entry_with_title_and_no_description(tmp_path: Path) -> None:
    entry = IndexEntry(
        "s", "t", "servers.s.t", "Launch Rocket", "", (), "async def t() -> ToolResult", ""
    )
    build_index([entry], tmp_path / INDEX_FILENAME, generator_version="1")
    assert (
        search_tools("rocket launch", index_path=tmp_path / INDEX_FILENAME)
        == "servers.s.t: Launch Rocket\n"
    )


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "!!! ??? ...", "''\"\"", "()"])
def test_empty_or_wordless_query_is_a_clear_error(index: Path, query: str) -> None:
    with pytest.raises(SearchError, match="query"):
        search(query, index_path=index)


@pytest.mark.parametrize(
    "query",
    ['"', 'a"b', "NEAR(git log)", "git AND OR NOT", "col:term", "^start", "prefix*", "{git}: log",
     "git + log - status", "DROP TABLE tools; --", "\x00\x01git", "東京の時間", "🕐 time ⏰",
     "log " * 2500, "x" * 10_000, "the of and"],
)  # fmt: skip
def test_any_text_is_a_query_or_a_clear_error(index: Path, query: str) -> None:
    try:
        assert isinstance(search_tools(query, index_path=index), str)
    except SearchError as exc:
        assert "no words to search for" in str(exc)


def test_stop_words_only_still_search(index: Path) -> None:
    assert search("what is this", index_path=index) == []


@pytest.mark.parametrize("limit", [0, -1, 101, True, 2.5])
def test_bad_limit(index: Path, limit: object) -> None:
    with pytest.raises(SearchError, match="limit"):
        search("git", limit, index_path=index)  # type: ignore[arg-type]


def test_bad_detail(index: Path) -> None:
    with pytest.raises(SearchError, match="detail must be one of name, summary, full"):
        search_tools("git", detail="everything", index_path=index)


def test_missing_index_says_to_rebuild(tmp_path: Path) -> None:
    with pytest.raises(SearchError, match=r"no search index at .*mcp-codegen build"):
        search("git", index_path=tmp_path / INDEX_FILENAME)


def test_not_an_index(tmp_path: Path) -> None:
    (tmp_path / INDEX_FILENAME).write_text("not sqlite", encoding="utf-8")
    with pytest.raises(SearchError, match="not a readable search index"):
        search("git", index_path=tmp_path / INDEX_FILENAME)


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE postings SET tools = substr(tools, 2)",
        "UPDATE postings SET scores = 'text'",
        "UPDATE postings SET tools = x'ffff'",
        "UPDATE meta SET value = '0' WHERE key = 'tool_count'",
        "DROP TABLE postings",
        "UPDATE tool_groups SET groups = x'0100'",
        "DROP TABLE tool_groups",
    ],
)
def test_damaged_index_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / INDEX_FILENAME
    build_index(entries_from_snapshot(snapshot()), path, generator_version="1")
    with sqlite3.connect(path) as db:
        db.execute(damage)
    db.close()
    with pytest.raises(SearchError, match="rebuild the package"):
        search("commit history git", index_path=path)


def test_index_of_another_format_names_both(tmp_path: Path) -> None:
    path = tmp_path / INDEX_FILENAME
    build_index(entries_from_snapshot(snapshot()), path, generator_version="0.0.1")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '999' WHERE key = 'index_format'")
    db.close()
    with pytest.raises(
        SearchError, match=r"mcp-codegen 0\.0\.1 \(index format 999\).*reads index format"
    ):
        search("git", index_path=path)


# --------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package built from `snapshot()` (render only: no server is started)."""
    out = tmp_path_factory.mktemp("search") / "project"
    build(out, name="pkg", snapshot=snapshot())
    return out


def test_cli_prints_hits(project: Path) -> None:
    result = CliRunner().invoke(
        search_command,
        ["commit history", "--package", str(project), "--detail", "name", "--limit", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "servers.git.git_log\n" in result.output and len(result.output.splitlines()) == 3


def test_cli_json(project: Path) -> None:
    result = CliRunner().invoke(
        search_command, ["current time in tokyo", "--package", str(project), "--json"]
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert hits[0]["import_path"] == "servers.time.get_current_time"
    assert set(hits[0]) == {"import_path", "server", "tool", "title", "summary", "score"}


def test_cli_accepts_the_import_package_and_the_directory_holding_the_package(
    project: Path,
) -> None:
    for given in (project / "pkg", project.parent):
        result = CliRunner().invoke(search_command, ["current time", "--package", str(given)])
        assert result.exit_code == 0, result.output
        assert result.output.startswith("servers.time.get_current_time")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["", "--package", "{project}"], 2, "error: empty query"),
        (["?!", "--package", "{project}"], 2, "has no words to search for"),
        (["git", "--package", "{project}/nowhere"], 4, "nowhere: no such directory"),
    ],
)
def test_cli_errors_without_traceback(
    project: Path, args: list[str], code: int, message: str
) -> None:
    result = CliRunner().invoke(search_command, [arg.format(project=project) for arg in args])
    assert result.exit_code == code
    assert message in result.output and "Traceback" not in result.output


def test_cli_refuses_an_index_of_another_version(tmp_path: Path) -> None:
    out = tmp_path / "p"
    build(out, name="pkg", snapshot=snapshot())
    build_index(
        entries_from_snapshot(snapshot()), out / "pkg" / INDEX_FILENAME, generator_version="0.0.1"
    )
    result = CliRunner().invoke(search_command, ["git", "--package", str(out)])
    assert result.exit_code == 4
    assert f"written by mcp-codegen 0.0.1, this is {__version__}" in result.output


# ----------------------------------------------------------------- runtime


def test_runtime_search_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(search_module.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


# ------------------------------------------------------ gateways, weak matches


def gateway_snapshot() -> Snapshot:
    """The tools of `TOOLS` behind one aggregator server, named `<server>__<tool>`."""
    renamed = [
        tool.model_copy(update={"name": f"{server.name}__{tool.name}"})
        for server in snapshot().servers
        for tool in server.tools
    ]
    return Snapshot(servers=(ServerSnapshot(name="gateway", tools=tuple(renamed)),))


@pytest.fixture(scope="module")
def gateway_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gateway") / INDEX_FILENAME
    build_index(entries_from_snapshot(gateway_snapshot()), path, generator_version=__version__)
    return path


@pytest.mark.parametrize(("query", "import_path", "within"), KNOWN_ANSWERS)
def test_known_answers_through_a_gateway(
    gateway_index: Path, query: str, import_path: str, within: int
) -> None:
    # The same tools behind one server, the API folded into each name: the
    # namespaces recovered from the names make them as easy to find.
    _, server, tool = import_path.split(".")
    found = [hit.tool for hit in search(query, 10, index_path=gateway_index)]
    assert f"{server}__{tool}" in found[:within], f"{query!r} -> {found}"


def test_gateway_namespace_is_searchable_like_a_server(gateway_index: Path) -> None:
    hits = search("git", 20, index_path=gateway_index)
    assert {hit.tool.split("__")[0] for hit in hits} == {"git"} and len(hits) == 12


WEAK = "book a table at an Italian restaurant for friday, and tell me the status"


def test_weak_match_says_so_in_one_line_and_keeps_the_hits(index: Path) -> None:
    found = search_module.lookup(WEAK, 3, index_path=index)
    assert found.weak and found.hits
    text = search_tools(WEAK, "name", 3, index_path=index)
    first, *rest = text.splitlines()
    assert first.startswith("# nothing matches 'book a table at an Italian") and "well" in first
    assert rest == [hit.import_path for hit in found.hits]


@pytest.mark.parametrize(("query", "import_path", "within"), KNOWN_ANSWERS)
def test_known_answers_are_not_weak(index: Path, query: str, import_path: str, within: int) -> None:
    assert not search_module.lookup(query, 3, index_path=index).weak
    assert not search_tools(query, "name", 3, index_path=index).startswith("#")


def test_a_matching_skill_is_not_a_weak_match(index: Path, tmp_path: Path) -> None:
    (tmp_path / "italian_restaurant_booking.py").write_text(
        '"""Book a table at an Italian restaurant for friday and report the status."""\n\n'
        "async def italian_restaurant_booking() -> str:\n"
        '    """Book a table at an Italian restaurant for friday and report the status."""\n'
        '    return "booked"\n',
        encoding="utf-8",
    )
    text = search_tools(WEAK, "name", 3, index_path=index, skills_dir=tmp_path)
    assert not text.startswith("#") and "italian_restaurant_booking" in text


def test_match_strength_is_the_covered_share_of_the_query(index: Path) -> None:
    assert search_module.lookup("git status", 1, index_path=index).strength == 1.0
    half = search_module.lookup("git status zzzunknownword", 1, index_path=index).strength
    assert 0.0 < half < 0.7  # an unknown word weighs as much as the rarest known one


def test_gateway_index_and_results_are_deterministic(tmp_path: Path) -> None:
    entries = entries_from_snapshot(gateway_snapshot())
    first, second = tmp_path / "a" / INDEX_FILENAME, tmp_path / "b" / INDEX_FILENAME
    build_index(entries, first, generator_version="1")
    build_index(entries[::-1], second, generator_version="1")
    assert _sha(first) == _sha(second)
    assert search_tools(WEAK, "full", 10, index_path=first) == search_tools(
        WEAK, "full", 10, index_path=second
    )
