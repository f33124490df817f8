"""The agent state machine: a complete table, the key paths, and a storm that never sticks.

The storm drives random events against a model of the real world (which calls ring or are
answered on the agent's phone, whether a phone is registered) and checks after every step
that the agent's state agrees with that world, reconciling where the real system would
(after an engine restart, and periodically after the engine lost a report).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from callcenter.services.acd import events as ev
from callcenter.services.acd.agent_state import (
    MAX_WRAP_UP_SECONDS,
    TABLE,
    Agent,
    AgentState,
    Step,
)
from callcenter.services.acd.inputs import (
    AgentHangup,
    AgentInput,
    Answer,
    CallerHangup,
    EngineRestart,
    GoAvailable,
    GoAway,
    InputKind,
    Login,
    Logout,
    NetworkLoss,
    Offer,
    OfferWithdrawal,
    PhoneRegistration,
    PhoneUnregistration,
    RingTimeout,
    Tick,
    WrapUpEnd,
)

S = AgentState
WRAP = 30.0


def agent_in(state: AgentState, *, registered: bool = True, wrap: float = WRAP) -> Agent:
    """An agent driven into `state` through the table only (on call "c1" where it has one)."""
    agent = Agent("a1", wrap_up_seconds=wrap, registered=registered)
    if state is S.LOGGED_OUT:
        return agent
    agent.handle(PhoneRegistration(), 0.0)
    agent.handle(Login(), 0.0)
    if state is S.AWAY:
        agent.handle(GoAway(reason="break"), 0.0)
    if state in (S.RESERVED, S.ON_CALL, S.WRAP_UP):
        agent.handle(Offer(call_id="c1"), 0.0)
    if state in (S.ON_CALL, S.WRAP_UP):
        agent.handle(Answer(call_id="c1"), 0.0)
    if state is S.WRAP_UP:
        agent.handle(CallerHangup(call_id="c1"), 0.0)
    if not registered:
        agent.handle(PhoneUnregistration(), 0.0)
    assert agent.state is state
    return agent


def kinds(events: list[ev.AgentEvent]) -> tuple[type, ...]:
    return tuple(type(e) for e in events)


def state_of(agent: Agent) -> AgentState:
    """The state, read through a call so that mypy does not keep an earlier narrowing."""
    return agent.state


CALL_IDS = st.sampled_from(["c1", "c2"])
INPUTS: st.SearchStrategy[AgentInput] = st.one_of(
    st.just(Login()),
    st.just(Logout()),
    st.builds(GoAway, reason=st.sampled_from(["break", "lunch", "offline", "", "x" * 65])),
    st.just(GoAvailable()),
    st.builds(Offer, call_id=CALL_IDS, wrap_up_seconds=st.sampled_from([None, 0.0, 5.0, -1.0])),
    st.builds(Answer, call_id=CALL_IDS),
    st.builds(CallerHangup, call_id=CALL_IDS),
    st.builds(AgentHangup, call_id=CALL_IDS),
    st.builds(RingTimeout, call_id=CALL_IDS),
    st.builds(OfferWithdrawal, call_id=CALL_IDS),
    st.just(WrapUpEnd()),
    st.just(PhoneUnregistration()),
    st.just(PhoneRegistration()),
    st.just(NetworkLoss()),
    st.builds(EngineRestart, live_calls=st.frozensets(CALL_IDS)),
    st.just(Tick()),
)


# The table.


def test_every_state_and_input_has_an_explicit_entry() -> None:
    assert set(TABLE) == {(s, i) for s in AgentState for i in InputKind}
    assert len(TABLE) == len(AgentState) * len(InputKind)


def test_every_step_is_used_and_targets_are_states() -> None:
    assert {r.step for r in TABLE.values()} == set(Step)
    for (state, _), r in TABLE.items():
        assert r.targets
        if r.step in (Step.REFUSE, Step.IGNORE, Step.ABSORB):
            assert r.targets == {state}


def test_every_state_is_reachable_and_none_is_a_trap() -> None:
    def closure(start: AgentState) -> set[AgentState]:
        seen, frontier = {start}, [start]
        while frontier:
            current = frontier.pop()
            for (source, _), r in TABLE.items():
                if source is current:
                    for target in r.targets - seen:
                        seen.add(target)
                        frontier.append(target)
        return seen

    assert closure(S.LOGGED_OUT) == set(AgentState)
    for state in AgentState:
        assert {S.AVAILABLE, S.LOGGED_OUT} <= closure(state), state


@settings(max_examples=500)
@given(
    state=st.sampled_from(list(AgentState)),
    registered=st.booleans(),
    event=INPUTS,
    now=st.sampled_from([0.0, 10.0, 1000.0]),
)
def test_every_pair_moves_only_to_a_declared_target(
    state: AgentState, registered: bool, event: AgentInput, now: float
) -> None:
    # Available without a registered phone is not a state the table can reach.
    agent = agent_in(state, registered=registered or state is S.AVAILABLE)
    before = copy.copy(agent)
    out = agent.handle(event, now)
    late = state is S.WRAP_UP and now >= WRAP  # any input first ends an overdue wrap-up
    if not late:
        assert agent.state in TABLE[(state, event.kind)].targets
    if any(isinstance(e, ev.InputRefused | ev.InputIgnored) for e in out) and not late:
        assert len(out) == 1
        assert (agent.state, agent.call_id, agent.away_reason) == (
            before.state,
            before.call_id,
            before.away_reason,
        )
    for e in out:
        assert e.agent_id == "a1" and e.at == now
        with pytest.raises(FrozenInstanceError):
            e.at = 1.0  # type: ignore[misc]


# Key paths.


def test_ring_no_answer_goes_away_missed_and_stays_until_the_agent_returns() -> None:
    agent = agent_in(S.RESERVED)
    out = agent.handle(RingTimeout(call_id="c1"), 20.0)
    assert kinds(out) == (ev.OfferMissed, ev.AgentWentAway)
    assert (agent.state, agent.away_reason, agent.call_id) == (S.AWAY, "missed", None)
    agent.handle(PhoneRegistration(), 21.0)  # not 'offline': registering changes nothing
    assert agent.away_reason == "missed"
    assert kinds(agent.handle(GoAvailable(), 22.0)) == (ev.AgentBecameAvailable,)


def test_declining_counts_as_missed_and_late_ring_timer_is_ignored() -> None:
    agent = agent_in(S.RESERVED)
    out = agent.handle(AgentHangup(call_id="c1"), 5.0)
    assert isinstance(out[0], ev.OfferMissed) and out[0].cause == "agent declined"
    assert agent.away_reason == "missed"
    agent = agent_in(S.ON_CALL)
    assert kinds(agent.handle(RingTimeout(call_id="c1"), 5.0)) == (ev.InputIgnored,)
    assert agent.state is S.ON_CALL


def test_caller_hangs_up_first_then_wrap_up_then_available_at_the_deadline() -> None:
    agent = agent_in(S.ON_CALL)
    out = agent.handle(CallerHangup(call_id="c1"), 100.0)
    assert kinds(out) == (ev.CallEnded, ev.WrapUpStarted)
    assert isinstance(out[0], ev.CallEnded) and out[0].by == "caller"
    assert agent.state is S.WRAP_UP and agent.get_timer() == 100.0 + WRAP
    assert agent.handle(Tick(), 129.999) == []
    out = agent.handle(Tick(), 130.0)
    assert kinds(out) == (ev.WrapUpEnded, ev.AgentBecameAvailable)
    assert state_of(agent) is S.AVAILABLE and agent.get_timer() is None


def test_queue_wrap_up_overrides_the_agent_default_and_zero_skips_it() -> None:
    agent = agent_in(S.AVAILABLE)
    agent.handle(Offer(call_id="q", wrap_up_seconds=0.0), 0.0)
    agent.handle(Answer(call_id="q"), 1.0)
    out = agent.handle(AgentHangup(call_id="q"), 2.0)
    assert kinds(out) == (ev.CallEnded, ev.AgentBecameAvailable)
    bad = agent.handle(Offer(call_id="r", wrap_up_seconds=MAX_WRAP_UP_SECONDS + 1), 3.0)
    assert kinds(bad) == (ev.InputRefused,) and agent.state is S.AVAILABLE


def test_any_input_ends_an_overdue_wrap_up_even_without_a_tick() -> None:
    agent = agent_in(S.WRAP_UP)
    out = agent.handle(Offer(call_id="c2"), 500.0)
    assert kinds(out) == (ev.WrapUpEnded, ev.AgentBecameAvailable, ev.CallOffered)
    assert agent.state is S.RESERVED


def test_logout_during_a_call_is_deferred_until_wrap_up_ends() -> None:
    agent = agent_in(S.ON_CALL)
    assert kinds(agent.handle(Logout(), 1.0)) == (ev.LogoutDeferred,)
    assert agent.state is S.ON_CALL
    agent.handle(AgentHangup(call_id="c1"), 2.0)
    assert state_of(agent) is S.WRAP_UP
    out = agent.handle(WrapUpEnd(), 3.0)
    assert kinds(out) == (ev.WrapUpEnded, ev.AgentLoggedOut)
    assert state_of(agent) is S.LOGGED_OUT


def test_go_available_cancels_a_deferred_logout_or_away() -> None:
    agent = agent_in(S.RESERVED)
    agent.handle(GoAway(reason="lunch"), 1.0)
    assert kinds(agent.handle(GoAvailable(), 2.0)) == (ev.PendingChangeCancelled,)
    assert kinds(agent.handle(GoAvailable(), 2.0)) == (ev.InputRefused,)
    agent.handle(GoAway(reason="lunch"), 3.0)
    agent.handle(OfferWithdrawal(call_id="c1"), 4.0)
    assert (agent.state, agent.away_reason) == (S.AWAY, "lunch")


def test_away_reasons_are_bounded_free_text_and_system_ones_are_refused() -> None:
    agent = agent_in(S.AVAILABLE)
    for reason in ("", "  ", "x" * 65, "bad\nline", "offline", "missed"):
        assert kinds(agent.handle(GoAway(reason=reason), 0.0)) == (ev.InputRefused,)
    agent.handle(GoAway(reason="training with Sam"), 0.0)
    assert agent.away_reason == "training with Sam"


def test_phone_unregisters_while_available_goes_offline_and_comes_back() -> None:
    agent = agent_in(S.AVAILABLE)
    out = agent.handle(PhoneUnregistration(), 1.0)
    assert kinds(out) == (ev.AgentWentAway,) and agent.away_reason == "offline"
    assert kinds(agent.handle(GoAvailable(), 2.0)) == (ev.InputRefused,)
    assert kinds(agent.handle(PhoneRegistration(), 3.0)) == (ev.AgentBecameAvailable,)
    # A reason the agent chose survives unregister/register.
    agent.handle(GoAway(reason="break"), 4.0)
    agent.handle(PhoneUnregistration(), 5.0)
    agent.handle(PhoneRegistration(), 6.0)
    assert (agent.state, agent.away_reason) == (S.AWAY, "break")


def test_unregistering_keeps_the_call_and_goes_offline_after_it() -> None:
    agent = agent_in(S.ON_CALL)
    assert agent.handle(PhoneUnregistration(), 1.0) == []
    assert agent.state is S.ON_CALL
    agent.handle(CallerHangup(call_id="c1"), 2.0)
    agent.handle(Tick(), 2.0 + WRAP)
    assert (agent.state, agent.away_reason) == (S.AWAY, "offline")


def test_login_without_a_phone_is_offline_until_it_registers() -> None:
    agent = Agent("a1", wrap_up_seconds=WRAP)
    agent.handle(Login(), 0.0)
    assert (agent.state, agent.away_reason) == (S.AWAY, "offline")
    agent.handle(PhoneRegistration(), 1.0)
    assert agent.state is S.AVAILABLE


def test_network_loss_ends_the_offer_or_the_call() -> None:
    agent = agent_in(S.RESERVED)
    out = agent.handle(NetworkLoss(), 1.0)
    assert kinds(out) == (ev.OfferLost, ev.AgentWentAway)
    assert agent.away_reason == "offline"
    agent = agent_in(S.ON_CALL)
    out = agent.handle(NetworkLoss(), 1.0)
    assert kinds(out) == (ev.CallEnded, ev.WrapUpStarted)


def test_engine_restart_keeps_live_calls_and_drops_the_rest() -> None:
    agent = agent_in(S.ON_CALL)
    assert agent.handle(EngineRestart(live_calls=frozenset({"c1"})), 1.0) == []
    out = agent.handle(EngineRestart(live_calls=frozenset({"c9"})), 2.0)
    assert kinds(out) == (ev.CallEnded, ev.WrapUpStarted)


def test_reports_about_other_calls_are_ignored() -> None:
    agent = agent_in(S.RESERVED)
    out = agent.handle(Answer(call_id="other"), 1.0)
    assert kinds(out) == (ev.InputIgnored,) and agent.state is S.RESERVED


def test_reconcile_fixes_every_kind_of_stale_state() -> None:
    none: frozenset[str] = frozenset()
    agent = agent_in(S.ON_CALL)  # the BYE report was lost
    out = agent.reconcile(none, True, 10.0)
    assert kinds(out) == (ev.CallEnded, ev.WrapUpStarted)
    agent = agent_in(S.RESERVED)  # the ringing ended unreported
    assert kinds(agent.reconcile(none, True, 10.0)) == (ev.OfferLost, ev.AgentBecameAvailable)
    agent = agent_in(S.RESERVED)  # the answer report was lost
    agent.reconcile(frozenset({"c1"}), True, 10.0)
    assert (agent.state, agent.call_id) == (S.ON_CALL, "c1")
    agent = agent_in(S.AVAILABLE)  # the unregistration was lost
    agent.reconcile(none, False, 10.0)
    assert (agent.state, agent.away_reason) == (S.AWAY, "offline")
    agent = agent_in(S.AWAY)  # an away agent with a real call: on call, then back to away
    agent.reconcile(frozenset({"x"}), True, 10.0)
    assert (agent.state, agent.call_id) == (S.ON_CALL, "x")
    agent.handle(CallerHangup(call_id="x"), 11.0)
    agent.handle(WrapUpEnd(), 12.0)
    assert (agent.state, agent.away_reason) == (S.AWAY, "break")
    agent = agent_in(S.AVAILABLE)  # an unknown call rings: never available with a live call
    agent.reconcile(none, True, 10.0, ringing=frozenset({"y"}))
    assert (agent.state, agent.call_id) == (S.RESERVED, "y")
    agent = agent_in(S.WRAP_UP)  # wrap-up overdue
    assert kinds(agent.reconcile(none, True, 1000.0))[-1] is ev.AgentBecameAvailable
    agent = agent_in(S.LOGGED_OUT)
    assert agent.reconcile(frozenset({"z"}), True, 1.0) == []


def test_bad_configuration_raises() -> None:
    from callcenter.services.acd.agent_state import AgentStateError

    for seconds in (-1.0, float("nan"), MAX_WRAP_UP_SECONDS + 1):
        with pytest.raises(AgentStateError):
            Agent("a1", wrap_up_seconds=seconds)


# The storm.

REASONS = ("break", "lunch", "training")
STEPS = {"count": 0}


class World:
    """The real world around one agent, and the checks that the agent agrees with it."""

    def __init__(self) -> None:
        self.agent = Agent("a1", wrap_up_seconds=WRAP, registered=False)
        self.now = 0.0
        self.registered = False
        self.ringing: set[str] = set()
        self.answered: set[str] = set()
        self.serial = 0
        self.dirty = False  # the engine lost a report: only reconcile can fix the agent
        self.steps = 0

    def send(self, event: AgentInput) -> list[ev.AgentEvent]:
        return self.agent.handle(event, self.now)

    def reconcile(self) -> None:
        self.agent.reconcile(
            frozenset(self.answered), self.registered, self.now, ringing=frozenset(self.ringing)
        )
        self.dirty = False

    @staticmethod
    def _pick(calls: set[str], index: int) -> str | None:
        return sorted(calls)[index % len(calls)] if calls else None

    # Actions: every one is a thing that happens in a real call center.

    def login(self) -> None:
        self.send(Login())

    def logout(self) -> None:
        self.send(Logout())

    def go_away(self, index: int) -> None:
        self.send(GoAway(reason=REASONS[index % len(REASONS)]))

    def go_available(self) -> None:
        self.send(GoAvailable())

    def end_wrap_up(self) -> None:
        self.send(WrapUpEnd())

    def offer(self, queue_wrap: float | None) -> None:
        self.serial += 1
        call_id = f"call-{self.serial}"
        self.send(Offer(call_id=call_id, wrap_up_seconds=queue_wrap))
        if self.agent.state is S.RESERVED and self.agent.call_id == call_id:
            if self.registered:
                self.ringing.add(call_id)
            else:  # the ACD believed a stale state: the INVITE finds no phone
                self.send(RingTimeout(call_id=call_id))

    def answer(self, index: int) -> None:
        call_id = self._pick(self.ringing, index)
        if call_id is not None:
            self.ringing.discard(call_id)
            self.answered.add(call_id)
            self.send(Answer(call_id=call_id))

    def caller_hangs_up(self, index: int, as_withdrawal: bool) -> None:
        call_id = self._pick(self.ringing | self.answered, index)
        if call_id is None:
            return
        was_ringing = call_id in self.ringing
        self.ringing.discard(call_id)
        self.answered.discard(call_id)
        if was_ringing and as_withdrawal:
            self.send(OfferWithdrawal(call_id=call_id))
        else:
            self.send(CallerHangup(call_id=call_id))

    def agent_hangs_up(self, index: int) -> None:
        call_id = self._pick(self.ringing | self.answered, index)
        if call_id is not None:
            self.ringing.discard(call_id)
            self.answered.discard(call_id)
            self.send(AgentHangup(call_id=call_id))

    def ring_timeout(self, index: int) -> None:
        call_id = self._pick(self.ringing, index)
        if call_id is not None:
            self.ringing.discard(call_id)
            self.send(RingTimeout(call_id=call_id))

    def other_agent_answers(self, index: int) -> None:
        call_id = self._pick(self.ringing, index)
        if call_id is not None:
            self.ringing.discard(call_id)
            self.send(OfferWithdrawal(call_id=call_id))

    def phone_unregisters(self) -> None:
        self.registered = False
        self.send(PhoneUnregistration())

    def phone_registers(self) -> None:
        self.registered = True
        self.send(PhoneRegistration())

    def network_lost(self) -> None:
        self.registered = False
        self.ringing.clear()
        self.answered.clear()
        self.send(NetworkLoss())

    def engine_restarts(self, keep: int, still_registered: bool) -> None:
        calls = sorted(self.ringing | self.answered)
        live = {c for i, c in enumerate(calls) if keep >> i & 1}
        self.ringing &= live
        self.answered &= live
        self.registered = self.registered and still_registered
        self.send(EngineRestart(live_calls=frozenset(live)))
        self.reconcile()  # what the real system does once the engine is back

    def time_passes(self, seconds: float, timer_late: bool) -> None:
        """The driver ticks at `get_timer()`, like the real loop; or, late, after the jump."""
        target = self.now + seconds
        deadline = self.agent.get_timer()
        while not timer_late and deadline is not None and deadline <= target:
            self.now = deadline
            out = self.send(Tick())
            ended = [e for e in out if isinstance(e, ev.WrapUpEnded)]
            assert ended and ended[0].at == deadline  # on time, to the deadline
            deadline = self.agent.get_timer()
        self.now = target
        self.send(Tick())

    def engine_loses_a_report(self, index: int) -> None:
        """A call ends, or a registration changes, and nobody tells the agent."""
        call_id = self._pick(self.ringing | self.answered, index)
        if call_id is not None and index % 3:
            self.ringing.discard(call_id)
            self.answered.discard(call_id)
        else:
            self.registered = not self.registered
        self.dirty = True

    def periodic_reconcile(self) -> None:
        self.reconcile()

    # Checks.

    def check(self) -> None:
        self.steps += 1
        STEPS["count"] += 1
        a = self.agent
        has_call = a.state in (S.RESERVED, S.ON_CALL, S.WRAP_UP)
        assert (a.call_id is not None) == has_call
        assert (a.away_reason is not None) == (a.state is S.AWAY)
        assert (a.wrap_up_deadline is not None) == (a.state is S.WRAP_UP)
        if not has_call:
            assert not a.pending_logout and a.pending_away is None
        if a.state is S.AVAILABLE:
            assert a.registered  # never available, as far as it knows, without a phone
        deadline = a.get_timer()
        if deadline is not None:  # wrap-up always ends by its deadline
            assert self.now < deadline <= self.now + MAX_WRAP_UP_SECONDS
        real = self.ringing | self.answered
        assert len(real) <= 1  # the ACD offers only to an available agent
        if not self.dirty:
            self._check_consistent(a)
        self._check_never_stuck()

    def _check_consistent(self, a: Agent) -> None:
        real = self.ringing | self.answered
        assert a.registered == self.registered
        if a.state is S.RESERVED:
            assert a.call_id in self.ringing
        elif a.state is S.ON_CALL:
            assert a.call_id in self.answered
        else:  # never available (or away, or logged out) with a live call
            assert not real, (a.state, real)
        if a.state is S.AVAILABLE:
            assert self.registered
        if a.state is S.AWAY and a.away_reason == "offline":
            assert not self.registered

    def _check_never_stuck(self) -> None:
        """Whatever happened, reconcile plus the longest wrap-up leaves the agent where the
        world says, and from there the agent's own requests reach available."""
        clone = copy.copy(self.agent)
        clone.reconcile(
            frozenset(self.answered), self.registered, self.now, ringing=frozenset(self.ringing)
        )
        later = self.now + MAX_WRAP_UP_SECONDS
        clone.handle(Tick(), later)
        if clone.state is S.LOGGED_OUT:
            clone.handle(Login(), later)
        if self.answered:
            assert clone.state is S.ON_CALL and clone.call_id in self.answered
            return
        if self.ringing:
            assert clone.state in (S.RESERVED, S.AWAY)
            assert clone.state is S.AWAY or clone.call_id in self.ringing
            return
        assert clone.state in (S.AVAILABLE, S.AWAY)
        clone.handle(PhoneRegistration(), later)
        clone.handle(GoAvailable(), later)
        assert clone.state is S.AVAILABLE


