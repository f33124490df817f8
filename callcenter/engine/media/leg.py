"""An RTP leg: one party's media stream on one UDP socket.

Owns the socket's datagram callback (size bound, source latching, RTCP/RTP demux, RFC 4733
events, reception statistics, the jitter buffer), and the sending side (own SSRC, sequence
number and timestamp, the marker bit, RFC 4733 digits paced by the clock's ticks, in-band
DTMF when no telephone-event was negotiated).

Must not know calls, dialogs, rooms or the clock: whoever owns the leg on the media clock
(a player or a room) calls `read_frame` and `write_frame` once per tick. Nothing here
creates a task, a future or a log line per packet.

Forwarding (the fast path of a two-party room, `forward_pair`). Two legs with the same codec
may be linked so that each one's admitted packets are re-sent on the other as they arrive,
in the datagram callback: no jitter buffer, no decoding, no tick. The sending leg's own
`OutgoingStream` renumbers them (its SSRC, its sequence numbers and timestamps by offset,
its payload types), so its peer sees one stream across switches between forwarding and
frames written by `write_frame`. RFC 4733 events are still reported (`on_digit`) and are
relayed when the other leg negotiated telephone-event, else dropped. RTCP stays per leg.
The link is a lease that whoever owns the pair renews every tick: if the ticks stop (the
room left the clock), the legs go back to buffering within FORWARD_LEASE seconds. It ends
at once on `close`, on `connect` with another codec and on `send_digit` (digits are
written by `write_frame`).

Latching (security). Packets are accepted only from the address the SDP named, or, within
LATCH_WINDOW seconds of `connect`, from a source that sent LATCH_PACKETS packets in
sequence (a phone behind NAT). The first source accepted is locked in, and we send to it
(symmetric RTP), until `connect` is called again (a re-INVITE). Everything else is dropped
and counted in `dropped_foreign`, so a stranger who guesses the port cannot inject audio.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...media import (
    Codec,
    CodecRegistry,
    DtmfDetector,
    Frame,
    default_registry,
    dtmf_signal,
    frames_of,
)
from ...rtp import (
    DtmfPacket,
    DtmfReceiver,
    DtmfSender,
    JitterBuffer,
    ReceptionStats,
    RtpPacket,
    RtpParseError,
    build_rtp,
    event_for_digit,
    is_rtcp,
    parse_rtp,
)
from ...rtp.errors import LocalRtpError
from ...rtp.outgoing import OutgoingStream
from ...sip.offer_answer import Negotiated
from .errors import MediaSetupError

MAX_DATAGRAM = 1500
"""Larger datagrams are dropped unread: G.711 at 20 ms is 172 octets."""

LATCH_WINDOW = 5.0
"""Seconds after `connect` during which a source other than the SDP's may latch."""

LATCH_PACKETS = 4
"""In-sequence packets a source must send before it can latch (A.1 probation)."""

MAX_CANDIDATES = 4
"""Sources on probation at once; more are dropped (a flood cannot grow memory)."""

MAX_QUEUED_DIGITS = 32

FRAME_INTERVAL = 0.02
PAUSE_AFTER = 3 * FRAME_INTERVAL
"""No `write_frame` for this long is a pause in sending: the next packet carries the marker
and its timestamp jumps by the time that passed (late ticks below this are not pauses)."""

INBAND_GAP_MS = 60
"""Silence after each in-band DTMF tone."""

FORWARD_LEASE = 2.0
"""Seconds a forwarding link lasts without being renewed by `forward_pair` (100 ticks).
Long enough that a loop stalled by load (ticks seen 265 ms late at 750 bridged calls) does
not drop the link, whose re-forming resets the jitter buffers and loses their audio; rooms
unlink their legs explicitly when they end."""

Address = tuple[Any, ...]


class _Protocol(asyncio.DatagramProtocol):
    """The socket's asyncio protocol: forwards to the leg (kept apart so the leg's public
    surface is the media API, not asyncio's callbacks)."""

    __slots__ = ("_leg",)

    def __init__(self, leg: RtpLeg) -> None:
        self._leg = leg

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self._leg._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable after a sendto, typically: the peer went away.
        self._leg.send_errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._leg._lost()


