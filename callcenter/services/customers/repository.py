"""Customers in the database: create, change, phones, notes, caller-ID match and bulk import.

Each function works inside the caller's `AsyncSession` and transaction (flushes, never
commits), like `callcenter.services.subscribers.add_user`; `CustomerService` in this package
opens the transactions. Phone numbers are always stored in E.164 form, normalised here, so that
a match is one equality probe on `ix_customer_phones_e164`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Final, Literal

from sqlalchemy import bindparam, case, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ...db.models import NOTE_KINDS, TIERS, Customer, CustomerNote, CustomerPhone
from .caller_id import normalize_number

# Queue priority bonus per tier (higher = served sooner); the ACD adds it to the queue's own
# priority. The tiers themselves are `callcenter.db.models.TIERS`.
TIER_RANK: Final = {"regular": 0, "silver": 1, "gold": 2, "vip": 3}
assert set(TIER_RANK) == set(TIERS)

MAX_NAME: Final = 200
MAX_EMAIL: Final = 254
MAX_LABEL: Final = 32
MAX_NOTE: Final = 20_000
# A number shared by more customers than this (a switchboard) offers the first ones only.
DEFAULT_MATCH_LIMIT: Final = 20


class CustomerError(Exception):
    """A customer, phone or note cannot be created or changed as asked."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerMatch:
    """One customer who owns the calling number: what the agent's screen pop shows."""

    customer_id: int
    name: str
    company: str
    tier: str
    email: str | None
    e164: str
    label: str

    @property
    def tier_rank(self) -> int:
        return TIER_RANK.get(self.tier, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerRecord:
    """One row of a bulk import (a CRM export); phones in any form `normalize_number` reads."""

    name: str
    company: str = ""
    tier: str = "regular"
    email: str | None = None
    phones: Sequence[str] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportResult:
    customers: int
    phones: int
    # Phone numbers that were not plausible numbers in the default region: skipped.
    rejected_phones: int


_tier_order = case(
    *((Customer.tier == tier, rank) for tier, rank in TIER_RANK.items()), else_=0
).desc()

# Built once: the caller-ID lookup runs for every incoming call.
_MATCH = (
    select(
        Customer.id,
        Customer.name,
        Customer.company,
        Customer.tier,
        Customer.email,
        CustomerPhone.e164,
        CustomerPhone.label,
    )
    .join(Customer, Customer.id == CustomerPhone.customer_id)
    .where(CustomerPhone.e164 == bindparam("e164"))
    .order_by(_tier_order, Customer.created_at.desc(), Customer.id.desc())
    .limit(bindparam("limit"))
)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise CustomerError(f"a customer name is 1 to {MAX_NAME} characters")
    return name


def _check_company(company: str) -> str:
    company = company.strip()
    if len(company) > MAX_NAME:
        raise CustomerError(f"a company name is at most {MAX_NAME} characters")
    return company


def _check_tier(tier: str) -> str:
    if tier not in TIERS:
        raise CustomerError(f"tier must be one of {', '.join(TIERS)}")
    return tier


def _check_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip()
    if not email:
        return None
    local, at, domain = email.rpartition("@")
    if len(email) > MAX_EMAIL or not at or not local or "." not in domain:
        raise CustomerError(f"not an e-mail address: {email[:64]!r}")
    return email


def _e164(number: str, default_region: str) -> str:
    e164 = normalize_number(number, default_region)
    if e164 is None:
        raise CustomerError(f"not a phone number in region {default_region}: {number[:64]!r}")
    return e164


async def create_customer(
    session: AsyncSession,
    *,
    name: str,
    company: str = "",
    tier: str = "regular",
    email: str | None = None,
    phones: Iterable[str] = (),
    default_region: str,
) -> Customer:
    """Create a customer with its phone numbers (normalised to E.164 in `default_region`)."""
    customer = Customer(
        name=_check_name(name),
        company=_check_company(company),
        tier=_check_tier(tier),
        email=_check_email(email),
    )
    numbers = list(dict.fromkeys(_e164(p, default_region) for p in phones))
    session.add(customer)
    await session.flush()
    session.add_all(CustomerPhone(customer_id=customer.id, e164=n) for n in numbers)
    await session.flush()
    return customer


async def get_customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise CustomerError(f"no customer {customer_id}")
    return customer


class Keep(enum.Enum):
    """Marks an argument left out where None is a meaningful value (clear the field)."""

    KEEP = enum.auto()


KEEP: Final = Keep.KEEP


async def update_customer(
    session: AsyncSession,
    customer_id: int,
    *,
    name: str | None = None,
    company: str | None = None,
    tier: str | None = None,
    email: str | Literal[Keep.KEEP] | None = KEEP,
) -> Customer:
    """Change the given fields; `email=None` clears the address, leaving it out keeps it."""
    customer = await get_customer(session, customer_id)
    if name is not None:
        customer.name = _check_name(name)
    if company is not None:
        customer.company = _check_company(company)
    if tier is not None:
        customer.tier = _check_tier(tier)
    if email is not KEEP:
        customer.email = _check_email(email)
    await session.flush()
    return customer


async def add_phone(
    session: AsyncSession,
    customer_id: int,
    number: str,
    *,
    label: str = "",
    default_region: str,
) -> CustomerPhone:
    """Give a customer one more number; adding a number it already has changes only the label."""
    if len(label) > MAX_LABEL:
        raise CustomerError(f"a phone label is at most {MAX_LABEL} characters")
    await get_customer(session, customer_id)
    e164 = _e164(number, default_region)
    phone = await session.scalar(
        select(CustomerPhone).where(
            CustomerPhone.customer_id == customer_id, CustomerPhone.e164 == e164
        )
    )
    if phone is None:
        phone = CustomerPhone(customer_id=customer_id, e164=e164, label=label)
        session.add(phone)
    else:
        phone.label = label
    await session.flush()
    return phone


async def remove_phone(
    session: AsyncSession, customer_id: int, number: str, *, default_region: str
) -> bool:
    """Remove a number from a customer; False when the customer did not have it."""
    e164 = normalize_number(number, default_region)
    if e164 is None:
        return False
    result = await session.execute(
        delete(CustomerPhone).where(
            CustomerPhone.customer_id == customer_id, CustomerPhone.e164 == e164
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def phones(session: AsyncSession, customer_id: int) -> list[CustomerPhone]:
    rows = await session.scalars(
        select(CustomerPhone)
        .where(CustomerPhone.customer_id == customer_id)
        .order_by(CustomerPhone.id)
    )
    return list(rows)


async def add_note(
    session: AsyncSession,
    customer_id: int,
    text: str,
    *,
    kind: str = "note",
    author: str | None = None,
) -> CustomerNote:
    """Add a note, complaint or case entry; `author` is the writer's username (None = system)."""
    if kind not in NOTE_KINDS:
        raise CustomerError(f"note kind must be one of {', '.join(NOTE_KINDS)}")
    text = text.strip()
    if not text or len(text) > MAX_NOTE:
        raise CustomerError(f"a note is 1 to {MAX_NOTE} characters")
    if author is not None and not 0 < len(author) <= 64:
        raise CustomerError("an author is a username of 1 to 64 characters")
    await get_customer(session, customer_id)
    note = CustomerNote(customer_id=customer_id, kind=kind, text=text, author=author)
    session.add(note)
    await session.flush()
    return note


async def notes(session: AsyncSession, customer_id: int, *, limit: int = 100) -> list[CustomerNote]:
    """The newest `limit` notes of a customer, newest first."""
    rows = await session.scalars(
        select(CustomerNote)
        .where(CustomerNote.customer_id == customer_id)
        .order_by(CustomerNote.created_at.desc(), CustomerNote.id.desc())
        .limit(limit)
    )
    return list(rows)


async def match(
    session: AsyncSession, e164: str, *, limit: int = DEFAULT_MATCH_LIMIT
) -> list[CustomerMatch]:
    """Every customer owning `e164`, highest tier first, then the most recently created."""
    result = await session.execute(_MATCH, {"e164": e164, "limit": limit})
    return [
        CustomerMatch(
            customer_id=row[0],
            name=row[1],
            company=row[2],
            tier=row[3],
            email=row[4],
            e164=row[5],
            label=row[6],
        )
        for row in result
    ]


def _batches(records: Iterable[CustomerRecord], size: int) -> Iterator[list[CustomerRecord]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


async def bulk_import(
    session: AsyncSession,
    records: Iterable[CustomerRecord],
    *,
    default_region: str,
    batch_size: int = 5000,
) -> ImportResult:
    """Insert many customers fast: Core executemany per batch, no ORM objects.

    Every record is checked like `create_customer` (a bad name, tier or e-mail aborts the
    import with `CustomerError`, so run it in one transaction); phone numbers that do not
    normalise are skipped and counted. Runs inside the caller's transaction.
    """
    customers = phone_count = rejected = 0
    customers_table = Customer.metadata.tables[Customer.__tablename__]
    # Which id did each row get? SQLAlchemy's sort_by_parameter_order answers portably, but on
    # SQLite it does so by inserting one row per statement (20x slower). SQLite assigns rowids
    # to a multi-row INSERT ... VALUES in row order, each max(rowid) + 1, under the write lock,
    # so there the ascending ids of one statement are the rows in order.
    sqlite = session.get_bind().dialect.name == "sqlite"
    # (Split into statements of 1000 rows by SQLAlchemy; statements run in order, so the
    # ascending ids of the batch still follow its rows.)
    customer_insert = insert(customers_table).returning(
        customers_table.c.id, sort_by_parameter_order=not sqlite
    )
    phone_insert = insert(CustomerPhone.metadata.tables[CustomerPhone.__tablename__])
    for batch in _batches(records, batch_size):
        rows = [
            {
                "name": _check_name(r.name),
                "company": _check_company(r.company),
                "tier": _check_tier(r.tier),
                "email": _check_email(r.email),
            }
            for r in batch
        ]
        ids = list((await session.execute(customer_insert, rows)).scalars())
        if sqlite:
            ids.sort()
            if len(ids) != len(rows) or ids[-1] - ids[0] != len(ids) - 1:
                raise CustomerError("bulk import: ids of one batch are not consecutive")
        phone_rows = []
        for customer_id, record in zip(ids, batch, strict=True):
            seen: set[str] = set()
            for text in record.phones:
                e164 = normalize_number(text, default_region)
                if e164 is None:
                    rejected += 1
                elif e164 not in seen:
                    seen.add(e164)
                    phone_rows.append({"customer_id": customer_id, "e164": e164, "label": ""})
        if phone_rows:
            await session.execute(phone_insert, phone_rows)
        customers += len(rows)
        phone_count += len(phone_rows)
    return ImportResult(customers=customers, phones=phone_count, rejected_phones=rejected)
