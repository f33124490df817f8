"""One agent's state as a table-driven, sans-IO machine (issue 4, item 3).

Owns: the states (logged-out, available, reserved, on-call, wrap-up, away(reason)), the inputs
the ACD and the engine report, the table `(state, input kind) -> rule`, wrap-up deadlines, and
`reconcile`, which corrects the state from the engine's truth so that no agent is ever stuck.
Must not know: queues, routing, the engine, the database, clocks. Time is the `now` argument;
the next deadline is asked for with `get_timer()`.

Choices (see the tests for each):
- Logout, and go_away, during a call (reserved, on-call, wrap-up) are *deferred*: the agent
  finishes the call and its wrap-up, then is logged out (or goes away). go_available during the
  call cancels what was deferred; in wrap-up it also ends wrap-up at once.
- The phone unregistering does not end a call (a SIP dialog outlives its registration): an
  idle available agent goes away('offline'); a busy agent finishes and then goes away('offline').
  'offline' is only ever set by the machine, so when a phone registers again an agent that is
  away('offline') goes back to available, which is where it would have been; an away reason the
  agent chose (break, lunch, ...) and away('missed') are kept until the agent says otherwise.
- Network loss (the engine found the device unreachable) unregisters *and* ends the agent's
  offer or call: on-call -> wrap-up, reserved -> the offer is lost and the ACD re-offers it.
- Ring-no-answer and the agent declining (hanging up a ringing offer) -> away('missed').
- After a call or an offer ends, the agent settles in this order: deferred logout, deferred
  away(reason), away('offline') if no phone is registered, away('missed') after a missed
  offer, else available.
- Engine reports about calls the agent is not on are ignored with `InputIgnored`; agent
  requests not allowed in the state are refused with `InputRefused`. Neither changes the state.
- Any input first ends a wrap-up whose deadline has passed, so a wrap-up never outlives its
  deadline even when the periodic tick is late.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from .events import (
    AgentBecameAvailable,
    AgentEvent,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentWentAway,
    AwayDeferred,
    CallAdopted,
    CallAnswered,
    CallEnded,
    CallOffered,
    InputIgnored,
    InputRefused,
    LogoutDeferred,
    OfferLost,
    OfferMissed,
    OfferWithdrawn,
    PendingChangeCancelled,
    WrapUpEnded,
    WrapUpStarted,
)
from .inputs import (
    AgentHangup,
    AgentInput,
    Answer,
    CallerHangup,
    EngineRestart,
    GoAway,
    InputKind,
    Offer,
    OfferWithdrawal,
    RingTimeout,
)

MISSED = "missed"
OFFLINE = "offline"
# Set by the machine only: an agent cannot claim to be offline or to have missed a call.
SYSTEM_REASONS = frozenset({MISSED, OFFLINE})
MAX_REASON_LENGTH = 64
MAX_CALL_ID_LENGTH = 256
MAX_WRAP_UP_SECONDS = 3600.0


class AgentStateError(Exception):
    """A bug of the caller or of the table (bad configuration, a pair missing from the table)."""


class AgentState(enum.Enum):
    LOGGED_OUT = "logged-out"
    AVAILABLE = "available"
    RESERVED = "reserved"  # a call is offered: the agent's phone rings
    ON_CALL = "on-call"
    WRAP_UP = "wrap-up"
    AWAY = "away"  # with a reason


class Step(enum.Enum):
    """What a table entry does; each has one handler in `Agent`."""

    REFUSE = "refuse: not allowed in this state (InputRefused)"
    IGNORE = "ignore: not about a call the agent is on (InputIgnored)"
    ABSORB = "nothing to do"
    NOTE_REGISTERED = "remember a device is registered"
    NOTE_UNREGISTERED = "remember no device is registered"
    LOG_IN = "log in: available, or away('offline') without a registered phone"
    LOG_OUT = "log out"
    DEFER_LOGOUT = "log out when the call and wrap-up end"
    GO_AWAY = "go away(reason)"
    DEFER_AWAY = "go away(reason) when the call and wrap-up end"
    GO_AVAILABLE = "become available if a phone is registered"
    CANCEL_PENDING = "cancel a deferred logout or away"
    FINISH_WRAP_UP = "end wrap-up now, cancel what was deferred, and settle"
    OFFER = "reserve the agent for the offered call"
    ANSWER = "the offered call was answered"
    WITHDRAW_OFFER = "the offer ended without the agent's doing; settle"
    MISS_OFFER = "ring-no-answer or declined; settle in away('missed')"
    HANG_UP = "the call ended; wrap up"
    END_WRAP_UP = "the agent ended wrap-up; settle"
    EXPIRE_WRAP_UP = "settle if the wrap-up deadline has passed"
    GO_OFFLINE = "no registered device: away('offline')"
    BACK_ONLINE = "a device registered: away('offline') becomes available"
    LOSE_OFFER = "the device is gone, and the offer with it; settle"
    LOSE_CALL = "the device is gone, and the call with it; wrap up"
    CHECK_OFFER = "settle if the offered call did not survive the restart"
    CHECK_CALL = "wrap up if the call did not survive the restart"


@dataclass(frozen=True, slots=True)
class Rule:
    """A table entry: the step to run and every state it may leave the agent in."""

    step: Step
    targets: frozenset[AgentState]


_S, _I = AgentState, InputKind
_REST = frozenset({_S.AVAILABLE, _S.AWAY, _S.LOGGED_OUT})


def _r(step: Step, *targets: AgentState | frozenset[AgentState]) -> Rule:
    flat: set[AgentState] = set()
    for target in targets:
        flat |= target if isinstance(target, frozenset) else {target}
    return Rule(step, frozenset(flat))


def _stay(state: AgentState, step: Step) -> Rule:
    return Rule(step, frozenset({state}))


# Engine reports about a call, for states where the agent has no call at all.
def _no_call(state: AgentState) -> dict[tuple[AgentState, InputKind], Rule]:
    ignore = _stay(state, Step.IGNORE)
    return {
        (state, _I.ANSWERED): ignore,
        (state, _I.CALLER_HUNG_UP): ignore,
        (state, _I.AGENT_HUNG_UP): ignore,
        (state, _I.RING_TIMEOUT): ignore,
        (state, _I.OFFER_WITHDRAWN): ignore,
    }


_REFUSE = Step.REFUSE
_ABSORB = Step.ABSORB

AGENT_TABLE: dict[tuple[AgentState, InputKind], Rule] = {
    # Logged out: only login; the registration is still tracked so login knows where to go.
    (_S.LOGGED_OUT, _I.LOGIN): _r(Step.LOG_IN, _S.AVAILABLE, _S.AWAY),
    (_S.LOGGED_OUT, _I.LOGOUT): _stay(_S.LOGGED_OUT, _REFUSE),
    (_S.LOGGED_OUT, _I.GO_AWAY): _stay(_S.LOGGED_OUT, _REFUSE),
    (_S.LOGGED_OUT, _I.GO_AVAILABLE): _stay(_S.LOGGED_OUT, _REFUSE),
    (_S.LOGGED_OUT, _I.CALL_OFFERED): _stay(_S.LOGGED_OUT, _REFUSE),
    **_no_call(_S.LOGGED_OUT),
    (_S.LOGGED_OUT, _I.WRAP_UP_ENDED): _stay(_S.LOGGED_OUT, _REFUSE),
    (_S.LOGGED_OUT, _I.PHONE_UNREGISTERED): _stay(_S.LOGGED_OUT, Step.NOTE_UNREGISTERED),
    (_S.LOGGED_OUT, _I.PHONE_REGISTERED): _stay(_S.LOGGED_OUT, Step.NOTE_REGISTERED),
    (_S.LOGGED_OUT, _I.NETWORK_LOST): _stay(_S.LOGGED_OUT, Step.NOTE_UNREGISTERED),
    (_S.LOGGED_OUT, _I.ENGINE_RESTARTED): _stay(_S.LOGGED_OUT, _ABSORB),
    (_S.LOGGED_OUT, _I.TICK): _stay(_S.LOGGED_OUT, _ABSORB),
    # Available: the only state in which a call may be offered.
    (_S.AVAILABLE, _I.LOGIN): _stay(_S.AVAILABLE, _REFUSE),
    (_S.AVAILABLE, _I.LOGOUT): _r(Step.LOG_OUT, _S.LOGGED_OUT),
    (_S.AVAILABLE, _I.GO_AWAY): _r(Step.GO_AWAY, _S.AWAY, _S.AVAILABLE),  # stays if refused
    (_S.AVAILABLE, _I.GO_AVAILABLE): _stay(_S.AVAILABLE, _REFUSE),
    (_S.AVAILABLE, _I.CALL_OFFERED): _r(Step.OFFER, _S.RESERVED, _S.AVAILABLE),
    **_no_call(_S.AVAILABLE),
    (_S.AVAILABLE, _I.WRAP_UP_ENDED): _stay(_S.AVAILABLE, _REFUSE),
    (_S.AVAILABLE, _I.PHONE_UNREGISTERED): _r(Step.GO_OFFLINE, _S.AWAY),
    (_S.AVAILABLE, _I.PHONE_REGISTERED): _stay(_S.AVAILABLE, Step.NOTE_REGISTERED),
    (_S.AVAILABLE, _I.NETWORK_LOST): _r(Step.GO_OFFLINE, _S.AWAY),
    (_S.AVAILABLE, _I.ENGINE_RESTARTED): _stay(_S.AVAILABLE, _ABSORB),
    (_S.AVAILABLE, _I.TICK): _stay(_S.AVAILABLE, _ABSORB),
    # Reserved: the phone rings for `call_id`.
    (_S.RESERVED, _I.LOGIN): _stay(_S.RESERVED, _REFUSE),
    (_S.RESERVED, _I.LOGOUT): _stay(_S.RESERVED, Step.DEFER_LOGOUT),
    (_S.RESERVED, _I.GO_AWAY): _stay(_S.RESERVED, Step.DEFER_AWAY),
    (_S.RESERVED, _I.GO_AVAILABLE): _stay(_S.RESERVED, Step.CANCEL_PENDING),
    (_S.RESERVED, _I.CALL_OFFERED): _stay(_S.RESERVED, _REFUSE),
    (_S.RESERVED, _I.ANSWERED): _r(Step.ANSWER, _S.ON_CALL, _S.RESERVED),
    (_S.RESERVED, _I.CALLER_HUNG_UP): _r(Step.WITHDRAW_OFFER, _REST, _S.RESERVED),
    (_S.RESERVED, _I.AGENT_HUNG_UP): _r(Step.MISS_OFFER, _REST, _S.RESERVED),
    (_S.RESERVED, _I.RING_TIMEOUT): _r(Step.MISS_OFFER, _REST, _S.RESERVED),
    (_S.RESERVED, _I.OFFER_WITHDRAWN): _r(Step.WITHDRAW_OFFER, _REST, _S.RESERVED),
    (_S.RESERVED, _I.WRAP_UP_ENDED): _stay(_S.RESERVED, _REFUSE),
    (_S.RESERVED, _I.PHONE_UNREGISTERED): _stay(_S.RESERVED, Step.NOTE_UNREGISTERED),
    (_S.RESERVED, _I.PHONE_REGISTERED): _stay(_S.RESERVED, Step.NOTE_REGISTERED),
    (_S.RESERVED, _I.NETWORK_LOST): _r(Step.LOSE_OFFER, _REST),
    (_S.RESERVED, _I.ENGINE_RESTARTED): _r(Step.CHECK_OFFER, _REST, _S.RESERVED),
    (_S.RESERVED, _I.TICK): _stay(_S.RESERVED, _ABSORB),  # the ACD owns the ring timer
    # On call.
    (_S.ON_CALL, _I.LOGIN): _stay(_S.ON_CALL, _REFUSE),
    (_S.ON_CALL, _I.LOGOUT): _stay(_S.ON_CALL, Step.DEFER_LOGOUT),
    (_S.ON_CALL, _I.GO_AWAY): _stay(_S.ON_CALL, Step.DEFER_AWAY),
    (_S.ON_CALL, _I.GO_AVAILABLE): _stay(_S.ON_CALL, Step.CANCEL_PENDING),
    (_S.ON_CALL, _I.CALL_OFFERED): _stay(_S.ON_CALL, _REFUSE),
    (_S.ON_CALL, _I.ANSWERED): _stay(_S.ON_CALL, Step.IGNORE),  # duplicate or stray
    (_S.ON_CALL, _I.CALLER_HUNG_UP): _r(Step.HANG_UP, _S.WRAP_UP, _REST, _S.ON_CALL),
    (_S.ON_CALL, _I.AGENT_HUNG_UP): _r(Step.HANG_UP, _S.WRAP_UP, _REST, _S.ON_CALL),
    (_S.ON_CALL, _I.RING_TIMEOUT): _stay(_S.ON_CALL, Step.IGNORE),  # a late ring timer
    (_S.ON_CALL, _I.OFFER_WITHDRAWN): _stay(_S.ON_CALL, Step.IGNORE),
    (_S.ON_CALL, _I.WRAP_UP_ENDED): _stay(_S.ON_CALL, _REFUSE),
    (_S.ON_CALL, _I.PHONE_UNREGISTERED): _stay(_S.ON_CALL, Step.NOTE_UNREGISTERED),
    (_S.ON_CALL, _I.PHONE_REGISTERED): _stay(_S.ON_CALL, Step.NOTE_REGISTERED),
    (_S.ON_CALL, _I.NETWORK_LOST): _r(Step.LOSE_CALL, _S.WRAP_UP, _REST),
    (_S.ON_CALL, _I.ENGINE_RESTARTED): _r(Step.CHECK_CALL, _S.ON_CALL, _S.WRAP_UP, _REST),
    (_S.ON_CALL, _I.TICK): _stay(_S.ON_CALL, _ABSORB),
    # Wrap-up: after-call work until the deadline or the agent's "done".
    (_S.WRAP_UP, _I.LOGIN): _stay(_S.WRAP_UP, _REFUSE),
    (_S.WRAP_UP, _I.LOGOUT): _stay(_S.WRAP_UP, Step.DEFER_LOGOUT),
    (_S.WRAP_UP, _I.GO_AWAY): _stay(_S.WRAP_UP, Step.DEFER_AWAY),
    (_S.WRAP_UP, _I.GO_AVAILABLE): _r(Step.FINISH_WRAP_UP, _S.AVAILABLE, _S.AWAY),
    (_S.WRAP_UP, _I.CALL_OFFERED): _stay(_S.WRAP_UP, _REFUSE),
    **_no_call(_S.WRAP_UP),  # the call is over: late reports are ignored
    (_S.WRAP_UP, _I.WRAP_UP_ENDED): _r(Step.END_WRAP_UP, _REST),
    (_S.WRAP_UP, _I.PHONE_UNREGISTERED): _stay(_S.WRAP_UP, Step.NOTE_UNREGISTERED),
    (_S.WRAP_UP, _I.PHONE_REGISTERED): _stay(_S.WRAP_UP, Step.NOTE_REGISTERED),
    (_S.WRAP_UP, _I.NETWORK_LOST): _stay(_S.WRAP_UP, Step.NOTE_UNREGISTERED),
    (_S.WRAP_UP, _I.ENGINE_RESTARTED): _stay(_S.WRAP_UP, _ABSORB),
    (_S.WRAP_UP, _I.TICK): _r(Step.EXPIRE_WRAP_UP, _S.WRAP_UP, _REST),
    # Away(reason).
    (_S.AWAY, _I.LOGIN): _stay(_S.AWAY, _REFUSE),
    (_S.AWAY, _I.LOGOUT): _r(Step.LOG_OUT, _S.LOGGED_OUT),
    (_S.AWAY, _I.GO_AWAY): _stay(_S.AWAY, Step.GO_AWAY),  # a new reason
    (_S.AWAY, _I.GO_AVAILABLE): _r(Step.GO_AVAILABLE, _S.AVAILABLE, _S.AWAY),
    (_S.AWAY, _I.CALL_OFFERED): _stay(_S.AWAY, _REFUSE),
    **_no_call(_S.AWAY),
    (_S.AWAY, _I.WRAP_UP_ENDED): _stay(_S.AWAY, _REFUSE),
    (_S.AWAY, _I.PHONE_UNREGISTERED): _stay(_S.AWAY, Step.NOTE_UNREGISTERED),
    (_S.AWAY, _I.PHONE_REGISTERED): _r(Step.BACK_ONLINE, _S.AVAILABLE, _S.AWAY),
    (_S.AWAY, _I.NETWORK_LOST): _stay(_S.AWAY, Step.NOTE_UNREGISTERED),
    (_S.AWAY, _I.ENGINE_RESTARTED): _stay(_S.AWAY, _ABSORB),
    (_S.AWAY, _I.TICK): _stay(_S.AWAY, _ABSORB),
}
TABLE: Mapping[tuple[AgentState, InputKind], Rule] = MappingProxyType(AGENT_TABLE)

_CALL_INPUTS = (Answer, CallerHangup, AgentHangup, RingTimeout, OfferWithdrawal)


def _check_wrap_up(seconds: float) -> bool:
    return math.isfinite(seconds) and 0.0 <= seconds <= MAX_WRAP_UP_SECONDS


def reason_problem(reason: str) -> str | None:
    """Why an away reason the agent typed is not acceptable, or None (free text, bounded)."""
    if not reason.strip():
        return "the away reason is empty"
    if len(reason) > MAX_REASON_LENGTH:
        return f"the away reason is longer than {MAX_REASON_LENGTH} characters"
    if not reason.isprintable():
        return "the away reason has control characters"
    if reason in SYSTEM_REASONS:
        return f"away({reason!r}) is set by the system only"
    return None


class Agent:
    """The state of one agent; `handle` and `reconcile` are the only ways to change it.

    `wrap_up_seconds` is the agent's default; an offer may carry its queue's. `registered` says
    whether any of the agent's devices is registered (the engine reports the edges).
    """

    __slots__ = (
        "_now",
        "_out",
        "agent_id",
        "away_reason",
        "call_id",
        "call_wrap_up",
        "pending_away",
        "pending_logout",
        "registered",
        "state",
        "wrap_up_deadline",
        "wrap_up_seconds",
    )

    def __init__(self, agent_id: str, *, wrap_up_seconds: float, registered: bool = False) -> None:
        if not _check_wrap_up(wrap_up_seconds):
            raise AgentStateError(f"wrap-up must be 0..{MAX_WRAP_UP_SECONDS:g} s")
        self.agent_id = agent_id
        self.wrap_up_seconds = wrap_up_seconds
        self.registered = registered
        self.state = AgentState.LOGGED_OUT
        self.away_reason: str | None = None
        self.call_id: str | None = None
        self.call_wrap_up = wrap_up_seconds
        self.wrap_up_deadline: float | None = None
        self.pending_logout = False
        self.pending_away: str | None = None
        self._out: list[AgentEvent] = []
        self._now = 0.0

    def get_timer(self) -> float | None:
        """When to call `handle(Tick(), now)` next: the wrap-up deadline, if any."""
        return self.wrap_up_deadline if self.state is AgentState.WRAP_UP else None

    def handle(self, event: AgentInput, now: float) -> list[AgentEvent]:
        """Apply one input at `now` by the table; returns what happened."""
        self._out = []
        self._expire(now)
        rule = TABLE.get((self.state, event.kind))
        if rule is None:  # the table tests make this unreachable
            raise AgentStateError(f"no rule for {event.kind.value} in {self.state.value}")
        _HANDLERS[rule.step](self, event, now)
        return self._out

    def reconcile(
        self,
        real_calls: frozenset[str],
        registered: bool,
        now: float,
        *,
        ringing: frozenset[str] = frozenset(),
    ) -> list[AgentEvent]:
        """Correct the state from the engine's truth: the never-stuck guarantee.

        `real_calls` are the answered calls on the agent's devices, `ringing` the calls ringing
        on them, `registered` whether any device is registered. Called after an engine restart
        and periodically. A logged-out agent is left alone: its phone is none of the ACD's
        business. Each correction emits the event that says why.
        """
        self._out = []
        self.registered = registered
        if self.state is AgentState.LOGGED_OUT:
            return self._out
        # 1. The registration.
        if self.state is AgentState.AVAILABLE and not registered:
            self._become_away(now, OFFLINE, "reconcile: no registered phone")
        elif self.state is AgentState.AWAY and self.away_reason == OFFLINE and registered:
            self._become_available(now, "reconcile: a phone is registered")
        # 2. The call the state believes in.
        if self.state is AgentState.RESERVED and self.call_id not in ringing:
            call_id = self._call()
            if call_id in real_calls:
                self.state = AgentState.ON_CALL
                self._emit(
                    CallAdopted,
                    call_id=call_id,
                    ringing=False,
                    cause="reconcile: the offer was answered; the report was lost",
                )
            else:
                self._emit(OfferLost, call_id=call_id, cause="reconcile: no longer ringing")
                self._settle(now, "offer lost")
        elif self.state is AgentState.ON_CALL and self.call_id not in real_calls:
            self._emit(
                CallEnded,
                call_id=self._call(),
                by="lost",
                cause="reconcile: the call is not on the agent's devices",
            )
            self._wrap_up(now)
        # 3. A wrap-up past its deadline.
        self._expire(now)
        # 4. Calls the state does not know about.
        known = {self.call_id} if self.state in (_S.RESERVED, _S.ON_CALL) else set()
        unknown_answered = real_calls - known
        if unknown_answered and self.state is not AgentState.ON_CALL:
            self._adopt_answered(min(unknown_answered), now)
        elif ringing and self.state is AgentState.AVAILABLE:
            self.state = AgentState.RESERVED
            self.call_id = min(ringing)
            self.call_wrap_up = self.wrap_up_seconds
            self._emit(
                CallAdopted,
                call_id=self.call_id,
                ringing=True,
                cause="reconcile: a call rings on an available agent's phone",
            )
        return self._out

    # Helpers.

    def _emit(self, kind: Callable[..., AgentEvent], /, **fields: object) -> None:
        self._out.append(kind(agent_id=self.agent_id, at=self._now, **fields))

    def _call(self) -> str:
        if self.call_id is None:
            raise AgentStateError(f"{self.state.value} without a call")
        return self.call_id

    def _adopt_answered(self, call_id: str, now: float) -> None:
        previous = self.state
        if previous is AgentState.RESERVED:
            self._emit(
                OfferLost, call_id=self._call(), cause="reconcile: another call was answered"
            )
        elif previous is AgentState.WRAP_UP:
            self._emit(WrapUpEnded, call_id=self._call(), cause="reconcile: another call is up")
        elif previous is AgentState.AWAY and self.away_reason not in SYSTEM_REASONS:
            self.pending_away = self.away_reason  # back to the chosen reason after the call
        self.state = AgentState.ON_CALL
        self.call_id = call_id
        self.call_wrap_up = self.wrap_up_seconds
        self.away_reason = None
        self.wrap_up_deadline = None
        self._emit(
            CallAdopted,
            call_id=call_id,
            ringing=False,
            cause=f"reconcile: {previous.value} agent has an answered call",
        )

    def _expire(self, now: float) -> None:
        self._now = now
        deadline = self.wrap_up_deadline
        if self.state is AgentState.WRAP_UP and deadline is not None and now >= deadline:
            self._emit(WrapUpEnded, call_id=self._call(), cause="deadline reached")
            self._settle(now, "wrap-up ended")

    def _become_available(self, now: float, cause: str) -> None:
        self.state = AgentState.AVAILABLE
        self.away_reason = None
        self._emit(AgentBecameAvailable, cause=cause)

    def _become_away(self, now: float, reason: str, cause: str) -> None:
        self.state = AgentState.AWAY
        self.away_reason = reason
        self._emit(AgentWentAway, reason=reason, cause=cause)

    def _settle(self, now: float, cause: str, *, missed: bool = False) -> None:
        """The call or offer is over: go where the agent asked, or where the facts say."""
        pending_logout, pending_away = self.pending_logout, self.pending_away
        self.call_id = None
        self.call_wrap_up = self.wrap_up_seconds
        self.wrap_up_deadline = None
        self.pending_logout = False
        self.pending_away = None
        if pending_logout:
            self.state = AgentState.LOGGED_OUT
            self.away_reason = None
            self._emit(AgentLoggedOut, cause=f"{cause}; deferred logout")
        elif pending_away is not None:
            self._become_away(now, pending_away, f"{cause}; deferred away")
        elif not self.registered:
            self._become_away(now, OFFLINE, f"{cause}; no registered phone")
        elif missed:
            self._become_away(now, MISSED, cause)
        else:
            self._become_available(now, cause)

    def _wrap_up(self, now: float) -> None:
        if self.call_wrap_up <= 0.0:
            self._settle(now, "call ended, no wrap-up")
            return
        self.state = AgentState.WRAP_UP
        self.wrap_up_deadline = now + self.call_wrap_up
        self._emit(WrapUpStarted, call_id=self._call(), deadline=self.wrap_up_deadline)

    def _refuse(self, event: AgentInput, why: str) -> None:
        self._emit(InputRefused, input=event.kind.value, state=self.state.value, why=why)

    def _matches(self, event: AgentInput) -> bool:
        """Whether a call report is about the agent's call; if not, say it was ignored."""
        if isinstance(event, _CALL_INPUTS) and event.call_id == self.call_id:
            return True
        self._ignore(event, self._now)
        return False

    # Handlers, one per Step.

    def _refuse_input(self, event: AgentInput, now: float) -> None:
        self._refuse(event, f"not allowed while {self.state.value}")

    def _ignore(self, event: AgentInput, now: float) -> None:
        call_id = event.call_id if isinstance(event, _CALL_INPUTS) else ""
        self._emit(InputIgnored, input=event.kind.value, call_id=call_id, state=self.state.value)

    def _absorb(self, event: AgentInput, now: float) -> None:
        pass

    def _note_registered(self, event: AgentInput, now: float) -> None:
        self.registered = True

    def _note_unregistered(self, event: AgentInput, now: float) -> None:
        self.registered = False

    def _log_in(self, event: AgentInput, now: float) -> None:
        self._emit(AgentLoggedIn)
        if self.registered:
            self._become_available(now, "logged in")
        else:
            self._become_away(now, OFFLINE, "logged in without a registered phone")

    def _log_out(self, event: AgentInput, now: float) -> None:
        self.state = AgentState.LOGGED_OUT
        self.away_reason = None
        self._emit(AgentLoggedOut, cause="agent logged out")

    def _defer_logout(self, event: AgentInput, now: float) -> None:
        self.pending_logout = True
        self._emit(LogoutDeferred, call_id=self._call())

    def _go_away(self, event: AgentInput, now: float) -> None:
        assert isinstance(event, GoAway)
        problem = reason_problem(event.reason)
        if problem is not None:
            self._refuse(event, problem)
            return
        self._become_away(now, event.reason, "agent asked")

    def _defer_away(self, event: AgentInput, now: float) -> None:
        assert isinstance(event, GoAway)
        problem = reason_problem(event.reason)
        if problem is not None:
            self._refuse(event, problem)
            return
        self.pending_away = event.reason
        self._emit(AwayDeferred, call_id=self._call(), reason=event.reason)

    def _go_available(self, event: AgentInput, now: float) -> None:
        if not self.registered:
            self._refuse(event, "no registered phone")
            return
        self._become_available(now, "agent asked")

    def _cancel_pending(self, event: AgentInput, now: float) -> None:
        if not self.pending_logout and self.pending_away is None:
            self._refuse(event, f"already {self.state.value}; nothing deferred to cancel")
            return
        self.pending_logout = False
        self.pending_away = None
        self._emit(PendingChangeCancelled, call_id=self._call())

    def _finish_wrap_up(self, event: AgentInput, now: float) -> None:
        self.pending_logout = False
        self.pending_away = None
        self._emit(WrapUpEnded, call_id=self._call(), cause="agent is ready")
        self._settle(now, "wrap-up ended")

    def _offer(self, event: AgentInput, now: float) -> None:
        assert isinstance(event, Offer)
        wrap_up = self.wrap_up_seconds if event.wrap_up_seconds is None else event.wrap_up_seconds
        if not _check_wrap_up(wrap_up):
            self._refuse(event, f"wrap-up must be 0..{MAX_WRAP_UP_SECONDS:g} s")
            return
        if not event.call_id or len(event.call_id) > MAX_CALL_ID_LENGTH:
            self._refuse(event, "bad call id")
            return
        self.state = AgentState.RESERVED
        self.call_id = event.call_id
        self.call_wrap_up = wrap_up
        self._emit(CallOffered, call_id=event.call_id)

    def _answer(self, event: AgentInput, now: float) -> None:
        if self._matches(event):
            self.state = AgentState.ON_CALL
            self._emit(CallAnswered, call_id=self._call())

    def _withdraw_offer(self, event: AgentInput, now: float) -> None:
        if self._matches(event):
            self._emit(OfferWithdrawn, call_id=self._call())
            self._settle(now, "offer withdrawn")

    def _miss_offer(self, event: AgentInput, now: float) -> None:
        if self._matches(event):
            declined = isinstance(event, AgentHangup)
            cause = "agent declined" if declined else "ring-no-answer"
            self._emit(OfferMissed, call_id=self._call(), cause=cause)
            self._settle(now, cause, missed=True)

    def _hang_up(self, event: AgentInput, now: float) -> None:
        if self._matches(event):
            by: Literal["caller", "agent"] = (
                "caller" if isinstance(event, CallerHangup) else "agent"
            )
            self._emit(CallEnded, call_id=self._call(), by=by, cause=f"{by} hung up")
            self._wrap_up(now)

    def _end_wrap_up(self, event: AgentInput, now: float) -> None:
        self._emit(WrapUpEnded, call_id=self._call(), cause="agent ended wrap-up")
        self._settle(now, "wrap-up ended")

    def _expire_wrap_up(self, event: AgentInput, now: float) -> None:
        self._expire(now)  # `handle` already did; kept so the table says what tick does

    def _go_offline(self, event: AgentInput, now: float) -> None:
        self.registered = False
        self._become_away(now, OFFLINE, f"{event.kind.value.replace('_', ' ')}")

    def _back_online(self, event: AgentInput, now: float) -> None:
        self.registered = True
        if self.away_reason == OFFLINE:
            self._become_available(now, "phone registered")

    def _lose_offer(self, event: AgentInput, now: float) -> None:
        self.registered = False
        self._emit(OfferLost, call_id=self._call(), cause="network lost")
        self._settle(now, "offer lost")

    def _lose_call(self, event: AgentInput, now: float) -> None:
        self.registered = False
        self._emit(CallEnded, call_id=self._call(), by="lost", cause="network lost")
        self._wrap_up(now)

    def _check_offer(self, event: AgentInput, now: float) -> None:
        assert isinstance(event, EngineRestart)
        if self.call_id not in event.live_calls:
            self._emit(OfferLost, call_id=self._call(), cause="engine restarted")
            self._settle(now, "offer lost")

    def _check_call(self, event: AgentInput, now: float) -> None:
        assert isinstance(event, EngineRestart)
        if self.call_id not in event.live_calls:
            self._emit(CallEnded, call_id=self._call(), by="lost", cause="engine restarted")
            self._wrap_up(now)


