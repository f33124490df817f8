"""The ACD router: strategies, skills, priority by tier, ring-no-answer, overflow, callbacks,
announcements, and Hypothesis properties (one offer per call, one call per agent, nothing
left waiting beside a free eligible agent, a total deterministic order)."""

from __future__ import annotations

import json
import random
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from callcenter.services.acd.queue import (
    CallbackRecord,
    QueueConfig,
    QueueTarget,
    RoutingError,
    Strategy,
    VoicemailTarget,
    WaitEstimator,
    make_waiting_call,
)
from callcenter.services.acd.routing import (
    CallOfferedToAgent,
    CallOfferedToAll,
    CallReturnedToQueue,
    Router,
)


def router_with(strategy: Strategy, agents: dict[str, float], **config: object) -> Router:
    """A router with queue 'q' and agents available since the given times, no skills needed."""
    router = Router([QueueConfig(name="q", strategy=strategy, **config)])  # type: ignore[arg-type]
    for agent_id, since in agents.items():
        router.set_agent(agent_id, {})
        router.agent_available(agent_id, since)
    return router


def offered(router: Router, now: float) -> dict[str, str]:
    out = {}
    for d in router.route(now):
        assert isinstance(d, CallOfferedToAgent)
        out[d.call.call_id] = d.agent_id
    return out


# -- strategies ------------------------------------------------------------------------------


def test_longest_idle_picks_the_agent_available_longest_and_says_why() -> None:
    router = router_with(Strategy.LONGEST_IDLE, {"a": 50.0, "b": 10.0, "c": 30.0})
    router.enqueue("call1", "q", 100.0)
    [decision] = router.route(100.0)
    assert isinstance(decision, CallOfferedToAgent)
    assert decision.agent_id == "b"
    assert decision.strategy is Strategy.LONGEST_IDLE
    assert [(c.agent_id, c.score) for c in decision.candidates] == [
        ("b", 90.0),
        ("c", 70.0),
        ("a", 50.0),
    ]
    assert "longest-idle" in decision.rule
    assert decision.ring_timeout_seconds == 20.0
    with pytest.raises(FrozenInstanceError):
        decision.agent_id = "a"  # type: ignore[misc]


def test_round_robin_rotates_through_agents_in_id_order() -> None:
    router = router_with(Strategy.ROUND_ROBIN, {"a": 0.0, "b": 0.0, "c": 0.0})
    picks = []
    for n in range(5):
        router.enqueue(f"call{n}", "q", float(n))
        [(call_id, agent_id)] = offered(router, float(n)).items()
        picks.append(agent_id)
        router.answered(call_id, agent_id, float(n))
        router.agent_available(agent_id, float(n))
    assert picks == ["a", "b", "c", "a", "b"]


def test_round_robin_skips_a_busy_agent_and_continues_after_the_last_pick() -> None:
    router = router_with(Strategy.ROUND_ROBIN, {"a": 0.0, "b": 0.0, "c": 0.0})
    router.enqueue("call1", "q", 1.0)
    assert offered(router, 1.0) == {"call1": "a"}
    router.agent_unavailable("b")
    router.enqueue("call2", "q", 2.0)
    assert offered(router, 2.0) == {"call2": "c"}


def test_fewest_calls_picks_the_agent_with_fewest_answers_today() -> None:
    router = Router([QueueConfig(name="q", strategy=Strategy.FEWEST_CALLS)])
    for agent_id, calls in {"a": 5, "b": 2, "c": 2}.items():
        router.set_agent(agent_id, {}, calls_answered_today=calls)
    router.agent_available("a", 0.0)
    router.agent_available("b", 20.0)
    router.agent_available("c", 10.0)  # ties with b on calls, idle longer
    router.enqueue("call1", "q", 30.0)
    assert offered(router, 30.0) == {"call1": "c"}
    router.answered("call1", "c", 31.0)
    assert router.agent("c").calls_answered_today == 3
    router.reset_daily_counts()
    assert router.agent("a").calls_answered_today == 0


