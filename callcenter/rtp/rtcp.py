"""RTCP: parse compound packets and build reports (RFC 3550 §6).

Owns the wire format of SR, RR (with report blocks), SDES and BYE, and the NTP timestamp
conversions reports need. Other packet types (APP, feedback, XR) are skipped by their length.
Knows nothing of sessions or when to send: the engine decides the interval (§6.2), the
statistics come from `stats.ReceptionStats`, and the time is passed in.

Every packet starts with the same four octets:

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |V=2|P|  RC/SC  |      PT       |             length            |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

`length` is the packet's size in 32-bit words minus one, so a compound packet is walked by
lengths alone. The checks are those of RFC 3550 A.2, less "the first packet is SR or RR",
which reduced-size RTCP (RFC 5506) relaxes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import LocalRtpError, RtpParseError

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

SDES_END = 0
SDES_CNAME = 1
SDES_NAME = 2
SDES_EMAIL = 3
SDES_PHONE = 4
SDES_LOC = 5
SDES_TOOL = 6
SDES_NOTE = 7
SDES_PRIV = 8

MAX_COUNT = 31
"""RC and SC are five bits."""

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900) to the Unix epoch (1970)."""

_COMMON = struct.Struct("!BBH")
_SR_INFO = struct.Struct("!IQIII")  # SSRC, NTP timestamp, RTP timestamp, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")
_U32 = struct.Struct("!I")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBlock:
    """One reception report block (§6.4.1). Field names follow the RFC.

    `cumulative_lost` is signed (duplicates can make it negative) and clamped to 24 bits
    when written; `fraction_lost` is the 8-bit fixed-point fraction (lost/expected * 256).
    """

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int = 0
    delay_since_last_sr: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderReport:
    """SR (§6.4.1): sender info plus report blocks. `ntp_timestamp` is the 64-bit value."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverReport:
    """RR (§6.4.2): report blocks from a participant that is not sending."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SdesItem:
    """One SDES item (§6.5): its type (SDES_CNAME …) and value (UTF-8 on the wire)."""

    type: int
    value: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SdesChunk:
    """The items describing one SSRC or CSRC."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    @property
    def cname(self) -> bytes | None:
        for item in self.items:
            if item.type == SDES_CNAME:
                return item.value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDescription:
    """SDES (§6.5): one chunk per source."""

    chunks: tuple[SdesChunk, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    """BYE (§6.6): the sources leaving, and an optional reason."""

    sources: tuple[int, ...] = ()
    reason: bytes | None = None


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye


# --- parsing -------------------------------------------------------------------------------


def parse_rtcp(data: bytes | memoryview) -> list[RtcpPacket]:
    """Parse a compound RTCP packet; unknown packet types are skipped by length.

    Raises RtpParseError unless every packet is version 2, the lengths add up to the
    datagram exactly, only the last packet is padded, and each known packet's contents fit
    its length.
    """
    size = len(data)
    if size < 4:
        raise RtpParseError("RTCP packet shorter than its common header")
    if size % 4:
        raise RtpParseError("RTCP compound packet is not a multiple of 32 bits")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < size:
        if offset + 4 > size:
            raise RtpParseError("RTCP packet header runs past the end")
        first, packet_type, words = _COMMON.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RtpParseError(f"RTCP version {first >> 6}, expected 2")
        end = offset + 4 * (words + 1)
        if end > size:
            raise RtpParseError(f"RTCP length of {words + 1} words runs past the end")
        body_end = end
        if first & 0x20:
            # "Padding ... only on the last individual packet" (§6.4.1, A.2).
            if end != size:
                raise RtpParseError("padding on an RTCP packet that is not the last")
            padding = data[end - 1]
            if padding == 0 or padding > end - offset - 4:
                raise RtpParseError(f"RTCP padding length {padding} does not fit")
            body_end = end - padding
        count = first & 0x1F
        start = offset + 4
        if packet_type == RTCP_SR:
            packets.append(_parse_sr(data, start, body_end, count))
        elif packet_type == RTCP_RR:
            packets.append(_parse_rr(data, start, body_end, count))
        elif packet_type == RTCP_SDES:
            packets.append(_parse_sdes(data, start, body_end, count))
        elif packet_type == RTCP_BYE:
            packets.append(_parse_bye(data, start, body_end, count))
        offset = end
    return packets


def _parse_report_blocks(
    data: bytes | memoryview, offset: int, end: int, count: int
) -> tuple[tuple[ReportBlock, ...], int]:
    stop = offset + _REPORT_BLOCK.size * count
    if stop > end:
        raise RtpParseError(f"{count} report blocks do not fit the packet")
    blocks = []
    for at in range(offset, stop, _REPORT_BLOCK.size):
        ssrc, loss, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, at)
        lost = loss & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        blocks.append(
            ReportBlock(
                ssrc=ssrc,
                fraction_lost=loss >> 24,
                cumulative_lost=lost,
                highest_sequence=highest,
                jitter=jitter,
                last_sr=lsr,
                delay_since_last_sr=dlsr,
            )
        )
    return tuple(blocks), stop


def _parse_sr(data: bytes | memoryview, offset: int, end: int, count: int) -> SenderReport:
    if offset + _SR_INFO.size > end:
        raise RtpParseError("SR shorter than its sender info")
    ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(data, offset)
    reports, stop = _parse_report_blocks(data, offset + _SR_INFO.size, end, count)
    return SenderReport(
        ssrc=ssrc,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_ts,
        packet_count=packets,
        octet_count=octets,
        reports=reports,
        extension=bytes(data[stop:end]),
    )


def _parse_rr(data: bytes | memoryview, offset: int, end: int, count: int) -> ReceiverReport:
    if offset + 4 > end:
        raise RtpParseError("RR shorter than its SSRC")
    (ssrc,) = _U32.unpack_from(data, offset)
    reports, stop = _parse_report_blocks(data, offset + 4, end, count)
    return ReceiverReport(ssrc=ssrc, reports=reports, extension=bytes(data[stop:end]))


def _parse_sdes(data: bytes | memoryview, offset: int, end: int, count: int) -> SourceDescription:
    chunks = []
    for _ in range(count):
        if offset + 4 > end:
            raise RtpParseError("SDES chunk runs past the end")
        (ssrc,) = _U32.unpack_from(data, offset)
        offset += 4
        items = []
        while True:
            if offset >= end:
                raise RtpParseError("SDES item list not terminated")
            item_type = data[offset]
            if item_type == SDES_END:
                # The null octet and the padding up to the next 32-bit boundary. Chunks
                # start at word boundaries, so the boundary is relative to the packet.
                offset = (offset + 4) & ~3
                if offset > end:
                    raise RtpParseError("SDES chunk padding runs past the end")
                break
            if offset + 2 > end:
                raise RtpParseError("SDES item header runs past the end")
            length = data[offset + 1]
            stop = offset + 2 + length
            if stop > end:
                raise RtpParseError("SDES item runs past the end")
            items.append(SdesItem(type=item_type, value=bytes(data[offset + 2 : stop])))
            offset = stop
        chunks.append(SdesChunk(ssrc=ssrc, items=tuple(items)))
    return SourceDescription(chunks=tuple(chunks))


def _parse_bye(data: bytes | memoryview, offset: int, end: int, count: int) -> Bye:
    stop = offset + 4 * count
    if stop > end:
        raise RtpParseError(f"BYE with {count} sources runs past the end")
    sources = struct.unpack_from(f"!{count}I", data, offset) if count else ()
    reason = None
    if stop < end:
        length = data[stop]
        if stop + 1 + length > end:
            raise RtpParseError("BYE reason runs past the end")
        reason = bytes(data[stop + 1 : stop + 1 + length])
    return Bye(sources=tuple(sources), reason=reason)


# --- building ------------------------------------------------------------------------------


def _header(count: int, packet_type: int, body: bytes) -> bytes:
    if not 0 <= count <= MAX_COUNT:
        raise LocalRtpError(f"RTCP count {count} does not fit five bits")
    if len(body) % 4:
        raise LocalRtpError("RTCP packet body is not a multiple of 32 bits")
    words = len(body) // 4
    if words > 0xFFFF:
        raise LocalRtpError("RTCP packet too long")
    return _COMMON.pack(0x80 | count, packet_type, words) + body


def _report_blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    parts = []
    for block in reports:
        if not 0 <= block.fraction_lost <= 255:
            raise LocalRtpError(f"fraction lost out of range: {block.fraction_lost}")
        # "Clamped": a 24-bit signed field, the largest magnitude it can carry (A.3).
        lost = max(-0x800000, min(0x7FFFFF, block.cumulative_lost)) & 0xFFFFFF
        parts.append(
            _REPORT_BLOCK.pack(
                block.ssrc,
                block.fraction_lost << 24 | lost,
                block.highest_sequence,
                block.jitter,
                block.last_sr,
                block.delay_since_last_sr,
            )
        )
    return b"".join(parts)


def _packet_bytes(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        info = _SR_INFO.pack(
            packet.ssrc,
            packet.ntp_timestamp,
            packet.rtp_timestamp,
            packet.packet_count,
            packet.octet_count,
        )
        body = info + _report_blocks(packet.reports) + packet.extension
        return _header(len(packet.reports), RTCP_SR, body)
    if isinstance(packet, ReceiverReport):
        body = _U32.pack(packet.ssrc) + _report_blocks(packet.reports) + packet.extension
        return _header(len(packet.reports), RTCP_RR, body)
    if isinstance(packet, SourceDescription):
        parts = []
        for chunk in packet.chunks:
            parts.append(_U32.pack(chunk.ssrc))
            size = 4
            for item in chunk.items:
                if not 1 <= item.type <= 255 or len(item.value) > 255:
                    raise LocalRtpError("SDES item type must be 1-255, value up to 255 octets")
                parts.append(bytes((item.type, len(item.value))) + item.value)
                size += 2 + len(item.value)
            # At least one null octet ends the list, then pad to 32 bits.
            parts.append(bytes(4 - size % 4))
        return _header(len(packet.chunks), RTCP_SDES, b"".join(parts))
    sources = b"".join(_U32.pack(ssrc) for ssrc in packet.sources)
    if packet.reason is not None:
        if len(packet.reason) > 255:
            raise LocalRtpError("BYE reason longer than 255 octets")
        reason = bytes((len(packet.reason),)) + packet.reason
        sources += reason + bytes(-len(reason) % 4)
    return _header(len(packet.sources), RTCP_BYE, sources)


def build_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Serialise packets into one compound datagram (no padding is ever added)."""
    try:
        return b"".join(_packet_bytes(packet) for packet in packets)
    except struct.error as exc:
        raise LocalRtpError(f"RTCP field out of range: {exc}") from None


