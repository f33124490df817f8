"""Dialogs (RFC 3261 §12–§15) driven by real messages: an INVITE from Alice through a strict
router (p1) and a loose router (p2) to the call center, forks, glare, 481s and the state
table. Requests built here get a Via and go through bytes and the parser, as on the wire."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip.address import parse_name_addr
from callcenter.sip.dialog import (
    TRANSITIONS,
    Accepted,
    Dialog,
    DialogAckReceived,
    DialogConfirmed,
    DialogEstablished,
    DialogId,
    DialogInput,
    Dialogs,
    DialogState,
    DialogTerminated,
    Ignored,
    Rejected,
    Role,
    TargetRefreshed,
    TerminationReason,
    glare_retry_after,
    next_hop,
    next_state,
    request_uri_form,
)
from callcenter.sip.errors import LocalProtocolError, SipParseError
from callcenter.sip.headers import Headers
from callcenter.sip.message import Request, Response
from callcenter.sip.parser import parse_message
from callcenter.sip.uri import SipUri, parse_uri

EARLY, CONFIRMED, TERMINATED = DialogState.EARLY, DialogState.CONFIRMED, DialogState.TERMINATED

# -- the wire -----------------------------------------------------------------------------

SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)
CALL_ID = "a84b4c76e66710@pc33.atlanta.example.com"
ALICE_CONTACT = "sip:alice@192.0.2.10:5060;transport=udp"
CC_CONTACT = parse_name_addr("<sip:support@198.51.100.5:5060>")
P1 = "sip:p1.atlanta.example.com"  # strict router (RFC 2543 style): no lr
P2 = "sip:p2.biloxi.example.com;lr"  # loose router
CREDENTIALS = (
    'Digest username="alice", realm="atlanta.example.com", nonce="wf84f1ce", '
    'uri="sip:support@cc.example.com", response="42ce3cef44b22f50c6a6071bc8"'
)

# The INVITE as Alice's phone sends it (to its outbound proxy p1).
ALICE_INVITE = f"""INVITE sip:support@cc.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8;rport
Max-Forwards: 70
To: "Support" <sip:support@cc.example.com>
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: {CALL_ID}
CSeq: 314159 INVITE
Contact: <{ALICE_CONTACT}>
Proxy-Authorization: {CREDENTIALS}
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE
Content-Type: application/sdp
"""

# The same INVITE as it reaches the call center: p1 then p2 added Via and Record-Route.
INVITE_AT_CC = f"""INVITE sip:support@198.51.100.5:5060 SIP/2.0
Via: SIP/2.0/UDP p2.biloxi.example.com;branch=z9hG4bK2d4790.1
Via: SIP/2.0/UDP p1.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds8;rport=5060;received=192.0.2.10
Max-Forwards: 68
Record-Route: <{P2}>
Record-Route: <{P1}>
To: "Support" <sip:support@cc.example.com>
From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: {CALL_ID}
CSeq: 314159 INVITE
Contact: <{ALICE_CONTACT}>
Proxy-Authorization: {CREDENTIALS}
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE
Content-Type: application/sdp
"""

# RFC 4475 §3.1.1.2 wsinv: a valid, whitespace-heavy INVITE whose To tag names no dialog.
WSINV = (
    b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
    b"TO :\r\n"
    b" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
    b'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n'
    b"  ;\r\n"
    b"  tag = 98asjd8\r\n"
    b"MaX-fOrWaRdS: 0068\r\n"
    b"Call-ID: wsinv.ndaksdj@192.0.2.1\r\n"
    b"Content-Length   : 150\r\n"
    b"cseq: 0009\r\n"
    b"  INVITE\r\n"
    b"Via  : SIP  /   2.0\r\n"
    b" /UDP\r\n"
    b"    192.0.2.2;branch=390skdjuw\r\n"
    b"s :\r\n"
    b"NewFangledHeader:   newfangled value\r\n"
    b" continued newfangled value\r\n"
    b"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Route:\r\n"
    b" <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
    b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n"
    b"  branch  =   z9hG4bK9ikj8  ,\r\n"
    b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n"
    b" z9hG4bK30239\r\n"
    b'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n'
    b"      newvalue ;\r\n"
    b"  secondparam ; q = 0.33\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# Modelled on the IPv6 BYE of RFC 5118: a BYE for a dialog we never had.
BYE_5118 = (
    b"BYE sip:[2001:db8::10] SIP/2.0\r\n"
    b"To: sip:user@example.com;tag=bd76ya\r\n"
    b"From: sip:user@example.net;tag=81x2\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111\r\n"
    b"Call-ID: SSG9559905523997077@hlau_4100\r\n"
    b"Max-Forwards: 70\r\n"
    b"CSeq: 321 BYE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def parse(text: str, body: bytes = b"") -> Request | Response:
    head = text.strip("\n").replace("\n", "\r\n")
    return parse_message(f"{head}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)


def req(text: str, body: bytes = b"") -> Request:
    message = parse(text, body)
    assert isinstance(message, Request)
    return message


def wire_request(request: Request) -> Request:
    message = parse_message(bytes(request))
    assert isinstance(message, Request)
    return message


def wire_response(response: Response) -> Response:
    message = parse_message(bytes(response))
    assert isinstance(message, Response)
    return message


_branches = iter(range(10**9))


def deliver(request: Request, target: str) -> Request:
    """What the last proxy hands the UA: Route consumed, Request-URI restored to the
    target, a Via of the sender on top (the transaction layer's job in real life)."""
    headers = request.headers.copy()
    headers.remove("Route")
    headers.prepend("Via", f"SIP/2.0/UDP 203.0.113.7;branch=z9hG4bK{next(_branches)}")
    return wire_request(dataclasses.replace(request, uri=parse_uri(target), headers=headers))


def sip_uri(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def retyped(request: Request, method: str, seq: int) -> Request:
    """The same request with another method and CSeq."""
    headers = request.headers.copy()
    headers.set("CSeq", f"{seq} {method}")
    return wire_request(dataclasses.replace(request, method=method, headers=headers))


def back_through_proxies(response: Response, hops: int) -> Response:
    """The response after `hops` proxies each removed their Via."""
    fields = list(response.headers)
    for _ in range(hops):
        index = next(i for i, (n, _) in enumerate(fields) if n.lower() in ("via", "v"))
        del fields[index]
    return wire_response(dataclasses.replace(response, headers=Headers(fields)))


def tags(prefix: str) -> Callable[[], str]:
    counter = iter(range(1000))
    return lambda: f"{prefix}-{next(counter)}"


@dataclasses.dataclass
class Call:
    cc: Dialogs
    alice: Dialogs
    cc_dialog: Dialog
    alice_dialog: Dialog
    invite_at_cc: Request
    alice_invite: Request
    ok_at_alice: Response


def establish(*, random: float = 0.5, ack: bool = True) -> Call:
    """Alice calls support@cc through p1 and p2; the call center rings, answers; Alice ACKs."""
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1", random=lambda: random)
    alice = Dialogs(random=lambda: random)
    alice_invite = req(ALICE_INVITE, SDP)
    invite = req(INVITE_AT_CC, SDP)
    assert cc.receive_request(invite) == (None, Accepted())
    ringing, _ = cc.respond(invite, 180)
    ok, _ = cc.respond(invite, 200, body=SDP, content_type="application/sdp")
    alice.receive_response(alice_invite, back_through_proxies(wire_response(ringing), 2))
    ok_at_alice = back_through_proxies(wire_response(ok), 2)
    alice.receive_response(alice_invite, ok_at_alice)
    (cc_dialog,) = cc
    (alice_dialog,) = alice
    if ack:
        the_ack = deliver(alice_dialog.create_ack(314159), CC_CONTACT.uri.__str__())
        assert cc.receive_request(the_ack)[1] == Accepted(
            events=(DialogAckReceived(dialog_id=cc_dialog.id, cseq=314159),)
        )
    return Call(cc, alice, cc_dialog, alice_dialog, invite, alice_invite, ok_at_alice)


CC_ID = DialogId(CALL_ID, "cc-1", "1928301774")
ALICE_ID = DialogId(CALL_ID, "1928301774", "cc-1")

# -- creation, UAS side (§12.1.1) ---------------------------------------------------------


def test_uas_dialog_from_invite_through_two_record_routing_proxies() -> None:
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1")
    invite = req(INVITE_AT_CC, SDP)
    ringing, events = cc.respond(invite, 180)
    assert events == (DialogEstablished(dialog_id=CC_ID, role=Role.UAS, state=EARLY),)
    (dialog,) = cc
    assert dialog.id == CC_ID
    assert dialog.role is Role.UAS
    assert dialog.state is EARLY
    # §12.1.1: the Record-Route of the request, in order: p2 (next to us) first.
    assert dialog.route_set == (parse_uri(P2), parse_uri(P1))
    assert dialog.remote_target == parse_uri(ALICE_CONTACT)
    assert dialog.remote_seq == 314159
    assert dialog.local_seq is None
    assert dialog.local_addr == parse_name_addr('"Support" <sip:support@cc.example.com>')
    assert dialog.remote_addr == parse_name_addr('"Alice" <sip:alice@atlanta.example.com>')
    assert dialog.local_contact == CC_CONTACT
    assert dialog.secure is False
    assert dialog.invite_pending_in == 314159
    assert dialog.owns_call_id is False
    # The 180: our tag, the Record-Route copied in order, our Contact.
    ringing = wire_response(ringing)
    assert ringing.to_tag == "cc-1"
    assert ringing.headers.values("record-route") == [f"<{P2}>", f"<{P1}>"]
    assert ringing.contacts == [CC_CONTACT]
    assert len(ringing.vias) == 3


def test_uas_final_2xx_confirms_and_reuses_the_tag() -> None:
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=tags("cc"))
    invite = req(INVITE_AT_CC, SDP)
    trying, events = cc.respond(invite, 100)
    assert trying.to_tag is None and events == () and len(cc) == 0
    ringing, _ = cc.respond(invite, 180)
    ok, events = cc.respond(invite, 200, body=SDP, content_type="application/sdp")
    (dialog,) = cc
    assert ok.to_tag == ringing.to_tag == dialog.id.local_tag == "cc-0"
    assert events == (DialogConfirmed(dialog_id=dialog.id),)
    assert dialog.state is CONFIRMED
    assert dialog.invite_pending_in is None
    assert dialog.awaiting_ack == 314159
    assert ok.content_type == "application/sdp" and ok.body == SDP
    # A retransmitted 2xx changes nothing.
    assert dialog.response_sent(ok) == ()


def test_uas_2xx_without_1xx_creates_a_confirmed_dialog() -> None:
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1")
    _, events = cc.respond(req(INVITE_AT_CC, SDP), 200, body=SDP, content_type="application/sdp")
    assert events == (
        DialogEstablished(dialog_id=CC_ID, role=Role.UAS, state=CONFIRMED),
        DialogConfirmed(dialog_id=CC_ID),
    )


def test_uas_rejecting_the_invite_ends_the_early_dialog() -> None:
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1")
    invite = req(INVITE_AT_CC, SDP)
    cc.respond(invite, 183)
    busy, events = cc.respond(invite, 486)
    assert busy.to_tag == "cc-1"  # the same tag as the early dialog
    assert busy.contacts == [] and busy.headers.values("record-route") == []
    assert events == (DialogTerminated(dialog_id=CC_ID, reason=TerminationReason.REJECTED),)
    (dialog,) = cc
    assert dialog.state is TERMINATED and dialog.invite_pending_in is None


def test_non_dialog_responses_get_a_fresh_tag_and_no_dialog() -> None:
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "t1")
    invite = req(INVITE_AT_CC, SDP)
    busy, events = cc.respond(invite, 486)
    assert busy.to_tag == "t1" and events == () and len(cc) == 0
    options = req(INVITE_AT_CC.replace("INVITE", "OPTIONS"))
    ok, events = cc.respond(options, 200)
    assert ok.to_tag == "t1" and events == () and len(cc) == 0


