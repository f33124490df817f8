"""The IVR interpreter: sans-IO, one step per caller input.

`start(flow, now)` and `step(flow, state, event, now)` return the next `IvrState` and the actions
for whoever drives the call (the engine, or the simulator: both call this, so the simulator's
path is the path a real call takes). Time is an argument (a timezone-aware datetime); nothing
here sleeps, plays or reads a socket.

The state machine is a table of (phase, event) pairs:

    phase    PromptFinished    DigitsEntered     InputTimedOut
    prompt   go to next node   ignored           ignored
    digits   ignored           menu/gather       retry, then fallback
    ended    IvrError          IvrError          IvrError

Digits pressed during a plain `play` are ignored; during a menu or gather prompt the engine
stops the prompt and counts them (barge-in), and the wait's timeout starts when the prompt ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from callcenter.services.ivr.flow import (
    TYPE_NAMES,
    BusinessHours,
    Flow,
    Gather,
    HangUp,
    Menu,
    Node,
    Play,
    Queue,
    SetVariables,
    Transfer,
    Voicemail,
)


class IvrError(Exception):
    """A caller of the interpreter broke its contract (e.g. an event after the call left)."""


# --- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptFinished:
    """The prompts asked for have been played to the end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitsEntered:
    """The digits collected for a WaitForDigits (a terminator, if pressed, included)."""

    digits: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTimedOut:
    """No digit came within the WaitForDigits timeout."""


Event = PromptFinished | DigitsEntered | InputTimedOut


# --- outputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEntered:
    """For the call's timeline: the call reached `node`; `note` says why or what was decided."""

    node: str
    kind: str
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayPrompt:
    prompt: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForDigits:
    max_digits: int
    timeout: float
    terminator: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVariable:
    name: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueueCall:
    queue: str
    priority: int
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StartVoicemail:
    box: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferCall:
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUpCall:
    pass


Action = (
    NodeEntered
    | PlayPrompt
    | WaitForDigits
    | SetVariable
    | EnqueueCall
    | StartVoicemail
    | TransferCall
    | HangUpCall
)
FinalAction = EnqueueCall | StartVoicemail | TransferCall | HangUpCall


class Phase(Enum):
    PROMPT = "prompt"  # waiting for PromptFinished
    DIGITS = "digits"  # waiting for DigitsEntered or InputTimedOut
    ENDED = "ended"  # the call left the IVR


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrState:
    node: str
    phase: Phase
    # Failed tries at the current menu or gather.
    attempts: int = 0
    variables: Mapping[str, str] = field(default_factory=dict)
    # What the driver is waiting for in the DIGITS phase (the simulator reads it).
    waiting: WaitForDigits | None = None


@dataclass(frozen=True, slots=True)
class Step:
    state: IvrState
    actions: tuple[Action, ...]

    @property
    def final(self) -> FinalAction | None:
        """The action with which the call left the IVR, if it did in this step."""
        for action in self.actions:
            if isinstance(action, EnqueueCall | StartVoicemail | TransferCall | HangUpCall):
                return action
        return None


def start(flow: Flow, now: dt.datetime) -> Step:
    _check_time(now)
    state = IvrState(node=flow.start, phase=Phase.PROMPT)
    return _Runner(flow, now, state).enter(flow.start, "start")


def step(flow: Flow, state: IvrState, event: Event, now: dt.datetime) -> Step:
    _check_time(now)
    if state.phase is Phase.ENDED:
        raise IvrError(f"the call left the IVR at node '{state.node}'")
    node = flow.nodes.get(state.node)
    if node is None:
        raise IvrError(f"no node '{state.node}' in flow '{flow.name}'")
    runner = _Runner(flow, now, state)
    if state.phase is Phase.PROMPT:
        if isinstance(event, PromptFinished) and isinstance(node, Play):
            return runner.enter(node.next, "")
        return Step(state, ())
    # Phase.DIGITS
    if isinstance(event, PromptFinished) or not isinstance(node, Menu | Gather):
        return Step(state, ())
    if isinstance(event, InputTimedOut):
        return runner.retry(node, node.no_input_prompt, "no input")
    if isinstance(node, Menu):
        digit = event.digits[:1]
        target = node.options.get(digit)
        if target is None:
            return runner.retry(node, node.invalid_prompt, f"invalid {event.digits!r}")
        return runner.enter(target, f"pressed {digit} at {node.name}")
    value = event.digits
    if node.terminator is not None and value.endswith(node.terminator):
        value = value[: -len(node.terminator)]
    if len(value) > node.max_digits or not node.pattern.fullmatch(value):
        return runner.retry(node, node.invalid_prompt, f"invalid {event.digits!r}")
    runner.set_variable(node.variable, value)
    return runner.enter(node.next, f"entered {value} at {node.name}")


