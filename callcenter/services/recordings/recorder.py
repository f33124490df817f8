"""One call's recording as it is made: stereo frames in, byte chunks out, on the event loop.

Owns what goes into the file and when: each tick's (160, 2) frame from whichever room the
caller is in (left the caller, right everyone else), silence for the slots no room gave
(the caller waiting for a transferred-to agent: the file's time stays the call's time), zeros
while paused (payment details never reach the disk), and the timeline of offsets into the
file (pause, resume, hold, transfer, disk trouble). The service drains `take()` once a
second into the file, in a worker thread. Must not know files, the database or the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from callcenter.media import SAMPLE_RATE, SAMPLES_PER_FRAME

FRAME_BYTES = SAMPLES_PER_FRAME * 2 * 2  # stereo int16
MAX_GAP_FRAMES = 50 * 60 * 10
"""A gap longer than 10 minutes is not filled (a clock jump, not a wait): noted instead."""
MAX_PENDING_BYTES = FRAME_BYTES * 50 * 120
"""Two minutes of audio held while the disk refuses it; older audio is dropped, and counted."""
_SILENCE = bytes(FRAME_BYTES)


@dataclass(eq=False)
class CallRecorder:
    call_id: str
    path: str  # relative to the recordings directory
    row_id: int | None = None
    frames: int = 0  # written into the file's timeline (pending included)
    paused: bool = False
    paused_at: float | None = None  # the wall clock when paused (for the automatic resume)
    closed: bool = False
    failed: bool = False
    dropped_frames: int = 0
    timeline: list[dict[str, object]] = field(default_factory=list)
    _pending: list[bytes] = field(default_factory=list)
    _pending_bytes: int = 0
    _last_slot: int | None = None

    @property
    def seconds(self) -> float:
        return self.frames * SAMPLES_PER_FRAME / SAMPLE_RATE

    def write(self, frame: NDArray[np.int16], slot: int) -> None:
        """A room's recording sink: this tick's stereo frame (caller left) at `slot`."""
        if self.closed:
            return
        last = self._last_slot
        if last is not None:
            if slot <= last:
                return  # a second room in the same tick (a handover): one frame per slot
            gap = slot - last - 1
            if gap > MAX_GAP_FRAMES:
                self.note("gap-not-filled", frames=gap)
            elif gap:
                self._append(_SILENCE * gap, gap)
        self._last_slot = slot
        self._append(_SILENCE if self.paused else frame.tobytes(), 1)

    def note(self, kind: str, **data: object) -> None:
        """An event at the current offset of the file."""
        self.timeline.append({"at_seconds": round(self.seconds, 3), "kind": kind, **data})

    def pause(self, by: str, at: float) -> bool:
        """From now on zeros are written (a card number read out is never on disk)."""
        if self.paused or self.closed:
            return False
        self.paused = True
        self.paused_at = at
        self.note("paused", by=by)
        return True

    def resume(self, by: str) -> bool:
        if not self.paused or self.closed:
            return False
        self.paused = False
        self.paused_at = None
        self.note("resumed", by=by)
        return True

    def _append(self, data: bytes, frames: int) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.frames += frames
        while self._pending_bytes > MAX_PENDING_BYTES and len(self._pending) > 1:
            dropped = self._pending.pop(0)
            self._pending_bytes -= len(dropped)
            self.dropped_frames += len(dropped) // FRAME_BYTES

    def take(self) -> bytes:
        """Everything pending, for the file (given back with `untake` if the write fails)."""
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        return data

    def untake(self, data: bytes) -> None:
        """A write failed: keep `data` first in line (bounded like everything pending)."""
        if data:
            self._pending.insert(0, data)
            self._pending_bytes += len(data)
            self._append(b"", 0)  # applies the bound
