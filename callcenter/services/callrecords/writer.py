"""The call log: every call persisted with its timeline, written behind the call by one task.

Owns: `CallLog`, the calls it holds in memory until their rows are final, the single writer
task that batches them into call_records, recovery of rows a previous run left in progress,
and reading records back (`get`, `recent`). Must not know: SIP, the engine, the ACD's or
the IVR's state (they say what happened by calling the hot-path methods), the web layer.

Why a writer task: the runtime reports call events on the event loop, on the hot path of
call handling; a database round trip there would stall every call. So `arrived`, `event`,
`update`, `queued`, `answered` and `ended` only change memory (synchronous, no I/O, no
exception for database trouble), and the task writes whatever changed every
`flush_interval`, all of it in one transaction (upsert by call_id). A call's row is written
at arrival, so a crash leaves a row ('in-progress', which `recover()` turns into 'failed'
at the next start), then whenever it changed; an ended call leaves memory once written.

Failure model: when the database fails (down, locked, disk full) the round is rolled back,
logged as an error (an alert), counted in `write_failures`, and everything stays in memory
for the next round, retried with back-off up to MAX_RETRY_INTERVAL. If more than
`max_pending` records wait, the oldest ended ones are dropped, logged and counted in
`dropped`. A round that fails because of one record's data (a constraint, a value the
driver refuses) is retried one record per transaction, so one bad record never holds back
the others; a customer_id whose customer was deleted meanwhile is cleared, and a record
that still fails MAX_RECORD_FAULTS times is given up (logged, counted in `dropped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ...db.models import CallRecord, utcnow
from .record import CallRecordView, OpenCall, check_end, checked_fields, cut, iso

log = logging.getLogger(__name__)

MAX_RETRY_INTERVAL: Final = 5.0
MAX_RECORD_FAULTS: Final = 3
MAX_RECENT: Final = 500
# Ended call ids remembered after their rows are final, so a late event or a second
# `ended()` is ignored instead of recreating the call (and overwriting its row).
REMEMBERED_ENDED: Final = 20_000
# How many call_ids one SELECT ... IN (...) names: well under SQLite's variable limit.
_CHUNK: Final = 500
LOST_WHY: Final = "the service stopped during the call"

_Item = tuple[OpenCall, int, dict[str, object]]


def _why(exc: BaseException) -> str:
    """The exception in one short line: the driver's message, not the SQL and parameters."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        exc = exc.orig
    return f"{type(exc).__name__}: {exc}"[:300]


