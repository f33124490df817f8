"""Keeping and deleting recordings: deletion by hand (files gone, tombstone kept, audited
first), legal hold blocking every kind of deletion, erasure of a customer's or a number's
recordings, retention per queue, and a disk that refuses to remove a file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import Recording, RecordingComment
from callcenter.services.audit import AuditLog
from callcenter.services.qa import QaServices
from callcenter.services.recordings import retention as retention_module
from callcenter.services.recordings.retention import (
    RecordingHeld,
    RecordingNotFound,
    RecordingRetention,
    RemovalFailed,
)

from .qa_fixtures import T0, add_recording


async def row(sessions: async_sessionmaker[AsyncSession], recording_id: int) -> Recording:
    async with sessions() as session:
        found = await session.get(Recording, recording_id)
    assert found is not None
    return found


def keeper(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, **kwargs: object
) -> tuple[RecordingRetention, AuditLog]:
    audit = AuditLog(sessions)
    return RecordingRetention(sessions, tmp_path, audit, **kwargs), audit  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_deleted_recording_loses_its_files_keeps_its_tombstone_and_is_audited_first(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    retention, audit = keeper(sessions, tmp_path)
    recording = await add_recording(sessions, tmp_path, n=1, compressed=True)
    before = await row(sessions, recording)
    wav = tmp_path / before.path
    assert wav.is_file() and wav.with_suffix(".opus").is_file()
    await QaServices.over(sessions).reviews.comment(
        recording, author="quinn", at_seconds=1.0, text="card number read out", queues=None
    )
    await retention.delete(recording, actor="sam", reason="recorded by mistake")
    assert not wav.exists() and not wav.with_suffix(".opus").exists()
    after = await row(sessions, recording)
    assert after.deleted_at is not None and after.peaks is None and after.sha256 == before.sha256
    async with sessions() as session:
        assert (await session.scalars(select(RecordingComment))).all() == []
    [entry] = await audit.entries(subject=f"recording:{recording}")
    assert (entry.actor, entry.action) == ("sam", "recording.delete")
    assert entry.detail["reason"] == "recorded by mistake"
    assert entry.detail["sha256"] == before.sha256 and entry.detail["how"] == "by hand"
    # Gone is gone: a second deletion finds nothing.
    with pytest.raises(RecordingNotFound):
        await retention.delete(recording, actor="sam", reason="again")
    assert (await audit.verify()).ok


@pytest.mark.asyncio
async def test_legal_hold_blocks_deletion_until_released_and_both_are_audited(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    retention, audit = keeper(sessions, tmp_path)
    recording = await add_recording(sessions, tmp_path, n=1)
    with pytest.raises(ValueError, match="reason"):
        await retention.set_legal_hold(recording, on=True, reason=" ", actor="sam")
    await retention.set_legal_hold(recording, on=True, reason="case 2026-114", actor="sam")
    held = await row(sessions, recording)
    assert held.legal_hold and held.legal_hold_reason == "case 2026-114"
    with pytest.raises(RecordingHeld, match="legal hold"):
        await retention.delete(recording, actor="ada", reason="tidy")
    assert (tmp_path / held.path).is_file()
    await retention.set_legal_hold(recording, on=False, reason="case closed", actor="ada")
    assert not (await row(sessions, recording)).legal_hold
    await retention.delete(recording, actor="ada", reason="tidy")
    actions = [e.action for e in reversed(await audit.entries(subject=f"recording:{recording}"))]
    assert actions == ["legal-hold.set", "legal-hold.released", "recording.delete"]
    # A recording still being recorded is not deleted either.
    live = await add_recording(sessions, tmp_path, n=2, state="recording")
    with pytest.raises(RecordingHeld, match="still being recorded"):
        await retention.delete(live, actor="ada", reason="")
    # A viewer limited to other queues cannot hold what they cannot see.
    with pytest.raises(RecordingNotFound):
        await retention.set_legal_hold(
            live, on=True, reason="x", actor="quinn", queues=frozenset({"billing"})
        )


@pytest.mark.asyncio
async def test_erasure_deletes_every_recording_of_a_customer_or_number_except_held_ones(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from callcenter.services.customers import CustomerService

    customers = CustomerService(sessions, default_region="GB")
    vera = await customers.create(name="Vera", phones=["+441632960001"])
    theirs = [
        await add_recording(sessions, tmp_path, n=n, customer_id=vera.id, caller="+441632960001")
        for n in (1, 2, 3)
    ]
    anonymous = await add_recording(sessions, tmp_path, n=4, caller="+441632960777")
    other = await add_recording(sessions, tmp_path, n=5, caller="+441632960999")
    retention, audit = keeper(sessions, tmp_path)
    await retention.set_legal_hold(theirs[1], on=True, reason="complaint", actor="sam")

    done = await retention.erase(actor="ada", reason="GDPR request 17", customer_id=vera.id)
    assert done.erased == [theirs[0], theirs[2]] and done.held == [theirs[1]] and not done.failed
    for recording in done.erased:
        assert (await row(sessions, recording)).deleted_at is not None
    assert (await row(sessions, theirs[1])).deleted_at is None
    [request] = await audit.entries(subject=f"customer:{vera.id}")
    assert request.action == "erasure" and request.detail["held"] == [theirs[1]]

    by_number = await retention.erase(actor="ada", reason="GDPR request 18", number="+441632960777")
    assert by_number.erased == [anonymous]
    assert (await row(sessions, other)).deleted_at is None
    with pytest.raises(ValueError):
        await retention.erase(actor="ada", reason="x")
    with pytest.raises(ValueError):
        await retention.erase(actor="ada", reason="", number="+441632960999")
    assert (await audit.verify()).ok


@pytest.mark.asyncio
async def test_retention_deletes_what_is_past_its_queues_days_and_spares_held_ones(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    now = T0 + dt.timedelta(days=100)
    old_sales = await add_recording(sessions, tmp_path, n=1, queue="sales", started_at=T0)
    new_sales = await add_recording(
        sessions, tmp_path, n=2, queue="sales", started_at=now - dt.timedelta(days=29)
    )
    old_support = await add_recording(sessions, tmp_path, n=3, queue="support", started_at=T0)
    old_direct = await add_recording(sessions, tmp_path, n=4, with_record=False, started_at=T0)
    held_sales = await add_recording(sessions, tmp_path, n=5, queue="sales", started_at=T0)
    retention, audit = keeper(
        sessions,
        tmp_path,
        retention_days={"sales": 30, "support": 365},
        default_days=90,
        now=lambda: now,
    )
    await retention.set_legal_hold(held_sales, on=True, reason="dispute", actor="sam")
    assert await retention.sweep() == 2
    gone = {r for r in (old_sales, new_sales, old_support, old_direct, held_sales)
            if (await row(sessions, r)).deleted_at is not None}  # fmt: skip
    assert gone == {old_sales, old_direct}
    entry = (await audit.entries(subject=f"recording:{old_sales}"))[0]
    assert (entry.actor, entry.detail["how"]) == ("system", "retention")
    assert await retention.sweep() == 0
    assert "sales 30 d" in retention.listening()
    with pytest.raises(ValueError):
        keeper(sessions, tmp_path, retention_days={"sales": 0})


@pytest.mark.asyncio
async def test_a_disk_that_refuses_removal_keeps_the_recording_and_raises_an_alert(
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    retention, _ = keeper(sessions, tmp_path)
    recording = await add_recording(sessions, tmp_path, n=1)

    def refuse(files: list[Path]) -> None:
        raise PermissionError(13, "Permission denied", str(files[0]))

    # Running as root, chmod would not stop the removal: the disk error is injected.
    monkeypatch.setattr(retention_module, "_remove", refuse)
    with pytest.raises(RemovalFailed):
        await retention.delete(recording, actor="sam", reason="x")
    kept = await row(sessions, recording)
    assert kept.deleted_at is None and (tmp_path / kept.path).is_file()
    assert retention.removal_failures == 1 and "ALERT" in caplog.text
    monkeypatch.undo()
    await retention.delete(recording, actor="sam", reason="x")
    assert (await row(sessions, recording)).deleted_at is not None
