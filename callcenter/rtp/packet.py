"""RTP data packets: parse and build the fixed header, CSRC list and extension (RFC 3550 §5.1).

Owns the wire format of one RTP packet and telling RTP from RTCP on a shared port
(RFC 5761 §4). Knows nothing of sessions, sources, payload formats or time: the payload is
handed back as a slice of the datagram, undecoded.

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           timestamp                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           synchronization source (SSRC) identifier            |
    +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
    |            contributing source (CSRC) identifiers             |
    |                             ....                              |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |      defined by profile       |           length              |  (if X)
    |                        header extension                       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The engine calls `parse_rtp` for every datagram (50 per second per call), so the common
12-byte header (first octet 0x80: no padding, extension or CSRC) takes a short path with one
`unpack_from`, one object and one slice.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .errors import LocalRtpError, RtpParseError

RTP_VERSION = 2
HEADER_SIZE = 12

_HEADER = struct.Struct("!BBHII")
_unpack_header = _HEADER.unpack_from
_pack_header = _HEADER.pack
_EXTENSION_HEADER = struct.Struct("!HH")
_new_object = object.__new__


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The header extension (RFC 3550 §5.3.1): a profile-defined 16-bit tag and the data.

    `data` is kept whole (a multiple of 4 octets); RFC 8285 elements are not split out.
    """

    profile: int
    data: bytes


