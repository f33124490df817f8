"""OutgoingStream: one outgoing stream's numbering across own frames and relayed packets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.rtp import MAX_DROPOUT, MAX_MISORDER, seq_delta, ts_delta
from callcenter.rtp.outgoing import OutgoingStream


def test_own_frames_advance_one_frame_and_jump_after_a_pause() -> None:
    out = OutgoingStream(0x1234, 65534, 0xFFFF_FFA0)
    assert out.frame(10.0) == (0xFFFF_FFA0, True)  # the first packet is marked
    assert out.next_seq() == 65534
    assert out.frame(10.02) == (0x40, False)  # wraps
    assert out.next_seq() == 65535
    assert out.frame(10.07) == (0xE0, False)  # a late tick is no pause
    assert out.next_seq() == 0
    # 0.5 s of nothing: the timestamp tells it (25 frames on), and the marker is set.
    assert out.frame(10.57) == (0xE0 + 25 * 160, True)


def test_relay_maps_by_offset_and_marks_each_new_mapping() -> None:
    out = OutgoingStream(0xABCD, 100, 5000)
    out.frame(1.0)
    out.next_seq()
    # The first relayed packet continues the stream where it stood, marked.
    assert out.relay(0x55, 40000, 900_000, 1.01, 160) == (101, 5160, True)
    assert out.relay(0x55, 40001, 900_160, 1.03, 160) == (102, 5320, False)
    # A loss and a silence gap carry through as such.
    assert out.relay(0x55, 40003, 901_600, 1.2, 160) == (104, 6760, False)
    # A reordered packet keeps its place; one from before the mapping is dropped.
    assert out.relay(0x55, 40002, 900_320, 1.21, 160) == (103, 5480, False)
    assert out.relay(0x55, 39999, 899_840, 1.21, 160) is None
    # Own frames after relaying: the next number, a timestamp after the last packet, marked.
    assert out.frame(1.215) == (6920, True)
    assert out.next_seq() == 105
    # Another source (or the same one again): a new mapping.
    assert out.relay(0x66, 7, 3, 1.23, 160) == (106, 7080, True)
    # A restart of the source (a jump in its sequence numbers): mapped afresh.
    assert out.relay(0x66, 9000, 50, 1.25, 160) == (107, 7240, True)
    assert out.relay(0x66, 9001, 210, 1.27, 160) == (108, 7400, False)


def test_a_switch_counts_the_time_that_passed_to_the_nearest_frame() -> None:
    out = OutgoingStream(1, 0, 1000)
    out.frame(0.0)
    out.next_seq()
    # The source's packet comes 38 ms after our last tick: two frames on, not one.
    assert out.relay(7, 500, 0, 0.038, 160) == (1, 1320, True)
    # And the tick 33 ms after the last relayed packet: two frames on again.
    assert out.frame(0.071) == (1640, True)
    # Between ticks, a late one is no gap (the next tick is on time again).
    assert out.frame(0.1) == (1800, False)


def test_an_event_reaches_as_far_as_its_duration() -> None:
    out = OutgoingStream(1, 0, 0)
    # Event updates share the start timestamp; own audio afterwards starts after the event.
    assert out.relay(9, 10, 1000, 0.0, 160) == (0, 0, True)
    assert out.relay(9, 11, 1000, 0.02, 320) == (1, 0, False)
    assert out.relay(9, 12, 1000, 0.04, 800) == (2, 0, False)
    assert out.frame(0.05) == (800, True)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        OutgoingStream(1 << 32, 0, 0)
    with pytest.raises(ValueError):
        OutgoingStream(1, 0, 0, step=0)
    with pytest.raises(ValueError):
        OutgoingStream(1, 0, 0, interval=0.02, pause_after=0.01)


@dataclass
class Source:
    ssrc: int
    seq: int
    ts: int


own_op = st.tuples(st.just("own"), st.floats(0.0, 0.2))
relay_op = st.tuples(
    st.just("relay"),
    st.integers(0, 1),  # which source
    st.one_of(st.integers(-4, 6), st.sampled_from([-3000, 5000, 20000])),  # seq step
    st.integers(-2, 50),  # frames of timestamp step per sequence step
    st.floats(0.0, 0.2),  # time passed
    st.sampled_from([0, 160, 800]),  # extent
)


@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF_FFFF),
    st.lists(st.one_of(own_op, relay_op), max_size=120),
)
def test_one_continuous_stream_whatever_feeds_it(
    seq0: int, ts0: int, ops: list[tuple[object, ...]]
) -> None:
    out = OutgoingStream(0x1111, seq0, ts0)
    sources = [Source(0xAAAA, 0, 12345), Source(0xBBBB, 65530, 0xFFFF_FF00)]
    now = 0.0
    owner: dict[int, tuple[object, ...]] = {}  # sent sequence number -> what it carried
    offsets: tuple[int, int] | None = None  # of the current mapping
    mapping = 0
    own_count = 0
    last_own_at: float | None = None
    for op in ops:
        before_seq, before_ts, before_at = out.seq, out.ts, out.last_at
        if op[0] == "own":
            dt = op[1]
            assert isinstance(dt, float)
            now += dt
            ts, marker = out.frame(now)
            seq = out.next_seq()
            own_count += 1
            key: tuple[object, ...] = ("own", own_count)
            assert seq == before_seq
            if offsets is not None or before_at is None:
                assert marker
            elif last_own_at is not None and now - last_own_at <= out.pause_after:
                assert (ts, marker) == (before_ts, False)
            offsets = None
            last_own_at = now
            assert ts_delta(ts, before_ts) >= 0
        else:
            _, which, dseq, frames, dt, extent = op
            assert isinstance(which, int) and isinstance(dseq, int)
            assert isinstance(frames, int) and isinstance(dt, float) and isinstance(extent, int)
            now += dt
            src = sources[which]
            src.seq = (src.seq + dseq) & 0xFFFF
            src.ts = (src.ts + dseq * frames * 160) & 0xFFFF_FFFF
            result = out.relay(src.ssrc, src.seq, src.ts, now, extent)
            if result is None:
                assert offsets is not None  # only a packet older than its mapping
                continue
            seq, ts, marker = result
            # The source's losses show as gaps, but a restart is no jump of ours.
            assert -MAX_MISORDER <= seq_delta(seq, before_seq) < MAX_DROPOUT
            new_offsets = ((seq - src.seq) & 0xFFFF, (ts - src.ts) & 0xFFFF_FFFF)
            if marker:
                # A new mapping goes on from where the stream stood.
                mapping += 1
                offsets = new_offsets
                assert seq == before_seq
                assert ts_delta(ts, before_ts) >= 0
            else:
                assert new_offsets == offsets
            key = (mapping, src.ssrc, src.seq)
        # No sequence number is ever given to two different packets (copies aside).
        assert owner.setdefault(seq, key) == key
        # `seq` always follows the highest number sent.
        assert owner.get(out.seq) is None
