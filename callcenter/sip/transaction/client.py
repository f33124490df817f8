"""The client transactions: INVITE (RFC 3261 Figure 5 with RFC 6026's Accepted state) and
non-INVITE (Figure 6).

Owns: the two tables and the TU-facing methods that turn calls into table inputs. Must not
know: addresses, dialogs (the ACK for a 2xx is the dialog's, §13.2.2.4), or a clock.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

from ..errors import LocalProtocolError
from ..message import Request, Response
from .base import Transaction
from .keys import TransactionKey, client_key
from .machine import Action, MachineSpec, Transition
from .timers import DEFAULT_TIMERS, Timer, TimerConfig

_A = Action


class InviteClientState(enum.Enum):
    INITIAL = "Initial"  # before the TU hands over the INVITE (the entry arc of Figure 5)
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"  # RFC 6026 §7.2
    TERMINATED = "Terminated"


class InviteClientInput(enum.Enum):
    SEND = "INVITE from TU"
    RECEIVED_1XX = "1xx"
    RECEIVED_2XX = "2xx"
    RECEIVED_300_699 = "300-699"
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_M = "Timer M"
    TRANSPORT_ERROR = "transport error"
    # §9.1: 64*T1 after a CANCEL got no final response, the UAC may destroy the transaction.
    ABANDON = "TU gives up"


_S, _I = InviteClientState, InviteClientInput
T = Transition  # called bare: a subscripted generic cannot build a slotted instance

INVITE_CLIENT_TABLE: dict[
    tuple[InviteClientState, InviteClientInput], Transition[InviteClientState]
] = {
    (_S.INITIAL, _I.SEND): T(_S.CALLING, (_A.SEND_REQUEST,), start=(Timer.A, Timer.B)),
    # Calling (§17.1.1.2)
    (_S.CALLING, _I.TIMER_A): T(_S.CALLING, (_A.RESEND_REQUEST,), double=(Timer.A,)),
    (_S.CALLING, _I.TIMER_B): T(_S.TERMINATED, (_A.REPORT_TIMEOUT,)),
    (_S.CALLING, _I.TRANSPORT_ERROR): T(_S.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    (_S.CALLING, _I.RECEIVED_1XX): T(_S.PROCEEDING, (_A.PASS_RESPONSE,), cancel=(Timer.A, Timer.B)),
    (_S.CALLING, _I.RECEIVED_2XX): T(
        _S.ACCEPTED, (_A.PASS_RESPONSE,), cancel=(Timer.A, Timer.B), start=(Timer.M,)
    ),
    (_S.CALLING, _I.RECEIVED_300_699): T(
        _S.COMPLETED, (_A.SEND_ACK, _A.PASS_RESPONSE), cancel=(Timer.A, Timer.B), start=(Timer.D,)
    ),
    (_S.CALLING, _I.ABANDON): T(_S.TERMINATED, cancel=(Timer.A, Timer.B)),
    # Proceeding: no timer runs; the TU cancels a call that rings too long.
    (_S.PROCEEDING, _I.RECEIVED_1XX): T(_S.PROCEEDING, (_A.PASS_RESPONSE,)),
    (_S.PROCEEDING, _I.RECEIVED_2XX): T(_S.ACCEPTED, (_A.PASS_RESPONSE,), start=(Timer.M,)),
    (_S.PROCEEDING, _I.RECEIVED_300_699): T(
        _S.COMPLETED, (_A.SEND_ACK, _A.PASS_RESPONSE), start=(Timer.D,)
    ),
    # Nothing of ours is in flight in Proceeding, so a transport error changes nothing here.
    (_S.PROCEEDING, _I.TRANSPORT_ERROR): T(_S.PROCEEDING),
    (_S.PROCEEDING, _I.ABANDON): T(_S.TERMINATED),
    # Completed: a retransmitted final response is ACKed again but not passed up.
    (_S.COMPLETED, _I.RECEIVED_1XX): T(_S.COMPLETED),
    (_S.COMPLETED, _I.RECEIVED_2XX): T(_S.COMPLETED),
    (_S.COMPLETED, _I.RECEIVED_300_699): T(_S.COMPLETED, (_A.RESEND_ACK,)),
    (_S.COMPLETED, _I.TIMER_D): T(_S.TERMINATED),
    (_S.COMPLETED, _I.TRANSPORT_ERROR): T(_S.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    (_S.COMPLETED, _I.ABANDON): T(_S.COMPLETED),
    # Accepted (RFC 6026 §8.4): every 2xx goes up, the dialog ACKs each; Timer M ends it.
    (_S.ACCEPTED, _I.RECEIVED_1XX): T(_S.ACCEPTED),
    (_S.ACCEPTED, _I.RECEIVED_2XX): T(_S.ACCEPTED, (_A.PASS_RESPONSE,)),
    (_S.ACCEPTED, _I.RECEIVED_300_699): T(_S.ACCEPTED),
    (_S.ACCEPTED, _I.TIMER_M): T(_S.TERMINATED),
    (_S.ACCEPTED, _I.TRANSPORT_ERROR): T(_S.ACCEPTED),
    (_S.ACCEPTED, _I.ABANDON): T(_S.ACCEPTED),
    # Terminated: destroyed; a late message that still reaches us is absorbed.
    (_S.TERMINATED, _I.RECEIVED_1XX): T(_S.TERMINATED),
    (_S.TERMINATED, _I.RECEIVED_2XX): T(_S.TERMINATED),
    (_S.TERMINATED, _I.RECEIVED_300_699): T(_S.TERMINATED),
    (_S.TERMINATED, _I.TRANSPORT_ERROR): T(_S.TERMINATED),
    (_S.TERMINATED, _I.ABANDON): T(_S.TERMINATED),
}

INVITE_CLIENT = MachineSpec(
    name="INVITE client transaction",
    table=MappingProxyType(INVITE_CLIENT_TABLE),
    initial=_S.INITIAL,
    terminated=_S.TERMINATED,
    timer_inputs=MappingProxyType(
        {Timer.A: _I.TIMER_A, Timer.B: _I.TIMER_B, Timer.D: _I.TIMER_D, Timer.M: _I.TIMER_M}
    ),
    peer_inputs=frozenset(
        {_I.RECEIVED_1XX, _I.RECEIVED_2XX, _I.RECEIVED_300_699, _I.TRANSPORT_ERROR}
    ),
    transport_error=_I.TRANSPORT_ERROR,
)

# Status class (status // 100) to input; a dictionary, so classification is a lookup.
_INVITE_RESPONSE_INPUTS = {
    1: _I.RECEIVED_1XX,
    2: _I.RECEIVED_2XX,
    3: _I.RECEIVED_300_699,
    4: _I.RECEIVED_300_699,
    5: _I.RECEIVED_300_699,
    6: _I.RECEIVED_300_699,
}


class NonInviteClientState(enum.Enum):
    INITIAL = "Initial"  # before the TU hands over the request (the entry arc of Figure 6)
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class NonInviteClientInput(enum.Enum):
    SEND = "request from TU"
    RECEIVED_1XX = "1xx"
    RECEIVED_FINAL = "200-699"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_K = "Timer K"
    TRANSPORT_ERROR = "transport error"


_NS, _NI = NonInviteClientState, NonInviteClientInput

NON_INVITE_CLIENT_TABLE: dict[
    tuple[NonInviteClientState, NonInviteClientInput], Transition[NonInviteClientState]
] = {
    (_NS.INITIAL, _NI.SEND): T(_NS.TRYING, (_A.SEND_REQUEST,), start=(Timer.E, Timer.F)),
    # Trying (§17.1.2.2): E doubles up to T2.
    (_NS.TRYING, _NI.TIMER_E): T(_NS.TRYING, (_A.RESEND_REQUEST,), double=(Timer.E,)),
    (_NS.TRYING, _NI.TIMER_F): T(_NS.TERMINATED, (_A.REPORT_TIMEOUT,)),
    (_NS.TRYING, _NI.TRANSPORT_ERROR): T(_NS.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    (_NS.TRYING, _NI.RECEIVED_1XX): T(_NS.PROCEEDING, (_A.PASS_RESPONSE,)),
    (_NS.TRYING, _NI.RECEIVED_FINAL): T(
        _NS.COMPLETED, (_A.PASS_RESPONSE,), cancel=(Timer.E, Timer.F), start=(Timer.K,)
    ),
    # Proceeding: the server is alive, so retransmit at the slow rate of T2 until Timer F.
    (_NS.PROCEEDING, _NI.TIMER_E): T(_NS.PROCEEDING, (_A.RESEND_REQUEST,), at_t2=(Timer.E,)),
    (_NS.PROCEEDING, _NI.TIMER_F): T(_NS.TERMINATED, (_A.REPORT_TIMEOUT,)),
    (_NS.PROCEEDING, _NI.TRANSPORT_ERROR): T(_NS.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    (_NS.PROCEEDING, _NI.RECEIVED_1XX): T(_NS.PROCEEDING, (_A.PASS_RESPONSE,)),
    (_NS.PROCEEDING, _NI.RECEIVED_FINAL): T(
        _NS.COMPLETED, (_A.PASS_RESPONSE,), cancel=(Timer.E, Timer.F), start=(Timer.K,)
    ),
    # Completed: Timer K absorbs response retransmissions; nothing of ours is in flight.
    (_NS.COMPLETED, _NI.RECEIVED_1XX): T(_NS.COMPLETED),
    (_NS.COMPLETED, _NI.RECEIVED_FINAL): T(_NS.COMPLETED),
    (_NS.COMPLETED, _NI.TIMER_K): T(_NS.TERMINATED),
    (_NS.COMPLETED, _NI.TRANSPORT_ERROR): T(_NS.COMPLETED),
    (_NS.TERMINATED, _NI.RECEIVED_1XX): T(_NS.TERMINATED),
    (_NS.TERMINATED, _NI.RECEIVED_FINAL): T(_NS.TERMINATED),
    (_NS.TERMINATED, _NI.TRANSPORT_ERROR): T(_NS.TERMINATED),
}

NON_INVITE_CLIENT = MachineSpec(
    name="non-INVITE client transaction",
    table=MappingProxyType(NON_INVITE_CLIENT_TABLE),
    initial=_NS.INITIAL,
    terminated=_NS.TERMINATED,
    timer_inputs=MappingProxyType(
        {Timer.E: _NI.TIMER_E, Timer.F: _NI.TIMER_F, Timer.K: _NI.TIMER_K}
    ),
    peer_inputs=frozenset({_NI.RECEIVED_1XX, _NI.RECEIVED_FINAL, _NI.TRANSPORT_ERROR}),
    transport_error=_NI.TRANSPORT_ERROR,
)

_NON_INVITE_RESPONSE_INPUTS = {
    1: _NI.RECEIVED_1XX,
    2: _NI.RECEIVED_FINAL,
    3: _NI.RECEIVED_FINAL,
    4: _NI.RECEIVED_FINAL,
    5: _NI.RECEIVED_FINAL,
    6: _NI.RECEIVED_FINAL,
}


def _own_key(request: Request, key: TransactionKey | None) -> TransactionKey:
    if key is not None:
        return key
    own = client_key(request)
    if own is None:
        raise LocalProtocolError("a client transaction needs a branch in its top Via")
    return own


def _status_class(response: Response) -> int:
    if not 100 <= response.status <= 699:
        raise LocalProtocolError(f"status {response.status} out of range")
    return response.status // 100


class InviteClientTransaction(Transaction[InviteClientState, InviteClientInput]):
    """RFC 3261 §17.1.1 with RFC 6026: sends the INVITE, ACKs a non-2xx final response itself,
    and lingers in Accepted to pass 2xx retransmissions up to the dialog."""

    __slots__ = ()

    def __init__(
        self,
        request: Request,
        *,
        reliable: bool = False,
        config: TimerConfig = DEFAULT_TIMERS,
        key: TransactionKey | None = None,
    ) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError(f"an INVITE client transaction cannot send {request.method}")
        super().__init__(
            INVITE_CLIENT, request, key=_own_key(request, key), reliable=reliable, config=config
        )

    def send_request(self, now: float) -> None:
        self._run(_I.SEND, None, now)

    def receive_response(self, response: Response, now: float) -> bool:
        """False when the table absorbed the response (e.g. a 1xx after the final)."""
        return self._run(_INVITE_RESPONSE_INPUTS[_status_class(response)], response, now)

    def abandon(self, now: float) -> bool:
        """Destroy the transaction while no final response has come (§9.1, after a CANCEL)."""
        return self._run(_I.ABANDON, None, now)


class NonInviteClientTransaction(Transaction[NonInviteClientState, NonInviteClientInput]):
    """RFC 3261 §17.1.2: any request but INVITE and ACK (ACK is never a transaction)."""

    __slots__ = ()

    def __init__(
        self,
        request: Request,
        *,
        reliable: bool = False,
        config: TimerConfig = DEFAULT_TIMERS,
        key: TransactionKey | None = None,
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(
                f"a non-INVITE client transaction cannot send {request.method}"
            )
        super().__init__(
            NON_INVITE_CLIENT, request, key=_own_key(request, key), reliable=reliable, config=config
        )

    def send_request(self, now: float) -> None:
        self._run(_NI.SEND, None, now)

    def receive_response(self, response: Response, now: float) -> bool:
        """False when the table absorbed the response (a retransmission in Completed)."""
        return self._run(_NON_INVITE_RESPONSE_INPUTS[_status_class(response)], response, now)
