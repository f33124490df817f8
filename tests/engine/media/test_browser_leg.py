"""The browser leg: the agent page's audio frames (docs/agent-api.md, "Audio"), its play-out
buffer, re-attaching after a reload, and rooms that hold it next to RTP legs."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.engine.media import (
    BrowserLeg,
    LegBusy,
    MediaClock,
    Room,
    RtpPortPool,
    TonePlayer,
)
from callcenter.engine.media.browser_leg import MAX_DROPOUT, STARVED_RESET, Codec
from callcenter.media import (
    PCM,
    SILENCE,
    Frame,
    ToneGenerator,
    detect_tone,
    dominant_frequency,
    ulaw_decode,
    ulaw_encode,
)

from ..rtp_peer import RtpPeer, negotiate, voiced

MOD = 1 << 32


def message(seq: int, frame: Frame | None = None, codec: int = 0) -> bytes:
    """One page-to-server frame as the page builds it."""
    frame = SILENCE if frame is None else frame
    payload = ulaw_encode(frame) if codec == 0 else frame.astype("<i2").tobytes()
    return struct.pack(">BBHI", 1, codec, 0, seq % MOD) + payload


def marked(k: int) -> Frame:
    """A frame that says which one it is (exact through L16)."""
    return np.full(160, k, dtype=np.int16)


def l16(seq: int, k: int | None = None) -> bytes:
    return message(seq, marked(seq % 1000 if k is None else k), codec=1)


def mark_of(frame: Frame) -> int:
    assert len(set(frame.tolist())) == 1, "not one marked frame"
    return int(frame[0])


def decode_sent(messages: list[bytes]) -> PCM:
    """What the page would play: the payloads of the frames the leg sent, decoded."""
    pcm = [
        ulaw_decode(m[8:]) if m[1] == 0 else np.frombuffer(m[8:], dtype="<i2").astype(np.int16)
        for m in messages
    ]
    return np.concatenate(pcm) if pcm else np.zeros(0, dtype=np.int16)


def attached_leg(
    codec: Codec = "pcmu", target_frames: int = 2, max_frames: int = 6
) -> tuple[BrowserLeg, list[bytes]]:
    sent: list[bytes] = []
    leg = BrowserLeg(codec=codec, target_frames=target_frames, max_frames=max_frames)
    leg.attach(sent.append)
    return leg, sent


def reads(leg: BrowserLeg, n: int) -> list[int | None]:
    """The marks of the next n frames played (None for silence)."""
    out: list[int | None] = []
    for _ in range(n):
        frame = leg.read_frame()
        out.append(None if frame is SILENCE else mark_of(frame))
    return out


# --- the wire format ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["pcmu", "l16"])
def test_sent_frames_carry_the_header_and_count_on(codec: Codec) -> None:
    leg, sent = attached_leg(codec=codec)
    tone = ToneGenerator((1000.0,), -10.0)
    frames = [tone.next_frame().copy() for _ in range(3)]
    for frame in frames:
        leg.write_frame(frame)
    assert leg.frames_out == 3
    size = 168 if codec == "pcmu" else 328
    codec_id = 0 if codec == "pcmu" else 1
    for seq, (msg, frame) in enumerate(zip(sent, frames, strict=True)):
        assert type(msg) is bytes and len(msg) == size
        assert msg[:4] == bytes([1, codec_id, 0, 0])
        assert struct.unpack(">I", msg[4:8])[0] == seq
        if codec == "pcmu":
            assert msg[8:] == ulaw_encode(frame)
        else:
            assert np.array_equal(np.frombuffer(msg[8:], dtype="<i2"), frame)
    # Each message is its own bytes: the web layer may queue them.
    assert len({id(m) for m in sent}) == 3


def test_the_sent_sequence_number_wraps_at_2_32() -> None:
    leg, sent = attached_leg()
    leg._send_seq = MOD - 2  # 2**32 frames take 2.7 years to send
    for _ in range(4):
        leg.write_frame(SILENCE)
    assert [struct.unpack(">I", m[4:8])[0] for m in sent] == [MOD - 2, MOD - 1, 0, 1]
    assert leg.next_seq == 2


@pytest.mark.parametrize("codec", [0, 1])
def test_received_frames_play_after_the_target_delay(codec: int) -> None:
    leg, _ = attached_leg(target_frames=2)
    tone = ToneGenerator((1000.0,), -10.0)
    sent = [tone.next_frame().copy() for _ in range(10)]
    heard: list[Frame] = []
    for seq, frame in enumerate(sent):
        leg.receive(message(seq, frame, codec))
        heard.append(leg.read_frame().copy())
    assert heard[0] is not SILENCE and not heard[0].any() and not heard[1].any()
    expected = sent[:8] if codec == 1 else [ulaw_decode(ulaw_encode(f)) for f in sent[:8]]
    assert all(np.array_equal(a, b) for a, b in zip(heard[2:], expected, strict=True))
    assert leg.frames_in == 10 and leg.played == 8
    assert leg.lost == leg.late == leg.concealed == leg.duplicates == leg.malformed == 0


def test_received_sequence_numbers_wrap_at_2_32() -> None:
    leg, _ = attached_leg(target_frames=0)
    played: list[int | None] = []
    for seq in range(MOD - 3, MOD + 3):
        leg.receive(l16(seq, seq - (MOD - 3)))
        played += reads(leg, 1)
    assert played == [0, 1, 2, 3, 4, 5]
    assert leg.resets == leg.lost == leg.late == 0


# --- the play-out buffer -----------------------------------------------------------------------


def test_reordered_frames_play_in_order() -> None:
    leg, _ = attached_leg(target_frames=2)
    for seq in (0, 2, 1, 4, 3, 5):
        leg.receive(l16(seq))
    assert reads(leg, 8) == [None, None, 0, 1, 2, 3, 4, 5]
    assert leg.lost == leg.late == leg.concealed == 0


def test_duplicates_are_dropped_and_counted() -> None:
    leg, _ = attached_leg(target_frames=0)
    leg.receive(l16(0))
    leg.receive(l16(1))
    leg.receive(l16(1))  # still waiting
    assert reads(leg, 1) == [0]
    leg.receive(l16(0))  # already played
    assert leg.duplicates == 2 and leg.late == 0
    assert reads(leg, 2) == [1, None]


def test_a_lost_frame_is_concealed_and_a_late_one_dropped() -> None:
    leg, _ = attached_leg(target_frames=0)
    for seq in (0, 1, 3, 4):
        leg.receive(l16(seq))
    assert leg.lost == 1
    assert reads(leg, 4) == [0, 1, None, 3]
    assert leg.concealed == 1
    leg.receive(l16(2))  # after its turn
    assert leg.late == 1 and leg.lost == 0  # it came, too late
    assert reads(leg, 1) == [4]
    assert leg.target == 1  # a late frame asks for more delay


def test_malformed_messages_are_counted_never_raised() -> None:
    leg, _ = attached_leg()
    good = message(0)
    bad = [
        b"",
        b"\x01",
        good[:-1],
        good + b"\x00",
        bytes(64 * 1024),
        b"\x02" + good[1:],  # another kind
        bytes([1, 1]) + good[2:],  # says L16, has 160 octets
        bytes([1, 0]) + l16(0)[2:],  # says µ-law, has 320 octets
        bytes([1, 2]) + good[2:],  # unknown codec
        bytes(8 + 160),
    ]
    for data in bad:
        leg.receive(data)
    assert leg.malformed == len(bad)
    assert leg.frames_in == 0 and leg.buffered == 0


def test_the_buffer_resets_when_the_page_restarts_its_count() -> None:
    leg, _ = attached_leg(target_frames=1)
    for seq in range(5000, 5010):
        leg.receive(l16(seq, 1))
    reads(leg, 4)
    for seq in range(3):  # a reload that did not re-attach: the count starts at 0 again
        leg.receive(l16(seq, 2))
    assert leg.resets == 1 and leg.late == 0
    assert reads(leg, 4) == [None, 2, 2, 2]
    # A jump forward beyond any plausible loss is a new stream too.
    leg.receive(l16(10 + MAX_DROPOUT, 3))
    assert leg.resets == 2 and leg.lost == 0
    assert reads(leg, 2) == [None, 3]


def test_a_small_restart_is_caught_by_a_run_of_late_frames() -> None:
    leg, _ = attached_leg(target_frames=0)
    for seq in range(20):
        leg.receive(l16(seq, 1))
        reads(leg, 1)
    for seq in range(4):  # behind us, but within the ring
        leg.receive(l16(seq, 2))
    # Old numbers in sequence (the first two look like repeats of played frames): a restart.
    assert leg.resets == 1 and leg.late + leg.duplicates == 2
    assert reads(leg, 2) == [2, 2]


def test_the_stream_starts_afresh_after_a_silence() -> None:
    leg, _ = attached_leg(target_frames=2)
    for seq in range(5):
        leg.receive(l16(seq, 1))
    reads(leg, 2 + 5 + STARVED_RESET)  # the pre-roll, the frames, then a second of nothing
    leg.receive(l16(5, 2))
    assert leg.resets == 1
    assert reads(leg, 3) == [None, None, 2]  # a new pre-roll, not a late frame played at once
    assert leg.target == 2


def test_frames_beyond_the_ring_keep_the_newest() -> None:
    leg, _ = attached_leg(target_frames=2)
    for seq in range(200):  # nobody ticks the leg
        leg.receive(l16(seq))
    assert leg.buffered < leg._capacity and leg.dropped >= 200 - leg._capacity
    assert leg.lost == 0
    played = [m for m in reads(leg, leg.delay) if m is not None]
    assert played == list(range(200 - len(played), 200))
    # Fed again at the pace of the ticks, the excess goes within a trim window.
    delays = list(smooth(leg, range(200, 260)))
    assert max(delays[-20:]) <= leg.target + 1


def bursty(leg: BrowserLeg, ticks: range) -> None:
    """The page makes frame n at tick n, but its main thread stalls for 100 ms every 200
    ms: the frames of ticks 5-9 of every 10 go out in a lump with the next one's."""
    for tick in ticks:
        if tick % 10 == 0:
            for seq in range(max(tick - 5, 0), tick):
                leg.receive(l16(seq))
        if tick % 10 < 5:
            leg.receive(l16(tick))
        leg.read_frame()