def random_step(world: World, rng: random.Random) -> None:
    """One action of the seeded long run (the same actions the Hypothesis storm draws),
    weighted like a working day: mostly calls, now and then a break, a logout or a failure."""
    index = rng.randrange(8)
    actions: list[tuple[int, Callable[[], None]]] = [
        (3, world.login),
        (1, world.logout),
        (2, lambda: world.go_away(index)),
        (12, world.go_available),
        (2, world.end_wrap_up),
        (10, lambda: world.offer(rng.choice([None, None, 0.0, 10.0]))),
        (8, lambda: world.answer(index)),
        (3, lambda: world.caller_hangs_up(index, rng.random() < 0.5)),
        (3, lambda: world.agent_hangs_up(index)),
        (2, lambda: world.ring_timeout(index)),
        (2, lambda: world.other_agent_answers(index)),
        (1, world.phone_unregisters),
        (4, world.phone_registers),
        (1, world.network_lost),
        (1, lambda: world.engine_restarts(rng.randrange(4), rng.random() < 0.8)),
        (6, lambda: world.time_passes(rng.choice([0.5, 5.0, 20.0, 45.0]), rng.random() < 0.2)),
        (2, lambda: world.engine_loses_a_report(index)),
        (2, world.periodic_reconcile),
    ]
    weights = [weight for weight, _ in actions]
    rng.choices([action for _, action in actions], weights)[0]()
    world.check()


