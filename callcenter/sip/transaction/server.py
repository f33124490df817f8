"""The server transactions: INVITE (RFC 3261 Figure 7 with RFC 6026's Accepted state) and
non-INVITE (Figure 8).

Owns: the two tables and the methods that turn received requests and the TU's responses into
table inputs. Must not know: addresses (the engine answers to the request's source per
§18.2.2), dialogs (the TU retransmits a 2xx, §13.3.1.4), or a clock.
"""

from __future__ import annotations

import enum
from types import MappingProxyType

from ..errors import LocalProtocolError, SipParseError
from ..message import Request, Response
from .base import Transaction
from .keys import TransactionKey, server_key
from .machine import Action, MachineSpec, Transition
from .timers import DEFAULT_TIMERS, Timer, TimerConfig

_A = Action


class InviteServerState(enum.Enum):
    INITIAL = "Initial"  # constructed, the INVITE not yet processed (entry arc of Figure 7)
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026 §7.1
    TERMINATED = "Terminated"


class InviteServerInput(enum.Enum):
    RECEIVED_INVITE = "INVITE"
    RECEIVED_ACK = "ACK"
    SEND_1XX = "101-199 from TU"
    SEND_2XX = "2xx from TU"
    SEND_300_699 = "300-699 from TU"
    TIMER_TRYING = "200 ms without a TU response"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_L = "Timer L"
    TRANSPORT_ERROR = "transport error"


_S, _I = InviteServerState, InviteServerInput
T = Transition  # called bare: a subscripted generic cannot build a slotted instance