def smooth(leg: BrowserLeg, ticks: range) -> Iterator[int]:
    """A frame every tick, received just before it: the delay after each tick."""
    for seq in ticks:
        leg.receive(l16(seq))
        leg.read_frame()
        yield leg.delay


def test_the_delay_grows_under_bursts_and_comes_back_down() -> None:
    leg, _ = attached_leg(target_frames=2, max_frames=8)
    bursty(leg, range(0, 20))
    assert leg.target >= 5
    played = leg.played
    bursty(leg, range(20, 521))  # ends with a lump delivered
    # Grown enough: the lumps play without a gap (the target may start to come down, but the
    # delay stays: a buffer that empties every 10 ticks is never trimmed).
    assert leg.played - played == 501 and leg.concealed == 0
    delays = list(smooth(leg, range(521, 2521)))
    assert leg.target == 2
    assert max(delays[:100]) >= 5 and max(delays[-200:]) <= 2
    assert leg.lost == leg.late == leg.concealed == leg.resets == 0


# --- sockets: detach, reload ---------------------------------------------------------------------


def test_detached_the_leg_sends_nothing_and_plays_silence() -> None:
    leg, first = attached_leg(target_frames=0)
    for _ in range(3):
        leg.write_frame(SILENCE)
    leg.receive(l16(0))
    leg.detach(first.append)
    assert not leg.attached
    leg.receive(l16(1))
    assert leg.read_frame() is SILENCE
    leg.write_frame(SILENCE)
    leg.write_frame(SILENCE)
    assert leg.frames_unsent == 2 and len(first) == 3
    second: list[bytes] = []
    leg.attach(second.append)  # the reloaded page
    leg.write_frame(SILENCE)
    assert [struct.unpack(">I", m[4:8])[0] for m in first + second] == [0, 1, 2, 3]
    leg.receive(l16(0, 7))  # its count starts at 0: a new stream at once
    assert reads(leg, 1) == [7] and leg.resets == 0 and leg.late == 0


