"""Reception statistics of one RTP source: RFC 3550 A.3 (loss) and A.8 (jitter), plus counters.

Owns what a receiver knows about a stream from sequence numbers, timestamps and arrival
times, and the report block it sends back (§6.4.1). O(1) per packet, no allocation beyond
Python's own ints and floats. Knows nothing of play-out: a packet too late for the jitter
buffer is only known there, so the engine adds those to `late` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtcp import ReportBlock, ntp_middle
from .seq import MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, SourceState

_WINDOW = 128
"""Sequence numbers remembered for duplicate detection: more than MAX_MISORDER, so every
reordered packet A.1 accepts is inside it. A power of two: the slot is `extended & 127`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LossInterval:
    """A.3's figures at one report: cumulative since the start, and since the last report."""

    extended_highest_sequence: int
    expected: int
    received: int
    cumulative_lost: int
    expected_interval: int
    received_interval: int
    lost_interval: int
    fraction_lost: int
    """Lost in the interval / expected in the interval, 8-bit fixed point (0-255)."""


class ReceptionStats(SourceState):
    """A.1 validation + A.3 loss + A.8 interarrival jitter + counters, for one SSRC.

    Create it at the source's first packet and call `update` for every packet of it
    (the first included). Arrival times are seconds on any monotonic clock; they are
    multiplied by `clock_rate` so jitter comes out in timestamp units as RTCP wants.

    Counters: `packets` (valid packets, duplicates included, as A.3 counts them), `octets`
    (payload octets of those), `duplicates`, `out_of_order` (arrived after a later
    sequence number), `invalid` (refused by A.1: probation or an unconfirmed jump) and
    `late` (left for the play-out to count).
    """

    __slots__ = (
        "_jitter",
        "_last_arrival",
        "_last_sr_arrival",
        "_last_sr_middle",
        "_last_timestamp",
        "_seen",
        "clock_rate",
        "duplicates",
        "invalid",
        "late",
        "octets",
        "out_of_order",
        "packets",
    )

    def __init__(
        self,
        seq: int,
        clock_rate: int = 8000,
        *,
        min_sequential: int = MIN_SEQUENTIAL,
        max_dropout: int = MAX_DROPOUT,
        max_misorder: int = MAX_MISORDER,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        self.clock_rate = clock_rate
        self.packets = 0
        self.octets = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.invalid = 0
        self.late = 0
        self._jitter = 0.0
        self._last_arrival: float | None = None
        self._last_timestamp = 0
        self._last_sr_middle = 0
        self._last_sr_arrival = 0.0
        self._seen = [-1] * _WINDOW
        super().__init__(
            seq,
            min_sequential=min_sequential,
            max_dropout=max_dropout,
            max_misorder=max_misorder,
        )

    def init_seq(self, seq: int) -> None:
        # A restart (or the end of probation) begins a new sequence space: forget the
        # remembered numbers and the jitter's previous packet, whose timestamps no longer
        # compare with the new ones.
        super().init_seq(seq)
        self._seen = [-1] * _WINDOW
        self._last_arrival = None

    def update(self, seq: int, timestamp: int, arrival: float, octets: int = 0) -> bool:
        """Account for one packet; False if A.1 refuses it (then nothing else is counted).

        `octets` is the payload size (RTCP's octet count excludes headers and padding).
        """
        if not self.update_seq(seq):
            self.invalid += 1
            return False
        self.packets += 1
        self.octets += octets
        max_seq = self.max_seq
        extended = self.cycles + max_seq
        if seq != max_seq:
            extended += ((seq - max_seq + 0x8000) & 0xFFFF) - 0x8000
        seen = self._seen
        slot = extended & (_WINDOW - 1)
        if seen[slot] == extended:
            # A copy: counted in `packets` (A.3 does) but it says nothing new about timing.
            self.duplicates += 1
            return True
        seen[slot] = extended
        if seq != max_seq:
            self.out_of_order += 1
        # A.8: J += (|D(i-1, i)| - J) / 16, with D from consecutive arrivals (not
        # necessarily consecutive sequence numbers). The timestamp difference is taken
        # modulo 2**32 so the wrap of the RTP timestamp is no jump.
        last_arrival = self._last_arrival
        if last_arrival is not None:
            elapsed = ((timestamp - self._last_timestamp + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
            d = (arrival - last_arrival) * self.clock_rate - elapsed
            if d < 0:
                d = -d
            self._jitter += (d - self._jitter) * 0.0625
        self._last_arrival = arrival
        self._last_timestamp = timestamp
        return True

    @property
    def jitter(self) -> int:
        """Interarrival jitter in timestamp units, as a report block carries it."""
        return int(self._jitter)

    @property
    def jitter_seconds(self) -> float:
        return self._jitter / self.clock_rate

    @property
    def expected(self) -> int:
        """Packets expected since the source became valid (A.3)."""
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def cumulative_lost(self) -> int:
        """Expected minus received; negative when duplicates outnumber losses (A.3)."""
        return self.expected - self.received

    def close_interval(self) -> LossInterval:
        """A.3 at a report: the figures, and the start of the next interval."""
        extended_max = self.cycles + self.max_seq
        expected = extended_max - self.base_seq + 1
        received = self.received
        expected_interval = expected - self.expected_prior
        received_interval = received - self.received_prior
        self.expected_prior = expected
        self.received_prior = received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = (lost_interval << 8) // expected_interval
        return LossInterval(
            extended_highest_sequence=extended_max & 0xFFFF_FFFF,
            expected=expected,
            received=received,
            cumulative_lost=expected - received,
            expected_interval=expected_interval,
            received_interval=received_interval,
            lost_interval=lost_interval,
            fraction_lost=min(fraction, 255),
        )

    def sender_report_received(self, ntp_timestamp: int, arrival: float) -> None:
        """Remember the source's latest SR, for LSR and DLSR in our next report block."""
        self._last_sr_middle = ntp_middle(ntp_timestamp)
        self._last_sr_arrival = arrival

    def report_block(self, ssrc: int, now: float) -> ReportBlock:
        """The report block about this source (§6.4.1); closes the A.3 interval.

        `ssrc` is the source's SSRC; `now` is on the same clock as the arrival times.
        """
        interval = self.close_interval()
        delay = 0
        if self._last_sr_middle:
            delay = max(0, min(0xFFFF_FFFF, int((now - self._last_sr_arrival) * 65536)))
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=interval.fraction_lost,
            cumulative_lost=interval.cumulative_lost,
            highest_sequence=interval.extended_highest_sequence,
            jitter=min(self.jitter, 0xFFFF_FFFF),
            last_sr=self._last_sr_middle,
            delay_since_last_sr=delay,
        )
