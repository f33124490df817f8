"""Callbacks kept in the database: a caller's place in the queue survives a restart.

Owns the rows of the `callbacks` table: a request is written before the caller is told "we
will call you back" (so an acknowledged request is never lost), read back at start-up, and
marked as it is dialled and completed. Must not know the engine or how the call is placed:
the ACD runtime does that with the `CallbackRecord` it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import Callback

from .queue import CallbackRecord, RoutingError

# Tries before a callback is given up (the caller did not answer, the trunk refused).
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCallback:
    id: int
    record: CallbackRecord
    attempts: int


class CallbackStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, record: CallbackRecord) -> StoredCallback:
        async with self._sessions() as session, session.begin():
            row = Callback(
                call_id=record.call_id,
                queue=record.queue,
                number=record.number,
                place=record.as_dict(),
                requested_at=datetime.fromtimestamp(record.requested_at, UTC),
            )
            session.add(row)
            await session.flush()
            return StoredCallback(id=row.id, record=record, attempts=0)

    async def pending(self) -> list[StoredCallback]:
        """Callbacks still to be made, oldest request first; one that was being dialled when
        the service stopped is pending again (the call it placed died with the service)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Callback).where(Callback.state == "dialling").values(state="pending")
            )
            rows = await session.scalars(
                select(Callback).where(Callback.state == "pending").order_by(Callback.id)
            )
            found = []
            for row in rows:
                try:
                    record = CallbackRecord.from_dict(row.place)
                except (RoutingError, KeyError, TypeError, ValueError):
                    row.state = "failed"  # unreadable: kept for an administrator to look at
                    continue
                found.append(StoredCallback(id=row.id, record=record, attempts=row.attempts))
            return found

    async def dialling(self, callback_id: int) -> None:
        async with self._sessions() as session, session.begin():
            row = await session.get(Callback, callback_id)
            if row is not None:
                row.state = "dialling"
                row.attempts += 1

    async def finished(self, callback_id: int, *, done: bool) -> str:
        """The attempt ended: 'done', 'pending' again (another try later) or 'failed'."""
        async with self._sessions() as session, session.begin():
            row = await session.get(Callback, callback_id)
            if row is None:
                return "failed"
            if done:
                row.state = "done"
            else:
                row.state = "failed" if row.attempts >= MAX_ATTEMPTS else "pending"
            if row.state != "pending":
                row.completed_at = datetime.now(UTC)
            return row.state

    async def get(self, callback_id: int) -> tuple[str, int] | None:
        """(state, attempts) of one callback."""
        async with self._sessions() as session:
            row = await session.get(Callback, callback_id)
            return None if row is None else (row.state, row.attempts)