def test_an_old_socket_closing_after_the_new_one_attached_changes_nothing() -> None:
    leg, old = attached_leg()
    new: list[bytes] = []
    leg.attach(new.append)
    leg.detach(old.append)
    assert leg.attached
    leg.write_frame(SILENCE)
    assert len(new) == 1 and not old


def test_closed_the_leg_ignores_everything() -> None:
    leg, sent = attached_leg()
    leg.close()
    assert leg.closed and not leg.attached
    leg.attach(sent.append)
    leg.receive(message(0))
    leg.write_frame(SILENCE)
    assert not sent and leg.frames_in == 0 and leg.frames_unsent == 0
    assert leg.read_frame() is SILENCE


def test_a_failing_sink_is_counted_and_the_tick_goes_on() -> None:
    leg = BrowserLeg()

    def broken(data: bytes) -> None:
        raise RuntimeError("queue full")

    leg.attach(broken)
    leg.write_frame(SILENCE)
    assert leg.send_errors == 1 and leg.frames_out == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=400),
            st.builds(l16, st.integers(0, MOD - 1), st.integers(-100, 100)),
            st.builds(message, st.integers(0, MOD - 1)),
            st.integers(0, 2000).map(lambda s: l16(s)),
            st.none(),  # a tick
        ),
        max_size=300,
    )
)
def test_any_input_never_raises_and_the_buffer_stays_bounded(
    events: list[bytes | None],
) -> None:
    leg, sent = attached_leg(target_frames=2, max_frames=6)
    for event in events:
        if event is None:
            frame = leg.read_frame()
            assert frame.shape == (160,) and frame.dtype == np.int16
            leg.write_frame(frame)
        else:
            leg.receive(event)
        assert 0 <= leg.buffered <= leg._capacity
        assert leg.delay <= leg._capacity + leg.max_frames
        assert leg.target_frames <= leg.target <= leg.max_frames
        assert leg.lost >= 0
    assert len(sent) == events.count(None)


