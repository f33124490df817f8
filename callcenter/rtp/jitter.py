"""The receive jitter buffer: RTP packets in at network time, one frame out per media tick.

Owns the play-out timeline of one incoming stream: which frame the next 20 ms tick plays,
reordering, duplicates, packets too late for their turn, discontinuities, and (optionally)
a target depth that follows the measured jitter. Knows nothing of codecs or clocks: arrival
times are passed in, `pop()` is called by the media clock once per frame, and a `None`
means "nothing for this frame: conceal (or play silence)".

Frames are placed by RTP timestamp, not by sequence number: slot = timestamp / samples per
frame on a timeline anchored at the first packet. So a silence gap (DTX: timestamps jump,
sequence numbers do not) plays as silence of the right length, and a lost packet leaves a
hole of exactly one frame. One packet is assumed to carry one frame (20 ms of G.711 at 8 kHz
is 160 samples): a peer sending 10 or 30 ms packets must be repacketised before this.

Depth. The first packet is held `target` frames before it plays, so each packet may arrive
up to `target` x 20 ms after its predecessor's schedule. The delay is realigned to `target`:
- at the start of a talkspurt (marker bit, nothing pending), when moving the play-out point
  costs nothing audible;
- when a packet lands beyond the buffer's capacity (a jump forward): the play-out point
  jumps so the packet is `target` frames ahead, dropping what it skips;
- when the buffer stayed fuller than `target` for a whole `trim_window` of ticks (the first
  packet came late, or the sender's clock runs fast): one frame is dropped.
In adaptive mode `target` follows the interarrival jitter (RFC 3550 A.8) between `depth`
and `max_depth`; it grows at once (and on every late packet) and shrinks only after
`shrink_after` packets of calm. Growth plays one extra empty tick, when the buffer is empty.

Resync. The timeline restarts (pending frames still play first) when the SSRC changes, when
the timestamp goes backwards while the sequence number goes forwards, or when a packet far
out of sequence is followed by its successor (RFC 3550 A.1's rule for a peer that restarted).
"""

from __future__ import annotations

from enum import IntEnum
from math import ceil

from .packet import RtpPacket
from .seq import MAX_MISORDER

Payload = bytes | memoryview

JITTER_HEADROOM = 2.5
"""Adaptive target, in multiples of the A.8 jitter (A.8's estimate is about 1.1 standard
deviations of the delay; 2.5 of it covers the delay spread of all but ~1 % of packets)."""


class PushResult(IntEnum):
    """What `push` did with a packet."""

    ACCEPTED = 0
    RESYNCED = 1
    """Accepted as the first frame of a new timeline (first packet, new SSRC, restart)."""
    DUPLICATE = 2
    LATE = 3
    """Its frame was already played (or concealed): dropped."""
    DISCARDED = 4
    """Far out of sequence: dropped, unless the next packet follows it (then a resync)."""


