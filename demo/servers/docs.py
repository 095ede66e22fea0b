"""A document-store demo MCP server: a few documents generated from a fixed seed.

`D001` is a long meeting transcript (about 80 KB), the kind of document an agent
is asked to move from one system to another; the rest are smaller.
"""

from __future__ import annotations

import random

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

SEED = 7_2026

SPEAKERS = ("Priya Patel", "Jonas Weber", "Mei Tanaka", "Diego Costa", "Sara Okafor", "Emil Larsen")
OPENERS = (
    "I think",
    "To be honest,",
    "From the customer's side,",
    "Looking at the numbers,",
    "Just to confirm,",
    "As we discussed last week,",
    "On the engineering side,",
    "If I understand correctly,",
)
SUBJECTS = (
    "the renewal",
    "the onboarding plan",
    "the Q3 pipeline",
    "the pricing change",
    "the support backlog",
    "the data migration",
    "the security review",
    "the pilot in Lisbon",
    "the integration with their CRM",
    "the training schedule",
)
VERBS = (
    "needs another pass",
    "is on track",
    "slipped by two weeks",
    "depends on legal",
    "should land before the holidays",
    "is blocked on the API limits",
    "looks better than expected",
    "has to be signed off by finance",
)
TAILS = (
    "",
    ", so let's put an owner on it",
    ", and I'll send a summary afterwards",
    ", which matters for the forecast",
    ", but we should double-check the contract",
    ", according to the last status report",
)


class DocumentInfo(BaseModel):
    id: str
    title: str
    created: str
    chars: int
    snippet: str = Field(default="", description="Text around the first match, in searches.")


class Document(BaseModel):
    id: str
    title: str
    created: str
    text: str


def _transcript(rng: random.Random, title: str, chars: int) -> str:
    lines = [title, "Attendees: " + ", ".join(SPEAKERS), ""]
    seconds, size = 0, 0
    while size < chars:
        sentences = [
            f"{rng.choice(OPENERS)} {rng.choice(SUBJECTS)} {rng.choice(VERBS)}{rng.choice(TAILS)}."
            for _ in range(rng.randint(1, 3))
        ]
        stamp = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        line = f"[{stamp}] {rng.choice(SPEAKERS)}: {' '.join(sentences)}"
        lines.append(line)
        size += len(line) + 1
        seconds += rng.randint(4, 40)
    return "\n".join(lines) + "\n"


def _notes(rng: random.Random, title: str, items: int) -> str:
    lines = [title, ""]
    for number in range(1, items + 1):
        lines.append(f"{number}. {rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)}.")
    return "\n".join(lines) + "\n"


def generate() -> dict[str, Document]:
    """The documents, the same on every run."""
    rng = random.Random(SEED)
    specs = (
        ("D001", "Acme renewal call: meeting transcript", "2026-10-28", 80_000),
        ("D002", "Onboarding checklist", "2026-09-02", 40),
        ("D003", "Pricing FAQ", "2026-08-15", 60),
        ("D004", "Weekly sync: meeting transcript", "2026-10-21", 12_000),
        ("D005", "Security review action items", "2026-10-05", 25),
    )
    documents = {}
    for doc_id, title, created, size in specs:
        make = _transcript if "transcript" in title else _notes
        text = make(rng, title, size)
        documents[doc_id] = Document(id=doc_id, title=title, created=created, text=text)
    return documents


DOCUMENTS = generate()
server = MCPServer("docs", instructions="A document store: meeting transcripts, notes, FAQs.")


def _info(document: Document, snippet: str = "") -> DocumentInfo:
    return DocumentInfo(
        id=document.id,
        title=document.title,
        created=document.created,
        chars=len(document.text),
        snippet=snippet,
    )


@server.tool(description="Every document's id, title, date and size (no text).")
def list_documents() -> list[DocumentInfo]:
    return [_info(document) for document in DOCUMENTS.values()]


@server.tool(description="One document with its full text.")
def get_document(doc_id: str) -> Document:
    try:
        return DOCUMENTS[doc_id]
    except KeyError:
        raise ToolError(f"no document {doc_id!r}; list_documents shows the ids") from None


@server.tool(description="Documents whose title or text contains the query, with a snippet.")
def search_documents(query: str) -> list[DocumentInfo]:
    needle = query.lower()
    found = []
    for document in DOCUMENTS.values():
        at = document.text.lower().find(needle)
        if needle in document.title.lower() or at >= 0:
            start = max(at, 0)
            found.append(_info(document, document.text[max(0, start - 60) : start + 140]))
    return found


if __name__ == "__main__":
    server.run("stdio")
