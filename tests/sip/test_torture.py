"""All 50 RFC 4475 files and the 12 RFC 5118 files against the expectations in torture.py."""

from __future__ import annotations

import pytest

from callcenter.sip import (
    ContactStar,
    NameAddr,
    Request,
    Response,
    SipParseError,
    SipUri,
    make_response,
    parse_message,
)
from callcenter.sip.dialog import Accepted, Dialogs, Rejected
from callcenter.sip.digest import (
    Challenge,
    DigestServer,
    OtherScheme,
    parse_challenge,
    parse_credentials,
)
from callcenter.sip.framer import StreamFramer
from callcenter.sip.parser import error_response
from callcenter.sip.sdp import parse_sdp
from callcenter.sip.transaction import (
    Disposition,
    LegacyServerKey,
    RequestReceived,
    TransactionLayer,
)
from callcenter.sip.uas import UasPolicy, check_request

from .torture import PARSE, RFC4475, RFC5118, TORTURE_DIR, Expect, read_4475, read_5118


def test_every_file_has_an_expectation() -> None:
    on_disk = {p.name for p in TORTURE_DIR.glob("*.dat")}
    assert len(on_disk) == 50
    assert on_disk == set(RFC4475)
    assert {p.name for p in (TORTURE_DIR / "rfc5118").iterdir()} == set(RFC5118)


def _check(data: bytes, expect: Expect) -> None:
    if expect.parse == PARSE:
        message = parse_message(data)
        if isinstance(message, Request):
            verdict = check_request(message, UasPolicy(), to_tag="t1")
            assert (verdict.status if verdict else None) == expect.core
            if verdict is not None:
                # The rejection is itself a well-formed message.
                again = parse_message(bytes(verdict))
                assert isinstance(again, Response)
                assert again.status == expect.core
        else:
            assert expect.core is None
        # Semantic round trip: what we serialise parses to the same message.
        again = parse_message(bytes(message))
        assert type(again) is type(message)
        assert _comparable(again) == _comparable(message)
        return
    assert isinstance(expect.parse, frozenset)
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status in expect.parse, str(info.value)
    response = error_response(info.value)
    if info.value.status is None:
        assert response is None
    elif response is not None:
        # Via, From, To, Call-ID and CSeq are echoed verbatim, broken or not (§8.2.6.2),
        # so only the status line is ours to check.
        assert response.status == info.value.status
        assert bytes(response).startswith(f"SIP/2.0 {info.value.status} ".encode())


def _comparable(message: Request | Response) -> object:
    fields = [
        (n.lower(), v) for n, v in message.headers if n.lower() not in ("content-length", "l")
    ]
    start = (message.method, str(message.uri)) if isinstance(message, Request) else message.status
    return start, fields, message.body


@pytest.mark.parametrize("name", sorted(RFC4475))
def test_rfc4475(name: str) -> None:
    _check(read_4475(name), RFC4475[name])


@pytest.mark.parametrize("name", sorted(RFC5118))
def test_rfc5118(name: str) -> None:
    _check(read_5118(name), RFC5118[name])


def test_counts_match_the_readme() -> None:
    valid = [n for n, e in RFC4475.items() if e.parse == PARSE]
    # 13 valid + badbranch + 14 application-layer files that parse + baddate + inv2543.
    assert {"wsinv.dat", "intmeth.dat", "noreason.dat", "unreason.dat"} <= set(valid)
    assert sum(e.parse == PARSE for e in RFC5118.values()) == 11


def _request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def test_wsinv_folding_compact_forms_and_opaque_unknown_header() -> None:
    request = _request(read_4475("wsinv.dat"))
    assert request.method == "INVITE"
    assert request.max_forwards == 68
    assert request.cseq.seq == 9 and request.cseq.method == "INVITE"
    assert request.headers.get("NewFangledHeader") == (
        "newfangled value continued newfangled value"
    )
    assert request.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert len(request.vias) == 3
    assert request.to_tag is not None
    assert request.body.startswith(b"v=0")


def test_esc01_escapes_compare_equal() -> None:
    request = _request(read_4475("esc01.dat"))
    assert isinstance(request.uri, SipUri)
    assert request.uri.user_unescaped == "sips:user@example.com"
    assert request.uri.equivalent(SipUri(host="EXAMPLE.net", user="sips:user@example.com"))