def test_ring_all_rings_every_eligible_agent_and_the_first_answer_releases_the_rest() -> None:
    router = router_with(
        Strategy.RING_ALL, {"a": 0.0, "b": 5.0, "c": 1.0}, required_skills={"billing": 1}
    )
    router.set_agent("a", {"billing": 2})
    router.set_agent("b", {"billing": 1})
    router.set_agent("c", {"sales": 3})  # no billing: not rung
    router.enqueue("call1", "q", 10.0)
    [decision] = router.route(10.0)
    assert isinstance(decision, CallOfferedToAll)
    assert decision.agent_ids == ("a", "b")
    accepted = router.answered("call1", "b", 12.0)
    assert accepted.released == ("a",)
    assert accepted.waited_seconds == 2.0
    # `a` was only rung: still available, still idle since 0.
    assert router.agent("a").available_since == 0.0
    assert router.agent("a").ringing_call is None
    assert router.agent("b").available_since is None


def test_ring_all_call_returns_to_the_queue_only_when_every_agent_rang_out() -> None:
    router = router_with(Strategy.RING_ALL, {"a": 0.0, "b": 0.0})
    router.enqueue("call1", "q", 1.0)
    router.route(1.0)
    assert router.offer_failed("call1", "a", 21.0) is None
    returned = router.offer_failed("call1", "b", 21.0)
    assert isinstance(returned, CallReturnedToQueue)
    assert returned.excluded == ("a", "b")
    assert [c.call_id for c in router.waiting()] == ["call1"]


# -- skills ----------------------------------------------------------------------------------


def test_skills_and_levels_filter_agents() -> None:
    router = Router([QueueConfig(name="q", required_skills={"english": 1})])
    router.set_agent("novice", {"english": 3, "billing": 1})
    router.set_agent("no-billing", {"english": 5})
    router.set_agent("expert", {"english": 1, "billing": 4})
    router.set_agent("no-english", {"billing": 9})
    for agent_id in ("novice", "no-billing", "expert", "no-english"):
        router.agent_available(agent_id, 0.0)
    router.enqueue("call1", "q", 1.0, required_skills={"billing": 3})
    [decision] = router.route(1.0)
    assert isinstance(decision, CallOfferedToAgent)
    assert decision.agent_id == "expert"
    assert [c.agent_id for c in decision.candidates] == ["expert"]


def test_a_call_nobody_can_take_does_not_hold_up_the_calls_behind_it() -> None:
    router = router_with(Strategy.LONGEST_IDLE, {"a": 0.0})
    router.enqueue("needs-french", "q", 1.0, priority=5, required_skills={"french": 1})
    router.enqueue("plain", "q", 2.0)
    assert offered(router, 3.0) == {"plain": "a"}
    assert [c.call_id for c in router.waiting()] == ["needs-french"]


# -- priority --------------------------------------------------------------------------------


def test_vip_caller_overtakes_a_regular_caller_who_waited_longer() -> None:
    router = Router([QueueConfig(name="q", tier_weight=10)])
    regular = router.enqueue("regular", "q", 0.0, priority=1, tier_rank=0)
    vip = router.enqueue("vip", "q", 60.0, priority=1, tier_rank=3)
    assert (regular.effective_priority, vip.effective_priority) == (1, 31)
    assert [c.call_id for c in router.waiting("q")] == ["vip", "regular"]
    assert router.position("vip") == 1
    assert router.position("regular") == 2
    router.set_agent("a", {})
    router.agent_available("a", 0.0)
    assert offered(router, 61.0) == {"vip": "a"}


def test_same_priority_is_first_come_first_served() -> None:
    router = Router([QueueConfig(name="q")])
    for call_id, at in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
        router.enqueue(call_id, "q", at, tier_rank=1)
    assert [c.call_id for c in router.waiting()] == ["a", "b", "c"]


# -- ring-no-answer --------------------------------------------------------------------------


