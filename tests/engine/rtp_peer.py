"""A test RTP peer on a loopback UDP port: sends µ-law tone frames and RFC 4733 digits on its
own 20 ms schedule (loop.call_at on an absolute schedule, independent of the engine's media
clock) and keeps every packet it gets, so tests can measure the audio and digits that came back.

One peer is one RTP stream: its SSRC is fixed, the sequence number goes on across bursts, and
the timestamp follows the wall clock as a phone's does (a pause between bursts advances it;
the first packet of each burst carries the marker, RFC 3551 §4.1).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from callcenter.media import (
    PCM,
    SAMPLES_PER_FRAME,
    SILENCE,
    ToneGenerator,
    frames_of,
    ulaw_decode,
    ulaw_encode,
)
from callcenter.rtp import DtmfReceiver, DtmfSender, RtpPacket, RtpParseError, build_rtp, parse_rtp
from callcenter.sip.offer_answer import Negotiated, answer_offer, build_offer

INTERVAL = 0.02
HOST = "127.0.0.1"


class RtpPeer(asyncio.DatagramProtocol):
    """One RTP endpoint on a loopback UDP port. `received` holds every RTP packet that
    arrived (any payload type, any source); `sent` counts the packets sent."""

    def __init__(self) -> None:
        self.received: list[RtpPacket] = []
        self.malformed = 0
        self.sent = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.ssrc = secrets.randbits(32)
        self.seq = secrets.randbits(16)
        self._ts_base = secrets.randbits(32)
        self._epoch: float | None = None  # loop time of the stream's first packet
        self._bursts: dict[asyncio.Future[None], asyncio.Handle] = {}

    @classmethod
    async def open(cls, port: int = 0) -> RtpPeer:
        loop = asyncio.get_running_loop()
        peer = cls()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=(HOST, port))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not registered as a DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.received.append(parse_rtp(data))
        except RtpParseError:
            self.malformed += 1

    def close(self) -> None:
        self.stop()
        if self.transport is not None:
            self.transport.close()

    def stop(self) -> None:
        """Stop every burst still sending (their futures are cancelled)."""
        for done, handle in self._bursts.items():
            handle.cancel()
            done.cancel()
        self._bursts.clear()

    # --- sending -----------------------------------------------------------------------------

    def _timestamp(self, at: float) -> int:
        """The RTP timestamp of the sampling instant `at` (loop time) in this stream."""
        if self._epoch is None:
            self._epoch = at
        frames = round((at - self._epoch) / INTERVAL)
        return (self._ts_base + frames * SAMPLES_PER_FRAME) & 0xFFFF_FFFF

    def _every_tick(self, count: int, send: Callable[[int, float], None]) -> asyncio.Future[None]:
        """Call send(i, t) for i in range(count) at t = start + i * 20 ms; the future is done
        after the last one."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        start = loop.time()

        def fire(i: int) -> None:
            if i >= count:
                self._bursts.pop(done, None)
                if not done.done():
                    done.set_result(None)
                return
            at = start + i * INTERVAL
            send(i, at)
            self._bursts[done] = loop.call_at(at + INTERVAL, fire, i + 1)

        self._bursts[done] = loop.call_soon(fire, 0)
        return done

    def send_packet(
        self, dest: int, pt: int, payload: bytes, ts: int, marker: bool = False
    ) -> None:
        """One packet of this stream (next sequence number) to 127.0.0.1:`dest`."""
        assert self.transport is not None
        self.transport.sendto(build_rtp(pt, self.seq, ts, self.ssrc, payload, marker), (HOST, dest))
        self.seq = (self.seq + 1) & 0xFFFF
        self.sent += 1

    def send_tone(
        self, dest: int, freq: float | None, seconds: float, level_dbfs: float = -10.0
    ) -> asyncio.Future[None]:
        """µ-law frames of `freq` (None: silence) to 127.0.0.1:`dest` every 20 ms."""
        gen = ToneGenerator((freq,), level_dbfs) if freq is not None else None

        def send(i: int, at: float) -> None:
            frame = gen.next_frame() if gen is not None else SILENCE
            self.send_packet(dest, 0, ulaw_encode(frame), self._timestamp(at), marker=i == 0)

        return self._every_tick(round(seconds / INTERVAL), send)

    def send_audio(self, dest: int, samples: PCM) -> asyncio.Future[None]:
        """8 kHz samples as µ-law frames to 127.0.0.1:`dest` every 20 ms (in-band DTMF …)."""
        frames = frames_of(samples)

        def send(i: int, at: float) -> None:
            self.send_packet(dest, 0, ulaw_encode(frames[i]), self._timestamp(at), marker=i == 0)

        return self._every_tick(len(frames), send)

    def send_digits(self, dest: int, digits: str, event_pt: int = 101) -> asyncio.Future[None]:
        """RFC 4733 events, one packet per 20 ms, 100 ms per digit, 100 ms gaps (nothing)."""
        plan: list[tuple[bytes, bool, int] | None] = []  # payload, marker, ticks into the burst
        for digit in digits:
            first = len(plan)
            # Timestamps are offsets here; each event's is made absolute when it is sent.
            for p in DtmfSender().packets(digit, first * SAMPLES_PER_FRAME, 100):
                plan.append((p.payload, p.marker, p.timestamp // SAMPLES_PER_FRAME))
            plan.extend([None] * 5)

        def send(i: int, at: float) -> None:
            item = plan[i]
            if item is not None:
                payload, marker, start_tick = item
                ts = self._timestamp(at - (i - start_tick) * INTERVAL)
                self.send_packet(dest, event_pt, payload, ts, marker)

        return self._every_tick(len(plan), send)

    # --- what arrived ------------------------------------------------------------------------

    def audio(self, pt: int = 0) -> PCM:
        """Received audio of payload type `pt`, decoded, in arrival order."""
        payloads = [bytes(p.payload) for p in self.received if p.payload_type == pt]
        if not payloads:
            return np.zeros(0, dtype=np.int16)
        return ulaw_decode(b"".join(payloads))

    def digits(self, event_pt: int = 101) -> list[str]:
        receiver = DtmfReceiver()
        out: list[str] = []
        for p in self.received:
            if p.payload_type == event_pt:
                for event in receiver.feed(p.sequence_number, p.timestamp, p.marker, p.payload):
                    if event.digit is not None:
                        out.append(event.digit)
        return out


def negotiate(local_port: int, remote_port: int, telephone_event: int | None = 101) -> Negotiated:
    """What the call code would hand the leg: the peer offers PCMU/PCMA, we answer."""
    offer = build_offer(
        address=HOST, port=remote_port, session_id=1, telephone_event=telephone_event
    )
    return answer_offer(offer, local_address=HOST, local_port=local_port, session_id=2)


def voiced(samples: PCM, threshold: int = 300) -> PCM:
    """The stretch from the first to the last frame with signal (drops leading silence)."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.abs(frames).max(axis=1) > threshold)
    if not len(loud):
        return np.zeros(0, dtype=np.int16)
    return frames[loud[0] : loud[-1] + 1].reshape(-1)


def free_even_base(count: int) -> int:
    """An even port whose next `count` even ports (and their odd RTCP neighbours) are free."""
    for _ in range(200):
        base = 2 * secrets.choice(range(15000, 30000))
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + 2 * count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((HOST, port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free port range")
