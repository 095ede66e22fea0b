"""The snapshot: the normalized record of what the servers offered.

Introspection writes it, everything downstream reads only it. It holds what the
servers said about themselves and their tools, and nothing from the config: no
commands, no environment, no headers, so no secret can reach it.

The JSON form is canonical: keys sorted, servers and tools sorted by name,
two-space indent, UTF-8, a trailing newline. The same servers give the same bytes.
`Snapshot.digest()` hashes the same content in its compact form, which the C
JSON encoder writes many times faster than the indented one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

__all__ = [
    "SNAPSHOT_FILENAME",
    "SNAPSHOT_FORMAT",
    "PromptArgumentSnapshot",
    "PromptSnapshot",
    "ResourceSnapshot",
    "ResourceTemplateSnapshot",
    "ServerSnapshot",
    "Snapshot",
    "SnapshotError",
    "ToolSnapshot",
    "canonical_json",
    "server_chunks",
    "server_from_chunk",
]

SNAPSHOT_FILENAME = "mcp-snapshot.json"
SNAPSHOT_FORMAT = 1

JSONObject = dict[str, Any]


class SnapshotError(Exception):
    """A snapshot file that cannot be read or does not hold a valid snapshot."""


def canonical_json(value: Any) -> str:
    """Serialize `value` canonically: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _compact(value: Any) -> str:
    # No indent: the C encoder does this, many times faster than the indented form.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sorted(value: Any) -> Any:
    """`value` with every object's keys in sorted order, recursively (arrays keep theirs)."""
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


# The canonical text around and between the servers (see `Snapshot.text_reusing`): each
# server is an object at an indent of four spaces, its lines at six or more, so these
# lines occur nowhere else (a JSON string holds no raw newline).
_HEAD = '{{\n  "format": {format},\n  "servers": [\n    {{\n'
_SEPARATOR = "\n    },\n    {\n"
_TAIL = "\n    }\n  ]\n}\n"


_NAME_LINE = re.compile(rb'^      "name": (".*?"),?$', re.MULTILINE)


def server_chunks(data: bytes) -> dict[str, bytes] | None:
    """Each server's lines in a snapshot file's bytes, by name; None if it is not canonical.

    Nothing is parsed but each server's name (the one key at its indent of six
    spaces named `name`): at 10,000 tools, parsing the whole file takes a tenth
    of a second.
    """
    head = _HEAD.format(format=SNAPSHOT_FORMAT).encode()
    tail = _TAIL.encode()
    if not data.startswith(head) or not data.endswith(tail):
        return None
    chunks: dict[str, bytes] = {}
    for part in data[len(head) : -len(tail)].split(_SEPARATOR.encode()):
        found = _NAME_LINE.search(part)
        try:
            name = json.loads(found.group(1)) if found else None
        except ValueError:
            return None
        if not isinstance(name, str) or name in chunks:
            return None
        chunks[name] = part
    return chunks


def server_from_chunk(chunk: bytes) -> JSONObject:
    """The wire form of the server whose lines are `chunk` (see `server_chunks`).

    Raises:
        ValueError: `chunk` is not a JSON object's members.
    """
    value = json.loads(b"{\n" + chunk + b"\n}")
    if not isinstance(value, dict):
        raise ValueError("not a server")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolSnapshot(_Frozen):
    """One tool as the server listed it (MCP `Tool`, in its wire spelling)."""

    name: str
    title: str | None = None
    description: str = ""
    input_schema: JSONObject = Field(alias="inputSchema")
    output_schema: JSONObject | None = Field(default=None, alias="outputSchema")
    annotations: JSONObject | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("input_schema", "output_schema", "annotations")
    @classmethod
    def _canonical_order(cls, value: JSONObject | None) -> JSONObject | None:
        # Key order is the server's whim; sorted here, a live listing and the same
        # listing read back from its snapshot file render alike.
        return _sorted(value)  # type: ignore[no-any-return]

    @functools.cached_property
    def _digest(self) -> str:
        return hashlib.sha256(_compact(self.to_json()).encode("utf-8")).hexdigest()

    def digest(self) -> str:
        """A hash of this tool's definition, for incremental builds and drift checks."""
        return self._digest

    def to_json(self) -> JSONObject:
        """The tool in MCP wire spelling, with absent fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ResourceSnapshot(_Frozen):
    """One static resource as the server listed it (MCP `Resource`, wire spelling).

    Its `size` and `annotations` (`lastModified`, ...) are left out: they change with
    the content, not with what the server offers.
    """

    uri: str
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = Field(default=None, alias="mimeType")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ResourceTemplateSnapshot(_Frozen):
    """One resource template (RFC 6570 `uriTemplate`) as the server listed it."""

    uri_template: str = Field(alias="uriTemplate")
    name: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = Field(default=None, alias="mimeType")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class PromptArgumentSnapshot(_Frozen):
    """One argument of a prompt; prompt arguments are strings."""

    name: str
    title: str | None = None
    description: str | None = None
    required: bool = False


class PromptSnapshot(_Frozen):
    """One prompt as the server listed it, its arguments in the server's order."""

    name: str
    title: str | None = None
    description: str | None = None
    arguments: tuple[PromptArgumentSnapshot, ...] = ()

    @field_validator("arguments")
    @classmethod
    def _unique(
        cls, arguments: tuple[PromptArgumentSnapshot, ...]
    ) -> tuple[PromptArgumentSnapshot, ...]:
        _refuse_duplicates("prompt arguments", [argument.name for argument in arguments])
        return arguments


