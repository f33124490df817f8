"""SDP parse/build: real-world bodies, accessors, bounds, malformed input, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.errors import LocalProtocolError
from callcenter.sip.sdp import (
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SdpLimits,
    SessionDescription,
    Timing,
    parse_sdp,
)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


# SIPp's built-in uac_pcap scenario (PCMA plus RFC 4733 events), addresses filled in.
SIPP_UAC_PCAP = crlf(
    """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
"""
)

# baresip 3.x offering opus, G722, G.711 and telephone-event at both 48 kHz and 8 kHz.
BARESIP = crlf(
    """v=0
o=- 1463843218 3224383466 IN IP4 192.168.1.50
s=-
c=IN IP4 192.168.1.50
t=0 0
m=audio 10144 RTP/AVP 96 9 0 8 102 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:102 telephone-event/48000
a=fmtp:102 0-15
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-rsize
a=sendrecv
a=label:1
a=ssrc:2771483611 cname:6fd1f4f3-9b8b-4a8c-bd3a-7c3a1ec7a2d1
a=rtcp-mux
"""
)

# A Cisco IOS gateway / SIP trunk: G.729 first, CN, a media-level c= line.
CISCO = crlf(
    """v=0
o=CiscoSystemsSIP-GW-UserAgent 2770 6577 IN IP4 198.51.100.10
s=SIP Call
c=IN IP4 198.51.100.10
t=0 0
m=audio 17894 RTP/AVP 18 0 8 101 19
c=IN IP4 198.51.100.10
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtpmap:19 CN/8000
a=ptime:20
"""
)

# RFC 5118 §4.4-style IPv6 SDP: no brackets around the address.
RFC5118_IP6 = crlf(
    """v=0
o=assistant 971731711378798081 0 IN IP6 2001:db8::20
s=Live video feed
e=<asst@example.com>
c=IN IP6 2001:db8::20
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""
)

# RFC 5118 §4.5-style dual-stack offer: one stream per address family (ANAT grouping).
DUAL_STACK = crlf(
    """v=0
o=bob 280744730 28977631 IN IP4 host.example.com
s=
t=0 0
a=group:ANAT 1 2
m=audio 25000 RTP/AVP 0
c=IN IP4 192.0.2.1
a=mid:1
m=audio 22334 RTP/AVP 0
c=IN IP6 2001:db8::1
a=mid:2
"""
)

REAL_WORLD = [SIPP_UAC_PCAP, BARESIP, CISCO, RFC5118_IP6, DUAL_STACK]


@pytest.mark.parametrize("body", REAL_WORLD)
def test_real_world_bodies_round_trip_byte_for_byte(body: bytes) -> None:
    sd = parse_sdp(body)
    assert bytes(sd) == body
    assert sd.to_bytes() == body
    assert parse_sdp(bytes(sd)) == sd


@pytest.mark.parametrize("body", REAL_WORLD)
def test_lf_only_and_str_input_parse_the_same(body: bytes) -> None:
    lf = body.replace(b"\r\n", b"\n")
    assert parse_sdp(lf) == parse_sdp(body)
    assert parse_sdp(lf.decode()) == parse_sdp(body)
    assert bytes(parse_sdp(lf)) == body


def test_missing_final_newline_and_trailing_blank_lines_are_accepted() -> None:
    assert parse_sdp(SIPP_UAC_PCAP.rstrip(b"\r\n")) == parse_sdp(SIPP_UAC_PCAP)
    assert parse_sdp(SIPP_UAC_PCAP + b"\r\n\r\n") == parse_sdp(SIPP_UAC_PCAP)