def test_dialog_creating_request_without_contact_is_rejected_400() -> None:
    text = "\n".join(line for line in INVITE_AT_CC.splitlines() if not line.startswith("Contact"))
    invite = req(text, SDP)
    dialog, verdict = Dialogs().receive_request(invite)
    assert dialog is None
    assert isinstance(verdict, Rejected) and verdict.status == 400
    rejection = verdict.response(invite, to_tag="r1")
    assert rejection.status == 400 and rejection.to_tag == "r1"
    star = req(INVITE_AT_CC.replace(f"Contact: <{ALICE_CONTACT}>", "Contact: *"), SDP)
    assert isinstance(Dialogs().receive_request(star)[1], Rejected)
    # Skipping the check and answering anyway: the dialog cannot be made.
    with pytest.raises(SipParseError) as info:
        Dialogs(local_contact=CC_CONTACT).respond(invite, 180)
    assert info.value.status == 400


def test_rfc2543_peer_without_from_tag() -> None:
    text = INVITE_AT_CC.replace(";tag=1928301774", "")
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1")
    invite = req(text, SDP)
    cc.respond(invite, 200, body=SDP, content_type="application/sdp")
    (dialog,) = cc
    assert dialog.id == DialogId(CALL_ID, "cc-1", "")
    bye = dialog.create_request("BYE")
    assert bye.to_tag is None and bye.from_tag == "cc-1"


