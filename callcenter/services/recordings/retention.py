"""Keeping and deleting recordings: deletion by hand, legal hold, erasure of a customer or a
number (GDPR), and retention per queue.

Owns the one way a recording is deleted (`delete`): refused under legal hold or while the call
is still being recorded; otherwise the audit entry is written first (no entry, no deletion),
the row is claimed as a tombstone in one conditional UPDATE (so a hold set a moment earlier
wins), then the WAV and its compressed copies are removed. A file the disk refuses to remove
puts the row back and raises, with an alert: a recording is never half deleted and silently
left. Erasure and the hourly retention sweep go through the same `delete`, each deletion its own
audit entry, the erasure request one more. Must not know HTTP or roles.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import delete, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import CallRecord, Recording, RecordingComment
from callcenter.services.audit import (
    ERASURE,
    LEGAL_HOLD_RELEASED,
    LEGAL_HOLD_SET,
    RECORDING_DELETE,
    AuditLog,
)

from .catalogue import live_recording
from .compress import ENCODINGS

log = logging.getLogger(__name__)

SYSTEM: Final = "system"
MAX_REASON: Final = 255
SWEEP_INTERVAL: Final = 3600.0
SWEEP_BATCH: Final = 200
MAX_ERASURE: Final = 10_000
MAX_RETENTION_DAYS: Final = 36_500


class RetentionError(Exception):
    """Base of the refusals to keep or delete a recording; the message is for a person."""


class RecordingNotFound(RetentionError):
    pass


class RecordingHeld(RetentionError):
    """Under legal hold (or still being recorded): not deleted."""


class RemovalFailed(RetentionError):
    """The disk refused to remove a file: the recording is kept, and an alert logged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErasureResult:
    erased: list[int]
    held: list[int]
    failed: list[int]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _reason(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise ValueError(f"a reason is at most {MAX_REASON} characters")
    if required and not reason:
        raise ValueError("a reason is required")
    return reason


class RecordingRetention:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        recordings_dir: Path,
        audit: AuditLog,
        *,
        retention_days: Mapping[str, int] | None = None,
        default_days: int | None = None,
        now: Callable[[], dt.datetime] = _now,
        sweep_interval: float = SWEEP_INTERVAL,
    ) -> None:
        # Days a queue's recordings are kept; calls of other queues (or none) keep
        # `default_days` (None: for ever).
        self.retention_days = dict(retention_days or {})
        for queue, days in [*self.retention_days.items(), ("(default)", default_days)]:
            if days is not None and not 1 <= days <= MAX_RETENTION_DAYS:
                raise ValueError(f"retention of {queue}: 1..{MAX_RETENTION_DAYS} days")
        self.default_days = default_days
        self._sessions = sessions
        self.recordings_dir = recordings_dir
        self._audit = audit
        self._now = now
        self.sweep_interval = sweep_interval
        self._task: asyncio.Task[None] | None = None
        self.removal_failures = 0
        self.swept = 0

    # --- service ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.retention_days or self.default_days is not None:
            self._task = asyncio.create_task(self._run(), name="recording-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def listening(self) -> str:
        if not self.retention_days and self.default_days is None:
            return "recording retention: none set (kept until deleted or erased)"
        rules = [f"{q} {d} d" for q, d in sorted(self.retention_days.items())]
        rules.append(f"others {self.default_days} d" if self.default_days else "others kept")
        return "recording retention: " + ", ".join(rules)

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("recording retention: the sweep failed; trying again later")
            await asyncio.sleep(self.sweep_interval)

    # --- one recording -----------------------------------------------------------------------

    async def set_legal_hold(
        self,
        recording_id: int,
        *,
        on: bool,
        reason: str,
        actor: str,
        queues: frozenset[str] | None = None,
    ) -> None:
        reason = _reason(reason, required=on)
        async with self._sessions() as session:
            await _live(session, recording_id, queues)
        await self._audit.append(
            actor,
            LEGAL_HOLD_SET if on else LEGAL_HOLD_RELEASED,
            f"recording:{recording_id}",
            {"reason": reason},
        )
        async with self._sessions.begin() as session:
            done = await session.execute(
                update(Recording)
                .where(Recording.id == recording_id, Recording.deleted_at.is_(None))
                .values(legal_hold=on, legal_hold_reason=reason if on else "")
            )
            if not getattr(done, "rowcount", 0):
                raise RecordingNotFound("no such recording")

    async def delete(
        self,
        recording_id: int,
        *,
        actor: str,
        reason: str,
        how: str = "by hand",
        queues: frozenset[str] | None = None,
    ) -> None:
        reason = _reason(reason, required=False)
        async with self._sessions() as session:
            row = await _live(session, recording_id, queues)
            if row.legal_hold:
                raise RecordingHeld(f"recording {recording_id} is under legal hold")
            if row.state == "recording":
                raise RecordingHeld(f"recording {recording_id} is still being recorded")
            detail: dict[str, object] = {
                "reason": reason,
                "how": how,
                "call_id": row.call_id,
                "sha256": row.sha256 or "",
                "size_bytes": row.size_bytes or 0,
            }
            files = _files_of(self.recordings_dir, row)
        await self._audit.append(actor, RECORDING_DELETE, f"recording:{recording_id}", detail)
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(Recording)
                .where(
                    Recording.id == recording_id,
                    Recording.deleted_at.is_(None),
                    not_(Recording.legal_hold),
                    Recording.state != "recording",
                )
                .values(deleted_at=self._now())
            )
            if not getattr(claimed, "rowcount", 0):
                raise RecordingHeld(f"recording {recording_id} was held or deleted meanwhile")
        try:
            await asyncio.to_thread(_remove, files)
        except OSError as exc:
            self.removal_failures += 1
            log.error(
                "ALERT recording %d: its files could not be removed (%s); it is kept, "
                "deletion must be retried",
                recording_id,
                exc,
            )
            async with self._sessions.begin() as session:
                await session.execute(
                    update(Recording).where(Recording.id == recording_id).values(deleted_at=None)
                )
            raise RemovalFailed(f"the disk refused to remove recording {recording_id}") from exc
        async with self._sessions.begin() as session:
            # The waveform is the audio's shape and comments quote it: both go with it.
            await session.execute(
                update(Recording).where(Recording.id == recording_id).values(peaks=None)
            )
            await session.execute(
                delete(RecordingComment).where(RecordingComment.recording_id == recording_id)
            )
        log.info("recording %d deleted by %s (%s)", recording_id, actor, how)

    # --- many ----------------------------------------------------------------------------------

    async def erase(
        self,
        *,
        actor: str,
        reason: str,
        customer_id: int | None = None,
        number: str | None = None,
    ) -> ErasureResult:
        """Delete every recording of that customer's (or number's) calls; held ones are kept
        and listed. The request is audited before anything is deleted."""
        if (customer_id is None) == (number is None):
            raise ValueError("erase a customer or a number (one of them)")
        reason = _reason(reason, required=True)
        match = (
            CallRecord.customer_id == customer_id
            if customer_id is not None
            else CallRecord.caller == number
        )
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Recording.id, Recording.legal_hold)
                    .join(CallRecord, CallRecord.call_id == Recording.call_id)
                    .where(match, Recording.deleted_at.is_(None))
                    .order_by(Recording.id)
                    .limit(MAX_ERASURE + 1)
                )
            ).all()
        if len(rows) > MAX_ERASURE:
            raise ValueError(f"more than {MAX_ERASURE} recordings: erase in parts")
        subject = f"customer:{customer_id}" if customer_id is not None else f"number:{number}"
        held = [rid for rid, hold in rows if hold]
        wanted = [rid for rid, hold in rows if not hold]
        await self._audit.append(
            actor, ERASURE, subject, {"reason": reason, "recordings": wanted, "held": held}
        )
        erased: list[int] = []
        failed: list[int] = []
        for recording_id in wanted:
            try:
                await self.delete(recording_id, actor=actor, reason=reason, how="erasure")
            except RecordingHeld:
                held.append(recording_id)
            except (RecordingNotFound, RemovalFailed):
                failed.append(recording_id)
            else:
                erased.append(recording_id)
        return ErasureResult(erased=erased, held=sorted(held), failed=failed)

    async def sweep(self) -> int:
        """Delete what is past its queue's retention (held ones stay); how many went."""
        now = self._now()
        rules = [
            (CallRecord.queue == queue, now - dt.timedelta(days=days))
            for queue, days in self.retention_days.items()
        ]
        if self.default_days is not None:
            others = or_(
                CallRecord.queue.is_(None), CallRecord.queue.not_in(list(self.retention_days))
            )
            rules.append((others, now - dt.timedelta(days=self.default_days)))
        deleted = 0
        for which, before in rules:
            while True:
                async with self._sessions() as session:
                    due = (
                        await session.scalars(
                            select(Recording.id)
                            .outerjoin(CallRecord, CallRecord.call_id == Recording.call_id)
                            .where(
                                which,
                                Recording.started_at < before,
                                Recording.deleted_at.is_(None),
                                not_(Recording.legal_hold),
                                Recording.state != "recording",
                            )
                            .order_by(Recording.id)
                            .limit(SWEEP_BATCH)
                        )
                    ).all()
                gone = 0
                for recording_id in due:
                    with contextlib.suppress(RetentionError):
                        await self.delete(
                            recording_id, actor=SYSTEM, reason="retention", how="retention"
                        )
                        gone += 1
                deleted += gone
                if len(due) < SWEEP_BATCH or gone == 0:
                    break
        if deleted:
            log.info(
                "recording retention: %d recordings past their queue's retention deleted", deleted
            )
        self.swept += deleted
        return deleted


async def _live(
    session: AsyncSession, recording_id: int, queues: frozenset[str] | None
) -> Recording:
    recording = await live_recording(session, recording_id, queues)
    if recording is None:
        raise RecordingNotFound("no such recording")
    return recording


def _files_of(recordings_dir: Path, row: Recording) -> list[Path]:
    """The WAV, its compressed copy, and any copy a compression still running may write."""
    base = recordings_dir.resolve()
    wav = (recordings_dir / row.path).resolve()
    candidates = {wav, *(wav.with_suffix(e.suffix) for e in ENCODINGS.values())}
    if row.compressed_path:
        candidates.add((recordings_dir / row.compressed_path).resolve())
    return sorted(p for p in candidates if p.is_relative_to(base))


def _remove(files: list[Path]) -> None:
    for path in files:
        path.unlink(missing_ok=True)


__all__ = [
    "ErasureResult",
    "RecordingHeld",
    "RecordingNotFound",
    "RecordingRetention",
    "RemovalFailed",
    "RetentionError",
]
