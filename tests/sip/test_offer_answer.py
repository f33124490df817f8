"""RFC 3264 offer/answer: offers, answers to real-world offers, answers to our offers, hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.errors import LocalProtocolError
from callcenter.sip.offer_answer import (
    DEFAULT_CODECS,
    Negotiated,
    NegotiationError,
    accept_answer,
    answer_offer,
    build_offer,
    hold_offer,
    reoffer,
    resume_offer,
)
from callcenter.sip.sdp import Direction, SdpError, SessionDescription, parse_sdp
from tests.sip.test_sdp import (
    BARESIP,
    CISCO,
    DUAL_STACK,
    RFC5118_IP6,
    SIPP_UAC_PCAP,
    crlf,
    session_descriptions,
)

LOCAL4 = "203.0.113.5"
LOCAL6 = "2001:db8::5"


def answer(offer: bytes | str, **kwargs: Any) -> Negotiated:
    options: dict[str, Any] = {"local_address": LOCAL4, "local_port": 30000, "session_id": 9}
    return answer_offer(parse_sdp(offer), **(options | kwargs))


def audio_offer(media: str, *, session: str = "", connection: str = "c=IN IP4 192.0.2.1\n") -> str:
    return f"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n{connection}t=0 0\n{session}{media}"


PCMU = "m=audio 4000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\n"


# ---------------------------------------------------------------------------------------------
# build_offer


def test_default_offer_is_canonical() -> None:
    offer = build_offer(address=LOCAL4, port=30000, session_id=1234)
    assert bytes(offer) == crlf(
        """v=0
o=- 1234 1234 IN IP4 203.0.113.5
s=-
c=IN IP4 203.0.113.5
t=0 0
m=audio 30000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""
    )
    assert parse_sdp(bytes(offer)) == offer


def test_offer_assigns_dynamic_types_around_telephone_event() -> None:
    offer = build_offer(
        address=LOCAL6,
        port=30002,
        session_id=5,
        session_version=6,
        codecs=[("opus", 48000), ("G722", 8000), ("L16", 16000), ("PCMA", 8000)],
        telephone_event=96,
        ptime=30,
        direction=Direction.SENDONLY,
        username="cc",
        session_name="call",
    )
    wire = bytes(offer).decode()
    assert "o=cc 5 6 IN IP6 2001:db8::5\r\ns=call\r\nc=IN IP6 2001:db8::5\r\n" in wire
    (m,) = offer.media
    assert m.formats == ("97", "9", "98", "8", "96")
    assert m.rtpmap(97) is not None and m.rtpmap(97) == m.rtpmaps()[97]
    assert "a=rtpmap:97 opus/48000/2" in wire
    assert "a=rtpmap:98 L16/16000" in wire
    assert (m.ptime, m.direction) == (30, Direction.SENDONLY)


def test_offer_without_telephone_event() -> None:
    offer = build_offer(address=LOCAL4, port=30000, session_id=1, telephone_event=None)
    assert offer.media[0].formats == ("0", "8")
    assert offer.media[0].fmtp(101) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codecs": ()},
        {"port": 0},
        {"port": 70000},
        {"address": "pbx.example.com"},
        {"codecs": [("X", 8000 + i) for i in range(40)]},
        {"telephone_event": 0},
        {"telephone_event": 128},
        {"ptime": 0},
    ],
)
def test_offer_refuses_bad_arguments(kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"address": LOCAL4, "port": 30000, "session_id": 1}
    with pytest.raises(LocalProtocolError):
        build_offer(**(options | kwargs))


# ---------------------------------------------------------------------------------------------
# answer_offer against real-world offers