INVITE_SERVER_TABLE: dict[
    tuple[InviteServerState, InviteServerInput], Transition[InviteServerState]
] = {
    (_S.INITIAL, _I.RECEIVED_INVITE): T(_S.PROCEEDING, (_A.PASS_REQUEST,), start=(Timer.TRYING,)),
    # Proceeding (§17.2.1)
    (_S.PROCEEDING, _I.RECEIVED_INVITE): T(_S.PROCEEDING, (_A.RESEND_RESPONSE,)),
    # An ACK before any final response belongs to nothing we sent.
    (_S.PROCEEDING, _I.RECEIVED_ACK): T(_S.PROCEEDING),
    (_S.PROCEEDING, _I.TIMER_TRYING): T(_S.PROCEEDING, (_A.SEND_TRYING,)),
    (_S.PROCEEDING, _I.SEND_1XX): T(_S.PROCEEDING, (_A.SEND_RESPONSE,), cancel=(Timer.TRYING,)),
    (_S.PROCEEDING, _I.SEND_2XX): T(
        _S.ACCEPTED, (_A.SEND_RESPONSE,), cancel=(Timer.TRYING,), start=(Timer.L,)
    ),
    (_S.PROCEEDING, _I.SEND_300_699): T(
        _S.COMPLETED, (_A.SEND_RESPONSE,), cancel=(Timer.TRYING,), start=(Timer.G, Timer.H)
    ),
    (_S.PROCEEDING, _I.TRANSPORT_ERROR): T(_S.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    # Completed: retransmit the final response until the ACK comes or Timer H gives up.
    (_S.COMPLETED, _I.RECEIVED_INVITE): T(_S.COMPLETED, (_A.RESEND_RESPONSE,)),
    (_S.COMPLETED, _I.RECEIVED_ACK): T(_S.CONFIRMED, cancel=(Timer.G, Timer.H), start=(Timer.I,)),
    (_S.COMPLETED, _I.TIMER_G): T(_S.COMPLETED, (_A.RESEND_RESPONSE,), double=(Timer.G,)),
    (_S.COMPLETED, _I.TIMER_H): T(_S.TERMINATED, (_A.REPORT_TIMEOUT,)),
    (_S.COMPLETED, _I.TRANSPORT_ERROR): T(_S.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    # Confirmed: Timer I absorbs ACK retransmissions.
    (_S.CONFIRMED, _I.RECEIVED_INVITE): T(_S.CONFIRMED),
    (_S.CONFIRMED, _I.RECEIVED_ACK): T(_S.CONFIRMED),
    (_S.CONFIRMED, _I.TIMER_I): T(_S.TERMINATED),
    (_S.CONFIRMED, _I.TRANSPORT_ERROR): T(_S.CONFIRMED),
    # Accepted (RFC 6026 §8.5-8.7): INVITE retransmissions are absorbed (the TU retransmits
    # the 2xx), the TU's 2xx retransmissions are sent, an ACK goes up to the TU.
    (_S.ACCEPTED, _I.RECEIVED_INVITE): T(_S.ACCEPTED),
    (_S.ACCEPTED, _I.RECEIVED_ACK): T(_S.ACCEPTED, (_A.PASS_ACK,)),
    (_S.ACCEPTED, _I.SEND_2XX): T(_S.ACCEPTED, (_A.SEND_RESPONSE,)),
    (_S.ACCEPTED, _I.TIMER_L): T(_S.TERMINATED),
    (_S.ACCEPTED, _I.TRANSPORT_ERROR): T(_S.ACCEPTED, (_A.REPORT_TRANSPORT_ERROR,)),
    (_S.TERMINATED, _I.RECEIVED_INVITE): T(_S.TERMINATED),
    (_S.TERMINATED, _I.RECEIVED_ACK): T(_S.TERMINATED),
    (_S.TERMINATED, _I.TRANSPORT_ERROR): T(_S.TERMINATED),
}

INVITE_SERVER = MachineSpec(
    name="INVITE server transaction",
    table=MappingProxyType(INVITE_SERVER_TABLE),
    initial=_S.INITIAL,
    terminated=_S.TERMINATED,
    timer_inputs=MappingProxyType(
        {
            Timer.TRYING: _I.TIMER_TRYING,
            Timer.G: _I.TIMER_G,
            Timer.H: _I.TIMER_H,
            Timer.I: _I.TIMER_I,
            Timer.L: _I.TIMER_L,
        }
    ),
    peer_inputs=frozenset({_I.RECEIVED_INVITE, _I.RECEIVED_ACK, _I.TRANSPORT_ERROR}),
    transport_error=_I.TRANSPORT_ERROR,
)

_INVITE_REQUEST_INPUTS = {"INVITE": _I.RECEIVED_INVITE, "ACK": _I.RECEIVED_ACK}
_INVITE_RESPONSE_INPUTS = {
    1: _I.SEND_1XX,
    2: _I.SEND_2XX,
    3: _I.SEND_300_699,
    4: _I.SEND_300_699,
    5: _I.SEND_300_699,
    6: _I.SEND_300_699,
}


class NonInviteServerState(enum.Enum):
    INITIAL = "Initial"  # constructed, the request not yet processed (entry arc of Figure 8)
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class NonInviteServerInput(enum.Enum):
    RECEIVED_REQUEST = "request"
    SEND_1XX = "1xx from TU"
    SEND_FINAL = "200-699 from TU"
    TIMER_J = "Timer J"
    TRANSPORT_ERROR = "transport error"


_NS, _NI = NonInviteServerState, NonInviteServerInput

NON_INVITE_SERVER_TABLE: dict[
    tuple[NonInviteServerState, NonInviteServerInput], Transition[NonInviteServerState]
] = {
    (_NS.INITIAL, _NI.RECEIVED_REQUEST): T(_NS.TRYING, (_A.PASS_REQUEST,)),
    # Trying (§17.2.2): nothing sent yet, so a retransmission is simply discarded.
    (_NS.TRYING, _NI.RECEIVED_REQUEST): T(_NS.TRYING),
    (_NS.TRYING, _NI.SEND_1XX): T(_NS.PROCEEDING, (_A.SEND_RESPONSE,)),
    (_NS.TRYING, _NI.SEND_FINAL): T(_NS.COMPLETED, (_A.SEND_RESPONSE,), start=(Timer.J,)),
    (_NS.TRYING, _NI.TRANSPORT_ERROR): T(_NS.TRYING),
    (_NS.PROCEEDING, _NI.RECEIVED_REQUEST): T(_NS.PROCEEDING, (_A.RESEND_RESPONSE,)),
    (_NS.PROCEEDING, _NI.SEND_1XX): T(_NS.PROCEEDING, (_A.SEND_RESPONSE,)),
    (_NS.PROCEEDING, _NI.SEND_FINAL): T(_NS.COMPLETED, (_A.SEND_RESPONSE,), start=(Timer.J,)),
    (_NS.PROCEEDING, _NI.TRANSPORT_ERROR): T(_NS.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    # Completed: answer retransmissions with the final response; "any other final responses
    # passed by the TU ... MUST be discarded" (§17.2.2), and so are late provisionals.
    (_NS.COMPLETED, _NI.RECEIVED_REQUEST): T(_NS.COMPLETED, (_A.RESEND_RESPONSE,)),
    (_NS.COMPLETED, _NI.SEND_1XX): T(_NS.COMPLETED),
    (_NS.COMPLETED, _NI.SEND_FINAL): T(_NS.COMPLETED),
    (_NS.COMPLETED, _NI.TIMER_J): T(_NS.TERMINATED),
    (_NS.COMPLETED, _NI.TRANSPORT_ERROR): T(_NS.TERMINATED, (_A.REPORT_TRANSPORT_ERROR,)),
    (_NS.TERMINATED, _NI.RECEIVED_REQUEST): T(_NS.TERMINATED),
    (_NS.TERMINATED, _NI.TRANSPORT_ERROR): T(_NS.TERMINATED),
}

NON_INVITE_SERVER = MachineSpec(
    name="non-INVITE server transaction",
    table=MappingProxyType(NON_INVITE_SERVER_TABLE),
    initial=_NS.INITIAL,
    terminated=_NS.TERMINATED,
    timer_inputs=MappingProxyType({Timer.J: _NI.TIMER_J}),
    peer_inputs=frozenset({_NI.RECEIVED_REQUEST, _NI.TRANSPORT_ERROR}),
    transport_error=_NI.TRANSPORT_ERROR,
)

_NON_INVITE_RESPONSE_INPUTS = {
    1: _NI.SEND_1XX,
    2: _NI.SEND_FINAL,
    3: _NI.SEND_FINAL,
    4: _NI.SEND_FINAL,
    5: _NI.SEND_FINAL,
    6: _NI.SEND_FINAL,
}


def _status_class(request: Request, response: Response) -> int:
    """The response must answer this transaction's request; a mismatch is a TU bug."""
    try:
        same = response.cseq == request.cseq
    except SipParseError as exc:
        raise LocalProtocolError("the response has no valid CSeq") from exc
    if not same:
        raise LocalProtocolError(f"response CSeq {response.cseq} does not answer {request.cseq}")
    if not 100 <= response.status <= 699:
        raise LocalProtocolError(f"status {response.status} out of range")
    return response.status // 100


class InviteServerTransaction(Transaction[InviteServerState, InviteServerInput]):
    """RFC 3261 §17.2.1 with RFC 6026: sends 100 Trying after 200 ms of TU silence,
    retransmits a non-2xx final response on Timer G until the ACK, gives up on Timer H."""

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
            raise LocalProtocolError(f"an INVITE server transaction cannot serve {request.method}")
        own = server_key(request) if key is None else key
        super().__init__(INVITE_SERVER, request, key=own, reliable=reliable, config=config)

    def receive_request(self, request: Request, now: float) -> bool:
        """The INVITE (first or again) or an ACK. False: the table absorbed it."""
        event = _INVITE_REQUEST_INPUTS.get(request.method)
        if event is None:
            raise LocalProtocolError(f"{request.method} does not belong to an INVITE transaction")
        return self._run(event, request, now)

    def send_response(self, response: Response, now: float) -> bool:
        return self._run(
            _INVITE_RESPONSE_INPUTS[_status_class(self.request, response)], response, now
        )


class NonInviteServerTransaction(Transaction[NonInviteServerState, NonInviteServerInput]):
    """RFC 3261 §17.2.2: any request but INVITE and ACK."""

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
                f"a non-INVITE server transaction cannot serve {request.method}"
            )
        own = server_key(request) if key is None else key
        super().__init__(NON_INVITE_SERVER, request, key=own, reliable=reliable, config=config)

    def receive_request(self, request: Request, now: float) -> bool:
        """The request, first or again. False: the table absorbed it."""
        if request.method != self.request.method:
            raise LocalProtocolError(f"{request.method} does not belong to this transaction")
        return self._run(_NI.RECEIVED_REQUEST, request, now)

    def send_response(self, response: Response, now: float) -> bool:
        """False: discarded, as §17.2.2 asks for a response after the final one."""
        return self._run(
            _NON_INVITE_RESPONSE_INPUTS[_status_class(self.request, response)], response, now
        )