class JitterBuffer:
    """A bounded, timestamp-slotted play-out buffer for one incoming stream.

    `depth` is the (minimum) target in frames; `capacity` bounds the frames held (and how
    far ahead a packet may land before the play-out point jumps); `trim_window` is in ticks,
    0 to never trim. Counters: `played`, `concealed` (a tick with no frame while later
    frames had arrived: lost or late), `underruns` (a tick with nothing buffered: silence,
    DTX, the pre-roll or a stall), `late`, `duplicates`, `dropped` (frames skipped by a jump,
    a trim or a resync), `discarded` and `resyncs`. A tick counted as an underrun becomes a
    concealment once a later frame shows that the stream went on.
    """

    __slots__ = (
        "_bad_seq",
        "_capacity",
        "_clock_rate",
        "_frames",
        "_highest",
        "_highest_seq",
        "_hold_credit",
        "_jitter",
        "_last_arrival",
        "_last_timestamp",
        "_lowest",
        "_next",
        "_pending",
        "_ref_slot",
        "_ref_ts",
        "_shrink_after",
        "_shrink_count",
        "_spf",
        "_ssrc",
        "_synced",
        "_trim_count",
        "_trim_min",
        "_trim_window",
        "adaptive",
        "concealed",
        "depth",
        "discarded",
        "dropped",
        "duplicates",
        "late",
        "max_depth",
        "played",
        "resyncs",
        "target",
        "underruns",
    )

    def __init__(
        self,
        *,
        depth: int = 2,
        capacity: int = 32,
        samples_per_frame: int = 160,
        clock_rate: int = 8000,
        adaptive: bool = False,
        max_depth: int = 12,
        trim_window: int = 100,
        shrink_after: int = 250,
    ) -> None:
        if samples_per_frame <= 0 or clock_rate <= 0:
            raise ValueError("samples_per_frame and clock_rate must be positive")
        if not 0 <= depth < capacity or (adaptive and not depth <= max_depth < capacity):
            raise ValueError("need 0 <= depth <= max_depth < capacity")
        if trim_window < 0 or shrink_after < 1:
            raise ValueError("trim_window must be >= 0 and shrink_after >= 1")
        self._spf = samples_per_frame
        self._clock_rate = clock_rate
        self._capacity = capacity
        self._trim_window = trim_window
        self._shrink_after = shrink_after
        self.depth = depth
        self.max_depth = max_depth if adaptive else depth
        self.adaptive = adaptive
        self.played = 0
        self.concealed = 0
        self.underruns = 0
        self.late = 0
        self.duplicates = 0
        self.dropped = 0
        self.discarded = 0
        self.resyncs = 0
        self.reset()

    def reset(self) -> None:
        """Forget the stream (frames, timeline and jitter estimate); counters are kept."""
        self._frames: list[Payload | None] = [None] * self._capacity
        self._pending = 0
        self._synced = False
        self._ssrc = 0
        self._next = 0
        self._ref_slot = 0
        self._ref_ts = 0
        self._highest = 0
        self._lowest = 0
        self._highest_seq = 0
        self._bad_seq = -1
        self._hold_credit = 0
        self._trim_count = 0
        self._trim_min = 1 << 30
        self._jitter = 0.0
        self._last_arrival: float | None = None
        self._last_timestamp = 0
        self._shrink_count = 0
        self.target = self.depth

    # --- receiving -------------------------------------------------------------------------

    def push(self, packet: RtpPacket, arrival: float) -> PushResult:
        """Offer a parsed packet that arrived at `arrival` (seconds, any monotonic clock)."""
        return self.push_frame(
            packet.sequence_number,
            packet.timestamp,
            packet.payload,
            arrival,
            packet.marker,
            packet.ssrc,
        )

    def push_frame(
        self,
        seq: int,
        timestamp: int,
        payload: Payload,
        arrival: float,
        marker: bool = False,
        ssrc: int = 0,
    ) -> PushResult:
        """Offer one frame by its header fields (for callers that did not build a packet)."""
        if not self._synced or ssrc != self._ssrc:
            return self._resync(seq, timestamp, payload, arrival, ssrc)
        slot = self._ref_slot + (
            (((timestamp - self._ref_ts + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000) // self._spf
        )
        d_seq = ((seq - self._highest_seq + 0x8000) & 0xFFFF) - 0x8000
        nxt = self._next
        highest = self._highest
        realigned = False
        if d_seq > 0:
            if slot <= highest:
                if slot < highest:
                    # Newer by sequence number, older by timestamp: the sender reset its
                    # timestamps. Nothing on the old timeline can place this frame.
                    return self._resync(seq, timestamp, payload, arrival, ssrc)
                # A second packet for the newest frame: keep the first.
                self._highest_seq = seq
                if slot < nxt:
                    return self._late(slot)
                self.duplicates += 1
                return PushResult.DUPLICATE
            self._highest_seq = seq
            self._bad_seq = -1
            if marker and self._pending == 0:
                # A talkspurt begins and nothing is waiting: the free moment to set the
                # delay to target (never replaying a slot that held a frame). The silence
                # before it is not loss, and its lead-in starts the range of slots whose
                # empty ticks count as concealment.
                realigned = True
                nxt = self._next = max(slot - self.target, highest + 1)
                self._lowest = slot
                self._hold_credit = 0
        elif d_seq == 0:
            if slot < nxt:
                return self._late(slot)
            self.duplicates += 1
            return PushResult.DUPLICATE
        elif d_seq < -MAX_MISORDER or slot > highest:
            # Far behind in sequence, or behind in sequence but ahead in time: not part of
            # this stream as we know it. A.1's rule: a restart if its successor follows.
            if seq == self._bad_seq:
                return self._resync(seq, timestamp, payload, arrival, ssrc)
            self._bad_seq = (seq + 1) & 0xFFFF
            self.discarded += 1
            return PushResult.DISCARDED

        if slot < nxt:
            return self._late(slot)
        if slot >= nxt + self._capacity:
            # A jump forward: silence or loss, we cannot tell; do not call it loss, nor
            # the lead-in before this frame.
            realigned = True
            self._skip_to(slot - self.target)
            nxt = self._next
            self._lowest = slot
        frames = self._frames
        index = slot % self._capacity
        if frames[index] is not None:
            self.duplicates += 1
            return PushResult.DUPLICATE
        frames[index] = payload
        self._pending += 1
        if slot > highest:
            if not realigned and nxt > highest + 1:
                self._reclassify(nxt - highest - 1)
            self._highest = slot
            if slot - self._ref_slot > 0x10_0000:
                # Keep the reference near: timestamp differences are only meaningful
                # within +-2**31 (three days at 8 kHz, but calls can be long).
                self._ref_ts = (self._ref_ts + (slot - self._ref_slot) * self._spf) & 0xFFFF_FFFF
                self._ref_slot = slot
        elif slot < self._lowest:
            self._lowest = slot
        if self.adaptive:
            self._measure(timestamp, arrival)
        return PushResult.ACCEPTED

    def _late(self, slot: int) -> PushResult:
        """The frame's tick has passed (it was concealed or played)."""
        self.late += 1
        if slot > self._highest:
            # Every tick from highest + 1 to this slot played nothing: those frames were
            # lost or late, not silence.
            self._reclassify(slot - self._highest)
            self._highest = slot
        if self.adaptive and self.target < self.max_depth:
            self.target += 1
            self._hold_credit += 1
        return PushResult.LATE

    def _resync(
        self, seq: int, timestamp: int, payload: Payload, arrival: float, ssrc: int
    ) -> PushResult:
        """Anchor a new timeline at this packet, `target` frames from now (after any
        frames still pending, which play first)."""
        if self._synced:
            self.resyncs += 1
            slot = max(self._next + self.target, self._highest + 1)
            if slot >= self._next + self._capacity:
                self._skip_to(slot - self.target)
        else:
            slot = self._next + self.target
        self._synced = True
        self._ssrc = ssrc
        self._ref_ts = timestamp
        self._ref_slot = slot
        self._highest = slot
        self._lowest = slot
        self._highest_seq = seq
        self._bad_seq = -1
        self._last_arrival = None
        self._frames[slot % self._capacity] = payload
        self._pending += 1
        return PushResult.RESYNCED

    def _skip_to(self, slot: int) -> None:
        """Move the play-out point forward to `slot`, dropping the frames passed over."""
        frames = self._frames
        capacity = self._capacity
        for skipped in range(self._next, min(slot, self._next + capacity)):
            index = skipped % capacity
            if frames[index] is not None:
                frames[index] = None
                self._pending -= 1
                self.dropped += 1
        self._next = max(self._next, slot)

    def _reclassify(self, ticks: int) -> None:
        moved = min(ticks, self.underruns)
        self.underruns -= moved
        self.concealed += moved

    def _measure(self, timestamp: int, arrival: float) -> None:
        """Adaptive mode: A.8 jitter (in samples) -> target depth."""
        last = self._last_arrival
        self._last_arrival = arrival
        if last is not None:
            elapsed = ((timestamp - self._last_timestamp + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
            d = abs((arrival - last) * self._clock_rate - elapsed)
            self._jitter += (d - self._jitter) * 0.0625
            desired = min(
                self.max_depth, max(self.depth, ceil(self._jitter * JITTER_HEADROOM / self._spf))
            )
            if desired > self.target:
                self._hold_credit += desired - self.target
                self.target = desired
                self._shrink_count = 0
            elif desired < self.target:
                self._shrink_count += 1
                if self._shrink_count >= self._shrink_after:
                    self.target -= 1
                    self._hold_credit = max(0, self._hold_credit - 1)
                    self._shrink_count = 0
            else:
                self._shrink_count = 0
        self._last_timestamp = timestamp

    # --- playing ---------------------------------------------------------------------------

    def pop(self) -> Payload | None:
        """The frame for this tick, or None: conceal (or play silence) for it."""
        if not self._synced:
            return None
        slot = self._next
        frames = self._frames
        if self._trim_window:
            fill = self._highest - slot
            if fill < self._trim_min:
                self._trim_min = fill
            self._trim_count += 1
            if self._trim_count >= self._trim_window:
                if self._trim_min > self.target:
                    # Fuller than needed for a whole window: drop one frame of delay.
                    index = slot % self._capacity
                    if frames[index] is not None:
                        frames[index] = None
                        self._pending -= 1
                        self.dropped += 1
                    slot += 1
                self._trim_count = 0
                self._trim_min = 1 << 30
        index = slot % self._capacity
        payload = frames[index]
        if payload is not None:
            frames[index] = None
            self._pending -= 1
            self._next = slot + 1
            self.played += 1
            return payload
        if slot > self._highest and self._hold_credit:
            # Empty, and the target grew: play this empty tick without advancing, so the
            # stream resumes one frame later (that is the growth).
            self._hold_credit -= 1
            self._next = slot
            self.underruns += 1
            return None
        self._next = slot + 1
        if self._lowest < slot < self._highest:
            self.concealed += 1
        else:
            self.underruns += 1
        return None

    # --- inspection ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Frames held, waiting for their tick."""
        return self._pending

    @property
    def next_timestamp(self) -> int | None:
        """The RTP timestamp of the frame the next `pop` plays (None before any packet)."""
        if not self._synced:
            return None
        return (self._ref_ts + (self._next - self._ref_slot) * self._spf) & 0xFFFF_FFFF

    @property
    def jitter(self) -> float:
        """The adaptive mode's A.8 jitter estimate, in seconds (0 when not adaptive)."""
        return self._jitter / self._clock_rate
