"""A test RTP peer: sends a µ-law tone every 20 ms on an absolute schedule, keeps what it
receives, so tests can measure the audio that came back."""

from __future__ import annotations

import asyncio
from typing import cast

import numpy as np

from callcenter.media import SAMPLES_PER_FRAME, ToneGenerator, ulaw_decode, ulaw_encode
from callcenter.rtp import build_rtp, parse_rtp


class RtpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self._sending: asyncio.TimerHandle | None = None
        self._sent = 0  # one RTP stream: the sequence number goes on across send_tone calls
        self._epoch: float | None = None  # the timestamp follows the wall clock, as a phone's

    @classmethod
    async def open(cls) -> RtpPeer:
        loop = asyncio.get_running_loop()
        _transport, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not registered as a DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.port = int(transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        packet = parse_rtp(data)
        if packet.payload_type == 0:
            self.received.append(bytes(packet.payload))

    def send_tone(self, port: int, frequency: float | None, seconds: float) -> None:
        """Send `seconds` of a tone (or silence) to 127.0.0.1:`port`, PCMU, 20 ms packets."""
        loop = asyncio.get_running_loop()
        tone = ToneGenerator((frequency,), level_dbfs=-10.0) if frequency else None
        start = loop.time()
        if self._epoch is None:
            self._epoch = start
        total = int(seconds / 0.02)

        def send(n: int) -> None:
            assert self.transport is not None
            frame = tone.next_frame() if tone else np.zeros(SAMPLES_PER_FRAME, np.int16)
            assert self._epoch is not None
            seq = self._sent
            self._sent += 1
            # RTP timestamps count sampling instants, so a pause between bursts advances them;
            # the first packet of a burst starts a talkspurt (marker, RFC 3551 §4.1).
            frames = round((start + n * 0.02 - self._epoch) / 0.02)
            self.transport.sendto(
                build_rtp(
                    0,
                    seq & 0xFFFF,
                    (frames * SAMPLES_PER_FRAME) & 0xFFFFFFFF,
                    0x1234ABCD,
                    ulaw_encode(frame),
                    marker=n == 0,
                ),
                ("127.0.0.1", port),
            )
            if n + 1 < total:
                self._sending = loop.call_at(start + (n + 1) * 0.02, send, n + 1)

        send(0)

    def audio(self) -> np.ndarray:
        """Everything received so far, decoded."""
        if not self.received:
            return np.zeros(0, np.int16)
        return ulaw_decode(b"".join(self.received))

    def close(self) -> None:
        if self._sending is not None:
            self._sending.cancel()
        if self.transport is not None:
            self.transport.close()
