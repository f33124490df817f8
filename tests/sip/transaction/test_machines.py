"""Behaviour of the four transactions through their public methods, with real messages."""

from __future__ import annotations

import pytest

from callcenter.sip import LocalProtocolError, Request, Response, parse_message
from callcenter.sip.transaction import (
    AckReceived,
    ClientKey,
    InviteClientState,
    InviteClientTransaction,
    InviteServerInput,
    InviteServerState,
    InviteServerTransaction,
    NonInviteClientState,
    NonInviteClientTransaction,
    NonInviteServerState,
    NonInviteServerTransaction,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransportErrorOccurred,
    build_ack,
    build_cancel,
)

from .helpers import ack_for, request, response

ROUTES = ("<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>")
PROXY_VIA = "SIP/2.0/UDP proxy.atlanta.com;branch=z9hG4bKupstream"


def sent(transaction: InviteClientTransaction | InviteServerTransaction) -> list[bytes]:
    return [o.data for o in transaction.data_to_send()]


# -- the ACK for a non-2xx (§17.1.1.3) ----------------------------------------------------


def test_the_ack_for_a_487_has_the_fields_of_17_1_1_3() -> None:
    # Two Vias and a body, as in a proxy's client transaction: only the top Via may remain.
    invite = request(routes=ROUTES, extra_vias=(PROXY_VIA,), body=b"v=0\r\n")
    client = InviteClientTransaction(invite)
    client.send_request(0.0)
    client.data_to_send()
    rejected = response(invite, 487, to_tag="callee-tag")
    client.receive_response(rejected, 1.0)
    (transmission,) = client.data_to_send()
    ack = parse_message(transmission.data)
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert ack.call_id == invite.call_id
    assert ack.headers.get("from") == invite.headers.get("from")
    assert ack.cseq.seq == invite.cseq.seq and ack.cseq.method == "ACK"
    assert ack.headers.get("to") == rejected.headers.get("to")
    assert ack.to_tag == "callee-tag"
    assert ack.headers.values("via") == [invite.headers.values("via")[0]]
    assert ack.headers.fields("route") == list(ROUTES)
    assert ack.max_forwards == 70
    assert ack.body == b"" and ack.headers.get("content-length") == "0"
    assert "contact" not in ack.headers


def test_a_retransmitted_final_response_is_acked_again_but_not_passed_up() -> None:
    invite = request()
    client = InviteClientTransaction(invite)
    client.send_request(0.0)
    client.data_to_send()
    rejected = response(invite, 486)
    assert client.receive_response(rejected, 1.0)
    first_ack = sent(client)
    assert [type(e) for e in client.next_events()] == [ResponseReceived]
    assert client.receive_response(rejected, 2.0)
    assert sent(client) == first_ack
    assert client.next_events() == []
    assert client.state is InviteClientState.COMPLETED


def test_no_ack_for_a_2xx_and_every_2xx_goes_up_in_accepted() -> None:
    invite = request()
    client = InviteClientTransaction(invite)
    client.send_request(0.0)
    client.data_to_send()
    client.receive_response(response(invite, 180), 0.3)
    ok = response(invite, 200)
    client.receive_response(ok, 1.0)
    client.receive_response(ok, 1.5)  # retransmitted by the UAS core: the dialog re-ACKs
    assert client.data_to_send() == []
    statuses = [e.response.status for e in client.next_events() if isinstance(e, ResponseReceived)]
    assert statuses == [180, 200, 200]
    assert client.state is InviteClientState.ACCEPTED
    assert not client.receive_response(response(invite, 180), 2.0)  # absorbed


def test_build_ack_refuses_what_the_transaction_does_not_acknowledge() -> None:
    invite = request()
    with pytest.raises(LocalProtocolError):
        build_ack(invite, response(invite, 200))
    with pytest.raises(LocalProtocolError):
        build_ack(request("OPTIONS"), response(request("OPTIONS"), 486))