class RtpLeg:
    """One party's RTP stream. Made by `RtpPortPool.open_leg`; `connect` it to the
    negotiated stream, put it in one player or room, and `close` it when the call ends.

    `read_frame` returns a buffer the leg reuses: it is valid until the next `read_frame`
    (copy it to keep it). Counters: `dropped_foreign`, `oversized`, `malformed`,
    `rtcp_ignored`, `unknown_payload`, `wrong_size` (audio not 20 ms), `send_errors`,
    `packets_sent`, `forwarded` (received here and re-sent on the linked leg, see
    `forward_pair`), `forward_dropped` (received while linked but not re-sent: the other
    leg may not send, has no telephone-event, or the packet predates the link); `stats` is
    the current source's ReceptionStats (None before media); `jitter` is the play-out
    buffer (its own counters: played, concealed, late, ...).
    """

    def __init__(
        self,
        port: int,
        *,
        family: int,
        registry: CodecRegistry | None = None,
        on_closed: Callable[[RtpLeg], None] | None = None,
    ) -> None:
        self.port = port
        self.family = family
        self.on_digit: Callable[[str], None] | None = None
        self.last_packet_at: float | None = None
        self.stats: ReceptionStats | None = None
        self.jitter = JitterBuffer(depth=1, adaptive=True, max_depth=8)
        self.owner: object | None = None
        """The player or room the leg is in (a leg is in at most one)."""
        self.dropped_foreign = 0
        self.oversized = 0
        self.malformed = 0
        self.rtcp_ignored = 0
        self.unknown_payload = 0
        self.wrong_size = 0
        self.send_errors = 0
        self.packets_sent = 0
        self.forwarded = 0
        self.forward_dropped = 0
        self.negotiated: Negotiated | None = None
        self._registry = registry if registry is not None else default_registry()
        self._on_closed = on_closed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._closed: asyncio.Future[None] | None = None
        # Receiving.
        self._codec: Codec | None = None
        self._frame_bytes = 0
        self._recv_pt = -1
        self._recv_pt_alt = -1
        self._event_pt = -1
        self._detector: DtmfDetector | None = None  # Goertzel fallback without telephone-event
        self._stats_ssrc = -1
        self._sdp_remote: tuple[str, int] | None = None
        self._latched: Address | None = None
        self._latch_deadline = 0.0
        self._candidates: dict[tuple[str, int], ReceptionStats] = {}
        self._receiver = DtmfReceiver()
        self._decoded: Frame = np.zeros(160, dtype=np.int16)
        # Sending.
        self._remote: tuple[str, int] | None = None
        self._may_send = False
        self._send_pt = 0
        self._send_event_pt: int | None = None
        self._out = OutgoingStream(
            secrets.randbits(32),
            secrets.randbits(16),
            secrets.randbits(32),
            interval=FRAME_INTERVAL,
            pause_after=PAUSE_AFTER,
        )
        self._step = 160
        # Forwarding: the linked leg, and until when the link holds.
        self._forward: RtpLeg | None = None
        self._forward_until = 0.0
        self._payload = bytearray(160)
        self._payload_np = np.frombuffer(self._payload, dtype=np.uint8)
        self._payload_view = memoryview(self._payload)
        self._digits: deque[tuple[str, int]] = deque()
        self._dtmf: Iterator[DtmfPacket] | None = None
        self._inband: deque[Frame] = deque()

    # --- lifecycle ---------------------------------------------------------------------------

    async def _open(self, loop: asyncio.AbstractEventLoop, sock: Any) -> None:
        """Attach to a bound, non-blocking UDP socket (the pool's job)."""
        self._loop = loop
        self._closed = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), sock=sock)
        self._transport = transport

    def _lost(self) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    @property
    def closed(self) -> bool:
        return self._transport is None

    async def close(self) -> None:
        """Close the socket and give the port back to the pool (idempotent)."""
        transport = self._transport
        if transport is None:
            return
        self._unlink()
        self._transport = None
        self._codec = None
        self._remote = None
        transport.close()
        if self._closed is not None:
            await self._closed
        if self._on_closed is not None:
            on_closed, self._on_closed = self._on_closed, None
            on_closed(self)

    # --- negotiation -------------------------------------------------------------------------

    def connect(self, negotiated: Negotiated) -> None:
        """Use the negotiated stream: codec, payload types, remote address, direction.

        Called again on every re-negotiation: the latch is released (a new LATCH_WINDOW
        starts) and, if the codec changed, the jitter buffer starts afresh.
        """
        codec = self._registry.by_name(
            negotiated.encoding_name, negotiated.clock_rate, negotiated.channels
        )
        if codec is None:
            raise MediaSetupError(
                f"no codec for {negotiated.encoding_name}/{negotiated.clock_rate}"
            )
        if codec.frame_bytes != 160 or codec.samples_per_frame != 160:
            raise MediaSetupError(f"{codec.rtpmap}: only 8 kHz, 160-sample frames are carried")
        family = 4 if self.family == socket.AF_INET else 6
        if negotiated.family != family:
            raise MediaSetupError(f"remote is IPv{negotiated.family}, the leg's socket IPv{family}")
        if self._transport is None or self._loop is None:
            raise MediaSetupError("the leg is closed")
        host = _normalize(negotiated.remote_address)
        if codec is not self._codec:
            self._unlink()
            self.jitter.reset()
            self.stats = None
            self._stats_ssrc = -1
        self.negotiated = negotiated
        self._codec = codec
        self._frame_bytes = codec.frame_bytes
        self._step = self._out.step = codec.timestamp_step
        self._recv_pt = negotiated.payload_type
        # RFC 3264 §6.1: the peer may number the codec differently from us; accept both.
        self._recv_pt_alt = codec.payload_type if codec.payload_type is not None else -1
        te = negotiated.telephone_event
        self._event_pt = te if te is not None else -1
        self._send_event_pt = te
        self._detector = DtmfDetector() if te is None else None
        self._send_pt = negotiated.payload_type
        self._may_send = negotiated.may_send
        self._sdp_remote = (host, negotiated.remote_port) if negotiated.remote_port else None
        self._remote = self._sdp_remote
        self._latched = None
        self._candidates.clear()
        self._latch_deadline = self._loop.time() + LATCH_WINDOW

    @property
    def remote(self) -> tuple[str, int] | None:
        """Where audio is sent: the latched source, else the SDP's address."""
        return self._remote

    @property
    def latched(self) -> bool:
        return self._latched is not None

    # --- receiving ---------------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: Address) -> None:
        if len(data) > MAX_DATAGRAM:
            self.oversized += 1
            return
        if addr != self._latched and not self._admit(data, addr):
            self.dropped_foreign += 1
            return
        if is_rtcp(data):
            self.rtcp_ignored += 1
            return
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            self.malformed += 1
            return
        assert self._loop is not None
        now = self._loop.time()
        self.last_packet_at = now
        pt = packet.payload_type
        if pt == self._recv_pt or pt == self._recv_pt_alt:
            payload = packet.payload
            if len(payload) != self._frame_bytes:
                self.wrong_size += 1
                return
            stats = self.stats
            if stats is None or packet.ssrc != self._stats_ssrc:
                assert self._codec is not None
                stats = self.stats = ReceptionStats(packet.sequence_number, self._codec.clock_rate)
                self._stats_ssrc = packet.ssrc
            if stats.update(packet.sequence_number, packet.timestamp, now, len(payload)):
                peer = self._forward
                if peer is None:
                    self.jitter.push(packet, now)
                elif now > self._forward_until:
                    # The lease ran out (nobody ticks the pair): back to buffering.
                    self._unlink()
                    self.jitter.push(packet, now)
                elif peer._relay(packet, peer._send_pt, self._step, now):
                    self.forwarded += 1
                else:
                    self.forward_dropped += 1
        elif pt == self._event_pt:
            payload = packet.payload
            try:
                events = self._receiver.feed(
                    packet.sequence_number, packet.timestamp, packet.marker, payload
                )
            except RtpParseError:
                self.malformed += 1
                return
            on_digit = self.on_digit
            for event in events:
                digit = event.digit
                if digit is not None and on_digit is not None:
                    on_digit(digit)
            # Read after on_digit: the callback may have changed who is linked.
            peer = self._forward
            if peer is None:
                return
            if now > self._forward_until:
                self._unlink()
                return
            event_pt = peer._send_event_pt
            # The event's extent is its duration so far (octets 2-3 of the payload).
            if event_pt is not None and peer._relay(
                packet, event_pt, payload[2] << 8 | payload[3], now
            ):
                self.forwarded += 1
            else:
                self.forward_dropped += 1
        else:
            self.unknown_payload += 1

    def _admit(self, data: bytes, addr: Address) -> bool:
        """A packet from a source that is not the latched one: latch it, or refuse it.

        The address the SDP named wins at once, even over a source latched before it by
        probation: otherwise a stranger who got 4 packets in first would keep the call's
        audio (behind NAT the SDP address never sends, so that guess stays)."""
        if self._codec is None or self._loop is None:
            return False
        source = (addr[0], addr[1])
        if source == self._sdp_remote:
            if self._latched is not None and (self._latched[0], self._latched[1]) == source:
                return True
            self._latch(addr)
            return True
        if self._latched is not None:
            return False
        now = self._loop.time()
        if now > self._latch_deadline or is_rtcp(data):
            return False
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            return False
        pt = packet.payload_type
        if pt != self._recv_pt and pt != self._recv_pt_alt and pt != self._event_pt:
            return False
        probation = self._candidates.get(source)
        if probation is None:
            if len(self._candidates) >= MAX_CANDIDATES:
                return False
            probation = ReceptionStats(packet.sequence_number, min_sequential=LATCH_PACKETS)
            self._candidates[source] = probation
        if not probation.update(packet.sequence_number, packet.timestamp, now):
            return False
        self._latch(addr)
        return True

    def _latch(self, addr: Address) -> None:
        self._latched = addr
        self._remote = (addr[0], addr[1])
        self._candidates.clear()

    def read_frame(self) -> Frame | None:
        """This tick's frame from the jitter buffer, decoded; None for nothing to play.

        The returned array is the leg's own buffer, overwritten by the next call."""
        codec = self._codec
        if codec is None:
            return None
        payload = self.jitter.pop()
        if payload is None:
            return None
        frame = codec.decode(payload, out=self._decoded)
        detector = self._detector
        if detector is not None and self.on_digit is not None:
            # No RFC 4733 with this peer: its keypad arrives as tones in the audio.
            for digit in detector.feed(frame):
                self.on_digit(digit)
        return frame

    # --- sending -----------------------------------------------------------------------------

    def write_frame(self, frame: Frame) -> None:
        """Send one 20 ms frame (or, while a digit is being sent, its next event packet).

        A no-op before `connect`, after `close`, and while the direction forbids sending.
        After a pause (moved between players, hold) or packets forwarded from a linked leg,
        the packet carries the marker and a timestamp that tells the time that passed.
        """
        transport = self._transport
        remote = self._remote
        codec = self._codec
        if transport is None or remote is None or codec is None or not self._may_send:
            return
        assert self._loop is not None
        out = self._out
        ts, marker = out.frame(self._loop.time())
        if (self._dtmf is not None or self._digits) and self._next_digit_packet(
            transport, remote, ts
        ):
            return
        inband = self._inband
        if inband:
            frame = inband.popleft()
        codec.encode_into(frame, self._payload_np)
        transport.sendto(
            build_rtp(self._send_pt, out.next_seq(), ts, out.ssrc, self._payload_view, marker),
            remote,
        )
        self.packets_sent += 1

    def _next_digit_packet(
        self, transport: asyncio.DatagramTransport, remote: tuple[str, int], ts: int
    ) -> bool:
        """Send this tick's telephone-event packet instead of audio; False if none is due."""
        event_pt = self._send_event_pt
        if self._dtmf is None:
            digit, duration_ms = self._digits.popleft()
            if event_pt is None:
                # No RFC 4733 with this peer: play the digit in-band instead.
                tone = dtmf_signal(digit, tone_ms=duration_ms, gap_ms=INBAND_GAP_MS)
                self._inband.extend(frames_of(tone))
                return False
            assert self._codec is not None
            sender = DtmfSender(clock_rate=self._codec.clock_rate, packet_interval=self._step)
            self._dtmf = sender.packets(digit, ts, duration_ms)
        packet = next(self._dtmf, None)
        if packet is None or event_pt is None:
            # That digit is done: one tick of audio separates it from the next.
            self._dtmf = None
            return False
        out = self._out
        transport.sendto(
            build_rtp(
                event_pt, out.next_seq(), packet.timestamp, out.ssrc, packet.payload, packet.marker
            ),
            remote,
        )
        self.packets_sent += 1
        return True

    def send_digit(self, digit: str, duration_ms: int = 100) -> None:
        """Queue a DTMF digit: RFC 4733 events (in-band tones if the peer has none), sent
        one packet per tick in place of audio by whoever calls `write_frame`."""
        event_for_digit(digit)  # raises LocalRtpError for a non-digit
        if not 20 <= duration_ms <= 5000:
            raise LocalRtpError(f"digit duration out of range: {duration_ms} ms")
        if len(self._digits) >= MAX_QUEUED_DIGITS:
            raise LocalRtpError("too many digits queued")
        self._digits.append((digit, duration_ms))
        # Our own digits go out through write_frame: stop forwarding until they are sent.
        self._unlink()

    @property
    def sending_digits(self) -> bool:
        """True while queued digits (RFC 4733 or in-band) are still to be written."""
        return bool(self._digits or self._dtmf is not None or self._inband)

    # --- forwarding --------------------------------------------------------------------------

    @property
    def forwarding_to(self) -> RtpLeg | None:
        """The leg this one's packets are forwarded to (see `forward_pair`), if any."""
        return self._forward

    def _relay(self, packet: RtpPacket, pt: int, extent: int, now: float) -> bool:
        """Send a packet received on the linked leg, renumbered as our own; False if not
        sent (no remote yet, sending not allowed, or older than the relay mapping)."""
        transport = self._transport
        remote = self._remote
        if transport is None or remote is None or not self._may_send:
            return False
        out = self._out
        mapped = out.relay(packet.ssrc, packet.sequence_number, packet.timestamp, now, extent)
        if mapped is None:
            return False
        seq, ts, marker = mapped
        transport.sendto(
            build_rtp(pt, seq, ts, out.ssrc, packet.payload, marker or packet.marker), remote
        )
        self.packets_sent += 1
        return True

    def _unlink(self) -> None:
        """Stop forwarding both ways between this leg and its linked one (idempotent)."""
        peer = self._forward
        if peer is None:
            return
        self._forward = None
        if peer._forward is self:
            peer._forward = None

    def __repr__(self) -> str:
        return f"<RtpLeg port={self.port} remote={self._remote} latched={self.latched}>"