# Filled after the class so that copies of an Agent share it (tests clone agents freely).
_HANDLERS: dict[Step, Callable[[Agent, AgentInput, float], None]] = {
    Step.REFUSE: Agent._refuse_input,
    Step.IGNORE: Agent._ignore,
    Step.ABSORB: Agent._absorb,
    Step.NOTE_REGISTERED: Agent._note_registered,
    Step.NOTE_UNREGISTERED: Agent._note_unregistered,
    Step.LOG_IN: Agent._log_in,
    Step.LOG_OUT: Agent._log_out,
    Step.DEFER_LOGOUT: Agent._defer_logout,
    Step.GO_AWAY: Agent._go_away,
    Step.DEFER_AWAY: Agent._defer_away,
    Step.GO_AVAILABLE: Agent._go_available,
    Step.CANCEL_PENDING: Agent._cancel_pending,
    Step.FINISH_WRAP_UP: Agent._finish_wrap_up,
    Step.OFFER: Agent._offer,
    Step.ANSWER: Agent._answer,
    Step.WITHDRAW_OFFER: Agent._withdraw_offer,
    Step.MISS_OFFER: Agent._miss_offer,
    Step.HANG_UP: Agent._hang_up,
    Step.END_WRAP_UP: Agent._end_wrap_up,
    Step.EXPIRE_WRAP_UP: Agent._expire_wrap_up,
    Step.GO_OFFLINE: Agent._go_offline,
    Step.BACK_ONLINE: Agent._back_online,
    Step.LOSE_OFFER: Agent._lose_offer,
    Step.LOSE_CALL: Agent._lose_call,
    Step.CHECK_OFFER: Agent._check_offer,
    Step.CHECK_CALL: Agent._check_call,
}
