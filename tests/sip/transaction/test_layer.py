"""Matching, creation, bounds and timers of the transaction layer (§17.1.3, §17.2.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.sip import LocalProtocolError, Request, parse_message
from callcenter.sip.transaction import (
    AckReceived,
    ClientKey,
    Disposition,
    InviteServerState,
    InviteServerTransaction,
    LegacyServerKey,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    ServerKey,
    StrayResponseReceived,
    TransactionLayer,
    TransactionTerminated,
    TransportErrorOccurred,
    build_cancel,
    server_key,
)

from .helpers import ack_for, counter_token, request, response


def layer(max_transactions: int = 100) -> TransactionLayer:
    return TransactionLayer(random_token=counter_token(), max_transactions=max_transactions)


def new_server_key(tl: TransactionLayer, req: Request, now: float = 0.0) -> ServerKey:
    assert tl.receive_request(req, now, reliable=False) is Disposition.NEW_TRANSACTION
    events = tl.next_events()
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    key = events[0].transaction
    assert isinstance(key, ServerKey)
    return key


def test_retransmitted_invite_is_absorbed_with_the_last_response_resent() -> None:
    tl = layer()
    invite = request()
    key = new_server_key(tl, invite)
    tl.send_response(key, response(invite, 180), 0.1)
    (ringing,) = tl.data_to_send()
    assert ringing.transaction == key
    assert tl.receive_request(invite, 0.5, reliable=False) is Disposition.MATCHED
    (again,) = tl.data_to_send()
    assert again.data == ringing.data and again.retransmission
    assert tl.next_events() == []
    assert len(tl) == 1


def test_ack_for_a_non_2xx_is_absorbed_by_the_server_transaction() -> None:
    tl = layer()
    invite = request()
    key = new_server_key(tl, invite)
    busy = response(invite, 486)
    tl.send_response(key, busy, 0.1)
    assert tl.receive_request(ack_for(invite, busy), 0.2, reliable=False) is Disposition.MATCHED
    assert tl.next_events() == []
    server = tl.transaction(key)
    assert isinstance(server, InviteServerTransaction)
    assert server.state is InviteServerState.CONFIRMED


def test_ack_for_a_2xx_matches_nothing_and_goes_to_the_tu() -> None:
    tl = layer()
    invite = request()
    key = new_server_key(tl, invite)
    tl.send_response(key, response(invite, 200), 0.1)
    ack = request("ACK", branch="z9hG4bKnew-ack-branch", to_tag="a6c85cf")
    assert tl.receive_request(ack, 0.2, reliable=False) is Disposition.UNMATCHED
    assert tl.next_events() == [AckReceived(transaction=None, request=ack)]


def test_cancel_is_its_own_transaction_and_finds_its_invite() -> None:
    tl = layer()
    invite = request()
    invite_key = new_server_key(tl, invite)
    cancel = request("CANCEL")
    cancel_key = new_server_key(tl, cancel)
    assert cancel_key != invite_key and cancel_key.method == "CANCEL"
    assert tl.find_invite(cancel) == invite_key
    assert tl.find_invite(request("CANCEL", branch="z9hG4bKother")) is None
    assert len(tl) == 2


def test_rfc_2543_fallback_matches_retransmissions_and_the_ack_by_response_to_tag() -> None:
    tl = layer()
    invite = request(branch=None)
    assert tl.receive_request(invite, 0.0, reliable=False) is Disposition.NEW_TRANSACTION
    (event,) = tl.next_events()
    assert isinstance(event, RequestReceived)
    key = event.transaction
    assert isinstance(key, LegacyServerKey)
    busy = response(invite, 486, to_tag="callee")
    tl.send_response(key, busy, 0.1)
    tl.data_to_send()
    assert tl.receive_request(invite, 0.5, reliable=False) is Disposition.MATCHED
    assert len(tl.data_to_send()) == 1
    wrong = request("ACK", branch=None, to_tag="someone-else")
    assert tl.receive_request(wrong, 0.6, reliable=False) is Disposition.UNMATCHED
    assert isinstance(tl.next_events()[0], AckReceived)
    right = request("ACK", branch=None, to_tag="callee")
    assert tl.receive_request(right, 0.7, reliable=False) is Disposition.MATCHED
    assert tl.next_events() == []
    cancel = build_cancel(invite)
    assert tl.find_invite(cancel) == key


def test_rfc_2543_fallback_tells_apart_requests_with_other_call_ids() -> None:
    tl = layer()
    tl.receive_request(request(branch=None), 0.0, reliable=False)
    other = request(branch=None, call_id="other@pc33")
    assert tl.receive_request(other, 0.0, reliable=False) is Disposition.NEW_TRANSACTION


def test_a_branch_that_is_only_the_magic_cookie_falls_back_to_2543() -> None:
    """RFC 4475 badbranch.dat: `branch=z9hG4bK` with nothing after it."""
    tl = layer()
    invite = request("OPTIONS", branch="z9hG4bK")
    assert isinstance(server_key(invite), LegacyServerKey)
    assert tl.receive_request(invite, 0.0, reliable=False) is Disposition.NEW_TRANSACTION
    key = tl.next_events()[0]
    assert isinstance(key, RequestReceived)
    tl.send_response(key.transaction, response(invite, 200), 0.1)
    assert tl.receive_request(invite, 0.2, reliable=False) is Disposition.MATCHED
    assert len(tl.data_to_send()) == 2


def test_requests_differing_only_in_sent_by_are_different_transactions() -> None:
    tl = layer()
    a = new_server_key(tl, request("OPTIONS", sent_by="a.example.com"))
    b = new_server_key(tl, request("OPTIONS", sent_by="b.example.com:5070"))
    assert a != b and len(tl) == 2
    assert b.sent_by == ("b.example.com", 5070)


def test_sent_by_host_compares_case_insensitively() -> None:
    tl = layer()
    new_server_key(tl, request("OPTIONS", sent_by="PC33.atlanta.com"))
    again = request("OPTIONS", sent_by="pc33.ATLANTA.com")
    assert tl.receive_request(again, 0.1, reliable=False) is Disposition.ABSORBED


def test_stray_response_is_reported() -> None:
    tl = layer()
    stray = response(request(branch="z9hG4bKnobody"), 200)
    assert tl.receive_response(stray, 0.0) is Disposition.UNMATCHED
    assert tl.next_events() == [StrayResponseReceived(response=stray)]


def test_client_gets_a_fresh_branch_and_responses_match_by_branch_and_method() -> None:
    tl = layer()
    invite = request(branch=None)
    key = tl.send_request(invite, 0.0, reliable=False)
    assert key == ClientKey(branch="z9hG4bKt1", method="INVITE")
    assert invite.top_via.branch == "z9hG4bKt1"
    (out,) = tl.data_to_send()
    assert b"branch=z9hG4bKt1" in out.data and out.transaction == key
    cancel = build_cancel(invite)
    cancel_key = tl.send_request(cancel, 1.0, reliable=False)
    assert cancel_key == ClientKey(branch="z9hG4bKt1", method="CANCEL")
    tl.data_to_send()
    assert tl.receive_response(response(cancel, 200), 1.1) is Disposition.MATCHED
    assert tl.receive_response(response(invite, 487), 1.2) is Disposition.MATCHED
    events = [e for e in tl.next_events() if isinstance(e, ResponseReceived)]
    assert [(e.transaction.method, e.response.status) for e in events] == [
        ("CANCEL", 200),
        ("INVITE", 487),
    ]
    (ack,) = tl.data_to_send()
    assert ack.data.startswith(b"ACK sip:bob@biloxi.com SIP/2.0") and ack.transaction == key
    assert tl.new_branch() == "z9hG4bKt2"


def test_client_requests_the_layer_refuses() -> None:
    tl = layer()
    with pytest.raises(LocalProtocolError, match="ACK"):
        tl.send_request(request("ACK"), 0.0, reliable=False)
    with pytest.raises(LocalProtocolError, match="cookie"):
        tl.send_request(request("OPTIONS", branch="1234"), 0.0, reliable=False)
    tl.send_request(request("OPTIONS"), 0.0, reliable=False)
    with pytest.raises(LocalProtocolError, match="already"):
        tl.send_request(request("OPTIONS"), 0.0, reliable=False)
    with pytest.raises(LocalProtocolError, match="no server transaction"):
        tl.send_response(server_key(request()), response(request(), 200), 0.0)


def test_the_bound_refuses_new_server_transactions_only() -> None:
    tl = layer(max_transactions=1)
    first = request("OPTIONS")
    new_server_key(tl, first)
    second = request("OPTIONS", branch="z9hG4bKsecond")
    assert tl.receive_request(second, 0.0, reliable=False) is Disposition.REFUSED
    assert tl.next_events() == [RequestRefused(request=second, status=503)]
    assert tl.receive_request(first, 0.1, reliable=False) is Disposition.ABSORBED
    tl.send_request(request("BYE", branch=None), 0.2, reliable=False)  # never refused
    assert len(tl) == 2


def test_timers_are_aggregated_and_terminated_transactions_removed() -> None:
    tl = layer()
    assert tl.get_timer() is None
    options = request("OPTIONS", branch=None)
    tl.send_request(options, 0.0, reliable=False)
    tl.data_to_send()
    invite = request()
    key = new_server_key(tl, invite, now=0.1)
    trying_at = tl.get_timer()
    assert trying_at is not None and trying_at == pytest.approx(
        0.3
    )  # the 100 Trying timer of the server
    tl.handle_timer(trying_at)
    assert [o.message.status for o in tl.data_to_send()] == [100]  # type: ignore[union-attr]
    assert tl.get_timer() == 0.5  # Timer E of the client
    tl.send_response(key, response(invite, 200), 1.0)
    now = 0.0
    while (deadline := tl.get_timer()) is not None:
        now = deadline
        tl.handle_timer(now)
    terminated = [e for e in tl.next_events() if isinstance(e, TransactionTerminated)]
    assert {e.transaction for e in terminated} == {
        key,
        ClientKey(branch="z9hG4bKt1", method="OPTIONS"),
    }
    assert len(tl) == 0 and now == 33.0


def test_reliable_transactions_vanish_as_soon_as_they_complete() -> None:
    tl = layer()
    options = request("OPTIONS", branch=None)
    key = tl.send_request(options, 0.0, reliable=True)
    assert tl.get_timer() == 32.0  # Timer F only
    tl.receive_response(response(options, 200), 0.1)
    assert len(tl) == 0 and tl.get_timer() is None
    assert tl.next_events()[-1] == TransactionTerminated(transaction=key)


def test_transport_errors_reach_the_transaction() -> None:
    tl = layer()
    key = tl.send_request(request("OPTIONS", branch=None), 0.0, reliable=False)
    assert tl.handle_transport_error(key, 0.1)
    assert [type(e) for e in tl.next_events()] == [TransportErrorOccurred, TransactionTerminated]
    assert not tl.handle_transport_error(key, 0.2)
    assert len(tl) == 0


def test_abandon_through_the_layer() -> None:
    tl = layer()
    invite = request(branch=None)
    key = tl.send_request(invite, 0.0, reliable=True)
    tl.receive_response(response(invite, 180), 0.1)
    assert tl.abandon(key, 40.0)
    assert len(tl) == 0
    assert not tl.abandon(key, 41.0)


def test_pyvoip_authenticated_invite_with_the_same_branch_is_a_new_transaction() -> None:
    # pyVoIP 1.6.8 (tests/data/sip/pyvoip-*-401, -invite-auth) answers a 401 with an ACK and a
    # new INVITE that reuse the first INVITE's branch, with CSeq + 1.
    golden = Path(__file__).resolve().parents[2] / "data" / "sip"
    second = parse_message((golden / "pyvoip-invite-auth.sip").read_bytes())
    ack = parse_message((golden / "pyvoip-ack-401.sip").read_bytes())
    assert isinstance(second, Request) and isinstance(ack, Request)
    assert second.top_via.branch == ack.top_via.branch
    first = parse_message(bytes(second).replace(b"CSeq: 2 INVITE", b"CSeq: 1 INVITE"))
    assert isinstance(first, Request)
    first.headers.remove("authorization")
    tl = layer()
    key = new_server_key(tl, first)
    tl.send_response(key, response(first, 401), 0.1)
    tl.data_to_send()
    assert tl.receive_request(ack, 0.2, reliable=False) is Disposition.MATCHED
    assert new_server_key(tl, second, 0.3) != key
