"""The media clock: one 20 ms tick for every room, player and leg of the process.

Owns the absolute schedule `start + n * interval` (loop.call_at, never a sleep loop), the
catch-up rule when the loop was busy, and the list of `Tickable`s it calls. Must not know
legs, rooms, codecs or packets: a tickable is anything with a fast synchronous `tick(n)`.

Catch-up: a tick that fires more than one interval after its slot is counted in
`late_ticks` and becomes the slot now in progress: the slots missed meanwhile are skipped
(`skipped_slots`), so a stalled loop is answered by one late tick, never a burst. The
schedule stays the absolute one: no drift accumulates from late ticks.
`n` passed to `tick` is the slot number: consecutive ticks normally, a jump after a stall.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.02


class Tickable(Protocol):
    def tick(self, n: int) -> None:
        """Called once per interval, synchronously; must be fast and must not block."""
        ...


class MediaClock:
    """Calls every added `Tickable` once per interval, on an absolute schedule.

    A tickable that raises is removed (and logged once), so one broken room cannot stop
    the clock or fill the log 50 times a second. `add`/`remove` may be called from inside a
    tick; they take effect from the next tick.
    """

    __slots__ = (
        "_handle",
        "_loop",
        "_slot",
        "_start",
        "_tickables",
        "interval",
        "late_ticks",
        "max_lateness",
        "skipped_slots",
        "ticks",
    )

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.ticks = 0
        self.late_ticks = 0
        self.max_lateness = 0.0
        self.skipped_slots = 0
        """The largest delay (seconds) of a tick behind its slot since start."""
        self._tickables: tuple[Tickable, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._start = 0.0
        self._slot = 0

    @property
    def running(self) -> bool:
        return self._handle is not None

    def __len__(self) -> int:
        return len(self._tickables)

    def add(self, tickable: Tickable) -> None:
        if tickable not in self._tickables:
            self._tickables = (*self._tickables, tickable)

    def remove(self, tickable: Tickable) -> None:
        """Stop ticking `tickable` (no error if it is not on the clock)."""
        self._tickables = tuple(t for t in self._tickables if t is not tickable)

    def start(self) -> None:
        """Start ticking; needs a running loop. The first tick is one interval from now."""
        if self._handle is not None:
            raise RuntimeError("MediaClock already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._start = loop.time()
        self._slot = 1
        self._handle = loop.call_at(self._start + self.interval, self._fire)

    async def stop(self) -> None:
        """Stop ticking. Tickables stay registered (a restart ticks them again)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        loop = self._loop
        assert loop is not None
        slot = self._slot
        interval = self.interval
        start = self._start
        lateness = loop.time() - (start + slot * interval)
        if lateness > self.max_lateness:
            self.max_lateness = lateness
        if lateness > interval:
            # The loop was blocked: skip to the slot now in progress rather than burst
            # through the missed ones.
            self.late_ticks += 1
            caught_up = slot + int(lateness / interval)
            self.skipped_slots += caught_up - slot
            slot = caught_up
        self.ticks += 1
        for tickable in self._tickables:
            try:
                tickable.tick(slot)
            except Exception:
                log.exception("media clock: %r failed and was removed", tickable)
                self.remove(tickable)
        if self._handle is None:
            return  # stopped from inside a tick
        self._slot = slot + 1
        self._handle = loop.call_at(start + (slot + 1) * interval, self._fire)