def test_answer_to_sipp_uac_pcap() -> None:
    n = answer(SIPP_UAC_PCAP)
    assert bytes(n.local_sdp) == crlf(
        """v=0
o=- 9 9 IN IP4 203.0.113.5
s=-
c=IN IP4 203.0.113.5
t=0 0
m=audio 30000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
a=ptime:20
a=sendrecv
"""
    )
    assert (n.remote_address, n.remote_port, n.remote_rtcp_port, n.family) == (
        "127.0.0.1",
        6000,
        6001,
        4,
    )
    assert (n.payload_type, n.encoding_name, n.clock_rate, n.channels) == (8, "PCMA", 8000, 1)
    assert (n.telephone_event, n.ptime, n.direction) == (101, 20, Direction.SENDRECV)
    assert (n.media_index, n.remote_hold, n.may_send, n.fmtp) == (0, False, True, None)
    assert n.remote_sdp == parse_sdp(SIPP_UAC_PCAP)


def test_answer_to_baresip_uses_our_preference_and_matching_event_rate() -> None:
    n = answer(BARESIP)
    assert (n.payload_type, n.encoding_name) == (0, "PCMU")
    # telephone-event/48000 (102) belongs with opus; PCMU gets the 8 kHz one.
    assert n.telephone_event == 101
    (m,) = n.local_sdp.media
    assert m.formats == ("0", "101")
    assert m.fmtp(101) == "0-15"
    assert "rtcp-mux" not in {name for name, _ in m.attributes}


def test_answer_to_baresip_in_offerer_order() -> None:
    supported = (("PCMU", 8000), ("g722", 8000))
    assert answer(BARESIP, supported=supported).encoding_name == "PCMU"
    n = answer(BARESIP, supported=supported, offerer_order=True)
    assert (n.payload_type, n.encoding_name, n.clock_rate) == (9, "g722", 8000)


def test_answer_to_baresip_with_opus() -> None:
    n = answer(BARESIP, supported=(("OPUS", 48000), ("PCMU", 8000)))
    assert (n.payload_type, n.encoding_name, n.clock_rate, n.channels) == (96, "OPUS", 48000, 2)
    assert n.telephone_event == 102
    assert n.fmtp == "stereo=1;sprop-stereo=1"
    assert "a=rtpmap:96 opus/48000/2" in bytes(n.local_sdp).decode()


def test_answer_to_cisco_trunk() -> None:
    n = answer(CISCO)
    assert (n.payload_type, n.encoding_name, n.telephone_event, n.ptime) == (0, "PCMU", 101, 20)
    assert n.remote_address == "198.51.100.10"
    assert n.local_sdp.media[0].formats == ("0", "101")
    g729 = answer(CISCO, supported=(("G729", 8000),))
    assert (g729.payload_type, g729.fmtp) == (18, "annexb=no")


def test_answer_to_ipv6_offer() -> None:
    n = answer(RFC5118_IP6, local_address=LOCAL6)
    assert (n.family, n.remote_address, n.payload_type, n.telephone_event) == (
        6,
        "2001:db8::20",
        0,
        None,
    )
    wire = bytes(n.local_sdp).decode()
    assert "o=- 9 9 IN IP6 2001:db8::5\r\n" in wire
    assert "c=IN IP6 2001:db8::5\r\n" in wire
    with pytest.raises(NegotiationError):
        answer(RFC5118_IP6, local_address=LOCAL4)


@pytest.mark.parametrize(
    ("local", "index", "remote"), [(LOCAL4, 0, "192.0.2.1"), (LOCAL6, 1, "2001:db8::1")]
)
def test_dual_stack_offer_is_answered_on_our_family(local: str, index: int, remote: str) -> None:
    n = answer(DUAL_STACK, local_address=local)
    assert (n.media_index, n.remote_address) == (index, remote)
    ports = [m.port for m in n.local_sdp.media]
    assert ports == [30000 if i == index else 0 for i in range(2)]


# ---------------------------------------------------------------------------------------------
# answer_offer: RFC 3264 §6 rules


