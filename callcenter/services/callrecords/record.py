"""One call's record in memory: its columns, its bounded timeline and the frozen view of it.

Owns: `OpenCall` (the mutable record of a call being logged, plus the writer's bookkeeping),
`CallRecordView` (the frozen snapshot callers get, from memory or from a row), `jsonable`
(how event data becomes JSON-safe and bounded), the checks on `update()` fields, and the
size limits. Must not know: sessions, asyncio, logging or the clock (every time is an
argument). It reads `CallRecord`'s column lengths so a value that PostgreSQL would refuse
(and with it the whole batch) is cut here instead, on the way in.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from types import MappingProxyType
from typing import Final

from sqlalchemy import String

from ...db.models import DISPOSITIONS, CallRecord

# A runaway loop logging events must not grow one call without bound (memory, row size).
MAX_EVENTS: Final = 500
MAX_STRING: Final = 1_000
# Containers in event data: enough for a routing decision's candidates, not for a data dump.
MAX_ITEMS: Final = 100
MAX_DEPTH: Final = 6
MAX_NOTES: Final = 10_000
ENDED_BY: Final = ("caller", "agent", "system")
# Integers outside this range become text: JSON readers (and Python's int/str conversion
# limit) do not all cope with them.
_INT_RANGE: Final = range(-(2**63), 2**63)


def _column_length(name: str) -> int:
    column_type = CallRecord.__table__.c[name].type
    if not isinstance(column_type, String) or not column_type.length:
        raise TypeError(f"call_records.{name} is not a bounded string column")
    return column_type.length


LENGTHS: Final = {
    name: _column_length(name)
    for name in ("call_id", "caller", "caller_name", "dialled", "queue", "agent")
}


def iso(at: datetime) -> str:
    """`at` as ISO-8601 UTC with milliseconds, the form of every timeline "at"."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _text(value: object) -> str:
    try:
        text = str(value)
    except Exception:  # str() of an arbitrary object may raise; the call must go on
        text = f"<unprintable {type(value).__name__}>"
    return text[:MAX_STRING]