def test_build_cancel_copies_what_9_1_requires() -> None:
    invite = request(routes=ROUTES, to_tag=None)
    cancel = parse_message(bytes(build_cancel(invite)))
    assert isinstance(cancel, Request)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.cseq.seq == invite.cseq.seq and cancel.cseq.method == "CANCEL"
    assert cancel.top_via.branch == invite.top_via.branch
    for name in ("to", "from", "call-id"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert cancel.headers.fields("route") == list(ROUTES)
    with pytest.raises(LocalProtocolError):
        build_cancel(request("ACK"))


# -- client transactions ------------------------------------------------------------------


def test_client_transport_error_in_calling_informs_the_tu() -> None:
    client = InviteClientTransaction(request())
    client.send_request(0.0)
    assert client.handle_transport_error(0.1)
    assert client.state is InviteClientState.TERMINATED
    assert [type(e) for e in client.next_events()] == [
        TransportErrorOccurred,
        TransactionTerminated,
    ]
    assert client.get_timer() is None


def test_client_misuse_raises_and_terminates() -> None:
    invite = request()
    client = InviteClientTransaction(invite)
    with pytest.raises(LocalProtocolError, match="RECEIVED_1XX"):
        client.receive_response(response(invite, 180), 0.0)  # nothing was sent yet
    assert client.state is InviteClientState.TERMINATED
    assert [type(e) for e in client.next_events()] == [TransactionTerminated]
    with pytest.raises(LocalProtocolError):
        client.send_request(1.0)
    assert client.next_events() == []  # terminated once, reported once


def test_client_constructors_check_the_method() -> None:
    with pytest.raises(LocalProtocolError):
        InviteClientTransaction(request("OPTIONS"))
    for method in ("INVITE", "ACK"):
        with pytest.raises(LocalProtocolError):
            NonInviteClientTransaction(request(method))
    with pytest.raises(LocalProtocolError):
        NonInviteClientTransaction(request("OPTIONS", branch=None))
    explicit = ClientKey(branch="z9hG4bKx", method="OPTIONS")
    assert NonInviteClientTransaction(request("OPTIONS"), key=explicit).key is explicit


def test_abandon_destroys_an_unanswered_invite_only() -> None:
    invite = request()
    client = InviteClientTransaction(invite)
    client.send_request(0.0)
    client.receive_response(response(invite, 180), 0.1)
    assert client.abandon(40.0)
    assert client.state is InviteClientState.TERMINATED
    answered = InviteClientTransaction(invite)
    answered.send_request(0.0)
    answered.receive_response(response(invite, 486), 0.1)
    assert not answered.abandon(1.0)
    assert answered.state is InviteClientState.COMPLETED


def test_non_invite_client_passes_one_final_and_absorbs_the_rest() -> None:
    req = request("REGISTER")
    client = NonInviteClientTransaction(req)
    client.send_request(0.0)
    assert client.receive_response(response(req, 100), 0.1)
    assert client.receive_response(response(req, 200), 0.2)
    assert not client.receive_response(response(req, 200), 0.3)
    assert not client.receive_response(response(req, 180), 0.4)
    statuses = [e.response.status for e in client.next_events() if isinstance(e, ResponseReceived)]
    assert statuses == [100, 200]
    assert client.state is NonInviteClientState.COMPLETED


def test_response_status_out_of_range_is_our_bug() -> None:
    req = request("OPTIONS")
    client = NonInviteClientTransaction(req)
    client.send_request(0.0)
    bogus = Response(99, "Nope", response(req, 200).headers)
    with pytest.raises(LocalProtocolError):
        client.receive_response(bogus, 0.1)
    assert client.state is NonInviteClientState.TRYING  # refused before the table


# -- INVITE server ----------------------------------------------------------------------------


def test_retransmitted_invite_gets_the_last_provisional_then_the_final() -> None:
    invite = request()
    server = InviteServerTransaction(invite)
    assert server.receive_request(invite, 0.0)
    assert [type(e) for e in server.next_events()] == [RequestReceived]
    assert server.receive_request(invite, 0.05)  # nothing sent yet: nothing to resend
    assert sent(server) == []
    server.send_response(response(invite, 180), 0.1)
    ringing = sent(server)
    server.receive_request(invite, 0.5)
    assert sent(server) == ringing
    server.send_response(response(invite, 486), 1.0)
    busy = sent(server)
    server.receive_request(invite, 1.1)
    assert sent(server) == busy
    assert server.next_events() == []  # retransmissions never reach the TU


def test_ack_for_non_2xx_confirms_and_its_retransmissions_are_absorbed() -> None:
    invite = request()
    server = InviteServerTransaction(invite)
    server.receive_request(invite, 0.0)
    server.next_events()
    busy = response(invite, 486)
    server.send_response(busy, 0.1)
    ack = ack_for(invite, busy)
    assert server.receive_request(ack, 0.2)
    assert server.state is InviteServerState.CONFIRMED
    assert not server.receive_request(ack, 0.3)
    assert not server.receive_request(invite, 0.4)
    assert server.next_events() == []


def test_accepted_sends_tu_2xx_passes_ack_up_and_absorbs_invites() -> None:
    invite = request()
    server = InviteServerTransaction(invite)
    server.receive_request(invite, 0.0)
    server.next_events()
    ok = response(invite, 200)
    server.send_response(ok, 0.1)
    first = sent(server)
    assert server.send_response(ok, 0.6)  # the TU's retransmission (§13.3.1.4)
    assert sent(server) == first
    assert not server.receive_request(invite, 0.7)
    assert sent(server) == []
    ack = request("ACK", to_tag="a6c85cf")  # a peer that reused the INVITE branch
    server.receive_request(ack, 0.8)
    (event,) = server.next_events()
    assert isinstance(event, AckReceived) and event.transaction == server.key


def test_server_tu_misuse_raises_and_terminates() -> None:
    invite = request()
    server = InviteServerTransaction(invite)
    server.receive_request(invite, 0.0)
    server.send_response(response(invite, 486), 0.1)
    with pytest.raises(LocalProtocolError, match="SEND_2XX"):
        server.send_response(response(invite, 200), 0.2)
    assert server.state is InviteServerState.TERMINATED
    assert server.get_timer() is None


def test_server_refuses_a_response_to_another_request() -> None:
    invite = request()
    server = InviteServerTransaction(invite)
    server.receive_request(invite, 0.0)
    with pytest.raises(LocalProtocolError, match="CSeq"):
        server.send_response(response(request(cseq=7), 200), 0.1)
    assert server.state is InviteServerState.PROCEEDING
    with pytest.raises(LocalProtocolError):
        server.receive_request(request("BYE"), 0.2)
    with pytest.raises(LocalProtocolError):
        InviteServerTransaction(request("OPTIONS"))


def test_server_transport_error_in_completed_informs_the_tu() -> None:
    invite = request()
    server = InviteServerTransaction(invite)
    server.receive_request(invite, 0.0)
    server.send_response(response(invite, 500), 0.1)
    server.next_events()
    server.handle_transport_error(0.2)
    assert [type(e) for e in server.next_events()] == [
        TransportErrorOccurred,
        TransactionTerminated,
    ]


# -- non-INVITE server ------------------------------------------------------------------------


def test_non_invite_server_retransmissions_by_state() -> None:
    req = request("BYE", to_tag="a6c85cf")
    server = NonInviteServerTransaction(req)
    server.receive_request(req, 0.0)
    assert not server.receive_request(req, 0.1)  # Trying: discarded
    assert server.data_to_send() == []
    server.send_response(response(req, 100), 0.2)
    trying = [o.data for o in server.data_to_send()]
    assert server.receive_request(req, 0.3)
    assert [o.data for o in server.data_to_send()] == trying
    server.send_response(response(req, 200), 0.4)
    ok = [o.data for o in server.data_to_send()]
    server.receive_request(req, 0.5)
    assert [o.data for o in server.data_to_send()] == ok
    assert not server.send_response(response(req, 500), 0.6)  # §17.2.2: discarded
    assert server.data_to_send() == []
    assert server.state is NonInviteServerState.COMPLETED
    with pytest.raises(LocalProtocolError):
        server.receive_request(request("OPTIONS"), 0.7)
    for method in ("INVITE", "ACK"):
        with pytest.raises(LocalProtocolError):
            NonInviteServerTransaction(request(method))


def test_an_action_refusing_its_input_terminates_too() -> None:
    # No public method can hand an action the wrong payload; reach under to prove the guard.
    server = InviteServerTransaction(request())
    with pytest.raises(LocalProtocolError, match="needs a request"):
        server._run(InviteServerInput.RECEIVED_INVITE, None, 0.0)
    assert server.state is InviteServerState.TERMINATED
    assert [type(e) for e in server.next_events()] == [TransactionTerminated]
