"""Customers and caller-ID matching: who is calling, before an agent says hello.

`caller_id` reads the calling number from the INVITE's headers (pure, no I/O); `repository`
stores customers, their E.164 numbers and notes; `CustomerService` ties them together with
transactions and is what the ACD and the web layer hold. The default region (for numbers
written in national form) is a setting passed in by the composition root.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ...db.models import Customer, CustomerNote, CustomerPhone
from ...sip import Headers
from . import repository
from .caller_id import CallerId, caller_id_from_headers, extract_caller_id, normalize_number
from .repository import (
    DEFAULT_MATCH_LIMIT,
    KEEP,
    TIER_RANK,
    CustomerError,
    CustomerMatch,
    CustomerRecord,
    ImportResult,
    Keep,
)

__all__ = [
    "DEFAULT_MATCH_LIMIT",
    "KEEP",
    "TIER_RANK",
    "CallerId",
    "CustomerError",
    "CustomerMatch",
    "CustomerRecord",
    "CustomerService",
    "ImportResult",
    "Keep",
    "caller_id_from_headers",
    "extract_caller_id",
    "normalize_number",
]


class CustomerService:
    """Customers over a session factory: one transaction per call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, default_region: str) -> None:
        self._sessions = sessions
        self.default_region = default_region

    def caller_id(self, headers: Headers, *, trusted: bool) -> CallerId:
        """The caller ID of an INVITE; `trusted` = it came from a trunk (PAI is believed)."""
        return caller_id_from_headers(headers, default_region=self.default_region, trusted=trusted)

    async def match(self, e164: str, *, limit: int = DEFAULT_MATCH_LIMIT) -> list[CustomerMatch]:
        """All customers owning `e164` (highest tier first, then newest); [] when none."""
        async with self._sessions() as session:
            return await repository.match(session, e164, limit=limit)

    async def match_caller(self, caller: CallerId) -> list[CustomerMatch]:
        """The customers of a caller ID; withheld and unreadable numbers match nobody."""
        if caller.e164 is None:
            return []
        return await self.match(caller.e164)

    async def create(
        self,
        *,
        name: str,
        company: str = "",
        tier: str = "regular",
        email: str | None = None,
        phones: Iterable[str] = (),
    ) -> Customer:
        async with self._sessions.begin() as session:
            return await repository.create_customer(
                session,
                name=name,
                company=company,
                tier=tier,
                email=email,
                phones=phones,
                default_region=self.default_region,
            )

    async def get(self, customer_id: int) -> Customer:
        async with self._sessions() as session:
            return await repository.get_customer(session, customer_id)

    async def update(
        self,
        customer_id: int,
        *,
        name: str | None = None,
        company: str | None = None,
        tier: str | None = None,
        email: str | Literal[Keep.KEEP] | None = KEEP,
    ) -> Customer:
        """Change the given fields; `email=None` clears the address, leaving it out keeps it."""
        async with self._sessions.begin() as session:
            return await repository.update_customer(
                session, customer_id, name=name, company=company, tier=tier, email=email
            )

    async def add_phone(self, customer_id: int, number: str, *, label: str = "") -> CustomerPhone:
        async with self._sessions.begin() as session:
            return await repository.add_phone(
                session, customer_id, number, label=label, default_region=self.default_region
            )

    async def remove_phone(self, customer_id: int, number: str) -> bool:
        async with self._sessions.begin() as session:
            return await repository.remove_phone(
                session, customer_id, number, default_region=self.default_region
            )

    async def phones(self, customer_id: int) -> list[CustomerPhone]:
        async with self._sessions() as session:
            return await repository.phones(session, customer_id)

    async def add_note(
        self, customer_id: int, text: str, *, kind: str = "note", author: str | None = None
    ) -> CustomerNote:
        async with self._sessions.begin() as session:
            return await repository.add_note(session, customer_id, text, kind=kind, author=author)

    async def notes(self, customer_id: int, *, limit: int = 100) -> list[CustomerNote]:
        async with self._sessions() as session:
            return await repository.notes(session, customer_id, limit=limit)

    async def bulk_import(
        self, records: Iterable[CustomerRecord], *, batch_size: int = 5000
    ) -> ImportResult:
        """Import many customers in one transaction (all or nothing)."""
        async with self._sessions.begin() as session:
            return await repository.bulk_import(
                session, records, default_region=self.default_region, batch_size=batch_size
            )
