"""Call records (CallLog) on a real migrated SQLite database."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.cli import migrate
from callcenter.db.models import CallRecord, Customer
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.callrecords import LOST_WHY, MAX_EVENTS, MAX_STRING, CallLog, jsonable
from callcenter.settings import Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Outage:
    """Makes every statement on the engine fail, as a database that went away would."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.down = False
        self.only: str | None = None  # fail only statements starting with this word
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.down and (self.only is None or statement.lstrip().upper().startswith(self.only)):
            raise OperationalError(statement, None, Exception("disk I/O error"))


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    settings = Settings(data_dir=tmp_path)
    # migrate() runs its own event loop (Alembic's async env): give it a thread.
    assert await asyncio.to_thread(migrate, settings) == 0
    engine = create_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def calls(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> CallLog:
    return CallLog(sessions, wall=clock)


@pytest.fixture
def outage(engine: AsyncEngine) -> Iterator[Outage]:
    outage = Outage(engine)
    yield outage
    event.remove(engine.sync_engine, "before_cursor_execute", outage._before)


async def count_rows(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return len((await session.scalars(select(CallRecord.id))).all())


@pytest.mark.asyncio
async def test_arrival_is_written_at_once_as_in_progress(calls: CallLog) -> None:
    calls.arrived("c1", caller="+441632960001", caller_name="Alice", dialled="100")
    assert await calls.get("c1") is None  # nothing touches the database on the hot path
    await calls.flush()
    record = await calls.get("c1")
    assert record is not None
    assert (record.caller, record.caller_name, record.dialled) == ("+441632960001", "Alice", "100")
    assert (record.disposition, record.ended_at, record.ended_by) == ("in-progress", None, None)
    assert record.arrived_at == T0
    assert record.timeline == (
        {
            "at": "2026-01-05T09:00:00.000+00:00",
            "kind": "arrived",
            "caller": "+441632960001",
            "caller_name": "Alice",
            "dialled": "100",
        },
    )
    current = calls.current("c1")
    assert current is not None and current.caller == "+441632960001"


@pytest.mark.asyncio
async def test_a_whole_call_timeline_wait_and_talk(
    calls: CallLog, clock: Clock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as session:
        customer = Customer(name="Alice")
        session.add(customer)
    calls.arrived("c1", caller="+441632960001")
    clock.advance(1)
    calls.event("c1", "ivr-node", node="menu")
    calls.event("c1", "digits", digits="2", at="1999")  # data cannot move an event in time
    await calls.flush()  # written once mid-call, then updated
    clock.advance(1)
    calls.queued("c1", "sales")
    calls.update("c1", customer_id=customer.id)
    clock.advance(30)
    calls.event("c1", "offered", agent="bob", candidates=("bob", "carol"))
    clock.advance(5)
    calls.answered("c1", "bob")
    clock.advance(60)
    calls.event("c1", "hold", on=True)
    clock.advance(20)
    calls.event("c1", "transfer", to="carol")
    calls.answered("c1", "carol")
    clock.advance(40)
    calls.ended("c1", by="agent", disposition="answered")
    assert calls.current("c1") is None  # ended: no longer an open call
    await calls.flush()
    record = await calls.get("c1")
    assert record is not None
    assert [e["kind"] for e in record.timeline] == [
        "arrived",
        "ivr-node",
        "digits",
        "queued",
        "offered",
        "answered",
        "hold",
        "transfer",
        "answered",
        "ended",
    ]
    assert record.timeline[2] == {
        "at": "2026-01-05T09:00:01.000+00:00",
        "kind": "digits",
        "digits": "2",
    }
    assert record.timeline[4]["candidates"] == ("bob", "carol")
    assert record.timeline[-1] == {
        "at": "2026-01-05T09:02:37.000+00:00",
        "kind": "ended",
        "by": "agent",
        "disposition": "answered",
    }
    assert (record.queue, record.agent, record.customer_id) == ("sales", "carol", customer.id)
    assert record.queued_at == T0 + timedelta(seconds=2)
    assert record.answered_at == T0 + timedelta(seconds=37)
    assert record.ended_at == T0 + timedelta(seconds=157)
    assert (record.wait_seconds, record.talk_seconds) == (35.0, 120.0)
    assert (record.ended_by, record.disposition) == ("agent", "answered")
    assert await count_rows(sessions) == 1


@pytest.mark.asyncio
async def test_abandoned_wait_runs_to_the_end_and_no_talk(calls: CallLog, clock: Clock) -> None:
    calls.arrived("c1", caller="+441632960001")
    calls.queued("c1", "sales")
    clock.advance(12.5)
    calls.queued("c1", "overflow")  # an overflow keeps the first entry time
    clock.advance(7.5)
    calls.ended("c1", by="caller", disposition="abandoned")
    calls.arrived("c2", caller="+441632960002")
    calls.ended("c2", by="system", disposition="ivr")
    await calls.flush()
    one, two = await calls.get("c1"), await calls.get("c2")
    assert one is not None and two is not None
    assert (one.queue, one.wait_seconds, one.talk_seconds) == ("overflow", 20.0, None)
    assert (two.wait_seconds, two.talk_seconds, two.disposition) == (None, None, "ivr")


@pytest.mark.asyncio
async def test_bad_disposition_by_or_field_is_a_programming_error(calls: CallLog) -> None:
    calls.arrived("c1", caller="")
    with pytest.raises(ValueError, match="disposition"):
        calls.ended("c1", by="caller", disposition="hung-up")
    with pytest.raises(ValueError, match="disposition"):
        calls.ended("c1", by="caller", disposition="in-progress")
    with pytest.raises(ValueError, match="ended by"):
        calls.ended("c1", by="customer", disposition="abandoned")
    with pytest.raises(ValueError, match="unknown call record field"):
        calls.update("c1", queue="sales", disposition="answered")
    with pytest.raises(ValueError, match="timezone-aware"):
        calls.update("c1", queued_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="customer_id"):
        calls.update("c1", customer_id="7")
    with pytest.raises(ValueError, match="disposition"):
        calls.ended("never-seen", by="caller", disposition="nope")
    view = calls.current("c1")
    assert view is not None and view.queue is None  # a refused update changes nothing
    assert calls.current("never-seen") is None  # a refused end creates nothing


@pytest.mark.asyncio
async def test_the_first_end_wins_and_later_events_are_ignored(
    calls: CallLog, clock: Clock
) -> None:
    calls.arrived("c1", caller="+441632960001")
    calls.ended("c1", by="caller", disposition="abandoned")
    clock.advance(3)
    calls.ended("c1", by="agent", disposition="answered")
    calls.event("c1", "late")
    calls.update("c1", queue="sales")
    await calls.flush()
    # Also once the record has left memory: no implicit recreation over the final row.
    calls.ended("c1", by="system", disposition="failed")
    calls.event("c1", "later")
    await calls.flush()
    record = await calls.get("c1")
    assert record is not None
    assert (record.ended_by, record.disposition, record.queue) == ("caller", "abandoned", None)
    assert record.ended_at == T0
    assert [e["kind"] for e in record.timeline] == ["arrived", "ended"]


@pytest.mark.asyncio
async def test_events_for_an_unknown_call_create_it_without_a_caller(
    calls: CallLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "callcenter.services.callrecords"):
        calls.event("cb-1", "dialling", number="+441632960009")
        calls.event("cb-2", "dialling", number="+441632960010")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cb-1" in warnings[0].getMessage()
    calls.ended("cb-1", by="system", disposition="failed")
    await calls.flush()
    record = await calls.get("cb-1")
    assert record is not None
    assert (record.caller, record.disposition) == ("", "failed")
    assert [e["kind"] for e in record.timeline] == ["dialling", "ended"]


@pytest.mark.asyncio
async def test_recover_marks_a_previous_runs_open_calls_failed(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    previous = CallLog(sessions, wall=clock)
    previous.arrived("lost", caller="+441632960001")
    previous.queued("lost", "sales")
    previous.arrived("done", caller="+441632960002")
    previous.ended("done", by="caller", disposition="abandoned")
    await previous.flush()  # then the process is killed: no stop()

    clock.advance(3600)
    now = CallLog(sessions, wall=clock)
    assert now.listening() == "call records: not started"
    await now.start()
    try:
        assert now.listening() == "call records: 1 recovered"
        lost, done = await now.get("lost"), await now.get("done")
        assert lost is not None and done is not None
        assert (lost.disposition, lost.ended_by) == ("failed", "system")
        assert lost.ended_at == T0 + timedelta(seconds=3600)
        assert [e["kind"] for e in lost.timeline] == ["arrived", "queued", "lost"]
        assert lost.timeline[-1]["why"] == LOST_WHY
        assert (done.disposition, len(done.timeline)) == ("abandoned", 2)
        assert await now.recover() == 0
    finally:
        await now.stop()


@pytest.mark.asyncio
async def test_database_failure_is_counted_and_the_data_written_later(
    calls: CallLog,
    outage: Outage,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls.arrived("c1", caller="+441632960001")
    await calls.flush()
    calls.event("c1", "digits", digits="4")
    calls.arrived("c2", caller="+441632960002")
    calls.ended("c2", by="caller", disposition="abandoned")
    outage.down = True
    # Part-way through the round (c2 inserted, then c1's update fails): all of it rolls back.
    outage.only = "UPDATE"
    await calls.flush()
    outage.only = "INSERT"
    await calls.flush()  # the failed transaction's row ids were not kept: inserts again
    outage.only = None
    with caplog.at_level(logging.ERROR, "callcenter.services.callrecords"):
        await calls.flush()
    assert calls.write_failures == 3
    assert "disk I/O error" in caplog.text
    calls.event("c1", "digits", digits="5")  # the hot path goes on during the outage
    outage.down = False
    assert await count_rows(sessions) == 1
    await calls.flush()
    one, two = await calls.get("c1"), await calls.get("c2")
    assert one is not None and two is not None
    assert [e["kind"] for e in one.timeline] == ["arrived", "digits", "digits"]
    assert two.disposition == "abandoned"
    assert (calls.write_failures, calls.dropped) == (3, 0)


@pytest.mark.asyncio
async def test_too_many_waiting_drops_the_oldest_ended_calls_loudly(
    sessions: async_sessionmaker[AsyncSession],
    outage: Outage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = CallLog(sessions, max_pending=3)
    outage.down = True
    calls.arrived("open", caller="")
    with caplog.at_level(logging.ERROR, "callcenter.services.callrecords"):
        for n in range(4):
            calls.arrived(f"c{n}", caller="")
            calls.ended(f"c{n}", by="caller", disposition="ivr")
    assert calls.dropped == 2
    assert "dropped" in caplog.text
    outage.down = False
    await calls.flush()
    written = {r.call_id for r in await calls.recent()}
    assert written == {"open", "c2", "c3"}  # c0 and c1 ended first: dropped first


@pytest.mark.asyncio
async def test_one_bad_record_does_not_hold_back_the_others(
    calls: CallLog, sessions: async_sessionmaker[AsyncSession]
) -> None:
    calls.arrived("c1", caller="+441632960001")
    calls.arrived("c2", caller="+441632960002")
    calls.update("c2", customer_id=999)  # no such customer (deleted meanwhile)
    await calls.flush()
    assert await calls.get("c1") is not None
    assert await calls.get("c2") is None
    assert calls.write_failures == 1
    await calls.flush()  # retried without the customer
    record = await calls.get("c2")
    assert record is not None and record.customer_id is None
    assert record.timeline[-1]["kind"] == "customer-not-stored"
    assert record.timeline[-1]["customer_id"] == 999


@pytest.mark.asyncio
async def test_a_record_the_database_keeps_refusing_is_given_up(
    calls: CallLog, engine: AsyncEngine
) -> None:
    def refuse(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT") and "bad" in str(parameters):
            raise IntegrityError(statement, None, Exception("CHECK constraint failed"))

    event.listen(engine.sync_engine, "before_cursor_execute", refuse)
    try:
        calls.arrived("bad", caller="")
        calls.arrived("good", caller="")
        for _ in range(3):
            await calls.flush()
        assert (calls.write_failures, calls.dropped) == (3, 1)
        calls.event("bad", "more")  # kept open in memory, but no longer written
        calls.ended("bad", by="caller", disposition="ivr")
        calls.ended("good", by="caller", disposition="ivr")
        await calls.flush()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", refuse)
    assert calls.write_failures == 3
    assert await calls.get("bad") is None
    good = await calls.get("good")
    assert good is not None and good.disposition == "ivr"


@pytest.mark.asyncio
async def test_timeline_and_strings_are_bounded(calls: CallLog) -> None:
    calls.arrived("c1", caller="+44" + "1" * 100, caller_name="n" * 500)
    for n in range(MAX_EVENTS + 100):
        calls.event("c1", "tick", n=n, note="x" * 5000)
    await calls.flush()
    record = await calls.get("c1")
    assert record is not None
    assert len(record.caller) == 64 and len(record.caller_name) == 128
    assert len(record.timeline) == MAX_EVENTS + 1
    assert record.timeline[-2]["n"] == MAX_EVENTS - 2  # "arrived" took the first place
    assert record.timeline[-2]["note"] == "x" * MAX_STRING
    assert record.timeline[-1] == {
        "at": "2026-01-05T09:00:00.000+00:00",
        "kind": "truncated",
        "not_stored": 101,
    }


class Mode(enum.Enum):
    FULL = "full"


def test_event_data_is_made_json_safe() -> None:
    class Thing:
        def __str__(self) -> str:
            return "a thing"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert jsonable(
        {
            "t": (1, 2),
            "m": Mode.FULL,
            "f": float("nan"),
            "i": float("inf"),
            "o": Thing(),
            "b": Broken(),
            "s": {"x"},
            "d": T0,
            "big": 10**5000,
            "n": None,
            "ok": True,
        }
    ) == {
        "t": [1, 2],
        "m": "full",
        "f": "nan",
        "i": "inf",
        "o": "a thing",
        "b": "<unprintable Broken>",
        "s": ["x"],
        "d": "2026-01-05T09:00:00.000+00:00",
        "big": "<unprintable int>",
        "n": None,
        "ok": True,
    }
    long = jsonable(list(range(250)))
    assert isinstance(long, list) and len(long) == 101 and long[-1] == "... 150 more"
    deep: object = "bottom"
    for _ in range(20):
        deep = [deep]
    assert "bottom" in str(jsonable(deep))


@pytest.mark.asyncio
async def test_recent_newest_first_with_filters(calls: CallLog, clock: Clock) -> None:
    for n, (queue, agent) in enumerate(
        [("sales", "bob"), ("support", "bob"), ("sales", "carol"), ("sales", None)]
    ):
        calls.arrived(f"c{n}", caller="")
        calls.queued(f"c{n}", queue)
        if agent:
            calls.answered(f"c{n}", agent)
        clock.advance(10)
    await calls.flush()
    assert [r.call_id for r in await calls.recent()] == ["c3", "c2", "c1", "c0"]
    assert [r.call_id for r in await calls.recent(limit=2)] == ["c3", "c2"]
    assert [r.call_id for r in await calls.recent(queue="sales")] == ["c3", "c2", "c0"]
    assert [r.call_id for r in await calls.recent(agent="bob")] == ["c1", "c0"]
    assert [r.call_id for r in await calls.recent(queue="sales", agent="bob")] == ["c0"]
    with pytest.raises(ValueError):
        await calls.recent(limit=0)


@pytest.mark.asyncio
async def test_the_writer_task_writes_and_stop_flushes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    calls = CallLog(sessions, flush_interval=0.01)
    await calls.start()
    calls.arrived("c1", caller="")
    for _ in range(500):
        if await calls.get("c1") is not None:
            break
        await asyncio.sleep(0.01)
    assert await calls.get("c1") is not None
    # Stopped before the next round would run: stop() writes what is pending.
    slow = CallLog(sessions, flush_interval=3600)
    await slow.start()
    slow.arrived("c2", caller="")
    slow.ended("c2", by="caller", disposition="abandoned")
    await slow.stop()
    await calls.stop()
    record = await calls.get("c2")
    assert record is not None and record.disposition == "abandoned"


@pytest.mark.asyncio
async def test_sqlite_keeps_aware_utc(calls: CallLog, engine: AsyncEngine) -> None:
    calls.arrived("c1", caller="")
    await calls.flush()
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT arrived_at FROM call_records"))).scalar_one()
    assert str(stored).startswith("2026-01-05 09:00:00")
    record = await calls.get("c1")
    assert record is not None and record.arrived_at.tzinfo is UTC