def _refuse_duplicates(what: str, keys: list[str]) -> None:
    duplicates = sorted(key for key, count in Counter(keys).items() if count > 1)
    if duplicates:
        raise ValueError(f"{what} listed twice: {', '.join(duplicates)}")


class ServerSnapshot(_Frozen):
    """One configured server: its key in `mcpServers`, what it said of itself, its tools,
    and, when it offers them, its resources, resource templates and prompts."""

    name: str
    """The key under `mcpServers`; generated code calls the server by this name."""
    server_name: str | None = None
    server_title: str | None = None
    server_version: str | None = None
    protocol_version: str | None = None
    instructions: str | None = None
    tools: tuple[ToolSnapshot, ...] = ()
    # None rather than empty: a server without them keeps the snapshot text it had
    # before mcp-codegen listed them (and so its digest and package version).
    resources: tuple[ResourceSnapshot, ...] | None = None
    resource_templates: tuple[ResourceTemplateSnapshot, ...] | None = Field(
        default=None, alias="resourceTemplates"
    )
    prompts: tuple[PromptSnapshot, ...] | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("tools", "resources", "resource_templates", "prompts")
    @classmethod
    def _sorted_unique(cls, items: tuple[Any, ...] | None, info: ValidationInfo) -> Any:
        what, key = _LISTED[info.field_name or ""]
        if not items:
            return () if info.field_name == "tools" else None
        _refuse_duplicates(what, [key(item) for item in items])
        return tuple(sorted(items, key=key))


_LISTED: dict[str, tuple[str, Callable[[Any], str]]] = {
    "tools": ("tool names", operator.attrgetter("name")),
    "resources": ("resource uris", operator.attrgetter("uri")),
    "resource_templates": ("resource templates", operator.attrgetter("uri_template")),
    "prompts": ("prompt names", operator.attrgetter("name")),
}
"""What a server lists, by field: its name in an error, and the key it is sorted and
deduplicated by."""


