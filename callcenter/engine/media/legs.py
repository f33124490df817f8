"""What rooms and players need of a leg, whatever carries its audio.

Owns the `Leg` protocol (one decoded frame in and one frame out per media-clock tick, and the
`owner` slot that makes a leg belong to at most one player or room) and the `RecordingSink`
that rooms and prompt players feed. An RTP leg
(`leg.RtpLeg`) and a browser leg (`browser_leg.BrowserLeg`) both satisfy it. Must not know
sockets, codecs or what is special about one kind of leg: the RTP fast path (`forward_pair`)
is the room's business and only ever applies to two `RtpLeg`s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ...media import Frame

RecordingSink = Callable[[NDArray[np.int16], int], None]
"""Gets each tick's (160, 2) stereo frame and the clock's slot number (a recorder that
follows a caller from room to room fills the slots no room gave it, so time stays true)."""


class Leg(Protocol):
    """One party's media as a room or a player drives it, once per tick."""

    owner: object | None
    """The player or room the leg is in (set by `players.claim`, cleared by `release`)."""

    def read_frame(self) -> Frame | None:
        """This tick's received frame, decoded; None (or silence) for nothing to play.

        May return a buffer the leg reuses, valid until the next `read_frame`."""
        ...

    def write_frame(self, frame: Frame) -> None:
        """Send this tick's frame to the party (a no-op when it cannot be sent)."""
        ...

    def __hash__(self) -> int:
        """Legs are keys of the room's membership, by identity (object's hash)."""
        ...