def test_ring_no_answer_keeps_the_callers_place_and_skips_that_agent() -> None:
    router = router_with(Strategy.LONGEST_IDLE, {"slow": 0.0})
    router.enqueue("first", "q", 1.0)
    assert offered(router, 1.0) == {"first": "slow"}
    router.enqueue("second", "q", 2.0)
    router.enqueue("third", "q", 3.0)
    assert router.overdue_offers(20.0) == []
    assert router.overdue_offers(21.0) == [("first", "slow")]
    returned = router.offer_failed("first", "slow", 21.0)
    assert returned is not None and returned.excluded == ("slow",)
    assert [c.call_id for c in router.waiting()] == ["first", "second", "third"]
    assert router.agent("slow").available_since is None  # away('missed') in the state machine
    # The agent comes back: it gets the next call, not the one it let ring out.
    router.agent_available("slow", 30.0)
    router.set_agent("next", {})
    assert offered(router, 31.0) == {"second": "slow"}
    router.agent_available("next", 31.0)
    [decision] = router.route(32.0)
    assert isinstance(decision, CallOfferedToAgent)
    assert (decision.call.call_id, decision.agent_id, decision.excluded) == (
        "first",
        "next",
        ("slow",),
    )


def test_when_every_skilled_agent_rang_out_a_new_round_starts() -> None:
    router = router_with(Strategy.LONGEST_IDLE, {"a": 0.0, "b": 1.0})
    router.enqueue("call1", "q", 2.0)
    assert offered(router, 2.0) == {"call1": "a"}
    router.offer_failed("call1", "a", 22.0)
    router.agent_available("a", 30.0)
    assert offered(router, 30.0) == {"call1": "b"}
    router.offer_failed("call1", "b", 50.0)
    router.agent_available("b", 60.0)
    [decision] = router.route(60.0)
    assert isinstance(decision, CallOfferedToAgent)
    assert (decision.agent_id, decision.excluded) == ("a", ())


def test_caller_hanging_up_while_ringing_frees_the_agent() -> None:
    router = router_with(Strategy.LONGEST_IDLE, {"a": 0.0})
    router.enqueue("call1", "q", 1.0)
    router.route(1.0)
    assert router.remove("call1") == ("a",)
    assert router.agent("a").ringing_call is None
    assert router.agent("a").available_since == 0.0
    assert router.waiting() == ()


# -- overflow --------------------------------------------------------------------------------


def test_overflow_after_max_wait() -> None:
    router = Router(
        [
            QueueConfig(name="q", max_wait_seconds=60.0, overflow=VoicemailTarget(box="sales")),
            QueueConfig(name="r", max_wait_seconds=30.0, overflow=QueueTarget(queue="q")),
        ]
    )
    router.enqueue("old", "q", 0.0)
    router.enqueue("young", "q", 10.0)
    router.enqueue("other", "r", 40.0)
    assert router.get_timer() == 30.0  # first announcement of "old"
    assert router.expire(59.0) == []
    [overflow] = router.expire(60.0)
    assert overflow.call.call_id == "old"
    assert overflow.target == VoicemailTarget(box="sales")
    assert overflow.waited_seconds == 60.0
    assert "max wait" in overflow.rule
    assert [c.call_id for c in router.waiting()] == ["young", "other"]
    overflows = router.expire(70.0)
    assert [(o.call.call_id, o.target) for o in overflows] == [
        ("young", VoicemailTarget(box="sales")),
        ("other", QueueTarget(queue="q")),
    ]
    assert router.waiting() == ()


def test_a_ringing_call_does_not_overflow() -> None:
    router = router_with(
        Strategy.LONGEST_IDLE,
        {"a": 0.0},
        max_wait_seconds=10.0,
        overflow=VoicemailTarget(box="x"),
    )
    router.enqueue("call1", "q", 0.0)
    router.route(9.0)
    assert router.expire(15.0) == []


