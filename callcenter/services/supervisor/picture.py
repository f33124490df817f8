"""The supervisor dashboard's picture: live calls with their parties, agents, queues.

Owns turning the ACD's and the engine's state into the dashboard's views (`views.py`): which
callers are waiting, ringing or talking, who is on each call and in which mode (the owner,
conference parties, supervisors monitoring), every agent's state and since when this
dashboard has seen it in that state, and the queues' statistics with their service level.
Reads only; must not know HTTP, sessions or monitoring's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from callcenter.engine.connection import Connection
from callcenter.services.acd.runtime import AcdService, Waiter
from callcenter.services.desk.views import Caller

from .views import AgentRow, LiveCall, LiveParty, LiveState, QueueRow

LABEL_PREFIX = "supervisor:"


class Picture:
    def __init__(self, acd: AcdService, name: Callable[[str], str]) -> None:
        self.acd = acd
        self.name = name
        self._agent_since: dict[str, tuple[tuple[str, str | None, str | None], datetime]] = {}

    def calls(self) -> list[LiveCall]:
        """Every caller the ACD holds: waiting, ringing an agent, talking, in a conference."""
        acd = self.acd
        waiting = {c.call_id: c for c in acd.router.waiting()}
        now = acd.clock()
        calls: list[LiveCall] = []
        for waiter in list(acd.waiters.values()):
            if waiter.gone:
                continue
            connection = acd.bridges.connection(waiter.call)
            parties: list[LiveParty] = []
            held = False
            reaching: str | None = None
            state: LiveState
            if connection is not None:
                conference = any(p.role == "party" for p in connection.parties)
                state = "conference" if conference else "talking"
                since = waiter.answered_at if waiter.answered_at is not None else now
                parties = self._parties(waiter, connection)
                held = connection.held or connection.callee_holds
                consult = connection.consult
                reaching = consult.target if consult is not None else None
            elif (offered := acd.router.offered_call(waiter.call_id)) is not None:
                state, since = "ringing", offered.entered_at
            elif (entry := waiting.get(waiter.call_id)) is not None:
                state, since = "waiting", entry.entered_at
            else:
                continue  # between two states (an answer on its way): the next tick shows it
            owner = waiter.agent if connection is not None else None
            calls.append(
                LiveCall(
                    call_id=waiter.call_id,
                    caller=_caller(waiter),
                    queue=waiter.queue,
                    state=state,
                    agent=owner,
                    agent_name=self.name(owner) if owner is not None else None,
                    since=_at(since),
                    held=held,
                    recording=waiter.recording is not None,
                    reaching=reaching,
                    parties=parties,
                    monitors=[
                        p.label.removeprefix(LABEL_PREFIX)
                        for p in parties
                        if p.role == "monitor" and p.label.startswith(LABEL_PREFIX)
                    ],
                )
            )
        calls.sort(key=lambda c: (c.since, c.call_id))
        return calls

    def _parties(self, waiter: Waiter, connection: Connection) -> list[LiveParty]:
        owner_label = f"agent:{waiter.agent}" if waiter.agent is not None else "owner"
        labels: dict[int, str] = {id(connection.callee): owner_label}
        labels.update({id(p.callee): p.label for p in connection.parties})
        out = [
            LiveParty(
                id=0,
                label=owner_label,
                name=self.name(waiter.agent) if waiter.agent is not None else "",
                role="owner",
                mode="muted" if connection.muted else "full",
                muted=connection.muted,
            )
        ]
        for party in connection.parties:
            kind, _, value = party.label.partition(":")
            name = self.name(value) if kind in ("agent", "supervisor") else value
            if party.role == "monitor":
                target = party.whisper_to
                whisper_to = (
                    labels.get(id(target), "")
                    if party.monitor == "whisper"
                    and target is not None
                    and target is not connection.callee
                    else None
                )
                out.append(
                    LiveParty(
                        id=party.id,
                        label=party.label,
                        name=name,
                        role="monitor",
                        mode=party.monitor,
                        muted=False,
                        whisper_to=whisper_to,
                    )
                )
            else:
                out.append(
                    LiveParty(
                        id=party.id,
                        label=party.label,
                        name=name,
                        role="party",
                        mode="muted" if party.muted else "full",
                        muted=party.muted,
                    )
                )
        return out

    def agents(self) -> list[AgentRow]:
        acd = self.acd
        now = datetime.now(UTC)
        rows = []
        for name in sorted(acd.agents):
            status = acd.agent_status(name)
            key = (status.state, status.reason, status.call_id)
            seen = self._agent_since.get(name)
            if seen is None or seen[0] != key:
                seen = self._agent_since[name] = (key, now)
            config = acd.config.agents.get(name)
            rows.append(
                AgentRow(
                    username=name,
                    display_name=self.name(name),
                    state=status.state,
                    reason=status.reason,
                    call_id=status.call_id,
                    queues=list(config.queues) if config is not None else [],
                    since=seen[1],
                )
            )
        return rows

    def queues(self) -> list[QueueRow]:
        return [
            QueueRow(
                queue=s.queue,
                waiting=s.waiting,
                longest_wait_seconds=round(s.longest_wait_seconds, 1),
                agents_available=s.agents_available,
                answered=s.answered,
                abandoned=s.abandoned,
                service_level=None if s.service_level is None else round(s.service_level, 1),
                service_level_seconds=s.service_level_seconds,
            )
            for s in self.acd.queue_stats()
        ]


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _caller(waiter: Waiter) -> Caller:
    caller = waiter.caller
    names = [c.name for c in waiter.customers]
    name = caller.display_name or (names[0] if len(names) == 1 else "")
    return Caller(number=caller.e164 or "", name=name or "", withheld=caller.withheld)
