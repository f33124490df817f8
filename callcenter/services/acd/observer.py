"""Who wants to know what the ACD does with calls and agents: the agents' pages (the desk).

Owns the `AcdObserver` protocol and a do-nothing default. The ACD calls these synchronously,
on the event loop, as things happen; an observer must be quick and must not raise (it queues
what it sends). Must not know HTTP or WebSockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .runtime import Waiter


class AcdObserver(Protocol):
    def agent_changed(self, agent: str) -> None:
        """The agent's state (or its reason, or its call) may have changed."""

    def call_queued(self, waiter: Waiter) -> None:
        """A caller entered a queue (their customers are matched already)."""

    def call_offered(self, agent: str, waiter: Waiter, ring_timeout: float) -> None:
        """The agent's page and phone ring for this caller."""

    def offer_ended(self, agent: str, call_id: str, reason: str) -> None:
        """The offer stopped ringing for this agent without their answer: `reason` is one of
        answered-elsewhere, caller-left, no-answer, rejected."""

    def call_answered(self, agent: str, waiter: Waiter, on: str) -> None:
        """The agent answered on the `page` or the `phone`."""

    def call_ended(self, agent: str, call_id: str, by: str) -> None:
        """The agent's call ended (`by` caller, agent, transfer or system)."""

    def recording_changed(self, waiter: Waiter, *, paused: bool) -> None:
        """The call's recording was paused or resumed (by the system: the maximum pause)."""

    def parties_changed(self, waiter: Waiter) -> None:
        """Someone was rung for, joined, left, was muted in or took over the call."""


class NoObserver:
    def agent_changed(self, agent: str) -> None:
        pass

    def call_queued(self, waiter: Waiter) -> None:
        pass

    def call_offered(self, agent: str, waiter: Waiter, ring_timeout: float) -> None:
        pass

    def offer_ended(self, agent: str, call_id: str, reason: str) -> None:
        pass

    def call_answered(self, agent: str, waiter: Waiter, on: str) -> None:
        pass

    def call_ended(self, agent: str, call_id: str, by: str) -> None:
        pass

    def recording_changed(self, waiter: Waiter, *, paused: bool) -> None:
        pass

    def parties_changed(self, waiter: Waiter) -> None:
        pass
