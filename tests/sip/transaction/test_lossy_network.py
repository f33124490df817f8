"""A client and a server transaction layer talking through a lossy, duplicating, reordering
network with bounded delay, on a fake clock (Hypothesis stateful testing).

Whatever the network does, no LocalProtocolError is raised, the server TU sees the request
once, the client TU sees at most one final response (every copy of a 2xx is passed up by
RFC 6026, so only its status must be unique), and once the network heals both sides end
Terminated within 64*T1 plus the lingering timers.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from callcenter.sip import Request, Response, make_response, parse_message
from callcenter.sip.transaction import (
    DEFAULT_TIMERS,
    ClientKey,
    InviteClientState,
    InviteClientTransaction,
    RequestReceived,
    ResponseReceived,
    ServerTransactionKey,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
)

from .helpers import counter_token, request

T1 = DEFAULT_TIMERS.t1
# A datagram older than this is gone. Below T1, so a late retransmission cannot outlive the
# server transaction it belongs to (64*T1 after the final response) and open a second one.
MAX_DELAY = 0.4
TO_SERVER, TO_CLIENT = "to server", "to client"


class LossyNetwork(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.client = TransactionLayer(random_token=counter_token())
        self.server = TransactionLayer(random_token=counter_token())
        self.wire: list[tuple[float, str, bytes]] = []
        self.method = "INVITE"
        self.finals: list[int] = []
        self.final_delivered = False
        self.requests_seen = 0
        self.server_key: ServerTransactionKey | None = None
        self.server_request: Request | None = None
        self.answered: int | None = None
        self.answered_at: float | None = None
        self.client_timed_out = False
        self.client_ended_at: float | None = None
        self.server_ended_at: float | None = None
        self.server_timed_out = False
        self.client_key = ClientKey(branch="", method="")

    # -- plumbing -------------------------------------------------------------------------

    def pump(self) -> None:
        for out in self.client.data_to_send():
            self.wire.append((self.now, TO_SERVER, out.data))
        for out in self.server.data_to_send():
            self.wire.append((self.now, TO_CLIENT, out.data))
        for event in self.client.next_events():
            if isinstance(event, ResponseReceived) and event.response.status >= 200:
                self.finals.append(event.response.status)
            elif isinstance(event, TransactionTimedOut):
                self.client_timed_out = True
            elif isinstance(event, TransactionTerminated):
                self.client_ended_at = self.now
        for event in self.server.next_events():
            if isinstance(event, RequestReceived):
                self.requests_seen += 1
                self.server_key = event.transaction
                self.server_request = event.request
            elif isinstance(event, TransactionTimedOut):
                self.server_timed_out = True
            elif isinstance(event, TransactionTerminated):
                self.server_ended_at = self.now

    def deliver_at(self, index: int) -> None:
        _, direction, data = self.wire.pop(index)
        message = parse_message(data)
        if direction == TO_SERVER:
            assert isinstance(message, Request)
            self.server.receive_request(message, self.now, reliable=False)
        else:
            assert isinstance(message, Response)
            self.final_delivered |= message.status >= 200
            self.client.receive_response(message, self.now)
        self.pump()

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.client.get_timer(), self.server.get_timer()) if d is not None]
        return min(deadlines, default=None)

    def advance(self, to: float) -> None:
        """Move the clock, waking at every deadline on the way as the engine does."""
        while (deadline := self.next_deadline()) is not None and deadline <= to:
            self.now = max(self.now, deadline)
            self.expire()
            self.client.handle_timer(self.now)
            self.server.handle_timer(self.now)
            self.pump()
        self.now = max(self.now, to)
        self.expire()

    def expire(self) -> None:
        self.wire = [item for item in self.wire if self.now - item[0] <= MAX_DELAY]

    def answer(self, status: int) -> None:
        assert self.server_key is not None and self.server_request is not None
        self.server.send_response(
            self.server_key, make_response(self.server_request, status, to_tag="uas"), self.now
        )
        if status >= 200:
            self.answered, self.answered_at = status, self.now
        self.pump()

    # -- rules ----------------------------------------------------------------------------

    @initialize(method=st.sampled_from(["INVITE", "OPTIONS", "BYE"]))
    def start(self, method: str) -> None:
        self.method = method
        self.client_key = self.client.send_request(
            request(method, branch=None), self.now, reliable=False
        )
        self.pump()

    @precondition(lambda self: self.wire)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        self.deliver_at(data.draw(st.integers(0, len(self.wire) - 1)))

    @precondition(lambda self: self.wire)
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        self.wire.pop(data.draw(st.integers(0, len(self.wire) - 1)))

    @precondition(lambda self: self.wire)
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        self.wire.append(self.wire[data.draw(st.integers(0, len(self.wire) - 1))])

    @rule(dt=st.floats(0.01, 8.0))
    def wait(self, dt: float) -> None:
        self.advance(self.now + dt)

    @precondition(lambda self: self.server_key is not None and self.answered is None)
    @rule()
    def provisional(self) -> None:
        self.answer(180 if self.method == "INVITE" else 100)

    @precondition(lambda self: self.server_key is not None and self.answered is None)
    @rule(status=st.sampled_from([200, 404, 486, 603]))
    def final(self, status: int) -> None:
        self.answer(status)

    # -- what must always hold --------------------------------------------------------------

    @invariant()
    def one_request_one_final(self) -> None:
        assert self.requests_seen <= 1
        assert len(set(self.finals)) <= 1
        if self.finals:
            assert self.finals[0] == self.answered
            if not (self.method == "INVITE" and self.finals[0] < 300):
                assert len(self.finals) == 1
            assert not self.client_timed_out

    def teardown(self) -> None:
        """The network heals: deliver everything, answer if still unanswered, run the clock."""
        for _ in range(10_000):
            if self.server_key is not None and self.answered is None:
                self.answer(486 if self.method == "INVITE" else 404)
            if self.wire:
                self.deliver_at(0)
                continue
            deadline = self.next_deadline()
            if deadline is None:
                break
            self.advance(deadline)
        self.one_request_one_final()
        stuck = self.client.transaction(self.client_key)
        if stuck is not None:
            # RFC 3261 §17.1.1.2 leaves an INVITE in Proceeding to the TU (CANCEL, then §9.1):
            # it happens only when every copy of the final response was lost.
            assert isinstance(stuck, InviteClientTransaction)
            assert stuck.state is InviteClientState.PROCEEDING
            assert not self.final_delivered and len(self.server) == 0
            assert self.client.abandon(self.client_key, self.now)
            self.pump()
        assert len(self.client) == 0 and len(self.server) == 0
        assert self.client_ended_at is not None
        answered_at = self.answered_at or 0.0
        if stuck is None:
            # Calling/Trying end within 64*T1 (B, F); the final response reaches the client
            # within 64*T1 of being sent (G, H); Completed then lingers for D (32 s) or K.
            assert self.client_ended_at <= answered_at + 64 * T1 + 32.0 + MAX_DELAY
        if self.server_ended_at is not None:
            # Completed and Accepted last 64*T1 (H, J, L), Confirmed T4 more (I).
            assert self.server_ended_at <= answered_at + 64 * T1 + DEFAULT_TIMERS.t4 + MAX_DELAY
        assert self.finals or self.client_timed_out or stuck is not None


LossyNetwork.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestLossyNetwork = LossyNetwork.TestCase
