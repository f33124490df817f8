"""Shared by the QA and retention tests: recordings on disk with their call records, as a
finished call leaves them (the database fixtures are in conftest.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import CallRecord, Recording
from callcenter.services.audiofiles import WavFileWriter

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


async def add_recording(
    sessions: async_sessionmaker[AsyncSession],
    recordings_dir: Path,
    *,
    n: int,
    queue: str | None = "support",
    caller: str = "+441632960001",
    customer_id: int | None = None,
    started_at: dt.datetime = T0,
    seconds: float = 2.0,
    state: str = "complete",
    with_record: bool = True,
    compressed: bool = False,
) -> int:
    """A closed stereo recording of `seconds` of tone, its row and (by default) its call
    record; returns the recording's id."""
    call_id = f"call-{n}@test"
    path = recordings_dir / "calls" / f"{call_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = WavFileWriter.create(path, channels=2)
    t = np.arange(int(8000 * seconds)) / 8000
    left = (8000 * np.sin(2 * np.pi * 700 * t)).astype(np.int16)
    writer.append(np.stack([left, np.zeros_like(left)], axis=1).astype("<i2").tobytes())
    closed = writer.close()
    compressed_path = None
    if compressed:
        copy = path.with_suffix(".opus")
        copy.write_bytes(b"OggS" + bytes(64))
        compressed_path = copy.relative_to(recordings_dir).as_posix()
    async with sessions.begin() as session:
        if with_record:
            session.add(
                CallRecord(
                    call_id=call_id,
                    caller=caller,
                    customer_id=customer_id,
                    queue=queue,
                    agent="amy",
                    arrived_at=started_at - dt.timedelta(seconds=20),
                    answered_at=started_at,
                    ended_at=started_at + dt.timedelta(seconds=seconds),
                    disposition="answered",
                    timeline=[],
                )
            )
        recording = Recording(
            call_id=call_id,
            path=path.relative_to(recordings_dir).as_posix(),
            state=state,
            channels=2,
            started_at=started_at,
            ended_at=started_at + dt.timedelta(seconds=seconds),
            duration_seconds=closed.duration_seconds,
            size_bytes=closed.size_bytes,
            sha256=closed.sha256,
            timeline=[],
            compressed_path=compressed_path,
        )
        session.add(recording)
        await session.flush()
        return recording.id
