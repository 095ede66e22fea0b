"""A mail demo MCP server: `send_email` records each message instead of delivering it.

Every message is kept in memory and appended, one JSON object a line, to the
file named by $MAIL_LOG_PATH (default: `.demo/mail.jsonl` at the repository's
root), so a test can read back exactly what the server received.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

MAX_PAGE = 100
DEFAULT_LOG = Path(__file__).resolve().parents[2] / ".demo" / "mail.jsonl"


class Message(BaseModel):
    id: int = Field(description="Position in this server's outbox, from 1.")
    to: str
    subject: str
    body: str


class SendReceipt(BaseModel):
    id: int
    to: str
    status: str


class MessagePage(BaseModel):
    messages: list[Message]
    total: int
    next_offset: int | None


SENT: list[Message] = []
server = MCPServer("mail", instructions="Send email and look at what was sent.")


def log_path() -> Path:
    """Where sent messages are appended."""
    return Path(os.environ.get("MAIL_LOG_PATH") or DEFAULT_LOG)


@server.tool(description="Send an email to one address.")
def send_email(
    to: Annotated[str, Field(description="The recipient's address.")],
    subject: str,
    body: str,
) -> SendReceipt:
    if "@" not in to or any(char.isspace() for char in to.strip()):
        raise ToolError(f"not an email address: {to!r}")
    message = Message(id=len(SENT) + 1, to=to.strip(), subject=subject, body=body)
    SENT.append(message)
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(message.model_dump()) + "\n")
    return SendReceipt(id=message.id, to=message.to, status="sent")


@server.tool(description=f"Messages sent by this server, oldest first (at most {MAX_PAGE}).")
def list_sent(
    offset: Annotated[int, Field(ge=0)] = 0,
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 20,
) -> MessagePage:
    more = offset + limit < len(SENT)
    return MessagePage(
        messages=SENT[offset : offset + limit],
        total=len(SENT),
        next_offset=offset + limit if more else None,
    )


@server.tool(description="How many messages this server has sent since it started.")
def count_sent() -> int:
    return len(SENT)


if __name__ == "__main__":
    server.run("stdio")
