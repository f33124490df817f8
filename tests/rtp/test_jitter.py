"""The jitter buffer: unit behaviour, and a simulated network driven by Hypothesis."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.rtp import JitterBuffer, PushResult, RtpPacket, build_rtp, parse_rtp

SPF = 160
TICK = 0.02


def frame(n: int) -> bytes:
    return n.to_bytes(4, "big", signed=True)


def number(payload: bytes | memoryview | None) -> int | None:
    return None if payload is None else int.from_bytes(payload, "big", signed=True)


def push(
    jb: JitterBuffer,
    n: int,
    arrival: float = 0.0,
    *,
    seq0: int = 1000,
    ts0: int = 50_000,
    marker: bool = False,
    ssrc: int = 1,
) -> PushResult:
    return jb.push_frame(
        (seq0 + n) & 0xFFFF, (ts0 + SPF * n) & 0xFFFFFFFF, frame(n), arrival, marker, ssrc
    )


def pops(jb: JitterBuffer, count: int) -> list[int | None]:
    return [number(jb.pop()) for _ in range(count)]


def test_pre_roll_then_in_order() -> None:
    jb = JitterBuffer()
    assert jb.pop() is None  # nothing yet: not even counted
    assert push(jb, 0) is PushResult.RESYNCED
    assert push(jb, 1) is PushResult.ACCEPTED
    assert pops(jb, 2) == [None, None]  # the two-frame (40 ms) pre-roll
    assert pops(jb, 2) == [0, 1]
    assert jb.underruns == 2 and jb.played == 2 and jb.concealed == 0


def test_reorder_within_the_window() -> None:
    jb = JitterBuffer(depth=3)
    for n in (0, 2, 1, 4, 3):
        push(jb, n)
    assert pops(jb, 8) == [None, None, None, 0, 1, 2, 3, 4]


def test_accepts_a_parsed_packet() -> None:
    jb = JitterBuffer(depth=0)
    packet = parse_rtp(build_rtp(0, 1, 160, 7, b"\xff" * 160))
    assert jb.push(packet, 0.0) is PushResult.RESYNCED
    assert jb.next_timestamp == 160
    assert jb.pop() == b"\xff" * 160


def test_duplicate_late_and_loss() -> None:
    jb = JitterBuffer()
    push(jb, 0)
    push(jb, 1)
    assert push(jb, 1) is PushResult.DUPLICATE
    push(jb, 3)  # 2 is missing
    assert pops(jb, 4) == [None, None, 0, 1]
    assert pops(jb, 1) == [None]  # frame 2: concealed, a later frame is waiting
    assert jb.concealed == 1
    assert push(jb, 2) is PushResult.LATE
    assert push(jb, 0) is PushResult.LATE  # a copy of a played frame
    assert pops(jb, 2) == [3, None]
    assert (jb.late, jb.duplicates, jb.concealed, jb.underruns) == (2, 1, 1, 3)


def test_a_lost_frame_is_reclassified_once_the_next_arrives() -> None:
    jb = JitterBuffer(depth=0)
    push(jb, 0)
    assert pops(jb, 1) == [0]
    assert pops(jb, 2) == [None, None]  # 1 lost, 2 not there yet: underruns for now
    assert jb.underruns == 2
    assert push(jb, 3) is PushResult.ACCEPTED  # so 1 and 2 were lost or late
    assert (jb.concealed, jb.underruns) == (2, 0)
    assert pops(jb, 1) == [3]


def test_timestamp_slots_make_dtx_gaps_silence() -> None:
    # Frames 0-2, a 5-frame silence (timestamps jump, sequence numbers do not), frames 8-9.
    jb = JitterBuffer(depth=1)
    for i, n in enumerate((0, 1, 2)):
        jb.push_frame(100 + i, SPF * n, frame(n), 0.0)
    for i, n in enumerate((8, 9)):
        jb.push_frame(103 + i, SPF * n, frame(n), 0.0)
    assert pops(jb, 11) == [None, 0, 1, 2, None, None, None, None, None, 8, 9]
    assert jb.concealed == 5  # without a marker bit, a gap looks like loss


def test_talkspurt_marker_realigns_the_delay() -> None:
    jb = JitterBuffer(depth=2)
    push(jb, 0, 0.0)
    push(jb, 1, 0.02)
    assert pops(jb, 4) == [None, None, 0, 1]
    pops(jb, 30)  # 600 ms of silence: the play-out point runs on
    # The next talkspurt starts 1 s of timestamps later; its first packet has M=1.
    assert push(jb, 50, 1.0, marker=True) is PushResult.ACCEPTED
    push(jb, 51, 1.02)
    assert pops(jb, 4) == [None, None, 50, 51]
    assert jb.concealed == 0 and jb.dropped == 0


def test_marker_can_move_the_play_out_point_back_over_silence() -> None:
    jb = JitterBuffer(depth=2)
    push(jb, 0)
    assert pops(jb, 3) == [None, None, 0]
    pops(jb, 10)
    # Frame 5 would be late by the old schedule; a talkspurt start re-opens the silence.
    assert push(jb, 5, marker=True) is PushResult.ACCEPTED
    assert 5 in pops(jb, 3)


def test_ssrc_change_resyncs_after_pending_frames() -> None:
    jb = JitterBuffer(depth=2)
    push(jb, 0)
    push(jb, 1)
    # A new source with unrelated numbering: its frame plays after the old ones.
    assert jb.push_frame(7, 999_999, frame(100), 0.0, False, 2) is PushResult.RESYNCED
    assert jb.push_frame(8, 999_999 + SPF, frame(101), 0.0, False, 2) is PushResult.ACCEPTED
    assert pops(jb, 6) == [None, None, 0, 1, 100, 101]
    assert jb.resyncs == 1


def test_timestamp_going_back_while_sequence_goes_on_resyncs() -> None:
    jb = JitterBuffer(depth=1)
    push(jb, 0)
    push(jb, 1)
    assert pops(jb, 3) == [None, 0, 1]
    # seq continues (1002), timestamp restarts far behind: no stall.
    assert jb.push_frame(1002, 7, frame(10), 0.06, False, 1) is PushResult.RESYNCED
    assert jb.push_frame(1003, 7 + SPF, frame(11), 0.08, False, 1) is PushResult.ACCEPTED
    assert [n for n in pops(jb, 4) if n is not None] == [10, 11]


def test_jump_beyond_capacity_skips_ahead() -> None:
    jb = JitterBuffer(depth=2, capacity=8)
    push(jb, 0)
    push(jb, 1)
    push(jb, 2)
    assert pops(jb, 4) == [None, None, 0, 1]
    assert push(jb, 100) is PushResult.ACCEPTED  # 98 frames on: the play-out point jumps
    assert pops(jb, 3) == [None, None, 100]
    assert jb.dropped == 1  # frame 2, passed over
    assert push(jb, 101) is PushResult.ACCEPTED
    assert pops(jb, 1) == [101]
    assert jb.concealed == 0  # a jump is not counted as loss


def test_sequence_restart_needs_two_packets() -> None:
    jb = JitterBuffer(depth=0)
    push(jb, 0)
    push(jb, 1)
    assert pops(jb, 2) == [0, 1]
    # The peer restarts: sequence far behind, timestamp elsewhere.
    assert jb.push_frame(100, 123_456_789, frame(50), 0.0, False, 1) is PushResult.DISCARDED
    assert jb.push_frame(101, 123_456_789 + SPF, frame(51), 0.0, False, 1) is PushResult.RESYNCED
    assert (
        jb.push_frame(102, 123_456_789 + 2 * SPF, frame(52), 0.0, False, 1) is PushResult.ACCEPTED
    )
    assert pops(jb, 2) == [51, 52]
    assert (jb.discarded, jb.resyncs) == (1, 1)


def test_capacity_bounds_what_is_held() -> None:
    jb = JitterBuffer(depth=2, capacity=10)
    for n in range(500):
        push(jb, n)
        assert jb.pending <= 10
    assert jb.pending <= 10
    played = [n for n in pops(jb, 20) if n is not None]
    assert played == sorted(played)
    assert played[-1] == 499


def test_timestamp_and_sequence_wrap() -> None:
    jb = JitterBuffer(depth=1)
    out: list[int | None] = []
    for n in range(20):
        push(jb, n, seq0=65530, ts0=0xFFFFFFFF - 5 * SPF)
        out += pops(jb, 1)
    assert [n for n in out if n is not None] == list(range(19))


def test_trim_removes_excess_delay() -> None:
    # The first packet came 100 ms late, the rest on time: 5 frames of needless delay.
    jb = JitterBuffer(depth=2, trim_window=50)
    push(jb, 0, 0.1)
    for n in range(1, 400):
        push(jb, n, n * TICK)
        if n >= 5:
            jb.pop()
    assert jb.dropped == 5  # one frame per window until the delay is back to target
    assert jb.pending == jb.target


def test_adaptive_target_grows_with_jitter_and_shrinks_when_calm() -> None:
    rng = random.Random(7)
    jb = JitterBuffer(depth=2, adaptive=True, max_depth=10, shrink_after=100)
    n = 0
    for n in range(500):  # 0-120 ms of random delay
        push(jb, n, n * TICK + rng.random() * 0.12)
        jb.pop()
    grown = jb.target
    assert 4 <= grown <= 10
    assert jb.jitter > 0.01
    for m in range(n + 1, n + 3000):  # a calm network
        push(jb, m, m * TICK + 0.2)
        jb.pop()
    assert jb.target == 2


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(depth=5, max_depth=4, adaptive=True)
    with pytest.raises(ValueError):
        JitterBuffer(capacity=12, max_depth=12, adaptive=True)
    with pytest.raises(ValueError):
        JitterBuffer(samples_per_frame=0)
    with pytest.raises(ValueError):
        JitterBuffer(trim_window=-1)


# --- a simulated network -------------------------------------------------------------------


@dataclass
class Delivery:
    frame: int  # the payload and the sequence number offset
    arrival: float
    slot: int = -1  # the timestamp offset in frames (frame + silence so far); -1: = frame
    marker: bool = False
    tick: int = -1  # the tick before whose pop it was pushed
    result: PushResult | None = None


@dataclass
class Pop:
    tick: int
    frame: int  # by the buffer's own next_timestamp, read before the pop
    got: int | None


def run_network(
    jb: JitterBuffer, deliveries: list[Delivery], phase: float, ts0: int, seq0: int
) -> list[Pop]:
    """Push each delivery at its arrival time and pop once per 20 ms tick; the pops made
    once the buffer has a timeline are returned."""
    deliveries.sort(key=lambda d: d.arrival)
    ticks = int((deliveries[-1].arrival - phase) / TICK) + jb.max_depth + 40
    records: list[Pop] = []
    index = 0
    for tick in range(ticks):
        now = phase + tick * TICK
        while index < len(deliveries) and deliveries[index].arrival <= now:
            d = deliveries[index]
            d.tick = tick
            slot = d.frame if d.slot < 0 else d.slot
            d.result = jb.push_frame(
                (seq0 + d.frame) & 0xFFFF,
                (ts0 + SPF * slot) & 0xFFFFFFFF,
                frame(d.frame),
                d.arrival,
                d.marker,
            )
            index += 1
        next_ts = jb.next_timestamp
        got = number(jb.pop())
        if next_ts is not None:
            at = ((next_ts - ts0 + 2**31) % 2**32 - 2**31) // SPF
            records.append(Pop(tick, at, got))
        else:
            assert got is None
    assert index == len(deliveries)
    return records


network = st.fixed_dictionaries(
    {
        "count": st.integers(1, 150),
        "loss": st.floats(0, 0.5),
        "duplicate": st.floats(0, 0.3),
        "max_delay": st.floats(0, 0.3),
        "phase": st.floats(0, 0.0199),
        "ts0": st.integers(0, 2**32 - 1),
        "seq0": st.integers(0, 65535),
        "seed": st.integers(0, 2**32 - 1),
    }
)


def make_deliveries(params: dict[str, float]) -> list[Delivery]:
    """Frame n is sent at n x 20 ms; each is lost, delivered, or delivered twice, after a
    random delay (so reordered)."""
    rng = random.Random(params["seed"])
    deliveries = []
    for n in range(int(params["count"])):
        copies = 0 if rng.random() < params["loss"] else 1
        if copies and rng.random() < params["duplicate"]:
            copies = 2
        for _ in range(copies):
            deliveries.append(Delivery(n, n * TICK + rng.random() * params["max_delay"]))
    return deliveries


@settings(max_examples=200, deadline=None)
@given(network, st.integers(0, 4))
def test_fixed_depth_under_a_simulated_network(params: dict[str, float], depth: int) -> None:
    deliveries = make_deliveries(params)
    if not deliveries:
        return
    jb = JitterBuffer(depth=depth, capacity=32, trim_window=0)
    records = run_network(jb, deliveries, params["phase"], int(params["ts0"]), int(params["seq0"]))

    played = [r.got for r in records if r.got is not None]
    assert played == sorted(set(played)), "output is monotonic, without duplicate frames"
    # Fixed depth, no trim: every tick plays the next slot, whose timestamp names the frame.
    for before, after in itertools.pairwise(records):
        assert after.frame == before.frame + 1
    pop_tick = {r.frame: r.tick for r in records}

    def deadline(n: int) -> int:
        return pop_tick.get(n, -1 if n < records[0].frame else 1 << 30)

    in_time = {d.frame for d in deliveries if d.tick <= deadline(d.frame)}
    copies_in_time = sum(1 for d in deliveries if d.tick <= deadline(d.frame))
    for r in records:
        assert r.got == (r.frame if r.frame in in_time else None)
    # Between the first and the last frame played, the empty ticks are exactly the frames
    # that were lost or arrived after their turn.
    span = range(played[0], played[-1] + 1) if played else range(0)
    empty = sum(1 for r in records if r.got is None and r.frame in span)
    assert empty == sum(1 for n in span if n not in in_time)
    # The buffer's own books: an empty tick after the first frame it accepted, up to the
    # highest frame it heard of is a concealment; every other empty tick is an underrun.
    stored = (PushResult.ACCEPTED, PushResult.RESYNCED)
    lowest = min(d.frame for d in deliveries if d.result in stored)
    highest = max(d.frame for d in deliveries)
    holes = sum(1 for r in records if r.got is None and lowest < r.frame <= highest)
    assert jb.concealed == holes
    assert jb.underruns == len(records) - len(played) - holes
    assert jb.played == len(played)
    assert jb.late == sum(1 for d in deliveries if d.tick > deadline(d.frame))
    assert jb.late == sum(1 for d in deliveries if d.result is PushResult.LATE)
    assert jb.duplicates == copies_in_time - len(in_time)
    assert (jb.pending, jb.dropped, jb.resyncs, jb.discarded) == (0, 0, 0, 0)


def add_silences(deliveries: list[Delivery], seed: int) -> None:
    """Talkspurts of 5-40 frames with 1-60 frames of silence between them: timestamps and
    send times jump, sequence numbers do not, and each talkspurt starts with the marker."""
    rng = random.Random(seed)
    shift: dict[int, int] = {}
    starts: set[int] = set()
    silence = n = 0
    last = max(d.frame for d in deliveries)
    while n <= last:
        starts.add(n)
        length = rng.randint(5, 40)
        for m in range(n, n + length):
            shift[m] = silence
        n += length
        silence += rng.randint(1, 60)
    for d in deliveries:
        d.slot = d.frame + shift[d.frame]
        d.arrival += shift[d.frame] * TICK
        d.marker = d.frame in starts


@settings(max_examples=150, deadline=None)
@given(
    network,
    st.integers(0, 3),
    st.booleans(),
    st.sampled_from([0, 10, 50]),
    st.booleans(),
)
def test_any_mode_keeps_order_and_accounts_for_every_packet(
    params: dict[str, float], depth: int, adaptive: bool, trim_window: int, dtx: bool
) -> None:
    deliveries = make_deliveries(params)
    if not deliveries:
        return
    if dtx:
        add_silences(deliveries, int(params["seed"]))
    jb = JitterBuffer(
        depth=depth,
        adaptive=adaptive,
        max_depth=8,
        capacity=16,
        trim_window=trim_window,
        shrink_after=20,
    )
    records = run_network(jb, deliveries, params["phase"], int(params["ts0"]), int(params["seq0"]))
    played = [r.got for r in records if r.got is not None]
    assert played == sorted(set(played))
    slot_of = {d.frame: d.slot if d.slot >= 0 else d.frame for d in deliveries}
    for r in records:
        if r.got is not None:
            # The frame played is the one the timeline named, or (after a trim dropped
            # one) a later one; never an earlier one.
            assert slot_of[r.got] >= r.frame
    results = [d.result for d in deliveries]
    stored = results.count(PushResult.ACCEPTED) + results.count(PushResult.RESYNCED)
    assert stored == jb.played + jb.pending + jb.dropped
    assert results.count(PushResult.LATE) == jb.late
    assert results.count(PushResult.DUPLICATE) == jb.duplicates
    assert jb.played + jb.concealed + jb.underruns == len(records)
    assert jb.pending == 0


def test_packets_as_objects() -> None:
    jb = JitterBuffer(depth=0)
    packet = RtpPacket(payload_type=0, sequence_number=1, timestamp=0, ssrc=9, payload=b"a")
    jb.push(packet, 0.0)
    assert jb.pop() == b"a"
