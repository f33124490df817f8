"""The ACD router: pairs waiting calls with available agents and says why (issue 4, item 2).

Owns: the waiting calls of every queue, the agents as routing sees them (skills, idle since,
calls answered today, whether a call rings on them), the strategies, ring-no-answer exclusions,
max-wait overflow, callback places, announcement timing, and the decisions with their reasons.
Must not know: the engine, the database, the agent state machine's table, clocks. Time is the
`now` argument; the next deadline is asked for with `get_timer()`.

How the lead drives it: report agents' availability from the agent state machine
(`agent_available` / `agent_unavailable`), queue calls with `enqueue`, call `route(now)` after
anything changes, and feed the engine's answers, ring timeouts and hang-ups back through
`answered`, `offer_failed` and `remove`. Decisions are frozen records meant to be logged and
stored on the call record as they are.

Choices:
- `route` walks every waiting call of every queue in one order (`WaitingCall.sort_key`) and
  gives each the best free eligible agent by its queue's strategy. A call nobody can take (no
  agent has the skills) does not hold up the calls behind it. The result is maximal: after
  `route`, no waiting call has a free eligible agent.
- Eligible: available, not ringing for another call, every required skill at >= the level,
  and not excluded for this call (it let this call ring out before). The exclusions end when
  every agent who could take the call has let it ring out: then a new round starts, so a
  call is never left waiting for ever beside free agents who have the skills.
- An agent whose offer rang out (`offer_failed`) is no longer available (the state machine
  puts it away('missed')); agents released because someone else answered a ring-all, or
  because the caller hung up, stay available and keep their idle time.
- A call being offered is out of the waiting list and does not overflow; it returns with its
  original sort key, so it keeps its place among the calls of its priority.
- Overflow (`expire`) removes the call and returns `Overflowed`; queueing it in the target
  queue or voicemail box is the caller's move (the target may be another node's queue).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .queue import (
    CallbackRecord,
    OverflowTarget,
    QueueConfig,
    RoutingError,
    Strategy,
    WaitEstimator,
    WaitingCall,
    frozen_skills,
    make_waiting_call,
)

RULES: Final = {
    Strategy.LONGEST_IDLE: "longest-idle: most seconds available, then fewest calls today, then id",
    Strategy.FEWEST_CALLS: "fewest-calls: fewest calls answered today, then longest idle, then id",
    Strategy.ROUND_ROBIN: "round-robin: the next agent id after the queue's last offer, wrapping",
    Strategy.RING_ALL: "ring-all: every eligible agent rings; the first to answer takes the call",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """An eligible agent as the strategy saw it; `score` is higher-is-better for the rule
    (idle seconds, minus calls today, minus the distance in the rotation)."""

    agent_id: str
    score: float
    idle_seconds: float
    calls_answered_today: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingDecision:
    call: WaitingCall
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOfferedToAgent(RoutingDecision):
    agent_id: str
    strategy: Strategy
    candidates: tuple[Candidate, ...]  # best first; the first is `agent_id`
    excluded: tuple[str, ...]  # agents skipped because this call rang out on them
    rule: str
    ring_timeout_seconds: float
    wrap_up_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOfferedToAll(RoutingDecision):
    """Ring-all: the call rings on every agent in `agent_ids` at once."""

    agent_ids: tuple[str, ...]
    strategy: Strategy
    candidates: tuple[Candidate, ...]
    excluded: tuple[str, ...]
    rule: str
    ring_timeout_seconds: float
    wrap_up_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Overflowed(RoutingDecision):
    target: OverflowTarget
    waited_seconds: float
    rule: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAccepted(RoutingDecision):
    """`agent_id` answered; stop the ringing on `released` (the rest of a ring-all)."""

    agent_id: str
    waited_seconds: float
    released: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallReturnedToQueue(RoutingDecision):
    """The offer rang out on `agent_id`; the call waits again in its old place."""

    agent_id: str
    excluded: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnouncementDue:
    call_id: str
    queue: str
    position: int  # 1-based, within the queue
    estimated_wait_seconds: float | None  # None: no history yet, announce the position only


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentView:
    agent_id: str
    skills: Mapping[str, int]
    available_since: float | None  # None: not available
    calls_answered_today: int
    ringing_call: str | None


class _Agent:
    __slots__ = ("agent_id", "available_since", "calls_today", "ringing", "skills")

    def __init__(self, agent_id: str, skills: Mapping[str, int], calls_today: int) -> None:
        self.agent_id = agent_id
        self.skills = skills
        self.available_since: float | None = None
        self.calls_today = calls_today
        self.ringing: str | None = None

    def free(self) -> bool:
        return self.available_since is not None and self.ringing is None

    def qualifies(self, required: Mapping[str, int]) -> bool:
        return all(self.skills.get(name, -1) >= level for name, level in required.items())


class _Offer:
    __slots__ = ("agents", "call", "offered_at")

    def __init__(self, call: WaitingCall, agents: set[str], offered_at: float) -> None:
        self.call = call
        self.agents = agents
        self.offered_at = offered_at


class Router:
    __slots__ = (
        "_agents",
        "_announced",
        "_estimators",
        "_excluded",
        "_offers",
        "_queues",
        "_rr",
        "_waiting",
    )

    def __init__(self, queues: Iterable[QueueConfig] = ()) -> None:
        self._queues: dict[str, QueueConfig] = {}
        self._estimators: dict[str, WaitEstimator] = {}
        self._waiting: dict[str, WaitingCall] = {}
        self._offers: dict[str, _Offer] = {}
        self._excluded: dict[str, set[str]] = {}
        self._announced: dict[str, float] = {}
        self._agents: dict[str, _Agent] = {}
        self._rr: dict[str, str] = {}  # queue -> the agent id last offered a call
        for config in queues:
            self.set_queue(config)

    # -- configuration and agents ------------------------------------------------------------

    def set_queue(self, config: QueueConfig) -> None:
        """Add a queue or change its settings (calls already waiting keep their priority)."""
        self._queues[config.name] = config
        self._estimators.setdefault(config.name, WaitEstimator())

    def queue(self, name: str) -> QueueConfig:
        try:
            return self._queues[name]
        except KeyError:
            raise RoutingError(f"unknown queue {name!r}") from None

    def set_agent(
        self, agent_id: str, skills: Mapping[str, int], *, calls_answered_today: int = 0
    ) -> None:
        """Add an agent (not available yet) or change its skills."""
        checked = frozen_skills(skills, f"agent {agent_id!r}")
        agent = self._agents.get(agent_id)
        if agent is None:
            self._agents[agent_id] = _Agent(agent_id, checked, calls_answered_today)
        else:
            agent.skills = checked

    def remove_agent(self, agent_id: str, now: float) -> list[CallReturnedToQueue]:
        """Forget an agent; a call ringing on it only returns to the queue (no exclusion)."""
        agent = self._agent(agent_id)
        returned = self._release(agent, now) if agent.ringing else None
        del self._agents[agent_id]
        return [returned] if returned else []

    def agent_available(self, agent_id: str, now: float) -> None:
        """The agent state machine says available; idle time counts from the first report."""
        agent = self._agent(agent_id)
        if agent.available_since is None:
            agent.available_since = now

    def agent_unavailable(self, agent_id: str) -> None:
        """Not available (away, logged out, on a call routed elsewhere). An offer ringing on the
        agent is not touched: report its end with `offer_failed` or `answered`."""
        self._agent(agent_id).available_since = None

    def reset_daily_counts(self) -> None:
        for agent in self._agents.values():
            agent.calls_today = 0

    def agent(self, agent_id: str) -> AgentView:
        a = self._agent(agent_id)
        return AgentView(
            agent_id=a.agent_id,
            skills=a.skills,
            available_since=a.available_since,
            calls_answered_today=a.calls_today,
            ringing_call=a.ringing,
        )

    # -- calls ---------------------------------------------------------------------------------

    def enqueue(
        self,
        call_id: str,
        queue: str,
        now: float,
        *,
        priority: int = 0,
        tier_rank: int = 0,
        required_skills: Mapping[str, int] | None = None,
        entered_at: float | None = None,
    ) -> WaitingCall:
        """Queue a call; `entered_at` defaults to `now` (a re-queued callback passes its own)."""
        if call_id in self._waiting or call_id in self._offers:
            raise RoutingError(f"call {call_id!r} is already queued")
        call = make_waiting_call(
            self.queue(queue),
            call_id=call_id,
            entered_at=now if entered_at is None else entered_at,
            priority=priority,
            tier_rank=tier_rank,
            required_skills=required_skills,
        )
        self._waiting[call_id] = call
        self._announced[call_id] = now
        return call

    def remove(self, call_id: str) -> tuple[str, ...]:
        """The caller hung up (or the call went elsewhere): forget it. Returns the agents whose
        ringing must be stopped; they stay available."""
        self._waiting.pop(call_id, None)
        self._excluded.pop(call_id, None)
        self._announced.pop(call_id, None)
        offer = self._offers.pop(call_id, None)
        if offer is None:
            return ()
        for agent_id in offer.agents:
            self._agents[agent_id].ringing = None
        return tuple(sorted(offer.agents))

    def waiting(self, queue: str | None = None) -> tuple[WaitingCall, ...]:
        """Waiting calls (not those being offered) in routing order."""
        calls = (c for c in self._waiting.values() if queue is None or c.queue == queue)
        return tuple(sorted(calls, key=lambda c: c.sort_key))

    def is_offered(self, call_id: str) -> bool:
        return call_id in self._offers

    def offered_call(self, call_id: str) -> WaitingCall | None:
        """The call being offered (out of the waiting list), if it is."""
        offer = self._offers.get(call_id)
        return offer.call if offer else None

    def ringing_on(self, call_id: str) -> tuple[str, ...]:
        offer = self._offers.get(call_id)
        return tuple(sorted(offer.agents)) if offer else ()

    def excluded(self, call_id: str) -> tuple[str, ...]:
        return tuple(sorted(self._excluded.get(call_id, ())))

    # -- routing -------------------------------------------------------------------------------

    def route(self, now: float) -> list[CallOfferedToAgent | CallOfferedToAll]:
        decisions: list[CallOfferedToAgent | CallOfferedToAll] = []
        for call in self.waiting():
            config = self._queues[call.queue]
            excluded = self._excluded.get(call.call_id, set())
            qualified = [a for a in self._agents.values() if a.qualifies(call.required_skills)]
            if excluded and all(a.agent_id in excluded for a in qualified):
                # Everyone who could take the call let it ring out: start a new round.
                excluded = set()
                self._excluded.pop(call.call_id, None)
            eligible = [a for a in qualified if a.free() and a.agent_id not in excluded]
            if not eligible:
                continue
            candidates = self._rank(config, eligible, now)
            chosen = [c.agent_id for c in candidates]
            if config.strategy is Strategy.RING_ALL:
                decisions.append(
                    CallOfferedToAll(
                        call=call,
                        at=now,
                        agent_ids=tuple(chosen),
                        strategy=config.strategy,
                        candidates=candidates,
                        excluded=tuple(sorted(excluded)),
                        rule=RULES[config.strategy],
                        ring_timeout_seconds=config.ring_timeout_seconds,
                        wrap_up_seconds=config.wrap_up_seconds,
                    )
                )
            else:
                chosen = chosen[:1]
                self._rr[config.name] = chosen[0]
                decisions.append(
                    CallOfferedToAgent(
                        call=call,
                        at=now,
                        agent_id=chosen[0],
                        strategy=config.strategy,
                        candidates=candidates,
                        excluded=tuple(sorted(excluded)),
                        rule=RULES[config.strategy],
                        ring_timeout_seconds=config.ring_timeout_seconds,
                        wrap_up_seconds=config.wrap_up_seconds,
                    )
                )
            del self._waiting[call.call_id]
            self._offers[call.call_id] = _Offer(call, set(chosen), now)
            for agent_id in chosen:
                self._agents[agent_id].ringing = call.call_id
        return decisions

    def _rank(
        self, config: QueueConfig, eligible: list[_Agent], now: float
    ) -> tuple[Candidate, ...]:
        def idle(a: _Agent) -> float:
            return now - a.available_since if a.available_since is not None else 0.0

        strategy = config.strategy
        if strategy is Strategy.FEWEST_CALLS:
            ordered = sorted(eligible, key=lambda a: (a.calls_today, -idle(a), a.agent_id))
            scores = [float(-a.calls_today) for a in ordered]
        elif strategy is Strategy.ROUND_ROBIN:
            cursor = self._rr.get(config.name)
            # Agents after the cursor first, then wrap around to the start of the id order.
            ordered = sorted(
                eligible, key=lambda a: (cursor is not None and a.agent_id <= cursor, a.agent_id)
            )
            scores = [float(-rank) for rank in range(len(ordered))]
        else:  # longest-idle; ring-all lists its agents the same way
            ordered = sorted(eligible, key=lambda a: (-idle(a), a.calls_today, a.agent_id))
            scores = [idle(a) for a in ordered]
        return tuple(
            Candidate(
                agent_id=a.agent_id,
                score=s,
                idle_seconds=idle(a),
                calls_answered_today=a.calls_today,
            )
            for a, s in zip(ordered, scores, strict=True)
        )

    def answered(self, call_id: str, agent_id: str, now: float) -> OfferAccepted:
        offer = self._offers.get(call_id)
        if offer is None or agent_id not in offer.agents:
            raise RoutingError(f"call {call_id!r} is not ringing on agent {agent_id!r}")
        del self._offers[call_id]
        self._excluded.pop(call_id, None)
        self._announced.pop(call_id, None)
        released = tuple(sorted(offer.agents - {agent_id}))
        for other in released:
            self._agents[other].ringing = None
        agent = self._agents[agent_id]
        agent.ringing = None
        agent.available_since = None
        agent.calls_today += 1
        call = offer.call
        self._estimators[call.queue].record_answer(entered_at=call.entered_at, answered_at=now)
        return OfferAccepted(
            call=call,
            at=now,
            agent_id=agent_id,
            waited_seconds=now - call.entered_at,
            released=released,
        )

    def offer_failed(self, call_id: str, agent_id: str, now: float) -> CallReturnedToQueue | None:
        """Ring-no-answer (or the agent declined): the agent is excluded for this call and is no
        longer available. Returns the call to the queue in its old place, or None while a
        ring-all still rings on other agents."""
        offer = self._offers.get(call_id)
        if offer is None or agent_id not in offer.agents:
            raise RoutingError(f"call {call_id!r} is not ringing on agent {agent_id!r}")
        agent = self._agents[agent_id]
        agent.ringing = None
        agent.available_since = None
        offer.agents.discard(agent_id)
        excluded = self._excluded.setdefault(call_id, set())
        excluded.add(agent_id)
        if offer.agents:
            return None
        del self._offers[call_id]
        self._waiting[call_id] = offer.call
        return CallReturnedToQueue(
            call=offer.call, at=now, agent_id=agent_id, excluded=tuple(sorted(excluded))
        )

    def _release(self, agent: _Agent, now: float) -> CallReturnedToQueue | None:
        call_id = agent.ringing
        assert call_id is not None
        agent.ringing = None
        offer = self._offers[call_id]
        offer.agents.discard(agent.agent_id)
        if offer.agents:
            return None
        del self._offers[call_id]
        self._waiting[call_id] = offer.call
        return CallReturnedToQueue(
            call=offer.call, at=now, agent_id=agent.agent_id, excluded=self.excluded(call_id)
        )

    def overdue_offers(self, now: float) -> list[tuple[str, str]]:
        """(call id, agent id) pairs whose ring timeout has passed: report each to the agent
        state machine as RingTimeout and here as `offer_failed`."""
        overdue: list[tuple[str, str]] = []
        for call_id, offer in sorted(self._offers.items()):
            if now >= offer.offered_at + self._queues[offer.call.queue].ring_timeout_seconds:
                overdue.extend((call_id, agent_id) for agent_id in sorted(offer.agents))
        return overdue

    # -- max wait, callbacks, announcements ----------------------------------------------------

    def expire(self, now: float, *, exempt: Container[str] = ()) -> list[Overflowed]:
        """Calls past their queue's max wait, removed; `exempt` ones never overflow (a booked
        callback: nobody is on the line to send elsewhere, and its place is the point)."""
        out = []
        for call in self.waiting():
            if call.call_id in exempt:
                continue
            config = self._queues[call.queue]
            if config.max_wait_seconds is None or config.overflow is None:
                continue
            if now - call.entered_at >= config.max_wait_seconds:
                self.remove(call.call_id)
                out.append(
                    Overflowed(
                        call=call,
                        at=now,
                        target=config.overflow,
                        waited_seconds=now - call.entered_at,
                        rule=f"max wait {config.max_wait_seconds:g} s in queue {config.name!r}",
                    )
                )
        return out

    def request_callback(self, call_id: str, number: str, now: float) -> CallbackRecord:
        """The caller chose a callback: the call leaves the queue; the record keeps its place."""
        call = self._waiting.get(call_id)
        if call is None:
            raise RoutingError(f"call {call_id!r} is not waiting")
        if not number:
            raise RoutingError("a callback needs a number")
        config = self._queues[call.queue]
        own_skills = {
            name: level
            for name, level in call.required_skills.items()
            if config.required_skills.get(name, -1) < level
        }
        self.remove(call_id)
        return CallbackRecord(
            call_id=call_id,
            queue=call.queue,
            number=number,
            entered_at=call.entered_at,
            priority=call.priority,
            tier_rank=call.tier_rank,
            required_skills=frozen_skills(own_skills, "callback"),
            requested_at=now,
        )

    def requeue_callback(
        self, record: CallbackRecord, now: float, *, call_id: str | None = None
    ) -> WaitingCall:
        """Queue a callback again in its old place (same entered_at and priority); `call_id`
        names the new outbound call when it is not the original one."""
        return self.enqueue(
            call_id or record.call_id,
            record.queue,
            now,
            priority=record.priority,
            tier_rank=record.tier_rank,
            required_skills=record.required_skills,
            entered_at=record.entered_at,
        )

    def position(self, call_id: str) -> int:
        call = self._waiting.get(call_id)
        if call is None:
            raise RoutingError(f"call {call_id!r} is not waiting")
        return 1 + sum(
            1
            for c in self._waiting.values()
            if c.queue == call.queue and c.sort_key < call.sort_key
        )

    def estimated_wait(self, call_id: str) -> float | None:
        call = self._waiting.get(call_id)
        if call is None:
            raise RoutingError(f"call {call_id!r} is not waiting")
        return self._estimators[call.queue].estimate(self.position(call_id))

    def announcements_due(self, now: float) -> list[AnnouncementDue]:
        """Waiting calls whose announcement interval has passed since the last one (or since
        they were queued); each is counted as announced at `now`."""
        due = []
        for queue in sorted(self._queues):
            interval = self._queues[queue].announcement_interval_seconds
            if interval is None:
                continue
            for position, call in enumerate(self.waiting(queue), start=1):
                if now - self._announced.get(call.call_id, now) >= interval:
                    self._announced[call.call_id] = now
                    due.append(
                        AnnouncementDue(
                            call_id=call.call_id,
                            queue=queue,
                            position=position,
                            estimated_wait_seconds=self._estimators[queue].estimate(position),
                        )
                    )
        return due

    def get_timer(self) -> float | None:
        """The next moment something is due: a max wait, a ring timeout or an announcement."""
        deadlines = []
        for call in self._waiting.values():
            config = self._queues[call.queue]
            if config.max_wait_seconds is not None:
                deadlines.append(call.entered_at + config.max_wait_seconds)
            if config.announcement_interval_seconds is not None and call.call_id in self._announced:
                deadlines.append(
                    self._announced[call.call_id] + config.announcement_interval_seconds
                )
        for offer in self._offers.values():
            deadlines.append(offer.offered_at + self._queues[offer.call.queue].ring_timeout_seconds)
        return min(deadlines, default=None)

    def _agent(self, agent_id: str) -> _Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise RoutingError(f"unknown agent {agent_id!r}") from None
