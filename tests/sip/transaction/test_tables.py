"""The four transaction tables: exhaustive, legal, and consistent with the timers they arm.

As in h2: every (state, input) pair either moves to a legal state or raises the documented
error (LocalProtocolError) and leaves the machine Terminated.
"""

from __future__ import annotations

import enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.sip import LocalProtocolError
from callcenter.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    MachineSpec,
    StateMachine,
    Timer,
)

Spec = MachineSpec[Any, Any]
SPECS: list[Spec] = [INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER]


def states(spec: Spec) -> list[enum.Enum]:
    members: list[enum.Enum] = list(type(spec.initial).__members__.values())
    return members


def inputs(spec: Spec) -> list[enum.Enum]:
    members: list[enum.Enum] = list(type(spec.transport_error).__members__.values())
    return members


def by_name(spec: Spec) -> str:
    return spec.name


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
@given(data=st.data())
def test_every_pair_moves_legally_or_raises_and_terminates(spec: Spec, data: st.DataObject) -> None:
    state = data.draw(st.sampled_from(states(spec)))
    event = data.draw(st.sampled_from(inputs(spec)))
    machine = StateMachine(spec, state)
    transition = spec.table.get((state, event))
    if transition is None:
        with pytest.raises(LocalProtocolError, match=event.name):
            machine.process(event)
        assert machine.state is spec.terminated
    else:
        assert machine.process(event) is transition
        assert machine.state is transition.target
        assert transition.target in states(spec)


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
@given(data=st.data())
def test_random_walks_never_leave_the_state_set(spec: Spec, data: st.DataObject) -> None:
    walk = data.draw(st.lists(st.sampled_from(inputs(spec)), max_size=30))
    machine = StateMachine(spec)
    for event in walk:
        before = machine.state
        try:
            machine.process(event)
        except LocalProtocolError:
            assert (before, event) not in spec.table
            assert machine.state is spec.terminated
        assert machine.state in states(spec)


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_every_state_and_input_appears_in_the_table(spec: Spec) -> None:
    sources = {state for state, _ in spec.table}
    targets = {t.target for t in spec.table.values()}
    assert set(states(spec)) == sources | targets
    assert set(inputs(spec)) == {event for _, event in spec.table}
    # Every state is reachable from the initial one, and Terminated from every state.
    reachable = {spec.initial}
    frontier = [spec.initial]
    while frontier:
        state = frontier.pop()
        for (source, _), transition in spec.table.items():
            if source is state and transition.target not in reachable:
                reachable.add(transition.target)
                frontier.append(transition.target)
    assert reachable == set(states(spec))
    for state in states(spec):
        seen, frontier = {state}, [state]
        while frontier:
            current = frontier.pop()
            for (source, _), transition in spec.table.items():
                if source is current and transition.target not in seen:
                    seen.add(transition.target)
                    frontier.append(transition.target)
        assert spec.terminated in seen, state


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_the_peer_can_never_trigger_our_error(spec: Spec) -> None:
    """Messages and transport errors can come at any time: after the initial state the table
    must say what to do with each, so LocalProtocolError only ever means a bug of ours."""
    assert spec.transport_error in spec.peer_inputs
    for state in states(spec):
        if state is spec.initial:
            continue
        for event in spec.peer_inputs:
            assert (state, event) in spec.table, (state, event)


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_terminated_absorbs_everything(spec: Spec) -> None:
    for (state, _), transition in spec.table.items():
        if state is spec.terminated:
            assert transition.target is spec.terminated
            assert not transition.actions and not transition.timer_operations


@pytest.mark.parametrize("spec", SPECS, ids=by_name)
def test_each_timer_that_may_run_has_an_entry_where_it_may_fire(spec: Spec) -> None:
    """Dataflow over the table: the set of timers possibly running in each state. A running
    timer must have an entry in that state; a timer entry must be for a timer that may run."""
    fired_by = {event: timer for timer, event in spec.timer_inputs.items()}
    assert {e for e in inputs(spec) if e.name.startswith("TIMER_")} == set(fired_by)
    running: dict[Any, frozenset[Timer]] = {state: frozenset() for state in states(spec)}
    changed = True
    while changed:
        changed = False
        for (state, event), t in spec.table.items():
            after = running[state] - set(t.cancel) - {fired_by.get(event)}
            after |= set(t.start) | set(t.double) | set(t.at_t2)
            if t.target is spec.terminated:
                after = frozenset()  # entering Terminated clears every timer
            if not after <= running[t.target]:
                running[t.target] = running[t.target] | after
                changed = True
    for state, timers in running.items():
        for timer in timers:
            assert (state, spec.timer_inputs[timer]) in spec.table, (state, timer)
    for (state, event), t in spec.table.items():
        if event in fired_by:
            assert fired_by[event] in running[state], (state, event)
        for timer in t.double + t.at_t2:
            # Re-arming with a derived interval needs a previous one: only when it fired.
            assert fired_by.get(event) is timer
