"""RTCP: hand-built compound packets from RFC 3550 §6.4-6.6, round trips, hostile bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.rtp import (
    SDES_CNAME,
    Bye,
    LocalRtpError,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtpError,
    RtpParseError,
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

# SR: V=2 P=0 RC=1 (0x81) | PT=200 (0xC8) | length 12 (13 words = 52 octets)
SR = (
    b"\x81\xc8\x00\x0c"
    b"\x01\x02\x03\x04"  # SSRC of sender
    b"\xe1\xa2\xb3\xc4\x80\x00\x00\x00"  # NTP timestamp, most and least significant word
    b"\x00\x00\x1f\x40"  # RTP timestamp 8000
    b"\x00\x00\x00\x32"  # sender's packet count 50
    b"\x00\x00\x1f\x40"  # sender's octet count 8000
    # report block: SSRC_1 | fraction 0x40 (1/4), cumulative 5 | ext. highest seq |
    # jitter 16 | LSR | DLSR 1 s
    b"\x0a\x0b\x0c\x0d\x40\x00\x00\x05\x00\x01\x00\x64\x00\x00\x00\x10"
    b"\x12\x34\x56\x78\x00\x01\x00\x00"
)
# SDES: SC=1 (0x81) | PT=202 (0xCA) | length 3 | SSRC | CNAME(1) len 4 "ab@c" | null + pad
SDES = b"\x81\xca\x00\x03\x01\x02\x03\x04\x01\x04ab@c\x00\x00"
# BYE: SC=1 (0x81) | PT=203 (0xCB) | length 2 | SSRC | reason length 3 "bye"
BYE = b"\x81\xcb\x00\x02\x01\x02\x03\x04\x03bye"
# APP: subtype 0 (0x80) | PT=204 | length 2 | SSRC | name "TEST": skipped by length
APP = b"\x80\xcc\x00\x02\x01\x02\x03\x04TEST"
# RR with no report blocks: RC=0 | PT=201 | length 1 | SSRC
RR = b"\x80\xc9\x00\x01\x01\x02\x03\x04"

BLOCK = ReportBlock(
    ssrc=0x0A0B0C0D,
    fraction_lost=0x40,
    cumulative_lost=5,
    highest_sequence=0x00010064,
    jitter=16,
    last_sr=0x12345678,
    delay_since_last_sr=0x10000,
)
SENDER = SenderReport(
    ssrc=0x01020304,
    ntp_timestamp=0xE1A2B3C4_80000000,
    rtp_timestamp=8000,
    packet_count=50,
    octet_count=8000,
    reports=(BLOCK,),
)
DESCRIPTION = SourceDescription(
    chunks=(SdesChunk(ssrc=0x01020304, items=(SdesItem(type=SDES_CNAME, value=b"ab@c"),)),)
)


def test_compound_vector() -> None:
    packets = parse_rtcp(SR + SDES + APP + BYE)
    assert packets == [SENDER, DESCRIPTION, Bye(sources=(0x01020304,), reason=b"bye")]
    assert isinstance(packets[1], SourceDescription)
    assert packets[1].chunks[0].cname == b"ab@c"


def test_builders_match_the_vectors() -> None:
    assert build_report(SENDER, "ab@c") == SR + SDES
    bye = Bye(sources=(0x01020304,), reason=b"bye")
    assert build_report(SENDER, b"ab@c", bye) == SR + SDES + BYE
    assert build_rtcp([ReceiverReport(ssrc=0x01020304)]) == RR


def test_negative_cumulative_loss_and_clamping() -> None:
    block = ReportBlock(ssrc=1, fraction_lost=0, cumulative_lost=-1, highest_sequence=0, jitter=0)
    data = build_rtcp([ReceiverReport(ssrc=2, reports=(block,))])
    assert data[12:16] == b"\x00\xff\xff\xff"
    (parsed,) = parse_rtcp(data)
    assert isinstance(parsed, ReceiverReport)
    assert parsed.reports[0].cumulative_lost == -1
    huge = ReportBlock(
        ssrc=1, fraction_lost=0, cumulative_lost=1 << 30, highest_sequence=0, jitter=0
    )
    (clamped,) = parse_rtcp(build_rtcp([ReceiverReport(ssrc=2, reports=(huge,))]))
    assert isinstance(clamped, ReceiverReport)
    assert clamped.reports[0].cumulative_lost == 0x7FFFFF


def test_sdes_chunk_without_items_and_word_aligned_items() -> None:
    # SSRC then a null octet and three of padding; an item of 2 octets leaves a full word
    # of nulls after it.
    empty = SourceDescription(chunks=(SdesChunk(ssrc=7),))
    data = build_rtcp([empty])
    assert data == b"\x81\xca\x00\x02\x00\x00\x00\x07\x00\x00\x00\x00"
    assert parse_rtcp(data) == [empty]
    two = SourceDescription(
        chunks=(SdesChunk(ssrc=7, items=(SdesItem(type=SDES_CNAME, value=b"xy"),)),)
    )
    data = build_rtcp([two])
    assert data == b"\x81\xca\x00\x03\x00\x00\x00\x07\x01\x02xy\x00\x00\x00\x00"
    assert parse_rtcp(data) == [two]


def test_padding_on_the_last_packet() -> None:
    padded = b"\xa0\xc9\x00\x02\x01\x02\x03\x04\x00\x00\x00\x04"  # RR + 4 octets padding
    assert parse_rtcp(padded) == [ReceiverReport(ssrc=0x01020304)]
    with pytest.raises(RtpParseError):
        parse_rtcp(padded + RR)  # padding on a packet that is not the last


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\xc9\x00",
        b"\x80\xc9\x00\x01\x01\x02\x03",  # not a multiple of 4
        b"\x40\xc9\x00\x01\x01\x02\x03\x04",  # version 1
        b"\x80\xc9\x00\x02\x01\x02\x03\x04",  # length past the end
        b"\x81\xc9\x00\x01\x01\x02\x03\x04",  # RC=1 without a block
        b"\x80\xc8\x00\x01\x01\x02\x03\x04",  # SR without sender info
        b"\x80\xc9\x00\x00",  # RR without SSRC
        b"\xa0\xc9\x00\x01\x01\x02\x03\x00",  # padding count 0
        b"\xa0\xc9\x00\x01\x01\x02\x03\x09",  # padding count past the header
        b"\x81\xca\x00\x01\x00\x00\x00\x07",  # SDES list not terminated
        b"\x81\xca\x00\x02\x00\x00\x00\x07\x01\x09ab",  # item past the end
        b"\x82\xca\x00\x02\x00\x00\x00\x07\x00\x00\x00\x00",  # SC=2, one chunk
        b"\x82\xcb\x00\x01\x00\x00\x00\x07",  # BYE SC=2, one SSRC
        b"\x81\xcb\x00\x02\x00\x00\x00\x07\x09bye",  # reason past the end
    ],
)
def test_malformed_compounds_raise(data: bytes) -> None:
    with pytest.raises(RtpParseError):
        parse_rtcp(data)


def test_build_rejects_what_does_not_fit() -> None:
    with pytest.raises(LocalRtpError):
        build_rtcp([ReceiverReport(ssrc=1, reports=(BLOCK,) * 32)])
    with pytest.raises(LocalRtpError):
        build_rtcp([Bye(reason=b"x" * 256)])
    with pytest.raises(LocalRtpError):
        build_rtcp(
            [SourceDescription(chunks=(SdesChunk(ssrc=1, items=(SdesItem(type=0, value=b""),)),))]
        )
    with pytest.raises(LocalRtpError):
        build_rtcp([ReceiverReport(ssrc=1 << 32)])
    with pytest.raises(LocalRtpError):
        build_rtcp([ReceiverReport(ssrc=1, extension=b"abc")])


def test_ntp_helpers_and_round_trip_time() -> None:
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1.5) & 0xFFFFFFFF == 0x80000000
    ntp = 0xE1A2B3C4_80000000
    assert ntp_middle(ntp) == 0xB3C48000
    # We sent an SR at t; the peer held it 1 s (DLSR) and its report reached us at t + 1.25.
    sent = ntp_timestamp(1000.0)
    block = ReportBlock(
        ssrc=1,
        fraction_lost=0,
        cumulative_lost=0,
        highest_sequence=0,
        jitter=0,
        last_sr=ntp_middle(sent),
        delay_since_last_sr=65536,
    )
    rtt = round_trip_time(block, ntp_timestamp(1001.25))
    assert rtt is not None
    assert rtt == pytest.approx(0.25, abs=1e-4)
    no_sr = ReportBlock(ssrc=1, fraction_lost=0, cumulative_lost=0, highest_sequence=0, jitter=0)
    assert round_trip_time(no_sr, sent) is None


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
    highest_sequence=u32,
    jitter=u32,
    last_sr=u32,
    delay_since_last_sr=u32,
)
words = st.binary(max_size=16).map(lambda b: b + bytes(-len(b) % 4))
report_lists = st.lists(blocks, max_size=31).map(tuple)
rtcp_packets: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, (1 << 64) - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=report_lists,
        extension=words,
    ),
    st.builds(ReceiverReport, ssrc=u32, reports=report_lists, extension=words),
    st.builds(
        SourceDescription,
        chunks=st.lists(
            st.builds(
                SdesChunk,
                ssrc=u32,
                items=st.lists(
                    st.builds(SdesItem, type=st.integers(1, 255), value=st.binary(max_size=40)),
                    max_size=4,
                ).map(tuple),
            ),
            max_size=4,
        ).map(tuple),
    ),
    st.builds(
        Bye,
        sources=st.lists(u32, max_size=31).map(tuple),
        reason=st.none() | st.binary(max_size=255),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=5))
def test_any_compound_round_trips(packets: list[RtcpPacket]) -> None:
    data = build_rtcp(packets)
    assert parse_rtcp(data) == packets
    assert build_rtcp(parse_rtcp(data)) == data


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_rtp_error(data: bytes) -> None:
    with contextlib.suppress(RtpError):
        parse_rtcp(data)


@given(
    st.lists(
        st.tuples(st.integers(0, 31), st.integers(200, 204), st.binary(max_size=60)),
        min_size=1,
        max_size=4,
    )
)
def test_plausible_headers_raise_only_rtp_error(parts: list[tuple[int, int, bytes]]) -> None:
    # Version 2 and lengths that add up, so parsing reaches the packet bodies.
    data = b""
    for count, packet_type, body in parts:
        body += bytes(-len(body) % 4)
        data += bytes((0x80 | count, packet_type)) + (len(body) // 4).to_bytes(2, "big") + body
    with contextlib.suppress(RtpError):
        parse_rtcp(data)