def test_sipp_fields() -> None:
    sd = parse_sdp(SIPP_UAC_PCAP)
    assert sd.version == 0
    assert sd.origin == Origin(
        username="user1", sess_id=53655765, sess_version=2353687637, address="127.0.0.1"
    )
    assert sd.session_name == "-"
    assert sd.connection == Connection(address="127.0.0.1")
    assert sd.timings == (Timing(start=0, stop=0),)
    (m,) = sd.media
    assert (m.media, m.port, m.port_count, m.proto) == ("audio", 6000, None, "RTP/AVP")
    assert m.formats == ("8", "101")
    assert m.payload_types == (8, 101)
    assert m.is_rtp
    assert m.rtpmap(8) == RtpMap(payload_type=8, encoding_name="PCMA", clock_rate=8000)
    assert m.rtpmap(101) == RtpMap(
        payload_type=101, encoding_name="telephone-event", clock_rate=8000
    )
    assert m.rtpmap(0) is None  # static types are offer_answer's knowledge, not the parser's
    assert m.fmtp(101) == "0-11,16"
    assert m.fmtp("8") is None
    assert m.ptime is None
    assert m.direction is None
    assert sd.direction_of(m) is Direction.SENDRECV
    assert sd.connection_of(m) == Connection(address="127.0.0.1")


def test_baresip_accessors() -> None:
    sd = parse_sdp(BARESIP)
    (m,) = sd.media
    assert m.bandwidths == (Bandwidth(bwtype="AS", bandwidth=128),)
    assert m.rtpmap(96) == RtpMap(
        payload_type=96, encoding_name="opus", clock_rate=48000, channels=2
    )
    assert m.rtpmaps().keys() == {96, 9, 0, 8, 102, 101}
    assert m.fmtp(96) == "stereo=1;sprop-stereo=1"
    assert m.fmtp(102) == "0-15"
    assert m.direction is Direction.SENDRECV
    assert m.attribute("rtcp-mux") is None
    assert ("rtcp-mux", None) in m.attributes
    assert m.attribute("ssrc") == "2771483611 cname:6fd1f4f3-9b8b-4a8c-bd3a-7c3a1ec7a2d1"


def test_cisco_media_level_connection_and_ptime() -> None:
    sd = parse_sdp(CISCO)
    (m,) = sd.media
    assert sd.session_name == "SIP Call"
    assert m.connection == Connection(address="198.51.100.10")
    assert m.ptime == 20
    assert m.fmtp(18) == "annexb=no"
    assert m.rtpmap(19) == RtpMap(payload_type=19, encoding_name="CN", clock_rate=8000)


def test_ipv6_without_brackets() -> None:
    sd = parse_sdp(RFC5118_IP6)
    assert sd.origin.addrtype == "IP6"
    assert sd.origin.sess_id == 971731711378798081
    assert sd.emails == ("<asst@example.com>",)
    assert sd.connection == Connection(addrtype="IP6", address="2001:db8::20")
    assert sd.connection is not None and sd.connection.family == 6


def test_per_media_connections_of_both_families() -> None:
    sd = parse_sdp(DUAL_STACK)
    assert sd.connection is None
    assert sd.session_name == ""
    assert sd.attribute("group") == "ANAT 1 2"
    first, second = sd.media
    c1, c2 = sd.connection_of(first), sd.connection_of(second)
    assert c1 is not None and c2 is not None
    assert (c1.family, c1.address) == (4, "192.0.2.1")
    assert (c2.family, c2.address) == (6, "2001:db8::1")
    assert first.attribute("mid") == "1"


