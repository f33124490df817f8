"""The IVR flow model: one frozen dataclass per node type, and the flow that names them.

A flow is what an administrator wrote in `ivr/flows/NAME.yaml`, already validated by
`callcenter.services.ivr.loader`: every reference names a node, every time and timezone parses.
This module knows nothing of YAML, audio or the engine; prompts stay strings (a file name under
`ivr/prompts/` or `text:...` that is rendered offline with espeak-ng by someone else).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

# Prompts written as `text:Hello` are rendered with espeak-ng; anything else is a file name.
TEXT_PREFIX = "text:"

# The keys of a telephone keypad (RFC 4733 events 0-11); A-D exist but no phone has them.
DTMF_DIGITS = frozenset("0123456789*#")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    """Play a prompt, then go on to `next`. Digits pressed meanwhile are ignored."""

    name: str
    prompt: str
    next: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Menu:
    """Play `prompt` and read one digit; `options` maps a digit to the next node.

    A wrong digit plays `invalid_prompt`, silence for `timeout` seconds plays `no_input_prompt`;
    either way the menu is tried again, `retries` more times, then the call goes to `fallback`.
    """

    name: str
    prompt: str
    options: Mapping[str, str]
    timeout: float
    retries: int
    invalid_prompt: str | None
    no_input_prompt: str | None
    fallback: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return (
            *((f"options.{digit}", target) for digit, target in self.options.items()),
            ("fallback", self.fallback),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Gather:
    """Play `prompt` and read up to `max_digits` digits, or fewer ended by `terminator`.

    The digits (terminator removed) must match `pattern` in full; they are stored in the call
    variable `variable` and the call goes to `next`. Otherwise retried like a menu, then `fallback`.
    """

    name: str
    prompt: str
    variable: str
    max_digits: int
    terminator: str | None
    pattern: re.Pattern[str]
    timeout: float
    retries: int
    invalid_prompt: str | None
    no_input_prompt: str | None
    next: str
    fallback: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next), ("fallback", self.fallback))


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessHours:
    """Branch on the local time: `open` inside the weekly schedule, `closed` outside it or on a
    holiday. `schedule` holds, per weekday (0 = Monday), half-open [start, end) minute ranges."""

    name: str
    timezone: ZoneInfo
    schedule: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[dt.date]
    open: str
    closed: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return (("open", self.open), ("closed", self.closed))

    def is_open(self, now: dt.datetime) -> bool:
        if now.tzinfo is None:
            raise ValueError("business hours need a timezone-aware time")
        local = now.astimezone(self.timezone)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.schedule[local.weekday()])


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVariables:
    """Set call variables (strings), then go on to `next`."""

    name: str
    variables: Mapping[str, str]
    next: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return (("next", self.next),)


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue:
    """Leave the IVR for an ACD queue."""

    name: str
    queue: str
    priority: int
    skills: tuple[str, ...]

    def references(self) -> tuple[tuple[str, str], ...]:
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail:
    """Leave the IVR to record a message in a voicemail box."""

    name: str
    box: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """Leave the IVR for a user (by name) or a number."""

    name: str
    to: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HangUp:
    """End the call."""

    name: str

    def references(self) -> tuple[tuple[str, str], ...]:
        return ()


Node = Play | Menu | Gather | BusinessHours | SetVariables | Queue | Voicemail | Transfer | HangUp

# The YAML `type:` of each node class.
NODE_TYPES: Mapping[str, type[Node]] = {
    "play": Play,
    "menu": Menu,
    "gather": Gather,
    "business_hours": BusinessHours,
    "set": SetVariables,
    "queue": Queue,
    "voicemail": Voicemail,
    "transfer": Transfer,
    "hangup": HangUp,
}
TYPE_NAMES: Mapping[type[Node], str] = {cls: name for name, cls in NODE_TYPES.items()}

# Nodes that wait for the caller's digits; a loop of other nodes would never wait for anyone.
INPUT_NODES = (Menu, Gather)
# Nodes where the call leaves the IVR.
FINAL_NODES = (Queue, Voicemail, Transfer, HangUp)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A validated flow: `start` and every reference name a node in `nodes`."""

    name: str
    path: str
    start: str
    nodes: Mapping[str, Node]
    description: str = ""
    # YAML line of each node, for messages about a loaded flow.
    lines: Mapping[str, int] = field(default_factory=dict)
