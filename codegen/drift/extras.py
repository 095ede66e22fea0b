"""Drift of what a server offers besides tools: resources, resource templates, prompts.

- A static resource removed is breaking (`read(uri)` of it is refused by the
  host); added is compatible; its name, title, description or MIME type changed
  is text.
- A template (keyed by its `uriTemplate`) removed is breaking, added compatible.
  Its name changed renames its generated function: breaking. Its description,
  title or MIME type: text.
- A prompt removed is breaking, added compatible. An argument added that is
  required, removed, or made required is breaking; added optional, or made
  optional, is compatible; descriptions and titles are text.

Pointers are JSON pointers into the server in wire spelling:
`/resources/<uri>`, `/resourceTemplates/<uriTemplate>`,
`/prompts/<name>/arguments/<argument>`.
"""

from __future__ import annotations

from ..snapshot import PromptSnapshot, ServerSnapshot
from .changes import Change, Severity
from .schemas import short

__all__ = ["diff_extras"]


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def diff_extras(old: ServerSnapshot, new: ServerSnapshot) -> list[Change]:
    """The changes to `old`'s resources, templates and prompts in `new` (same server)."""
    changes: list[Change] = []
    server = old.name

    def add(kind: str, severity: Severity, pointer: str, message: str) -> None:
        changes.append(Change(kind, severity, server, None, pointer, message))

    before = {resource.uri: resource for resource in old.resources or ()}
    after = {resource.uri: resource for resource in new.resources or ()}
    for uri in sorted(before.keys() - after.keys()):
        add(
            "resource-removed",
            "breaking",
            f"/resources/{_escape(uri)}",
            f"resource {short(uri)} removed",
        )
    for uri in sorted(after.keys() - before.keys()):
        add(
            "resource-added",
            "compatible",
            f"/resources/{_escape(uri)}",
            f"resource {short(uri)} added",
        )
    for uri in sorted(before.keys() & after.keys()):
        fields = [
            name
            for name in ("name", "title", "description", "mime_type")
            if getattr(before[uri], name) != getattr(after[uri], name)
        ]
        if fields:
            add(
                "resource-text-changed",
                "text",
                f"/resources/{_escape(uri)}",
                f"resource {short(uri)}: {', '.join(fields)} changed",
            )
    old_templates = {t.uri_template: t for t in old.resource_templates or ()}
    new_templates = {t.uri_template: t for t in new.resource_templates or ()}
    for key in sorted(old_templates.keys() - new_templates.keys()):
        add(
            "template-removed",
            "breaking",
            f"/resourceTemplates/{_escape(key)}",
            f"resource template {short(key)} removed",
        )
    for key in sorted(new_templates.keys() - old_templates.keys()):
        add(
            "template-added",
            "compatible",
            f"/resourceTemplates/{_escape(key)}",
            f"resource template {short(key)} added",
        )
    for key in sorted(old_templates.keys() & new_templates.keys()):
        was, now = old_templates[key], new_templates[key]
        pointer = f"/resourceTemplates/{_escape(key)}"
        if was.name != now.name:
            add(
                "template-renamed",
                "breaking",
                pointer,
                f"resource template {short(key)} renamed {short(was.name)} -> {short(now.name)}: "
                "its generated function is renamed",
            )
        fields = [
            name
            for name in ("title", "description", "mime_type")
            if getattr(was, name) != getattr(now, name)
        ]
        if fields:
            add(
                "template-text-changed",
                "text",
                pointer,
                f"resource template {short(key)}: {', '.join(fields)} changed",
            )
    old_prompts = {prompt.name: prompt for prompt in old.prompts or ()}
    new_prompts = {prompt.name: prompt for prompt in new.prompts or ()}
    for name in sorted(old_prompts.keys() - new_prompts.keys()):
        add(
            "prompt-removed",
            "breaking",
            f"/prompts/{_escape(name)}",
            f"prompt {short(name)} removed",
        )
    for name in sorted(new_prompts.keys() - old_prompts.keys()):
        add(
            "prompt-added", "compatible", f"/prompts/{_escape(name)}", f"prompt {short(name)} added"
        )
    for name in sorted(old_prompts.keys() & new_prompts.keys()):
        changes.extend(_diff_prompt(server, old_prompts[name], new_prompts[name]))
    return changes


def _diff_prompt(server: str, old: PromptSnapshot, new: PromptSnapshot) -> list[Change]:
    changes: list[Change] = []
    base = f"/prompts/{_escape(old.name)}"

    def add(kind: str, severity: Severity, pointer: str, message: str) -> None:
        changes.append(Change(kind, severity, server, None, pointer, message))

    label = f"prompt {short(old.name)}"
    fields = [name for name in ("title", "description") if getattr(old, name) != getattr(new, name)]
    if fields:
        add("prompt-text-changed", "text", base, f"{label}: {', '.join(fields)} changed")
    before = {argument.name: argument for argument in old.arguments}
    after = {argument.name: argument for argument in new.arguments}
    for name in sorted(before.keys() - after.keys()):
        add(
            "prompt-argument-removed",
            "breaking",
            f"{base}/arguments/{_escape(name)}",
            f"{label}: argument {short(name)} removed",
        )
    for name in sorted(after.keys() - before.keys()):
        required = after[name].required
        add(
            "prompt-argument-added",
            "breaking" if required else "compatible",
            f"{base}/arguments/{_escape(name)}",
            f"{label}: {'required' if required else 'optional'} argument {short(name)} added",
        )
    for name in sorted(before.keys() & after.keys()):
        was, now = before[name], after[name]
        pointer = f"{base}/arguments/{_escape(name)}"
        if was.required != now.required:
            add(
                "prompt-argument-required" if now.required else "prompt-argument-optional",
                "breaking" if now.required else "compatible",
                pointer,
                f"{label}: argument {short(name)} is now {'required' if now.required else 'optional'}",
            )
        if (was.title, was.description) != (now.title, now.description):
            add(
                "prompt-argument-text-changed",
                "text",
                pointer,
                f"{label}: argument {short(name)} described differently",
            )
    return changes
