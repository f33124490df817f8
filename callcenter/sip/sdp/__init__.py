"""SDP session descriptions (RFC 8866, formerly RFC 4566): parse, typed views, build.

Owns the text format only: line grammar, field order, bounds, and read-only accessors for the
attributes an RTP endpoint needs (rtpmap, fmtp, ptime, direction, effective connection), in
model.py; parsing in parser.py. It must not know which codecs we support or how offer/answer
works (`offer_answer.py`), nor anything about sockets or SIP messages.

Every field is kept so that `parse_sdp(bytes(sd)) == sd`; lines of an unknown type letter are
kept too (RFC 8866 says to ignore such a description, but deployed peers send `y=`/`f=` lines
and a 488 helps nobody) and are re-emitted at the end of their section.
"""

from .model import (
    DEFAULT_SDP_LIMITS,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    ExtraLine,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SdpLimits,
    SessionDescription,
    Timing,
)
from .parser import parse_sdp

__all__ = [
    "DEFAULT_SDP_LIMITS",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "ExtraLine",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SdpError",
    "SdpLimits",
    "SessionDescription",
    "Timing",
    "parse_sdp",
]