def test_escnull_contacts_stay_distinct() -> None:
    request = _request(read_4475("escnull.dat"))
    contacts = request.contacts
    assert len(contacts) == 2
    users = [c.uri.user_unescaped for c in contacts if isinstance(c, NameAddr)]  # type: ignore[union-attr]
    assert users == ["null-\x00-null", "%00"] or len(set(users)) == 2
    assert all("\x00" in (u or "") or "%00" in (u or "") for u in users)


def test_esc02_method_is_not_register_and_two_contacts() -> None:
    request = _request(read_4475("esc02.dat"))
    assert request.method == "RE%47IST%45R"
    assert len(request.contacts) == 2


def test_semiuri_user_part() -> None:
    request = _request(read_4475("semiuri.dat"))
    assert isinstance(request.uri, SipUri)
    assert request.uri.user == "user;par=u%40example.net"
    assert request.uri.params == ()


def test_cparam_contact_param_versus_url_param() -> None:
    one = _request(read_4475("cparam01.dat")).contacts[0]
    two = _request(read_4475("cparam02.dat")).contacts[0]
    assert isinstance(one, NameAddr) and isinstance(two, NameAddr)
    assert isinstance(one.uri, SipUri) and isinstance(two.uri, SipUri)
    assert not one.uri.has_param("unknownparam") and one.param("unknownparam") is None
    assert ("unknownparam", None) in one.params
    assert two.uri.has_param("unknownparam")


def test_regescrt_keeps_escaped_route_in_uri() -> None:
    contact = _request(read_4475("regescrt.dat")).contacts[0]
    assert isinstance(contact, NameAddr) and isinstance(contact.uri, SipUri)
    assert contact.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    assert "?Route=%3Csip:sip.example.com%3E" in str(contact.uri)


def test_dblreq_ignores_octets_past_content_length() -> None:
    request = _request(read_4475("dblreq.dat"))
    assert request.method == "REGISTER"
    assert request.body == b""


def test_mpart01_body_framed_by_content_length_with_nul() -> None:
    data = read_4475("mpart01.dat")
    request = _request(data)
    assert b"\x00" in request.body
    assert len(request.body) == int(request.headers.get("content-length") or -1)


def test_inv2543_body_is_rest_of_datagram() -> None:
    data = read_4475("inv2543.dat")
    request = _request(data)
    assert "content-length" not in request.headers
    assert request.body and data.endswith(request.body)
    assert not request.top_via.rfc3261_branch


def test_badbranch_is_not_an_rfc3261_branch() -> None:
    assert _request(read_4475("badbranch.dat")).top_via.branch == "z9hG4bK"
    assert not _request(read_4475("badbranch.dat")).top_via.rfc3261_branch


def test_intmeth_odd_octets_survive_round_trip() -> None:
    data = read_4475("intmeth.dat")
    request = _request(data)
    assert request.method.startswith("!interesting-Method")
    # The file writes `Name:value`; we write `Name: value`, otherwise the bytes are kept.
    assert parse_message(bytes(request)) == request
    assert b"\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb" in bytes(request)


def test_contact_star_and_responses() -> None:
    reason = parse_message(read_4475("unreason.dat"))
    assert isinstance(reason, Response) and reason.status == 200
    empty = parse_message(read_4475("noreason.dat"))
    assert isinstance(empty, Response) and empty.reason == ""
    star = parse_message(
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n"
        b"CSeq: 1 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n"
    )
    assert star.contacts == [ContactStar()]


def test_rfc5118_ipv6_ports() -> None:
    ambiguous = _request(read_5118("port-ambiguous")).uri
    assert isinstance(ambiguous, SipUri)
    assert ambiguous.host == "[2001:db8::10:5070]" and ambiguous.port is None
    unambiguous = _request(read_5118("port-unambiguous")).uri
    assert isinstance(unambiguous, SipUri)
    assert unambiguous.host == "[2001:db8::10]" and unambiguous.port == 5070