def forward_pair(a: RtpLeg, b: RtpLeg) -> bool:
    """Link `a` and `b` so that each one's packets are forwarded to the other (or renew the
    link for another FORWARD_LEASE); False, and neither forwards, when they cannot be:
    a leg not connected or closed, different codecs, or digits of our own being sent.

    Call it every tick for as long as the pair should forward: a link not renewed ends by
    itself. While linked, neither leg's jitter buffer is fed, so `read_frame` returns None
    and `write_frame` need not be called. `unlink_pair` ends it at once.
    """
    loop = a._loop
    if a._forward is b and b._forward is a:
        assert loop is not None
        a._forward_until = b._forward_until = loop.time() + FORWARD_LEASE
        return True
    ca, cb = a._codec, b._codec
    if (
        ca is None
        or cb is None
        or loop is None
        or a._transport is None
        or b._transport is None
        or not (ca is cb or _same_codec(ca, cb))
        or a.sending_digits
        or b.sending_digits
    ):
        unlink_pair(a, b)
        return False
    a._unlink()
    b._unlink()
    a._forward, b._forward = b, a
    a._forward_until = b._forward_until = loop.time() + FORWARD_LEASE
    # What was buffered for the mixer is dropped: from now on the peer hears live packets.
    a.jitter.reset()
    b.jitter.reset()
    return True


def unlink_pair(a: RtpLeg, b: RtpLeg) -> None:
    """Stop forwarding between `a` and `b` (no effect on a leg linked to another)."""
    if a._forward is b:
        a._unlink()
    if b._forward is a:
        b._unlink()


def _same_codec(a: Codec, b: Codec) -> bool:
    """The same audio format: payload type numbers may differ, the encoding may not."""
    return (
        a.name.upper() == b.name.upper()
        and a.clock_rate == b.clock_rate
        and a.channels == b.channels
        and a.frame_bytes == b.frame_bytes
    )


def _normalize(address: str) -> str:
    """The address as the socket layer spells it (IPv6 compressed), to compare sources."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address
