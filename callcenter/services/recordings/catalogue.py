"""The recordings catalogue: find a call's recording by who, when, what and how it went.

Owns the search over `recordings` joined to the call's record (agent, queue, caller, customer,
disposition, the agent's outcome) and the recording's QA score and legal hold, with bounded
filters and keyset pagination (newest first, `before_id`), what a viewer may see (a QA
reviewer sees only the recordings of their queues; a deleted recording is seen by nobody), the
detail of one recording (its timeline and waveform, and the call's), and where its files are.
Must not know HTTP: the web layer streams the file and writes the audit.

How a search stays fast among a million recordings (bench/bench_recording_search.py): every
statement walks an index newest first and stops at the page's end; nothing sorts the matches.

- Only the summary's columns are read: never the waveform or the timelines (most of a row).
- Without a filter on the call record the walk is `recordings` by id, the call record an outer
  join (a recording may have none).
- With one (agent, queue, customer, number, disposition, outcome, or a viewer's queues) the
  walk is the filtered column's index on `call_records` (an index keeps equal keys in id
  order), newest first by the call record's id, and a page continues after the pair (call
  record id, recording id) of `before_id`'s recording. The two ids are both given as calls
  arrive, so this is the same "newest first", but the pair is what is exact: each query keeps
  one order throughout its pages, so paging never repeats or skips a row.
- A time range (on the recording's start) is first turned into an id range, read from the
  time index alone: the ids of the recordings that started in it, or of the call records that
  arrived around it (`ARRIVAL_SLACK` either side: a call is recorded from the IVR's answer,
  a moment before its arrival is noted, or from an agent's, after the IVR and the queue,
  within a day; `answered_at` would not do: the IVR's recordings start before it, or without
  it). The walk then stays in that id range, still checking each row's start, so the answer
  is exact. That read costs in proportion to the range: about 7 ms a month (83,000 calls).
- A viewer's few queues are one arm per queue, merged newest first (UNION ALL ... ORDER BY ...
  LIMIT, lazily): `queue IN (...)` would gather and sort every match of every queue. Many
  queues, or another filter on the call record to walk by, check the queue as each row passes.

The statements are plain SQL for PostgreSQL too, but there an index on (column) does not keep
equal keys in id order: the same walks would want (column, id) indexes (agent, queue, outcome,
customer, caller), and its planner merges UNION ALL arms eagerly, not lazily.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Executable, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from callcenter.db.models import CallRecord, Recording

MAX_LIMIT = 200
# A recording starts within this long of its call's arrival (see the module's docstring).
ARRIVAL_SLACK = dt.timedelta(days=1)
# Up to this many visible queues, one arm each; more are checked row by row.
MAX_ARMS = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingQuery:
    agent: str | None = None
    queue: str | None = None
    customer_id: int | None = None
    number: str | None = None  # the caller's number (E.164), exactly
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None
    disposition: str | None = None  # how the call ended
    outcome: str | None = None  # the agent's wrap-up code
    state: str | None = None
    min_score: float | None = None  # the mean QA score; either bound leaves unscored out
    max_score: float | None = None
    scored: bool | None = None  # True: only scored recordings; False: only unscored ones
    legal_hold: bool | None = None
    # The queues the viewer may see (a QA reviewer's): None, every recording; a set, only
    # recordings of calls in those queues (an empty set sees nothing).
    queues: frozenset[str] | None = None
    limit: int = 50
    before_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingSummary:
    id: int
    call_id: str
    state: str
    started_at: dt.datetime
    duration_seconds: float | None
    caller: str
    customer_id: int | None
    agent: str | None
    queue: str | None
    disposition: str | None
    outcome: str | None
    qa_score: float | None
    legal_hold: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingDetail:
    summary: RecordingSummary
    timeline: list[dict[str, object]]
    call_timeline: list[dict[str, object]]
    peaks: list[list[int]] | None
    sha256: str | None
    size_bytes: int | None
    compressed: bool
    failure: str
    legal_hold_reason: str


# What a search reads: the summary, and nothing of the waveform or the timelines.
_SUMMARY = (
    Recording.id.label("id"),  # named: a UNION's ORDER BY refers to it
    Recording.call_id,
    Recording.state,
    Recording.started_at,
    Recording.duration_seconds,
    Recording.qa_score,
    Recording.legal_hold,
    CallRecord.caller,
    CallRecord.customer_id,
    CallRecord.agent,
    CallRecord.queue,
    CallRecord.disposition,
    CallRecord.outcome,
)
_CALL_RECORD_ID = "call_record_id"
_JOIN = CallRecord.call_id == Recording.call_id


class RecordingCatalogue:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], recordings_dir: Path) -> None:
        self._sessions = sessions
        self.recordings_dir = recordings_dir

    async def search(self, query: RecordingQuery) -> list[RecordingSummary]:
        """Newest first; at most `limit` (≤ MAX_LIMIT); continue with `before_id` (the last
        id of the previous page)."""
        if not 1 <= query.limit <= MAX_LIMIT:
            raise ValueError(f"limit is 1 to {MAX_LIMIT}")
        queues: Sequence[str] | None = None
        if query.queues is not None:
            visible = query.queues if query.queue is None else query.queues & {query.queue}
            if not visible:
                return []
            queues = sorted(visible)
        elif query.queue is not None:
            queues = [query.queue]
        async with self._sessions() as session:
            if queues is None and not _filters_call_record(query):
                statement = await _by_recording(session, query)
            else:
                statement = await _by_call_record(session, query, queues)
            if statement is None:
                return []
            rows = (await session.execute(statement)).all()
        return [_summary(row) for row in rows]

    async def get(
        self, recording_id: int, *, queues: frozenset[str] | None = None
    ) -> RecordingDetail | None:
        """One recording's detail; None if there is none, it is deleted, or the viewer may
        not see it (its call's queue is not in `queues`)."""
        statement = (
            select(Recording, CallRecord)
            .outerjoin(CallRecord, _JOIN)
            .where(Recording.id == recording_id)
        )
        async with self._sessions() as session:
            row = (await session.execute(statement)).first()
        if row is None:
            return None
        recording, record = row
        if not _visible(recording, record, queues):
            return None
        return RecordingDetail(
            summary=RecordingSummary(
                id=recording.id,
                call_id=recording.call_id,
                state=recording.state,
                started_at=recording.started_at,
                duration_seconds=recording.duration_seconds,
                caller=record.caller if record is not None else "",
                customer_id=record.customer_id if record is not None else None,
                agent=record.agent if record is not None else None,
                queue=record.queue if record is not None else None,
                disposition=record.disposition if record is not None else None,
                outcome=record.outcome if record is not None else None,
                qa_score=recording.qa_score,
                legal_hold=recording.legal_hold,
            ),
            timeline=list(recording.timeline or []),
            call_timeline=list(record.timeline or []) if record is not None else [],
            peaks=recording.peaks,
            sha256=recording.sha256,
            size_bytes=recording.size_bytes,
            compressed=recording.compressed_path is not None,
            failure=recording.failure,
            legal_hold_reason=recording.legal_hold_reason,
        )

    async def file(
        self,
        recording_id: int,
        *,
        compressed: bool = False,
        queues: frozenset[str] | None = None,
    ) -> Path | None:
        """The recording's file on disk (the WAV, or the compressed copy), if it is there and
        the viewer may see it (as `get`)."""
        statement = (
            select(
                Recording.path,
                Recording.compressed_path,
                Recording.deleted_at,
                CallRecord.queue,
            )
            .outerjoin(CallRecord, _JOIN)
            .where(Recording.id == recording_id)
        )
        async with self._sessions() as session:
            row = (await session.execute(statement)).first()
        if row is None or row.deleted_at is not None:
            return None
        if queues is not None and row.queue not in queues:
            return None
        relative: str | None = row.compressed_path if compressed else row.path
        if relative is None:
            return None
        path = (self.recordings_dir / relative).resolve()
        if not path.is_relative_to(self.recordings_dir.resolve()) or not path.is_file():
            return None
        return path


async def live_recording(
    session: AsyncSession, recording_id: int, queues: frozenset[str] | None
) -> Recording | None:
    """The recording's row, if it exists, is not deleted and a viewer of `queues` (None: every
    queue) may see it: the one visibility rule the QA and retention services act under."""
    row = (
        await session.execute(
            select(Recording, CallRecord.queue)
            .outerjoin(CallRecord, _JOIN)
            .where(Recording.id == recording_id, Recording.deleted_at.is_(None))
        )
    ).first()
    if row is None or (queues is not None and row[1] not in queues):
        return None
    recording: Recording = row[0]
    return recording


def _visible(
    recording: Recording, record: CallRecord | None, queues: frozenset[str] | None
) -> bool:
    if recording.deleted_at is not None:
        return False
    return queues is None or (record is not None and record.queue in queues)


def _filters_call_record(query: RecordingQuery) -> bool:
    return any(
        value is not None
        for value in (
            query.agent,
            query.customer_id,
            query.number,
            query.disposition,
            query.outcome,
        )
    )


def _recording_terms(query: RecordingQuery) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = []
    if query.since is not None:
        terms.append(Recording.started_at >= query.since)
    if query.until is not None:
        terms.append(Recording.started_at < query.until)
    if query.min_seconds is not None:
        terms.append(Recording.duration_seconds >= query.min_seconds)
    if query.max_seconds is not None:
        terms.append(Recording.duration_seconds <= query.max_seconds)
    if query.state is not None:
        terms.append(Recording.state == query.state)
    if query.min_score is not None:
        terms.append(Recording.qa_score >= query.min_score)
    if query.max_score is not None:
        terms.append(Recording.qa_score <= query.max_score)
    if query.scored is not None:
        scored = Recording.qa_score
        terms.append(scored.is_not(None) if query.scored else scored.is_(None))
    if query.legal_hold is not None:
        terms.append(Recording.legal_hold == query.legal_hold)
    terms.append(Recording.deleted_at.is_(None))
    return terms


async def _id_range(
    session: AsyncSession,
    ids: InstrumentedAttribute[int],
    times: InstrumentedAttribute[dt.datetime],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> tuple[int, int] | None:
    """The least and greatest id of the rows whose `times` is in [since, until), read from
    the time index alone; None if there is none. (`id + 0`: the planners would otherwise
    answer min(id) by walking the primary key from one end, past every row out of range.)"""
    statement = select(func.min(ids + 0), func.max(ids + 0))
    if since is not None:
        statement = statement.where(times >= since)
    if until is not None:
        statement = statement.where(times < until)
    low, high = (await session.execute(statement)).one()
    return None if low is None else (int(low), int(high))


async def _by_recording(session: AsyncSession, query: RecordingQuery) -> Executable | None:
    """No filter on the call record: recordings newest first, their call records joined."""
    statement = (
        select(*_SUMMARY)
        .select_from(Recording)
        .outerjoin(CallRecord, _JOIN)
        .where(*_recording_terms(query))
    )
    if query.since is not None or query.until is not None:
        found = await _id_range(
            session, Recording.id, Recording.started_at, query.since, query.until
        )
        if found is None:
            return None
        statement = statement.where(Recording.id.between(*found))
    if query.before_id is not None:
        statement = statement.where(Recording.id < query.before_id)
    return statement.order_by(Recording.id.desc()).limit(query.limit)


async def _by_call_record(
    session: AsyncSession, query: RecordingQuery, queues: Sequence[str] | None
) -> Executable | None:
    """A filter on the call record: call records newest first (the filtered column's index
    keeps that order), each with its recordings; one arm per visible queue, merged."""
    terms = _recording_terms(query)
    for column, value in (
        (CallRecord.agent, query.agent),
        (CallRecord.customer_id, query.customer_id),
        (CallRecord.caller, query.number),
        (CallRecord.disposition, query.disposition),
        (CallRecord.outcome, query.outcome),
    ):
        if value is not None:
            terms.append(column == value)
    # A customer's or a number's calls are few: walked whole, no id range needed.
    few = query.customer_id is not None or query.number is not None
    if (query.since is not None or query.until is not None) and not few:
        found = await _id_range(
            session,
            CallRecord.id,
            CallRecord.arrived_at,
            None if query.since is None else query.since - ARRIVAL_SLACK,
            None if query.until is None else query.until + ARRIVAL_SLACK,
        )
        if found is None:
            return None
        terms.append(CallRecord.id.between(*found))
    if query.before_id is not None:
        # The page's last recording's call record: continue with what comes after the pair.
        # (A `before_id` that no recording with a call record has: the next older one's.)
        anchor = (
            select(CallRecord.id)
            .select_from(Recording)
            .join(CallRecord, _JOIN)
            .where(Recording.id <= query.before_id)
            .order_by(Recording.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        terms.append(CallRecord.id <= anchor)
        terms.append(or_(CallRecord.id < anchor, Recording.id < query.before_id))
    base = (
        select(*_SUMMARY, CallRecord.id.label(_CALL_RECORD_ID))
        .select_from(CallRecord)
        .join(Recording, _JOIN)
        .where(*terms)
    )
    if queues is not None and len(queues) == 1:
        base = base.where(CallRecord.queue == queues[0])
    elif queues is not None and (len(queues) > MAX_ARMS or _filters_call_record(query)):
        # Checked as each row passes (coalesce: no index on it to gather and sort by).
        base = base.where(func.coalesce(CallRecord.queue, "").in_(queues))
    elif queues is not None:
        merged = union_all(*(base.where(CallRecord.queue == queue) for queue in queues))
        order = merged.selected_columns
        return merged.order_by(order[_CALL_RECORD_ID].desc(), order["id"].desc()).limit(query.limit)
    return base.order_by(CallRecord.id.desc(), Recording.id.desc()).limit(query.limit)


def _summary(row: Any) -> RecordingSummary:
    return RecordingSummary(
        id=row.id,
        call_id=row.call_id,
        state=row.state,
        started_at=row.started_at,
        duration_seconds=row.duration_seconds,
        caller=row.caller if row.caller is not None else "",
        customer_id=row.customer_id,
        agent=row.agent,
        queue=row.queue,
        disposition=row.disposition,
        outcome=row.outcome,
        qa_score=row.qa_score,
        legal_hold=bool(row.legal_hold),
    )