def test_an_exempt_call_never_overflows() -> None:
    """A booked callback keeps its old entered_at: past max wait, it must not bounce."""
    router = Router(
        [QueueConfig(name="q", max_wait_seconds=10.0, overflow=VoicemailTarget(box="x"))]
    )
    router.enqueue("callback:1", "q", 100.0, entered_at=0.0)
    router.enqueue("live", "q", 100.0, entered_at=0.0)
    [overflow] = router.expire(100.0, exempt={"callback:1"})
    assert overflow.call.call_id == "live"
    assert [c.call_id for c in router.waiting()] == ["callback:1"]


def test_queue_config_is_checked() -> None:
    with pytest.raises(RoutingError):
        QueueConfig(name="q", max_wait_seconds=10.0)  # no overflow target
    with pytest.raises(RoutingError):
        QueueConfig(name="q", max_wait_seconds=10.0, overflow=QueueTarget(queue="q"))
    with pytest.raises(RoutingError):
        QueueConfig(name="q", required_skills={"x": -1})
    with pytest.raises(RoutingError):
        QueueConfig(name="q", ring_timeout_seconds=0.0)
    with pytest.raises(RoutingError):
        Router([QueueConfig(name="q")]).enqueue("c", "nope", 0.0)


# -- callbacks -------------------------------------------------------------------------------


def test_callback_keeps_the_callers_place_on_requeue() -> None:
    router = Router([QueueConfig(name="q", required_skills={"english": 1})])
    router.enqueue("a", "q", 0.0)
    router.enqueue("b", "q", 10.0, priority=2, tier_rank=1, required_skills={"billing": 2})
    router.enqueue("c", "q", 20.0, priority=2)
    record = router.request_callback("b", "+15551234567", 30.0)
    assert [c.call_id for c in router.waiting()] == ["c", "a"]
    # Stored as plain data, read back after a restart, re-queued as a new outbound call.
    stored = json.loads(json.dumps(record.as_dict()))
    assert CallbackRecord.from_dict(stored) == record
    router.enqueue("d", "q", 40.0, priority=2, tier_rank=1)
    requeued = router.requeue_callback(CallbackRecord.from_dict(stored), 50.0, call_id="b2")
    assert requeued.entered_at == 10.0
    assert dict(requeued.required_skills) == {"billing": 2, "english": 1}
    assert [c.call_id for c in router.waiting()] == ["b2", "d", "c", "a"]


# -- announcements and estimates -------------------------------------------------------------


def test_announcements_give_position_and_an_estimate_from_recent_answers() -> None:
    router = router_with(Strategy.LONGEST_IDLE, {}, announcement_interval_seconds=30.0)
    router.set_agent("a", {})
    # Two answers 40 s apart, each caller having waited longer than that: 40 s per place.
    for n, at in enumerate((0.0, 40.0)):
        router.enqueue(f"old{n}", "q", at - 50.0)
        router.agent_available("a", at)
        router.route(at)
        router.answered(f"old{n}", "a", at)
    router.enqueue("x", "q", 100.0)
    router.enqueue("y", "q", 110.0)
    assert router.announcements_due(120.0) == []
    [due] = router.announcements_due(130.0)
    assert (due.call_id, due.position, due.estimated_wait_seconds) == ("x", 1, 40.0)
    [due] = router.announcements_due(140.0)
    assert (due.call_id, due.position, due.estimated_wait_seconds) == ("y", 2, 80.0)
    assert router.estimated_wait("y") == 80.0


def test_wait_estimate_ignores_quiet_spells() -> None:
    estimator = WaitEstimator()
    assert estimator.estimate(3) is None
    estimator.record_answer(entered_at=0.0, answered_at=10.0)
    estimator.record_answer(entered_at=990.0, answered_at=1000.0)  # an hour of nobody waiting
    assert estimator.estimate(1) == 10.0


# -- properties ------------------------------------------------------------------------------

SKILLS = ("english", "billing", "french")
skill_maps = st.dictionaries(st.sampled_from(SKILLS), st.integers(0, 3), max_size=3)


