"""A CRM-like demo MCP server: 10,000 customers generated from a fixed seed.

The CRM's "today" is the fixed `TODAY` (2026-11-01). Exactly `STALE_COUNT` customers
(every 40th: 250) were last contacted 95 to 400 days before it, all others within 85
days, so "not contacted in the last 90 days" has one answer however its boundary is
read. Changes (contacts, notes) live in this process's memory.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

SEED = 20261101
TODAY = dt.date(2026, 11, 1)
CUSTOMERS = 10_000
STALE_EVERY = 40
STALE_COUNT = CUSTOMERS // STALE_EVERY
MAX_PAGE = 100

FIRST = (
    "Ada Alan Amara Ben Carla Chen Dana Diego Elena Emil Farah Grace Hana Hugo Ines Ivan "
    "Jonas Kai Lena Liam Maya Mei Nadia Noah Omar Olga Priya Ravi Sara Tomas Uma Yusuf"
)
LAST = (
    "Adams Baker Costa Dubois Evans Fischer Garcia Haddad Ito Jensen Kowalski Larsen Moreau "
    "Nakamura Okafor Patel Quinn Rossi Schmidt Silva Tanaka Novak Weber Young Zhang Ortiz"
)
CITIES = (
    "Amsterdam Austin Berlin Boston Chicago Denver Dublin Lagos Lisbon London Lyon Madrid "
    "Milan Nairobi Oslo Paris Seattle Seoul Sydney Tokyo Toronto Vienna"
)
SYLLABLES = "ac bel cor dyn ex fin gen hal ion jet kor lum mer nov or pix quant ro syn tek vel zen"
SUFFIXES = ("Labs", "Systems", "Group", "Partners", "Works", "Analytics", "Logistics", "Health")


class Customer(BaseModel):
    id: str
    name: str
    email: str
    phone: str
    company: str
    city: str
    last_contacted: str = Field(description="ISO date (YYYY-MM-DD) of the last contact.")
    note_count: int = 0


class Note(BaseModel):
    id: int
    created: str
    text: str


class CustomerDetail(Customer):
    notes: list[Note] = Field(default_factory=list)


class CustomerPage(BaseModel):
    customers: list[Customer]
    total: int = Field(description="Customers matching the filter, across all pages.")
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class SearchResult(BaseModel):
    customers: list[Customer]
    total: int


class NoteReceipt(BaseModel):
    customer_id: str
    note_id: int
    chars: int


def generate() -> dict[str, CustomerDetail]:
    """The customers, the same on every run."""
    rng = random.Random(SEED)
    syllables, cities = SYLLABLES.split(), CITIES.split()
    first_names, last_names = FIRST.split(), LAST.split()
    companies = []
    for _ in range(400):
        stem = "".join(rng.sample(syllables, 2)).capitalize()
        companies.append(f"{stem} {rng.choice(SUFFIXES)}")
    customers: dict[str, CustomerDetail] = {}
    for number in range(1, CUSTOMERS + 1):
        first, last = rng.choice(first_names), rng.choice(last_names)
        company = rng.choice(companies)
        domain = company.split()[0].lower() + ".example"
        stale = number % STALE_EVERY == 0
        days_ago = rng.randint(95, 400) if stale else rng.randint(0, 85)
        customer_id = f"C{number:05d}"
        customers[customer_id] = CustomerDetail(
            id=customer_id,
            name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower()}.{number}@{domain}",
            phone=f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
            company=company,
            city=rng.choice(cities),
            last_contacted=(TODAY - dt.timedelta(days=days_ago)).isoformat(),
        )
    return customers


DB = generate()
server = MCPServer(
    "crm", instructions=f"A customer database of {CUSTOMERS:,} customers. Today is {TODAY}."
)


def _get(customer_id: str) -> CustomerDetail:
    try:
        return DB[customer_id]
    except KeyError:
        raise ToolError(f"no customer {customer_id!r}") from None


def _summary(customer: CustomerDetail) -> Customer:
    return Customer.model_validate(customer.model_dump(exclude={"notes"}))


@server.tool(description="Today's date in the CRM (YYYY-MM-DD); dates are relative to it.")
def today() -> str:
    return TODAY.isoformat()


@server.tool(description=f"List customers by id, one page at a time (at most {MAX_PAGE}).")
def list_customers(
    offset: Annotated[int, Field(ge=0)] = 0,
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    city: Annotated[str | None, Field(description="Only customers in this city.")] = None,
) -> CustomerPage:
    matching = [c for c in DB.values() if city is None or c.city.lower() == city.lower()]
    page = matching[offset : offset + limit]
    more = offset + limit < len(matching)
    return CustomerPage(
        customers=[_summary(c) for c in page],
        total=len(matching),
        offset=offset,
        next_offset=offset + limit if more else None,
    )


@server.tool(description="One customer with their notes.")
def get_customer(customer_id: str) -> CustomerDetail:
    return _get(customer_id)


@server.tool(description="Find customers whose name, email, company or city contains the query.")
def search_customers(
    query: str, limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 20
) -> SearchResult:
    needle = query.lower()
    found = [
        c
        for c in DB.values()
        if any(needle in field.lower() for field in (c.name, c.email, c.company, c.city))
    ]
    return SearchResult(customers=[_summary(c) for c in found[:limit]], total=len(found))


@server.tool(description="Record a contact with a customer on a date, with an optional note.")
def log_contact(
    customer_id: str,
    date: Annotated[str, Field(description="YYYY-MM-DD")],
    note: str = "",
) -> Customer:
    customer = _get(customer_id)
    try:
        contacted = dt.date.fromisoformat(date)
    except ValueError:
        raise ToolError(f"date must be YYYY-MM-DD, not {date!r}") from None
    customer.last_contacted = max(customer.last_contacted, contacted.isoformat())
    if note:
        _append_note(customer, note)
    return _summary(customer)


@server.tool(description="Attach a note of any length (a document, a transcript) to a customer.")
def add_note(customer_id: str, text: str) -> NoteReceipt:
    customer = _get(customer_id)
    note = _append_note(customer, text)
    return NoteReceipt(customer_id=customer_id, note_id=note.id, chars=len(text))


@server.resource(
    "crm://customers/{customer_id}",
    name="customer",
    description="One customer's record with their notes, as JSON.",
    mime_type="application/json",
)
def customer_record(customer_id: str) -> str:
    return _get(customer_id).model_dump_json(indent=2)


@server.prompt(
    name="follow_up_email",
    title="Follow-up email",
    description="Draft a follow-up email to a customer who has not been contacted lately.",
)
def follow_up_email(customer_id: str, tone: str = "friendly") -> str:
    customer = _get(customer_id)
    return (
        f"Write a {tone} follow-up email to {customer.name} <{customer.email}> of "
        f"{customer.company}, last contacted on {customer.last_contacted}. Keep it short."
    )


def _append_note(customer: CustomerDetail, text: str) -> Note:
    note = Note(id=len(customer.notes) + 1, created=TODAY.isoformat(), text=text)
    customer.notes.append(note)
    customer.note_count = len(customer.notes)
    return note


if __name__ == "__main__":
    server.run("stdio")
