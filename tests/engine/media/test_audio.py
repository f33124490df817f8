"""Audio through real loopback sockets, proven by measuring what the peer hears."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from callcenter.engine.media import Echo, MediaClock, Room, RtpPortPool, TonePlayer
from callcenter.media import detect_tone, dominant_frequency

from ..rtp_peer import RtpPeer, negotiate, voiced


@pytest.mark.asyncio
async def test_echo_returns_the_callers_tone(clock: MediaClock, pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, peer.port))
        echo = Echo(leg)
        clock.add(echo)
        await peer.send_tone(leg.port, 1000.0, 1.0)
        await asyncio.sleep(0.15)
        clock.remove(echo)
        heard = voiced(peer.audio())
        assert len(heard) >= 0.8 * 8000
        middle = heard[1600:-1600]
        assert abs(dominant_frequency(middle) - 1000.0) <= 20.0
        assert detect_tone(middle, 1000.0)
        assert leg.latched and leg.dropped_foreign == 0
        assert leg.stats is not None and leg.stats.packets >= 45
    finally:
        peer.close()
        await leg.close()


@pytest.mark.asyncio
async def test_tone_player_sends_1khz(clock: MediaClock, pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, peer.port))
        player = TonePlayer(leg, (1000.0,), -10.0)
        clock.add(player)
        await asyncio.sleep(0.5)
        clock.remove(player)
        audio = peer.audio()
        assert len(audio) >= 20 * 160
        assert abs(dominant_frequency(audio) - 1000.0) <= 20.0
        assert detect_tone(audio, 1000.0)
        # The first packet carries the marker; sequence numbers run on by one.
        packets = [p for p in peer.received if p.payload_type == 0]
        assert packets[0].marker and not any(p.marker for p in packets[1:])
        seqs = [p.sequence_number for p in packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    finally:
        peer.close()
        await leg.close()


@pytest.mark.asyncio
async def test_room_of_two_each_hears_the_other(clock: MediaClock, pool: RtpPortPool) -> None:
    leg_a, leg_b = await pool.open_leg(), await pool.open_leg()
    peer_a, peer_b = await RtpPeer.open(), await RtpPeer.open()
    try:
        leg_a.connect(negotiate(leg_a.port, peer_a.port))
        leg_b.connect(negotiate(leg_b.port, peer_b.port))
        room = Room()
        room.add(leg_a, is_caller=True)
        room.add(leg_b)
        clock.add(room)
        await asyncio.gather(
            peer_a.send_tone(leg_a.port, 700.0, 1.0), peer_b.send_tone(leg_b.port, 1300.0, 1.0)
        )
        await asyncio.sleep(0.1)
        clock.remove(room)
        heard_a = voiced(peer_a.audio())[1600:-1600]
        heard_b = voiced(peer_b.audio())[1600:-1600]
        assert len(heard_a) >= 4000 and len(heard_b) >= 4000
        assert detect_tone(heard_a, 1300.0) and not detect_tone(heard_a, 700.0)
        assert detect_tone(heard_b, 700.0) and not detect_tone(heard_b, 1300.0)
        assert abs(dominant_frequency(heard_a) - 1300.0) <= 20.0
        assert abs(dominant_frequency(heard_b) - 700.0) <= 20.0
    finally:
        peer_a.close()
        peer_b.close()
        await leg_a.close()
        await leg_b.close()


@pytest.mark.asyncio
async def test_room_of_three_mixes_minus_own(clock: MediaClock, pool: RtpPortPool) -> None:
    legs = [await pool.open_leg() for _ in range(3)]
    peers = [await RtpPeer.open() for _ in range(3)]
    tones = (500.0, 900.0, 1400.0)
    try:
        room = Room()
        for leg, peer in zip(legs, peers, strict=True):
            leg.connect(negotiate(leg.port, peer.port))
            room.add(leg)
        clock.add(room)
        await asyncio.gather(
            *(p.send_tone(leg.port, f, 1.0) for p, leg, f in zip(peers, legs, tones, strict=True))
        )
        clock.remove(room)
        for i, peer in enumerate(peers):
            heard = voiced(peer.audio())[1600:-1600]
            for j, freq in enumerate(tones):
                assert detect_tone(heard, freq) == (i != j), (i, freq)
    finally:
        for p in peers:
            p.close()
        for leg in legs:
            await leg.close()
