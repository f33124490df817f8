"""Real transactions under random inputs: the peer and the clock can never make a transaction
raise; the TU can, only for a pair missing from the table, and the transaction then ends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip import LocalProtocolError
from callcenter.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    TransactionTerminated,
)

from .helpers import ack_for, request, response

STATUSES = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 487, 500, 603])
STEP = st.floats(0.0, 10.0)


@settings(max_examples=200)
@given(
    invite=st.booleans(),
    reliable=st.booleans(),
    steps=st.lists(st.tuples(st.sampled_from(["response", "error", "wait"]), STATUSES, STEP)),
)
def test_client_never_raises_on_peer_input(
    invite: bool, reliable: bool, steps: list[tuple[str, int, float]]
) -> None:
    req = request("INVITE" if invite else "OPTIONS")
    client: InviteClientTransaction | NonInviteClientTransaction
    if invite:
        client = InviteClientTransaction(req, reliable=reliable)
    else:
        client = NonInviteClientTransaction(req, reliable=reliable)
    now = 0.0
    client.send_request(now)
    for op, status, dt in steps:
        now += dt
        if op == "response":
            client.receive_response(response(req, status), now)
        elif op == "error":
            client.handle_transport_error(now)
        else:
            client.handle_timer(now)
    client.handle_timer(now + 1000)
    assert client.terminated or client.state.name == "PROCEEDING"
    ends = [e for e in client.next_events() if isinstance(e, TransactionTerminated)]
    assert len(ends) == (1 if client.terminated else 0)


@settings(max_examples=200)
@given(
    invite=st.booleans(),
    reliable=st.booleans(),
    steps=st.lists(
        st.tuples(st.sampled_from(["request", "ack", "tu", "error", "wait"]), STATUSES, STEP)
    ),
)
def test_server_raises_only_for_tu_misuse(
    invite: bool, reliable: bool, steps: list[tuple[str, int, float]]
) -> None:
    req = request("INVITE" if invite else "OPTIONS")
    server: InviteServerTransaction | NonInviteServerTransaction
    if invite:
        server = InviteServerTransaction(req, reliable=reliable)
    else:
        server = NonInviteServerTransaction(req, reliable=reliable)
    now = 0.0
    server.receive_request(req, now)
    for op, status, dt in steps:
        now += dt
        if op == "request":
            server.receive_request(req, now)
        elif op == "ack" and invite:
            server.receive_request(ack_for(req, response(req, 486)), now)
        elif op == "tu":
            before = server.state
            try:
                server.send_response(response(req, status), now)
            except LocalProtocolError:
                assert server.terminated
                assert before.name in ("COMPLETED", "CONFIRMED", "ACCEPTED", "TERMINATED")
        elif op == "error":
            server.handle_transport_error(now)
        else:
            server.handle_timer(now)
    ends = [e for e in server.next_events() if isinstance(e, TransactionTerminated)]
    assert len(ends) == (1 if server.terminated else 0)
    if server.terminated:
        assert server.get_timer() is None