def _check_time(now: dt.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the IVR needs a timezone-aware time")


class _Runner:
    """Builds one Step: follows nodes that need no input until one waits or the call leaves."""

    def __init__(self, flow: Flow, now: dt.datetime, state: IvrState) -> None:
        self.flow = flow
        self.now = now
        self.variables = dict(state.variables)
        self.actions: list[Action] = []
        self._attempts = state.attempts

    def set_variable(self, name: str, value: str) -> None:
        self.variables[name] = value
        self.actions.append(SetVariable(name=name, value=value))

    def state(
        self, node: str, phase: Phase, attempts: int = 0, waiting: WaitForDigits | None = None
    ) -> IvrState:
        return IvrState(
            node=node, phase=phase, attempts=attempts, variables=self.variables, waiting=waiting
        )

    def done(self, state: IvrState) -> Step:
        return Step(state, tuple(self.actions))

    def enter(self, name: str, note: str) -> Step:
        # A validated flow has no cycle without input, so this ends within len(nodes) hops;
        # the bound keeps a hand-built flow from spinning anyway.
        for _ in range(len(self.flow.nodes) + 1):
            node = self.flow.nodes[name]
            self.actions.append(NodeEntered(node=name, kind=TYPE_NAMES[type(node)], note=note))
            if isinstance(node, SetVariables):
                for key, value in node.variables.items():
                    self.set_variable(key, value)
                name, note = node.next, ""
            elif isinstance(node, BusinessHours):
                is_open = node.is_open(self.now)
                local = self.now.astimezone(node.timezone)
                verdict = f"{'open' if is_open else 'closed'} at {local:%a %Y-%m-%d %H:%M %Z}"
                note = f"{note}; {verdict}" if note else verdict
                self.actions[-1] = NodeEntered(node=name, kind="business_hours", note=note)
                name, note = (node.open if is_open else node.closed), ""
            else:
                return self.wait_or_leave(node, 0)
        self.actions.append(HangUpCall())
        return self.done(self.state(name, Phase.ENDED))

    def wait_or_leave(self, node: Node, attempts: int) -> Step:
        name = node.name
        if isinstance(node, Play):
            self.actions.append(PlayPrompt(prompt=node.prompt))
            return self.done(self.state(name, Phase.PROMPT))
        if isinstance(node, Menu | Gather):
            self.actions.append(PlayPrompt(prompt=node.prompt))
            if isinstance(node, Menu):
                wait = WaitForDigits(max_digits=1, timeout=node.timeout, terminator=None)
            else:
                wait = WaitForDigits(
                    max_digits=node.max_digits,
                    timeout=node.timeout,
                    terminator=node.terminator,
                )
            self.actions.append(wait)
            return self.done(self.state(name, Phase.DIGITS, attempts=attempts, waiting=wait))
        final: Action
        if isinstance(node, Queue):
            final = EnqueueCall(queue=node.queue, priority=node.priority, skills=node.skills)
        elif isinstance(node, Voicemail):
            final = StartVoicemail(box=node.box)
        elif isinstance(node, Transfer):
            final = TransferCall(target=node.to)
        else:
            assert isinstance(node, HangUp), node
            final = HangUpCall()
        self.actions.append(final)
        return self.done(self.state(name, Phase.ENDED))

    def retry(self, node: Menu | Gather, prompt: str | None, why: str) -> Step:
        attempts = self._attempts + 1
        if attempts > node.retries:
            return self.enter(node.fallback, f"{why} at {node.name}, tries used up")
        self.actions.append(
            NodeEntered(
                node=node.name,
                kind=TYPE_NAMES[type(node)],
                note=f"{why}: retry {attempts} of {node.retries}",
            )
        )
        if prompt is not None:
            self.actions.append(PlayPrompt(prompt=prompt))
        return self.wait_or_leave(node, attempts)


def describe(action: Action) -> str:
    """One line for people: `queue support (priority 5)`."""
    if isinstance(action, EnqueueCall):
        skills = f", skills {', '.join(action.skills)}" if action.skills else ""
        return f"queue {action.queue} (priority {action.priority}{skills})"
    if isinstance(action, StartVoicemail):
        return f"voicemail {action.box}"
    if isinstance(action, TransferCall):
        return f"transfer to {action.target}"
    if isinstance(action, HangUpCall):
        return "hang up"
    if isinstance(action, PlayPrompt):
        return f"play {action.prompt}"
    if isinstance(action, WaitForDigits):
        end = f" or until {action.terminator}" if action.terminator else ""
        return f"wait for {action.max_digits} digit(s){end}, {action.timeout:g} s"
    if isinstance(action, SetVariable):
        return f"set {action.name} = {action.value!r}"
    return f"{action.node} ({action.kind}){': ' + action.note if action.note else ''}"