def test_rfc5118_via_received_with_and_without_brackets() -> None:
    with_delim = _request(read_5118("via-received-param-with-delim")).top_via
    no_delim = _request(read_5118("via-received-param-no-delim")).top_via
    assert with_delim.received == "[2001:db8::9:255]"
    assert no_delim.received == "2001:db8::9:255"


@pytest.mark.parametrize("name", ["clerr.dat", "ncl.dat", "mcl01.dat"])
def test_stream_framing_faults(name: str) -> None:
    framer = StreamFramer()
    data = read_4475(name)
    if name == "clerr.dat":
        # Content-Length promises more than arrives: the framer waits (and the transport's
        # idle timeout closes the connection).
        assert framer.feed(data) == []
        assert framer.pending == len(data)
    else:
        with pytest.raises(SipParseError):
            framer.feed(data)


def test_regaut01_unknown_scheme_gets_a_digest_challenge() -> None:
    request = _request(read_4475("regaut01.dat"))
    value = request.headers.get("authorization")
    assert value is not None
    assert isinstance(parse_credentials(value), OtherScheme)
    server = DigestServer(b"k" * 32, "example.com")
    challenge = make_response(request, 401, to_tag="t1")
    for offer in server.challenge(1_700_000_000.0):
        challenge.headers.add("WWW-Authenticate", offer.to_header_value())
    again = parse_message(bytes(challenge))
    offered = [parse_challenge(v) for v in again.headers.fields("www-authenticate")]
    assert [c.algorithm for c in offered if isinstance(c, Challenge)] == ["SHA-256", "MD5"]


def test_rfc5118_sdp_addresses() -> None:
    single = parse_sdp(_request(read_5118("ipv6-in-sdp")).body)
    audio = single.media[0]
    connection = single.connection_of(audio)
    assert connection is not None and connection.family == 6
    assert connection.address == "2001:db8::20"
    both = parse_sdp(_request(read_5118("mult-ip-in-sdp")).body)
    families = [c.family for c in (both.connection_of(m) for m in both.media) if c is not None]
    assert families == [4, 6]
    mapped = parse_sdp(_request(read_5118("ipv4-mapped-ipv6")).body)
    assert all(mapped.connection_of(m) is not None for m in mapped.media)


@pytest.mark.parametrize(
    "data",
    [
        read_4475("wsinv.dat"),
        read_5118("via-received-param-with-delim"),
        read_5118("mult-ip-in-header"),
    ],
    ids=["wsinv", "via-received-param-with-delim", "mult-ip-in-header"],
)
def test_in_dialog_request_for_no_dialog_is_481(data: bytes) -> None:
    request = _request(data)
    dialog, verdict = Dialogs().receive_request(request)
    assert dialog is None
    assert isinstance(verdict, Rejected) and verdict.status == 481
    response = verdict.response(request)
    assert response.status == 481 and response.call_id == request.call_id


def test_new_requests_from_torture_files_pass_the_dialog_layer() -> None:
    for name in ("esc01.dat", "inv2543.dat", "longreq.dat", "lwsdisp.dat", "zeromf.dat"):
        dialog, verdict = Dialogs().receive_request(_request(read_4475(name)))
        assert dialog is None and isinstance(verdict, Accepted), name


def test_badbranch_uses_rfc2543_matching_and_retransmission_is_absorbed() -> None:
    request = _request(read_4475("badbranch.dat"))
    layer = TransactionLayer()
    assert layer.receive_request(request, 0.0, reliable=False) is Disposition.NEW_TRANSACTION
    (event,) = layer.next_events()
    assert isinstance(event, RequestReceived)
    assert isinstance(event.transaction, LegacyServerKey)
    layer.send_response(event.transaction, make_response(request, 200, to_tag="t1"), 0.1)
    assert layer.receive_request(request, 0.5, reliable=False) is Disposition.MATCHED
    assert len(layer) == 1


def test_dblreq_creates_exactly_one_transaction() -> None:
    layer = TransactionLayer()
    request = _request(read_4475("dblreq.dat"))
    assert layer.receive_request(request, 0.0, reliable=False) is Disposition.NEW_TRANSACTION
    assert len(layer) == 1
    assert [type(e) for e in layer.next_events()] == [RequestReceived]