def test_unsupported_streams_are_declined_in_place() -> None:
    offer = audio_offer(
        "m=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
        "m=audio 5002 RTP/SAVP 0\n"
        "m=audio 0 RTP/AVP 0\n"
        "m=audio 5004 RTP/AVP 18\n"
        "m=image 5006 udptl t38\n"
        "m=audio 5008/2 RTP/AVP 0\n"
        "m=audio 5010 RTP/AVP 96\n"  # dynamic type without rtpmap: unnamed
        + PCMU
        + "m=audio 5012 RTP/AVP 0\n"  # a second usable audio stream
    )
    n = answer(offer)
    media = n.local_sdp.media
    assert [(m.media, m.port, m.proto, m.formats) for m in media] == [
        ("video", 0, "RTP/AVP", ("96",)),
        ("audio", 0, "RTP/SAVP", ("0",)),
        ("audio", 0, "RTP/AVP", ("0",)),
        ("audio", 0, "RTP/AVP", ("18",)),
        ("image", 0, "udptl", ("t38",)),
        ("audio", 0, "RTP/AVP", ("0",)),
        ("audio", 0, "RTP/AVP", ("96",)),
        ("audio", 30000, "RTP/AVP", ("0", "101")),
        ("audio", 0, "RTP/AVP", ("0",)),
    ]
    assert all(m.attributes == () for m in media if m.port == 0)
    assert (n.media_index, n.remote_port) == (7, 4000)
    assert parse_sdp(bytes(n.local_sdp)) == n.local_sdp


@pytest.mark.parametrize(
    "media",
    [
        "",  # no m= line at all
        "m=audio 4000 RTP/SAVP 0\n",
        "m=video 4000 RTP/AVP 96\na=rtpmap:96 VP8/90000\n",
        "m=audio 0 RTP/AVP 0\n",
        "m=audio 4000 RTP/AVP 18 101\na=rtpmap:101 telephone-event/8000\n",
        "m=audio 4000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n",
    ],
)
def test_nothing_acceptable_is_488(media: str) -> None:
    with pytest.raises(NegotiationError) as info:
        answer(audio_offer(media))
    assert info.value.status == 488
    assert isinstance(info.value, SdpError)


def test_offer_on_unusable_network_is_488() -> None:
    with pytest.raises(NegotiationError):
        answer(audio_offer(PCMU, connection="c=TN RFC2543 +15550100\n"))


def test_static_payload_types_need_no_rtpmap_and_dynamic_rtpmap_wins() -> None:
    n = answer(audio_offer("m=audio 4000 RTP/AVP 8 0\n"))
    assert (n.payload_type, n.encoding_name, n.telephone_event) == (0, "PCMU", None)
    assert n.local_sdp.media[0].formats == ("0",)
    remapped = answer(audio_offer("m=audio 4000 RTP/AVP 97\na=rtpmap:97 pcmu/8000\n"))
    assert (remapped.payload_type, remapped.encoding_name) == (97, "PCMU")
    assert "a=rtpmap:97 pcmu/8000" in bytes(remapped.local_sdp).decode()


def test_telephone_event_keeps_the_offered_type_or_is_left_out() -> None:
    offer = audio_offer("m=audio 4000 RTP/AVP 0 118\na=rtpmap:118 telephone-event/8000\n")
    n = answer(offer)
    assert n.telephone_event == 118
    assert n.local_sdp.media[0].formats == ("0", "118")
    assert n.local_sdp.media[0].fmtp(118) is None  # none offered, none invented
    without = answer(offer, telephone_event=False)
    assert without.telephone_event is None
    assert without.local_sdp.media[0].formats == ("0",)


@pytest.mark.parametrize(
    ("attrs", "ours", "expected"),
    [
        ("", 20, 20),
        ("a=ptime:30\n", 20, 30),
        ("a=ptime:10\n", 20, 10),
        ("a=maxptime:20\n", 30, 20),
        ("a=ptime:40\na=maxptime:30\n", 20, 30),
        ("a=ptime:bogus\n", 20, 20),
    ],
)
def test_ptime_is_honoured(attrs: str, ours: int, expected: int) -> None:
    n = answer(audio_offer(PCMU + attrs), ptime=ours)
    assert n.ptime == expected
    assert n.local_sdp.media[0].ptime == expected


