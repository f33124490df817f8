"""The hash-chained audit log (AuditLog) on a real migrated SQLite database.

Tampering is done the way an intruder with database access would: SQL straight on the table,
behind the service's back. What the chain alone cannot see (the tail cut off, or everything
from some entry on rewritten with fresh hashes) is shown here too, caught only against a
saved head.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.cli import migrate
from callcenter.db.models import AuditEntry
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.services.audit import (
    APPEND_ATTEMPTS,
    GENESIS,
    MAX_DETAIL_BYTES,
    AuditError,
    AuditLog,
    Head,
    entry_hash,
)
from callcenter.settings import Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    """A wall clock that moves 1.5 ms each time it is read (microseconds matter)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1500)
        return self.now


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated for the module; each test gets a copy (migrating is slow)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("audit-template"))
    assert migrate(settings) == 0  # its own event loop: fine, no loop runs here yet
    path = settings.data_dir / "callcenter.db"
    assert settings.database_url.endswith(str(path))
    return path


def copy_of(template: Path, directory: Path) -> str:
    """A fresh migrated database: the template's file (closed, so no WAL beside it)."""
    assert not template.with_name(template.name + "-wal").exists()
    target = directory / template.name
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest_asyncio.fixture
async def engine(template: Path, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(copy_of(template, tmp_path))
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def audit(sessions: async_sessionmaker[AsyncSession]) -> AuditLog:
    # A small batch, so every chain of the tests spans several of verify's queries.
    return AuditLog(sessions, wall=Clock(), verify_batch=7)


async def chain(audit: AuditLog, n: int) -> None:
    for i in range(1, n + 1):
        await audit.append(
            f"qa{i % 3}", "recording.listen", f"recording:{i}", {"range": [0, i], "n": i}
        )


async def sql(engine: AsyncEngine, *statements: Any) -> None:
    """Run statements behind the service's back, as an intruder with the database would."""
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(statement)


def where(entry_id: int) -> Any:
    return update(AuditEntry).where(AuditEntry.id == entry_id)


async def row(engine: AsyncEngine, entry_id: int) -> AuditEntry:
    async with create_sessionmaker(engine)() as session:
        found = await session.get(AuditEntry, entry_id)
    assert found is not None
    return found


def rehash(entry: AuditEntry, **changes: Any) -> dict[str, Any]:
    """The entry's columns with `changes`, and a hash recomputed to match them."""
    fields = {
        name: getattr(entry, name)
        for name in ("id", "at", "actor", "action", "subject", "detail", "prev_hash")
    }
    fields.update(changes)
    return {**fields, "hash": entry_hash(**fields)}


# --- appending --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_empty_log_verifies_and_its_head_is_genesis(audit: AuditLog) -> None:
    assert await audit.head() == Head(0, GENESIS)
    result = await audit.verify()
    assert (result.ok, result.entries, result.first_bad_id) == (True, 0, None)
    assert (await audit.verify(head=Head(0, GENESIS))).ok
    for bad in [(0, "a" * 64), (-1, GENESIS), (3, "not hex"), (3, "A" * 64)]:
        with pytest.raises(ValueError):
            await audit.verify(head=bad)


@pytest.mark.asyncio
async def test_appends_chain_one_to_the_next(audit: AuditLog) -> None:
    first = await audit.append("alice", "recording.listen", "recording:42", {"from": 0.0})
    second = await audit.append("bob", "recording.pause", "call:abc@host", None)
    third = await audit.append("carol", "legal-hold.set", "customer:7", {"until": None})
    assert [first.id, second.id, third.id] == [1, 2, 3]
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3
    assert second.detail == {} and second.detail_json == "{}"
    for view in (first, second, third):
        assert view.hash == entry_hash(
            id=view.id,
            at=view.at,
            actor=view.actor,
            action=view.action,
            subject=view.subject,
            detail=view.detail,
            prev_hash=view.prev_hash,
        )
    assert first.at < second.at < third.at and first.at.tzinfo is UTC
    # What was returned is what the database holds, to the microsecond.
    assert await audit.entries() == [third, second, first]
    assert await audit.head() == Head(3, third.hash)
    assert (await audit.verify()).ok


def test_the_hash_encoding_is_pinned() -> None:
    # Written out by hand, not with json.dumps: anyone re-implementing verification (a
    # script, an auditor) hashes exactly this text. Changing it breaks every stored chain.
    text = (
        '["callcenter.audit/1",1,"2026-01-05T09:00:00.000000+00:00","alice",'
        '"recording.listen","recording:42",{"a":"\\u00e9\\"]","b":[1,2.5,null,true]},'
        '"' + "0" * 64 + '"]'
    )
    paris = datetime(2026, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    digest = entry_hash(
        id=1,
        at=paris,  # the same instant as T0: the encoding is always UTC
        actor="alice",
        action="recording.listen",
        subject="recording:42",
        detail={"b": (1, 2.5, None, True), "a": 'é"]'},
        prev_hash=GENESIS,
    )
    assert digest == hashlib.sha256(text.encode("ascii")).hexdigest()


@pytest.mark.asyncio
async def test_detail_is_stored_as_plain_json_and_views_are_frozen(audit: AuditLog) -> None:
    detail: dict[str, object] = {"ranges": ((0, 10), (20, 30)), "name": "Zoë 🎧", "n": -0.0}
    view = await audit.append("alice", "recording.download", "recording:1", detail)
    assert view.detail == {"ranges": [[0, 10], [20, 30]], "name": "Zoë 🎧", "n": -0.0}
    assert json.loads(view.detail_json) == view.detail
    view.detail["name"] = "changed"  # a fresh copy each time
    assert view.detail["name"] == "Zoë 🎧"
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.actor = "mallory"  # type: ignore[misc]
    (stored,) = await audit.entries()
    assert stored == view
    assert (await audit.verify()).ok


@pytest.mark.asyncio
async def test_verify_passes_a_good_chain_of_a_thousand(
    audit: AuditLog, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await chain(audit, 1000)
    result = await audit.verify()  # 143 batches of 7
    assert (result.ok, result.entries, result.first_bad_id) == (True, 1000, None)
    whole = await AuditLog(sessions).verify()  # the default batch
    assert (whole.ok, whole.entries) == (True, 1000)
    head = await audit.head()
    assert head.id == 1000
    assert (await audit.verify(head=head)).ok
    assert (await audit.verify(head=(500, (await row_hash(audit, 500))))).ok


async def row_hash(audit: AuditLog, entry_id: int) -> str:
    (view,) = await audit.entries(before_id=entry_id + 1, limit=1)
    return view.hash


# --- tampering ------------------------------------------------------------------------------


async def edit_detail(engine: AsyncEngine) -> None:
    await sql(engine, where(10).values(detail={"range": [0, 9], "n": 10}))


async def edit_actor(engine: AsyncEngine) -> None:
    await sql(engine, where(10).values(actor="someone-else"))


async def change_at(engine: AsyncEngine) -> None:
    entry = await row(engine, 10)
    await sql(engine, where(10).values(at=entry.at + timedelta(microseconds=1)))


async def delete_middle(engine: AsyncEngine) -> None:
    await sql(engine, delete(AuditEntry).where(AuditEntry.id == 10))


async def delete_first(engine: AsyncEngine) -> None:
    await sql(engine, delete(AuditEntry).where(AuditEntry.id == 1))


async def swap_pair(engine: AsyncEngine) -> None:
    # Entries 10 and 11 trade places; every row is still internally consistent.
    await sql(engine, where(10).values(id=-1), where(11).values(id=10), where(-1).values(id=11))


async def recompute_one(engine: AsyncEngine) -> None:
    # Edited and re-hashed: entry 10 checks out on its own, entry 11 no longer links to it.
    entry = await row(engine, 10)
    await sql(engine, where(10).values(**rehash(entry, actor="someone-else")))


async def edit_prev_hash(engine: AsyncEngine) -> None:
    await sql(engine, where(10).values(prev_hash="f" * 64))


async def edit_last(engine: AsyncEngine) -> None:
    await sql(engine, where(20).values(subject="recording:999"))


async def unreadable_detail(engine: AsyncEngine) -> None:
    await sql(engine, where(10).values(detail=[1, 2]))  # not an object: never written so


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("tamper", "first_bad_id", "says"),
    [
        (edit_detail, 10, "does not match its hash"),
        (edit_actor, 10, "does not match its hash"),
        (change_at, 10, "does not match its hash"),
        (delete_middle, 11, "entry 10 is missing"),
        (delete_first, 2, "entry 1 is missing"),
        (swap_pair, 10, "prev_hash"),
        (recompute_one, 11, "prev_hash does not match the hash of entry 10"),
        (edit_prev_hash, 10, "prev_hash"),
        (edit_last, 20, "does not match its hash"),
        (unreadable_detail, 10, "cannot be encoded"),
    ],
)
async def test_tampering_is_detected_where_it_happened(
    audit: AuditLog,
    engine: AsyncEngine,
    tamper: Callable[[AsyncEngine], Awaitable[None]],
    first_bad_id: int,
    says: str,
) -> None:
    await chain(audit, 20)
    assert (await audit.verify()).ok
    await tamper(engine)
    result = await audit.verify()
    assert (result.ok, result.first_bad_id) == (False, first_bad_id), result
    assert says in result.reason
    assert result.entries < 20


@pytest.mark.asyncio
async def test_a_cut_off_tail_is_caught_only_against_a_saved_head(
    audit: AuditLog, engine: AsyncEngine
) -> None:
    await chain(audit, 20)
    saved = await audit.head()  # printed in yesterday's report
    await sql(engine, delete(AuditEntry).where(AuditEntry.id > 17))
    # A shorter chain is still a valid chain: the log alone cannot tell.
    alone = await audit.verify()
    assert (alone.ok, alone.entries) == (True, 17)
    anchored = await audit.verify(head=saved)
    assert (anchored.ok, anchored.entries, anchored.first_bad_id) == (False, 17, 18)
    assert "before the saved head 20" in anchored.reason

    # Covering the cut with new entries does not help: entry 20 is no longer the saved one.
    await chain(audit, 3)
    assert (await audit.verify()).ok
    covered = await audit.verify(head=saved)
    assert (covered.ok, covered.first_bad_id) == (False, 20)
    assert "not the saved head" in covered.reason


@pytest.mark.asyncio
async def test_a_rewritten_tail_is_caught_only_against_a_saved_head(
    audit: AuditLog, engine: AsyncEngine
) -> None:
    # SHA-256 has no secret: whoever can write the table can rewrite entry 5 and recompute
    # every hash after it. Only an anchor kept elsewhere shows it.
    await chain(audit, 12)
    saved = await audit.head()
    prev = (await row(engine, 4)).hash
    for entry_id in range(5, 13):
        entry = await row(engine, entry_id)
        changes = {"actor": "nobody"} if entry_id == 5 else {}
        values = rehash(entry, prev_hash=prev, **changes)
        await sql(engine, where(entry_id).values(**values))
        prev = values["hash"]
    assert (await audit.verify()).ok
    result = await audit.verify(head=saved)
    assert (result.ok, result.first_bad_id) == (False, 12)


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fifty_concurrent_appends_make_one_unbroken_chain(audit: AuditLog) -> None:
    views = await asyncio.gather(
        *(audit.append(f"agent{i}", "monitor.listen", f"call:c{i}") for i in range(50))
    )
    assert sorted(view.id for view in views) == list(range(1, 51))
    result = await audit.verify()
    assert (result.ok, result.entries) == (True, 50)
    assert len({view.subject for view in await audit.entries(limit=500)}) == 50


@pytest.mark.asyncio
async def test_two_processes_appending_at_once_keep_one_chain(
    audit: AuditLog, engine: AsyncEngine
) -> None:
    # A second engine stands for another process: the asyncio.Lock does not cover it, the
    # primary key does.
    other_engine = create_engine(engine.url)
    try:
        other = AuditLog(create_sessionmaker(other_engine), wall=Clock())
        await asyncio.gather(
            *(audit.append("here", "recording.listen", f"recording:{i}") for i in range(25)),
            *(other.append("there", "recording.listen", f"recording:{i}") for i in range(25)),
        )
    finally:
        await other_engine.dispose()
    result = await audit.verify()
    assert (result.ok, result.entries) == (True, 50)


class Competitor:
    """A wall clock that, read by an append after it found the last entry, first lets
    another process (a plain synchronous connection) append: the worst moment for a race."""

    def __init__(self, engine: AsyncEngine, times: int) -> None:
        self.other = create_sync_engine(engine.url.set(drivername="sqlite"))
        self.clock = Clock()
        self.left = times

    def __call__(self) -> datetime:
        now = self.clock()
        if self.left > 0:
            self.left -= 1
            with self.other.begin() as connection:
                last = connection.execute(
                    select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
                ).first()
                last_id, last_hash = (0, GENESIS) if last is None else (last.id, last.hash)
                fields: dict[str, Any] = {
                    "id": last_id + 1,
                    "at": now,
                    "actor": "other-process",
                    "action": "recording.delete",
                    "subject": f"recording:{self.left}",
                    "detail": {},
                    "prev_hash": last_hash,
                }
                connection.execute(insert(AuditEntry).values(**fields, hash=entry_hash(**fields)))
        return now


@pytest.mark.asyncio
async def test_losing_a_race_retries_after_the_winner(
    audit: AuditLog, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    await chain(audit, 2)
    other = Competitor(engine, times=3)
    try:
        view = await AuditLog(sessions, wall=other).append("alice", "recording.listen", "r:42")
    finally:
        other.other.dispose()
    assert view.id == 6  # the other process took 3, 4 and 5
    assert [e.actor for e in await audit.entries()] == [
        "alice",
        "other-process",
        "other-process",
        "other-process",
        "qa2",
        "qa1",
    ]
    assert (await audit.verify()).ok


@pytest.mark.asyncio
async def test_an_append_that_always_loses_fails_loudly(
    audit: AuditLog, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    other = Competitor(engine, times=APPEND_ATTEMPTS)
    try:
        with pytest.raises(AuditError, match="attempts"):
            await AuditLog(sessions, wall=other).append("alice", "recording.listen", "r:42")
    finally:
        other.other.dispose()
    assert [e.actor for e in await audit.entries()] == ["other-process"] * APPEND_ATTEMPTS
    assert (await audit.verify()).ok


# --- bounds and reading -----------------------------------------------------------------------


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("actor", "action", "subject", "detail"),
    [
        ("", "recording.listen", "recording:1", None),
        ("a" * 65, "recording.listen", "recording:1", None),
        ("alice\nFORGED ENTRY", "recording.listen", "recording:1", None),
        (42, "recording.listen", "recording:1", None),
        ("alice", "", "recording:1", None),
        ("alice", "Recording.Listen", "recording:1", None),
        ("alice", "recording listen", "recording:1", None),
        ("alice", "recording.", "recording:1", None),
        ("alice", "a" * 33, "recording:1", None),
        ("alice", "recording.listen", "", None),
        ("alice", "recording.listen", "r" * 256, None),
        ("alice", "recording.listen", "recording:1\x00", None),
        ("alice", "recording.listen", "recording:\ud800", None),
        ("alice", "recording.listen", "recording:1", [1, 2]),
        ("alice", "recording.listen", "recording:1", "text"),
        ("alice", "recording.listen", "recording:1", {1: "int key"}),
        ("alice", "recording.listen", "recording:1", {"x": float("nan")}),
        ("alice", "recording.listen", "recording:1", {"x": float("inf")}),
        ("alice", "recording.listen", "recording:1", {"x": 2**64}),
        ("alice", "recording.listen", "recording:1", {"x": object()}),
        ("alice", "recording.listen", "recording:1", {"x": {1, 2}}),
        ("alice", "recording.listen", "recording:1", {"x": b"bytes"}),
        ("alice", "recording.listen", "recording:1", {"x": "\udc00"}),
        ("alice", "recording.listen", "recording:1", {"x": "y" * MAX_DETAIL_BYTES}),
        ("alice", "recording.listen", "recording:1", {"x": list(range(10**6))}),
        ("alice", "recording.listen", "recording:1", nested(10)),
    ],
)
async def test_out_of_bounds_input_is_refused(
    audit: AuditLog, actor: Any, action: Any, subject: Any, detail: Any
) -> None:
    with pytest.raises(ValueError):
        await audit.append(actor, action, subject, detail)
    assert await audit.head() == Head(0, GENESIS)


@pytest.mark.asyncio
async def test_bounds_are_inclusive(audit: AuditLog) -> None:
    # '{"x":"' + value + '"}' is 8 bytes of framing.
    biggest = {"x": "y" * (MAX_DETAIL_BYTES - 8)}
    await audit.append("a" * 64, "a" * 32, "s" * 255, biggest)
    with pytest.raises(ValueError, match="4096"):
        await audit.append("a", "a", "s", {"x": "y" * (MAX_DETAIL_BYTES - 7)})
    await audit.append("alice", "erasure", "number:+441632960001", nested(8))
    assert (await audit.verify()).entries == 2


@pytest.mark.asyncio
async def test_a_naive_clock_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    naive = AuditLog(sessions, wall=lambda: datetime(2026, 1, 5, 9, 0))
    with pytest.raises(ValueError, match="naive"):
        await naive.append("alice", "recording.listen", "recording:1")


@pytest.mark.asyncio
async def test_entries_filter_and_page_newest_first(audit: AuditLog) -> None:
    for i in range(30):
        await audit.append(f"qa{i % 2}", "recording.listen", f"recording:{i % 3}")
    newest = await audit.entries(limit=5)
    assert [e.id for e in newest] == [30, 29, 28, 27, 26]
    page = await audit.entries(limit=5, before_id=newest[-1].id)
    assert [e.id for e in page] == [25, 24, 23, 22, 21]
    mine = await audit.entries(actor="qa1", subject="recording:0", limit=500)
    # i odd and i divisible by 3: 3, 9, 15, 21, 27 → ids 4, 10, 16, 22, 28
    assert [e.id for e in mine] == [28, 22, 16, 10, 4]
    assert await audit.entries(subject="recording:nope") == []
    assert len(await audit.entries()) == 30  # default limit 100


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": True},
        {"before_id": 0},
        {"subject": ""},
        {"actor": "a" * 65},
    ],
)
async def test_entries_refuses_out_of_bounds(audit: AuditLog, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await audit.entries(**kwargs)


def test_verify_batch_must_be_positive(sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(ValueError):
        AuditLog(sessions, verify_batch=0)


# --- any edit of any entry is detected --------------------------------------------------------

printable = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "S"]) | st.just(" "), min_size=1
)
actors = printable.filter(lambda s: len(s) <= 64)
actions = st.from_regex(r"[a-z][a-z0-9-]{0,6}(\.[a-z][a-z0-9-]{0,6}){0,2}", fullmatch=True)
subjects = printable.filter(lambda s: len(s) <= 255)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
details = st.dictionaries(st.text(max_size=5), json_values, max_size=4).filter(
    lambda d: len(json.dumps(d, separators=(",", ":"))) <= MAX_DETAIL_BYTES
)
entries_st = st.tuples(actors, actions, subjects, details)
FIELDS = ("id", "at", "actor", "action", "subject", "detail", "prev_hash", "hash")


def canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def new_value(data: st.DataObject, field: str, old: Any, n: int) -> Any:
    """A value for `field` that differs from `old` (as stored, not just as Python sees it)."""
    if field == "id":
        return data.draw(st.integers(-1000, 1000).filter(lambda v: not 1 <= v <= n), label="id")
    if field == "at":
        shift = data.draw(st.integers(-(10**9), 10**9).filter(bool), label="µs")
        return old + timedelta(microseconds=shift)
    if field in ("prev_hash", "hash"):
        hexes = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
        return data.draw(hexes.filter(lambda v: v != old), label=field)
    strategy = {"actor": actors, "action": actions, "subject": subjects}.get(field)
    if strategy is not None:
        return data.draw(strategy.filter(lambda v: v != old), label=field)
    return data.draw(details.filter(lambda v: canonical(v) != canonical(old)), label="detail")


@pytest.fixture
def pristine(template: Path, tmp_path: Path) -> str:
    return copy_of(template, tmp_path)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(chain_entries=st.lists(entries_st, min_size=1, max_size=6), data=st.data())
def test_any_single_field_edit_of_any_entry_is_detected(
    pristine: str, chain_entries: list[tuple[str, str, str, dict[str, Any]]], data: st.DataObject
) -> None:
    async def scenario() -> None:
        engine = create_engine(pristine)
        try:
            await sql(engine, delete(AuditEntry))  # a fresh chain for every example
            audit = AuditLog(create_sessionmaker(engine), wall=Clock(), verify_batch=4)
            for actor, action, subject, detail in chain_entries:
                await audit.append(actor, action, subject, detail)
            assert (await audit.verify()).ok

            victim = data.draw(st.integers(1, len(chain_entries)), label="victim")
            field = data.draw(st.sampled_from(FIELDS), label="field")
            old = getattr(await row(engine, victim), field)
            await sql(
                engine,
                where(victim).values({field: new_value(data, field, old, len(chain_entries))}),
            )

            result = await audit.verify()
            assert not result.ok, (field, result)
            if field != "id":  # a moved entry shows as a gap, where depends on the move
                assert result.first_bad_id == victim, (field, result)
        finally:
            await engine.dispose()

    asyncio.run(scenario())
