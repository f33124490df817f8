"""RFC 4733 telephone-events: the payload, a receiver that reports each digit once, a sender.

Owns the 4-octet event payload and the rules that turn a stream of event packets into
digits (and digits into packets). Knows nothing of RTP headers beyond the fields passed in:
the engine routes packets of the negotiated telephone-event payload type here, and assigns
sequence numbers to what the sender yields.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     event     |E|R| volume    |          duration             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

One event is one RTP timestamp (its start): the first packet has the marker bit, updates
repeat the timestamp with a growing duration, and the final packet (E bit) is sent three
times (§2.5.1.4). An event longer than the 16-bit duration is sent as segments, each a new
timestamp 0xFFFF later, only the last one ended (§2.5.1.3).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import LocalRtpError, RtpParseError
from .seq import seq_delta, ts_delta

EVENT_DIGITS = "0123456789*#ABCD"
"""Events 0-15 are the DTMF digits, in this order (§3.2)."""

EVENT_FLASH = 16
"""Hook flash (§3.2)."""

MAX_DURATION = 0xFFFF
END_REPEATS = 3

SEGMENT_SLACK = 800
"""Timestamp units a continuation segment may start away from where the RFC puts it
(previous timestamp + 0xFFFF): tolerates senders that round the split to a packet."""

_EVENT = struct.Struct("!BBH")


def event_for_digit(digit: str) -> int:
    """The event code of a DTMF digit (0-9 * # A-D, case-insensitive)."""
    index = EVENT_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise LocalRtpError(f"not a DTMF digit: {digit!r}")
    return index


def digit_for_event(event: int) -> str | None:
    """The DTMF digit of an event code, or None for other events (flash included)."""
    return EVENT_DIGITS[event] if 0 <= event < 16 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One telephone-event payload block (§2.3). `volume` is -dBm0 (0-63)."""

    event: int
    end: bool = False
    volume: int = 0
    duration: int = 0
    reserved: bool = False

    def to_bytes(self) -> bytes:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63:
            raise LocalRtpError("event must be 0-255 and volume 0-63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise LocalRtpError(f"duration out of range: {self.duration}")
        flags = (0x80 if self.end else 0) | (0x40 if self.reserved else 0) | self.volume
        return _EVENT.pack(self.event, flags, self.duration)

    __bytes__ = to_bytes


def parse_telephone_event(payload: bytes | memoryview) -> TelephoneEvent:
    """Parse the first event block of a payload (RtpParseError if shorter than 4 octets).

    Several blocks in one packet (§2.5.1.5) are rare among DTMF senders; only the first,
    the event the packet's timestamp names, is read.
    """
    if len(payload) < 4:
        raise RtpParseError(f"telephone-event payload of {len(payload)} octets")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(
        event=event,
        end=flags > 127,
        volume=flags & 0x3F,
        duration=duration,
        reserved=bool(flags & 0x40),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived:
    """A telephone event (a digit, a flash …) was received, reported once per event."""

    event: int
    timestamp: int
    volume: int

    @property
    def digit(self) -> str | None:
        return digit_for_event(self.event)


class DtmfReceiver:
    """Turns telephone-event packets into one `DtmfReceived` per event.

    An event is reported at the first packet of it that arrives: the start packet if it
    arrives, else the first update or end packet. Reporting at the start keeps an IVR's
    reaction fast; the duration is not waited for. An event is known by its RTP timestamp
    (and event code); the last HISTORY events are remembered, so updates, the three end
    packets and copies never report again. A packet of a new event whose timestamp is older
    than the newest event's is stale (overtaken by a later digit) and ignored, so digits
    come out in order. A segment continuing a long event (same code, the previous segment
    not ended, timestamp about 0xFFFF later) is not a new digit.

    `seq` only orders packets of the current event (a reordered update must not undo its
    end); `marker` is not relied on, since the packet carrying it may be the one lost.
    """

    HISTORY = 16

    __slots__ = ("_current", "_current_ended", "_current_seq", "_recent", "stale")

    def __init__(self) -> None:
        self._recent: deque[tuple[int, int]] = deque(maxlen=self.HISTORY)
        self._current: tuple[int, int] | None = None
        self._current_ended = False
        self._current_seq = 0
        self.stale = 0

    def feed(
        self, seq: int, timestamp: int, marker: bool, payload: bytes | memoryview
    ) -> list[DtmfReceived]:
        """Account for one telephone-event packet; the events it newly reveals (0 or 1)."""
        block = parse_telephone_event(payload)
        key = (timestamp, block.event)
        current = self._current
        if key in self._recent:
            if key == current and seq_delta(seq, self._current_seq) > 0:
                self._current_seq = seq
                self._current_ended = self._current_ended or block.end
            return []
        if current is not None:
            gap = ts_delta(timestamp, current[0])
            if gap < 0:
                self.stale += 1
                return []
            continuation = (
                block.event == current[1]
                and not self._current_ended
                and MAX_DURATION - SEGMENT_SLACK <= gap <= MAX_DURATION + SEGMENT_SLACK
            )
        else:
            continuation = False
        self._recent.append(key)
        self._current = key
        self._current_ended = block.end
        self._current_seq = seq
        if continuation:
            return []
        return [DtmfReceived(event=block.event, timestamp=timestamp, volume=block.volume)]


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfPacket:
    """One packet to send: the engine adds the RTP header (its next sequence number)."""

    payload: bytes
    marker: bool
    timestamp: int
    end: bool


class DtmfSender:
    """Yields the packets of one event, one per `packet_interval` (a 20 ms tick at 8 kHz).

    The first packet has the marker bit; updates carry the duration so far; the last
    duration goes out END_REPEATS times with the E bit. All packets of an event share its
    start timestamp; past 0xFFFF units the event continues as a new segment (§2.5.1.3).
    """

    __slots__ = ("clock_rate", "end_repeats", "packet_interval", "volume")

    def __init__(
        self,
        *,
        clock_rate: int = 8000,
        packet_interval: int = 160,
        volume: int = 10,
        end_repeats: int = END_REPEATS,
    ) -> None:
        if clock_rate <= 0 or not 0 < packet_interval <= MAX_DURATION:
            raise LocalRtpError("clock_rate and packet_interval must be positive")
        if not 0 <= volume <= 63 or end_repeats < 1:
            raise LocalRtpError("volume must be 0-63 and end_repeats at least 1")
        self.clock_rate = clock_rate
        self.packet_interval = packet_interval
        self.volume = volume
        self.end_repeats = end_repeats

    def packets(self, digit: str | int, timestamp: int, duration_ms: int) -> Iterator[DtmfPacket]:
        """The packets for `digit` (a character or an event code) starting at `timestamp`."""
        event = event_for_digit(digit) if isinstance(digit, str) else digit
        if not 0 <= event <= 255 or duration_ms <= 0:
            raise LocalRtpError("event must be 0-255 and duration_ms positive")
        total = max(1, duration_ms * self.clock_rate // 1000)
        volume = self.volume
        segment_ts = timestamp & 0xFFFF_FFFF
        segment_start = 0
        marker = True
        tick = 0
        while True:
            tick += 1
            elapsed = min(tick * self.packet_interval, total)
            duration = elapsed - segment_start
            if duration > MAX_DURATION or (duration == MAX_DURATION and elapsed < total):
                # The segment is full: report it at the maximum, unended, and go on in a
                # new segment starting where this one reached the maximum.
                payload = TelephoneEvent(event=event, volume=volume, duration=MAX_DURATION)
                yield DtmfPacket(
                    payload=payload.to_bytes(), marker=marker, timestamp=segment_ts, end=False
                )
                marker = False
                segment_ts = (segment_ts + MAX_DURATION) & 0xFFFF_FFFF
                segment_start += MAX_DURATION
                continue
            if elapsed == total:
                final = TelephoneEvent(event=event, end=True, volume=volume, duration=duration)
                data = final.to_bytes()
                for _ in range(self.end_repeats):
                    yield DtmfPacket(payload=data, marker=marker, timestamp=segment_ts, end=True)
                    marker = False
                return
            update = TelephoneEvent(event=event, volume=volume, duration=duration)
            yield DtmfPacket(
                payload=update.to_bytes(), marker=marker, timestamp=segment_ts, end=False
            )
            marker = False