@given(
    calls=st.lists(
        st.tuples(
            st.integers(0, 5),
            st.integers(0, 3),
            st.floats(0, 100, allow_nan=False).map(lambda x: round(x)),
        ),
        max_size=30,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_order_is_total_and_does_not_depend_on_insertion_order(
    calls: list[tuple[int, int, float]], seed: int
) -> None:
    config = QueueConfig(name="q", tier_weight=2)
    waiting = [
        make_waiting_call(config, call_id=f"c{n}", entered_at=at, priority=p, tier_rank=t)
        for n, (p, t, at) in enumerate(calls)
    ]
    shuffled = waiting[:]
    random.Random(seed).shuffle(shuffled)
    a = Router([config])
    b = Router([config])
    for call in waiting:
        a.enqueue(
            call.call_id, "q", call.entered_at, priority=call.priority, tier_rank=call.tier_rank
        )
    for call in shuffled:
        b.enqueue(
            call.call_id, "q", call.entered_at, priority=call.priority, tier_rank=call.tier_rank
        )
    assert a.waiting() == b.waiting()
    keys = [c.sort_key for c in a.waiting()]
    assert len(set(keys)) == len(keys)  # total: no two calls tie
    for before, after in zip(a.waiting(), a.waiting()[1:], strict=False):
        assert before.effective_priority >= after.effective_priority
        if before.effective_priority == after.effective_priority:
            assert before.entered_at <= after.entered_at
    assert [a.position(c.call_id) for c in a.waiting()] == list(range(1, len(waiting) + 1))


@settings(deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(Strategy), st.integers(0, 3), st.integers(0, 3), skill_maps),
        max_size=20,
    ),
    rings_out=st.lists(st.booleans(), max_size=40),
)
def test_every_waiting_call_is_routed_while_an_eligible_agent_is_available(
    calls: list[tuple[Strategy, int, int, dict[str, int]]], rings_out: list[bool]
) -> None:
    router = Router([QueueConfig(name=s.value, strategy=s) for s in Strategy])
    for agent_id in ("x", "y"):
        router.set_agent(agent_id, dict.fromkeys(SKILLS, 3))
        router.agent_available(agent_id, 0.0)
    for n, (strategy, priority, tier, skills) in enumerate(calls):
        router.enqueue(
            f"c{n}",
            strategy.value,
            float(n),
            priority=priority,
            tier_rank=tier,
            required_skills=skills,
        )
    answered: list[str] = []
    failures = iter(rings_out)
    now = 100.0
    while router.waiting():
        now += 1.0
        decisions = router.route(now)
        assert decisions, "a waiting call had eligible agents but was not routed"
        for decision in decisions:
            agents = (
                decision.agent_ids
                if isinstance(decision, CallOfferedToAll)
                else (decision.agent_id,)
            )
            # Each agent may let it ring out once (then it is excluded for this call).
            if next(failures, False) and len(router.excluded(decision.call.call_id)) == 0:
                for agent_id in agents:
                    router.offer_failed(decision.call.call_id, agent_id, now)
                for agent_id in agents:
                    router.agent_available(agent_id, now)
                continue
            router.answered(decision.call.call_id, agents[0], now)
            answered.append(decision.call.call_id)
            for agent_id in ("x", "y"):
                router.agent_available(agent_id, now)
    assert sorted(answered) == sorted(f"c{n}" for n in range(len(calls)))