def _record_fault(exc: Exception) -> bool:
    """Whether `exc` is about the data written (worth isolating) rather than the database."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    # Raised before the driver saw anything: a value that could not be bound.
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return True
    return isinstance(exc, TypeError | ValueError)


def _chunks(items: Sequence[OpenCall]) -> Iterator[Sequence[OpenCall]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class CallLog:
    """Call records of this process: cheap synchronous calls in, one writer task out."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        wall: Callable[[], datetime] = utcnow,
        flush_interval: float = 0.5,
        max_pending: int = 10_000,
    ) -> None:
        if not math.isfinite(flush_interval) or flush_interval <= 0:
            raise ValueError("flush_interval must be a positive number of seconds")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._sessions = sessions
        self._wall = wall
        self._interval = flush_interval
        self._max_pending = max_pending
        # Open calls, and ended ones until their final row is written.
        self._calls: dict[str, OpenCall] = {}
        # Calls changed since their last write; insertion order = oldest change first.
        self._dirty: dict[str, OpenCall] = {}
        # Ended calls not yet written, oldest end first: what is dropped under pressure.
        self._ended_waiting: dict[str, OpenCall] = {}
        self._ended: dict[str, None] = {}
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._streak = 0
        self._recovered: int | None = None
        self._warned_implicit = False
        self.write_failures = 0
        self.dropped = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what a previous run left in progress, then start the writer task."""
        if self._task is not None:
            raise RuntimeError("CallLog already started")
        try:
            await self.recover()
        except Exception as exc:
            # The service still starts: new calls are kept in memory and retried.
            self.write_failures += 1
            log.error("call records: recovery failed (%s)", _why(exc), exc_info=exc)
        self._task = asyncio.create_task(self._run(), name="call-records-writer")

    async def stop(self) -> None:
        """Write everything pending, then end the writer task."""
        await self.flush()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._dirty:
            await self.flush()  # whatever changed while the task was being stopped
        if self._dirty:
            log.error("call records: %d records could not be written before stop", len(self._dirty))

    def listening(self) -> str:
        if self._recovered is not None:
            return f"call records: {self._recovered} recovered"
        if self._task is not None:
            return "call records: recovery failed (see the log)"
        return "call records: not started"

    # -- the hot path: memory only ---------------------------------------------------------

    def arrived(
        self, call_id: str, *, caller: str, caller_name: str = "", dialled: str = ""
    ) -> None:
        call_id = cut(call_id, "call_id")
        if call_id in self._ended:
            log.warning("call records: %s arrived again after it ended; ignored", call_id)
            return
        now = self._now()
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = OpenCall(call_id=call_id, arrived_at=now)
        elif not call.implicit:
            log.warning("call records: %s arrived twice; the second is ignored", call_id)
            return
        call.implicit = False
        call.caller = cut(caller, "caller")
        call.caller_name = cut(caller_name, "caller_name")
        call.dialled = cut(dialled, "dialled")
        data = {"caller": call.caller, "caller_name": call.caller_name, "dialled": call.dialled}
        call.add_event(now, "arrived", data)
        self._touch(call)

    def event(self, call_id: str, kind: str, **data: object) -> None:
        """Append {"at", "kind", **data} to the call's timeline (data made JSON-safe)."""
        call = self._open(call_id)
        if call is not None:
            call.add_event(self._now(), kind, data)
            self._touch(call)

    def update(self, call_id: str, **fields: object) -> None:
        """Set columns (see `record.checked_fields`); ValueError for an unknown field."""
        checked = checked_fields(fields)
        if not checked:
            return
        call = self._open(call_id)
        if call is not None:
            call.apply(checked)
            self._touch(call)

    def queued(self, call_id: str, queue: str) -> None:
        call = self._open(call_id)
        if call is None:
            return
        now = self._now()
        call.queue = cut(queue, "queue")
        # The first queue's entry time: after an overflow the caller has been waiting since.
        if call.queued_at is None:
            call.queued_at = now
        call.add_event(now, "queued", {"queue": queue})
        self._touch(call)

    def answered(self, call_id: str, agent: str) -> None:
        call = self._open(call_id)
        if call is None:
            return
        now = self._now()
        call.agent = cut(agent, "agent")  # the last one, after a transfer
        # Talk time runs from the first answer: a transfer does not restart it.
        if call.answered_at is None:
            call.answered_at = now
        call.add_event(now, "answered", {"agent": agent})
        self._touch(call)

    def ended(self, call_id: str, *, by: str, disposition: str) -> None:
        """End the call; ValueError for a bad `by` or disposition. The first end wins."""
        check_end(by, disposition)
        call = self._open(call_id)
        if call is None:
            return
        now = self._now()
        call.end(now, by=by, disposition=disposition)
        call.add_event(now, "ended", {"by": by, "disposition": disposition})
        self._remember_ended(call.call_id)
        if call.broken:
            self._forget(call)
            return
        self._ended_waiting[call.call_id] = call
        self._touch(call)

    def current(self, call_id: str) -> CallRecordView | None:
        """The in-memory view of an open call; None once it ended or when unknown."""
        call = self._calls.get(cut(call_id, "call_id"))
        return None if call is None or call.closed else call.view()

    async def amend(self, call_id: str, **fields: object) -> bool:
        """Set columns after the fact (the agent's wrap-up: outcome, notes, the customer it
        was about), whether the call is still open, waiting to be written, or written; False
        when no such call is known. Database errors propagate: the agent must know it was
        not saved."""
        fields = checked_fields(fields)
        if not fields:
            return True
        call_id = cut(call_id, "call_id")
        call = self._calls.get(call_id)
        if call is not None and not call.broken:
            call.apply(fields)
            self._touch(call)
            return True
        async with self._lock, self._sessions() as session, session.begin():
            result = await session.execute(
                update(CallRecord).where(CallRecord.call_id == call_id).values(**fields)
            )
            return bool(getattr(result, "rowcount", 0))

    # -- reading back ----------------------------------------------------------------------

    async def get(self, call_id: str) -> CallRecordView | None:
        """The call's row as written (pending changes not included)."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(CallRecord).where(CallRecord.call_id == cut(call_id, "call_id"))
            )
            return None if row is None else CallRecordView.from_row(row)

    async def recent(
        self,
        *,
        limit: int = 50,
        queue: str | None = None,
        agent: str | None = None,
        customer_id: int | None = None,
    ) -> list[CallRecordView]:
        """The newest calls first (by arrival), at most min(limit, MAX_RECENT)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        query = select(CallRecord).order_by(CallRecord.arrived_at.desc(), CallRecord.id.desc())
        if queue is not None:
            query = query.where(CallRecord.queue == queue)
        if agent is not None:
            query = query.where(CallRecord.agent == agent)
        if customer_id is not None:
            query = query.where(CallRecord.customer_id == customer_id)
        async with self._sessions() as session:
            rows = await session.scalars(query.limit(min(limit, MAX_RECENT)))
            return [CallRecordView.from_row(row) for row in rows]

    async def recover(self) -> int:
        """Mark rows a previous run left in progress as failed; how many were."""
        now = self._now()
        lost = {"at": iso(now), "kind": "lost", "why": LOST_WHY}
        async with self._lock, self._sessions() as session, session.begin():
            rows = await session.execute(
                select(CallRecord.id, CallRecord.call_id, CallRecord.timeline).where(
                    CallRecord.disposition == "in-progress", CallRecord.ended_at.is_(None)
                )
            )
            changes = [
                {
                    "id": row_id,
                    "disposition": "failed",
                    "ended_by": "system",
                    "ended_at": now,
                    "timeline": [*(timeline if isinstance(timeline, list) else []), lost],
                }
                for row_id, call_id, timeline in rows
                if call_id not in self._calls  # this run's own open calls are not lost
            ]
            if changes:
                await session.execute(update(CallRecord), changes)
        if changes:
            log.warning(
                "call records: %d calls were in progress when the service last stopped; "
                "marked failed",
                len(changes),
            )
        self._recovered = (self._recovered or 0) + len(changes)
        return len(changes)

    # -- writing ---------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write everything pending now; database trouble is logged and counted, not raised."""
        async with self._lock:
            await self._round()

    async def _run(self) -> None:
        while True:
            delay = self._interval
            if self._streak:
                backoff = self._interval * 2 ** min(self._streak, 16)
                delay = max(self._interval, min(backoff, MAX_RETRY_INTERVAL))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # a bug here, not the database: keep the writer alive
                self.write_failures += 1
                log.error("call records: writer round failed", exc_info=exc)

    async def _round(self) -> None:
        batch: list[_Item] = [(call, call.version, call.row()) for call in self._dirty.values()]
        if not batch:
            return
        try:
            async with self._sessions() as session, session.begin():
                ids, stale = await self._store(session, batch)
        except Exception as exc:
            if _record_fault(exc):
                await self._isolate(batch)
            else:
                self._failed(len(batch), exc)
            return
        self._written(batch, ids, stale)

    async def _isolate(self, batch: list[_Item]) -> None:
        """One transaction per record, so that one bad record does not hold back the rest."""
        for item in batch:
            call = item[0]
            if self._calls.get(call.call_id) is not call:
                continue  # dropped meanwhile
            try:
                async with self._sessions() as session, session.begin():
                    ids, stale = await self._store(session, [item])
            except Exception as exc:
                if not _record_fault(exc):
                    self._failed(len(batch), exc)
                    return
                self._record_failed(call, exc)
                continue
            self._written([item], ids, stale)

    async def _store(
        self, session: AsyncSession, batch: list[_Item]
    ) -> tuple[dict[str, int], set[str]]:
        """Upsert the batch; the row id of every call, and the calls not to write (stale)."""
        ids = {call.call_id: call.row_id for call, _, _ in batch if call.row_id is not None}
        unknown = {call.call_id: call for call, _, _ in batch if call.row_id is None}
        stale: set[str] = set()
        # A row may exist already: written by a round whose commit was reported failed, or
        # left by an earlier run for the same Call-ID.
        for chunk in _chunks(list(unknown.values())):
            found = await session.execute(
                select(CallRecord.id, CallRecord.call_id, CallRecord.ended_at).where(
                    CallRecord.call_id.in_([call.call_id for call in chunk])
                )
            )
            for row_id, call_id, ended_at in found:
                ids[call_id] = row_id
                call = unknown[call_id]
                # An ended row is not reopened by a call this run never saw arrive.
                if ended_at is not None and (not call.closed or call.implicit):
                    stale.add(call_id)
        inserts = [row for call, _, row in batch if call.call_id not in ids]
        changes = [
            {"id": ids[call.call_id], **row}
            for call, _, row in batch
            if call.call_id in ids and call.call_id not in stale
        ]
        if inserts:
            result = await session.execute(
                insert(CallRecord).returning(CallRecord.id, CallRecord.call_id), inserts
            )
            ids.update({call_id: row_id for row_id, call_id in result})
        if changes:
            await session.execute(update(CallRecord), changes)
        return ids, stale

    def _written(self, batch: list[_Item], ids: dict[str, int], stale: set[str]) -> None:
        if self._streak:
            log.warning("call records: written again after %d failed rounds", self._streak)
            self._streak = 0
        for call, version, _ in batch:
            if call.call_id in stale:
                log.warning(
                    "call records: %s already ended in the database; later events ignored",
                    call.call_id,
                )
                self._remember_ended(call.call_id)
                self._forget(call)
                continue
            call.row_id = ids[call.call_id]
            call.written = max(call.written, version)
            call.faults = 0
            if call.version == call.written:
                if self._dirty.get(call.call_id) is call:
                    del self._dirty[call.call_id]
                if call.closed:
                    self._forget(call)

    def _failed(self, count: int, exc: Exception) -> None:
        self.write_failures += 1
        self._streak += 1
        # The traceback once per outage; every failed round is still an error line.
        log.error(
            "call records: writing %d records failed (%s); kept in memory, retrying",
            count,
            _why(exc),
            exc_info=exc if self._streak == 1 else None,
        )

    def _record_failed(self, call: OpenCall, exc: Exception) -> None:
        self.write_failures += 1
        call.faults += 1
        if call.customer_id is not None:
            # The one foreign key: the customer was deleted between the match and the write.
            log.error(
                "call records: %s could not be written with customer %d (%s); writing it without",
                call.call_id,
                call.customer_id,
                _why(exc),
            )
            call.add_event(self._now(), "customer-not-stored", {"customer_id": call.customer_id})
            call.customer_id = None
            self._touch(call)
        elif call.faults >= MAX_RECORD_FAULTS:
            log.error(
                "call records: %s could not be written %d times (%s); given up",
                call.call_id,
                call.faults,
                _why(exc),
                exc_info=exc,
            )
            self.dropped += 1
            call.broken = True
            if self._dirty.get(call.call_id) is call:
                del self._dirty[call.call_id]
            if call.closed:
                self._forget(call)
        else:
            log.error("call records: %s could not be written (%s)", call.call_id, _why(exc))

    # -- memory ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._wall()
        return now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def _open(self, call_id: str) -> OpenCall | None:
        """The open call `call_id`, created when unknown; None when it has ended."""
        call_id = cut(call_id, "call_id")
        call = self._calls.get(call_id)
        if call is not None:
            return None if call.closed else call
        if call_id in self._ended:
            log.debug("call records: %s has ended; later event ignored", call_id)
            return None
        # A call the runtime placed itself (a callback): it never "arrived".
        if not self._warned_implicit:
            self._warned_implicit = True
            log.warning(
                "call records: event for unknown call %s: recorded without a caller "
                "(further such calls logged at debug level)",
                call_id,
            )
        else:
            log.debug("call records: event for unknown call %s", call_id)
        call = self._calls[call_id] = OpenCall(call_id=call_id, arrived_at=self._now())
        call.implicit = True
        return call

    def _touch(self, call: OpenCall) -> None:
        call.version += 1
        if call.broken:
            return
        self._dirty[call.call_id] = call
        pending = len(self._dirty)
        if pending > self._max_pending:
            self._shed()
        elif pending * 2 >= self._max_pending:
            self._wake.set()  # do not wait for the interval when memory fills

    def _shed(self) -> None:
        # Down to 90 % at once: one error line per batch dropped, not one per new event.
        target = self._max_pending - self._max_pending // 10
        shed = 0
        first = ""
        while len(self._dirty) > target and self._ended_waiting:
            call = next(iter(self._ended_waiting.values()))
            first = first or call.call_id
            self._forget(call)
            shed += 1
        if shed:
            self.dropped += shed
            log.error(
                "call records: more than %d records waiting to be written; dropped the %d "
                "oldest ended calls unwritten (the first %s)",
                self._max_pending,
                shed,
                first,
            )

    def _forget(self, call: OpenCall) -> None:
        for table in (self._calls, self._dirty, self._ended_waiting):
            if table.get(call.call_id) is call:
                del table[call.call_id]

    def _remember_ended(self, call_id: str) -> None:
        self._ended[call_id] = None
        if len(self._ended) > REMEMBERED_ENDED:
            del self._ended[next(iter(self._ended))]
