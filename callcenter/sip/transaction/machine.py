"""The table-driven core shared by the four transaction machines (in the style of h2).

Owns: the transition record (target state, actions, timer operations), the action names, the
machine specification, and the generic machine that looks up `(state, input)` and, when the pair
is missing, moves to Terminated and raises LocalProtocolError. Must not know: messages, time,
timer values, or how an action is carried out (the transactions execute them).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import LocalProtocolError
from .timers import Timer


class Action(enum.Enum):
    """What a transition asks the transaction to do, in the order listed in the table."""

    SEND_REQUEST = "send request"
    RESEND_REQUEST = "retransmit request"
    SEND_ACK = "build and send ACK for the non-2xx final response"
    RESEND_ACK = "retransmit the ACK"
    SEND_RESPONSE = "send the response from the TU"
    RESEND_RESPONSE = "retransmit the last response"
    SEND_TRYING = "send 100 Trying"
    PASS_REQUEST = "pass the request to the TU"
    PASS_ACK = "pass the ACK to the TU"
    PASS_RESPONSE = "pass the response to the TU"
    REPORT_TIMEOUT = "inform the TU of a timeout"
    REPORT_TRANSPORT_ERROR = "inform the TU of a transport error"


StateT = TypeVar("StateT", bound=enum.Enum)
InputT = TypeVar("InputT", bound=enum.Enum)


@dataclass(frozen=True, slots=True)
class Transition(Generic[StateT]):
    """One arc of an RFC figure.

    Timer operations run after the actions: `cancel` stops timers, `start` arms them with
    their Table 4 value, `double` re-arms with twice the previous interval (capped for E and
    G), `at_t2` re-arms with T2. An arc with no actions and no timer operations that stays in
    its state *absorbs* its input, as the RFC asks for late or duplicated messages.
    """

    target: StateT
    actions: tuple[Action, ...] = ()
    start: tuple[Timer, ...] = ()
    double: tuple[Timer, ...] = ()
    at_t2: tuple[Timer, ...] = ()
    cancel: tuple[Timer, ...] = ()

    @property
    def timer_operations(self) -> bool:
        return bool(self.start or self.double or self.at_t2 or self.cancel)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineSpec(Generic[StateT, InputT]):
    """A machine: its table and what the generic code and the table tests must know of it.

    `peer_inputs` are caused by the network or the transport (responses, requests,
    transport errors): the peer can send them at any moment, so after the initial state the
    table must have an entry for each of them, and a missing entry is never the peer's doing.
    """

    name: str
    table: Mapping[tuple[StateT, InputT], Transition[StateT]]
    initial: StateT
    terminated: StateT
    timer_inputs: Mapping[Timer, InputT]
    peer_inputs: frozenset[InputT]
    transport_error: InputT


class StateMachine(Generic[StateT, InputT]):
    """The current state of one machine; `process` is the only way to change it."""

    __slots__ = ("spec", "state")

    def __init__(self, spec: MachineSpec[StateT, InputT], state: StateT | None = None) -> None:
        self.spec = spec
        self.state: StateT = spec.initial if state is None else state

    def process(self, event: InputT) -> Transition[StateT]:
        """Move by the table; a missing pair is our bug: terminate and raise."""
        transition = self.spec.table.get((self.state, event))
        if transition is None:
            previous = self.state
            self.state = self.spec.terminated
            raise LocalProtocolError(
                f"{self.spec.name}: input {event.name} is not allowed in state {previous.name}"
            )
        self.state = transition.target
        return transition