def test_secure_flag_needs_tls_and_a_sips_request_uri() -> None:
    text = INVITE_AT_CC.replace("INVITE sip:support@", "INVITE sips:support@")
    for over_tls, secure in ((True, True), (False, False)):
        cc = Dialogs(local_contact=CC_CONTACT)
        cc.respond(req(text, SDP), 180, over_tls=over_tls)
        assert next(iter(cc)).secure is secure
    cc = Dialogs(local_contact=CC_CONTACT)
    cc.respond(req(INVITE_AT_CC, SDP), 180, over_tls=True)
    assert next(iter(cc)).secure is False


def test_subscribe_2xx_creates_a_dialog_but_its_1xx_does_not() -> None:
    text = INVITE_AT_CC.replace("INVITE", "SUBSCRIBE").replace(
        "Content-Type: application/sdp", "Event: dialog"
    )
    subscribe = req(text)
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "s1")
    _, events = cc.respond(subscribe, 202)
    assert [type(e) for e in events] == [DialogEstablished, DialogConfirmed]
    notify = next(iter(cc)).create_request(
        "NOTIFY", extra_headers=[("Event", "dialog"), ("Subscription-State", "active")]
    )
    assert notify.contacts == [CC_CONTACT] and notify.cseq.seq == 1


# -- creation, UAC side (§12.1.2) and strict routing ----------------------------------------


def test_uac_dialog_reverses_the_record_route_and_routes_strictly() -> None:
    call = establish()
    dialog = call.alice_dialog
    assert dialog.id == ALICE_ID
    assert dialog.role is Role.UAC and dialog.owns_call_id
    assert dialog.state is CONFIRMED
    # §12.1.2: the Record-Route of the response reversed: p1 (next to Alice) first.
    assert dialog.route_set == (parse_uri(P1), parse_uri(P2))
    assert dialog.remote_target == CC_CONTACT.uri
    assert dialog.local_seq == 314159 and dialog.remote_seq is None
    info = dialog.create_request(
        "INFO", body=b"Signal=5\r\n", content_type="application/dtmf-relay"
    )
    # p1 lacks lr: strict routing puts it in the Request-URI and the target last in Route.
    assert info.uri == parse_uri(P1)
    assert info.headers.fields("route") == [f"<{P2}>", f"<{CC_CONTACT.uri}>"]
    assert info.cseq.seq == 314160 and info.cseq.method == "INFO"
    assert info.from_tag == "1928301774" and info.to_tag == "cc-1"
    assert info.content_type == "application/dtmf-relay" and info.body == b"Signal=5\r\n"


