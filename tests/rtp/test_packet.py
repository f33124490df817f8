"""RTP packets: hand-built vectors from RFC 3550 §5.1, round trips, and hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.rtp import (
    LocalRtpError,
    RtpError,
    RtpExtension,
    RtpPacket,
    RtpParseError,
    build_rtp,
    is_rtcp,
    parse_rtp,
)

# V=2 P=0 X=0 CC=0 | M=0 PT=0 (PCMU) | seq 0x1234 | ts 0x0000ABCD | SSRC 0xDEADBEEF | 160 x 0xFF
PCMU = b"\x80\x00\x12\x34\x00\x00\xab\xcd\xde\xad\xbe\xef" + b"\xff" * 160

# V=2 P=1 X=1 CC=2 (0xB2) | M=1 PT=8 (0x88) | seq 65535 | ts 0xFFFFFFFF | SSRC 1
# CSRC 0x11111111 0x22222222 | ext "defined by profile" 0xBEDE, 1 word: 10 AA 00 00
# payload "abc" | padding 00 00 00 04 (the last octet counts itself)
FULL = (
    b"\xb2\x88\xff\xff\xff\xff\xff\xff\x00\x00\x00\x01"
    b"\x11\x11\x11\x11\x22\x22\x22\x22"
    b"\xbe\xde\x00\x01\x10\xaa\x00\x00"
    b"abc"
    b"\x00\x00\x00\x04"
)


def test_common_header_vector() -> None:
    packet = parse_rtp(PCMU)
    assert packet.payload_type == 0
    assert packet.marker is False
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 0xABCD
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\xff" * 160
    assert packet.csrc == ()
    assert packet.extension is None
    assert packet.padding == 0
    assert packet.to_bytes() == PCMU
    assert bytes(packet) == PCMU


def test_build_rtp_matches_the_vector() -> None:
    assert build_rtp(0, 0x1234, 0xABCD, 0xDEADBEEF, b"\xff" * 160) == PCMU
    marked = build_rtp(101, 7, 8, 9, b"\x01\x02\x03\x04", marker=True)
    assert marked[:2] == b"\x80\xe5"  # M=1 | PT 101 = 0x80 | 0x65
    assert parse_rtp(marked).marker is True


def test_full_header_vector() -> None:
    packet = parse_rtp(FULL)
    assert packet.payload_type == 8
    assert packet.marker is True
    assert packet.sequence_number == 65535
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.ssrc == 1
    assert packet.csrc == (0x11111111, 0x22222222)
    assert packet.extension == RtpExtension(0xBEDE, b"\x10\xaa\x00\x00")
    assert packet.payload == b"abc"
    assert packet.padding == 4
    assert packet.to_bytes() == FULL


def test_memoryview_in_gives_a_view_out() -> None:
    view = memoryview(PCMU)
    packet = parse_rtp(view)
    assert isinstance(packet.payload, memoryview)
    assert packet.payload.obj is PCMU
    assert build_rtp(0, 1, 2, 3, packet.payload)[12:] == PCMU[12:]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter"),
        (PCMU[:11], "shorter"),
        (b"\x40" + PCMU[1:], "version 1"),
        (b"\x00" + PCMU[1:], "version 0"),
        (b"\xc0" + PCMU[1:], "version 3"),
        (b"\x81" + PCMU[1:12], "CSRC count"),  # CC=1, nothing after the fixed header
        (b"\x8f" + PCMU[1:12] + bytes(56), "CSRC count"),  # CC=15 needs 60 octets
        (b"\x90" + PCMU[1:12] + b"\xbe\xde", "extension"),  # X, header cut short
        (b"\x90" + PCMU[1:12] + b"\xbe\xde\x00\x02\x00\x00\x00\x00", "extension"),
        (b"\xa0" + PCMU[1:12] + b"\x00", "padding"),  # P with a count of 0
        (b"\xa0" + PCMU[1:12] + b"\x00\x05", "padding"),  # count past the header
    ],
)
def test_malformed_packets_raise(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError):
        parse_rtp(data)


def test_padding_may_fill_the_whole_payload() -> None:
    packet = parse_rtp(b"\xa0" + PCMU[1:12] + b"\x00\x00\x03")
    assert packet.payload == b""
    assert packet.padding == 3


def test_build_rejects_out_of_range_fields() -> None:
    with pytest.raises(LocalRtpError):
        build_rtp(128, 0, 0, 0, b"")
    with pytest.raises(LocalRtpError):
        build_rtp(0, 65536, 0, 0, b"")
    with pytest.raises(LocalRtpError):
        build_rtp(0, 0, 1 << 32, 0, b"")
    bad = RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=0, csrc=(0,) * 16)
    with pytest.raises(LocalRtpError):
        bad.to_bytes()
    odd = RtpPacket(
        payload_type=0, sequence_number=0, timestamp=0, ssrc=0, extension=RtpExtension(1, b"x")
    )
    with pytest.raises(LocalRtpError):
        odd.to_bytes()


def test_is_rtcp_by_payload_type_range() -> None:
    # RFC 5761 §4: RTCP packet types 192-223 are RTP payload types 64-95 with the marker.
    for packet_type in (200, 201, 202, 203, 204, 205, 206, 207):
        assert is_rtcp(bytes((0x80, packet_type, 0, 1)))
    for payload_type in (0, 8, 9, 18, 63, 96, 101, 127):
        assert not is_rtcp(build_rtp(payload_type, 0, 0, 0, b""))
        assert not is_rtcp(build_rtp(payload_type, 0, 0, 0, b"", marker=True))
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x80")


def test_equality_and_repr() -> None:
    a = parse_rtp(PCMU)
    b = parse_rtp(memoryview(PCMU))
    assert a == b
    assert a != parse_rtp(FULL)
    assert a != "packet"
    assert "sequence_number=4660" in repr(a)


u32 = st.integers(0, 0xFFFFFFFF)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    marker=st.booleans(),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=300),
    csrc=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpExtension,
        st.integers(0, 0xFFFF),
        st.binary(max_size=64).map(lambda b: b + bytes(-len(b) % 4)),
    ),
    padding=st.integers(0, 255),
)


@given(packets)
def test_any_valid_packet_round_trips(packet: RtpPacket) -> None:
    data = packet.to_bytes()
    parsed = parse_rtp(data)
    assert parsed == packet
    assert parsed.to_bytes() == data


@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    u32,
    u32,
    st.binary(max_size=300),
    st.booleans(),
)
def test_build_rtp_round_trips(
    pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool
) -> None:
    packet = parse_rtp(build_rtp(pt, seq, ts, ssrc, payload, marker))
    assert (packet.payload_type, packet.sequence_number, packet.timestamp) == (pt, seq, ts)
    assert (packet.ssrc, bytes(packet.payload), packet.marker) == (ssrc, payload, marker)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_rtp_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    assert len(packet.payload) + packet.padding <= len(data) - 12


@given(st.binary(min_size=12, max_size=120))
def test_arbitrary_v2_headers_raise_only_rtp_error(data: bytes) -> None:
    # Force version 2 so the slow path's length checks are what gets exercised.
    data = bytes((0x80 | (data[0] & 0x3F),)) + data[1:]
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    assert 12 + 4 * len(packet.csrc) + len(packet.payload) + packet.padding <= len(data)
