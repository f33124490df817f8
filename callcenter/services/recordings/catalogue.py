"""The recordings catalogue: find a call's recording by who, when, what and how it went.

Owns the search over `recordings` joined to the call's record (agent, queue, caller, customer,
disposition, the agent's outcome) with bounded filters and keyset pagination (newest first,
`before_id`), the detail of one recording (its timeline and waveform, and the call's), and
where its files are. Must not know HTTP: the web layer streams the file and writes the audit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import CallRecord, Recording

MAX_LIMIT = 200


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


class RecordingCatalogue:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], recordings_dir: Path) -> None:
        self._sessions = sessions
        self.recordings_dir = recordings_dir

    async def search(self, query: RecordingQuery) -> list[RecordingSummary]:
        """Newest first; at most `limit` (≤ MAX_LIMIT); continue with `before_id`."""
        if not 1 <= query.limit <= MAX_LIMIT:
            raise ValueError(f"limit is 1 to {MAX_LIMIT}")
        statement = _joined()
        if query.agent is not None:
            statement = statement.where(CallRecord.agent == query.agent)
        if query.queue is not None:
            statement = statement.where(CallRecord.queue == query.queue)
        if query.customer_id is not None:
            statement = statement.where(CallRecord.customer_id == query.customer_id)
        if query.number is not None:
            statement = statement.where(CallRecord.caller == query.number)
        if query.disposition is not None:
            statement = statement.where(CallRecord.disposition == query.disposition)
        if query.outcome is not None:
            statement = statement.where(CallRecord.outcome == query.outcome)
        if query.since is not None:
            statement = statement.where(Recording.started_at >= query.since)
        if query.until is not None:
            statement = statement.where(Recording.started_at < query.until)
        if query.min_seconds is not None:
            statement = statement.where(Recording.duration_seconds >= query.min_seconds)
        if query.max_seconds is not None:
            statement = statement.where(Recording.duration_seconds <= query.max_seconds)
        if query.state is not None:
            statement = statement.where(Recording.state == query.state)
        if query.before_id is not None:
            statement = statement.where(Recording.id < query.before_id)
        statement = statement.order_by(Recording.id.desc()).limit(query.limit)
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        return [_summary(recording, record) for recording, record in rows]

    async def get(self, recording_id: int) -> RecordingDetail | None:
        async with self._sessions() as session:
            row = (await session.execute(_joined().where(Recording.id == recording_id))).first()
        if row is None:
            return None
        recording, record = row
        return RecordingDetail(
            summary=_summary(recording, record),
            timeline=list(recording.timeline or []),
            call_timeline=list(record.timeline or []) if record is not None else [],
            peaks=recording.peaks,
            sha256=recording.sha256,
            size_bytes=recording.size_bytes,
            compressed=recording.compressed_path is not None,
            failure=recording.failure,
        )

    async def file(self, recording_id: int, *, compressed: bool = False) -> Path | None:
        """The recording's file on disk (the WAV, or the compressed copy), if it is there."""
        async with self._sessions() as session:
            recording = await session.get(Recording, recording_id)
        if recording is None:
            return None
        relative = recording.compressed_path if compressed else recording.path
        if relative is None:
            return None
        path = (self.recordings_dir / relative).resolve()
        if not path.is_relative_to(self.recordings_dir.resolve()) or not path.is_file():
            return None
        return path


def _joined() -> Select[Recording, CallRecord]:
    return select(Recording, CallRecord).outerjoin(
        CallRecord, CallRecord.call_id == Recording.call_id
    )


def _summary(recording: Recording, record: CallRecord | None) -> RecordingSummary:
    return RecordingSummary(
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
    )
