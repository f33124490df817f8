"""MediaClock keeps an absolute 20 ms schedule and catches up without bursts."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from callcenter.engine.media import MediaClock


class Recorder:
    def __init__(self, loop: asyncio.AbstractEventLoop, stall_at: int = -1) -> None:
        self.loop = loop
        self.slots: list[int] = []
        self.times: list[float] = []
        self.stall_at = stall_at

    def tick(self, n: int) -> None:
        self.slots.append(n)
        self.times.append(self.loop.time())
        if len(self.slots) == self.stall_at:
            time.sleep(0.15)  # the loop is blocked for 7.5 intervals


@pytest.mark.asyncio
async def test_clock_keeps_its_schedule_over_two_seconds() -> None:
    clock = MediaClock()
    recorder = Recorder(asyncio.get_running_loop())
    clock.add(recorder)
    clock.start()
    await asyncio.sleep(2.0)
    await clock.stop()
    assert abs(clock.ticks - 100) <= 3
    assert clock.late_ticks == 0
    assert clock.max_lateness < 2 * clock.interval
    assert recorder.slots == list(range(1, clock.ticks + 1))


@pytest.mark.asyncio
async def test_clock_skips_missed_slots_after_a_stall() -> None:
    clock = MediaClock()
    recorder = Recorder(asyncio.get_running_loop(), stall_at=10)
    clock.add(recorder)
    clock.start()
    await asyncio.sleep(0.6)
    await clock.stop()
    assert clock.late_ticks == 1 and clock.skipped_slots >= 6
    slots = recorder.slots
    assert all(b > a for a, b in itertools.pairwise(slots))
    assert slots[10] - slots[9] >= 6  # the missed slots were skipped ...
    gaps = [b - a for a, b in zip(recorder.times[10:], recorder.times[11:], strict=False)]
    assert sum(g < 0.005 for g in gaps) <= 1  # ... with at most one catch-up tick
    assert slots[-1] - 30 <= 1  # and the schedule is the same absolute one


@pytest.mark.asyncio
async def test_a_failing_tickable_is_removed_and_the_clock_goes_on() -> None:
    class Broken:
        def tick(self, n: int) -> None:
            raise RuntimeError("boom")

    clock = MediaClock()
    recorder = Recorder(asyncio.get_running_loop())
    clock.add(Broken())
    clock.add(recorder)
    clock.start()
    await asyncio.sleep(0.1)
    await clock.stop()
    assert len(clock) == 1 and len(recorder.slots) >= 3
