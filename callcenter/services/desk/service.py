"""The agent's desk: what the agent page and the control API ask, and the events they are told.

Owns one WebSocket session per agent (a newer one takes over: a reload or a second tab), the
typed events pushed to it as the ACD acts (`AcdObserver`), the screen pop (the caller's
customer cards, loaded when the call is queued so the offer carries them at once), the
agent's requests (state, answer, hold, transfer … through `CallControl`), wrap-up saved on the
call record and the customer, and the page's audio handed to its `BrowserPhone`. Must not
know HTTP or WebSockets: a session is two callables (deliver an event, close) and the audio
sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.db.models import Customer, User
from callcenter.engine.browser import BrowserPhones
from callcenter.engine.connection import Party
from callcenter.services.acd.agent_state import AgentState, reason_problem
from callcenter.services.acd.control import (
    AlonePolicy,
    CallControl,
    ControlError,
    TransferTarget,
)
from callcenter.services.acd.events import InputRefused
from callcenter.services.acd.inputs import (
    AgentInput,
    GoAvailable,
    GoAway,
    Login,
    Logout,
    WrapUpEnd,
)
from callcenter.services.acd.runtime import AcdService, Waiter
from callcenter.services.audit import RECORDING_PAUSE, RECORDING_RESUME, AuditLog
from callcenter.services.callrecords import CallLog, CallRecordView
from callcenter.services.customers import CustomerService
from callcenter.services.customers.repository import CustomerError

from .views import (
    AgentStateChanged,
    AgentView,
    AudioStatus,
    CallAnswered,
    CallEnded,
    Caller,
    CallHeld,
    CallMuted,
    CallOffered,
    CallState,
    CallSummary,
    CallTransferred,
    CallView,
    ConsultChanged,
    CustomerCard,
    CustomerMatched,
    DeskEvent,
    Hello,
    Note,
    OfferWithdrawn,
    PartiesChanged,
    PartyView,
    QueueStat,
    QueueStats,
    RecordingChanged,
    TransferAgent,
    TransferTargets,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

AWAY_REASONS = ("Break", "Lunch", "Meeting", "Training", "Coaching", "Admin work")
DISPOSITIONS = (
    "resolved",
    "follow-up",
    "escalated",
    "sale",
    "no-sale",
    "information",
    "complaint",
    "wrong-number",
)
MAX_NOTES = 4000
CARD_NOTES = 5
CARD_CALLS = 5
TAKEN_OVER = 4409
"""WebSocket close code for a session replaced by a newer one of the same agent."""
STATUS_INTERVAL = 1.0
KEPT_CALLS = 200


class DeskError(ControlError):
    """A request refused: `status` is the HTTP status that says why."""


@dataclass(eq=False)
class DeskSession:
    agent: str
    deliver: Callable[[DeskEvent], None]
    close: Callable[[int], None]
    send_audio: Callable[[bytes], None]
    closed: bool = False


@dataclass(eq=False)
class DeskCall:
    """A call as pages show it, from its offer until the wrap-up is saved."""

    call_id: str
    caller: Caller
    queue: str | None
    customers: list[CustomerCard]
    customer_id: int | None
    since: datetime
    on: str | None = None
    agent: str | None = None
    answered_at: datetime | None = None  # the page's call timer counts talk time from here
    ended: bool = False
    consult_target: str = ""


@dataclass(eq=False)
class _Offer:
    call_id: str
    reason: str = "withdrawn"


class AgentDesk:
    """The ACD's observer and the agent page's service."""

    def __init__(
        self,
        acd: AcdService,
        *,
        phones: BrowserPhones,
        customers: CustomerService,
        call_log: CallLog | None,
        sessions: async_sessionmaker[AsyncSession],
        away_reasons: Sequence[str] = AWAY_REASONS,
        dispositions: Sequence[str] = DISPOSITIONS,
        clock: Callable[[], float] = time.time,
        audit: AuditLog | None = None,
        alone: AlonePolicy = "end",
    ) -> None:
        self.acd = acd
        self.audit = audit
        self.control = CallControl(acd, alone=alone)
        self.phones = phones
        self.customers = customers
        self.call_log = call_log
        self._db = sessions
        self.away_reasons = list(away_reasons)
        self.dispositions = list(dispositions)
        self.clock = clock
        self.display_names: dict[str, str] = {}
        self._sessions: dict[str, DeskSession] = {}
        self._calls: dict[str, DeskCall] = {}
        self._cards: dict[str, asyncio.Task[list[CustomerCard]]] = {}
        self._offers: dict[str, _Offer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._last_stats: list[QueueStat] | None = None

    # --- service ----------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._db() as session:
            rows = await session.execute(select(User.username, User.display_name))
            self.display_names = {name: shown or name for name, shown in rows}
        self._ticker = asyncio.create_task(self._tick(), name="desk")

    async def stop(self) -> None:
        tasks = [t for t in (self._ticker, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for session in list(self._sessions.values()):
            session.close(1001)

    def listening(self) -> str:
        return f"agent desk: {len(self._sessions)} page(s) connected"

    # --- sessions (one WebSocket per agent) --------------------------------------------------

    def connect(
        self,
        agent: str,
        *,
        deliver: Callable[[DeskEvent], None],
        close: Callable[[int], None],
        send_audio: Callable[[bytes], None],
    ) -> DeskSession:
        """The agent's page opened its socket: it gets `hello` with the whole picture, then
        every event; a previous socket of the agent is closed (code 4409)."""
        self._check_agent(agent)
        session = DeskSession(agent=agent, deliver=deliver, close=close, send_audio=send_audio)
        old = self._sessions.get(agent)
        self._sessions[agent] = session
        phone = self.phones.phone(agent)
        phone.attach(send_audio)
        if old is not None:
            old.closed = True
            phone.detach(old.send_audio)
            old.close(TAKEN_OVER)
        deliver(Hello(agent=self.view(agent)))
        deliver(QueueStats(queues=self.queue_stats()))
        return session

    def disconnect(self, session: DeskSession) -> None:
        if session.closed:
            return
        session.closed = True
        self.phones.phone(session.agent).detach(session.send_audio)
        if self._sessions.get(session.agent) is session:
            del self._sessions[session.agent]

    def audio_in(self, session: DeskSession, data: bytes) -> None:
        """One binary frame from the page's microphone (bounded and parsed by the leg)."""
        if not session.closed:
            self.phones.phone(session.agent).leg.receive(data)

    def _publish(self, agent: str, event: DeskEvent) -> None:
        session = self._sessions.get(agent)
        if session is not None and not session.closed:
            try:
                session.deliver(event)
            except Exception:
                log.exception("desk: event to %s failed", agent)

    def _broadcast(self, event: DeskEvent) -> None:
        for agent in list(self._sessions):
            self._publish(agent, event)

    # --- what the ACD tells (AcdObserver) ----------------------------------------------------

    def agent_changed(self, agent: str) -> None:
        status = self.acd.agent_status(agent)
        offer = self._offers.get(agent)
        if offer is not None and (
            status.state != AgentState.RESERVED.value or status.call_id != offer.call_id
        ):
            on_it = status.state == AgentState.ON_CALL.value and status.call_id == offer.call_id
            del self._offers[agent]
            if not on_it:
                self._publish(agent, OfferWithdrawn(call_id=offer.call_id, reason=offer.reason))
        self._publish(
            agent,
            AgentStateChanged(state=status.state, reason=status.reason, call_id=status.call_id),
        )

    def call_queued(self, waiter: Waiter) -> None:
        # The screen pop is loaded while the caller waits, so the offer carries it at once.
        call_id = waiter.call_id
        ids = [c.customer_id for c in waiter.customers]
        self._cards[call_id] = self._spawn(self._load_cards(ids))
        self._calls[call_id] = DeskCall(
            call_id=call_id,
            caller=_caller(waiter),
            queue=waiter.queue,
            customers=[],
            customer_id=ids[0] if len(ids) == 1 else None,
            since=_now(),
        )
        self._trim()

    def call_offered(self, agent: str, waiter: Waiter, ring_timeout: float) -> None:
        self._offers[agent] = _Offer(call_id=waiter.call_id)
        call = self._call_of(waiter)
        call.queue = waiter.queue
        cards = self._cards.get(waiter.call_id)
        if cards is not None and cards.done() and not cards.cancelled():
            if cards.exception() is None:
                call.customers = cards.result()
            self._publish_offer(agent, call, ring_timeout)
            return
        self._spawn(self._offer_when_loaded(agent, call, ring_timeout))

    async def _offer_when_loaded(self, agent: str, call: DeskCall, ring_timeout: float) -> None:
        cards = self._cards.get(call.call_id)
        if cards is not None:
            with contextlib.suppress(Exception):
                call.customers = await asyncio.wait_for(asyncio.shield(cards), 0.5)
        offer = self._offers.get(agent)
        if offer is not None and offer.call_id == call.call_id:
            self._publish_offer(agent, call, ring_timeout)

    def _publish_offer(self, agent: str, call: DeskCall, ring_timeout: float) -> None:
        view = self._call_view(call, state="ringing", agent=agent)
        self._publish(agent, CallOffered(call=view, ring_timeout_seconds=ring_timeout))

    def offer_ended(self, agent: str, call_id: str, reason: str) -> None:
        offer = self._offers.get(agent)
        if offer is not None and offer.call_id == call_id:
            offer.reason = reason
        # agent_changed follows (the agent leaves 'reserved') and tells the page.

    def call_answered(self, agent: str, waiter: Waiter, on: str) -> None:
        self._offers.pop(agent, None)
        call = self._call_of(waiter)
        if call.answered_at is None:
            call.answered_at = _now()
        connection = self.acd.bridges.connection(waiter.call)
        if waiter.agent == agent:  # the caller's agent (not one answering a consultation)
            call.on = on
            call.agent = agent
            call.ended = False
            if connection is not None:
                previous = connection.on_consult

                def consulted(state: Any) -> None:
                    if previous is not None:
                        previous(state)
                    event = ConsultChanged(
                        call_id=call.call_id, state=state, target=call.consult_target
                    )
                    owner = waiter.agent  # who has the call now (the first may have left)
                    if owner is not None:
                        self._publish(owner, event)

                connection.on_consult = consulted
        view = self._call_view(call, state="talking", agent=agent)
        self._publish(agent, CallAnswered(call=view.model_copy(update={"on": on})))

    def call_ended(self, agent: str, call_id: str, by: str) -> None:
        call = self._calls.get(call_id)
        if call is not None and call.agent == agent:
            call.ended = True
        wrap_up = self.acd.agents[agent].wrap_up_seconds if agent in self.acd.agents else None
        self._publish(agent, CallEnded(call_id=call_id, by=by, wrap_up_seconds=wrap_up))

    # --- views -------------------------------------------------------------------------------

    def view(self, agent: str) -> AgentView:
        self._check_agent(agent)
        status = self.acd.agent_status(agent)
        config = self.acd.config.agents[agent]
        call_view: CallView | None = None
        if status.call_id is not None and status.call_id in self._calls:
            call = self._calls[status.call_id]
            call_view = self._call_view(call, state=self._state_of(agent, call), agent=agent)
        return AgentView(
            username=agent,
            display_name=self.display_names.get(agent, agent),
            state=status.state,
            reason=status.reason,
            call=call_view,
            queues=list(config.queues),
            away_reasons=self.away_reasons,
            dispositions=self.dispositions,
        )

    def _state_of(self, agent: str, call: DeskCall) -> CallState:
        state = self.acd.agents[agent].state
        if state is AgentState.RESERVED:
            return "ringing"
        if state is AgentState.WRAP_UP or call.ended:
            return "wrap-up"
        try:
            held, _, consulting = self.control.state(agent, call.call_id)
        except ControlError:
            return "talking"
        return "consulting" if consulting else "held" if held else "talking"

    def _call_view(self, call: DeskCall, *, state: CallState, agent: str) -> CallView:
        held = muted = False
        paused: bool | None = None
        with contextlib.suppress(ControlError):
            held, muted, _ = self.control.state(agent, call.call_id)
            paused = self.control.recording_paused(agent, call.call_id)
        owner, parties, reaching = self.parties(agent, call.call_id)
        return CallView(
            owner=owner,
            parties=parties,
            reaching=reaching,
            call_id=call.call_id,
            state=state,
            caller=call.caller,
            queue=call.queue,
            customers=call.customers,
            customer_id=call.customer_id,
            muted=muted,
            held=held,
            on="page" if call.on == "page" else "phone" if call.on == "phone" else None,
            recording_paused=paused,
            since=call.answered_at or call.since,
        )

    def parties(self, agent: str, call_id: str) -> tuple[bool, list[PartyView], str | None]:
        """(whether `agent` owns the call, the others on it as that agent sees them, who is
        being reached). A supervisor only listening is never shown."""
        acd = self.acd
        waiter = acd.waiters.get(call_id)
        connection = None if waiter is None else acd.bridges.connection(waiter.call)
        if waiter is None or connection is None:
            return True, [], None
        owner = waiter.agent == agent
        views: list[PartyView] = []
        if not owner:
            owner_label = f"agent:{waiter.agent}" if waiter.agent else "number"
            name = self.display_names.get(waiter.agent or "", waiter.agent or "")
            views.append(PartyView(id=0, label=owner_label, name=name, role="party", mode="full"))
        for party in connection.parties:
            if party.role == "monitor" and party.monitor == "listen":
                continue
            if self.control.agent_of(party) == agent:
                continue  # the viewer itself
            views.append(self._party_view(party))
        consult = connection.consult
        reaching = consult.target if owner and consult is not None else None
        return owner, views, reaching

    def _party_view(self, party: Party) -> PartyView:
        kind, _, value = party.label.partition(":")
        name = self.display_names.get(value, value) if kind in ("agent", "supervisor") else value
        mode: Any
        if party.role == "monitor":
            mode = "whisper" if party.monitor == "whisper" else "barge"
        else:
            mode = "muted" if party.muted else "full"
        return PartyView(
            id=party.id, label=party.label, name=name or party.label, role=party.role, mode=mode
        )

    def parties_changed(self, waiter: Waiter) -> None:
        """Tell every agent on the call who else is on it now."""
        call = self._calls.get(waiter.call_id)
        if call is not None and waiter.agent is not None and call.agent != waiter.agent:
            call.agent = waiter.agent  # the owner left a conference: this agent has it now
            call.ended = False
        agents = [waiter.agent] if waiter.agent is not None else []
        connection = self.acd.bridges.connection(waiter.call)
        if connection is not None:
            agents += [a for p in connection.parties if (a := self.control.agent_of(p)) is not None]
        for agent in agents:
            owner, parties, reaching = self.parties(agent, waiter.call_id)
            event = PartiesChanged(
                call_id=waiter.call_id, owner=owner, parties=parties, reaching=reaching
            )
            self._publish(agent, event)

    def queue_stats(self) -> list[QueueStat]:
        return [
            QueueStat(
                queue=s.queue,
                waiting=s.waiting,
                longest_wait_seconds=round(s.longest_wait_seconds, 1),
                agents_available=s.agents_available,
            )
            for s in self.acd.queue_stats()
        ]

    def transfer_targets(self) -> TransferTargets:
        agents = [
            TransferAgent(
                username=name,
                display_name=self.display_names.get(name, name),
                state=self.acd.agents[name].state.value,
            )
            for name in sorted(self.acd.agents)
        ]
        return TransferTargets(agents=agents, queues=sorted(self.acd.config.queues))

    # --- the agent's requests ----------------------------------------------------------------

    def set_state(self, agent: str, state: str, reason: str | None) -> AgentView:
        self._check_agent(agent)
        current = self.acd.agents[agent].state
        inputs: list[AgentInput]
        if state == "available":
            inputs = [Login()] if current is AgentState.LOGGED_OUT else [GoAvailable()]
        elif state == "away":
            text = (reason or "").strip()
            problem = reason_problem(text)
            if problem is not None:
                raise DeskError(422, problem)
            inputs = [GoAway(reason=text)]
            if current is AgentState.LOGGED_OUT:
                inputs.insert(0, Login())
        elif state == "logged-out":
            inputs = [Logout()]
        else:
            raise DeskError(422, "state is one of available, away, logged-out")
        for item in inputs:
            events = self.acd.agent_input(agent, item)
            refused = [e for e in events if isinstance(e, InputRefused)]
            if refused:
                raise DeskError(409, f"not now: {refused[0].why}")
        return self.view(agent)

    def answer(self, agent: str, call_id: str) -> None:
        self.control.answer(agent, call_id)

    def reject(self, agent: str, call_id: str) -> None:
        self.control.reject(agent, call_id)

    def hang_up(self, agent: str, call_id: str) -> None:
        self.control.hang_up(agent, call_id)

    def hold(self, agent: str, call_id: str, on: bool) -> None:
        self.control.hold(agent, call_id, on)
        self._publish(agent, CallHeld(call_id=call_id, held=on))

    def mute(self, agent: str, call_id: str, on: bool) -> None:
        self.control.mute(agent, call_id, on)
        _, muted, _ = self.control.state(agent, call_id)
        self._publish(agent, CallMuted(call_id=call_id, muted=muted))

    async def pause_recording(self, agent: str, call_id: str, paused: bool) -> None:
        """Pause or resume the call's recording; on the audit log first (no audit, no pause:
        a pause that nobody can account for must not happen)."""
        if self.audit is not None:
            action = RECORDING_PAUSE if paused else RECORDING_RESUME
            await self.audit.append(agent, action, f"call:{call_id}")
        now = self.control.pause_recording(agent, call_id, paused)
        self._publish(agent, RecordingChanged(call_id=call_id, paused=now))

    def recording_changed(self, waiter: Waiter, *, paused: bool) -> None:
        """The system resumed a pause that ran past its maximum: audited, and the page told."""
        if self.audit is not None:
            action = RECORDING_PAUSE if paused else RECORDING_RESUME
            self._spawn(self._audit("system", action, f"call:{waiter.call_id}"))
        if waiter.agent is not None:
            self._publish(waiter.agent, RecordingChanged(call_id=waiter.call_id, paused=paused))

    def send_digits(self, agent: str, call_id: str, digits: str) -> None:
        self.control.send_digits(agent, call_id, digits)

    def transfer(self, agent: str, call_id: str, target: TransferTarget) -> None:
        self.control.transfer(agent, call_id, target)
        self._publish(agent, CallTransferred(call_id=call_id, kind="blind", target=target.label()))

    async def consult(self, agent: str, call_id: str, target: TransferTarget) -> None:
        call = self._calls.get(call_id)
        if call is not None:
            call.consult_target = target.label()
        await self.control.consult(agent, call_id, target)

    async def add_party(
        self, agent: str, call_id: str, target: TransferTarget, *, join: bool
    ) -> PartyView | None:
        """Ring someone for the call (the caller hears music meanwhile): into the conference
        once answered (`join`), or a private consultation first. Returns when answered."""
        call = self._calls.get(call_id)
        if call is not None:
            call.consult_target = target.label()
        party = await self.control.add_party(agent, call_id, target, join=join)
        return None if party is None else self._party_view(party)

    def join(self, agent: str, call_id: str) -> PartyView:
        """The consulted party joins the caller and the agent: a conference."""
        return self._party_view(self.control.join(agent, call_id))

    def remove_party(self, agent: str, call_id: str, party_id: int) -> None:
        self.control.remove_party(agent, call_id, party_id)

    def mute_party(self, agent: str, call_id: str, party_id: int, on: bool) -> None:
        self.control.mute_party(agent, call_id, party_id, on)  # the pages hear of it

    def complete_consult(self, agent: str, call_id: str) -> None:
        call = self._calls.get(call_id)
        target = call.consult_target if call is not None else ""
        self.control.complete_consult(agent, call_id)
        self._publish(agent, CallTransferred(call_id=call_id, kind="warm", target=target))

    def cancel_consult(self, agent: str, call_id: str) -> None:
        self.control.cancel_consult(agent, call_id)

    async def wrap_up(
        self,
        agent: str,
        call_id: str,
        *,
        disposition: str,
        notes: str,
        customer_id: int | None,
    ) -> None:
        """The agent's after-call work: saved on the call record and, as a note, on the
        customer; the agent's wrap-up ends (available again, or the away they asked for)."""
        if disposition not in self.dispositions:
            raise DeskError(422, f"disposition is one of {', '.join(self.dispositions)}")
        if len(notes) > MAX_NOTES:
            raise DeskError(422, f"notes are at most {MAX_NOTES} characters")
        await self._check_own_call(agent, call_id, ringing=False)
        fields: dict[str, object] = {"outcome": disposition, "notes": notes}
        if customer_id is not None:
            await self._customer(customer_id)
            fields["customer_id"] = customer_id  # none given: the record keeps its customer
        if self.call_log is None:
            raise DeskError(503, "call records are not kept by this service")
        if not await self.call_log.amend(call_id, **fields):
            raise DeskError(404, "no such call")
        if customer_id is not None:
            text = f"Call {disposition}" + (f": {notes}" if notes.strip() else "")
            await self.customers.add_note(customer_id, text[:MAX_NOTES], kind="note", author=agent)
        if not any(t.call_id == call_id for t in self.acd.talking.values()):
            self._calls.pop(call_id, None)  # nobody else is still on it (a transfer)
        agent_state = self.acd.agents[agent]
        if agent_state.state is AgentState.WRAP_UP and agent_state.call_id in (call_id, None):
            # Wrap-up is done: available, or the away the agent asked for during the call.
            self.acd.agent_input(agent, WrapUpEnd())

    async def choose_customer(self, agent: str, call_id: str, customer_id: int) -> CustomerCard:
        """This call is about that customer (one of several matches, or a new one)."""
        await self._check_own_call(agent, call_id)
        card = await self.customer_card(customer_id)
        call = self._calls.get(call_id)
        if call is not None:
            call.customer_id = customer_id
            if all(c.id != customer_id for c in call.customers):
                call.customers = [*call.customers, card]
        if self.call_log is not None:
            self.call_log.event(call_id, "customer-chosen", customer_id=customer_id, by=agent)
            await self.call_log.amend(call_id, customer_id=customer_id)
        self._publish(agent, CustomerMatched(call_id=call_id, customer=card))
        return card

    async def create_customer(
        self,
        agent: str,
        *,
        name: str,
        company: str,
        tier: str,
        phone: str,
        email: str | None,
        call_id: str | None,
    ) -> CustomerCard:
        if call_id is not None:
            await self._check_own_call(agent, call_id)
        try:
            customer = await self.customers.create(
                name=name, company=company, tier=tier, email=email, phones=[phone] if phone else []
            )
        except CustomerError as exc:
            raise DeskError(422, str(exc)) from exc
        if call_id is not None:
            return await self.choose_customer(agent, call_id, customer.id)
        return await self.customer_card(customer.id)

    async def history(self, agent: str, limit: int) -> list[CallSummary]:
        if self.call_log is None:
            return []
        await self.call_log.flush()
        return [_summary(r) for r in await self.call_log.recent(limit=limit, agent=agent)]

    async def customer_card(self, customer_id: int) -> CustomerCard:
        customer = await self._customer(customer_id)
        phones = await self.customers.phones(customer_id)
        notes = await self.customers.notes(customer_id, limit=CARD_NOTES)
        calls: list[CallRecordView] = []
        if self.call_log is not None:
            calls = await self.call_log.recent(limit=CARD_CALLS, customer_id=customer_id)
        return CustomerCard(
            id=customer.id,
            name=customer.name,
            company=customer.company,
            tier=customer.tier,
            email=customer.email,
            phones=[p.e164 for p in phones],
            notes=[Note(at=n.created_at, author=n.author, kind=n.kind, text=n.text) for n in notes],
            recent_calls=[_summary(c) for c in calls],
        )

    # --- helpers ------------------------------------------------------------------------------

    def _check_agent(self, agent: str) -> None:
        if agent not in self.acd.agents:
            raise DeskError(403, f"{agent} is not an agent of any queue (see ivr/queues.yaml)")

    async def _check_own_call(self, agent: str, call_id: str, *, ringing: bool = True) -> None:
        """404 unless the call was offered to (`ringing`), answered by, or ended with this
        agent."""
        self._check_agent(agent)
        status = self.acd.agent_status(agent)
        call = self._calls.get(call_id)
        if status.call_id == call_id and status.state == AgentState.RESERVED.value:
            if ringing:
                return
            raise DeskError(409, "the call has not been answered")
        if status.call_id == call_id or (call is not None and call.agent == agent):
            return
        if self.call_log is not None:
            record = self.call_log.current(call_id) or await self.call_log.get(call_id)
            if record is not None and record.agent == agent:
                return
        raise DeskError(404, "no such call of yours")

    async def _customer(self, customer_id: int) -> Customer:
        try:
            return await self.customers.get(customer_id)
        except CustomerError as exc:
            raise DeskError(404, f"no customer {customer_id}") from exc

    async def _load_cards(self, ids: list[int]) -> list[CustomerCard]:
        cards = []
        for customer_id in ids:
            try:
                cards.append(await self.customer_card(customer_id))
            except DeskError:
                continue
        return cards

    def _call_of(self, waiter: Waiter) -> DeskCall:
        call = self._calls.get(waiter.call_id)
        if call is None:
            call = self._calls[waiter.call_id] = DeskCall(
                call_id=waiter.call_id,
                caller=_caller(waiter),
                queue=waiter.queue,
                customers=[],
                customer_id=None,
                since=_now(),
            )
        return call

    def _trim(self) -> None:
        """Forget the oldest calls no longer with the ACD (waiting or talking callers are
        kept whatever their number: their screen pop is still to come or on a page)."""
        if len(self._calls) <= KEPT_CALLS:
            return
        for call_id in list(self._calls):
            if len(self._calls) <= KEPT_CALLS:
                break
            if call_id not in self.acd.waiters:
                del self._calls[call_id]
                self._cards.pop(call_id, None)
        for call_id in [c for c, task in self._cards.items() if c not in self._calls]:
            self._cards.pop(call_id, None).cancel()  # type: ignore[union-attr]

    async def _tick(self) -> None:
        """Once a second: queue stats when they changed, audio health of page calls."""
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            try:
                stats = self.queue_stats()
                if stats != self._last_stats:
                    self._last_stats = stats
                    self._broadcast(QueueStats(queues=stats))
                for agent, session in list(self._sessions.items()):
                    phone = self.phones.get(agent)
                    if session.closed or phone is None or phone.current is None:
                        continue
                    leg = phone.leg
                    self._publish(
                        agent,
                        AudioStatus(
                            attached=leg.attached,
                            frames_in=leg.frames_in,
                            frames_out=leg.frames_out,
                            lost=leg.lost,
                            late=leg.late,
                        ),
                    )
            except Exception:
                log.exception("desk tick failed")

    async def _audit(self, actor: str, action: str, subject: str) -> None:
        assert self.audit is not None
        await self.audit.append(actor, action, subject, {"why": "maximum pause"})

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """A task the desk owns (cancelled and awaited by stop)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("desk task failed", exc_info=task.exception())


def _now() -> datetime:
    return datetime.now(UTC)


def _caller(waiter: Waiter) -> Caller:
    caller = waiter.caller
    names = [c.name for c in waiter.customers]
    name = caller.display_name or (names[0] if len(names) == 1 else "")
    return Caller(number=caller.e164 or "", name=name or "", withheld=caller.withheld)


def _summary(record: CallRecordView) -> CallSummary:
    return CallSummary(
        call_id=record.call_id,
        caller=record.caller,
        caller_name=record.caller_name,
        queue=record.queue,
        agent=record.agent,
        arrived_at=record.arrived_at,
        talk_seconds=record.talk_seconds,
        disposition=record.disposition,
        outcome=record.outcome,
        notes=record.notes,
    )