def test_direction_media_level_overrides_session_level() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
a=sendonly
m=audio 4000 RTP/AVP 0
m=audio 4002 RTP/AVP 0
a=inactive
"""
    )
    sd = parse_sdp(body)
    assert sd.direction is Direction.SENDONLY
    assert sd.direction_of(sd.media[0]) is Direction.SENDONLY
    assert sd.direction_of(sd.media[1]) is Direction.INACTIVE


@pytest.mark.parametrize(
    ("direction", "sends", "receives", "reverse"),
    [
        (Direction.SENDRECV, True, True, Direction.SENDRECV),
        (Direction.SENDONLY, True, False, Direction.RECVONLY),
        (Direction.RECVONLY, False, True, Direction.SENDONLY),
        (Direction.INACTIVE, False, False, Direction.INACTIVE),
    ],
)
def test_direction_flags(
    direction: Direction, sends: bool, receives: bool, reverse: Direction
) -> None:
    assert (direction.sends, direction.receives) == (sends, receives)
    assert direction.reversed() is reverse
    assert Direction.from_flags(sends=sends, receives=receives) is direction


def test_ptime_maxptime_and_odd_values() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0
a=ptime:30
a=maxptime:40
m=audio 4002 RTP/AVP 0
a=ptime:20.0
a=maxptime
"""
    )
    first, second = parse_sdp(body).media
    assert (first.ptime, first.maxptime) == (30, 40)
    # ptime is advisory: an unusable value reads as absent instead of failing the call.
    assert (second.ptime, second.maxptime) == (None, None)


def test_unknown_lines_and_attributes_are_kept() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
i=session info
u=http://example.com/s
e=ops@example.com
p=+1 555 0100
c=IN IP4 192.0.2.1
b=CT:64
t=2873397496 2873404696
r=604800 3600 0 90000
t=0 0
z=2882844526 -1h
k=prompt
a=x-vendor:foo bar
a=recvonly
y=0100000001
m=audio 4000 RTP/AVP 0
i=voice
b=TIAS:64000
k=clear:secret
a=x-flag
a=x-empty:
f=v/2/25
"""
    )
    sd = parse_sdp(body)
    assert bytes(sd) == body
    assert sd.information == "session info"
    assert sd.uri == "http://example.com/s"
    assert sd.phones == ("+1 555 0100",)
    assert sd.timings[0].repeats == ("604800 3600 0 90000",)
    assert sd.zone == "2882844526 -1h"
    assert sd.key == "prompt"
    assert sd.extra_lines == (("y", "0100000001"),)
    (m,) = sd.media
    assert m.attributes == (("x-flag", None), ("x-empty", ""))
    assert m.extra_lines == (("f", "v/2/25"),)
    assert (m.information, m.key) == ("voice", "clear:secret")


def test_unknown_lines_move_to_the_end_of_their_section() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
y=1
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0
"""
    )
    sd = parse_sdp(body)
    assert bytes(sd).splitlines()[4:6] == [b"t=0 0", b"y=1"]
    assert parse_sdp(bytes(sd)) == sd


def test_lenient_session_order_is_normalised() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
t=0 0
a=tool:x
c=IN IP4 192.0.2.1
m=audio  4000  RTP/AVP  0
"""
    )
    sd = parse_sdp(body)
    assert sd.connection == Connection(address="192.0.2.1")
    assert bytes(sd) == crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
a=tool:x
m=audio 4000 RTP/AVP 0
"""
    )


def test_multicast_connections() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
t=0 0
m=audio 4000/2 RTP/AVP 0
c=IN IP4 233.252.0.1/127/3
m=audio 4004 RTP/AVP 0
c=IN IP6 ff15::101/3
"""
    )
    sd = parse_sdp(body)
    assert sd.media[0].port_count == 2
    assert sd.media[0].connection == Connection(address="233.252.0.1", ttl=127, count=3)
    assert sd.media[1].connection == Connection(addrtype="IP6", address="ff15::101", count=3)
    assert bytes(sd) == body


def test_non_rtp_formats_and_rejected_stream_without_connection() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
t=0 0
m=image 0 udptl t38
m=application 0 TCP/MRCPv2 1
"""
    )
    sd = parse_sdp(body)
    assert sd.media[0].formats == ("t38",)
    assert not sd.media[0].is_rtp
    assert sd.media[0].payload_types == ()
    assert bytes(sd) == body


def test_other_network_types_are_kept_opaque() -> None:
    body = crlf(
        """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=TN RFC2543 +15550100
t=0 0
m=audio 4000 RTP/AVP 0
"""
    )
    sd = parse_sdp(body)
    assert sd.connection == Connection(nettype="TN", addrtype="RFC2543", address="+15550100")
    assert sd.connection is not None and sd.connection.family is None
    assert not sd.connection.is_unspecified
    assert bytes(sd) == body


