"""Recordings: every answered call recorded to disk as it happens, and repaired after a crash.

Owns the files under `<recordings_dir>/calls/YYYY/MM/DD/` and their rows in `recordings`:
`begin` (sync, from the ACD on the loop: the recorder buffers at once, the file and the row
are made by a task), one writer task that moves every recorder's pending audio to its file
once a second in a worker thread (so a crash loses at most the last second), `finish` (the
last audio, close with size and sha256, the row complete), and at start the repair of files a
crash left open (header fixed, row 'incomplete' with the duration that survived, reported).

Disk trouble (ENOSPC, EACCES …) never touches the call: the row goes 'failed', an alert is
logged and counted (`disk_failures`), the audio waits in memory (bounded) and writing goes
on when the disk takes it again. Must not know legs, rooms or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import Recording
from callcenter.services.audiofiles import WavFileWriter, repair

from .compress import CompressionError, Format, compress
from .peaks import peaks
from .recorder import CallRecorder

log = logging.getLogger(__name__)

SUBDIR = "calls"
FLUSH_INTERVAL = 0.9
"""Seconds between writes: under a second, so a crash loses less than a second even when the
write itself takes a while."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class RecordingService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        recordings_dir: Path,
        *,
        flush_interval: float = FLUSH_INTERVAL,
        now: Callable[[], dt.datetime] = _now,
        compress_to: Format | None = "opus",
    ) -> None:
        # After close a compressed copy is made (None: WAV only), in a worker, one at a time.
        self.compress_to = compress_to
        self._compressing = asyncio.Semaphore(1)
        self.compression_failures = 0
        self._sessions = sessions
        self.recordings_dir = recordings_dir
        self.flush_interval = flush_interval
        self._now = now
        self._active: dict[CallRecorder, WavFileWriter | None] = {}
        self._opening: dict[CallRecorder, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.disk_failures = 0
        self.repaired = 0

    # --- service ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.repaired = await self.recover()
        self._writer = asyncio.create_task(self._run(), name="recordings")

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        for recorder in list(self._active):
            await self._close(recorder)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def listening(self) -> str:
        return f"recordings: {self.recordings_dir / SUBDIR}; {self.repaired} repaired after a crash"

    @property
    def active(self) -> int:
        return len(self._active)

    # --- recording -------------------------------------------------------------------------

    def begin(self, call_id: str) -> CallRecorder:
        """A recorder for the call, buffering from now; its file and row follow."""
        started = self._now()
        name = f"{started:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}.wav"
        relative = f"{SUBDIR}/{started:%Y/%m/%d}/{name}"
        recorder = CallRecorder(call_id=call_id, path=relative)
        self._active[recorder] = None
        task = asyncio.get_running_loop().create_task(self._open(recorder, started))
        self._opening[recorder] = task
        self._own(task)
        return recorder

    def finish(self, recorder: CallRecorder) -> None:
        """The call is over: the rest is written and the file closed (a task)."""
        if recorder.closed:
            return
        recorder.closed = True
        self._own(asyncio.get_running_loop().create_task(self._close(recorder)))

    async def _open(self, recorder: CallRecorder, started: dt.datetime) -> None:
        path = self.recordings_dir / recorder.path
        async with self._sessions.begin() as session:
            row = Recording(
                call_id=recorder.call_id, path=recorder.path, started_at=started, timeline=[]
            )
            session.add(row)
            await session.flush()
            recorder.row_id = row.id
        try:
            writer = await asyncio.to_thread(WavFileWriter.create, path, channels=2)
        except OSError as exc:
            await self._disk_trouble(recorder, exc)
            return
        if recorder in self._active:
            self._active[recorder] = writer

    async def _run(self) -> None:
        # An absolute schedule: the time the writes take does not stretch the period, so
        # what a crash can lose stays under a second.
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.flush_interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = max(due, loop.time() - self.flush_interval)  # after a stall: no burst
            for recorder in list(self._active):
                async with self._lock:  # never beside a _close of the same file
                    if recorder.closed or recorder not in self._active:
                        continue
                    try:
                        await self._flush(recorder)
                    except Exception:
                        log.exception("recording of %s: flush failed", recorder.call_id)

    async def _flush(self, recorder: CallRecorder) -> None:
        writer = self._active.get(recorder)
        if writer is None:
            if recorder.failed and recorder not in self._opening_pending():
                await self._retry_open(recorder)
            return
        data = recorder.take()
        if not data:
            return
        try:
            await asyncio.to_thread(writer.append, data)
        except OSError as exc:
            recorder.untake(data)
            await self._disk_trouble(recorder, exc)
            return
        if recorder.failed:
            recorder.failed = False
            recorder.note("disk-recovered", dropped_frames=recorder.dropped_frames)
            log.warning("recording of %s: the disk takes it again", recorder.call_id)
            await self._set(recorder, state="recording", failure="")

    def _opening_pending(self) -> set[CallRecorder]:
        return {r for r, task in self._opening.items() if not task.done()}

    async def _retry_open(self, recorder: CallRecorder) -> None:
        try:
            writer = await asyncio.to_thread(
                WavFileWriter.create, self.recordings_dir / recorder.path, channels=2
            )
        except OSError:
            return
        self._active[recorder] = writer

    async def _disk_trouble(self, recorder: CallRecorder, exc: OSError) -> None:
        self.disk_failures += 1
        if recorder.failed:
            return
        recorder.failed = True
        recorder.note("disk-failed", error=exc.strerror or str(exc))
        log.error(
            "ALERT recording of %s: the disk refuses it (%s); the call goes on, its audio is "
            "kept in memory until the disk takes it again",
            recorder.call_id,
            exc,
        )
        await self._set(recorder, state="failed", failure=str(exc)[:255])

    async def _close(self, recorder: CallRecorder) -> None:
        async with self._lock:
            opening = self._opening.pop(recorder, None)
            if opening is not None:
                with contextlib.suppress(Exception):
                    await opening
            writer = self._active.pop(recorder, None)
            recorder.closed = True
            if writer is None:
                await self._set(recorder, ended=True)
                return
            data = recorder.take()
            try:
                if data:
                    await asyncio.to_thread(writer.append, data)
                closed = await asyncio.to_thread(writer.close)
                waveform = await asyncio.to_thread(peaks, writer.path)
            except OSError as exc:
                await self._disk_trouble(recorder, exc)
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(writer.close)
                await self._set(recorder, ended=True)
                return
            await self._set(
                recorder,
                state="incomplete" if recorder.failed or recorder.dropped_frames else "complete",
                ended=True,
                duration_seconds=round(closed.duration_seconds, 3),
                size_bytes=closed.size_bytes,
                sha256=closed.sha256,
                peaks=waveform,
            )
            log.info(
                "recording of %s: %.1f s, %d bytes",
                recorder.call_id,
                closed.duration_seconds,
                closed.size_bytes,
            )
        if self.compress_to is not None:
            await self._compress(recorder, writer.path)

    async def _compress(self, recorder: CallRecorder, path: Path) -> None:
        """The compressed copy, one at a time (ffmpeg and pydub hold the whole file)."""
        assert self.compress_to is not None
        async with self._compressing:
            try:
                done = await asyncio.to_thread(compress, path, fmt=self.compress_to)
            except CompressionError as exc:
                self.compression_failures += 1
                log.error("recording of %s: not compressed: %s", recorder.call_id, exc)
                return
        if recorder.row_id is None:
            return
        try:
            async with self._sessions.begin() as session:
                stored = await session.execute(
                    update(Recording)
                    .where(Recording.id == recorder.row_id, Recording.deleted_at.is_(None))
                    .values(
                        compressed_path=done.path.relative_to(self.recordings_dir).as_posix(),
                        compressed_size_bytes=done.size_bytes,
                        compressed_sha256=done.sha256,
                    )
                )
        except Exception:
            log.exception("recording of %s: its row could not be updated", recorder.call_id)
            return
        if not getattr(stored, "rowcount", 0):
            # Deleted while it was being compressed: the copy goes too.
            await asyncio.to_thread(done.path.unlink, missing_ok=True)

    async def _set(self, recorder: CallRecorder, *, ended: bool = False, **values: object) -> None:
        if recorder.row_id is None:
            return
        values["timeline"] = list(recorder.timeline)
        if ended:
            values["ended_at"] = self._now()
        try:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(Recording).where(Recording.id == recorder.row_id).values(**values)
                )
        except Exception:
            log.exception("recording of %s: its row could not be updated", recorder.call_id)

    # --- after a crash ------------------------------------------------------------------------

    async def recover(self) -> int:
        """Repair the files a previous run left open; their rows become 'incomplete'. Half
        compressed copies (never under their final name) are removed."""
        await asyncio.to_thread(self._remove_partial_copies)
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(Recording).where(
                        Recording.state.in_(("recording", "failed")), Recording.ended_at.is_(None)
                    )
                )
            ).all()
        repaired = 0
        for row in rows:
            path = self.recordings_dir / row.path
            values: dict[str, object] = {"state": "incomplete", "ended_at": self._now()}
            try:
                fixed = await asyncio.to_thread(repair, path)
            except (OSError, ValueError) as exc:
                values["failure"] = f"not repairable: {exc}"[:255]
                log.error("recording %d (%s): %s", row.id, row.call_id, values["failure"])
            else:
                values.update(
                    duration_seconds=round(fixed.duration_seconds, 3),
                    size_bytes=fixed.size_bytes,
                    sha256=fixed.sha256,
                    # When the call was cut, as near as the file tells (not the restart).
                    ended_at=row.started_at + dt.timedelta(seconds=fixed.duration_seconds),
                )
                repaired += 1
            async with self._sessions.begin() as session:
                await session.execute(
                    update(Recording).where(Recording.id == row.id).values(**values)
                )
        if rows:
            log.warning(
                "recordings: %d were being written when the service stopped; %d repaired and "
                "marked incomplete",
                len(rows),
                repaired,
            )
        return repaired

    def _remove_partial_copies(self) -> None:
        for stale in (self.recordings_dir / SUBDIR).glob("**/.*.part"):
            with contextlib.suppress(OSError):
                stale.unlink()
                log.info("recordings: removed %s, a compression a crash interrupted", stale)

    def _own(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recordings task failed", exc_info=task.exception())