def test_uac_early_dialog_then_confirmed_by_2xx() -> None:
    alice = Dialogs()
    invite = req(ALICE_INVITE, SDP)
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1")
    invite_at_cc = req(INVITE_AT_CC, SDP)
    ringing, _ = cc.respond(invite_at_cc, 180)
    dialog, events = alice.receive_response(invite, back_through_proxies(ringing, 2))
    assert dialog is not None
    assert events == (DialogEstablished(dialog_id=ALICE_ID, role=Role.UAC, state=EARLY),)
    assert dialog.invite_pending_out == 314159
    with pytest.raises(LocalProtocolError):
        dialog.create_ack(314159)  # nothing to ACK before a 2xx
    ok, _ = cc.respond(invite_at_cc, 200, body=SDP, content_type="application/sdp")
    same, events = alice.receive_response(invite, back_through_proxies(ok, 2))
    assert same is dialog and events == (DialogConfirmed(dialog_id=ALICE_ID),)
    assert dialog.invite_pending_out is None
    # A retransmitted 2xx (the UAC ACKs it again) and a 1xx overtaken by it change nothing.
    assert alice.receive_response(invite, back_through_proxies(ok, 2)) == (dialog, ())
    assert alice.receive_response(invite, back_through_proxies(ringing, 2)) == (dialog, ())


def test_ack_for_2xx_uses_the_invite_cseq_and_credentials() -> None:
    call = establish(ack=False)
    dialog = call.alice_dialog
    ack = dialog.create_ack(call.alice_invite.cseq)
    assert ack.method == "ACK"
    assert str(ack.cseq) == "314159 ACK"
    assert ack.headers.get("Proxy-Authorization") == call.alice_invite.headers.get(
        "Proxy-Authorization"
    )
    assert ack.uri == parse_uri(P1)  # routed like any request in the dialog
    assert ack.headers.fields("route") == [f"<{P2}>", f"<{CC_CONTACT.uri}>"]
    assert ack.headers.get("Max-Forwards") == "70"
    assert "via" not in ack.headers  # the transaction layer prepends it
    assert dialog.local_seq == 314159  # an ACK takes no new CSeq
    with pytest.raises(LocalProtocolError):
        dialog.create_ack(314160)
    # At the call center the ACK is passed on once; duplicates are ignored.
    delivered = deliver(ack, str(CC_CONTACT.uri))
    dialog_cc, verdict = call.cc.receive_request(delivered)
    assert dialog_cc is call.cc_dialog
    assert verdict == Accepted(events=(DialogAckReceived(dialog_id=CC_ID, cseq=314159),))
    assert isinstance(call.cc.receive_request(delivered)[1], Ignored)


def test_ack_with_a_wrong_to_tag_is_matched_by_call_id_from_tag_and_cseq() -> None:
    call = establish(ack=False)
    ack = call.alice_dialog.create_ack(314159)
    ack.headers.set("To", '"Support" <sip:support@cc.example.com>;tag=5c2e4a11')  # pyVoIP
    dialog, verdict = call.cc.receive_request(deliver(ack, str(CC_CONTACT.uri)))
    assert dialog is call.cc_dialog
    assert verdict == Accepted(events=(DialogAckReceived(dialog_id=CC_ID, cseq=314159),))


def test_uac_2xx_without_contact_is_dropped() -> None:
    call = establish()
    ok = dataclasses.replace(call.ok_at_alice, headers=call.ok_at_alice.headers.copy())
    ok.headers.remove("Contact")
    with pytest.raises(SipParseError) as info:
        Dialogs().receive_response(call.alice_invite, ok)
    assert info.value.status is None


# -- requests within the dialog (§12.2.1.1) -------------------------------------------------


def test_bye_from_uas_uses_loose_routing_and_terminates() -> None:
    call = establish()
    bye = call.cc_dialog.create_request("BYE")
    assert bye.uri == parse_uri(ALICE_CONTACT)  # p2 has lr: the target is the Request-URI
    assert bye.headers.fields("route") == [f"<{P2}>", f"<{P1}>"]
    assert bye.headers.get("From") == '"Support" <sip:support@cc.example.com>;tag=cc-1'
    assert bye.headers.get("To") == '"Alice" <sip:alice@atlanta.example.com>;tag=1928301774'
    assert bye.call_id == CALL_ID
    assert str(bye.cseq) == "1 BYE"  # our first request: the local CSeq starts at 1
    assert bye.max_forwards == 70
    assert "contact" not in bye.headers and "via" not in bye.headers
    assert call.cc_dialog.state is TERMINATED
    assert call.cc_dialog.termination_reason is TerminationReason.BYE_SENT
    with pytest.raises(LocalProtocolError):
        call.cc_dialog.create_request("INFO")
    # Alice's side: the BYE ends her dialog; her 200 to it changes nothing more.
    delivered = deliver(bye, ALICE_CONTACT)
    dialog, verdict = call.alice.receive_request(delivered)
    assert dialog is call.alice_dialog
    assert verdict == Accepted(
        events=(DialogTerminated(dialog_id=ALICE_ID, reason=TerminationReason.BYE_RECEIVED),)
    )
    ok, events = call.alice.respond(delivered, 200)
    assert ok.to_tag == "1928301774" and ok.from_tag == "cc-1" and events == ()
    # The 200 to our BYE finds the terminated dialog and changes nothing.
    assert call.cc.receive_response(bye, wire_response(ok)) == (call.cc_dialog, ())
    # Any later request for the dialog gets 481.
    late = retyped(delivered, "INFO", 2)
    assert call.alice.receive_request(late) == (call.alice_dialog, Rejected(status=481))