def test_unspecified_addresses() -> None:
    assert Connection(address="0.0.0.0").is_unspecified
    assert Connection(addrtype="IP6", address="::").is_unspecified
    assert not Connection(address="192.0.2.1").is_unspecified
    assert not Connection(address="nonsense").is_unspecified


def test_non_utf8_octets_round_trip() -> None:
    body = SIPP_UAC_PCAP.replace(b"s=-", b"s=Caf\xe9")
    sd = parse_sdp(body)
    assert bytes(sd) == body


BASE = """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
"""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("v=0\n", ""),  # missing v=
        ("o=- 1 1 IN IP4 192.0.2.1\n", ""),  # missing o=
        ("s=-\n", ""),  # missing s=
        ("t=0 0\n", ""),  # missing t=
        ("v=0\no=- 1 1 IN IP4 192.0.2.1\n", "o=- 1 1 IN IP4 192.0.2.1\nv=0\n"),  # order
        ("v=0", "v=1"),
        ("s=-\n", "s=-\ns=again\n"),
        ("s=-\n", "s=-\no=- 2 2 IN IP4 192.0.2.1\n"),
        ("t=0 0\nm=audio 4000 RTP/AVP 0 101\n", "m=audio 4000 RTP/AVP 0 101\nt=0 0\n"),
        ("a=rtpmap", "t=0 0\na=rtpmap"),  # session-only line in media
        ("t=0 0\n", "r=1 2 3\nt=0 0\n"),  # r= before t=
        ("t=0 0\n", "t=0\n"),
        ("t=0 0\n", "t=x 0\n"),
        ("o=- 1 1", "o=- x 1"),
        ("o=- 1 1", "o=- -1 1"),
        ("o=- 1 1 IN IP4 192.0.2.1", "o=- 1 1 IN IP4"),
        ("o=- 1 1", "o=- 123456789012345678901 1"),  # more than 64 bits
        ("m=audio 4000 RTP/AVP 0 101", "m=audio 4000 RTP/AVP"),  # active, no formats
        ("m=audio 4000 RTP/AVP 0 101", "m=audio 4000"),
        ("m=audio 4000", "m=audio x"),
        ("m=audio 4000", "m=audio 65536"),
        ("m=audio 4000", "m=audio -1"),
        ("m=audio 4000", "m=audio +4000"),
        ("m=audio 4000", "m=audio 4_000"),
        ("m=audio 4000", "m=audio ٤٠٠٠"),  # Arabic-Indic digits
        ("m=audio 4000", "m=audio 4000/0"),
        ("RTP/AVP 0 101", "RTP/AVP 0 128"),
        ("RTP/AVP 0 101", "RTP/AVP PCMU"),
        ("RTP/AVP", "RTP//AVP"),
        ("m=audio", "m=aud:io"),
        ("c=IN IP4 192.0.2.1\n", ""),  # no connection for an active stream
        ("c=IN IP4 192.0.2.1", "c=IN IP4 256.1.1.1"),
        ("c=IN IP4 192.0.2.1", "c=IN IP4 2001:db8::1"),
        ("c=IN IP4 192.0.2.1", "c=IN IP6 192.0.2.1"),
        ("c=IN IP4 192.0.2.1", "c=IN IP6 [2001:db8::1]"),
        ("c=IN IP4 192.0.2.1", "c=IN IP6 fe80::1%eth0"),
        ("c=IN IP4 192.0.2.1", "c=IN IP4 pbx.example.com"),
        ("c=IN IP4 192.0.2.1", "c=IN IP4 192.0.2.1/127"),  # TTL on unicast
        ("c=IN IP4 192.0.2.1", "c=IN IP4 233.252.0.1/256"),
        ("c=IN IP4 192.0.2.1", "c=IN IP4 233.252.0.1/1/2/3"),
        ("c=IN IP4 192.0.2.1", "c=IN IP6 ff15::1/1/2"),
        ("c=IN IP4 192.0.2.1", "c=IN IP4"),
        ("c=IN IP4 192.0.2.1\n", "c=IN IP4 192.0.2.1\nc=IN IP4 192.0.2.2\n"),
        ("a=rtpmap:101", "c=IN IP4 192.0.2.1\nc=IN IP4 192.0.2.2\na=rtpmap:101"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:101 telephone-event/0"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:101 telephone-event/9000000"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:101 telephone-event"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:200 telephone-event/8000"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:101 /8000"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:101 x/8000/0"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap:101 x/8000/1/2"),
        ("a=rtpmap:101 telephone-event/8000", "a=rtpmap"),
        ("a=rtpmap:101 telephone-event/8000", "a=fmtp"),
        ("a=rtpmap:101 telephone-event/8000", "a=fmtp: 0-15"),
        ("a=rtpmap", "a=rtp map"),
        ("a=rtpmap", "a=:x\na=rtpmap"),
        ("t=0 0\n", "t=0 0\nb=AS\n"),
        ("t=0 0\n", "t=0 0\nb=AS:x\n"),
        ("t=0 0\n", "z=0 -1h\nt=0 0\n"),
        ("t=0 0\n", "t=0 0\ni=a\ni=b\n"),
        ("s=-\n", "s=-\nA=upper\n"),
        ("s=-\n", "s=-\n1=digit\n"),
        ("s=-\n", "s=-\nno equals\n"),
        ("s=-\n", "s=-\na =x\n"),
        ("s=-\n", "s=-\n\n"),  # blank line in the middle
        ("s=-", "s=\x00"),
        ("s=-", "s=a\rb"),
    ],
)
def test_malformed_sdp_is_rejected_with_488(old: str, new: str) -> None:
    assert old in BASE
    body = BASE.replace(old, new, 1)
    with pytest.raises(SdpError) as info:
        parse_sdp(body)
    assert info.value.status == 488
    with pytest.raises(SdpError):
        parse_sdp(body.replace("\n", "\r\n").encode())


