"""What rooms and players need of a leg, whatever carries its audio.

Owns only the `Leg` protocol: one decoded frame in and one frame out per media-clock tick,
and the `owner` slot that makes a leg belong to at most one player or room. An RTP leg
(`leg.RtpLeg`) and a browser leg (`browser_leg.BrowserLeg`) both satisfy it. Must not know
sockets, codecs or what is special about one kind of leg: the RTP fast path (`forward_pair`)
is the room's business and only ever applies to two `RtpLeg`s.
"""

from __future__ import annotations

from typing import Protocol

from ...media import Frame


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