def jsonable(value: object, depth: int = 0) -> object:
    """`value` made JSON-safe and bounded: enums to their value, tuples and sets to lists,
    non-finite floats and unknown objects to text, strings cut to MAX_STRING characters,
    containers to MAX_ITEMS entries (the rest counted in a last "... N more" item)."""
    if isinstance(value, enum.Enum):
        return jsonable(value.value, depth + 1) if depth < MAX_DEPTH else _text(value.value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if value in _INT_RANGE else _text(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return str(value[:MAX_STRING])
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo is not None else value.isoformat()
    if depth >= MAX_DEPTH:
        return _text(value)
    if isinstance(value, Mapping):
        items = {
            _text(key): jsonable(item, depth + 1) for key, item in islice(value.items(), MAX_ITEMS)
        }
        if len(value) > MAX_ITEMS:
            items["..."] = f"{len(value) - MAX_ITEMS} more"
        return items
    if isinstance(value, list | tuple | set | frozenset):
        out = [jsonable(item, depth + 1) for item in islice(value, MAX_ITEMS)]
        if len(value) > MAX_ITEMS:
            out.append(f"... {len(value) - MAX_ITEMS} more")
        return out
    return _text(value)


def _frozen(value: object) -> object:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def _frozen_timeline(timeline: object) -> tuple[Mapping[str, object], ...]:
    if not isinstance(timeline, list | tuple):
        return ()
    out: list[Mapping[str, object]] = []
    for entry in timeline:
        if isinstance(entry, Mapping):
            out.append(MappingProxyType({str(k): _frozen(v) for k, v in entry.items()}))
        else:  # not written by this module; shown rather than hidden
            out.append(MappingProxyType({"kind": "unknown", "value": _frozen(entry)}))
    return tuple(out)


def cut(value: str, column: str) -> str:
    return value[: LENGTHS[column]]


def _aware(name: str, value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime or None, not {type(value).__name__}")
    if value.tzinfo is None:
        # UTCDateTime refuses naive values at write time: refused here, where the bug is.
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _string(name: str, value: object, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str{' or None' if optional else ''}")
    return value[: LENGTHS.get(name, MAX_NOTES)]


def checked_fields(fields: Mapping[str, object]) -> dict[str, object]:
    """`update()`'s fields, checked and normalised; ValueError for a bad name or type.

    Checked in full before anything changes, so a bad call changes nothing. The end of a
    call (ended_at, ended_by, disposition, wait and talk time) is `ended()`'s alone.
    """
    out: dict[str, object] = {}
    for name, value in fields.items():
        if name in ("caller", "caller_name", "dialled", "notes"):
            out[name] = _string(name, value, optional=False)
        elif name in ("queue", "agent", "outcome"):
            out[name] = _string(name, value, optional=True)
        elif name == "customer_id":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError("customer_id must be an int or None")
            out[name] = value
        elif name in ("queued_at", "answered_at"):
            out[name] = _aware(name, value)
        else:
            raise ValueError(
                f"unknown call record field {name!r}: one of caller, caller_name, dialled, "
                "customer_id, queue, agent, queued_at, answered_at, notes, outcome"
            )
    return out


def check_end(by: str, disposition: str) -> None:
    """ValueError unless `by` is in ENDED_BY and `disposition` is a final disposition."""
    if by not in ENDED_BY:
        raise ValueError(f"ended by {by!r}: one of {', '.join(ENDED_BY)}")
    if disposition not in DISPOSITIONS or disposition == "in-progress":
        raise ValueError(f"disposition {disposition!r}: one of {', '.join(DISPOSITIONS[1:])}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecordView:
    """A call record as it stood when asked: timeline entries are read-only mappings and
    lists in them are tuples, so holding a view never aliases live state."""

    call_id: str
    caller: str
    caller_name: str
    dialled: str
    customer_id: int | None
    queue: str | None
    agent: str | None
    arrived_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    talk_seconds: float | None
    ended_by: str | None
    disposition: str
    timeline: tuple[Mapping[str, object], ...]
    notes: str
    outcome: str | None = None

    @classmethod
    def from_row(cls, row: CallRecord) -> CallRecordView:
        return cls(
            call_id=row.call_id,
            caller=row.caller,
            caller_name=row.caller_name,
            dialled=row.dialled,
            customer_id=row.customer_id,
            queue=row.queue,
            agent=row.agent,
            arrived_at=row.arrived_at,
            queued_at=row.queued_at,
            answered_at=row.answered_at,
            ended_at=row.ended_at,
            wait_seconds=row.wait_seconds,
            talk_seconds=row.talk_seconds,
            ended_by=row.ended_by,
            disposition=row.disposition,
            timeline=_frozen_timeline(row.timeline),
            notes=row.notes,
            outcome=row.outcome,
        )


@dataclass(slots=True, eq=False)
class OpenCall:
    """A call being logged, from its first event until its row holds its end."""

    call_id: str
    arrived_at: datetime
    # Created by an event, not by `arrived()`: a call the runtime placed itself.
    implicit: bool = False
    caller: str = ""
    caller_name: str = ""
    dialled: str = ""
    customer_id: int | None = None
    queue: str | None = None
    agent: str | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    ended_by: str | None = None
    disposition: str = "in-progress"
    notes: str = ""
    outcome: str | None = None
    # Entries are never changed once appended, so the writer's shallow copy is a snapshot.
    events: list[dict[str, object]] = field(default_factory=list)
    not_stored: int = 0
    truncated_at: str = ""
    # The writer's bookkeeping: `version` counts changes, `written` is the last committed.
    row_id: int | None = None
    version: int = 0
    written: int = 0
    faults: int = 0
    broken: bool = False

    @property
    def closed(self) -> bool:
        return self.ended_at is not None

    def add_event(self, at: datetime, kind: str, data: Mapping[str, object]) -> None:
        if len(self.events) >= MAX_EVENTS:
            if not self.not_stored:
                self.truncated_at = iso(at)
            self.not_stored += 1
            return
        entry: dict[str, object] = {"at": iso(at), "kind": _text(kind)}
        for key, value in data.items():
            # "at" and "kind" are the log's own: data cannot reorder or relabel the timeline.
            if key not in entry:
                entry[key] = jsonable(value)
        self.events.append(entry)

    def apply(self, fields: Mapping[str, object]) -> None:
        """Set fields already checked by `checked_fields`."""
        for name, value in fields.items():
            setattr(self, name, value)

    def end(self, at: datetime, *, by: str, disposition: str) -> None:
        """End the call at `at`; `by` and `disposition` already checked by `check_end`."""
        self.ended_at = at
        self.ended_by = by
        self.disposition = disposition
        # Clamped at 0: the wall clock may step back (NTP) between two events.
        if self.queued_at is not None:
            waited = (self.answered_at or at) - self.queued_at
            self.wait_seconds = max(0.0, waited.total_seconds())
        if self.answered_at is not None:
            self.talk_seconds = max(0.0, (at - self.answered_at).total_seconds())

    def timeline(self) -> list[dict[str, object]]:
        if not self.not_stored:
            return list(self.events)
        marker: dict[str, object] = {
            "at": self.truncated_at,
            "kind": "truncated",
            "not_stored": self.not_stored,
        }
        return [*self.events, marker]

    def row(self) -> dict[str, object]:
        """The columns of call_records for this call, as they are now."""
        return {
            "call_id": self.call_id,
            "caller": self.caller,
            "caller_name": self.caller_name,
            "dialled": self.dialled,
            "customer_id": self.customer_id,
            "queue": self.queue,
            "agent": self.agent,
            "arrived_at": self.arrived_at,
            "queued_at": self.queued_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "wait_seconds": self.wait_seconds,
            "talk_seconds": self.talk_seconds,
            "ended_by": self.ended_by,
            "disposition": self.disposition,
            "timeline": self.timeline(),
            "notes": self.notes,
            "outcome": self.outcome,
        }

    def view(self) -> CallRecordView:
        return CallRecordView(
            call_id=self.call_id,
            caller=self.caller,
            caller_name=self.caller_name,
            dialled=self.dialled,
            customer_id=self.customer_id,
            queue=self.queue,
            agent=self.agent,
            arrived_at=self.arrived_at,
            queued_at=self.queued_at,
            answered_at=self.answered_at,
            ended_at=self.ended_at,
            wait_seconds=self.wait_seconds,
            talk_seconds=self.talk_seconds,
            ended_by=self.ended_by,
            disposition=self.disposition,
            timeline=_frozen_timeline(self.timeline()),
            notes=self.notes,
            outcome=self.outcome,
        )
