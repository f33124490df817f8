"""Sequence-number arithmetic and the RFC 3550 Appendix A.1 source validation.

Owns 16-bit serial comparison (RFC 1982 style), 32-bit timestamp differences, extended
(cycle-counted) sequence numbers and `SourceState`, the per-SSRC probation / dropout /
misorder / resync algorithm. Knows nothing of payloads, clocks or sockets.
"""

from __future__ import annotations

RTP_SEQ_MOD = 1 << 16
"""Sequence numbers are 16 bits (RFC 3550 §5.1)."""

MAX_DROPOUT = 3000
"""A forward jump below this is a gap in one stream, not a restart (A.1)."""

MAX_MISORDER = 100
"""A backward step below this is a reordered packet, not a restart (A.1)."""

MIN_SEQUENTIAL = 2
"""In-sequence packets the RFC requires before a source is valid (A.1). The engine asks for
more (4) before latching a media address, to avoid latching onto a stray packet."""


def seq_delta(a: int, b: int) -> int:
    """Signed distance `a - b` between two 16-bit sequence numbers, in [-32768, 32767].

    Serial arithmetic (RFC 1982 §3.2): the nearer way round the circle wins. The one
    undefined case, a distance of exactly 2**15, comes out as -32768 ("older"), so a packet
    half the number space away is never mistaken for a newer one.
    """
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_lt(a: int, b: int) -> bool:
    """True when sequence number `a` comes before `b` (RFC 1982 `<` on 16 bits)."""
    return seq_delta(a, b) < 0


def seq_gt(a: int, b: int) -> bool:
    """True when sequence number `a` comes after `b` (RFC 1982 `>` on 16 bits)."""
    return seq_delta(a, b) > 0


def ts_delta(a: int, b: int) -> int:
    """Signed distance `a - b` between two 32-bit RTP timestamps, in [-2**31, 2**31)."""
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


def extend_seq(seq: int, reference: int) -> int:
    """The extended (unwrapped) sequence number of `seq` nearest the extended `reference`.

    Used for packets that arrive out of order around a wrap: with reference 65537 (one
    cycle, seq 1), seq 65535 extends to 65535, not 131071.
    """
    return reference + seq_delta(seq, reference & 0xFFFF)


class SourceState:
    """Per-source sequence state and validation, RFC 3550 Appendix A.1 (`source` there).

    Construct it with the first packet's sequence number, then call `update_seq` for every
    packet of the source, the first one included (as the RFC does). A source is valid once
    `min_sequential` packets arrived in sequence; after that, a jump of more than
    `max_dropout` forward or `max_misorder` backward is ignored until a second packet
    follows it in sequence, and then the source restarts from there (the peer restarted
    without telling us). `received`, `base_seq`, `expected_prior` and `received_prior` are
    the counters RFC 3550 A.3 reads; `stats.ReceptionStats` builds on them.
    """

    __slots__ = (
        "bad_seq",
        "base_seq",
        "cycles",
        "expected_prior",
        "max_dropout",
        "max_misorder",
        "max_seq",
        "min_sequential",
        "probation",
        "received",
        "received_prior",
        "restarts",
    )

    def __init__(
        self,
        seq: int,
        *,
        min_sequential: int = MIN_SEQUENTIAL,
        max_dropout: int = MAX_DROPOUT,
        max_misorder: int = MAX_MISORDER,
    ) -> None:
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"sequence number out of range: {seq}")
        # Zero would skip probation and make the `max_seq = seq - 1` trick below count a
        # spurious cycle when the first packet is seq 0.
        if min_sequential < 1:
            raise ValueError("min_sequential must be at least 1")
        if not 0 < max_dropout < RTP_SEQ_MOD - max_misorder or max_misorder < 0:
            raise ValueError("max_dropout and max_misorder must split the sequence space")
        self.min_sequential = min_sequential
        self.max_dropout = max_dropout
        self.max_misorder = max_misorder
        self.restarts = 0
        self.init_seq(seq)
        # A.1: "the first packet ... max_seq = seq - 1; probation = MIN_SEQUENTIAL", so the
        # first packet itself counts as in sequence. Masked: the RFC's C relies on u_int16.
        self.max_seq = (seq - 1) & 0xFFFF
        self.probation = min_sequential

    def init_seq(self, seq: int) -> None:
        """Start counting afresh at `seq` (A.1 `init_seq`)."""
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1  # so that seq == bad_seq is false
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update_seq(self, seq: int) -> bool:
        """Account for a packet with sequence number `seq`; True if it is valid (A.1).

        False means: still on probation, or a big jump not yet confirmed by a second
        sequential packet. Duplicates and reordered packets within `max_misorder` are valid
        (and counted in `received`, which is why A.3's "lost" can go negative).
        """
        max_seq = self.max_seq
        udelta = (seq - max_seq) & 0xFFFF
        if self.probation:
            # The RFC compares with max_seq + 1 in int arithmetic, which never matches at
            # the 65535 -> 0 wrap; compare modulo 2**16 instead.
            if seq == (max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self.init_seq(seq)
                    self.received += 1
                    return True
            else:
                self.probation = self.min_sequential - 1
                self.max_seq = seq
            return False
        if udelta < self.max_dropout:
            # In order, with a permissible gap.
            if seq < max_seq:
                self.cycles += RTP_SEQ_MOD  # wrapped: count another 64K cycle
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - self.max_misorder:
            # A very large jump: believe it only when the next packet follows it.
            if seq != self.bad_seq:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
            self.init_seq(seq)
            self.restarts += 1
        # else: a duplicate or reordered packet; counted below, max_seq unchanged.
        self.received += 1
        return True

    @property
    def valid(self) -> bool:
        """True once the source has passed probation."""
        return self.probation == 0

    @property
    def extended_max(self) -> int:
        """The extended highest sequence number received (cycles + max_seq, A.3)."""
        return self.cycles + self.max_seq

    def extend(self, seq: int) -> int:
        """The extended sequence number of `seq`, relative to the current maximum."""
        return self.cycles + self.max_seq + seq_delta(seq, self.max_seq)
