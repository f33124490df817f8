"""The two-party room's fast path: packets forwarded without decoding, over real loopback
sockets, and the switches between forwarding and mixing that the receivers must not notice."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import numpy as np
import pytest

import callcenter.engine.media.leg as leg_module
from callcenter.engine.media import MediaClock, Room, RtpLeg, RtpPortPool
from callcenter.media import (
    Mode,
    ToneGenerator,
    alaw_decode,
    alaw_encode,
    detect_tone,
    dominant_frequency,
    ulaw_decode,
)
from callcenter.rtp import RtpPacket, ts_delta
from callcenter.sip.offer_answer import Negotiated, answer_offer, build_offer

from ..rtp_peer import HOST, RtpPeer, negotiate, voiced


class TimedPeer(RtpPeer):
    """An RtpPeer that also notes when each packet arrived (loop time)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.arrivals.append(asyncio.get_running_loop().time())
        super().datagram_received(data, addr)

    def audio_between(self, start: float, end: float, pt: int = 0) -> np.ndarray[Any, Any]:
        payloads = [
            bytes(p.payload)
            for p, t in zip(self.received, self.arrivals, strict=True)
            if start <= t < end and p.payload_type == pt
        ]
        return ulaw_decode(b"".join(payloads))


def negotiate_pcma(local_port: int, remote_port: int) -> Negotiated:
    offer = build_offer(address=HOST, port=remote_port, session_id=1, codecs=[("PCMA", 8000)])
    return answer_offer(offer, local_address=HOST, local_port=local_port, session_id=2)


