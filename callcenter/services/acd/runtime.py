"""The ACD on live calls: queued callers, agents' phones, and the router between them.

Owns, for the calls the IVR hands over (`on_queued`): the caller ID read and matched to
customers before the call is queued (a VIP's tier raises its priority), hold music with
position and estimated-wait announcements, a callback the caller asks for with `*` (written
to the database before the caller hears it is booked, re-queued in the same place, also after
a restart, and dialled agent-first when its turn comes), offers to agents' registered phones
(one, or all at once for ring-all) with ring-no-answer handled by the agent state machine
(away 'missed') and the router (next agent), max-wait overflow into another queue or a
voicemail box, wrap-up, and a reconcile loop that keeps every agent's state true to the
engine (registrations, calls). Every decision goes on the call record with its reasons.
Must not know SIP messages, sockets or RTP: the engine's `Calls`, `Bridges` and
`OutboundCalls` do that; the pure `Router` and `Agent` decide.

Time: the router and the agents run on the wall clock (`time.time`), so a callback's place
(`entered_at`) means the same after a restart. One owned task ticks every `tick_interval`
for overflows, announcements, wrap-up deadlines and the reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from callcenter.engine.bridge import DECLINES as ENGINE_DECLINES
from callcenter.engine.bridge import Bridges, Target
from callcenter.engine.browser import BrowserCall, BrowserPhones
from callcenter.engine.calls import Call, Calls
from callcenter.engine.connection import EndedBy
from callcenter.engine.media import Prompt, load_music
from callcenter.engine.outbound import CallFailed
from callcenter.engine.registration import Registrations
from callcenter.engine.transport import Peer
from callcenter.engine.trunks import Trunks
from callcenter.services.callrecords import CallLog
from callcenter.services.customers import CallerId, CustomerMatch, CustomerService
from callcenter.services.ivr.interpreter import EnqueueCall, StartVoicemail, TransferCall
from callcenter.services.ivr.prompts import PromptLibrary
from callcenter.services.ivr.session import IvrSession
from callcenter.services.recordings import CallRecorder, RecordingService
from callcenter.services.voicemail import VoicemailService
from callcenter.sip import SipUri

from .agent_state import Agent, AgentState
from .callbacks import CallbackStore, StoredCallback
from .config import AcdConfig
from .events import AgentEvent, InputRefused
from .hold import HoldMedia
from .inputs import (
    AgentHangup,
    AgentInput,
    Answer,
    CallerHangup,
    Login,
    NetworkLoss,
    Offer,
    OfferWithdrawal,
    RingTimeout,
    Tick,
)
from .observer import AcdObserver, NoObserver
from .queue import QueueTarget, RoutingError, VoicemailTarget
from .routing import (
    AnnouncementDue,
    CallOfferedToAgent,
    CallOfferedToAll,
    Overflowed,
    Router,
)

log = logging.getLogger(__name__)

DIALABLE = re.compile(r"\+?[0-9]{1,15}")  # ASCII digits only: str.isdigit takes "²" too
# A callback rings the agent's desk phone first, then dials the customer from that call (a
# page has no SIP dialog to play that part): callbacks need this skill, which an agent has
# while a SIP phone of theirs is registered.
DESK_PHONE_SKILL = "desk-phone"
CALLBACK_DIGIT = "*"
CALLBACK_PREFIX = "callback:"
RECONCILE_INTERVAL = 1.0
# A callback whose customer did not answer is tried again after this, up to MAX_ATTEMPTS.
CALLBACK_RETRY_SECONDS = 120.0
# A refusal that means "the agent said no" rather than "nobody picked up".
DECLINED = frozenset({486, 600, 603})

Offered = CallOfferedToAgent | CallOfferedToAll


@dataclass(eq=False)
class Waiter:
    """A caller the ACD holds: waiting, ringing an agent, or talking to one."""

    call_id: str
    call: Call
    caller: CallerId
    customers: list[CustomerMatch]
    queue: str
    priority: int
    skills: dict[str, int]
    hold: Any = None  # HoldMedia while waiting (Any: the engine's Tickable)
    ringing: asyncio.Task[None] | None = None
    agent: str | None = None  # who answered
    gone: bool = False  # the caller hung up, or left the ACD (voicemail, callback)
    recording: CallRecorder | None = None  # from the first answer to the end, across transfers
    answered_at: float | None = None  # the latest answer (wall clock), for the dashboard


@dataclass(eq=False)
class PendingCallback:
    stored: StoredCallback
    call_id: str  # its name in the router: callback:<id>
    dialling: asyncio.Task[None] | None = None


@dataclass
class QueueStats:
    queue: str
    waiting: int
    longest_wait_seconds: float
    agents_available: int
    # Since the service started: callers answered (`in_time` of them within the queue's
    # service level) and callers who hung up while waiting or ringing.
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    service_level_seconds: float = 0.0

    @property
    def service_level(self) -> float | None:
        """Percent answered in time of the calls answered or abandoned (None: none yet)."""
        offered = self.answered + self.abandoned
        return None if offered == 0 else 100.0 * self.answered_in_time / offered


@dataclass
class _QueueCounts:
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0


@dataclass
class AgentStatus:
    username: str
    state: str
    reason: str | None
    call_id: str | None


@dataclass(eq=False)
class _Talking:
    agent: str
    call_id: str
    ended: bool = False
    handed_off: bool = False  # a warm transfer to a number: no agent is on the call now


class AcdService:
    """The ACD as `serve` runs it (a Service) and as the IVR's queue node hands calls to it."""

    def __init__(
        self,
        config: AcdConfig,
        *,
        calls: Calls,
        bridges: Bridges,
        registrations: Registrations | None,
        trunks: Trunks,
        library: PromptLibrary,
        customers: CustomerService,
        call_log: CallLog | None = None,
        callbacks: CallbackStore | None = None,
        voicemail: VoicemailService | None = None,
        music: Prompt | None = None,
        hold_music: Path | None = None,
        clock: Callable[[], float] = time.time,
        tick_interval: float = 0.2,
        login_on_register: bool = False,
        phones: BrowserPhones | None = None,
        observer: AcdObserver | None = None,
        recordings: RecordingService | None = None,
        max_recording_pause: float = 180.0,
    ) -> None:
        # Every answered call is recorded (the caller left, everyone else right); a pause
        # ends by itself after `max_recording_pause` seconds.
        self.recordings = recordings
        self.max_recording_pause = max_recording_pause
        self.config = config
        # Agents' web pages: rung next to their SIP phones, present while a socket is open.
        self.phones = phones
        self.observer: AcdObserver = observer or NoObserver()
        # Agents with only a desk phone (no web page yet) log in by registering it.
        self.login_on_register = login_on_register
        self._was_registered: dict[str, bool] = {}
        self.calls = calls
        self.bridges = bridges
        self.registrations = registrations
        self.trunks = trunks
        self.library = library
        self.customers = customers
        self.call_log = call_log
        self.callbacks = callbacks
        self.voicemail = voicemail
        self.music = music
        self.hold_music = hold_music
        self.clock = clock
        self.tick_interval = tick_interval
        self.router = Router(config.queues.values())
        self.agents: dict[str, Agent] = {}
        for name, agent in config.agents.items():
            self.router.set_agent(name, self._skills(name, desk_phone=False))
            self.agents[name] = Agent(name, wrap_up_seconds=agent.wrap_up_seconds)
        self.waiters: dict[str, Waiter] = {}
        self.pending_callbacks: dict[str, PendingCallback] = {}
        self.talking: dict[str, _Talking] = {}  # by agent
        self.consulting: dict[str, str] = {}  # an agent rung for a consultation -> call id
        self._desk_phones: dict[str, bool] = {}
        self.agent_events: list[AgentEvent] = []  # the latest, bounded (for the dashboard)
        self._counts: dict[str, _QueueCounts] = {name: _QueueCounts() for name in config.queues}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._route_soon: asyncio.Handle | None = None
        self._last_reconcile = 0.0
        self._stopping = False

    # --- service ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.music is None:
            self.music = await load_music(self.hold_music, cache=self.library.cache)
        if self.callbacks is not None:
            now = self.clock()
            for stored in await self.callbacks.pending():
                self._queue_callback(stored, now)
        self._reconcile(self.clock())
        self._loop_task = asyncio.create_task(self._run(), name="acd")

    async def stop(self) -> None:
        self._stopping = True
        if self._route_soon is not None:
            self._route_soon.cancel()
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def listening(self) -> str:
        queues = ", ".join(sorted(self.config.queues)) or "none"
        return (
            f"ACD: queues {queues}; {len(self.agents)} agents; "
            f"{len(self.pending_callbacks)} callbacks pending"
        )

    # --- what agents (and later the web page) ask -----------------------------------------------

    def agent_input(self, username: str, event: AgentInput) -> list[AgentEvent]:
        """An agent's request (login, logout, go away, available, wrap-up done)."""
        agent = self.agents.get(username)
        if agent is None:
            raise KeyError(f"{username!r} is not an agent of any queue")
        now = self.clock()
        if agent.state is AgentState.LOGGED_OUT:
            agent.reconcile(frozenset(), self._registered(username), now)
        return self._handle(username, event, now)

    def agent_status(self, username: str) -> AgentStatus:
        agent = self.agents[username]
        return AgentStatus(
            username=username,
            state=agent.state.value,
            reason=agent.away_reason,
            call_id=agent.call_id,
        )

    def queue_stats(self) -> list[QueueStats]:
        now = self.clock()
        out = []
        for name in sorted(self.config.queues):
            waiting = self.router.waiting(name)
            available = sum(
                1
                for a in self.agents
                if self.agents[a].state is AgentState.AVAILABLE
                and self.router.agent(a).skills.get(f"queue:{name}", -1) >= 1
            )
            counts = self._counts[name]
            out.append(
                QueueStats(
                    queue=name,
                    waiting=len(waiting),
                    longest_wait_seconds=max((now - c.entered_at for c in waiting), default=0.0),
                    agents_available=available,
                    answered=counts.answered,
                    answered_in_time=counts.answered_in_time,
                    abandoned=counts.abandoned,
                    service_level_seconds=self.config.service_level(name),
                )
            )
        return out

    # --- calls from the IVR -------------------------------------------------------------------

    def on_queued(self, session: IvrSession, action: EnqueueCall) -> None:
        """The IVR's queue node: the call is the ACD's from here on."""
        call = session.call
        if call is None or session.ended:
            return
        if action.queue not in self.config.queues:
            log.error("call %s: IVR flow queues to unknown queue %r", session.call_id, action.queue)
            session.release_media()
            self._end_record(session.call_id, "system", "failed")
            self.calls.hang_up(call.dialog_id)
            return
        # The IVR's music keeps playing until the caller is matched and queued.
        self._spawn(self._admit(session, call, action))

    async def _admit(self, session: IvrSession, call: Call, action: EnqueueCall) -> None:
        call_id = session.call_id
        caller = self._caller_id(session)
        customers: list[CustomerMatch] = []
        try:
            customers = await self.customers.match_caller(caller)
        except Exception:
            log.exception("call %s: customer lookup failed; queued as unknown", call_id)
        if session.ended or self.calls.get(call.dialog_id) is None:
            self._end_record(call_id, "caller", "abandoned")  # left during the lookup
            return
        tier_rank = max((c.tier_rank for c in customers), default=0)
        skills = {name: 1 for name in action.skills}
        now = self.clock()
        try:
            self.router.enqueue(
                call_id,
                action.queue,
                now,
                priority=action.priority,
                tier_rank=tier_rank,
                required_skills=skills,
            )
        except RoutingError as exc:
            log.error("call %s: cannot queue: %s", call_id, exc)
            self._end_record(call_id, "system", "failed")
            self.calls.hang_up(call.dialog_id)
            return
        waiter = Waiter(
            call_id=call_id,
            call=call,
            caller=caller,
            customers=customers,
            queue=action.queue,
            priority=action.priority,
            skills=skills,
        )
        self.waiters[call_id] = waiter
        # Recorded since the IVR answered (CALLCENTER_RECORD_IVR): the same file goes on.
        waiter.recording = session.take_recording()
        if waiter.recording is not None:
            self._event(call_id, "recording", path=waiter.recording.path, since="ivr")
        self.observer.call_queued(waiter)
        session.release_media()
        self._hold(waiter)
        previous = call.on_end

        def caller_left() -> None:
            if previous is not None:
                previous()
            self._caller_left(waiter)

        call.on_end = caller_left
        if self.call_log is not None:
            if customers:
                self.call_log.update(call_id, customer_id=customers[0].customer_id)
            self.call_log.event(
                call_id,
                "customer-matched" if customers else "customer-unknown",
                number=caller.e164 or "",
                withheld=caller.withheld,
                customers=[
                    {"id": c.customer_id, "name": c.name, "tier": c.tier} for c in customers
                ],
            )
            self.call_log.queued(call_id, action.queue)
            self.call_log.event(
                call_id,
                "priority",
                priority=action.priority,
                tier_rank=tier_rank,
                skills=dict(skills),
            )
        log.info(
            "call %s queued to %s (priority %d, tier rank %d, %d customer match(es))",
            call_id,
            action.queue,
            action.priority,
            tier_rank,
            len(customers),
        )
        self._route()

    def _caller_id(self, session: IvrSession) -> CallerId:
        request = session.pending.request
        trusted = self.trunks.match(session.pending.peer.host) is not None
        return self.customers.caller_id(request.headers, trusted=trusted)

    def _hold(self, waiter: Waiter) -> None:
        """Music (and announcements) for a waiting caller; `*` books a callback."""
        assert self.music is not None
        self.calls.release_media(waiter.call)
        waiter.hold = HoldMedia(waiter.call.leg, self.music)
        self.calls.attach_media(waiter.call, waiter.hold)
        waiter.call.leg.on_digit = lambda digit: self._digit(waiter, digit)

    def _caller_left(self, waiter: Waiter) -> None:
        if waiter.gone:
            return
        waiter.gone = True
        self.waiters.pop(waiter.call_id, None)
        if waiter.agent is not None:
            return  # talking to an agent: the bridge reports who ended it
        counts = self._counts.get(waiter.queue)
        if counts is not None and (
            self.router.is_offered(waiter.call_id)
            or any(c.call_id == waiter.call_id for c in self.router.waiting(waiter.queue))
        ):
            counts.abandoned += 1  # (still queued: not a call the conference went on without)
        self._stop_recording(waiter)  # left while waiting after a transfer
        ringing = self.router.remove(waiter.call_id)
        now = self.clock()
        for agent in ringing:
            self.observer.offer_ended(agent, waiter.call_id, "caller-left")
            self._handle(agent, CallerHangup(call_id=waiter.call_id), now)
        if self.call_log is not None:
            self.call_log.ended(waiter.call_id, by="caller", disposition="abandoned")
        log.info("call %s: the caller hung up while waiting in %s", waiter.call_id, waiter.queue)
        self._route()

    # --- routing ------------------------------------------------------------------------------

    def _route(self) -> None:
        """Route soon, once, whatever asked (several changes in one turn make one pass)."""
        if self._route_soon is None and not self._stopping:
            self._route_soon = asyncio.get_running_loop().call_soon(self._route_now)

    def _route_now(self) -> None:
        self._route_soon = None
        now = self.clock()
        for decision in self.router.route(now):
            try:
                self._offer(decision, now)
            except Exception:
                log.exception("call %s: offer failed", decision.call.call_id)
                self._abandon_offer(decision.call.call_id, now)

    def _offer(self, decision: Offered, now: float) -> None:
        call_id = decision.call.call_id
        names = (
            (decision.agent_id,) if isinstance(decision, CallOfferedToAgent) else decision.agent_ids
        )
        log_id = self._log_id(call_id)
        targets: list[tuple[str, Target]] = []
        for name in names:
            reachable = self._targets_of(name)
            if not reachable:
                # No registered phone (the reconcile had not seen it go yet): offline, not
                # 'missed'; the call goes to someone else.
                self._handle(name, NetworkLoss(), now)
                self.router.offer_failed(call_id, name, now)
                self._after(name, (), now)
                self._event(log_id, "agent-unreachable", agent=name)
                continue
            events = self._handle(
                name, Offer(call_id=call_id, wrap_up_seconds=decision.wrap_up_seconds), now
            )
            if any(isinstance(e, InputRefused) for e in events):
                self.router.offer_failed(call_id, name, now)
                self._after(name, (), now)
                continue
            targets.extend((name, target) for target in reachable)
        offered = list(dict.fromkeys(name for name, _ in targets))
        callback = self.pending_callbacks.get(call_id)
        if callback is not None and self.call_log is not None:
            record = callback.stored.record
            if self.call_log.current(log_id) is None:
                self.call_log.arrived(log_id, caller=record.number, dialled="callback")
                self.call_log.queued(log_id, record.queue)
        self._event(
            log_id,
            "offered",
            agents=offered,
            queue=decision.call.queue,
            strategy=decision.strategy.value,
            rule=decision.rule,
            candidates=[
                {
                    "agent": c.agent_id,
                    "score": round(c.score, 3),
                    "idle_seconds": round(c.idle_seconds, 3),
                    "calls_today": c.calls_answered_today,
                }
                for c in decision.candidates
            ],
            excluded=list(decision.excluded),
            effective_priority=decision.call.effective_priority,
        )
        if not targets:
            self._route()
            return
        log.info(
            "call %s offered to %s by %s (candidates %s)",
            call_id,
            ", ".join(offered),
            decision.strategy.value,
            ", ".join(f"{c.agent_id}={c.score:g}" for c in decision.candidates),
        )
        if callback is not None:
            # Desk phones only (DESK_PHONE_SKILL): the agent's page does not ring for it.
            sip = [(name, t) for name, t in targets if isinstance(t, tuple)]
            if not sip:  # the phone went between the reconcile and now
                for name in offered:
                    self._offer_failed(call_id, name, CallFailed(480, "No phone"), now)
                self._release_callback_offer(callback)
                return
            callback.dialling = self._spawn(self._dial_callback(callback, decision, sip))
            return
        waiter = self.waiters.get(call_id)
        if waiter is None or waiter.gone:  # gone in the meantime: withdraw the offer
            for name in self.router.remove(call_id):
                self._handle(name, OfferWithdrawal(call_id=call_id), now)
            return
        for name in offered:
            self.observer.call_offered(name, waiter, decision.ring_timeout_seconds)
        waiter.ringing = self._spawn(self._ring(waiter, decision, targets))

    def _abandon_offer(self, call_id: str, now: float) -> None:
        """After an unexpected error: no agent stays reserved, the caller keeps their place."""
        offered = self.router.offered_call(call_id)
        for name in self.router.remove(call_id):
            if self.agents[name].call_id == call_id:
                self._handle(name, OfferWithdrawal(call_id=call_id), now)
        waiter = self.waiters.get(call_id)
        if offered is None or waiter is None or waiter.gone:
            return
        if self.calls.get(waiter.call.dialog_id) is None:
            self._caller_left(waiter)
            return
        self.router.enqueue(
            call_id,
            offered.queue,
            now,
            priority=offered.priority,
            tier_rank=offered.tier_rank,
            required_skills=waiter.skills,
            entered_at=offered.entered_at,
        )
        if waiter.hold is None:
            with contextlib.suppress(Exception):
                self._hold(waiter)
        self._route()

    def _log_id(self, call_id: str) -> str:
        """The call record's id: the call's own, or one per attempt of a callback."""
        callback = self.pending_callbacks.get(call_id)
        if callback is None:
            return call_id
        return f"{call_id}/{callback.stored.attempts + 1}"

    def _event(self, call_id: str, kind: str, **data: object) -> None:
        if self.call_log is not None:
            self.call_log.event(call_id, kind, **data)

    def _end_record(self, call_id: str, by: str, disposition: str) -> None:
        if self.call_log is not None:
            self.call_log.ended(call_id, by=by, disposition=disposition)

    def _phone_of(self, agent: str) -> tuple[SipUri, Peer] | None:
        if self.registrations is None:
            return None
        bindings = self.registrations.contacts_of_user(agent)
        if not bindings:
            return None
        binding = bindings[0]  # the newest registration
        source = binding.source
        return binding.contact_uri, Peer(source.transport.upper(), source.host, source.port)

    async def _ring(
        self, waiter: Waiter, decision: Offered, targets: list[tuple[str, Target]]
    ) -> None:
        call_id = waiter.call_id
        names = [name for name, _ in targets]
        agents = list(dict.fromkeys(names))
        ringing = {name: names.count(name) for name in agents}
        if waiter.gone or self.calls.get(waiter.call.dialog_id) is None:
            self._abandon_offer(call_id, self.clock())  # left before the phones rang
            return
        if waiter.hold is not None:
            waiter.call.leg.on_digit = None
            self.calls.release_media(waiter.call)
            waiter.hold = None
        caller_name = waiter.customers[0].name if len(waiter.customers) == 1 else None
        talking = _Talking(agent="", call_id=call_id)

        def failed(index: int, error: CallFailed) -> None:
            # An agent with a page and a desk phone missed the call when both stopped
            # ringing, or said no on either.
            name = names[index]
            ringing[name] -= 1
            if ringing[name] == 0 or error.status in ENGINE_DECLINES:
                ringing[name] = 0
                self._offer_failed(call_id, name, error, self.clock())

        try:
            index, callee = await self.bridges.connect_answered(
                waiter.call,
                [target for _, target in targets],
                groups=[agents.index(name) for name in names],
                caller_id=waiter.caller.e164 or "anonymous",
                caller_name=caller_name or waiter.caller.display_name,
                ring_timeout=decision.ring_timeout_seconds,
                on_failed=failed,
                on_end=lambda by: self._talk_ended(waiter, talking, by),
            )
        except CallFailed:
            if waiter.gone:
                return  # the caller hung up: _caller_left withdrew the offer
            if self.calls.get(waiter.call.dialog_id) is None:
                self._caller_left(waiter)
                return
            if self.router.is_offered(call_id):  # a failure nobody reported
                self._abandon_offer(call_id, self.clock())
                return
            # Nobody answered (each failure is reported): back to the music and the queue.
            self._event(call_id, "returned-to-queue", queue=waiter.queue)
            self._hold(waiter)
            self._route()
            return
        except Exception:
            log.exception("call %s: ringing %s failed", call_id, ", ".join(agents))
            self._abandon_offer(call_id, self.clock())
            return
        agent = names[index]
        now = self.clock()
        try:
            accepted = self.router.answered(call_id, agent, now)
        except RoutingError:
            # The offer was withdrawn while the answer was on its way (the caller left).
            log.info("call %s: %s answered an offer already withdrawn", call_id, agent)
            self.bridges.hang_up_callee(callee)
            return
        waiter.agent = talking.agent = agent
        waiter.answered_at = now
        self.talking[agent] = talking
        counts = self._counts.get(waiter.queue)
        if counts is not None:
            counts.answered += 1
            if accepted.waited_seconds <= self.config.service_level(waiter.queue):
                counts.answered_in_time += 1
        self._log_holds(call_id, waiter.call, "caller")
        if callee.call is not None:
            self._log_holds(call_id, callee.call, "agent")
        self._handle(agent, Answer(call_id=call_id), now)
        for other in accepted.released:
            self.observer.offer_ended(other, call_id, "answered-elsewhere")
            self._handle(other, OfferWithdrawal(call_id=call_id), now)
        on_page = isinstance(callee, BrowserCall)
        self._record(waiter)
        if self.call_log is not None:
            self.call_log.answered(call_id, agent)
            self.call_log.update(call_id, queue=waiter.queue)
            self.call_log.event(
                call_id, "answered-on", agent=agent, on="page" if on_page else "phone"
            )
        self.observer.call_answered(agent, waiter, "page" if on_page else "phone")
        log.info(
            "call %s answered by %s after %.1f s in %s",
            call_id,
            agent,
            accepted.waited_seconds,
            waiter.queue,
        )

    def _record(self, waiter: Waiter) -> None:
        """The caller's room feeds the call's one recording (begun at the first answer)."""
        if self.recordings is None:
            return
        if waiter.recording is None:
            waiter.recording = self.recordings.begin(waiter.call_id)
            self._event(waiter.call_id, "recording", path=waiter.recording.path)
        else:
            waiter.recording.note("connected", agent=waiter.agent)
        connection = self.bridges.connection(waiter.call)
        if connection is not None:
            connection.room.on_recording = waiter.recording.write

    def _resume_recordings(self, now: float) -> None:
        """A pause longer than the maximum ends by itself: a forgotten pause must not leave
        the rest of the call unrecorded."""
        limit = self.max_recording_pause
        for waiter in self.waiters.values():
            recording = waiter.recording
            at = recording.paused_at if recording is not None else None
            if recording is not None and at is not None and now - at >= limit:
                recording.resume("system")
                self._event(waiter.call_id, "recording-resumed", by="system", after=limit)
                self.observer.recording_changed(waiter, paused=False)

    def _stop_recording(self, waiter: Waiter) -> None:
        if waiter.recording is not None and self.recordings is not None:
            self.recordings.finish(waiter.recording)
            waiter.recording = None

    def _log_holds(self, call_id: str, call: Call, who: str) -> None:
        """Hold and resume by either side go on the call record (the bridge plays the music)."""
        previous = call.on_hold
        call_log = self.call_log
        if call_log is None or previous is None:
            return

        def held(on_hold: bool) -> None:
            previous(on_hold)
            call_log.event(call_id, "hold" if on_hold else "resume", by=who)

        call.on_hold = held

    def _offer_failed(self, call_id: str, agent: str, error: CallFailed, now: float) -> None:
        """Ring-no-answer or a refusal: the agent goes away('missed'), the call waits again."""
        if not self.router.is_offered(call_id) or agent not in self.router.ringing_on(call_id):
            return
        declined = error.status in DECLINED
        self.observer.offer_ended(agent, call_id, "rejected" if declined else "no-answer")
        self.router.offer_failed(call_id, agent, now)
        event: AgentInput = (
            AgentHangup(call_id=call_id) if declined else RingTimeout(call_id=call_id)
        )
        self._handle(agent, event, now)
        if self.call_log is not None:
            self.call_log.event(
                call_id,
                "agent-declined" if declined else "ring-no-answer",
                agent=agent,
                status=error.status,
            )
        log.info("call %s: %s did not answer (%d)", call_id, agent, error.status)

    def _talk_ended(self, waiter: Waiter, talking: _Talking, by: EndedBy) -> None:
        if talking.ended:
            return
        talking.ended = True
        agent = talking.agent
        who = "agent" if by == "callee" else "caller"
        self._stop_recording(waiter)
        if talking.handed_off:
            self._end_record(
                waiter.call_id, "caller" if who == "caller" else "system", "transferred"
            )
            return
        if self.talking.get(agent) is talking:
            del self.talking[agent]
        event: AgentInput = (
            AgentHangup(call_id=waiter.call_id)
            if who == "agent"
            else CallerHangup(call_id=waiter.call_id)
        )
        self._handle(agent, event, self.clock())
        self.observer.call_ended(agent, waiter.call_id, who)
        if self.call_log is not None:
            self.call_log.ended(waiter.call_id, by=who, disposition="answered")
        log.info("call %s with %s ended by the %s", waiter.call_id, agent, who)
        self._route()

    # --- agents -------------------------------------------------------------------------------

    def _handle(self, name: str, event: AgentInput, now: float) -> list[AgentEvent]:
        events = self.agents[name].handle(event, now)
        self._after(name, events, now)
        return events

    def _after(self, name: str, events: Iterable[AgentEvent], now: float) -> None:
        changed = False
        for event in events:
            log.info("agent %s: %s", name, event)
            self.agent_events.append(event)
            changed = True
        if len(self.agent_events) > 1000:
            del self.agent_events[:500]
        agent = self.agents[name]
        if agent.state is AgentState.AVAILABLE:
            self.router.agent_available(name, now)
            self._route()
        elif agent.state is not AgentState.RESERVED:
            # Reserved keeps its idle time: an offer withdrawn (another agent won a ring-all,
            # the caller left) must not send the agent to the back of longest-idle.
            self.router.agent_unavailable(name)
        if changed:
            self.observer.agent_changed(name)

    def _registered(self, name: str) -> bool:
        """A phone registered or the agent's page open: the agent can be reached."""
        return self._page_open(name) or self._has_desk_phone(name)

    def _page_open(self, name: str) -> bool:
        phone = self.phones.get(name) if self.phones is not None else None
        return phone is not None and phone.present()

    def _has_desk_phone(self, name: str) -> bool:
        return self.registrations is not None and bool(self.registrations.contacts_of_user(name))

    def _skills(self, name: str, *, desk_phone: bool) -> dict[str, int]:
        """The agent's skills as the router sees them: configured, plus `agent:<name>` (a
        transfer may wait for this one agent) and the desk phone while one is registered."""
        skills = {**self.config.agents[name].skills, f"agent:{name}": 1}
        if desk_phone:
            skills[DESK_PHONE_SKILL] = 1
        return skills

    def _note_desk_phone(self, name: str, registered: bool) -> None:
        """The router's `desk-phone` skill follows the agent's registration."""
        if self._desk_phones.get(name) != registered:
            self._desk_phones[name] = registered
            self.router.set_agent(name, self._skills(name, desk_phone=registered))

    def _pages_gone(self) -> None:
        """A page that stayed away past its grace (the tab closed, the laptop died) ends its
        call: the caller must not wait in silence for an agent who is not coming back."""
        if self.phones is None:
            return
        for name in self.agents:
            phone = self.phones.get(name)
            if phone is not None and phone.current is not None and not phone.present():
                log.warning("agent %s: the page went away during a call; hanging it up", name)
                phone.hang_up()

    def _targets_of(self, agent: str) -> list[Target]:
        """Where an offer rings: the agent's page (when open) and newest registered phone."""
        targets: list[Target] = []
        if self.phones is not None:
            phone = self.phones.get(agent)
            if phone is not None and phone.present() and not phone.busy:
                targets.append(phone)
        sip = self._phone_of(agent)
        if sip is not None:
            targets.append(sip)
        return targets

    def _reconcile(self, now: float) -> None:
        """Every agent's state against the engine's truth: the never-stuck guarantee."""
        self._pages_gone()
        for name, agent in self.agents.items():
            talking = self.talking.get(name)
            real = frozenset({talking.call_id}) if talking is not None else frozenset()
            ringing = frozenset(
                call_id
                for call_id in (agent.call_id,)
                if call_id is not None
                and (
                    name in self.router.ringing_on(call_id) or self.consulting.get(name) == call_id
                )
            )
            desk_phone = self._has_desk_phone(name)  # one registrar lookup per agent
            self._note_desk_phone(name, desk_phone)
            registered = desk_phone or self._page_open(name)
            events = agent.reconcile(real, registered, now, ringing=ringing)
            if events:
                self._after(name, events, now)
            was = self._was_registered.get(name, False)
            self._was_registered[name] = registered
            logged_out = agent.state is AgentState.LOGGED_OUT
            if self.login_on_register and registered and not was and logged_out:
                self._handle(name, Login(), now)

    # --- the clock: overflow, announcements, wrap-up, reconcile -------------------------------

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self._tick(self.clock())
            except Exception:
                log.exception("ACD tick failed")

    def _tick(self, now: float) -> None:
        for overflow in self.router.expire(now, exempt=self.pending_callbacks):
            try:
                self._overflow(overflow)
            except Exception:
                log.exception("call %s: overflow failed", overflow.call.call_id)
        for due in self.router.announcements_due(now):
            self._spawn(self._announce(due))
        self._resume_recordings(now)
        for name, agent in self.agents.items():
            timer = agent.get_timer()
            if timer is not None and now >= timer:
                self._handle(name, Tick(), now)
        if now - self._last_reconcile >= RECONCILE_INTERVAL:
            # Anything that changes the routing asks for a pass itself; this one is the
            # safety net (and starts a new round for calls every agent has let ring out).
            self._last_reconcile = now
            self._reconcile(now)
            self._route()

    def _overflow(self, overflow: Overflowed) -> None:
        call_id = overflow.call.call_id
        if self.call_log is not None:
            self.call_log.event(
                call_id,
                "overflow",
                rule=overflow.rule,
                waited_seconds=round(overflow.waited_seconds, 3),
                to=(
                    f"queue:{overflow.target.queue}"
                    if isinstance(overflow.target, QueueTarget)
                    else f"voicemail:{overflow.target.box}"
                ),
            )
        waiter = self.waiters.get(call_id)
        if waiter is None:
            return
        target = overflow.target
        if isinstance(target, QueueTarget):
            waiter.queue = target.queue
            self.router.enqueue(
                call_id,
                target.queue,
                overflow.at,
                priority=overflow.call.priority,
                tier_rank=overflow.call.tier_rank,
                required_skills=waiter.skills,
            )
            if self.call_log is not None:
                self.call_log.update(call_id, queue=target.queue)
            log.info("call %s overflowed to queue %s", call_id, target.queue)
            self._route()
            return
        assert isinstance(target, VoicemailTarget)
        log.info("call %s overflowed to voicemail %s", call_id, target.box)
        self._leave_queue(waiter)
        self._spawn(self._to_voicemail(call_id, waiter.call, target.box, waiter.caller.e164 or ""))

    def _leave_queue(self, waiter: Waiter) -> None:
        """The caller stays on the line but is no longer the ACD's (voicemail, goodbye)."""
        waiter.gone = True
        self.waiters.pop(waiter.call_id, None)
        self.router.remove(waiter.call_id)
        self._stop_recording(waiter)
        waiter.call.leg.on_digit = None
        if waiter.hold is not None:
            self.calls.release_media(waiter.call)
            waiter.hold = None

    async def _to_voicemail(self, call_id: str, call: Call, box: str, caller: str) -> None:
        message = None
        if self.voicemail is None:
            log.error("call %s: no voicemail service for box %s; hanging up", call_id, box)
            self.calls.hang_up(call.dialog_id)
            self._end_record(call_id, "system", "failed")
            return
        try:
            message = await self.voicemail.record(call, box, call_id=call_id, caller=caller)
        except Exception:
            log.exception("call %s: voicemail box %s failed", call_id, box)
            self.calls.hang_up(call.dialog_id)
            self._end_record(call_id, "system", "failed")
            return
        if message is not None:
            self._event(call_id, "voicemail", box=box, message_id=message.id)
        self._end_record(call_id, "caller" if message is not None else "system", "voicemail")

    # --- the IVR's voicemail and transfer nodes -----------------------------------------------

    def on_voicemail(self, session: IvrSession, action: StartVoicemail) -> None:
        call = session.call
        if call is None or session.ended:
            return
        self.calls.release_media(call)
        caller = self._caller_id(session)
        self._spawn(self._to_voicemail(session.call_id, call, action.box, caller.e164 or ""))

    def on_transfer(self, session: IvrSession, action: TransferCall) -> None:
        call = session.call
        if call is None or session.ended:
            return
        self.calls.release_media(call)
        self._spawn(self._transfer(session.call_id, call, self._caller_id(session), action.target))

    async def _transfer(self, call_id: str, call: Call, caller: CallerId, target: str) -> None:
        """Ring a user's phone, or a number through the outbound trunk, and join the caller."""
        where = self._phone_of(target)
        trunk = self.trunks.outbound()
        dialable = DIALABLE.fullmatch(target) is not None
        if where is None and dialable and trunk is not None and trunk.outbound is not None:
            peer = trunk.outbound
            where = SipUri(host=peer.host, port=peer.port, user=target), peer
        if self.call_log is not None:
            self.call_log.event(call_id, "transfer", to=target, reachable=where is not None)
        if where is not None:
            try:
                await self.bridges.connect_answered(
                    call,
                    [where],
                    caller_id=caller.e164 or "anonymous",
                    caller_name=caller.display_name,
                    on_end=lambda by: self._transfer_ended(call_id, by),
                )
                if self.call_log is not None:
                    self.call_log.event(call_id, "transfer-answered", to=target)
                return
            except CallFailed as exc:
                log.info("call %s: transfer to %s failed (%d)", call_id, target, exc.status)
                if self.calls.get(call.dialog_id) is None:  # the caller hung up while it rang
                    self._end_record(call_id, "caller", "abandoned")
                    return
        if self.call_log is not None:
            self.call_log.ended(call_id, by="system", disposition="failed")
        await self._goodbye(call, "text:Sorry, nobody can take your call right now. Goodbye.")

    def _transfer_ended(self, call_id: str, by: EndedBy) -> None:
        if self.call_log is not None:
            self.call_log.ended(
                call_id, by="caller" if by == "caller" else "agent", disposition="transferred"
            )

    async def _announce(self, due: AnnouncementDue) -> None:
        waiter = self.waiters.get(due.call_id)
        if waiter is None or waiter.hold is None:
            return
        text = f"You are number {due.position} in the queue."
        wait = due.estimated_wait_seconds
        if wait is not None and math.isfinite(wait):
            minutes = max(1, round(wait / 60))
            text += f" Your expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
        if self._may_call_back(waiter):
            text += " To be called back without losing your place, press star."
        try:
            prompt = await self.library.load("text:" + text)
        except Exception:
            log.exception("call %s: announcement not rendered", due.call_id)
            return
        if waiter.hold is not None and not waiter.gone:
            waiter.hold.announce([prompt])
            if self.call_log is not None:
                self.call_log.event(
                    due.call_id,
                    "announced",
                    position=due.position,
                    estimated_wait_seconds=None if wait is None else round(wait, 1),
                )

    # --- callbacks ----------------------------------------------------------------------------

    def _may_call_back(self, waiter: Waiter) -> bool:
        return (
            self.callbacks is not None
            and waiter.queue in self.config.callback_queues
            and waiter.caller.e164 is not None
            and self.trunks.outbound() is not None
        )

    def _digit(self, waiter: Waiter, digit: str) -> None:
        if digit != CALLBACK_DIGIT or waiter.gone or not self._may_call_back(waiter):
            return
        if waiter.ringing is not None and not waiter.ringing.done():
            return  # an agent's phone is ringing: the call is about to be answered
        if self.router.is_offered(waiter.call_id):
            return
        self._spawn(self._book_callback(waiter))

    async def _book_callback(self, waiter: Waiter) -> None:
        assert self.callbacks is not None and waiter.caller.e164 is not None
        now = self.clock()
        try:
            record = self.router.request_callback(waiter.call_id, waiter.caller.e164, now)
        except RoutingError:
            return  # offered meanwhile
        self._leave_queue(waiter)
        try:
            stored = await self.callbacks.add(record)
        except Exception:
            log.exception("call %s: the callback could not be stored", waiter.call_id)
            if self.calls.get(waiter.call.dialog_id) is None:
                self._end_record(waiter.call_id, "caller", "abandoned")
                return
            # Not booked: the caller keeps waiting in the same place.
            self.router.requeue_callback(record, self.clock())
            waiter.gone = False
            self.waiters[waiter.call_id] = waiter
            self._hold(waiter)
            self._route()
            return
        if self.call_log is not None:
            self.call_log.event(
                waiter.call_id, "callback-booked", number=record.number, callback_id=stored.id
            )
            self.call_log.ended(waiter.call_id, by="system", disposition="callback")
        self._queue_callback(stored, self.clock())
        log.info("call %s: callback %d booked for %s", waiter.call_id, stored.id, record.number)
        await self._goodbye(
            waiter.call,
            "text:Thank you. We will call you back on this number, keeping your place. Goodbye.",
        )

    async def _goodbye(self, call: Call, text: str) -> None:
        assert self.music is not None
        try:
            prompt = await self.library.load(text)
        except Exception:
            log.exception("goodbye prompt not rendered")
            self.calls.hang_up(call.dialog_id)
            return
        hold = HoldMedia(call.leg, self.music)
        self.calls.attach_media(call, hold)
        done = asyncio.get_running_loop().create_future()
        hold.announce([prompt], on_done=lambda: _settle(done, None))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done, prompt.duration + 2.0)
        self.calls.hang_up(call.dialog_id)

    def _queue_callback(self, stored: StoredCallback, now: float) -> None:
        call_id = f"{CALLBACK_PREFIX}{stored.id}"
        if call_id in self.pending_callbacks or stored.record.queue not in self.config.queues:
            return
        needs = {**stored.record.required_skills, DESK_PHONE_SKILL: 1}
        stored = replace(stored, record=replace(stored.record, required_skills=needs))
        self.pending_callbacks[call_id] = PendingCallback(stored=stored, call_id=call_id)
        self.router.requeue_callback(stored.record, now, call_id=call_id)
        self._route()

    async def _dial_callback(
        self,
        callback: PendingCallback,
        decision: Offered,
        targets: list[tuple[str, tuple[SipUri, Peer]]],
    ) -> None:
        """The callback's turn: ring the agent(s) first, then the customer from that call.
        Desk phones only: the agent's call is the "caller" of the bridge to the customer,
        and a page's call has no SIP dialog to play that part (yet)."""
        assert self.callbacks is not None and self.music is not None
        call_id = callback.call_id
        log_id = self._log_id(call_id)
        record = callback.stored.record
        names = [name for name, _ in targets]
        music = self.music
        agent_left = asyncio.get_running_loop().create_future()

        def failed(index: int, error: CallFailed) -> None:
            self._offer_failed(call_id, names[index], error, self.clock())

        try:
            index, agent_call = await self.bridges.originate(
                [target for _, target in targets],
                caller_id="callback",
                caller_name=f"Callback {record.number}",
                ring_timeout=decision.ring_timeout_seconds,
                on_failed=failed,
                media=lambda leg: HoldMedia(leg, music),
                on_end=lambda: _settle(agent_left, None),
            )
        except Exception as exc:
            if not isinstance(exc, CallFailed):
                log.exception("callback %s: ringing %s failed", call_id, ", ".join(names))
            self._release_callback_offer(callback)
            return
        agent = names[index]
        now = self.clock()
        try:
            accepted = self.router.answered(call_id, agent, now)
        except RoutingError:
            self.bridges.outbound.hang_up_now(agent_call)
            return
        self._handle(agent, Answer(call_id=call_id), now)
        for other in accepted.released:
            self._handle(other, OfferWithdrawal(call_id=call_id), now)
        self.pending_callbacks.pop(call_id, None)
        talking = _Talking(agent=agent, call_id=call_id)
        self.talking[agent] = talking
        if self.call_log is not None:
            self.call_log.update(log_id, queue=record.queue)
            self.call_log.answered(log_id, agent)
        established = agent_call.call
        done, by = False, "system"
        try:
            await self.callbacks.dialling(callback.stored.id)
            trunk = self.trunks.outbound()
            if trunk is None or trunk.outbound is None:
                log.error("callback %s: no outbound trunk to call %s", call_id, record.number)
                return
            if (
                established is None
                or agent_left.done()
                or not self.calls.get(established.dialog_id)
            ):
                by = "agent"  # hung up before the customer was dialled
                return
            self.calls.release_media(established)
            destination = trunk.outbound
            customer = SipUri(host=destination.host, port=destination.port, user=record.number)
            ended: asyncio.Future[EndedBy] = asyncio.get_running_loop().create_future()
            try:
                await self.bridges.connect_answered(
                    established,
                    [(customer, destination)],
                    caller_id=next(iter(trunk.numbers), "callcenter"),
                    on_end=lambda who: _settle(ended, who),
                )
            except CallFailed as exc:
                log.info("callback %s: %s not reached (%d)", call_id, record.number, exc.status)
                by = "agent"
                return
            self._event(log_id, "callback-connected", number=record.number)
            # In this bridge the agent's call is the "caller" side.
            by = "agent" if await ended == "caller" else "caller"
            done = True
        except Exception:
            log.exception("callback %s failed", call_id)
        finally:
            if established is not None and self.calls.get(established.dialog_id) is not None:
                self.calls.hang_up(established.dialog_id)
            await self._callback_done(callback, talking, log_id, done=done, by=by)

    def _release_callback_offer(self, callback: PendingCallback) -> None:
        """The agents' phones did not answer (or failed): the callback keeps its place."""
        now = self.clock()
        if self.router.is_offered(callback.call_id):
            for name in self.router.remove(callback.call_id):
                if self.agents[name].call_id == callback.call_id:
                    self._handle(name, OfferWithdrawal(call_id=callback.call_id), now)
            self.router.requeue_callback(callback.stored.record, now, call_id=callback.call_id)
        self._route()

    async def _callback_done(
        self,
        callback: PendingCallback,
        talking: _Talking,
        log_id: str,
        *,
        done: bool,
        by: str,
    ) -> None:
        assert self.callbacks is not None
        talking.ended = True
        if self.talking.get(talking.agent) is talking:
            del self.talking[talking.agent]
        event: AgentInput = (
            CallerHangup(call_id=talking.call_id)
            if by == "caller"
            else AgentHangup(call_id=talking.call_id)
        )
        self._handle(talking.agent, event, self.clock())
        self._end_record(log_id, by, "answered" if done else "failed")
        self._route()
        try:
            state = await self.callbacks.finished(callback.stored.id, done=done)
        except Exception:
            log.exception("callback %d: its state could not be stored", callback.stored.id)
            return
        if state == "pending":
            # Another try later, in the same place, after a pause (not at once, at the head).
            retry = StoredCallback(
                id=callback.stored.id,
                record=callback.stored.record,
                attempts=callback.stored.attempts + 1,
            )
            asyncio.get_running_loop().call_later(
                CALLBACK_RETRY_SECONDS, self._retry_callback, retry
            )

    def _retry_callback(self, stored: StoredCallback) -> None:
        if not self._stopping:
            self._queue_callback(stored, self.clock())

    # --- tasks --------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        if self._stopping:
            coroutine.close()  # stopping: no new work (the engine hangs the calls up)
            return None
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("ACD task failed", exc_info=task.exception())


def _settle(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)