# --- rooms and players -------------------------------------------------------------------------


def test_two_browser_legs_in_a_room_hear_each_other() -> None:
    a, sent_a = attached_leg()
    b, sent_b = attached_leg(codec="l16")
    room = Room()
    room.add(a, is_caller=True)
    room.add(b)
    tone_a, tone_b = ToneGenerator((1000.0,), -10.0), ToneGenerator((700.0,), -10.0)
    for n in range(100):
        a.receive(message(n, tone_a.next_frame()))
        b.receive(message(n, tone_b.next_frame(), codec=1))
        room.tick(n)
        assert not room.forwarding
    heard_b = voiced(decode_sent(sent_b))
    heard_a = voiced(decode_sent(sent_a))
    assert len(heard_a) >= 90 * 160 and len(heard_b) >= 90 * 160
    assert abs(dominant_frequency(heard_b) - 1000.0) < 5
    assert abs(dominant_frequency(heard_a) - 700.0) < 5
    assert not detect_tone(heard_b, 700.0) and not detect_tone(heard_a, 1000.0)


def test_a_browser_leg_belongs_to_one_owner_and_players_drive_it() -> None:
    leg, sent = attached_leg()
    player = TonePlayer(leg, (1000.0,))
    with pytest.raises(LegBusy):
        Room().add(leg)
    for n in range(10):
        player.tick(n)
    assert abs(dominant_frequency(decode_sent(sent)) - 1000.0) < 5
    player.detach()
    room = Room()
    room.add(leg)
    assert leg.owner is room
    room.remove(leg)
    assert leg.owner is None


@pytest.mark.asyncio
async def test_a_room_of_an_rtp_leg_and_a_browser_leg_mixes_never_forwards(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    rtp = await pool.open_leg()
    peer = await RtpPeer.open()
    browser, sent = attached_leg()
    try:
        rtp.connect(negotiate(rtp.port, peer.port))
        room = Room()
        room.add(rtp, is_caller=True)
        room.add(browser)
        tone = ToneGenerator((1000.0,), -10.0)

        class PageAndRoom:
            """The page sends a frame every tick, just before the room's tick."""

            def tick(self, n: int) -> None:
                browser.receive(message(n, tone.next_frame()))
                room.tick(n)

        page_and_room = PageAndRoom()
        clock.add(page_and_room)
        await peer.send_tone(rtp.port, 700.0, 1.0)
        await asyncio.sleep(0.1)
        clock.remove(page_and_room)
        assert not room.forwarding and rtp.forwarding_to is None
        heard_page = voiced(decode_sent(sent))[1600:-1600]
        heard_phone = voiced(peer.audio())[1600:-1600]
        assert len(heard_page) >= 4000 and len(heard_phone) >= 4000
        assert abs(dominant_frequency(heard_page) - 700.0) < 20
        assert abs(dominant_frequency(heard_phone) - 1000.0) < 20
        assert rtp.forwarded == 0 and rtp.jitter.played > 30
    finally:
        await rtp.close()
        peer.close()
