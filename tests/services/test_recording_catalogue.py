"""The recordings catalogue's search, detail and files on a real migrated SQLite database.

A few dozen recordings made to be awkward: call records and recordings not in the same id
order, calls with two recordings, recordings without a call record, calls without a queue,
deleted recordings, legal holds, scores on the filters' edges, a call answered hours after it
arrived. Every filter, alone and mixed (Hypothesis), is compared with a plain Python reading
of the contract (docs/qa-api.md), across every page: no row twice, none missing, newest first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from callcenter.db.models import CallRecord, Customer, Recording
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.recordings.catalogue import (
    MAX_ARMS,
    MAX_LIMIT,
    RecordingCatalogue,
    RecordingQuery,
    RecordingSummary,
)

from .qa_fixtures import add_recording

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
QUEUES = ("support", "sales", "vip", "billing")
AGENTS = ("amy", "ben", "cat")
CALLERS = ("+441632960001", "+441632960002", "+441632960003", "")
OUTCOMES = ("resolved", "sale", "follow-up")
STATES = ("complete", "complete", "complete", "incomplete", "failed")
SECONDS = (12.0, 45.0, 300.0)
SCORES = (0.0, 35.5, 59.9, 60.0, 72.3, 80.0, 95.0, 100.0)


@dataclass(frozen=True, slots=True)
class Row:
    """One recording as the contract sees it (its call record's columns None without one)."""

    id: int
    record_id: int | None
    call_id: str
    state: str
    started_at: dt.datetime
    duration_seconds: float | None
    qa_score: float | None
    legal_hold: bool
    deleted: bool
    caller: str | None = None
    customer_id: int | None = None
    agent: str | None = None
    queue: str | None = None
    disposition: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    record: CallRecord
    recordings: list[Recording]


def _calls(rng: random.Random) -> list[Call]:
    calls: list[Call] = []
    arrived = T0
    for n in range(40):
        arrived += dt.timedelta(minutes=rng.choice((3, 20, 90, 600)))
        queue = None if n % 9 == 4 else rng.choice(QUEUES)
        # A long wait (under the catalogue's day of slack) now and then.
        wait = dt.timedelta(seconds=rng.randrange(300))
        if n % 13 == 5:
            wait = dt.timedelta(hours=20)
        elif n % 11 == 3:  # recorded from the IVR's answer, a moment before the arrival is noted
            wait = -dt.timedelta(milliseconds=40)
        started = arrived + wait
        in_progress = n == 39
        record = CallRecord(
            call_id=f"call-{n}@test",
            caller=rng.choice(CALLERS),
            customer_id=rng.choice((1, 2, 3, None)),
            queue=queue,
            agent=None if queue is None else rng.choice(AGENTS),
            arrived_at=arrived,
            answered_at=None if queue is None else started,
            disposition="in-progress" if in_progress else rng.choice(("answered", "transferred")),
            outcome=None if in_progress or rng.random() < 0.2 else rng.choice(OUTCOMES),
            timeline=[],
        )
        recordings = []
        for k in range(1 if n % 7 else 2):  # a transfer's second recording now and then
            state = "recording" if in_progress else rng.choice(STATES)
            recordings.append(
                Recording(
                    call_id=record.call_id,
                    path=f"calls/{n}-{k}.wav",
                    state=state,
                    started_at=started + dt.timedelta(minutes=5 * k),
                    duration_seconds=None if state == "recording" else rng.choice(SECONDS),
                    timeline=[],
                    peaks=[[1, 2], [3, 4]],
                    qa_score=rng.choice(SCORES) if rng.random() < 0.5 else None,
                    legal_hold=rng.random() < 0.15,
                    legal_hold_reason="",
                    deleted_at=started + dt.timedelta(days=2) if rng.random() < 0.1 else None,
                )
            )
        calls.append(Call(record, recordings))
    return calls


def _fill(db_file: Path) -> list[Row]:
    """The data, written so that recording ids and call record ids disagree in places."""
    rng = random.Random(20261123)
    calls = _calls(rng)
    engine = create_sync_engine(f"sqlite:///{db_file}")
    try:
        with Session(engine) as session, session.begin():
            session.add_all(Customer(id=i, name=f"Customer {i}") for i in (1, 2, 3))
            for call in calls:
                session.add(call.record)
            session.flush()
            pending = [r for call in calls for r in call.recordings]
            for i in range(0, len(pending) - 1, 5):  # neighbours swapped: ids out of order
                pending[i], pending[i + 1] = pending[i + 1], pending[i]
            # A recording without a call record (a direct call): first, between and last.
            for at in (0, len(pending) // 2, len(pending)):
                orphan = Recording(
                    call_id=f"direct-{at}@test",
                    path=f"calls/direct-{at}.wav",
                    state="complete",
                    started_at=T0 + dt.timedelta(days=at % 5, minutes=7),
                    duration_seconds=30.0,
                    timeline=[],
                    qa_score=60.0,
                    legal_hold=False,
                    legal_hold_reason="",
                )
                pending.insert(at, orphan)
            for recording in pending:
                session.add(recording)
                session.flush()  # one at a time: ids in this order
            records = {call.record.call_id: call.record for call in calls}
            rows = []
            for r in pending:
                row = Row(
                    id=r.id,
                    record_id=None,
                    call_id=r.call_id,
                    state=r.state,
                    started_at=r.started_at,
                    duration_seconds=r.duration_seconds,
                    qa_score=r.qa_score,
                    legal_hold=r.legal_hold,
                    deleted=r.deleted_at is not None,
                )
                c = records.get(r.call_id)
                if c is not None:
                    row = replace(
                        row,
                        record_id=c.id,
                        caller=c.caller,
                        customer_id=c.customer_id,
                        agent=c.agent,
                        queue=c.queue,
                        disposition=c.disposition,
                        outcome=c.outcome,
                    )
                rows.append(row)
    finally:
        engine.dispose()
    return rows


@dataclass(frozen=True, slots=True)
class Data:
    db_file: Path
    rows: list[Row]


@pytest.fixture(scope="module")
def data(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Data:
    db_file = tmp_path_factory.mktemp("catalogue") / "callcenter.db"
    shutil.copyfile(template, db_file)
    rows = _fill(db_file)
    # The data has what the tests rely on.
    assert any(r.record_id is None for r in rows)
    assert any(r.deleted for r in rows) and any(r.legal_hold for r in rows)
    in_recording_order = [r.record_id for r in sorted(rows, key=lambda r: r.id) if r.record_id]
    assert in_recording_order != sorted(in_recording_order), "the two id orders disagree"
    return Data(db_file, rows)


# --- the contract, in Python ---------------------------------------------------------------

CALL_RECORD_FILTERS = ("agent", "queue", "customer_id", "number", "disposition", "outcome")


def matches(row: Row, q: RecordingQuery) -> bool:
    if row.deleted:
        return False
    if q.queues is not None and (row.record_id is None or row.queue not in q.queues):
        return False
    wanted = {
        "agent": row.agent,
        "queue": row.queue,
        "customer_id": row.customer_id,
        "number": row.caller,
        "disposition": row.disposition,
        "outcome": row.outcome,
        "state": row.state,
        "legal_hold": row.legal_hold,
    }
    if any(getattr(q, k) is not None and getattr(q, k) != v for k, v in wanted.items()):
        return False
    if q.since is not None and row.started_at < q.since:
        return False
    if q.until is not None and row.started_at >= q.until:
        return False
    seconds, score = row.duration_seconds, row.qa_score
    if q.min_seconds is not None and (seconds is None or seconds < q.min_seconds):
        return False
    if q.max_seconds is not None and (seconds is None or seconds > q.max_seconds):
        return False
    if q.min_score is not None and (score is None or score < q.min_score):
        return False
    if q.max_score is not None and (score is None or score > q.max_score):
        return False
    return q.scored is None or q.scored == (score is not None)


def by_call_record(q: RecordingQuery) -> bool:
    return q.queues is not None or any(getattr(q, k) is not None for k in CALL_RECORD_FILTERS)


def expected(rows: Sequence[Row], q: RecordingQuery) -> list[int]:
    """Newest first: by recording id, or by (call record id, recording id) when a filter on
    the call record picks the rows (the order each query keeps through its pages)."""
    found = [r for r in rows if matches(r, q)]
    if by_call_record(q):
        found.sort(key=lambda r: (r.record_id, r.id), reverse=True)
    else:
        found.sort(key=lambda r: r.id, reverse=True)
    return [r.id for r in found]


async def every_page(db_file: Path, q: RecordingQuery) -> list[list[RecordingSummary]]:
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}")
    try:
        catalogue = RecordingCatalogue(create_sessionmaker(engine), db_file.parent)
        pages = [await catalogue.search(q)]
        while len(pages[-1]) == q.limit and len(pages) < 200:
            pages.append(await catalogue.search(replace(q, before_id=pages[-1][-1].id)))
        return pages
    finally:
        await engine.dispose()


def search_all(data: Data, q: RecordingQuery) -> list[int]:
    pages = asyncio.run(every_page(data.db_file, q))
    assert all(len(page) <= q.limit for page in pages)
    ids = [s.id for page in pages for s in page]
    assert len(ids) == len(set(ids)), "a row on two pages"
    rows = {r.id: r for r in data.rows}
    for page in pages:
        for s in page:  # the summary is the row's
            r = rows[s.id]
            assert (s.call_id, s.state, s.started_at, s.duration_seconds) == (
                r.call_id,
                r.state,
                r.started_at,
                r.duration_seconds,
            )
            assert (s.qa_score, s.legal_hold, s.queue, s.agent, s.customer_id) == (
                r.qa_score,
                r.legal_hold,
                r.queue,
                r.agent,
                r.customer_id,
            )
            assert (s.caller, s.disposition, s.outcome) == (
                r.caller or "",
                r.disposition,
                r.outcome,
            )
    return ids


# --- every filter ----------------------------------------------------------------------------

MOMENTS = [T0 + dt.timedelta(hours=h) for h in (0, 5, 30, 62, 100, 200, 400)]
EXTRA_QUEUES = tuple(f"queue-{i}" for i in range(MAX_ARMS))  # past MAX_ARMS with the real ones


def one_filter_each() -> list[RecordingQuery]:
    return [
        RecordingQuery(agent="amy"),
        RecordingQuery(queue="vip"),
        RecordingQuery(customer_id=2),
        RecordingQuery(number=CALLERS[0]),
        RecordingQuery(number=""),  # withheld
        RecordingQuery(disposition="in-progress"),
        RecordingQuery(outcome="sale"),
        RecordingQuery(state="failed"),
        RecordingQuery(since=MOMENTS[2]),
        RecordingQuery(until=MOMENTS[3]),
        RecordingQuery(since=MOMENTS[1], until=MOMENTS[4]),
        RecordingQuery(min_seconds=45.0),
        RecordingQuery(max_seconds=45.0),
        RecordingQuery(min_score=60.0),
        RecordingQuery(max_score=60.0),
        RecordingQuery(min_score=59.95, max_score=80.0),
        RecordingQuery(scored=True),
        RecordingQuery(scored=False),
        RecordingQuery(legal_hold=True),
        RecordingQuery(legal_hold=False),
        RecordingQuery(queues=frozenset({"vip"})),
        RecordingQuery(queues=frozenset({"support", "sales"})),
        RecordingQuery(queues=frozenset(QUEUES + EXTRA_QUEUES)),
        RecordingQuery(queues=frozenset({"sales", "billing"}), agent="ben"),
        RecordingQuery(queues=frozenset({"sales", "billing"}), queue="sales"),
        RecordingQuery(queues=frozenset({"sales", "billing"}), since=MOMENTS[2]),
    ]


def _name(q: RecordingQuery) -> str:
    return ",".join(
        f"{f.name}={getattr(q, f.name)}" for f in fields(q) if getattr(q, f.name) is not None
    )


@pytest.mark.parametrize("q", one_filter_each(), ids=_name)
@pytest.mark.parametrize("limit", [3, 50])
def test_each_filter_finds_what_the_contract_says_across_pages(
    data: Data, q: RecordingQuery, limit: int
) -> None:
    q = replace(q, limit=limit)
    want = expected(data.rows, q)
    assert want, "the data has rows for every filter"
    assert search_all(data, q) == want


def test_with_no_filter_every_recording_is_found_but_the_deleted(data: Data) -> None:
    found = search_all(data, RecordingQuery(limit=MAX_LIMIT))
    assert found == sorted((r.id for r in data.rows if not r.deleted), reverse=True)
    assert any(r.record_id is None for r in data.rows if r.id in found)


def test_a_restricted_viewer_sees_their_queues_only(data: Data) -> None:
    vip = search_all(data, RecordingQuery(queues=frozenset({"vip"})))
    assert vip and all(r.queue == "vip" for r in data.rows if r.id in vip)
    # No queue of theirs, no call record, no queue on the call: nothing.
    assert search_all(data, RecordingQuery(queues=frozenset())) == []
    assert search_all(data, RecordingQuery(queues=frozenset({"nobody's"}))) == []
    everything = search_all(data, RecordingQuery(queues=frozenset(QUEUES)))
    hidden = [r for r in data.rows if not r.deleted and r.id not in everything]
    assert hidden and all(r.record_id is None or r.queue is None for r in hidden)
    # Asking for a queue of someone else's is asking for nothing.
    assert search_all(data, RecordingQuery(queues=frozenset({"vip"}), queue="sales")) == []


@pytest.mark.parametrize(
    "call_id",
    [
        "call-5@test",  # answered 20 hours after it arrived
        "call-3@test",  # recorded from the IVR: started before its call record's arrival
        "call-4@test",  # never left the IVR: no queue, no agent, never answered
    ],
)
def test_a_narrow_time_range_finds_a_recording_whenever_its_call_arrived(
    data: Data, call_id: str
) -> None:
    (row,) = [r for r in data.rows if r.call_id == call_id]
    assert not row.deleted
    for q in (
        RecordingQuery(disposition=row.disposition),  # walks call_records
        RecordingQuery(state=row.state),  # walks recordings
        RecordingQuery(queues=frozenset(QUEUES)),
    ):
        for since, until in (
            (row.started_at, row.started_at + dt.timedelta(milliseconds=1)),
            (row.started_at - dt.timedelta(minutes=1), None),
            (None, row.started_at + dt.timedelta(minutes=1)),
        ):
            narrow = replace(q, since=since, until=until)
            want = expected(data.rows, narrow)
            assert (row.id in want) == (q.queues is None or row.queue is not None)
            assert search_all(data, narrow) == want


def test_a_limit_out_of_range_is_refused(data: Data) -> None:
    for limit in (0, MAX_LIMIT + 1):
        with pytest.raises(ValueError, match="limit"):
            asyncio.run(every_page(data.db_file, RecordingQuery(limit=limit)))


# --- mixed filters, every page ------------------------------------------------------------


VALUES: dict[str, Sequence[object]] = {
    "agent": AGENTS,
    "queue": QUEUES,
    "customer_id": (1, 2, 3),
    "number": CALLERS,
    "since": MOMENTS,
    "until": MOMENTS,
    "min_seconds": SECONDS,
    "max_seconds": SECONDS,
    "disposition": ("answered", "transferred", "in-progress"),
    "outcome": OUTCOMES,
    "state": ("complete", "incomplete", "failed", "recording"),
    "min_score": SCORES,
    "max_score": SCORES,
    "scored": (True, False),
    "legal_hold": (True, False),
}


@st.composite
def queries(draw: st.DrawFn) -> RecordingQuery:
    """A few filters at once (more find nothing in a few dozen rows), a viewer or not."""
    chosen = draw(st.sets(st.sampled_from(sorted(VALUES)), max_size=3))
    values: dict[str, Any] = {name: draw(st.sampled_from(VALUES[name])) for name in chosen}
    since, until = values.get("since"), values.get("until")
    if since is not None and until is not None and since > until:
        values["since"], values["until"] = until, since
    viewer = st.frozensets(st.sampled_from(QUEUES + EXTRA_QUEUES), max_size=MAX_ARMS + 2)
    return RecordingQuery(
        **values,
        queues=draw(st.one_of(st.none(), viewer)),
        limit=draw(st.integers(1, 5)),
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(q=queries())
def test_any_mix_of_filters_pages_through_exactly_what_matches(
    data: Data, q: RecordingQuery
) -> None:
    assert search_all(data, q) == expected(data.rows, q)


# --- paging while rows change ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_page_continues_after_its_last_row_even_if_that_row_was_deleted_since(
    data: Data, tmp_path: Path
) -> None:
    db_file = tmp_path / "callcenter.db"
    shutil.copyfile(data.db_file, db_file)
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}")
    try:
        sessions = create_sessionmaker(engine)
        catalogue = RecordingCatalogue(sessions, tmp_path)
        for q in (RecordingQuery(limit=4), RecordingQuery(queues=frozenset(QUEUES), limit=4)):
            want = expected(data.rows, q)
            first = await catalogue.search(q)
            assert [s.id for s in first] == want[:4]
            async with sessions.begin() as session:
                await session.execute(
                    update(Recording)
                    .where(Recording.id == first[-1].id)
                    .values(deleted_at=T0 + dt.timedelta(days=30))
                )
            second = await catalogue.search(replace(q, before_id=first[-1].id))
            assert [s.id for s in second] == want[4:8]
            async with sessions.begin() as session:
                await session.execute(
                    update(Recording).where(Recording.id == first[-1].id).values(deleted_at=None)
                )
    finally:
        await engine.dispose()


# --- one recording, and its file --------------------------------------------------------------


@pytest.mark.asyncio
async def test_get_and_file_hide_what_the_viewer_may_not_see_and_the_deleted(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    catalogue = RecordingCatalogue(sessions, tmp_path)
    support = await add_recording(sessions, tmp_path, n=1, queue="support", compressed=True)
    billing = await add_recording(sessions, tmp_path, n=2, queue="billing")
    direct = await add_recording(sessions, tmp_path, n=3, with_record=False)
    held = await add_recording(sessions, tmp_path, n=4, queue="support")
    async with sessions.begin() as session:
        await session.execute(
            update(Recording)
            .where(Recording.id == held)
            .values(legal_hold=True, legal_hold_reason="Litigation", qa_score=72.5)
        )

    everyone, reviewer, nobody = None, frozenset({"support"}), frozenset[str]()
    for recording_id in (support, billing, direct, held):
        detail = await catalogue.get(recording_id, queues=everyone)
        assert detail is not None and detail.summary.id == recording_id
        assert await catalogue.file(recording_id, queues=everyone) is not None
        assert await catalogue.get(recording_id, queues=nobody) is None
        assert await catalogue.file(recording_id, queues=nobody) is None
    for recording_id in (billing, direct):
        assert await catalogue.get(recording_id, queues=reviewer) is None
        assert await catalogue.file(recording_id, queues=reviewer) is None
    detail = await catalogue.get(held, queues=reviewer)
    assert detail is not None
    assert (detail.summary.legal_hold, detail.legal_hold_reason) == (True, "Litigation")
    assert detail.summary.qa_score == 72.5 and detail.summary.queue == "support"
    plain = await catalogue.get(support, queues=reviewer)
    assert plain is not None and plain.compressed and not plain.summary.legal_hold
    assert plain.legal_hold_reason == "" and plain.summary.qa_score is None
    wav = await catalogue.file(support, queues=reviewer)
    opus = await catalogue.file(support, compressed=True, queues=reviewer)
    assert wav is not None and wav.suffix == ".wav" and opus is not None and opus.suffix == ".opus"
    assert await catalogue.file(billing, compressed=True) is None  # no compressed copy
    assert await catalogue.get(999_999) is None and await catalogue.file(999_999) is None

    async with sessions.begin() as session:
        await session.execute(
            update(Recording).where(Recording.id == support).values(deleted_at=T0)
        )
    assert await catalogue.get(support) is None
    assert await catalogue.file(support) is None
    assert await catalogue.file(support, compressed=True) is None
    assert [s.id for s in await catalogue.search(RecordingQuery())] == [held, direct, billing]


@pytest.mark.asyncio
async def test_a_path_outside_the_recordings_directory_is_not_served(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    catalogue = RecordingCatalogue(sessions, recordings)
    inside = await add_recording(sessions, recordings, n=1)
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    async with sessions.begin() as session:
        await session.execute(
            update(Recording).where(Recording.id == inside).values(path="../secret.wav")
        )
    assert await catalogue.file(inside) is None