def test_request_uri_strips_what_a_request_uri_may_not_carry() -> None:
    strict = parse_uri("sip:p1.example.com;method=INVITE;transport=tcp;maddr=192.0.2.1?Subject=x")
    loose = parse_uri("sip:p2.example.com;lr;foo=bar")
    target = parse_uri("sip:bob@192.0.2.4;transport=udp")
    assert isinstance(strict, SipUri) and isinstance(loose, SipUri)
    assert isinstance(target, SipUri)
    uri, routes = next_hop(target, (strict, loose))
    assert uri == parse_uri("sip:p1.example.com;transport=tcp;maddr=192.0.2.1")
    assert routes == [loose, target]  # the rest keeps all its parameters
    uri, routes = next_hop(target, (loose, strict))
    assert uri == target and routes == [loose, strict]
    assert next_hop(target, ()) == (target, [])
    with_headers = parse_uri("sip:bob@192.0.2.4;method=INVITE?Priority=urgent")
    assert isinstance(with_headers, SipUri)
    assert request_uri_form(with_headers) == parse_uri("sip:bob@192.0.2.4")


def test_create_request_refuses_what_is_not_built_here() -> None:
    call = establish()
    for method in ("ACK", "CANCEL"):
        with pytest.raises(LocalProtocolError):
            call.cc_dialog.create_request(method)
    with pytest.raises(LocalProtocolError):
        call.cc_dialog.create_request("MESSAGE", body=b"hi")  # a body needs a Content-Type
    assert call.cc_dialog.local_seq is None  # nothing was consumed


def test_callee_must_not_bye_an_early_dialog_but_the_caller_may() -> None:
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1")
    alice = Dialogs()
    invite = req(INVITE_AT_CC, SDP)
    ringing, _ = cc.respond(invite, 180)
    (cc_dialog,) = cc
    with pytest.raises(LocalProtocolError):
        cc_dialog.create_request("BYE")
    alice_dialog, _ = alice.receive_response(
        req(ALICE_INVITE, SDP), back_through_proxies(ringing, 2)
    )
    assert alice_dialog is not None
    bye = alice_dialog.create_request("BYE")
    assert alice_dialog.state is TERMINATED
    assert str(bye.cseq) == "314160 BYE"
    _, verdict = cc.receive_request(deliver(bye, str(CC_CONTACT.uri)))
    assert verdict == Accepted(
        events=(DialogTerminated(dialog_id=CC_ID, reason=TerminationReason.BYE_RECEIVED),)
    )
    # The UAS still answers the INVITE (487 recommended); the dialog stays ended.
    terminated, events = cc.respond(invite, 487)
    assert terminated.to_tag == "cc-1" and events == ()
    assert cc_dialog.invite_pending_in is None


# -- requests from the peer (§12.2.2) -------------------------------------------------------


def test_out_of_order_cseq_is_rejected_500_and_ack_cancel_are_exempt() -> None:
    call = establish()
    info = deliver(call.alice_dialog.create_request("INFO"), str(CC_CONTACT.uri))
    assert call.cc.receive_request(info) == (call.cc_dialog, Accepted())
    assert call.cc_dialog.remote_seq == 314160
    stale = retyped(info, "INFO", 314100)
    _, verdict = call.cc.receive_request(stale)
    assert verdict == Rejected(status=500, reason="CSeq Out of Order")
    assert isinstance(verdict, Rejected)
    response = verdict.response(stale)
    assert response.status == 500 and response.to_tag == "cc-1"
    assert call.cc_dialog.remote_seq == 314160
    # An ACK or CANCEL carries its INVITE's lower CSeq: not an ordering error.
    old_ack = deliver(call.alice_dialog.create_ack(314159), str(CC_CONTACT.uri))
    assert isinstance(call.cc.receive_request(old_ack)[1], Ignored)
    cancel = retyped(old_ack, "CANCEL", 314159)
    assert call.cc.receive_request(cancel)[1] == Accepted()


@settings(deadline=None, max_examples=50)
@given(st.lists(st.integers(min_value=0, max_value=2**31 - 1), max_size=12))
def test_remote_cseq_only_rises(numbers: list[int]) -> None:
    cc = Dialogs(local_contact=CC_CONTACT, make_tag=lambda: "cc-1")
    cc.respond(req(INVITE_AT_CC, SDP), 200, body=SDP, content_type="application/sdp")
    (dialog,) = cc
    highest = 314159
    template = req(
        f"""INFO sip:support@198.51.100.5:5060 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinfo
To: <sip:support@cc.example.com>;tag=cc-1
From: <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: {CALL_ID}
CSeq: 1 INFO
Max-Forwards: 70
"""
    )
    for number in numbers:
        template.headers.set("CSeq", f"{number} INFO")
        _, verdict = cc.receive_request(template)
        if number >= highest:
            assert verdict == Accepted()
            highest = number
        else:
            assert verdict == Rejected(status=500, reason="CSeq Out of Order")
        assert dialog.remote_seq == highest


def test_reinvite_from_peer_refreshes_the_target() -> None:
    call = establish()
    reinvite = call.alice_dialog.create_request("INVITE", body=SDP, content_type="application/sdp")
    assert reinvite.contacts == [parse_name_addr(f"<{ALICE_CONTACT}>")]
    assert call.alice_dialog.invite_pending_out == 314160
    # Alice moved (new address): the Contact of the re-INVITE is her new target.
    reinvite.headers.set("Contact", "<sip:alice@192.0.2.99:5062>")
    delivered = deliver(reinvite, str(CC_CONTACT.uri))
    _, verdict = call.cc.receive_request(delivered)
    new_target = sip_uri("sip:alice@192.0.2.99:5062")
    assert verdict == Accepted(events=(TargetRefreshed(dialog_id=CC_ID, remote_target=new_target),))
    assert call.cc_dialog.remote_target == new_target
    assert call.cc_dialog.invite_pending_in == 314160
    ok, events = call.cc.respond(delivered, 200, body=SDP, content_type="application/sdp")
    assert events == () and ok.contacts == [CC_CONTACT]
    assert call.cc_dialog.invite_pending_in is None and call.cc_dialog.awaiting_ack == 314160
    assert call.alice.receive_response(reinvite, wire_response(ok)) == (call.alice_dialog, ())
    assert call.alice_dialog.invite_pending_out is None
    assert call.cc_dialog.create_request("BYE").uri == new_target