class RtpPacket:
    """One RTP packet. Fields carry the RFC 3550 names; `payload` is a slice of the datagram.

    Mutable on purpose: a relay rewrites `ssrc`, `sequence_number` and `timestamp` and calls
    `to_bytes()`. `padding` is the number of padding octets (0 for none); when written, the
    padding is zeros ending in the count, so a parsed packet with non-zero filler does not
    round-trip byte for byte (RFC 3550 leaves the filler's value open).
    """

    __slots__ = (
        "csrc",
        "extension",
        "marker",
        "padding",
        "payload",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes | memoryview
    csrc: tuple[int, ...]
    extension: RtpExtension | None
    padding: int

    def __init__(
        self,
        *,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: bytes | memoryview = b"",
        marker: bool = False,
        csrc: tuple[int, ...] = (),
        extension: RtpExtension | None = None,
        padding: int = 0,
    ) -> None:
        self.payload_type = payload_type
        self.marker = marker
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.csrc = csrc
        self.extension = extension
        self.padding = padding

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.payload_type,
            self.marker,
            self.sequence_number,
            self.timestamp,
            self.ssrc,
            bytes(self.payload),
            self.csrc,
            self.extension,
            self.padding,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RtpPacket):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"RtpPacket(payload_type={self.payload_type}, marker={self.marker}, "
            f"sequence_number={self.sequence_number}, timestamp={self.timestamp}, "
            f"ssrc={self.ssrc:#010x}, payload=<{len(self.payload)} octets>, "
            f"csrc={self.csrc}, extension={self.extension}, padding={self.padding})"
        )

    def to_bytes(self) -> bytes:
        """The packet on the wire; raises LocalRtpError for values that do not fit."""
        csrc = self.csrc
        extension = self.extension
        padding = self.padding
        if not 0 <= self.payload_type <= 127:
            raise LocalRtpError(f"payload type out of range: {self.payload_type}")
        if len(csrc) > 15:
            raise LocalRtpError("more than 15 CSRC identifiers")
        if not 0 <= padding <= 255:
            raise LocalRtpError(f"padding length out of range: {padding}")
        b0 = 0x80 | len(csrc)
        if padding:
            b0 |= 0x20
        if extension is not None:
            b0 |= 0x10
        b1 = self.payload_type | 0x80 if self.marker else self.payload_type
        try:
            parts: list[bytes | memoryview] = [
                _pack_header(b0, b1, self.sequence_number, self.timestamp, self.ssrc)
            ]
            if csrc:
                parts.append(struct.pack(f"!{len(csrc)}I", *csrc))
            if extension is not None:
                data = extension.data
                if len(data) % 4 or len(data) > 0xFFFF * 4:
                    raise LocalRtpError("header extension must be a multiple of 4 octets")
                parts.append(_EXTENSION_HEADER.pack(extension.profile, len(data) // 4))
                parts.append(data)
        except struct.error as exc:
            raise LocalRtpError(f"RTP header field out of range: {exc}") from None
        parts.append(self.payload)
        if padding:
            parts.append(bytes(padding - 1) + bytes((padding,)))
        return b"".join(parts)

    __bytes__ = to_bytes


def parse_rtp(data: bytes | memoryview) -> RtpPacket:
    """Parse one RTP packet; raises RtpParseError when it is malformed.

    Every length (CSRC list, extension, padding) is checked against the datagram before it
    is used. The payload is `data[start:end]`: a memoryview in gives a zero-copy view out.
    The payload type is not judged here: run `is_rtcp` first on a muxed port.
    """
    size = len(data)
    if size < HEADER_SIZE:
        raise RtpParseError(f"RTP packet of {size} octets is shorter than the fixed header")
    b0, b1, seq, timestamp, ssrc = _unpack_header(data)
    if b0 == 0x80:
        # The common case: V=2, no padding, no extension, no CSRC. Built without __init__
        # (keyword binding is a measurable part of the per-packet cost).
        packet: RtpPacket = _new_object(RtpPacket)
        packet.payload_type = b1 & 0x7F
        packet.marker = b1 > 127
        packet.sequence_number = seq
        packet.timestamp = timestamp
        packet.ssrc = ssrc
        packet.payload = data[HEADER_SIZE:]
        packet.csrc = ()
        packet.extension = None
        packet.padding = 0
        return packet
    return _parse_general(data, size, b0, b1, seq, timestamp, ssrc)


def _parse_general(
    data: bytes | memoryview, size: int, b0: int, b1: int, seq: int, timestamp: int, ssrc: int
) -> RtpPacket:
    if b0 >> 6 != RTP_VERSION:
        raise RtpParseError(f"RTP version {b0 >> 6}, expected 2")
    offset = HEADER_SIZE
    count = b0 & 0x0F
    csrc: tuple[int, ...] = ()
    if count:
        end = offset + 4 * count
        if end > size:
            raise RtpParseError(f"CSRC count {count} runs past the end of the packet")
        csrc = struct.unpack_from(f"!{count}I", data, offset)
        offset = end
    extension = None
    if b0 & 0x10:
        if offset + 4 > size:
            raise RtpParseError("header extension runs past the end of the packet")
        profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
        end = offset + 4 + 4 * words
        if end > size:
            raise RtpParseError(f"header extension of {words} words runs past the end")
        extension = RtpExtension(profile, bytes(data[offset + 4 : end]))
        offset = end
    padding = 0
    end = size
    if b0 & 0x20:
        # "The last octet of the padding contains a count of how many padding octets
        # should be ignored, including itself" (§5.1): at least 1, within the payload area.
        padding = data[size - 1]
        if padding == 0 or padding > size - offset:
            raise RtpParseError(f"padding length {padding} does not fit the packet")
        end = size - padding
    packet: RtpPacket = _new_object(RtpPacket)
    packet.payload_type = b1 & 0x7F
    packet.marker = b1 > 127
    packet.sequence_number = seq
    packet.timestamp = timestamp
    packet.ssrc = ssrc
    packet.payload = data[offset:end]
    packet.csrc = csrc
    packet.extension = extension
    packet.padding = padding
    return packet


def build_rtp(
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: bytes | memoryview,
    marker: bool = False,
) -> bytes:
    """A packet with the plain 12-byte header: the sending fast path.

    Field ranges are checked by `struct` at no extra cost; the payload type is checked
    here because an out-of-range one would silently set the marker bit.
    """
    if not 0 <= payload_type <= 127:
        raise LocalRtpError(f"payload type out of range: {payload_type}")
    try:
        header = _pack_header(
            0x80, payload_type | 0x80 if marker else payload_type, sequence_number, timestamp, ssrc
        )
    except struct.error as exc:
        raise LocalRtpError(f"RTP header field out of range: {exc}") from None
    return header + payload


def is_rtcp(data: bytes | memoryview) -> bool:
    """True if a datagram on an RTP/RTCP-muxed port is RTCP (RFC 5761 §4).

    The second octet is the RTP marker + payload type, or the RTCP packet type. RTCP types
    192-223 read as RTP payload types 64-95 (marker set), a range RTP must not use when
    muxing; so anything whose low seven bits fall in 64-95 is RTCP.
    """
    return len(data) > 1 and 64 <= (data[1] & 0x7F) <= 95
