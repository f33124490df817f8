"""Transaction timers of RFC 3261 §17 (Table 4) and RFC 6026 (Timers L and M).

Owns: the names of the timers, the base values T1/T2/T4 and how each timer's interval is
derived from them, per transport reliability. Must not know: clocks (deadlines are computed by
the transactions from the `now` they are given), states, or messages.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from ..errors import LocalProtocolError


class Timer(enum.Enum):
    """The timers of RFC 3261 Table 4, RFC 6026's L and M, and the 200 ms 100-Trying timer."""

    A = "A"  # INVITE client: request retransmission (unreliable only)
    B = "B"  # INVITE client: transaction timeout while Calling
    D = "D"  # INVITE client: wait for response retransmissions in Completed
    E = "E"  # non-INVITE client: request retransmission (unreliable only)
    F = "F"  # non-INVITE client: transaction timeout
    G = "G"  # INVITE server: final response retransmission (unreliable only)
    H = "H"  # INVITE server: wait for ACK
    I = "I"  # INVITE server: wait for ACK retransmissions in Confirmed  # noqa: E741
    J = "J"  # non-INVITE server: wait for request retransmissions in Completed
    K = "K"  # non-INVITE client: wait for response retransmissions in Completed
    L = "L"  # INVITE server (RFC 6026): wait in Accepted for INVITE retransmissions
    M = "M"  # INVITE client (RFC 6026): wait in Accepted for 2xx retransmissions
    # RFC 3261 §17.2.1 asks for a 100 Trying unless the TU answers within 200 ms; it has
    # no letter in the RFC.
    TRYING = "Trying"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (cap for non-INVITE and response retransmission), T4 (how long a
    message may linger in the network), all in seconds (RFC 3261 §17.1.1.1, Table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_after: float = 0.2

    def __post_init__(self) -> None:
        # A zero T1 would make a retransmission timer fire forever within one call.
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0 and self.trying_after >= 0):
            raise LocalProtocolError(f"bad timer configuration {self!r}")

    def doubled(self, timer: Timer, previous: float) -> float:
        """The next interval of a retransmission timer: A doubles without bound (§17.1.1.2),
        E and G double up to T2 (§17.1.2.2, §17.2.1)."""
        cap = {Timer.E: self.t2, Timer.G: self.t2}.get(timer)
        return 2 * previous if cap is None else min(2 * previous, cap)


@lru_cache(maxsize=64)
def timer_values(config: TimerConfig, reliable: bool) -> Mapping[Timer, float | None]:
    """Initial interval of each timer; None means the timer does not run on this transport.

    Over a reliable transport nothing is retransmitted (A, E, G do not run) and the timers
    that only absorb retransmissions (D, I, J, K) are zero, so those states are left at once.
    """
    t1, t4 = config.t1, config.t4
    unreliable = not reliable
    return MappingProxyType(
        {
            Timer.A: t1 if unreliable else None,
            Timer.B: 64 * t1,
            # "at least 32 seconds" (§17.1.1.2): the server may retransmit for 64*T1.
            Timer.D: max(32.0, 64 * t1) if unreliable else 0.0,
            Timer.E: t1 if unreliable else None,
            Timer.F: 64 * t1,
            Timer.G: t1 if unreliable else None,
            Timer.H: 64 * t1,
            Timer.I: t4 if unreliable else 0.0,
            Timer.J: 64 * t1 if unreliable else 0.0,
            Timer.K: t4 if unreliable else 0.0,
            Timer.L: 64 * t1,
            Timer.M: 64 * t1,
            Timer.TRYING: config.trying_after,
        }
    )


DEFAULT_TIMERS = TimerConfig()