def test_2xx_to_our_target_refresh_refreshes_the_target() -> None:
    call = establish()
    update = call.cc_dialog.create_request("UPDATE", body=SDP, content_type="application/sdp")
    assert update.contacts == [CC_CONTACT]
    delivered = deliver(update, ALICE_CONTACT)
    assert call.alice.receive_request(delivered) == (call.alice_dialog, Accepted())
    ok, _ = call.alice.respond(delivered, 200)
    ok.headers.set("Contact", "<sip:alice@192.0.2.99:5062>")
    dialog, events = call.cc.receive_response(update, wire_response(ok))
    new_target = sip_uri("sip:alice@192.0.2.99:5062")
    assert dialog is call.cc_dialog
    assert events == (TargetRefreshed(dialog_id=CC_ID, remote_target=new_target),)
    # Without Contact, or with the same one, nothing changes.
    assert call.cc_dialog.receive_response(wire_response(ok)) == ()


@pytest.mark.parametrize(
    ("status", "reason"),
    [(481, TerminationReason.NO_SUCH_DIALOG), (408, TerminationReason.TIMED_OUT)],
)
def test_481_or_408_to_an_in_dialog_request_ends_the_dialog(
    status: int, reason: TerminationReason
) -> None:
    call = establish()
    info = call.cc_dialog.create_request("INFO")
    gone = Rejected(status=status).response(deliver(info, ALICE_CONTACT))
    assert call.cc.receive_response(info, gone) == (
        call.cc_dialog,
        (DialogTerminated(dialog_id=CC_ID, reason=reason),),
    )


def test_timeout_of_an_in_dialog_request_ends_the_dialog() -> None:
    call = establish()
    options = call.alice_dialog.create_request("OPTIONS")
    assert call.alice.request_timed_out(options) == (
        DialogTerminated(dialog_id=ALICE_ID, reason=TerminationReason.TIMED_OUT),
    )
    assert call.alice.request_timed_out(options) == ()


# -- forking (§12.1.2, §13.2.2) ---------------------------------------------------------------

OUR_INVITE = """INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK74bf9
Max-Forwards: 70
From: "Support" <sip:support@cc.example.com>;tag=9fxced76sl
To: <sip:bob@biloxi.example.com>
Call-ID: 3848276298220188511@cc.example.com
CSeq: 1 INVITE
Contact: <sip:support@198.51.100.5:5060>
Content-Type: application/sdp
"""


def fork_response(status: int, tag: str | None, contact: str | None) -> Response:
    lines = [
        f"SIP/2.0 {status} Whatever",
        "Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK74bf9;received=198.51.100.5",
        "Record-Route: <sip:ss1.biloxi.example.com;lr>",
        'From: "Support" <sip:support@cc.example.com>;tag=9fxced76sl',
        "To: <sip:bob@biloxi.example.com>" + (f";tag={tag}" if tag else ""),
        "Call-ID: 3848276298220188511@cc.example.com",
        "CSeq: 1 INVITE",
    ]
    if contact:
        lines.append(f"Contact: <{contact}>")
    message = parse("\n".join(lines))
    assert isinstance(message, Response)
    return message


def fork_id(tag: str) -> DialogId:
    return DialogId("3848276298220188511@cc.example.com", "9fxced76sl", tag)


def test_forked_invite_makes_one_early_dialog_per_to_tag() -> None:
    cc = Dialogs()
    invite = req(OUR_INVITE, SDP)
    assert cc.receive_response(invite, fork_response(100, None, None)) == (None, ())
    a, _ = cc.receive_response(invite, fork_response(180, "a", "sip:bob@192.0.2.41"))
    b, _ = cc.receive_response(invite, fork_response(183, "b", "sip:bob@192.0.2.42"))
    assert a is not None and b is not None and a is not b
    assert (a.id, b.id) == (fork_id("a"), fork_id("b"))
    assert cc.early_dialogs(invite) == [a, b]
    assert a.route_set == (parse_uri("sip:ss1.biloxi.example.com;lr"),)
    dialog, events = cc.receive_response(invite, fork_response(200, "b", "sip:bob@192.0.2.42"))
    assert dialog is b and events == (DialogConfirmed(dialog_id=fork_id("b")),)
    assert (a.state, b.state) == (EARLY, CONFIRMED)
    ack = b.create_ack(1)
    assert ack.uri == parse_uri("sip:bob@192.0.2.42") and ack.to_tag == "b"
    # 64*T1 after the first 2xx the forks that never answered are given up.
    assert cc.end_early(invite) == (
        DialogTerminated(dialog_id=fork_id("a"), reason=TerminationReason.LOCAL),
    )
    assert cc.early_dialogs(invite) == []