@pytest.mark.parametrize(
    ("offered", "ours", "answered", "remote_hold"),
    [
        (Direction.SENDRECV, Direction.SENDRECV, Direction.SENDRECV, False),
        (Direction.SENDONLY, Direction.SENDRECV, Direction.RECVONLY, True),
        (Direction.RECVONLY, Direction.SENDRECV, Direction.SENDONLY, False),
        (Direction.INACTIVE, Direction.SENDRECV, Direction.INACTIVE, True),
        (Direction.SENDRECV, Direction.SENDONLY, Direction.SENDONLY, False),
        (Direction.SENDONLY, Direction.SENDONLY, Direction.INACTIVE, True),
        (Direction.RECVONLY, Direction.RECVONLY, Direction.INACTIVE, False),
        (Direction.SENDRECV, Direction.INACTIVE, Direction.INACTIVE, False),
    ],
)
def test_direction_answers(
    offered: Direction, ours: Direction, answered: Direction, remote_hold: bool
) -> None:
    n = answer(audio_offer(PCMU + f"a={offered}\n"), direction=ours)
    assert n.direction is answered
    assert n.local_sdp.direction_of(n.local_sdp.media[0]) is answered
    assert n.remote_hold is remote_hold
    assert n.may_send is answered.sends


def test_session_level_direction_applies() -> None:
    n = answer(audio_offer(PCMU, session="a=sendonly\n"))
    assert n.direction is Direction.RECVONLY


def test_rfc2543_hold_with_zero_address() -> None:
    n = answer(audio_offer(PCMU, connection="c=IN IP4 0.0.0.0\n"))
    assert n.remote_address == "0.0.0.0"
    assert n.direction is Direction.RECVONLY
    assert (n.remote_hold, n.may_send) == (True, False)
    assert n.local_sdp.media[0].direction is Direction.RECVONLY


def test_rtcp_attribute_gives_the_rtcp_port() -> None:
    n = answer(audio_offer(PCMU + "a=rtcp:4111 IN IP4 192.0.2.1\n"))
    assert n.remote_rtcp_port == 4111
    assert answer(audio_offer(PCMU + "a=rtcp:junk\n")).remote_rtcp_port == 4001


def test_answer_arguments_are_checked() -> None:
    with pytest.raises(LocalProtocolError):
        answer_offer(parse_sdp(SIPP_UAC_PCAP), local_address=LOCAL4, local_port=30000)
    with pytest.raises(LocalProtocolError):
        answer(SIPP_UAC_PCAP, local_port=0)
    with pytest.raises(LocalProtocolError):
        answer(SIPP_UAC_PCAP, local_address="pbx.example.com")


def test_answer_to_a_reoffer_keeps_origin_and_versions_by_change() -> None:
    first = answer(SIPP_UAC_PCAP, session_id=500)
    same = answer(SIPP_UAC_PCAP, previous=first.local_sdp, session_id=None)
    assert same.local_sdp == first.local_sdp  # unchanged SDP, unchanged version
    held = answer(
        SIPP_UAC_PCAP.replace(b"a=fmtp:101 0-11,16\r\n", b"a=fmtp:101 0-11,16\r\na=sendonly\r\n"),
        previous=first.local_sdp,
    )
    assert held.local_sdp.origin.sess_id == 500
    assert held.local_sdp.origin.sess_version == 501
    assert held.direction is Direction.RECVONLY


# ---------------------------------------------------------------------------------------------
# accept_answer


OUR_OFFER = build_offer(address=LOCAL4, port=30000, session_id=77)


def their_answer(media: str, connection: str = "c=IN IP4 198.51.100.7\n") -> SessionDescription:
    return parse_sdp(f"v=0\no=- 3 3 IN IP4 198.51.100.7\ns=-\n{connection}t=0 0\n{media}")