def test_base_sdp_is_valid() -> None:
    assert parse_sdp(BASE).media[0].payload_types == (0, 101)


def test_unencodable_text_is_an_sdp_error() -> None:
    with pytest.raises(SdpError):
        parse_sdp(BASE.replace("s=-", "s=\ud800"))


def test_size_bound_is_checked_and_configurable() -> None:
    big = BASE + "a=x-pad:" + "x" * 20_000 + "\n"
    with pytest.raises(SdpError, match="larger"):
        parse_sdp(big)
    assert parse_sdp(big, limits=SdpLimits(max_size=32 * 1024)).media[0].attributes[-1][0] == (
        "x-pad"
    )
    with pytest.raises(SdpError, match="larger"):
        parse_sdp(BASE, limits=SdpLimits(max_size=50))


def test_line_attribute_media_and_format_bounds() -> None:
    many_lines = BASE + "a=x\n" * 1100
    with pytest.raises(SdpError, match="lines"):
        parse_sdp(many_lines)
    many_attrs = BASE + "a=x\n" * 600
    with pytest.raises(SdpError, match="attributes"):
        parse_sdp(many_attrs)
    assert parse_sdp(many_attrs, limits=SdpLimits(max_attributes=1000))
    many_media = BASE + "m=audio 0 RTP/AVP 0\n" * 16
    with pytest.raises(SdpError, match="media"):
        parse_sdp(many_media)
    many_formats = BASE.replace("RTP/AVP 0 101", "RTP/AVP " + " ".join(["0"] * 65))
    with pytest.raises(SdpError, match="formats"):
        parse_sdp(many_formats)
    with pytest.raises(SdpError, match="clock rate"):
        parse_sdp(BASE, limits=SdpLimits(max_clock_rate=4000))