def test_second_2xx_from_another_fork_confirms_that_dialog_too() -> None:
    cc = Dialogs()
    invite = req(OUR_INVITE, SDP)
    cc.receive_response(invite, fork_response(200, "a", "sip:bob@192.0.2.41"))
    dialog, events = cc.receive_response(invite, fork_response(200, "c", "sip:bob@192.0.2.43"))
    assert dialog is not None and dialog.state is CONFIRMED and len(cc) == 2
    assert events == (
        DialogEstablished(dialog_id=fork_id("c"), role=Role.UAC, state=CONFIRMED),
        DialogConfirmed(dialog_id=fork_id("c")),
    )
    assert dialog.create_request("BYE").to_tag == "c"  # the TU keeps one and hangs up the other


def test_final_failure_ends_every_early_dialog_of_the_request() -> None:
    cc = Dialogs()
    invite = req(OUR_INVITE, SDP)
    cc.receive_response(invite, fork_response(180, "a", "sip:bob@192.0.2.41"))
    cc.receive_response(invite, fork_response(180, "b", "sip:bob@192.0.2.42"))
    dialog, events = cc.receive_response(invite, fork_response(486, "a", None))
    assert dialog is not None and dialog.id == fork_id("a")
    assert events == (
        DialogTerminated(dialog_id=fork_id("a"), reason=TerminationReason.REJECTED),
        DialogTerminated(dialog_id=fork_id("b"), reason=TerminationReason.REJECTED),
    )
    assert all(d.state is TERMINATED for d in cc)


def test_invite_timeout_ends_the_early_dialogs() -> None:
    cc = Dialogs()
    invite = req(OUR_INVITE, SDP)
    cc.receive_response(invite, fork_response(180, "a", None))  # no Contact: target = R-URI
    (a,) = cc
    assert a.remote_target == parse_uri("sip:bob@biloxi.example.com")
    assert cc.request_timed_out(invite) == (
        DialogTerminated(dialog_id=fork_id("a"), reason=TerminationReason.TIMED_OUT),
    )
    assert a.invite_pending_out is None
    cc.discard(a.id)
    assert len(cc) == 0 and a.id not in cc


# -- no such dialog (§12.2.2) ---------------------------------------------------------------


@pytest.mark.parametrize("raw", [WSINV, BYE_5118], ids=["rfc4475-wsinv", "rfc5118-bye"])
def test_in_dialog_request_for_no_dialog_gets_481(raw: bytes) -> None:
    request = parse_message(raw)
    assert isinstance(request, Request)
    dialog, verdict = Dialogs().receive_request(request)
    assert dialog is None and verdict == Rejected(status=481)
    assert isinstance(verdict, Rejected)
    response = wire_response(verdict.response(request))
    assert response.status == 481 and response.reason == "Call/Transaction Does Not Exist"
    assert response.to_tag == request.to_tag and response.call_id == request.call_id


def test_stray_ack_is_ignored_and_respond_without_dialog_keeps_the_to_tag() -> None:
    ack = parse_message(BYE_5118.replace(b"BYE", b"ACK"))
    assert isinstance(ack, Request)
    assert Dialogs().receive_request(ack) == (None, Ignored(why="ACK for no dialog"))
    bye = parse_message(BYE_5118)
    assert isinstance(bye, Request)
    response, events = Dialogs().respond(bye, 481)
    assert response.to_tag == "bd76ya" and events == ()


# -- re-INVITE glare (§14) ------------------------------------------------------------------


def test_crossing_reinvites_get_491_and_back_off_by_call_id_ownership() -> None:
    call = establish(random=0.5)
    ours = call.cc_dialog.create_request("INVITE", body=SDP, content_type="application/sdp")
    theirs = call.alice_dialog.create_request("INVITE", body=SDP, content_type="application/sdp")
    assert call.cc_dialog.invite_pending and call.alice_dialog.invite_pending
    with pytest.raises(LocalProtocolError):
        call.cc_dialog.create_request("INVITE")  # §14.1: one INVITE at a time
    _, at_cc = call.cc.receive_request(deliver(theirs, str(CC_CONTACT.uri)))
    _, at_alice = call.alice.receive_request(deliver(ours, ALICE_CONTACT))
    assert at_cc == at_alice == Rejected(status=491)
    assert isinstance(at_alice, Rejected)
    pending = at_alice.response(deliver(ours, ALICE_CONTACT))
    assert pending.status == 491 and pending.reason == "Request Pending"
    assert call.cc.receive_response(ours, pending) == (call.cc_dialog, ())
    assert not call.cc_dialog.invite_pending
    # Alice generated the Call-ID: 2.1–4 s; the call center: 0–2 s (random() = 0.5).
    assert call.alice_dialog.retry_after_491() == 3.05
    assert call.cc_dialog.retry_after_491() == 1.0
    # The glare did not change the remote target, and both dialogs are still up.
    assert call.cc_dialog.state is CONFIRMED and call.alice_dialog.state is CONFIRMED


def test_second_invite_before_the_first_is_answered_gets_500_with_retry_after() -> None:
    call = establish(random=0.55)
    first = deliver(call.alice_dialog.create_request("INVITE"), str(CC_CONTACT.uri))
    assert call.cc.receive_request(first)[1] == Accepted()
    call.alice_dialog.invite_pending_out = None  # a broken peer sends another anyway
    second = deliver(call.alice_dialog.create_request("INVITE"), str(CC_CONTACT.uri))
    _, verdict = call.cc.receive_request(second)
    assert verdict == Rejected(status=500, retry_after=6)
    assert isinstance(verdict, Rejected)
    assert verdict.response(second).headers.get("Retry-After") == "6"