class Snapshot(_Frozen):
    """Every server of one config, normalized."""

    format: int = SNAPSHOT_FORMAT
    servers: tuple[ServerSnapshot, ...] = ()

    @field_validator("servers")
    @classmethod
    def _sorted(cls, servers: tuple[ServerSnapshot, ...]) -> tuple[ServerSnapshot, ...]:
        return tuple(sorted(servers, key=lambda server: server.name))

    @functools.cached_property
    def _wire(self) -> JSONObject:
        # One dump for the text, the digest and every tool's and server's digest: at
        # 10,000 tools, one call instead of one per tool saves a second.
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def wire(self) -> JSONObject:
        """The snapshot in wire form (what its file holds), made once; do not modify it."""
        return self._wire

    @functools.cached_property
    def _text(self) -> str:
        return canonical_json(self._wire)

    def text_reusing(self, previous: Mapping[str, bytes], same: Collection[str]) -> bytes:
        """`to_json()` in UTF-8, copying the bytes of each server in `same` from `previous`.

        `previous` is `server_chunks()` of an earlier snapshot file; `same` names the
        servers it holds unchanged. JSON with an indent is written by Python code, not
        C: at 10,000 tools the whole text takes a second, a server a millisecond.
        """
        if "_text" in self.__dict__ or not self._wire["servers"]:
            return self._text.encode("utf-8")
        parts = []
        for server in self._wire["servers"]:
            name = server["name"]
            if name in same and name in previous:
                parts.append(previous[name])
            else:
                inner = canonical_json(server).rstrip("\n").split("\n")[1:-1]
                parts.append("\n".join("    " + line for line in inner).encode("utf-8"))
        head = _HEAD.format(format=self.format).encode()
        return head + _SEPARATOR.encode().join(parts) + _TAIL.encode()

    def to_json(self) -> str:
        """The canonical JSON text of this snapshot (the bytes of its file)."""
        return self._text

    @functools.cached_property
    def _server_texts(self) -> dict[str, str]:
        # Each server's compact canonical JSON: the snapshot's is these, joined (`_digest`).
        return {server["name"]: _compact(server) for server in self._wire["servers"]}

    @functools.cached_property
    def _digest(self) -> str:
        # The compact JSON of the whole snapshot, made of its servers' (the same bytes as
        # `_compact(self._wire)`, which the servers' digests then need not dump again).
        digest = hashlib.sha256(f'{{"format":{self.format},"servers":['.encode())
        digest.update(",".join(self._server_texts.values()).encode("utf-8"))
        digest.update(b"]}")
        return digest.hexdigest()

    @functools.cached_property
    def _content_digests(self) -> dict[str, str]:
        return {
            name: hashlib.sha256(text.encode("utf-8")).hexdigest()
            for name, text in self._server_texts.items()
        }

    def server_content_digest(self, server: str) -> str:
        """SHA-256 of server `server`'s compact canonical JSON: what it said, all of it.

        Raises:
            KeyError: no such server.
        """
        return self._content_digests[server]

    @functools.cached_property
    def _servers_by_name(self) -> dict[str, JSONObject]:
        return {server["name"]: server for server in self._wire["servers"]}

    @functools.cached_property
    def _tool_digests(self) -> dict[str, dict[str, str]]:
        return {}

    def tool_digest(self, server: str, tool: str) -> str:
        """`ToolSnapshot.digest()` of the tool `tool` of server `server`.

        The digests of a server's tools are computed together, when one is first asked.

        Raises:
            KeyError: no such server or tool.
        """
        digests = self._tool_digests.get(server)
        if digests is None:
            digests = self._tool_digests[server] = {
                entry["name"]: hashlib.sha256(_compact(entry).encode("utf-8")).hexdigest()
                for entry in self._servers_by_name[server]["tools"]
            }
        return digests[tool]

    @functools.cached_property
    def _server_digests(self) -> dict[str, str]:
        return {}

    def server_digest(self, server: str) -> str:
        """A hash of everything the snapshot holds about server `server` (in generated headers).

        Raises:
            KeyError: no such server.
        """
        digest = self._server_digests.get(server)
        if digest is None:
            text = json.dumps(self._servers_by_name[server], sort_keys=True)
            digest = self._server_digests[server] = hashlib.sha256(text.encode()).hexdigest()
        return digest

    def digest(self) -> str:
        """SHA-256 of the snapshot's content (its compact canonical JSON)."""
        return self._digest

    def server(self, name: str) -> ServerSnapshot | None:
        """The server configured as `name`, if the snapshot has it."""
        return next((server for server in self.servers if server.name == name), None)

    def tool_count(self) -> int:
        """How many tools all servers list together."""
        return sum(len(server.tools) for server in self.servers)

    def write(self, path: Path) -> None:
        """Write the canonical JSON to `path`."""
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Snapshot:
        """Read and validate a snapshot file.

        Raises:
            SnapshotError: the file is missing, not JSON, or not a snapshot.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SnapshotError(f"{path}: cannot read snapshot ({exc.strerror})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SnapshotError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from exc
        if isinstance(data, dict) and data.get("format", SNAPSHOT_FORMAT) != SNAPSHOT_FORMAT:
            raise SnapshotError(
                f"{path}: snapshot format {data.get('format')!r} is not {SNAPSHOT_FORMAT}; "
                "rebuild it with this mcp-codegen (`mcp-codegen build`)"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "/".join(str(part) for part in first["loc"])
            raise SnapshotError(f"{path}: invalid snapshot at {where}: {first['msg']}") from exc
