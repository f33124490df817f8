"""What the four transactions share: running a table, arming timers, queueing outputs.

Owns: executing the actions a transition names, timer deadlines (absolute, from the `now`
the caller passes), and the output queues a caller drains (`next_events`, `data_to_send`).
Must not know: which machine it runs (that is the spec), addresses, sockets, or a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic

from ..errors import LocalProtocolError
from ..message import Message, Request, Response, make_response
from .construct import build_ack
from .events import (
    AckReceived,
    RequestReceived,
    ResponseReceived,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    Transmission,
    TransportErrorOccurred,
)
from .keys import ClientKey, ServerTransactionKey, TransactionKey
from .machine import Action, InputT, MachineSpec, StateMachine, StateT
from .timers import DEFAULT_TIMERS, Timer, TimerConfig, timer_values


class Transaction(Generic[StateT, InputT]):
    """A transaction: one request, its responses and (for a non-2xx) its ACK.

    Inputs come as method calls with the current time; outputs are collected until drained.
    The transaction never reads a clock: `get_timer()` tells when `handle_timer(now)` is due.
    """

    __slots__ = (
        "_closed",
        "_config",
        "_deadlines",
        "_events",
        "_firing",
        "_intervals",
        "_last_ack",
        "_last_response",
        "_machine",
        "_outgoing",
        "_request_data",
        "_values",
        "key",
        "reliable",
        "request",
    )

    def __init__(
        self,
        spec: MachineSpec[StateT, InputT],
        request: Request,
        *,
        key: TransactionKey,
        reliable: bool,
        config: TimerConfig = DEFAULT_TIMERS,
    ) -> None:
        self.request = request
        self.key = key
        self.reliable = reliable
        self._machine: StateMachine[StateT, InputT] = StateMachine(spec)
        self._config = config
        self._values = timer_values(config, reliable)
        self._deadlines: dict[Timer, float] = {}
        self._intervals: dict[Timer, float] = {}
        self._events: list[TransactionEvent] = []
        self._outgoing: list[Transmission] = []
        self._firing: Timer | None = None
        self._closed = False
        self._request_data: bytes | None = None
        self._last_ack: tuple[Request, bytes] | None = None
        self._last_response: tuple[Response, bytes] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key} {self.state.name}>"

    # -- what the caller asks ---------------------------------------------------------------

    @property
    def state(self) -> StateT:
        return self._machine.state

    @property
    def terminated(self) -> bool:
        return self._machine.state is self._machine.spec.terminated

    @property
    def last_response(self) -> Response | None:
        """The last response this (server) transaction sent."""
        return None if self._last_response is None else self._last_response[0]

    def deadline(self, timer: Timer) -> float | None:
        """When `timer` fires, or None if it is not running (for tests and diagnostics)."""
        return self._deadlines.get(timer)

    def get_timer(self) -> float | None:
        """The earliest absolute deadline, or None when no timer runs."""
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at `now`, earliest first."""
        self._fire_due(now)

    def handle_transport_error(self, now: float) -> bool:
        """The engine could not send one of our messages (RFC 3261 §17.1.4, §17.2.4)."""
        return self._run(self._machine.spec.transport_error, None, now)

    def next_events(self) -> list[TransactionEvent]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[Transmission]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    # -- the table ----------------------------------------------------------------------

    def _run(self, event: InputT, message: Message | None, now: float) -> bool:
        """Process one input, then any timer already due (zero-length timers of reliable
        transports fire before the call returns). False: the table absorbed the input."""
        acted = self._step(event, message, now)
        self._fire_due(now)
        return acted

    def _step(self, event: InputT, message: Message | None, now: float) -> bool:
        before = self._machine.state
        try:
            transition = self._machine.process(event)
        except LocalProtocolError:
            self._close()
            raise
        for timer in transition.cancel:
            self._deadlines.pop(timer, None)
        try:
            for action in transition.actions:
                _PERFORM[action](self, message)
        except LocalProtocolError:
            # An action refused its input (our bug): end here, as a missing pair does.
            self._machine.state = self._machine.spec.terminated
            self._close()
            raise
        for timer in transition.start:
            self._arm(timer, self._values[timer], now)
        for timer in transition.double:
            previous = self._intervals.get(timer)
            self._arm(
                timer, None if previous is None else self._config.doubled(timer, previous), now
            )
        for timer in transition.at_t2:
            self._arm(timer, self._config.t2, now)
        if self.terminated:
            self._close()
        return bool(
            transition.target is not before or transition.actions or transition.timer_operations
        )

    def _fire_due(self, now: float) -> None:
        timer_inputs = self._machine.spec.timer_inputs
        while self._deadlines:
            timer = min(self._deadlines, key=self._deadlines.__getitem__)
            if self._deadlines[timer] > now:
                return
            del self._deadlines[timer]
            self._firing = timer
            try:
                self._step(timer_inputs[timer], None, now)
            finally:
                self._firing = None

    def _arm(self, timer: Timer, interval: float | None, now: float) -> None:
        if interval is None:  # a retransmission timer on a reliable transport
            return
        self._intervals[timer] = interval
        self._deadlines[timer] = now + interval

    def _close(self) -> None:
        """Terminated: no timer may fire again, and the layer learns to destroy us."""
        self._deadlines.clear()
        if not self._closed:
            self._closed = True
            self._events.append(TransactionTerminated(transaction=self.key))

    # -- actions --------------------------------------------------------------------------

    def _transmit(self, message: Request | Response, data: bytes, retransmission: bool) -> None:
        self._outgoing.append(
            Transmission(
                transaction=self.key, message=message, data=data, retransmission=retransmission
            )
        )

    def _send_request(self, message: Message | None) -> None:
        self._request_data = bytes(self.request)
        self._transmit(self.request, self._request_data, False)

    def _resend_request(self, message: Message | None) -> None:
        if self._request_data is None:
            raise LocalProtocolError("retransmission before the request was sent")
        self._transmit(self.request, self._request_data, True)

    def _send_ack(self, message: Message | None) -> None:
        ack = build_ack(self.request, _response(message))
        self._last_ack = (ack, bytes(ack))
        self._transmit(ack, self._last_ack[1], False)

    def _resend_ack(self, message: Message | None) -> None:
        if self._last_ack is None:
            raise LocalProtocolError("ACK retransmission before any ACK")
        self._transmit(self._last_ack[0], self._last_ack[1], True)

    def _send_response(self, message: Message | None) -> None:
        response = _response(message)
        self._last_response = (response, bytes(response))
        self._transmit(response, self._last_response[1], False)

    def _resend_response(self, message: Message | None) -> None:
        # Nothing to resend when the request is retransmitted before any response was sent.
        if self._last_response is not None:
            self._transmit(self._last_response[0], self._last_response[1], True)

    def _send_trying(self, message: Message | None) -> None:
        self._send_response(make_response(self.request, 100))

    def _pass_request(self, message: Message | None) -> None:
        self._events.append(
            RequestReceived(transaction=self._server_key(), request=_request(message))
        )

    def _pass_ack(self, message: Message | None) -> None:
        self._events.append(AckReceived(transaction=self._server_key(), request=_request(message)))

    def _pass_response(self, message: Message | None) -> None:
        key = self.key
        if not isinstance(key, ClientKey):
            raise LocalProtocolError("only a client transaction passes responses up")
        self._events.append(ResponseReceived(transaction=key, response=_response(message)))

    def _server_key(self) -> ServerTransactionKey:
        key = self.key
        if isinstance(key, ClientKey):
            raise LocalProtocolError("only a server transaction passes requests up")
        return key

    def _report_timeout(self, message: Message | None) -> None:
        if self._firing is None:
            raise LocalProtocolError("timeout reported outside a timer")
        self._events.append(TransactionTimedOut(transaction=self.key, timer=self._firing))

    def _report_transport_error(self, message: Message | None) -> None:
        self._events.append(TransportErrorOccurred(transaction=self.key))


def _response(message: Message | None) -> Response:
    if not isinstance(message, Response):
        raise LocalProtocolError("this action needs a response")
    return message


def _request(message: Message | None) -> Request:
    if not isinstance(message, Request):
        raise LocalProtocolError("this action needs a request")
    return message


_PERFORM: dict[Action, Callable[[Transaction[Any, Any], Message | None], None]] = {
    Action.SEND_REQUEST: Transaction._send_request,
    Action.RESEND_REQUEST: Transaction._resend_request,
    Action.SEND_ACK: Transaction._send_ack,
    Action.RESEND_ACK: Transaction._resend_ack,
    Action.SEND_RESPONSE: Transaction._send_response,
    Action.RESEND_RESPONSE: Transaction._resend_response,
    Action.SEND_TRYING: Transaction._send_trying,
    Action.PASS_REQUEST: Transaction._pass_request,
    Action.PASS_ACK: Transaction._pass_ack,
    Action.PASS_RESPONSE: Transaction._pass_response,
    Action.REPORT_TIMEOUT: Transaction._report_timeout,
    Action.REPORT_TRANSPORT_ERROR: Transaction._report_transport_error,
}
