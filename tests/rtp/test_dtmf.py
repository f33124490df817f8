"""RFC 4733 telephone-events: payload vectors, the receiver's exactly-once rule, the sender."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.rtp import (
    EVENT_FLASH,
    DtmfPacket,
    DtmfReceived,
    DtmfReceiver,
    DtmfSender,
    LocalRtpError,
    RtpParseError,
    TelephoneEvent,
    digit_for_event,
    event_for_digit,
    parse_telephone_event,
)
from callcenter.rtp.dtmf import MAX_DURATION

# event 5 | E=1 R=0 volume 10 (0x8A) | duration 800 (0x0320)
END_OF_5 = b"\x05\x8a\x03\x20"
# event 11 (#) | E=0 R=1 volume 63 (0x7F) | duration 0xFFFF
HASH_UPDATE = b"\x0b\x7f\xff\xff"


def test_payload_vectors() -> None:
    assert parse_telephone_event(END_OF_5) == TelephoneEvent(
        event=5, end=True, volume=10, duration=800
    )
    assert TelephoneEvent(event=5, end=True, volume=10, duration=800).to_bytes() == END_OF_5
    update = parse_telephone_event(HASH_UPDATE)
    assert (update.event, update.end, update.reserved, update.volume) == (11, False, True, 63)
    assert update.duration == 0xFFFF
    assert bytes(update) == HASH_UPDATE
    with pytest.raises(RtpParseError):
        parse_telephone_event(b"\x05\x8a\x03")
    with pytest.raises(LocalRtpError):
        TelephoneEvent(event=1, volume=64).to_bytes()
    with pytest.raises(LocalRtpError):
        TelephoneEvent(event=1, duration=0x10000).to_bytes()


def test_digits() -> None:
    assert [event_for_digit(d) for d in "0123456789*#ABCDabcd"] == [*range(16), *range(12, 16)]
    assert "".join(str(digit_for_event(e)) for e in range(16)) == "0123456789*#ABCD"
    assert digit_for_event(EVENT_FLASH) is None
    assert DtmfReceived(event=11, timestamp=0, volume=10).digit == "#"
    for bad in ("E", "", "12", " "):
        with pytest.raises(LocalRtpError):
            event_for_digit(bad)


@given(st.integers(0, 255), st.booleans(), st.booleans(), st.integers(0, 63), st.integers(0, 65535))
def test_payload_round_trip(event: int, end: bool, reserved: bool, volume: int, dur: int) -> None:
    block = TelephoneEvent(event=event, end=end, reserved=reserved, volume=volume, duration=dur)
    assert parse_telephone_event(block.to_bytes()) == block


def send(digit: str, timestamp: int, duration_ms: int = 100) -> list[DtmfPacket]:
    return list(DtmfSender().packets(digit, timestamp, duration_ms))


def test_sender_packets_for_100_ms() -> None:
    packets = send("5", 1000)
    # 20 ms updates: 160, 320, 480, 640; then the end (800) three times. One timestamp.
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [p.end for p in packets] == [False] * 4 + [True] * 3
    assert {p.timestamp for p in packets} == {1000}
    durations = [parse_telephone_event(p.payload).duration for p in packets]
    assert durations == [160, 320, 480, 640, 800, 800, 800]
    assert packets[-1].payload == END_OF_5


def test_sender_short_and_long_events() -> None:
    short = send("#", 0, duration_ms=10)
    assert [p.end for p in short] == [True] * 3
    assert short[0].marker and not short[1].marker
    assert parse_telephone_event(short[0].payload).duration == 80
    # 10 s is 80000 units: a first segment of 0xFFFF, then the rest at timestamp + 0xFFFF.
    long = send("1", 0xFFFF0000, duration_ms=10_000)
    segments = sorted({p.timestamp for p in long})
    assert segments == sorted({0xFFFF0000, (0xFFFF0000 + MAX_DURATION) & 0xFFFFFFFF})
    first = [p for p in long if p.timestamp == 0xFFFF0000]
    assert not any(p.end for p in first)
    assert parse_telephone_event(first[-1].payload).duration == MAX_DURATION
    rest = [p for p in long if p.timestamp != 0xFFFF0000]
    assert not any(p.marker for p in rest)
    assert parse_telephone_event(rest[-1].payload).duration == 80000 - MAX_DURATION
    assert sum(p.marker for p in long) == 1
    with pytest.raises(LocalRtpError):
        send("1", 0, duration_ms=0)
    with pytest.raises(LocalRtpError):
        DtmfSender(volume=64)


def feed_all(receiver: DtmfReceiver, packets: list[DtmfPacket], seq0: int = 0) -> list[str]:
    out = []
    for i, p in enumerate(packets):
        for event in receiver.feed((seq0 + i) & 0xFFFF, p.timestamp, p.marker, p.payload):
            out.append(event.digit or "!")
    return out


def test_receiver_reports_once_at_the_first_packet() -> None:
    receiver = DtmfReceiver()
    packets = send("7", 160)
    first = receiver.feed(0, packets[0].timestamp, True, packets[0].payload)
    assert first == [DtmfReceived(event=7, timestamp=160, volume=10)]
    assert feed_all(receiver, packets[1:], seq0=1) == []


def test_receiver_lost_start_and_only_an_end_packet() -> None:
    receiver = DtmfReceiver()
    packets = send("9", 0)
    assert feed_all(receiver, packets[2:]) == ["9"]
    only_end = send("3", 5000)[-1]
    assert receiver.feed(50, only_end.timestamp, False, only_end.payload)[0].digit == "3"


def test_receiver_same_digit_twice_and_flash() -> None:
    receiver = DtmfReceiver()
    packets = send("1", 0) + send("1", 1600) + list(DtmfSender().packets(EVENT_FLASH, 3200, 200))
    assert feed_all(receiver, packets) == ["1", "1", "!"]


def test_receiver_ignores_a_stale_event() -> None:
    receiver = DtmfReceiver()
    second = send("2", 4000)
    assert feed_all(receiver, second) == ["2"]
    old = send("1", 2000)[-1]  # a digit overtaken by the next one: too late to report
    assert receiver.feed(99, old.timestamp, False, old.payload) == []
    assert receiver.stale == 1


def test_receiver_long_event_segments_are_one_digit() -> None:
    receiver = DtmfReceiver()
    long = send("0", 0xFFFFF000, duration_ms=20_000)  # three segments, across the ts wrap
    assert len({p.timestamp for p in long}) == 3
    assert feed_all(receiver, long) == ["0"]
    # Lose the end of each segment but the last: still one digit.
    receiver = DtmfReceiver()
    kept = [p for i, p in enumerate(long) if i % 7]
    assert feed_all(receiver, kept) == ["0"]
    # A new press of the same digit after the long one ended is a new digit.
    assert feed_all(receiver, send("0", long[-1].timestamp + 40_000), seq0=len(long)) == ["0"]


def test_receiver_reordered_update_does_not_undo_the_end() -> None:
    receiver = DtmfReceiver()
    packets = send("4", 0)
    feed_all(receiver, packets)
    # An old update of the ended event arrives late, then the next segment-like press.
    assert receiver.feed(2, 0, False, packets[1].payload) == []
    later = TelephoneEvent(event=4, duration=160).to_bytes()
    assert receiver.feed(20, MAX_DURATION, False, later)[0].digit == "4"


@settings(max_examples=200, deadline=None)
@given(
    digits=st.lists(st.sampled_from("0123456789*#ABCD"), min_size=1, max_size=8),
    durations=st.lists(st.integers(10, 400), min_size=8, max_size=8),
    gaps=st.lists(st.integers(40, 400), min_size=8, max_size=8),
    loss=st.floats(0, 0.9),
    reorder=st.booleans(),
    duplicate=st.floats(0, 0.3),
    seed=st.integers(0, 2**32 - 1),
    start=st.integers(0, 2**32 - 1),
    seq0=st.integers(0, 65535),
)
def test_lossy_channel_yields_exactly_the_sent_digits(
    digits: list[str],
    durations: list[int],
    gaps: list[int],
    loss: float,
    reorder: bool,
    duplicate: float,
    seed: int,
    start: int,
    seq0: int,
) -> None:
    rng = random.Random(seed)
    sender = DtmfSender()
    channel: list[tuple[int, DtmfPacket]] = []
    timestamp = start
    seq = seq0
    for digit, duration, gap in zip(digits, durations, gaps, strict=False):
        packets = list(sender.packets(digit, timestamp, duration))
        # Any packet may be lost, but never all of a digit's.
        kept = [i for i in range(len(packets)) if rng.random() >= loss]
        kept = kept or [rng.randrange(len(packets))]
        survivors = [(seq + i, packets[i]) for i in kept]
        if reorder and len(survivors) > 1:
            # Swap neighbours inside the digit (the network reorders over tens of ms).
            i = rng.randrange(len(survivors) - 1)
            survivors[i], survivors[i + 1] = survivors[i + 1], survivors[i]
        for s, p in survivors:
            channel.append((s & 0xFFFF, p))
            if rng.random() < duplicate:
                channel.append((s & 0xFFFF, p))
        seq += len(packets) + gap // 20  # audio packets share the sequence space
        timestamp = (timestamp + (duration + gap) * 8) & 0xFFFFFFFF
    receiver = DtmfReceiver()
    got = []
    for s, p in channel:
        got += [event.digit for event in receiver.feed(s, p.timestamp, p.marker, p.payload)]
    assert got == digits


def test_losing_any_single_packet_keeps_every_digit() -> None:
    sender = DtmfSender()
    stream: list[DtmfPacket] = []
    for i, digit in enumerate("1123#"):
        stream += sender.packets(digit, 1000 + i * 2400, 60 + 40 * i)
    for lost in range(len(stream)):
        receiver = DtmfReceiver()
        got = []
        for seq, p in enumerate(stream):
            if seq != lost:
                got += [e.digit for e in receiver.feed(seq, p.timestamp, p.marker, p.payload)]
        assert "".join(str(d) for d in got) == "1123#", lost
