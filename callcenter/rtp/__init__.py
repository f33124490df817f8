"""The sans-IO RTP core: packets, RTCP, sequence arithmetic, statistics, jitter buffer, DTMF.

Owns the RTP/RTCP wire formats (RFC 3550, RFC 5761 muxing), RFC 4733 telephone-events, the
A.1 source validation, A.3/A.8 reception statistics and the play-out buffer. Bytes and
header fields in, packets, frames and events out; time is an argument (`arrival`, `now`).
Must not know sockets, asyncio, clocks, logging, codecs (media/) or calls and rooms (engine/).
"""

from .dtmf import (
    EVENT_DIGITS,
    EVENT_FLASH,
    DtmfPacket,
    DtmfReceived,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
    digit_for_event,
    event_for_digit,
    parse_telephone_event,
)
from .errors import LocalRtpError, RtpError, RtpParseError
from .jitter import JitterBuffer, PushResult
from .packet import HEADER_SIZE, RtpExtension, RtpPacket, build_rtp, is_rtcp, parse_rtp
from .rtcp import (
    SDES_CNAME,
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SenderReport,
    SourceDescription,
    build_report,
    build_rtcp,
    ntp_middle,
    ntp_timestamp,
    parse_rtcp,
    round_trip_time,
)
from .seq import (
    MAX_DROPOUT,
    MAX_MISORDER,
    MIN_SEQUENTIAL,
    SourceState,
    extend_seq,
    seq_delta,
    seq_gt,
    seq_lt,
    ts_delta,
)
from .stats import LossInterval, ReceptionStats

__all__ = [
    "EVENT_DIGITS",
    "EVENT_FLASH",
    "HEADER_SIZE",
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "SDES_CNAME",
    "Bye",
    "DtmfPacket",
    "DtmfReceived",
    "DtmfReceiver",
    "DtmfSender",
    "JitterBuffer",
    "LocalRtpError",
    "LossInterval",
    "PushResult",
    "ReceiverReport",
    "ReceptionStats",
    "ReportBlock",
    "RtcpPacket",
    "RtpError",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "SdesChunk",
    "SdesItem",
    "SenderReport",
    "SourceDescription",
    "SourceState",
    "TelephoneEvent",
    "build_report",
    "build_rtcp",
    "build_rtp",
    "digit_for_event",
    "event_for_digit",
    "extend_seq",
    "is_rtcp",
    "ntp_middle",
    "ntp_timestamp",
    "parse_rtcp",
    "parse_rtp",
    "parse_telephone_event",
    "round_trip_time",
    "seq_delta",
    "seq_gt",
    "seq_lt",
    "ts_delta",
]