@given(st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_glare_interval_is_in_range_in_10ms_units(value: float) -> None:
    owner = glare_retry_after(owns_call_id=True, random=lambda: value)
    other = glare_retry_after(owns_call_id=False, random=lambda: value)
    assert 2.1 <= owner <= 4.0 and 0.0 <= other <= 2.0
    for seconds in (owner, other):
        assert abs(seconds * 100 - round(seconds * 100)) < 1e-9


def test_glare_interval_bounds() -> None:
    assert glare_retry_after(owns_call_id=True, random=lambda: 0.0) == 2.1
    assert glare_retry_after(owns_call_id=True, random=lambda: 0.999999) == 4.0
    assert glare_retry_after(owns_call_id=False, random=lambda: 0.0) == 0.0
    assert glare_retry_after(owns_call_id=False, random=lambda: 0.999999) == 2.0


# -- the state table ------------------------------------------------------------------------

_ORDER = {EARLY: 0, CONFIRMED: 1, TERMINATED: 2}


@given(st.sampled_from(DialogState), st.sampled_from(DialogInput))
def test_every_state_input_pair_moves_legally_or_raises(
    state: DialogState, event: DialogInput
) -> None:
    try:
        after = next_state(state, event)
    except LocalProtocolError:
        assert (state, event) not in TRANSITIONS
        return
    assert TRANSITIONS[(state, event)] is after
    assert _ORDER[after] >= _ORDER[state]  # never back to early, never out of terminated
    if event in (DialogInput.FAILURE, DialogInput.BYE, DialogInput.ENDED):
        assert after is TERMINATED
    if event is DialogInput.SUCCESS:
        assert after is CONFIRMED


def test_state_table_is_exactly_the_rfc_moves() -> None:
    assert not any(state is TERMINATED for state, _ in TRANSITIONS)
    assert (CONFIRMED, DialogInput.FAILURE) not in TRANSITIONS
    assert len(TRANSITIONS) == 9


@given(st.lists(st.sampled_from(DialogInput), max_size=8))
def test_any_sequence_of_inputs_is_monotonic(events: list[DialogInput]) -> None:
    state = EARLY
    for event in events:
        try:
            after = next_state(state, event)
        except LocalProtocolError:
            assert state is TERMINATED or event is DialogInput.FAILURE
            continue
        assert _ORDER[after] >= _ORDER[state]
        state = after


def test_events_are_frozen() -> None:
    event = DialogTerminated(dialog_id=CC_ID, reason=TerminationReason.LOCAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.reason = TerminationReason.BYE_SENT  # type: ignore[misc]


# -- two UAs talking through the dialog layer ----------------------------------------------

_METHODS = ("INFO", "OPTIONS", "UPDATE", "MESSAGE", "INVITE")


@settings(deadline=None, max_examples=40)
@given(st.lists(st.tuples(st.booleans(), st.sampled_from(_METHODS)), max_size=8), st.booleans())
def test_two_dialogs_stay_in_step(steps: list[tuple[bool, str]], cc_hangs_up: bool) -> None:
    call = establish()
    sides = {
        True: (call.cc, call.cc_dialog, ALICE_CONTACT),
        False: (call.alice, call.alice_dialog, str(CC_CONTACT.uri)),
    }
    for from_cc, method in steps:
        registry, dialog, target = sides[from_cc]
        peer_registry, peer_dialog, _ = sides[not from_cc]
        body = {"body": b"x", "content_type": "text/plain"} if method == "MESSAGE" else {}
        request = dialog.create_request(method, **body)  # type: ignore[arg-type]
        delivered = deliver(request, target)
        found, verdict = peer_registry.receive_request(delivered)
        assert found is peer_dialog and verdict == Accepted()
        assert peer_dialog.remote_seq == dialog.local_seq
        response, events = peer_registry.respond(delivered, 200)
        assert events == ()
        assert registry.receive_response(request, wire_response(response)) == (dialog, ())
        if method == "INVITE":
            ack = deliver(dialog.create_ack(request.cseq), target)
            _, verdict = peer_registry.receive_request(ack)
            assert verdict == Accepted(
                events=(DialogAckReceived(dialog_id=peer_dialog.id, cseq=request.cseq.seq),)
            )
        assert not dialog.invite_pending and not peer_dialog.invite_pending
    registry, dialog, target = sides[cc_hangs_up]
    peer_registry, peer_dialog, _ = sides[not cc_hangs_up]
    bye = deliver(dialog.create_request("BYE"), target)
    _, verdict = peer_registry.receive_request(bye)
    assert verdict == Accepted(
        events=(DialogTerminated(dialog_id=peer_dialog.id, reason=TerminationReason.BYE_RECEIVED),)
    )
    assert dialog.state is peer_dialog.state is TERMINATED


def test_rfc2543_invite_without_contact_targets_the_from_uri() -> None:
    # RFC 4475 inv2543: no branch cookie, no Contact; the dialog's target is the From URI.
    data = (
        b"INVITE sip:UserB@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.15\r\n"
        b"From: <sip:UserA@example.com>\r\n"
        b"To: <sip:UserB@example.com>\r\n"
        b"Call-ID: 2543@example.com\r\n"
        b"CSeq: 1 INVITE\r\n\r\n"
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    dialogs = Dialogs(local_contact=parse_uri("sip:pbx@192.0.2.1"))  # type: ignore[arg-type]
    dialog, verdict = dialogs.receive_request(request)
    assert dialog is None and isinstance(verdict, Accepted)
    _response, events = dialogs.respond(request, 200)
    established = [e for e in events if isinstance(e, DialogEstablished)]
    assert len(established) == 1
    created = dialogs.get(established[0].dialog_id)
    assert created is not None
    assert str(created.remote_target) == "sip:UserA@example.com"