def test_building_from_the_model() -> None:
    sd = SessionDescription(
        origin=Origin(sess_id=7, sess_version=8, addrtype="IP6", address="2001:db8::7"),
        connection=Connection(addrtype="IP6", address="2001:db8::7"),
        media=(
            MediaDescription(
                media="audio",
                port=4000,
                formats=("0",),
                attributes=(
                    RtpMap(payload_type=0, encoding_name="PCMU", clock_rate=8000).to_attribute(),
                    ("sendrecv", None),
                ),
            ),
        ),
    )
    assert bytes(sd) == crlf(
        """v=0
o=- 7 8 IN IP6 2001:db8::7
s=-
c=IN IP6 2001:db8::7
t=0 0
m=audio 4000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv
"""
    )
    assert parse_sdp(bytes(sd)) == sd


def test_rtpmap_channels_are_written_only_when_not_one() -> None:
    assert RtpMap(
        payload_type=96, encoding_name="opus", clock_rate=48000, channels=2
    ).to_attribute() == ("rtpmap", "96 opus/48000/2")


def test_serialising_a_field_with_a_newline_is_refused() -> None:
    sd = SessionDescription(
        origin=Origin(sess_id=1, sess_version=1, address="192.0.2.1"),
        session_name="x\r\na=injected",
    )
    with pytest.raises(LocalProtocolError):
        bytes(sd)
    media = MediaDescription(media="audio", port=0, formats=("0",), attributes=(("x", "a\x00"),))
    with pytest.raises(LocalProtocolError):
        bytes(SessionDescription(origin=sd.origin, media=(media,)))


def test_rtpmaps_skips_invalid_hand_built_attributes() -> None:
    m = MediaDescription(
        media="audio", port=0, formats=("0",), attributes=(("rtpmap", "bogus"), ("rtpmap", None))
    )
    assert m.rtpmaps() == {}


# ---------------------------------------------------------------------------------------------
# Property tests

TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`{|}~"
tokens = st.text(alphabet=TOKEN, min_size=1, max_size=8)
# Any text an SDP line may carry: no CR, LF or NUL (RFC 8866 §5: byte-string).
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=16)
non_ws = st.text(
    alphabet=st.characters(codec="utf-8", min_codepoint=0x21, exclude_characters="\x7f"),
    min_size=1,
    max_size=12,
)
numbers = st.integers(min_value=0, max_value=2**64 - 1)
ip4 = st.ip_addresses(v=4).map(str)
ip6 = st.ip_addresses(v=6).map(str)

connections = st.one_of(
    ip4.map(lambda a: Connection(address=a)),
    ip6.map(lambda a: Connection(addrtype="IP6", address=a)),
    st.builds(
        Connection,
        nettype=tokens.filter(lambda t: t != "IN"),
        addrtype=tokens,
        address=non_ws.filter(lambda t: "/" not in t),
    ),
)
bandwidths = st.builds(Bandwidth, bwtype=tokens, bandwidth=numbers)
rtpmaps = st.builds(
    RtpMap,
    payload_type=st.integers(0, 127),
    encoding_name=tokens,
    clock_rate=st.integers(1, 1_000_000),
    channels=st.integers(1, 255),
).map(lambda r: r.to_attribute())
fmtps = st.tuples(tokens, texts).map(lambda p: ("fmtp", f"{p[0]} {p[1]}"))
attributes = st.one_of(
    st.tuples(tokens.filter(lambda n: n not in ("rtpmap", "fmtp")), st.none() | texts),
    st.sampled_from([(d.value, None) for d in Direction]),
    rtpmaps,
    fmtps,
)
extra_lines = st.tuples(st.sampled_from("dfghjlnqwxy"), texts)
protos = st.one_of(
    st.sampled_from(["RTP/AVP", "RTP/SAVP", "RTP/AVPF", "UDP/TLS/RTP/SAVPF", "udp", "udptl"]),
    st.lists(tokens, min_size=1, max_size=3).map("/".join),
)


@st.composite
def media_descriptions(draw: st.DrawFn, *, need_connection: bool) -> MediaDescription:
    proto = draw(protos)
    rtp = "RTP" in proto.split("/")
    fmt = st.integers(0, 127).map(str) if rtp else tokens
    port = draw(st.integers(0, 65535))
    formats = draw(st.lists(fmt, min_size=0 if port == 0 else 1, max_size=5))
    connection = draw(connections if need_connection and port else st.none() | connections)
    return MediaDescription(
        media=draw(tokens),
        port=port,
        port_count=draw(st.none() | st.integers(1, 65535)),
        proto=proto,
        formats=tuple(formats),
        information=draw(st.none() | texts),
        connection=connection,
        bandwidths=tuple(draw(st.lists(bandwidths, max_size=2))),
        key=draw(st.none() | texts),
        attributes=tuple(draw(st.lists(attributes, max_size=6))),
        extra_lines=tuple(draw(st.lists(extra_lines, max_size=2))),
    )


@st.composite
def session_descriptions(draw: st.DrawFn) -> SessionDescription:
    connection = draw(st.none() | connections)
    timings = draw(
        st.lists(
            st.builds(
                Timing, start=numbers, stop=numbers, repeats=st.lists(texts, max_size=2).map(tuple)
            ),
            min_size=1,
            max_size=2,
        )
    )
    return SessionDescription(
        origin=Origin(
            username=draw(non_ws),
            sess_id=draw(numbers),
            sess_version=draw(numbers),
            nettype=draw(tokens),
            addrtype=draw(tokens),
            address=draw(non_ws),
        ),
        session_name=draw(texts),
        information=draw(st.none() | texts),
        uri=draw(st.none() | texts),
        emails=tuple(draw(st.lists(texts, max_size=2))),
        phones=tuple(draw(st.lists(texts, max_size=2))),
        connection=connection,
        bandwidths=tuple(draw(st.lists(bandwidths, max_size=2))),
        timings=tuple(timings),
        zone=draw(st.none() | texts),
        key=draw(st.none() | texts),
        attributes=tuple(draw(st.lists(attributes, max_size=4))),
        media=tuple(
            draw(st.lists(media_descriptions(need_connection=connection is None), max_size=4))
        ),
        extra_lines=tuple(draw(st.lists(extra_lines, max_size=2))),
    )


@given(session_descriptions())
@settings(max_examples=300)
def test_generated_descriptions_round_trip(sd: SessionDescription) -> None:
    wire = bytes(sd)
    assert parse_sdp(wire) == sd
    assert bytes(parse_sdp(wire)) == wire
    assert parse_sdp(wire.replace(b"\r\n", b"\n")) == sd


def _parse_or_error(data: bytes | str) -> None:
    try:
        sd = parse_sdp(data)
    except SdpError as e:
        assert e.status == 488
        return
    # Whatever parses must survive its own serialisation unchanged.
    assert parse_sdp(bytes(sd)) == sd


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_arbitrary_bytes_only_raise_sdp_error(data: bytes) -> None:
    _parse_or_error(data)


@given(st.text(max_size=400))
@settings(max_examples=300)
def test_arbitrary_text_only_raises_sdp_error(data: str) -> None:
    _parse_or_error(data)


@given(
    st.sampled_from(REAL_WORLD),
    st.lists(
        st.tuples(
            st.integers(0, 2000),
            st.sampled_from(
                [
                    b"",
                    b" ",
                    b"\n",
                    b"/",
                    b"=",
                    b":",
                    b"0",
                    b"x",
                    b"\r",
                    b"m=",
                    b"c=IN IP6 ",
                    b"\xff",
                    b"999999",
                ]
            ),
        ),
        min_size=1,
        max_size=4,
    ),
)
@settings(max_examples=500)
def test_mutated_real_bodies_only_raise_sdp_error(
    body: bytes, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(body)
    for pos, piece in edits:
        at = pos % (len(data) + 1)
        data[at : at + (1 if piece == b"" else 0)] = piece
    _parse_or_error(bytes(data))
