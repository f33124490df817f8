"""`callcenter ivr simulate`: the path a caller takes through a flow, for given digits and time.

It drives the same interpreter the engine drives, answering its waits from a string of digits:
each prompt "finishes" at once, each wait takes the next digits, and when the digits run out
every wait times out (so menus retry, then take their fallback).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from callcenter.services.ivr.flow import DTMF_DIGITS, Flow
from callcenter.services.ivr.interpreter import (
    DigitsEntered,
    Event,
    FinalAction,
    InputTimedOut,
    NodeEntered,
    Phase,
    PromptFinished,
    Step,
    describe,
    start,
    step,
)

MAX_STEPS = 1000


@dataclass(frozen=True, slots=True)
class Simulation:
    lines: tuple[str, ...]
    # The nodes entered, in order (a retried menu appears again).
    path: tuple[str, ...]
    final: FinalAction | None
    unused_digits: str


def simulate(flow: Flow, digits: str, at: dt.datetime, max_steps: int = MAX_STEPS) -> Simulation:
    bad = sorted(set(digits) - DTMF_DIGITS)
    if bad:
        raise ValueError(f"digits must be 0-9, * or #, not {''.join(bad)!r}")
    lines: list[str] = []
    path: list[str] = []
    remaining = digits

    def record(result: Step) -> None:
        for action in result.actions:
            if isinstance(action, NodeEntered):
                note = f": {action.note}" if action.note else ""
                lines.append(f"{action.node} ({action.kind}){note}")
                path.append(action.node)
            else:
                lines.append(f"  {describe(action)}")

    result = start(flow, at)
    record(result)
    for _ in range(max_steps):
        state = result.state
        if state.phase is Phase.ENDED:
            break
        event: Event
        if state.phase is Phase.PROMPT:
            event = PromptFinished()
        else:
            wait = state.waiting
            assert wait is not None
            taken = ""
            while remaining and len(taken.rstrip(wait.terminator or "")) < wait.max_digits:
                taken, remaining = taken + remaining[0], remaining[1:]
                if wait.terminator is not None and taken.endswith(wait.terminator):
                    break
            if taken:
                event = DigitsEntered(digits=taken)
                lines.append(f"  caller presses {taken}")
            else:
                event = InputTimedOut()
                lines.append(f"  no input for {wait.timeout:g} s")
        result = step(flow, state, event, at)
        record(result)
    else:
        lines.append(f"stopped after {max_steps} steps")
    final = result.final if result.state.phase is Phase.ENDED else None
    lines.append(f"result: {describe(final) if final is not None else 'still in the IVR'}")
    if remaining:
        lines.append(f"unused digits: {remaining}")
    return Simulation(tuple(lines), tuple(path), final, remaining)