def send_alaw_tone(peer: RtpPeer, dest: int, freq: float, seconds: float) -> asyncio.Future[None]:
    """A-law frames (PT 8) of `freq` every 20 ms, on an absolute schedule."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    gen = ToneGenerator((freq,), -10.0)
    count = round(seconds / 0.02)
    start = loop.time()
    ts0 = peer.seq * 160  # any start will do; the stream's own timeline

    def fire(i: int) -> None:
        if i >= count:
            done.set_result(None)
            return
        payload = alaw_encode(gen.next_frame())
        peer.send_packet(dest, 8, payload, (ts0 + i * 160) & 0xFFFF_FFFF, marker=i == 0)
        loop.call_at(start + (i + 1) * 0.02, fire, i + 1)

    loop.call_soon(fire, 0)
    return done


def alaw_audio(peer: RtpPeer) -> np.ndarray[Any, Any]:
    return alaw_decode(b"".join(bytes(p.payload) for p in peer.received if p.payload_type == 8))


def assert_one_stream(packets: list[RtpPacket], arrivals: list[float] | None = None) -> None:
    """One SSRC, sequence numbers running on by one, timestamps moving forward with time."""
    assert packets
    assert len({p.ssrc for p in packets}) == 1
    seqs = [p.sequence_number for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
    steps = [ts_delta(b.timestamp, a.timestamp) for a, b in itertools.pairwise(packets)]
    # Forward, except that the packets of one telephone event share its start timestamp.
    for step, packet in zip(steps, packets[1:], strict=True):
        assert step > 0 or (step == 0 and packet.payload_type >= 96), steps
    if arrivals is not None:
        # The timestamps tell the time that passed: no jump at a switch.
        for step, (t0, t1) in zip(steps, itertools.pairwise(arrivals), strict=True):
            assert abs(step / 8000 - (t1 - t0)) < 0.08, (step, t1 - t0)
        elapsed = arrivals[-1] - arrivals[0]
        assert abs(sum(steps) / 8000 - elapsed) < 0.1


async def open_pair(
    pool: RtpPortPool, peer_type: type[RtpPeer] = RtpPeer
) -> tuple[RtpLeg, RtpLeg, Any, Any]:
    leg_a, leg_b = await pool.open_leg(), await pool.open_leg()
    peer_a, peer_b = await peer_type.open(), await peer_type.open()
    return leg_a, leg_b, peer_a, peer_b


async def close_all(*things: RtpLeg | RtpPeer) -> None:
    for thing in things:
        if isinstance(thing, RtpLeg):
            await thing.close()
        else:
            thing.close()


@pytest.mark.asyncio
async def test_two_parties_hear_each_other_through_forwarding(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        # Peer B numbers PCMU 96 (RFC 3264 §6.1 allows it): forwarded packets are renumbered.
        leg_b.connect(dataclasses.replace(negotiate(leg_b.port, peer_b.port), payload_type=96))
        room = Room()
        room.add(leg_a, is_caller=True)
        room.add(leg_b)
        clock.add(room)
        await asyncio.sleep(0.05)
        assert room.forwarding
        await asyncio.gather(
            peer_a.send_tone(leg_a.port, 700.0, 1.0), peer_b.send_tone(leg_b.port, 1300.0, 1.0)
        )
        await asyncio.sleep(0.05)
        assert room.forwarding
        clock.remove(room)
        heard_a = voiced(peer_a.audio())[1600:-1600]
        heard_b = voiced(peer_b.audio(pt=96))[1600:-1600]
        assert len(heard_a) >= 4000 and len(heard_b) >= 4000
        assert detect_tone(heard_a, 1300.0) and not detect_tone(heard_a, 700.0)
        assert detect_tone(heard_b, 700.0) and not detect_tone(heard_b, 1300.0)
        assert abs(dominant_frequency(heard_a) - 1300.0) <= 20.0
        assert abs(dominant_frequency(heard_b) - 700.0) <= 20.0
        # Nothing was decoded or mixed: every packet went straight through, but the first
        # of each source, held back by RFC 3550 A.1's probation as when mixing.
        assert leg_a.forwarded == peer_a.sent - 1 and leg_b.forwarded == peer_b.sent - 1
        assert leg_a.jitter.played == leg_b.jitter.played == 0
        assert {p.payload_type for p in peer_b.received} == {96}
        assert {p.payload_type for p in peer_a.received} == {0}
        # Each side sees the engine's own stream, never the other phone's SSRC or numbers.
        assert_one_stream(peer_a.received)
        assert_one_stream(peer_b.received)
        assert peer_a.received[0].ssrc not in (peer_a.ssrc, peer_b.ssrc)
        assert peer_b.received[0].ssrc not in (peer_a.ssrc, peer_b.ssrc)
        assert peer_a.received[0].ssrc != peer_b.received[0].ssrc
        assert peer_b.received[0].marker
        assert leg_a.last_packet_at is not None and leg_b.last_packet_at is not None
        assert leg_a.stats is not None and leg_a.stats.packets == peer_a.sent - 1
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)


@pytest.mark.asyncio
async def test_hold_switches_to_mixing_and_back_in_one_continuous_stream(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool, TimedPeer)
    loop = asyncio.get_running_loop()
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        leg_b.connect(negotiate(leg_b.port, peer_b.port))
        room = Room()
        room.music = ToneGenerator((440.0,), -10.0)
        room.add(leg_a, is_caller=True)
        room.add(leg_b)
        clock.add(room)
        talk = asyncio.gather(
            peer_a.send_tone(leg_a.port, 700.0, 2.4), peer_b.send_tone(leg_b.port, 1300.0, 2.4)
        )
        await asyncio.sleep(0.7)
        assert room.forwarding
        forwarded = leg_a.forwarded
        held_at = loop.time()
        room.set_mode(leg_a, Mode.HOLD)
        assert not room.forwarding  # at once, not at the next tick
        await asyncio.sleep(0.8)
        assert leg_a.forwarded == forwarded
        resumed_at = loop.time()
        room.set_mode(leg_a, Mode.FULL)
        await asyncio.sleep(0.05)
        assert room.forwarding
        await talk
        await asyncio.sleep(0.05)
        clock.remove(room)
        assert leg_a.forwarded > forwarded + 30
        assert leg_b.jitter.played > 20  # decoded and mixed while A was held
        for peer in (peer_a, peer_b):
            assert_one_stream(peer.received, peer.arrivals)
            # Marked: the first packet, and each switch between the fast path and the mixer.
            assert sum(p.marker for p in peer.received) >= 3
        # On hold, A hears the music and not B; B hears nothing of A.
        held_a = peer_a.audio_between(held_at + 0.1, resumed_at)
        assert detect_tone(held_a, 440.0) and not detect_tone(held_a, 1300.0, min_fraction=0.01)
        held_b = peer_b.audio_between(held_at + 0.1, resumed_at)
        assert len(held_b) > 4000 and np.abs(held_b).max() < 300
        # Forwarding again afterwards, each way.
        after_a = peer_a.audio_between(resumed_at + 0.1, resumed_at + 0.5)
        after_b = peer_b.audio_between(resumed_at + 0.1, resumed_at + 0.5)
        assert abs(dominant_frequency(after_a) - 1300.0) <= 20.0
        assert abs(dominant_frequency(after_b) - 700.0) <= 20.0
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)


@pytest.mark.asyncio
async def test_different_codecs_are_mixed_and_still_carry_the_tones(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))  # PCMU
        leg_b.connect(negotiate_pcma(leg_b.port, peer_b.port))
        room = Room()
        room.add(leg_a, is_caller=True)
        room.add(leg_b)
        clock.add(room)
        await asyncio.gather(
            peer_a.send_tone(leg_a.port, 700.0, 1.0),
            send_alaw_tone(peer_b, leg_b.port, 1300.0, 1.0),
        )
        await asyncio.sleep(0.1)
        assert not room.forwarding
        clock.remove(room)
        assert leg_a.forwarded == leg_b.forwarded == 0
        heard_a = voiced(peer_a.audio())[1600:-1600]
        heard_b = voiced(alaw_audio(peer_b))[1600:-1600]
        assert len(heard_a) >= 4000 and len(heard_b) >= 4000
        assert abs(dominant_frequency(heard_a) - 1300.0) <= 20.0
        assert abs(dominant_frequency(heard_b) - 700.0) <= 20.0
        assert {p.payload_type for p in peer_b.received} == {8}
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)


@pytest.mark.asyncio
async def test_renegotiating_another_codec_falls_back_at_once_and_returns(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        leg_b.connect(negotiate(leg_b.port, peer_b.port))
        room = Room()
        room.add(leg_a)
        room.add(leg_b)
        clock.add(room)
        await asyncio.sleep(0.05)
        assert room.forwarding
        leg_b.connect(negotiate_pcma(leg_b.port, peer_b.port))  # a re-INVITE
        assert not room.forwarding
        await asyncio.gather(
            peer_a.send_tone(leg_a.port, 700.0, 0.8),
            send_alaw_tone(peer_b, leg_b.port, 1300.0, 0.8),
        )
        assert not room.forwarding and leg_a.forwarded == 0
        heard_b = voiced(alaw_audio(peer_b))[800:-800]
        assert abs(dominant_frequency(heard_b) - 700.0) <= 20.0
        leg_b.connect(negotiate(leg_b.port, peer_b.port))
        await asyncio.sleep(0.05)
        assert room.forwarding
        await peer_a.send_tone(leg_a.port, 700.0, 0.4)
        assert leg_a.forwarded == 20
        assert_one_stream(peer_b.received)  # PCMA then PCMU: still one stream
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)


@pytest.mark.asyncio
async def test_dtmf_is_relayed_with_the_other_legs_payload_type(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    got: list[str] = []
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port, telephone_event=101))
        leg_b.connect(negotiate(leg_b.port, peer_b.port, telephone_event=100))
        leg_a.on_digit = got.append
        room = Room()
        room.add(leg_a, is_caller=True)
        room.add(leg_b)
        clock.add(room)
        await asyncio.sleep(0.05)
        await peer_a.send_digits(leg_a.port, "12#", event_pt=101)
        await asyncio.sleep(0.05)
        assert room.forwarding
        assert got == ["1", "2", "#"]
        assert peer_b.digits(event_pt=100) == ["1", "2", "#"]
        assert {p.payload_type for p in peer_b.received} == {100}
        assert leg_a.forwarded == peer_a.sent
        assert_one_stream(peer_b.received)
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)


@pytest.mark.asyncio
async def test_dtmf_is_dropped_towards_a_leg_without_telephone_event(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    got: list[str] = []
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        leg_b.connect(negotiate(leg_b.port, peer_b.port, telephone_event=None))
        leg_a.on_digit = got.append
        room = Room()
        room.add(leg_a)
        room.add(leg_b)
        clock.add(room)
        await asyncio.sleep(0.05)
        await peer_a.send_digits(leg_a.port, "7")
        await asyncio.sleep(0.05)
        assert room.forwarding
        assert got == ["7"]
        assert peer_b.received == []
        assert leg_a.forward_dropped == peer_a.sent
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)


@pytest.mark.asyncio
async def test_a_third_address_is_not_forwarded(clock: MediaClock, pool: RtpPortPool) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    intruder = await RtpPeer.open()
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        leg_b.connect(negotiate(leg_b.port, peer_b.port))
        room = Room()
        room.add(leg_a)
        room.add(leg_b)
        clock.add(room)
        talk = peer_a.send_tone(leg_a.port, 1000.0, 1.2)
        await asyncio.sleep(0.2)
        await intruder.send_tone(leg_a.port, 1500.0, 0.8, level_dbfs=0.0)
        await talk
        await asyncio.sleep(0.05)
        assert room.forwarding
        assert leg_a.dropped_foreign == intruder.sent
        assert leg_a.forwarded == peer_a.sent - 1  # all but the A.1 probation packet
        heard = voiced(peer_b.audio())[1600:-1600]
        assert detect_tone(heard, 1000.0)
        assert not detect_tone(heard, 1500.0, min_fraction=0.01)
        assert intruder.received == []
        assert_one_stream(peer_b.received)
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b, intruder)


@pytest.mark.asyncio
async def test_recording_or_a_third_leg_means_mixing(clock: MediaClock, pool: RtpPortPool) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    leg_c = await pool.open_leg()
    peer_c = await RtpPeer.open()
    recorded: list[np.ndarray[Any, Any]] = []
    try:
        for leg, peer in ((leg_a, peer_a), (leg_b, peer_b), (leg_c, peer_c)):
            leg.connect(negotiate(leg.port, peer.port))
        room = Room()
        room.add(leg_a, is_caller=True)
        room.add(leg_b)
        clock.add(room)
        talk = peer_a.send_tone(leg_a.port, 700.0, 1.6)
        await asyncio.sleep(0.2)
        assert room.forwarding
        room.on_recording = lambda frame, n: recorded.append(frame.copy())
        assert not room.forwarding
        await asyncio.sleep(0.4)
        assert len(recorded) >= 15
        room.on_recording = None
        await asyncio.sleep(0.05)
        assert room.forwarding
        room.add(leg_c)
        assert not room.forwarding
        await asyncio.sleep(0.4)
        assert not room.forwarding
        room.remove(leg_c)
        await asyncio.sleep(0.05)
        assert room.forwarding
        await talk
        clock.remove(room)
        left = np.concatenate([r[:, 0] for r in recorded])
        assert detect_tone(voiced(left), 700.0)
        # C heard A while it was in the room; B heard A throughout, in one stream.
        assert detect_tone(voiced(peer_c.audio()), 700.0)
        assert_one_stream(peer_b.received)
    finally:
        await close_all(leg_a, leg_b, leg_c, peer_a, peer_b, peer_c)


@pytest.mark.asyncio
async def test_forwarding_stops_when_the_room_stops_ticking(
    clock: MediaClock, pool: RtpPortPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leg_module, "FORWARD_LEASE", 0.2)  # 2 s in production
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        leg_b.connect(negotiate(leg_b.port, peer_b.port))
        room = Room()
        room.add(leg_a)
        room.add(leg_b)
        clock.add(room)
        await asyncio.sleep(0.05)
        assert room.forwarding
        clock.remove(room)
        await peer_a.send_tone(leg_a.port, 700.0, 0.6)
        # Forwarded while the link's lease lasted (0.2 s), then buffered for a tick
        # that never comes.
        assert 5 <= leg_a.forwarded <= 14
        assert not room.forwarding and leg_a.forwarding_to is None
        clock.add(room)
        await asyncio.sleep(0.05)
        assert room.forwarding
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)


@pytest.mark.asyncio
async def test_digits_sent_on_a_leg_go_out_between_forwarded_audio(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    leg_a, leg_b, peer_a, peer_b = await open_pair(pool)
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        leg_b.connect(negotiate(leg_b.port, peer_b.port))
        room = Room()
        room.add(leg_a)
        room.add(leg_b)
        clock.add(room)
        talk = peer_a.send_tone(leg_a.port, 700.0, 1.0)
        await asyncio.sleep(0.3)
        assert room.forwarding
        leg_b.send_digit("9")
        assert not room.forwarding  # our digit is written by the mixer's ticks
        await talk
        await asyncio.sleep(0.05)
        assert room.forwarding
        assert peer_b.digits() == ["9"]
        assert_one_stream(peer_b.received)
    finally:
        await close_all(leg_a, leg_b, peer_a, peer_b)