def test_accept_a_plain_answer() -> None:
    ans = their_answer(
        "m=audio 8000 RTP/AVP 8 101\na=rtpmap:101 telephone-event/8000\na=ptime:30\n"
    )
    n = accept_answer(OUR_OFFER, ans)
    assert (n.remote_address, n.remote_port, n.remote_rtcp_port, n.family) == (
        "198.51.100.7",
        8000,
        8001,
        4,
    )
    assert (n.payload_type, n.encoding_name, n.clock_rate) == (8, "PCMA", 8000)
    assert (n.telephone_event, n.ptime, n.direction, n.remote_hold) == (
        101,
        30,
        Direction.SENDRECV,
        False,
    )
    assert n.local_sdp is OUR_OFFER
    assert n.remote_sdp is ans


def test_accept_uses_the_answers_order_and_payload_type() -> None:
    ans = their_answer("m=audio 8000 RTP/AVP 8 0\n")
    assert accept_answer(OUR_OFFER, ans).payload_type == 8
    renumbered = their_answer("m=audio 8000 RTP/AVP 100\na=rtpmap:100 PCMU/8000\n")
    n = accept_answer(OUR_OFFER, renumbered)
    assert (n.payload_type, n.encoding_name, n.telephone_event, n.ptime) == (100, "PCMU", None, 20)


def test_accept_answer_over_ipv6_and_on_hold() -> None:
    ans = their_answer("m=audio 8000 RTP/AVP 0\na=sendonly\n", "c=IN IP6 2001:db8::7\n")
    n = accept_answer(OUR_OFFER, ans)
    assert (n.family, n.remote_address) == (6, "2001:db8::7")
    assert (n.direction, n.remote_hold) == (Direction.RECVONLY, True)
    zero = accept_answer(OUR_OFFER, their_answer("m=audio 8000 RTP/AVP 0\n", "c=IN IP4 0.0.0.0\n"))
    assert (zero.may_send, zero.remote_hold) == (False, True)


def test_accept_skips_rejected_streams() -> None:
    offer = parse_sdp(bytes(OUR_OFFER).replace(b"t=0 0\r\n", b"t=0 0\r\nm=video 0 RTP/AVP 96\r\n"))
    n = accept_answer(offer, their_answer("m=video 0 RTP/AVP 96\nm=audio 8000 RTP/AVP 0\n"))
    assert n.media_index == 1


@pytest.mark.parametrize(
    ("media", "connection"),
    [
        ("", "c=IN IP4 198.51.100.7\n"),  # fewer m= lines
        ("m=audio 8000 RTP/AVP 0\nm=audio 8002 RTP/AVP 0\n", "c=IN IP4 198.51.100.7\n"),
        ("m=video 8000 RTP/AVP 0\n", "c=IN IP4 198.51.100.7\n"),  # changed media type
        ("m=audio 0 RTP/AVP 0\n", "c=IN IP4 198.51.100.7\n"),  # rejected everything
        ("m=audio 8000 RTP/SAVP 0\n", "c=IN IP4 198.51.100.7\n"),  # changed proto
        ("m=audio 8000 RTP/AVP 18\n", "c=IN IP4 198.51.100.7\n"),  # not offered
        ("m=audio 8000 RTP/AVP 9\n", "c=IN IP4 198.51.100.7\n"),  # not offered
        (
            "m=audio 8000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n",
            "c=IN IP4 198.51.100.7\n",
        ),
        ("m=audio 8000 RTP/AVP 0\n", "c=TN RFC2543 +15550100\n"),
    ],
)
def test_bad_answers_are_488(media: str, connection: str) -> None:
    with pytest.raises(NegotiationError) as info:
        accept_answer(OUR_OFFER, their_answer(media, connection))
    assert info.value.status == 488


def test_answer_may_not_enable_a_stream_we_disabled() -> None:
    offer = parse_sdp(bytes(OUR_OFFER) + b"m=audio 0 RTP/AVP 0\r\n")
    with pytest.raises(NegotiationError, match="disabled"):
        accept_answer(offer, their_answer("m=audio 8000 RTP/AVP 0\nm=audio 8002 RTP/AVP 0\n"))


# ---------------------------------------------------------------------------------------------
# hold / resume