class RouterStorm(RuleBasedStateMachine):
    """Random calls, agents, answers, ring-outs and hang-ups against every strategy."""

    def __init__(self) -> None:
        super().__init__()
        self.router = Router(
            [
                QueueConfig(name=s.value, strategy=s, required_skills={"english": 1})
                for s in Strategy
            ]
        )
        self.now = 0.0
        self.calls = 0
        self.agents: list[str] = []

    def _tick(self) -> None:
        self.now += 1.0

    @rule(skills=skill_maps)
    def add_agent(self, skills: dict[str, int]) -> None:
        agent_id = f"agent{len(self.agents)}"
        self.router.set_agent(agent_id, skills)
        self.agents.append(agent_id)

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def agent_available(self, data: st.DataObject) -> None:
        self._tick()
        self.router.agent_available(data.draw(st.sampled_from(self.agents)), self.now)

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def agent_unavailable(self, data: st.DataObject) -> None:
        self.router.agent_unavailable(data.draw(st.sampled_from(self.agents)))

    @rule(
        strategy=st.sampled_from(Strategy),
        priority=st.integers(0, 3),
        tier=st.integers(0, 3),
        skills=skill_maps,
    )
    def enqueue(self, strategy: Strategy, priority: int, tier: int, skills: dict[str, int]) -> None:
        self._tick()
        self.calls += 1
        self.router.enqueue(
            f"call{self.calls}",
            strategy.value,
            self.now,
            priority=priority,
            tier_rank=tier,
            required_skills=skills,
        )

    @rule()
    def route(self) -> None:
        self._tick()
        for decision in self.router.route(self.now):
            agents = (
                decision.agent_ids
                if isinstance(decision, CallOfferedToAll)
                else (decision.agent_id,)
            )
            assert agents and [c.agent_id for c in decision.candidates][: len(agents)] == list(
                agents
            )
            for agent_id in agents:
                assert agent_id not in decision.excluded
        self.assert_maximal()

    def _ringing(self) -> list[tuple[str, str]]:
        return [
            (call_id, agent_id)
            for call_id in sorted(self._offered_ids())
            for agent_id in self.router.ringing_on(call_id)
        ]

    def _offered_ids(self) -> set[str]:
        return {
            view.ringing_call
            for view in (self.router.agent(a) for a in self.agents)
            if view.ringing_call is not None
        }

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        ringing = self._ringing()
        if ringing:
            self._tick()
            call_id, agent_id = data.draw(st.sampled_from(ringing))
            self.router.answered(call_id, agent_id, self.now)
            assert not self.router.is_offered(call_id)

    @rule(data=st.data())
    def ring_out(self, data: st.DataObject) -> None:
        ringing = self._ringing()
        if ringing:
            self._tick()
            call_id, agent_id = data.draw(st.sampled_from(ringing))
            self.router.offer_failed(call_id, agent_id, self.now)
            assert agent_id in self.router.excluded(call_id)

    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        calls = sorted(self._offered_ids() | {c.call_id for c in self.router.waiting()})
        if calls:
            self.router.remove(data.draw(st.sampled_from(calls)))

    def assert_maximal(self) -> None:
        """Every waiting call has no free eligible agent: it would have been routed."""
        for call in self.router.waiting():
            excluded = set(self.router.excluded(call.call_id))
            for agent_id in self.agents:
                view = self.router.agent(agent_id)
                free = view.available_since is not None and view.ringing_call is None
                qualifies = all(
                    view.skills.get(s, -1) >= lvl for s, lvl in call.required_skills.items()
                )
                assert not (free and qualifies and agent_id not in excluded), (call, agent_id)

    @invariant()
    def one_call_per_agent_and_one_agent_per_call(self) -> None:
        seen: dict[str, str] = {}
        for call_id in self._offered_ids():
            agents = self.router.ringing_on(call_id)
            assert agents
            queue = self.router_call_queue(call_id)
            if queue != Strategy.RING_ALL.value:
                assert len(agents) == 1, (call_id, agents)
            for agent_id in agents:
                assert agent_id not in seen
                seen[agent_id] = call_id
                assert self.router.agent(agent_id).ringing_call == call_id
        waiting = {c.call_id for c in self.router.waiting()}
        assert not waiting & self._offered_ids()

    def router_call_queue(self, call_id: str) -> str:
        call = self.router.offered_call(call_id)
        assert call is not None
        return call.queue


TestRouterStorm = RouterStorm.TestCase
TestRouterStorm.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
