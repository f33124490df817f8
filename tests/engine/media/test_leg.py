"""RtpLeg: RFC 4733 both ways, source latching, bounds; the port pool."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from callcenter.engine.media import (
    Echo,
    LegBusy,
    MediaClock,
    PortsExhausted,
    RtpPortPool,
    TonePlayer,
)
from callcenter.media import detect_tone, dtmf_signal

from ..rtp_peer import HOST, RtpPeer, free_even_base, negotiate, voiced


@pytest.mark.asyncio
async def test_send_digit_reaches_the_peer_as_rfc4733(clock: MediaClock, pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, peer.port))
        clock.add(TonePlayer(leg))
        await asyncio.sleep(0.1)
        leg.send_digit("5")
        leg.send_digit("#", duration_ms=60)
        await asyncio.sleep(0.4)
        assert peer.digits() == ["5", "#"]
        events = [p for p in peer.received if p.payload_type == 101]
        assert events[0].marker and sum(p.payload[1] & 0x80 != 0 for p in events) == 6
        # Audio was suppressed while digits went out: one stream, sequence numbers unbroken.
        seqs = [p.sequence_number for p in peer.received]
        assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    finally:
        peer.close()
        await leg.close()


@pytest.mark.asyncio
async def test_received_digits_come_out_in_order(clock: MediaClock, pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    got: list[str] = []
    try:
        leg.connect(negotiate(leg.port, peer.port))
        leg.on_digit = got.append
        clock.add(Echo(leg))
        await peer.send_digits(leg.port, "12#")
        assert got == ["1", "2", "#"]
        assert leg.last_packet_at is not None
    finally:
        peer.close()
        await leg.close()


@pytest.mark.asyncio
async def test_in_band_dtmf_without_telephone_event(clock: MediaClock, pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, peer.port, telephone_event=None))
        clock.add(Echo(leg))
        leg.send_digit("1")
        await asyncio.sleep(0.3)
        heard = voiced(peer.audio())
        assert detect_tone(heard, 697.0) and detect_tone(heard, 1209.0)
        assert not [p for p in peer.received if p.payload_type != 0]
    finally:
        peer.close()
        await leg.close()


@pytest.mark.asyncio
async def test_foreign_source_is_dropped_once_latched(clock: MediaClock, pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    intruder = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, peer.port))
        clock.add(Echo(leg))
        talk = peer.send_tone(leg.port, 1000.0, 1.2)
        await asyncio.sleep(0.2)
        await intruder.send_tone(leg.port, 1500.0, 0.8, level_dbfs=0.0)
        await talk
        await asyncio.sleep(0.1)
        assert leg.dropped_foreign >= 35
        heard = voiced(peer.audio())[1600:-1600]
        assert detect_tone(heard, 1000.0)
        assert not detect_tone(heard, 1500.0, min_fraction=0.01)
        assert intruder.received == []
    finally:
        peer.close()
        intruder.close()
        await leg.close()


@pytest.mark.asyncio
async def test_latches_a_nat_source_after_four_packets(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    """The SDP names one port, media comes from another: latched after probation, and the
    echo then goes back to where the media came from (symmetric RTP)."""
    leg = await pool.open_leg()
    silent = await RtpPeer.open()  # what the SDP says
    real = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, silent.port))
        clock.add(Echo(leg))
        await real.send_tone(leg.port, 1000.0, 0.6)
        await asyncio.sleep(0.1)
        assert leg.remote == (HOST, real.port)
        assert leg.dropped_foreign == 3  # the probation packets
        assert detect_tone(voiced(real.audio()), 1000.0)
        # A third source is a stranger now; the SDP's own address, though, wins the latch
        # back (a stranger who got its 4 packets in first must not keep the call's audio).
        stranger = await RtpPeer.open()
        before = leg.dropped_foreign
        await stranger.send_tone(leg.port, 1500.0, 0.1)
        await asyncio.sleep(0.05)
        assert leg.dropped_foreign == before + 5
        stranger.close()
        await silent.send_tone(leg.port, 1500.0, 0.1)
        await asyncio.sleep(0.05)
        assert leg.dropped_foreign == before + 5
        assert leg.remote == (HOST, silent.port)
    finally:
        silent.close()
        real.close()
        await leg.close()


@pytest.mark.asyncio
async def test_bounds_rtcp_and_garbage_are_counted_not_played(pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    try:
        leg.connect(negotiate(leg.port, peer.port))
        assert peer.transport is not None
        dest = (HOST, leg.port)
        peer.transport.sendto(b"\x80\x00" + bytes(1600), dest)  # oversized
        peer.transport.sendto(b"\x81\xc9\x00\x01" + bytes(4), dest)  # RTCP RR
        peer.transport.sendto(b"\x80", dest)  # too short
        peer.transport.sendto(b"\x80\x00" + bytes(10) + bytes(80), dest)  # 10 ms of PCMU
        peer.transport.sendto(b"\x80\x0d" + bytes(10) + bytes(1), dest)  # comfort noise
        await asyncio.sleep(0.05)
        assert (leg.oversized, leg.rtcp_ignored, leg.malformed) == (1, 1, 1)
        assert (leg.wrong_size, leg.unknown_payload) == (1, 1)
        assert leg.read_frame() is None
    finally:
        peer.close()
        await leg.close()


@pytest.mark.asyncio
async def test_leg_belongs_to_one_player(pool: RtpPortPool) -> None:
    leg = await pool.open_leg()
    try:
        echo = Echo(leg)
        with pytest.raises(LegBusy):
            TonePlayer(leg)
        echo.detach()
        TonePlayer(leg)
    finally:
        await leg.close()


@pytest.mark.asyncio
async def test_pool_hands_out_distinct_even_ports_and_reuses_them() -> None:
    base = free_even_base(4)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind((HOST, base + 2))  # someone else's: skipped
    pool = RtpPortPool(HOST, base, base + 7)  # even ports base, +2, +4, +6
    try:
        legs = [await pool.open_leg() for _ in range(3)]
        ports = [leg.port for leg in legs]
        assert ports == [base, base + 4, base + 6]
        assert pool.in_use == 3
        with pytest.raises(PortsExhausted):
            await pool.open_leg()
        await legs[1].close()
        await legs[1].close()  # idempotent
        assert pool.in_use == 2
        again = await pool.open_leg()
        assert again.port == base + 4
        for leg in (legs[0], legs[2], again):
            await leg.close()
        assert pool.in_use == 0
    finally:
        squatter.close()


@pytest.mark.asyncio
async def test_inband_dtmf_is_detected_when_the_peer_has_no_telephone_event(
    clock: MediaClock, pool: RtpPortPool
) -> None:
    """A peer that negotiated no telephone-event sends its keypad as tones: the leg's
    Goertzel fallback reports the digits, in order, once each."""
    leg = await pool.open_leg()
    peer = await RtpPeer.open()
    digits: list[str] = []
    try:
        leg.connect(negotiate(leg.port, peer.port, telephone_event=None))
        leg.on_digit = digits.append
        clock.add(Echo(leg))
        await peer.send_audio(leg.port, dtmf_signal("4#7", tone_ms=80, gap_ms=80))
        await asyncio.sleep(0.15)
        assert digits == ["4", "#", "7"]
    finally:
        peer.close()
        await leg.close()
