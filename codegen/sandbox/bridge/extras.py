"""The host's checks of resource reads and prompts from the sandbox, and their PII scan.

A read names a `uri`, or a `template` with `arguments`, which the host expands
itself (the code's own expansion is never trusted). Either way the server must
be in the snapshot, and the uri one of its static resources or an expansion of
one of its templates. A prompt must be one the server listed, its arguments
strings, every required one given and none it does not take. Only then does the
request reach the server.

What comes back is scanned for personal data like a tool result: resource text
(and blobs that are text) and every prompt message's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...runtime.uritemplate import MAX_TEMPLATE_CHARS, Template, TemplateError, parse
from ...snapshot import PromptSnapshot, ServerSnapshot, Snapshot
from .privacy import Tokenizer

__all__ = [
    "MAX_URI_CHARS",
    "Offerings",
    "Refused",
    "redact_prompt",
    "redact_resource",
]

MAX_URI_CHARS = 16 * 1024
"""The longest uri a read may name."""


class Refused(Exception):
    """A read or prompt refused before it reached any server; the message says why."""


@dataclass
class _Server:
    static: frozenset[str]
    templates: dict[str, Template]
    prompts: dict[str, PromptSnapshot]


class Offerings:
    """What each server of a snapshot offers besides tools, ready for checking."""

    def __init__(self, snapshot: Snapshot):
        self._snapshot = snapshot
        self._servers: dict[str, _Server] = {}

    def _server(self, name: str) -> _Server:
        found = self._servers.get(name)
        if found is not None:
            return found
        server = self._snapshot.server(name)
        if server is None:
            known = ", ".join(s.name for s in self._snapshot.servers) or "none"
            raise Refused(f"unknown server {name!r} (servers: {known})")
        found = _Server(
            frozenset(resource.uri for resource in server.resources or ()),
            _templates(server),
            {prompt.name: prompt for prompt in server.prompts or ()},
        )
        self._servers[name] = found
        return found

    def resource_uri(self, server: str, message: dict[str, Any], restore: Any) -> tuple[str, str]:
        """(uri as sent, uri to read) of a read request; `restore` puts real values back.

        Raises:
            Refused: no such server, a malformed request, or a uri that is none of
                the server's resources and matches none of its templates.
        """
        offered = self._server(server)
        template_text = message.get("template")
        if template_text is not None:
            if not isinstance(template_text, str) or template_text not in offered.templates:
                raise Refused(f"server {server!r} has no resource template {_shown(template_text)}")
            template = offered.templates[template_text]
            arguments = message.get("arguments", {})
            if not isinstance(arguments, dict):
                raise Refused("'arguments' must be a JSON object")
            _check_values(server, template, arguments)
            try:
                shown = template.expand(arguments)
                return shown, template.expand(restore(arguments))
            except TemplateError as exc:
                raise Refused(f"{server}: template {template_text!r}: {exc}") from None
        uri = message.get("uri")
        if not isinstance(uri, str) or not uri:
            raise Refused("a read needs a string 'uri' or a 'template' with 'arguments'")
        if len(uri) > MAX_URI_CHARS:
            raise Refused(f"the uri is over {MAX_URI_CHARS} characters")
        real = restore(uri)
        if real in offered.static or any(t.matches(real) for t in offered.templates.values()):
            return uri, real
        if not offered.static and not offered.templates:
            raise Refused(f"server {server!r} offers no resources")
        raise Refused(
            f"{_shown(uri)} is none of the resources of server {server!r} and matches none of "
            "its templates (see servers.<server>.resources)"
        )

    def prompt_arguments(self, server: str, message: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """(prompt name, arguments as sent) of a prompt request, checked.

        Raises:
            Refused: no such server or prompt, a missing required argument, an argument
                the prompt does not take, or one that is not a string.
        """
        offered = self._server(server)
        name = message.get("prompt")
        if not isinstance(name, str) or name not in offered.prompts:
            listed = ", ".join(sorted(offered.prompts)) or "none"
            raise Refused(f"server {server!r} has no prompt {_shown(name)} (prompts: {listed})")
        prompt = offered.prompts[name]
        arguments = message.get("arguments", {})
        if not isinstance(arguments, dict):
            raise Refused("'arguments' must be a JSON object")
        taken = {argument.name for argument in prompt.arguments}
        unknown = sorted(set(arguments) - taken)
        if unknown:
            raise Refused(
                f"prompt {server}.{name} takes no argument {_shown(unknown[0])} "
                f"(it takes: {', '.join(sorted(taken)) or 'none'})"
            )
        missing = [a.name for a in prompt.arguments if a.required and a.name not in arguments]
        if missing:
            raise Refused(f"prompt {server}.{name} needs the argument {missing[0]!r}")
        for key, value in arguments.items():
            if not isinstance(value, str):
                raise Refused(f"prompt {server}.{name}: argument {key!r} must be a string")
        return name, arguments


def _templates(server: ServerSnapshot) -> dict[str, Template]:
    parsed = {}
    for template in server.resource_templates or ():
        if len(template.uri_template) > MAX_TEMPLATE_CHARS:
            continue
        try:
            parsed[template.uri_template] = parse(template.uri_template)
        except TemplateError:
            continue  # not RFC 6570: nothing can be checked against it, so nothing matches
    return parsed


def _check_values(server: str, template: Template, arguments: dict[str, Any]) -> None:
    names = {variable.name: variable for variable in template.variables}
    for key, value in arguments.items():
        variable = names.get(key)
        if variable is None:
            raise Refused(
                f"{server}: template {template.text!r} has no variable {_shown(key)} "
                f"(it has: {', '.join(names) or 'none'})"
            )
        if isinstance(value, str):
            continue
        if (
            variable.explode
            and isinstance(value, list)
            and all(isinstance(item, str) for item in value)
        ):
            continue
        raise Refused(f"{server}: template variable {key!r} must be a string")
    missing = sorted(template.required() - set(arguments))
    if missing:
        raise Refused(f"{server}: template {template.text!r} needs {missing[0]!r}")


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact_resource(tokenizer: Tokenizer, server: str, result: dict[str, Any]) -> dict[str, Any]:
    """A `ReadResourceResult` with personal data replaced (text, text in blobs, other strings).

    Raises:
        PrivacyLimit: the result is nested too deeply, or holds too many values.
    """
    contents = result.get("contents")
    if not isinstance(contents, list):
        return tokenizer.redact_result(server, "", result)
    # Each part is scanned as an embedded resource of a tool result: the same rules.
    embedded = [{"type": "resource", "resource": item} for item in contents]
    redacted, blocks = _as_content(tokenizer, server, result, "contents", embedded)
    parts = [block.get("resource", block) if isinstance(block, dict) else block for block in blocks]
    return {**redacted, "contents": parts}


def redact_prompt(tokenizer: Tokenizer, server: str, result: dict[str, Any]) -> dict[str, Any]:
    """A `GetPromptResult` with personal data replaced in every message and the description.

    Raises:
        PrivacyLimit: the result is nested too deeply, or holds too many values.
    """
    messages = result.get("messages")
    if not isinstance(messages, list):
        return tokenizer.redact_result(server, "", result)
    content = [m.get("content") if isinstance(m, dict) else m for m in messages]
    redacted, contents = _as_content(tokenizer, server, result, "messages", content)
    rebuilt = [
        {**message, "content": content} if isinstance(message, dict) else content
        for message, content in zip(messages, contents, strict=True)
    ]
    return {**redacted, "messages": rebuilt}


def _as_content(
    tokenizer: Tokenizer, server: str, result: dict[str, Any], key: str, blocks: list[Any]
) -> tuple[dict[str, Any], list[Any]]:
    """Scan `result` as a tool result whose content is `blocks` in place of its `key`:
    (the rest of it, the blocks), personal data replaced.

    Raises:
        PrivacyLimit: the result is nested too deeply, or holds too many values.
    """
    wrapped = {**{name: value for name, value in result.items() if name != key}, "content": blocks}
    redacted = tokenizer.redact_result(server, "", wrapped)
    return redacted, redacted.pop("content", [])
