"""What the agent state machine reports: frozen, past-tense events.

Owns: the event records. Must not know: queues, the engine, how events are delivered. Every
event names the agent and the moment (`at`, the `now` that was passed in), so a stream of them
is a timeline; `cause` says why in words meant for the supervisor dashboard and the call record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentEvent:
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedIn(AgentEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLoggedOut(AgentEvent):
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentBecameAvailable(AgentEvent):
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentWentAway(AgentEvent):
    reason: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutDeferred(AgentEvent):
    """Logout asked during a call: it takes effect when the call and its wrap-up end."""

    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AwayDeferred(AgentEvent):
    """Away asked during a call: the agent goes away(reason) when the call and wrap-up end."""

    call_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingChangeCancelled(AgentEvent):
    """go_available during a call cancelled a deferred logout or away."""

    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOffered(AgentEvent):
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(AgentEvent):
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferMissed(AgentEvent):
    """Ring-no-answer (or the agent declined): the ACD offers the call to the next agent."""

    call_id: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferWithdrawn(AgentEvent):
    """The caller hung up while it rang, or another agent answered (ring-all)."""

    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferLost(AgentEvent):
    """The offer died without an answer from anybody (network loss, restart, reconcile):
    the ACD must offer the call again if it still exists."""

    call_id: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(AgentEvent):
    call_id: str
    by: Literal["caller", "agent", "lost"]
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAdopted(AgentEvent):
    """Reconcile found a call on the agent's devices that the state did not know about."""

    call_id: str
    ringing: bool
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapUpStarted(AgentEvent):
    call_id: str
    deadline: float


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapUpEnded(AgentEvent):
    call_id: str
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRefused(AgentEvent):
    """An input that is not allowed in the current state; nothing changed."""

    input: str
    state: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputIgnored(AgentEvent):
    """An engine report about a call this agent is not on (late, duplicate or stray)."""

    input: str
    call_id: str
    state: str
