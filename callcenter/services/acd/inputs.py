"""What the ACD and the engine tell the agent state machine: frozen input records.

Owns: the input kinds and their payloads. Agent requests are imperatives (Login, GoAway);
engine reports are nouns (Answer, RingTimeout): the events the machine emits carry the
past-tense names, so the two never collide. Must not know: states or the table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar


class InputKind(enum.Enum):
    LOGIN = "login"
    LOGOUT = "logout"
    GO_AWAY = "go_away"
    GO_AVAILABLE = "go_available"
    CALL_OFFERED = "call_offered"
    ANSWERED = "answered"
    CALLER_HUNG_UP = "caller_hung_up"
    AGENT_HUNG_UP = "agent_hung_up"
    RING_TIMEOUT = "ring_timeout"
    OFFER_WITHDRAWN = "offer_withdrawn"
    WRAP_UP_ENDED = "wrap_up_ended"
    PHONE_UNREGISTERED = "phone_unregistered"
    PHONE_REGISTERED = "phone_registered"
    NETWORK_LOST = "network_lost"
    ENGINE_RESTARTED = "engine_restarted"
    TICK = "tick"


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    kind: ClassVar[InputKind] = InputKind.LOGIN


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout:
    kind: ClassVar[InputKind] = InputKind.LOGOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway:
    kind: ClassVar[InputKind] = InputKind.GO_AWAY
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAvailable:
    kind: ClassVar[InputKind] = InputKind.GO_AVAILABLE


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """The ACD offers `call_id`; `wrap_up_seconds` is the queue's, or None for the agent's."""

    kind: ClassVar[InputKind] = InputKind.CALL_OFFERED
    call_id: str
    wrap_up_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    kind: ClassVar[InputKind] = InputKind.ANSWERED
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHangup:
    kind: ClassVar[InputKind] = InputKind.CALLER_HUNG_UP
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentHangup:
    kind: ClassVar[InputKind] = InputKind.AGENT_HUNG_UP
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RingTimeout:
    kind: ClassVar[InputKind] = InputKind.RING_TIMEOUT
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferWithdrawal:
    """The caller hung up while it rang, or another agent answered first."""

    kind: ClassVar[InputKind] = InputKind.OFFER_WITHDRAWN
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapUpEnd:
    """The agent pressed "done" on the wrap-up form."""

    kind: ClassVar[InputKind] = InputKind.WRAP_UP_ENDED


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneUnregistration:
    """The agent's last registered device went away (expired or REGISTER with Expires: 0)."""

    kind: ClassVar[InputKind] = InputKind.PHONE_UNREGISTERED


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneRegistration:
    """The agent has a registered device again (first binding after none)."""

    kind: ClassVar[InputKind] = InputKind.PHONE_REGISTERED


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkLoss:
    """The engine found the agent's device unreachable: its registration and calls are gone."""

    kind: ClassVar[InputKind] = InputKind.NETWORK_LOST


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRestart:
    """The engine restarted; `live_calls` are the calls that really still exist."""

    kind: ClassVar[InputKind] = InputKind.ENGINE_RESTARTED
    live_calls: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Time passed (the `now` given with it); wrap-up ends at `now >= deadline`."""

    kind: ClassVar[InputKind] = InputKind.TICK


AgentInput = (
    Login
    | Logout
    | GoAway
    | GoAvailable
    | Offer
    | Answer
    | CallerHangup
    | AgentHangup
    | RingTimeout
    | OfferWithdrawal
    | WrapUpEnd
    | PhoneUnregistration
    | PhoneRegistration
    | NetworkLoss
    | EngineRestart
    | Tick
)
