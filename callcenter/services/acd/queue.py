"""Queues as the router sees them: configuration, waiting calls, their order and wait estimates.

Owns: `QueueConfig` (frozen), `WaitingCall` and its sort key, `CallbackRecord` (the plain data
that keeps a caller's place while they wait for a callback), and `WaitEstimator`.
Must not know: agents, the engine, the database, clocks (time is the `now` argument) or the
customer records: a caller's tier arrives as its rank (`customers.TIER_RANK[tier]`, regular 0
.. vip 3), so this module stays free of the database layer that `customers` imports.

Order of waiting calls (`WaitingCall.sort_key`): effective priority descending, then
`entered_at` ascending (first come, first served), then `call_id` as the last tie-break, so
the order is total and does not depend on the order calls were added. Effective priority is
`priority + tier_weight * tier_rank`: with a tier weight of 10, a VIP caller (rank 3) at queue
priority 0 is ahead of every regular caller of priority below 30.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

MAX_TIER_RANK: Final = 3
MAX_SKILL_LEVEL: Final = 100
MAX_NAME_LENGTH: Final = 128
# How many recent answers the wait estimate averages over.
ESTIMATE_WINDOW: Final = 20


class RoutingError(Exception):
    """A bug of the caller: bad configuration, an unknown queue, call or agent, a duplicate."""


class Strategy(enum.Enum):
    LONGEST_IDLE = "longest-idle"
    ROUND_ROBIN = "round-robin"
    RING_ALL = "ring-all"
    FEWEST_CALLS = "fewest-calls"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueTarget:
    """Overflow into another queue."""

    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailTarget:
    """Overflow into a voicemail box."""

    box: str


OverflowTarget = QueueTarget | VoicemailTarget


def frozen_skills(skills: Mapping[str, int], what: str) -> Mapping[str, int]:
    """A read-only copy of `skills` ({name: level}), each level checked."""
    for name, level in skills.items():
        if not name or len(name) > MAX_NAME_LENGTH:
            raise RoutingError(f"{what}: bad skill name {name!r}")
        if isinstance(level, bool) or not isinstance(level, int):
            raise RoutingError(f"{what}: skill {name!r} level must be an int")
        if not 0 <= level <= MAX_SKILL_LEVEL:
            raise RoutingError(f"{what}: skill {name!r} level must be 0..{MAX_SKILL_LEVEL}")
    return MappingProxyType(dict(sorted(skills.items())))


def merge_skills(*requirements: Mapping[str, int]) -> Mapping[str, int]:
    """Every skill any requirement names, at the highest level asked."""
    merged: dict[str, int] = {}
    for requirement in requirements:
        for name, level in requirement.items():
            merged[name] = max(level, merged.get(name, level))
    return MappingProxyType(dict(sorted(merged.items())))


def _check_seconds(value: float | None, what: str, *, positive: bool = False) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise RoutingError(f"{what} must be a finite number {'>' if positive else '>='} 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """One queue's settings. `max_wait_seconds` None means callers wait for ever (no overflow).

    `wrap_up_seconds` is passed on to the agent state machine with each offer; the router
    only carries it. `required_skills` apply to every call of the queue, on top of the call's.
    """

    name: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    required_skills: Mapping[str, int] = field(default_factory=dict)
    max_wait_seconds: float | None = None
    overflow: OverflowTarget | None = None
    announcement_interval_seconds: float | None = 30.0
    ring_timeout_seconds: float = 20.0
    wrap_up_seconds: float = 10.0
    tier_weight: int = 10

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_NAME_LENGTH:
            raise RoutingError(f"bad queue name {self.name!r}")
        where = f"queue {self.name!r}"
        object.__setattr__(self, "required_skills", frozen_skills(self.required_skills, where))
        _check_seconds(self.max_wait_seconds, f"{where}: max wait", positive=True)
        _check_seconds(
            self.announcement_interval_seconds, f"{where}: announcement interval", positive=True
        )
        _check_seconds(self.ring_timeout_seconds, f"{where}: ring timeout", positive=True)
        _check_seconds(self.wrap_up_seconds, f"{where}: wrap-up")
        if (self.max_wait_seconds is None) != (self.overflow is None):
            raise RoutingError(f"{where}: max wait and overflow target go together")
        if isinstance(self.overflow, QueueTarget) and self.overflow.queue == self.name:
            raise RoutingError(f"{where}: cannot overflow into itself")
        if isinstance(self.tier_weight, bool) or not isinstance(self.tier_weight, int):
            raise RoutingError(f"{where}: tier weight must be an int")
        if self.tier_weight < 0:
            raise RoutingError(f"{where}: tier weight must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitingCall:
    """A caller in a queue. `priority` comes from the IVR's queue node, `tier_rank` from the
    matched customer (0 when none); `effective_priority` is fixed when the call is queued."""

    call_id: str
    queue: str
    entered_at: float
    priority: int
    tier_rank: int
    effective_priority: int
    required_skills: Mapping[str, int]  # the queue's and the call's, merged

    @property
    def sort_key(self) -> tuple[int, float, str]:
        return (-self.effective_priority, self.entered_at, self.call_id)


def make_waiting_call(
    config: QueueConfig,
    *,
    call_id: str,
    entered_at: float,
    priority: int = 0,
    tier_rank: int = 0,
    required_skills: Mapping[str, int] | None = None,
) -> WaitingCall:
    if not call_id or len(call_id) > 256:
        raise RoutingError(f"bad call id {call_id!r}")
    if not math.isfinite(entered_at):
        raise RoutingError("entered_at must be finite")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise RoutingError("priority must be an int")
    if isinstance(tier_rank, bool) or not isinstance(tier_rank, int):
        raise RoutingError("tier rank must be an int")
    if not 0 <= tier_rank <= MAX_TIER_RANK:
        raise RoutingError(f"tier rank must be 0..{MAX_TIER_RANK}")
    call_skills = frozen_skills(required_skills or {}, f"call {call_id!r}")
    return WaitingCall(
        call_id=call_id,
        queue=config.name,
        entered_at=entered_at,
        priority=priority,
        tier_rank=tier_rank,
        effective_priority=priority + config.tier_weight * tier_rank,
        required_skills=merge_skills(config.required_skills, call_skills),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRecord:
    """A caller who asked to be called back, with what it takes to re-queue them in the same
    place: the original `entered_at`, priority and tier. `as_dict`/`from_dict` give plain
    JSON-ready data for the database, so the place survives a restart."""

    call_id: str
    queue: str
    number: str
    entered_at: float
    priority: int
    tier_rank: int
    required_skills: Mapping[str, int]  # the call's own (the queue's are added on re-queue)
    requested_at: float

    def as_dict(self) -> dict[str, object]:
        return {
            "call_id": self.call_id,
            "queue": self.queue,
            "number": self.number,
            "entered_at": self.entered_at,
            "priority": self.priority,
            "tier_rank": self.tier_rank,
            "required_skills": dict(self.required_skills),
            "requested_at": self.requested_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CallbackRecord:
        skills = data["required_skills"]
        if not isinstance(skills, Mapping):
            raise RoutingError("callback record: required_skills must be a mapping")
        entered_at, requested_at = data["entered_at"], data["requested_at"]
        priority, tier_rank = data["priority"], data["tier_rank"]
        if not isinstance(entered_at, int | float) or not isinstance(requested_at, int | float):
            raise RoutingError("callback record: times must be numbers")
        if not isinstance(priority, int) or not isinstance(tier_rank, int):
            raise RoutingError("callback record: priority and tier rank must be ints")
        return cls(
            call_id=str(data["call_id"]),
            queue=str(data["queue"]),
            number=str(data["number"]),
            entered_at=float(entered_at),
            priority=priority,
            tier_rank=tier_rank,
            required_skills=frozen_skills(skills, "callback record"),
            requested_at=float(requested_at),
        )


class WaitEstimator:
    """Estimated wait for a caller at position p: p times the moving average (last
    `ESTIMATE_WINDOW` answers) of the seconds between two answers in the queue.

    That interval is how long the head of the queue takes to move one place. An interval is
    capped at the answered call's own wait, so a quiet spell with nobody waiting does not
    inflate it. None until two answers have been seen (announce the position only).
    """

    __slots__ = ("_intervals", "_last_answer")

    def __init__(self) -> None:
        self._intervals: deque[float] = deque(maxlen=ESTIMATE_WINDOW)
        self._last_answer: float | None = None

    def record_answer(self, *, entered_at: float, answered_at: float) -> None:
        if self._last_answer is not None:
            since = max(0.0, answered_at - self._last_answer)
            waited = max(0.0, answered_at - entered_at)
            self._intervals.append(min(since, waited))
        self._last_answer = answered_at

    @property
    def mean_interval(self) -> float | None:
        if not self._intervals:
            return None
        return sum(self._intervals) / len(self._intervals)

    def estimate(self, position: int) -> float | None:
        mean = self.mean_interval
        return None if mean is None else position * mean