RARE = st.integers(0, 3)  # rare actions happen one time in four they are drawn


class AgentStorm(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()

    @rule()
    def login(self) -> None:
        self.world.login()

    @rule(rare=RARE)
    def logout(self, rare: int) -> None:
        if rare == 0:
            self.world.logout()

    @rule(index=st.integers(0, 7))
    def go_away(self, index: int) -> None:
        self.world.go_away(index)

    @rule()
    def go_available(self) -> None:
        self.world.go_available()

    @rule()
    def end_wrap_up(self) -> None:
        self.world.end_wrap_up()

    @rule(queue_wrap=st.sampled_from([None, None, 0.0, 10.0]))
    def offer(self, queue_wrap: float | None) -> None:
        self.world.offer(queue_wrap)

    @rule(index=st.integers(0, 7))
    def offer_and_answer(self, index: int) -> None:  # weights the storm toward real calls
        self.world.offer(None)
        self.world.answer(index)

    @rule(index=st.integers(0, 7))
    def answer(self, index: int) -> None:
        self.world.answer(index)

    @rule(index=st.integers(0, 7), as_withdrawal=st.booleans())
    def caller_hangs_up(self, index: int, as_withdrawal: bool) -> None:
        self.world.caller_hangs_up(index, as_withdrawal)

    @rule(index=st.integers(0, 7))
    def agent_hangs_up(self, index: int) -> None:
        self.world.agent_hangs_up(index)

    @rule(index=st.integers(0, 7))
    def ring_timeout(self, index: int) -> None:
        self.world.ring_timeout(index)

    @rule(index=st.integers(0, 7))
    def other_agent_answers(self, index: int) -> None:
        self.world.other_agent_answers(index)

    @rule(rare=RARE)
    def phone_unregisters(self, rare: int) -> None:
        if rare == 0:
            self.world.phone_unregisters()

    @rule()
    def phone_registers(self) -> None:
        self.world.phone_registers()

    @rule(rare=RARE)
    def network_lost(self, rare: int) -> None:
        if rare == 0:
            self.world.network_lost()

    @rule(rare=RARE, keep=st.integers(0, 3), still_registered=st.booleans())
    def engine_restarts(self, rare: int, keep: int, still_registered: bool) -> None:
        if rare == 0:
            self.world.engine_restarts(keep, still_registered)

    @rule(seconds=st.sampled_from([0.5, 5.0, 20.0, 45.0]), timer_late=st.booleans())
    def time_passes(self, seconds: float, timer_late: bool) -> None:
        self.world.time_passes(seconds, timer_late)

    @rule(index=st.integers(0, 7))
    def engine_loses_a_report(self, index: int) -> None:
        self.world.engine_loses_a_report(index)

    @rule()
    def periodic_reconcile(self) -> None:
        self.world.periodic_reconcile()

    @invariant()
    def never_stuck(self) -> None:
        self.world.check()


AgentStorm.TestCase.settings = settings(max_examples=100, stateful_step_count=150, deadline=None)
TestAgentStorm = AgentStorm.TestCase


def test_seeded_long_storm_never_sticks() -> None:
    """A deterministic 20,000-step storm: with the Hypothesis storm, well over 10,000 steps."""
    rng = random.Random(20261124)
    world = World()
    started = time.perf_counter()
    for _ in range(20_000):
        random_step(world, rng)
    elapsed = time.perf_counter() - started
    assert world.steps >= 20_000
    assert elapsed < 10.0, elapsed
