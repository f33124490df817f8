"""The sans-IO IVR interpreter and the simulator that drives it."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.services.ivr import Flow, load_flow, simulate
from callcenter.services.ivr.interpreter import (
    DigitsEntered,
    EnqueueCall,
    Event,
    HangUpCall,
    InputTimedOut,
    IvrError,
    IvrState,
    NodeEntered,
    Phase,
    PlayPrompt,
    PromptFinished,
    SetVariable,
    StartVoicemail,
    TransferCall,
    WaitForDigits,
    start,
    step,
)
from callcenter.services.ivr.loader import load_flow_text
from callcenter.services.ivr.simulator import MAX_STEPS

ROOT = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
OPEN = dt.datetime(2026, 11, 24, 10, 0, tzinfo=LONDON)  # a Tuesday morning
CLOSED = dt.datetime(2026, 11, 24, 21, 0, tzinfo=LONDON)


@pytest.fixture(scope="module")
def default() -> Flow:
    flow, _ = load_flow(ROOT / "ivr" / "flows" / "default.yaml")
    return flow


def flow_of(text: str) -> Flow:
    flow, problems = load_flow_text(textwrap.dedent(text), "ivr/flows/t.yaml", "t")
    assert flow is not None, problems
    return flow


def without_nodes(actions: tuple[Any, ...]) -> list[Any]:
    return [a for a in actions if not isinstance(a, NodeEntered)]


def test_a_call_walks_the_default_flow_to_the_support_queue(default: Flow) -> None:
    first = start(default, OPEN)
    assert first.state.node == "greeting" and first.state.phase is Phase.PROMPT
    assert without_nodes(first.actions) == [
        PlayPrompt(
            prompt="text:Thank you for calling Example Limited. Calls are recorded for quality."
        )
    ]
    menu = step(default, first.state, PromptFinished(), OPEN)
    wait = WaitForDigits(max_digits=1, timeout=5.0, terminator=None)
    assert without_nodes(menu.actions) == [
        PlayPrompt(prompt="text:For sales, press 1. For support, press 2."),
        wait,
    ]
    assert menu.state.phase is Phase.DIGITS and menu.state.waiting == wait
    # The menu prompt ending does not move the call: the wait for the digit starts.
    assert step(default, menu.state, PromptFinished(), OPEN).actions == ()
    queued = step(default, menu.state, DigitsEntered(digits="2"), OPEN)
    assert queued.state.phase is Phase.ENDED
    assert queued.final == EnqueueCall(queue="support", priority=5, skills=("english",))
    assert [a.node for a in queued.actions if isinstance(a, NodeEntered)] == [
        "support_hours",
        "support",
    ]
    with pytest.raises(IvrError, match="left the IVR"):
        step(default, queued.state, PromptFinished(), OPEN)


def test_closed_hours_go_to_voicemail(default: Flow) -> None:
    result = simulate(default, "1", CLOSED)
    assert result.final == StartVoicemail(box="sales")
    assert result.path == (
        "greeting",
        "main_menu",
        "sales_hours",
        "sales_closed",
        "sales_voicemail",
    )


def test_invalid_digits_and_silence_retry_then_fall_back(default: Flow) -> None:
    result = simulate(default, "9", OPEN)
    assert result.path == (
        "greeting",
        "main_menu",
        "main_menu",
        "main_menu",
        "support_hours",
        "support",
    )
    assert "  play text:Sorry, that is not a valid choice." in result.lines
    assert "  play text:Sorry, I did not hear your choice." in result.lines
    assert result.final == EnqueueCall(queue="support", priority=5, skills=("english",))
    # A retry then a right digit.
    assert simulate(default, "71", OPEN).final == EnqueueCall(queue="sales", priority=3, skills=())


def test_digits_during_a_plain_prompt_are_ignored(default: Flow) -> None:
    first = start(default, OPEN)
    for event in (DigitsEntered(digits="1"), InputTimedOut()):
        assert step(default, first.state, event, OPEN).state == first.state


GATHER = """\
    start: account
    nodes:
      account:
        type: gather
        prompt: "text:Enter your 6 digit account number, then hash."
        variable: account
        max_digits: 6
        pattern: "[0-9]{6}"
        retries: 1
        invalid_prompt: "text:That is not an account number."
        next: tag
        fallback: operator
      tag:
        type: set
        variables: {tier: gold, source: ivr}
        next: vip
      vip:
        type: queue
        queue: vip
        priority: 9
        skills: [billing, english]
      operator:
        type: transfer
        to: "+442071234567"
    """


def test_gather_validates_stores_and_sets_variables() -> None:
    flow = flow_of(GATHER)
    first = start(flow, OPEN)
    assert first.state.waiting == WaitForDigits(max_digits=6, timeout=5.0, terminator="#")
    done = step(flow, first.state, DigitsEntered(digits="123456#"), OPEN)
    assert without_nodes(done.actions) == [
        SetVariable(name="account", value="123456"),
        SetVariable(name="tier", value="gold"),
        SetVariable(name="source", value="ivr"),
        EnqueueCall(queue="vip", priority=9, skills=("billing", "english")),
    ]
    assert dict(done.state.variables) == {"account": "123456", "tier": "gold", "source": "ivr"}


def test_gather_rejects_bad_input_then_falls_back() -> None:
    flow = flow_of(GATHER)
    result = simulate(flow, "12#99", OPEN)
    assert result.path == ("account", "account", "operator")
    assert result.final == TransferCall(target="+442071234567")
    assert "  caller presses 12#" in result.lines and "  caller presses 99" in result.lines
    # Six digits without the terminator are enough.
    assert simulate(flow, "654321", OPEN).final == EnqueueCall(
        queue="vip", priority=9, skills=("billing", "english")
    )


def test_simulate_rejects_non_dtmf_digits(default: Flow) -> None:
    with pytest.raises(ValueError, match="0-9"):
        simulate(default, "1a", OPEN)


def test_naive_times_are_refused(default: Flow) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        start(default, dt.datetime(2026, 11, 24, 10, 0))


# --- the (phase, event) table ---------------------------------------------------------------

events = st.one_of(
    st.just(PromptFinished()),
    st.just(InputTimedOut()),
    st.text(alphabet="0123456789*#ABCD", min_size=0, max_size=8).map(
        lambda d: DigitsEntered(digits=d)
    ),
)


@given(
    node=st.sampled_from(sorted(("greeting", "main_menu", "sales", "support_hours"))),
    phase=st.sampled_from(Phase),
    attempts=st.integers(0, 5),
    event=events,
)
def test_every_phase_and_event_moves_is_ignored_or_raises_ivr_error(
    default: Flow, node: str, phase: Phase, attempts: int, event: Event
) -> None:
    state = IvrState(node=node, phase=phase, attempts=attempts)
    if phase is Phase.ENDED:
        with pytest.raises(IvrError):
            step(default, state, event, OPEN)
        return
    result = step(default, state, event, OPEN)
    assert result.state == state or result.actions


# --- termination ----------------------------------------------------------------------------

times = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),
    max_value=dt.datetime(2035, 12, 31),
    timezones=st.sampled_from([ZoneInfo("UTC"), LONDON, ZoneInfo("America/New_York")]),
)


@given(digits=st.text(alphabet="0123456789*#", max_size=20), at=times)
def test_the_default_flow_always_ends_in_a_final_action(
    default: Flow, digits: str, at: dt.datetime
) -> None:
    result = simulate(default, digits, at)
    assert result.final is not None
    assert result.path[0] == "greeting"
    assert result.lines[-1].startswith(("result:", "unused digits:"))


@given(digits=st.lists(st.text(alphabet="0123456789*#", max_size=4), max_size=30), at=times)
def test_driving_the_default_flow_event_by_event_never_raises(
    default: Flow, digits: list[str], at: dt.datetime
) -> None:
    result = start(default, at)
    for pressed in digits:
        if result.state.phase is Phase.ENDED:
            break
        event: Event = DigitsEntered(digits=pressed) if pressed else InputTimedOut()
        result = step(default, result.state, event, at)
        if result.state.phase is not Phase.ENDED:
            result = step(default, result.state, PromptFinished(), at)
    assert len(result.actions) < 50


KINDS = (
    "play",
    "menu",
    "gather",
    "business_hours",
    "set",
    "queue",
    "voicemail",
    "transfer",
    "hangup",
)


@st.composite
def generated_flows(draw: st.DrawFn) -> str:
    """A valid flow: nodes that wait for nothing only point forward, so no input-free cycle;
    menus and gathers may point anywhere. The last node hangs up."""
    count = draw(st.integers(1, 12))
    names = [f"n{i}" for i in range(count)]
    nodes: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        kind = "hangup" if i == count - 1 else draw(st.sampled_from(KINDS))
        later = st.sampled_from(names[i + 1 :]) if i + 1 < count else st.just(name)
        anywhere = st.sampled_from(names)
        node: dict[str, Any] = {"type": kind}
        if kind == "play":
            node |= {"prompt": "text:hello", "next": draw(later)}
        elif kind == "menu":
            digits = draw(
                st.lists(st.sampled_from("0123456789*#"), unique=True, min_size=1, max_size=4)
            )
            node |= {
                "prompt": "text:choose",
                "options": {d: draw(anywhere) for d in digits},
                "timeout": draw(st.integers(1, 10)),
                "retries": draw(st.integers(0, 3)),
                "fallback": draw(anywhere),
            }
        elif kind == "gather":
            node |= {
                "prompt": "text:enter",
                "variable": "v",
                "max_digits": draw(st.integers(1, 6)),
                "pattern": draw(st.sampled_from(["[0-9]+", "1.*", "[0-9]{2}"])),
                "next": draw(anywhere),
                "fallback": draw(anywhere),
            }
        elif kind == "business_hours":
            node |= {
                "timezone": "America/New_York",
                "schedule": {"mon": ["09:00-17:00"], "sat": ["00:00-24:00"]},
                "holidays": ["2026-12-25"],
                "open": draw(later),
                "closed": draw(later),
            }
        elif kind == "set":
            node |= {"variables": {"x": "1"}, "next": draw(later)}
        elif kind == "queue":
            node |= {"queue": "q", "priority": draw(st.integers(0, 100))}
        elif kind == "voicemail":
            node |= {"box": "b"}
        elif kind == "transfer":
            node |= {"to": "alice"}
        nodes[name] = node
    return yaml.safe_dump({"start": "n0", "nodes": nodes})


@settings(max_examples=200)
@given(text=generated_flows(), digits=st.text(alphabet="0123456789*#", max_size=20), at=times)
def test_generated_flows_load_and_the_simulator_always_stops(
    text: str, digits: str, at: dt.datetime
) -> None:
    flow, problems = load_flow_text(text, "ivr/flows/g.yaml", "g")
    assert flow is not None, problems
    assert all(p.warning for p in problems)
    result = simulate(flow, digits, at, max_steps=MAX_STEPS)
    # A menu whose fallback leads back to itself waits for a silent caller forever (as a real
    # call would until the caller hangs up); otherwise the call leaves the IVR.
    assert result.final is not None or f"stopped after {MAX_STEPS} steps" in result.lines
    if result.final is not None:
        assert isinstance(result.final, EnqueueCall | StartVoicemail | TransferCall | HangUpCall)