def test_hold_and_resume_bump_the_version_and_flip_direction() -> None:
    held = hold_offer(OUR_OFFER)
    assert held.origin.sess_id == OUR_OFFER.origin.sess_id
    assert held.origin.sess_version == OUR_OFFER.origin.sess_version + 1
    (m,) = held.media
    assert m.direction is Direction.SENDONLY
    assert [n for n, _ in m.attributes].count("sendonly") == 1
    assert "sendrecv" not in [n for n, _ in m.attributes]
    assert m.formats == OUR_OFFER.media[0].formats
    resumed = resume_offer(held)
    assert resumed.origin.sess_version == OUR_OFFER.origin.sess_version + 2
    assert resumed.media[0].direction is Direction.SENDRECV
    assert resumed.media == OUR_OFFER.media


def test_hold_round_trip_through_both_sides() -> None:
    callee = answer(bytes(OUR_OFFER))
    held = hold_offer(OUR_OFFER)
    callee_held = answer(bytes(held), previous=callee.local_sdp)
    assert callee_held.direction is Direction.RECVONLY
    assert callee_held.local_sdp.origin.sess_version == callee.local_sdp.origin.sess_version + 1
    ours = accept_answer(held, callee_held.local_sdp)
    assert ours.direction is Direction.SENDONLY
    assert ours.remote_hold is False


def test_reoffer_leaves_declined_streams_and_session_direction_alone() -> None:
    n = answer(audio_offer("m=video 5000 RTP/AVP 96\n" + PCMU, session="a=sendrecv\n"))
    again = reoffer(n.local_sdp, direction=Direction.INACTIVE)
    assert again.media[0] == n.local_sdp.media[0]
    assert again.media[1].direction is Direction.INACTIVE
    assert again.direction is None
    assert parse_sdp(bytes(again)) == again


# ---------------------------------------------------------------------------------------------
# Properties

KNOWN = [("PCMU", 8000), ("PCMA", 8000), ("G722", 8000), ("opus", 48000), ("L16", 16000)]
codec_lists = st.lists(st.sampled_from(KNOWN), min_size=1, max_size=5, unique=True)


@given(codec_lists, codec_lists, st.sampled_from(list(Direction)), st.sampled_from(list(Direction)))
@settings(max_examples=200)
def test_offer_answer_agree(
    offered: list[tuple[str, int]],
    supported: list[tuple[str, int]],
    offer_dir: Direction,
    our_dir: Direction,
) -> None:
    offer = build_offer(
        address=LOCAL4, port=30000, session_id=1, codecs=offered, direction=offer_dir
    )
    common = [c for c in supported if c in offered]
    if not common:
        with pytest.raises(NegotiationError):
            answer(bytes(offer), supported=supported, local_address="198.51.100.2")
        return
    n = answer(bytes(offer), supported=supported, local_address="198.51.100.2", direction=our_dir)
    assert (n.encoding_name, n.clock_rate) == common[0]
    assert n.telephone_event == (101 if common[0][1] == 8000 else None)
    # Neither side ends up sending to someone who does not want to receive.
    assert not (n.direction.sends and not offer_dir.receives)
    assert not (n.direction.receives and not offer_dir.sends)
    back = accept_answer(offer, parse_sdp(bytes(n.local_sdp)), supported=offered)
    assert (back.encoding_name.upper(), back.clock_rate) == (common[0][0].upper(), common[0][1])
    assert back.payload_type == n.payload_type
    assert back.direction is n.direction.reversed()


@given(session_descriptions())
@settings(max_examples=200)
def test_any_parsed_offer_answers_or_raises_488(sd: SessionDescription) -> None:
    offer = parse_sdp(bytes(sd))
    try:
        n = answer_offer(
            offer, local_address=LOCAL4, local_port=30000, session_id=1, supported=DEFAULT_CODECS
        )
    except NegotiationError as e:
        assert e.status == 488
        return
    assert len(n.local_sdp.media) == len(offer.media)
    assert parse_sdp(bytes(n.local_sdp)) == n.local_sdp
    assert accept_answer(offer, n.local_sdp).payload_type == n.payload_type