def build_report(
    report: SenderReport | ReceiverReport, cname: str | bytes, bye: Bye | None = None
) -> bytes:
    """The compound packet a participant sends each interval: SR or RR, then SDES CNAME
    (§6.1: "each individual RTCP packet ... MUST contain ... a CNAME item"), then BYE if
    leaving."""
    value = cname.encode() if isinstance(cname, str) else cname
    sdes = SourceDescription(
        chunks=(SdesChunk(ssrc=report.ssrc, items=(SdesItem(type=SDES_CNAME, value=value),)),)
    )
    packets: list[RtcpPacket] = [report, sdes]
    if bye is not None:
        packets.append(bye)
    return build_rtcp(packets)


# --- NTP timestamps ------------------------------------------------------------------------


def ntp_timestamp(unix_seconds: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point since 1900) of a Unix time."""
    return round((unix_seconds + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp: LSR's format (§6.4.1)."""
    return (ntp >> 16) & 0xFFFF_FFFF


def round_trip_time(block: ReportBlock, arrival_ntp: int) -> float | None:
    """Seconds of round trip from a report block about our SR (§6.4.1: A - LSR - DLSR).

    `arrival_ntp` is when the report arrived, as a 64-bit NTP timestamp. None when the peer
    has not yet received an SR from us (LSR = 0).
    """
    if block.last_sr == 0:
        return None
    middle = (ntp_middle(arrival_ntp) - block.last_sr - block.delay_since_last_sr) & 0xFFFF_FFFF
    if middle & 0x8000_0000:
        return 0.0  # clocks or a bogus report put it in the past
    return middle / 65536.0
