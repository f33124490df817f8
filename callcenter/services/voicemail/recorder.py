"""Recording what a caller says: a `Tickable` that takes a leg's frames into a WAV file.

Owns the recording of one message on the media clock: each tick reads the leg's frame (one per
slot the clock moved, so a stalled loop is made up for) and appends it to a buffer, a missing
frame (lost or late packet, a digit's RFC 4733 events) as 20 ms of silence so that the file
keeps real time; a full buffer (one second) goes to the writer task, which appends it to the
file in a worker thread, off the event loop. It stops at `max_seconds`, on `stop(reason)`
(the caller's '#', the caller gone, the service stopping) or when the disk fails, and tells
`on_stopped` once. Uses only the leg's `read_frame` / `write_frame`; must not know sockets,
calls or the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

import numpy as np

from callcenter.engine.media import RtpLeg
from callcenter.engine.media.players import claim, release
from callcenter.media import SAMPLES_PER_FRAME, SILENCE
from callcenter.services.audiofiles import WavFileWriter

log = logging.getLogger(__name__)

FRAMES_PER_SECOND: Final = 50
FLUSH_FRAMES: Final = FRAMES_PER_SECOND
"""Frames buffered before they go to the file: a crash loses at most this much (1 s)."""

# Why a recording stopped.
STOP_DIGIT: Final = "digit"
STOP_MAX: Final = "max"
STOP_HANGUP: Final = "hangup"
STOP_SHUTDOWN: Final = "shutdown"
STOP_ERROR: Final = "error"


class MessageRecorder:
    """Records `leg` into `writer` from the first tick until it stops.

    `frames` counts the 20 ms frames recorded, `missing` those that were silence for want of a
    packet; `stopped` is the reason once stopped; `error` the disk's error, if any. The writer
    is the caller's to close after `finish()`.
    """

    __slots__ = (
        "_buffer",
        "_fill",
        "_last_slot",
        "_on_stopped",
        "_queue",
        "_task",
        "_writer",
        "error",
        "frames",
        "leg",
        "max_frames",
        "missing",
        "stopped",
    )

    def __init__(
        self,
        leg: RtpLeg,
        writer: WavFileWriter,
        *,
        max_seconds: float,
        on_stopped: Callable[[str], None] | None = None,
        flush_frames: int = FLUSH_FRAMES,
    ) -> None:
        if max_seconds <= 0 or flush_frames <= 0:
            raise ValueError("max_seconds and flush_frames must be positive")
        claim(leg, self)
        self.leg = leg
        self._writer = writer
        self._on_stopped = on_stopped
        self.max_frames = max(1, round(max_seconds * FRAMES_PER_SECOND))
        self.frames = 0
        self.missing = 0
        self.stopped: str | None = None
        self.error: OSError | None = None
        self._buffer = np.zeros(flush_frames * SAMPLES_PER_FRAME, dtype=np.int16)
        self._fill = 0
        self._last_slot: int | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._write())

    @property
    def seconds(self) -> float:
        return self.frames / FRAMES_PER_SECOND

    def tick(self, n: int) -> None:
        if self.stopped is not None:
            return
        leg = self.leg
        last = self._last_slot
        self._last_slot = n
        # After a stalled loop the clock skips slots: record one frame per slot all the same.
        count = 1 if last is None or n <= last else n - last
        for _ in range(count):
            frame = leg.read_frame()
            if frame is None:
                frame = SILENCE
                self.missing += 1
            self._append(frame)
            if self.frames >= self.max_frames:
                self.stop(STOP_MAX)
                break
        leg.write_frame(SILENCE)  # RTP keeps flowing: the caller's side sees a live call

    def _append(self, frame: np.ndarray) -> None:
        fill = self._fill
        self._buffer[fill : fill + SAMPLES_PER_FRAME] = frame
        self._fill = fill = fill + SAMPLES_PER_FRAME
        self.frames += 1
        if fill == len(self._buffer):
            self._flush()

    def _flush(self) -> None:
        if self._fill:
            self._queue.put_nowait(self._buffer[: self._fill].astype("<i2").tobytes())
            self._fill = 0

    def stop(self, reason: str) -> None:
        """Stop recording (idempotent): what is buffered goes to the file, `on_stopped` is told."""
        if self.stopped is not None:
            return
        self.stopped = reason
        self._flush()
        self._queue.put_nowait(None)
        on_stopped, self._on_stopped = self._on_stopped, None
        if on_stopped is not None:
            on_stopped(reason)

    async def _write(self) -> None:
        """The writer task: chunks in order, each appended in a worker thread."""
        while (chunk := await self._queue.get()) is not None:
            if self.error is not None:
                continue  # the file is broken: the rest is dropped
            try:
                await asyncio.to_thread(self._writer.append, chunk)
            except OSError as exc:
                self.error = exc
                self.stop(STOP_ERROR)

    async def finish(self) -> None:
        """Stop (if still recording) and wait until every frame is in the file or `error`."""
        self.stop(STOP_SHUTDOWN)
        await self._task

    def detach(self) -> None:
        release(self.leg, self)

    def __repr__(self) -> str:
        return f"<MessageRecorder {self.seconds:.1f} s {self.leg!r}>"
