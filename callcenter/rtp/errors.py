"""Errors of the RTP core: one base, split into the peer's faults and ours.

A malformed datagram is the peer's fault (`RtpParseError`): the engine drops it and counts it.
A value we cannot put on the wire (a payload type above 127, a 32-item SDES chunk) is ours
(`LocalRtpError`): a bug in the caller, never the network.
"""

from __future__ import annotations


class RtpError(ValueError):
    """Base of every error raised by `callcenter.rtp`."""


class RtpParseError(RtpError):
    """The peer sent a packet we cannot accept (truncated, wrong version, bad lengths)."""


class LocalRtpError(RtpError):
    """We were asked to build something the wire format cannot carry."""
