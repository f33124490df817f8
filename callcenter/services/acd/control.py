"""What an agent does to its own call from the page or the API: answer, reject, hang up, hold,
mute, digits, blind transfer (agent, queue or number) and warm transfer (consult, complete,
cancel).

Owns the rules that tie those requests to the ACD's bookkeeping: who may act on which call
(only the agent it rings or talks to), the agent states of everyone involved (a transferred
agent goes to wrap-up, a consulted agent is reserved, then on the call), the call record's
timeline, and where a transferred caller goes (back to the queue's music, waiting for one
agent, or out through the trunk). The engine's `Connection` does the media. Must not know HTTP.

Transfer to an agent queues the caller for that agent alone (the router's `agent:<name>`
skill), in a queue the agent serves, so the caller hears the queue's music and announcements
until that agent is free, and overflow still applies.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from callcenter.engine.bridge import Target
from callcenter.engine.browser import BrowserCall
from callcenter.engine.connection import (
    MAX_PARTIES,
    Callee,
    CallStateError,
    Connection,
    ConsultState,
    Party,
    PartyChange,
)
from callcenter.engine.outbound import CallFailed
from callcenter.sip import SipUri

from .agent_state import AgentState
from .inputs import (
    AgentHangup,
    AgentInput,
    Answer,
    CallerHangup,
    Offer,
    OfferWithdrawal,
    RingTimeout,
)
from .queue import RoutingError
from .runtime import DIALABLE, AcdService, Waiter, _Talking

log = logging.getLogger(__name__)

CONSULT_RING_SECONDS = 30.0

TargetKind = Literal["agent", "queue", "number", "phone"]


class ControlError(Exception):
    """A request the call's state refuses; `status` is the HTTP status that says so."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferTarget:
    kind: TargetKind
    value: str

    def label(self) -> str:
        return f"{self.kind}:{self.value}"


ALONE_POLICIES = ("end", "queue")
AlonePolicy = Literal["end", "queue"]


class CallControl:
    """`alone`: what happens to the customer when everyone else left their conference: the
    call ends ("end"), or the customer waits in the call's queue again for the next agent
    ("queue")."""

    def __init__(self, acd: AcdService, *, alone: AlonePolicy = "end") -> None:
        if alone not in ALONE_POLICIES:
            raise ValueError(f"alone is one of {', '.join(ALONE_POLICIES)}")
        self.acd = acd
        self.alone = alone
        # The agent behind each answered party (a page's or a phone's call), by its callee.
        self._agents: weakref.WeakKeyDictionary[Callee, str] = weakref.WeakKeyDictionary()
        self._watched: weakref.WeakSet[Connection] = weakref.WeakSet()

    # --- finding the call -----------------------------------------------------------------

    def _offer(self, agent: str, call_id: str) -> None:
        state = self.acd.agents.get(agent)
        if state is None:
            raise ControlError(403, f"{agent} is not an agent of any queue")
        if state.state is not AgentState.RESERVED or state.call_id != call_id:
            raise ControlError(404, "no such call is ringing for you")

    def _talk(self, agent: str, call_id: str) -> tuple[Waiter, _Talking]:
        talking = self.acd.talking.get(agent)
        if talking is None or talking.call_id != call_id or talking.ended:
            raise ControlError(404, "you are not on that call")
        waiter = self.acd.waiters.get(call_id)
        if waiter is None:
            raise ControlError(409, "the call has ended")
        return waiter, talking

    def _connection(
        self, agent: str, call_id: str, *, consulted: bool = False
    ) -> tuple[Waiter, _Talking, Connection]:
        """The agent's call and its connection. Only the agent the caller is connected to
        controls it; an agent being consulted may only hang up (`consulted=True`)."""
        waiter, talking = self._talk(agent, call_id)
        connection = self.acd.bridges.connection(waiter.call)
        if connection is None:
            raise ControlError(409, "the call has ended")
        if waiter.agent != agent and not consulted:
            raise ControlError(409, "only the call's owner (the agent who has it) can do that")
        return waiter, talking, connection

    # --- ringing ----------------------------------------------------------------------------

    def answer(self, agent: str, call_id: str) -> None:
        """Take the ringing call on the page (a desk phone answers by itself)."""
        self._offer(agent, call_id)
        phone = self.acd.phones.get(agent) if self.acd.phones is not None else None
        if phone is None or not phone.answer():
            raise ControlError(409, "your page is not ringing (answer on your phone)")

    def reject(self, agent: str, call_id: str) -> None:
        """Refuse the offer on every device: the call goes to the next agent."""
        self._offer(agent, call_id)
        phone = self.acd.phones.get(agent) if self.acd.phones is not None else None
        if phone is None or not phone.decline(603):
            raise ControlError(409, "your page is not ringing")

    # --- talking ---------------------------------------------------------------------------

    def hang_up(self, agent: str, call_id: str) -> None:
        """The agent leaves: a consulted agent ends the consultation; the caller's agent
        ends the call (a consultation still ringing is cancelled with it; one in progress
        hands the caller over, as an attended transfer by hanging up)."""
        waiter, _, connection = self._connection(agent, call_id, consulted=True)
        if waiter.agent != agent:
            party = self._agent_party(connection, agent)
            if party is not None:
                connection.remove_party(party)  # it leaves (hung up): the call goes on
            elif connection.consult is not None:
                connection.cancel_consult()
            return
        self.acd.bridges.hang_up_callee(connection.callee)

    def hold(self, agent: str, call_id: str, on: bool) -> None:
        waiter, _, connection = self._connection(agent, call_id)
        self._apply(lambda: connection.hold(on))
        if waiter.recording is not None:
            waiter.recording.note("hold" if on else "resume", by=agent)
        self.acd._event(call_id, "hold" if on else "resume", by="agent", via="page")

    def mute(self, agent: str, call_id: str, on: bool) -> None:
        """The agent mutes itself: the owner, or a party of the conference."""
        waiter, _, connection = self._connection(agent, call_id, consulted=True)
        if waiter.agent != agent:
            party = self._own_party(connection, agent)
            self._apply(lambda: connection.mute_party(party, on))
            self.acd._event(call_id, "party-muted" if on else "party-unmuted", party=party.label)
            return
        self._apply(lambda: connection.mute(on))
        self.acd._event(call_id, "mute" if on else "unmute", by="agent")

    def _own_party(self, connection: Connection, agent: str) -> Party:
        """The agent's own party in the conference (409: it is only being consulted)."""
        party = self._agent_party(connection, agent)
        if party is None:
            raise ControlError(409, "only the call's owner (the agent who has it) can do that")
        return party

    def pause_recording(self, agent: str, call_id: str, paused: bool) -> bool:
        """Pause (zeros are written) or resume the call's recording; False if already so."""
        waiter, _, _ = self._connection(agent, call_id)
        recording = waiter.recording
        if recording is None:
            raise ControlError(409, "this call is not being recorded")
        acd = self.acd
        changed = recording.pause(agent, acd.clock()) if paused else recording.resume(agent)
        if changed:
            acd._event(call_id, "recording-paused" if paused else "recording-resumed", by=agent)
        return recording.paused

    def recording_paused(self, agent: str, call_id: str) -> bool | None:
        """Whether the call's recording is paused (None: not recorded)."""
        waiter, _ = self._talk(agent, call_id)
        return None if waiter.recording is None else waiter.recording.paused

    def send_digits(self, agent: str, call_id: str, digits: str) -> None:
        _, _, connection = self._connection(agent, call_id)
        self._apply(lambda: connection.send_digits(digits))

    def state(self, agent: str, call_id: str) -> tuple[bool, bool, bool]:
        """(held, muted, consulting) of the agent's call as the engine has it (for a party
        of a conference: never held nor consulting, muted as its party is)."""
        waiter, _, connection = self._connection(agent, call_id, consulted=True)
        if waiter.agent != agent:
            return False, self._own_party(connection, agent).muted, False
        return connection.held, connection.muted, connection.consult is not None

    @staticmethod
    def _apply(operation: Callable[[], None]) -> None:
        try:
            operation()
        except CallStateError as exc:
            raise ControlError(409, str(exc)) from exc

    # --- blind transfer --------------------------------------------------------------------

    def transfer(self, agent: str, call_id: str, target: TransferTarget) -> None:
        """The agent leaves at once; the caller goes to the target (an agent, a queue, a
        number), hearing music meanwhile."""
        waiter, talking, connection = self._connection(agent, call_id)
        acd = self.acd
        queue = self._check_target(agent, target, waiter)
        if connection.consult is not None:
            raise ControlError(409, "finish the consultation first")
        acd.bridges.detach(connection)
        self._agent_left(agent, waiter, talking)
        if waiter.recording is not None:
            waiter.recording.note("transferred", by=agent, to=target.label())
        acd._event(call_id, "transferred", by=agent, to=target.label(), mode="blind")
        if target.kind == "number":
            acd._leave_queue(waiter)
            acd._spawn(acd._transfer(call_id, waiter.call, waiter.caller, target.value))
            return
        skills = {f"agent:{target.value}": 1} if target.kind == "agent" else {}
        assert queue is not None
        self._requeue(waiter, queue, skills, why=target.label())

    def _requeue(self, waiter: Waiter, queue: str, skills: dict[str, int], *, why: str) -> None:
        """The caller, detached from whoever it talked to, waits in `queue` again (music,
        announcements, overflow) for an agent with `skills`."""
        acd = self.acd
        call_id = waiter.call_id
        waiter.queue = queue
        waiter.skills = skills
        try:
            acd.router.enqueue(
                call_id,
                queue,
                acd.clock(),
                priority=waiter.priority,
                tier_rank=max((c.tier_rank for c in waiter.customers), default=0),
                required_skills=skills,
            )
        except RoutingError as exc:
            log.error("call %s: back to %s (%s) failed: %s", call_id, queue, why, exc)
            acd._end_record(call_id, "system", "failed")
            acd.calls.hang_up(waiter.call.dialog_id)
            return
        if acd.call_log is not None:
            acd.call_log.update(call_id, queue=queue)
        acd._hold(waiter)
        acd._route()

    def _check_target(self, agent: str, target: TransferTarget, waiter: Waiter) -> str | None:
        """The queue a transfer waits in (None for a number); 400/404 for a bad target."""
        acd = self.acd
        if target.kind == "number":
            number = target.value
            if not DIALABLE.fullmatch(number):
                raise ControlError(400, "a number is 1 to 15 digits, optionally after +")
            trunk = acd.trunks.outbound()
            if trunk is None or trunk.outbound is None:
                raise ControlError(409, "no outbound trunk is configured")
            return None
        if target.kind == "queue":
            if target.value not in acd.config.queues:
                raise ControlError(404, f"no queue {target.value!r}")
            return target.value
        other = acd.config.agents.get(target.value)
        if other is None:
            raise ControlError(404, f"no agent {target.value!r}")
        if target.value == agent:
            raise ControlError(400, "you cannot transfer a call to yourself")
        if not other.queues:
            raise ControlError(409, f"{target.value} serves no queue")
        return waiter.queue if waiter.queue in other.queues else other.queues[0]

    def _agent_left(self, agent: str, waiter: Waiter, talking: _Talking) -> None:
        """The agent is off the call (it goes on without them): wrap-up, and the ACD no
        longer counts them as talking to this caller."""
        acd = self.acd
        talking.ended = True
        if acd.talking.get(agent) is talking:
            del acd.talking[agent]
        waiter.agent = None
        waiter.ringing = None
        acd._handle(agent, AgentHangup(call_id=waiter.call_id), acd.clock())
        acd.observer.call_ended(agent, waiter.call_id, "transfer")

    # --- warm transfer ---------------------------------------------------------------------

    async def consult(self, agent: str, call_id: str, target: TransferTarget) -> None:
        """Ring the target while the caller hears music; when it answers, the agent and the
        target talk privately (then complete, join or cancel). Returns when the consultation
        is answered; ControlError when it is not."""
        await self.add_party(agent, call_id, target, join=False)

    async def add_party(
        self, agent: str, call_id: str, target: TransferTarget, *, join: bool = True
    ) -> Party | None:
        """Bring someone into the call: an agent (their page and phone ring), a queue (its
        longest-idle available agent), a registered phone, or a number through the trunk.
        The caller hears music while it rings. `join`: straight into the conference once
        answered (the party is returned); else a private consultation first (None)."""
        waiter, talking, connection = self._connection(agent, call_id)
        acd = self.acd
        if connection.consult is not None:
            raise ControlError(409, "someone is already being reached: finish that first")
        if len(connection.parties) >= MAX_PARTIES:
            raise ControlError(409, f"a conference holds at most {MAX_PARTIES} parties")
        target = self._party_target(agent, target, waiter)
        targets: list[Target]
        other: str | None = None
        if target.kind == "agent":
            other = target.value
            state = acd.agents.get(other)
            if state is None or state.state is not AgentState.AVAILABLE:
                raise ControlError(409, f"{other} is not available")
            targets = acd._targets_of(other)
            if not targets:
                raise ControlError(409, f"{other} has no page or phone to ring")
            acd._handle(other, Offer(call_id=call_id), acd.clock())
            acd.router.agent_unavailable(other)
            acd.consulting[other] = call_id
        elif target.kind == "phone":
            phone = acd._phone_of(target.value)
            if phone is None:
                raise ControlError(409, f"{target.value} has no registered phone")
            targets = [phone]
        else:
            trunk = acd.trunks.outbound()
            assert trunk is not None and trunk.outbound is not None
            peer = trunk.outbound
            targets = [(SipUri(host=peer.host, port=peer.port, user=target.value), peer)]
        self._watch(waiter, talking, connection)
        acd._event(call_id, "party-ringing" if join else "consult", by=agent, to=target.label())
        if other is not None:
            acd.observer.call_offered(other, waiter, CONSULT_RING_SECONDS)
        try:
            callee = await acd.bridges.consult(
                connection,
                targets,
                label=target.label(),
                caller_id=agent,
                caller_name=f"{'Conference' if join else 'Consult'} from {agent}",
                ring_timeout=CONSULT_RING_SECONDS,
                join=join,
            )
        except BaseException as exc:
            status = exc.status if isinstance(exc, CallFailed) else 0
            consult = connection.last_consult
            cancelled = consult is not None and consult.cancelled
            if other is not None:
                acd.consulting.pop(other, None)
                self._consult_not_answered(other, call_id, status, cancelled=cancelled)
            acd._event(call_id, "consult-failed", to=target.label(), status=status)
            acd.observer.parties_changed(waiter)
            if not isinstance(exc, CallFailed):
                raise
            if cancelled:
                raise ControlError(409, "the call to them was cancelled") from exc
            raise ControlError(409, f"{target.value} did not answer ({status})") from exc
        acd._event(call_id, "consult-answered", to=target.label())
        consult = connection.last_consult
        assert consult is not None
        consulted: _Talking | None = None
        if other is not None:
            acd.consulting.pop(other, None)
            consulted = _Talking(agent=other, call_id=call_id)
            acd.talking[other] = consulted
            self._agents[callee] = other
            acd._handle(other, Answer(call_id=call_id), acd.clock())
            acd.observer.call_answered(
                other, waiter, "page" if isinstance(callee, BrowserCall) else "phone"
            )
        if not join:
            previous = connection.on_consult

            def consult_state(state: ConsultState) -> None:
                if previous is not None:
                    previous(state)
                if connection.last_consult is not consult:
                    return  # an earlier consultation's handler: not about this one
                if state == "completed":
                    self._agents.pop(callee, None)
                    if other is None:
                        self._handed_off(agent, waiter, talking, target)
                    else:
                        assert consulted is not None
                        self._completed(agent, other, waiter, talking, consulted)
                elif state == "cancelled" and other is not None:
                    assert consulted is not None
                    self._agents.pop(callee, None)
                    if not consulted.ended:
                        consulted.ended = True
                        if acd.talking.get(other) is consulted:
                            del acd.talking[other]
                        acd._handle(other, AgentHangup(call_id=call_id), acd.clock())
                        acd.observer.call_ended(other, call_id, "agent")
                if state in ("completed", "cancelled", "joined"):
                    acd.observer.parties_changed(waiter)

            connection.on_consult = consult_state
        acd.observer.parties_changed(waiter)
        return consult.party

    def _party_target(self, agent: str, target: TransferTarget, waiter: Waiter) -> TransferTarget:
        """The target to ring (a queue becomes its longest-idle available agent)."""
        acd = self.acd
        if target.kind == "phone":
            if not target.value or len(target.value) > 64:
                raise ControlError(400, "a phone is its user name")
            return target
        if target.kind == "queue":
            if target.value not in acd.config.queues:
                raise ControlError(404, f"no queue {target.value!r}")
            skill = f"queue:{target.value}"
            free = [
                (view.available_since or 0.0, name)
                for name, state in acd.agents.items()
                if name != agent
                and state.state is AgentState.AVAILABLE
                and (view := acd.router.agent(name)).skills.get(skill, -1) >= 1
                and acd._targets_of(name)
            ]
            if not free:
                raise ControlError(409, f"no agent of {target.value} is available")
            return TransferTarget(kind="agent", value=min(free)[1])
        self._check_target(agent, target, waiter)
        return target

    # --- the conference's bookkeeping ----------------------------------------------------------

    def _watch(self, waiter: Waiter, talking: _Talking, connection: Connection) -> None:
        """Once per connection: its parties' comings and goings reach the ACD's agent states
        and the pages, and the owner's departure hands the call on."""
        if connection in self._watched:
            return
        self._watched.add(connection)
        acd = self.acd
        previous_party = connection.on_party

        def party_changed(party: Party, change: PartyChange) -> None:
            if previous_party is not None:
                previous_party(party, change)
            if change in ("left", "removed"):
                self._party_left(waiter, connection, party, change)
            elif change == "joined":
                acd._event(waiter.call_id, "party-joined", party=party.label, role=party.role)
            acd.observer.parties_changed(waiter)

        def owner_changed(old: Callee, heir: Party) -> None:
            self._owner_left(waiter, talking, old, heir)
            acd.observer.parties_changed(waiter)

        previous_consult = connection.on_consult

        def consult_changed(state: ConsultState) -> None:
            if previous_consult is not None:
                previous_consult(state)
            if state == "ringing":
                acd.observer.parties_changed(waiter)  # the pages show who is being reached

        connection.on_party = party_changed
        connection.on_owner = owner_changed
        connection.on_consult = consult_changed
        if self.alone == "queue":
            connection.on_alone = lambda: self._caller_alone(waiter, talking, connection)

    def _caller_alone(self, waiter: Waiter, talking: _Talking, connection: Connection) -> bool:
        """The last of a conference left the customer alone: back to the call's queue."""
        if talking.handed_off or talking.ended or waiter.gone:
            return False  # (no agent's call to end: the engine ends it)
        acd = self.acd
        agent = talking.agent
        acd.bridges.detach(connection)
        self._agent_left(agent, waiter, talking)
        if waiter.recording is not None:
            waiter.recording.note("alone", queue=waiter.queue)
        acd._event(waiter.call_id, "alone", by=agent, queue=waiter.queue)
        self._requeue(waiter, waiter.queue, {}, why="alone")
        return True

    def _party_left(
        self, waiter: Waiter, connection: Connection, party: Party, change: PartyChange
    ) -> None:
        acd = self.acd
        # Everyone leaves when the call ends: that is who ended it, not the party.
        by = (
            "party"
            if not connection.ended
            else "caller"
            if connection.ended_by == "caller"
            else "agent"
        )
        acd._event(waiter.call_id, "party-left", party=party.label, how=change, by=by)
        other = self._agents.pop(party.callee, None)
        if other is None:
            return
        consulted = acd.talking.get(other)
        if consulted is not None and consulted.call_id == waiter.call_id:
            consulted.ended = True
            del acd.talking[other]
        state = acd.agents.get(other)
        if state is not None and state.state is AgentState.ON_CALL:
            ended: AgentInput = (
                CallerHangup(call_id=waiter.call_id)
                if by == "caller"
                else AgentHangup(call_id=waiter.call_id)
            )
            acd._handle(other, ended, acd.clock())
        reason = "removed" if change == "removed" else "caller" if by == "caller" else "agent"
        acd.observer.call_ended(other, waiter.call_id, reason)

    def _owner_left(self, waiter: Waiter, talking: _Talking, old: Callee, heir: Party) -> None:
        """The owner left a conference: it wraps up; the heir owns the call from now on (an
        agent: its page controls it; a phone or number: the call goes on without an agent
        and its end closes the record)."""
        acd = self.acd
        first = talking.agent
        if acd.talking.get(first) is talking:
            del acd.talking[first]
        self._agents.pop(old, None)
        acd._handle(first, AgentHangup(call_id=waiter.call_id), acd.clock())
        acd.observer.call_ended(first, waiter.call_id, "agent")
        heir_agent = self._agents.pop(heir.callee, None)
        acd._event(waiter.call_id, "owner-changed", by=first, to=heir.label)
        if heir_agent is None:
            # As a warm transfer to a number: the ACD is done with this caller (its end
            # closes the record as transferred, once); the recording goes on to the end.
            talking.handed_off = True
            waiter.agent = None
            waiter.gone = True
            acd.waiters.pop(waiter.call_id, None)
            return
        consulted = acd.talking.get(heir_agent)
        if consulted is not None and consulted.call_id == waiter.call_id:
            consulted.ended = True
        talking.agent = heir_agent
        acd.talking[heir_agent] = talking
        waiter.agent = heir_agent

    def party_of(self, agent: str, call_id: str) -> Party | None:
        """The party `agent` is in the call's conference (None: not a party of it)."""
        waiter = self.acd.waiters.get(call_id)
        connection = None if waiter is None else self.acd.bridges.connection(waiter.call)
        return None if connection is None else self._agent_party(connection, agent)

    def _agent_party(self, connection: Connection, agent: str) -> Party | None:
        return next((p for p in connection.parties if self._agents.get(p.callee) == agent), None)

    def agent_of(self, party: Party) -> str | None:
        return self._agents.get(party.callee)

    def join(self, agent: str, call_id: str) -> Party:
        """The consulted party joins the caller and the agent: a conference."""
        _, _, connection = self._connection(agent, call_id)
        try:
            party = connection.join_consult()
        except CallStateError as exc:
            raise ControlError(409, str(exc)) from exc
        self.acd._event(call_id, "consult-joined", by=agent, party=party.label)
        return party

    def remove_party(self, agent: str, call_id: str, party_id: int) -> None:
        _, _, connection = self._connection(agent, call_id)
        party = self._party(connection, party_id)
        self._apply(lambda: connection.remove_party(party))

    def mute_party(self, agent: str, call_id: str, party_id: int, on: bool) -> None:
        _, _, connection = self._connection(agent, call_id)
        party = self._party(connection, party_id)
        if party.role != "party":
            raise ControlError(404, f"no party {party_id} on this call")
        self._apply(lambda: connection.mute_party(party, on))
        self.acd._event(call_id, "party-muted" if on else "party-unmuted", party=party.label)

    @staticmethod
    def _party(connection: Connection, party_id: int) -> Party:
        party = next((p for p in connection.parties if p.id == party_id), None)
        # A monitor is not the agent's to see or remove: the same 404 as no party at all.
        if party is None or party.role != "party":
            raise ControlError(404, f"no party {party_id} on this call")
        return party

    def _consult_not_answered(
        self, other: str, call_id: str, status: int, *, cancelled: bool
    ) -> None:
        """The consulted agent's ring ended unanswered: its own refusal or ring-out is a
        missed offer; our cancel (or the caller's end) only withdraws it."""
        acd = self.acd
        now = acd.clock()
        if cancelled or status not in (0, 408, 480, 487, 600, 603):
            acd.observer.offer_ended(other, call_id, "caller-left" if cancelled else "no-answer")
            acd._handle(other, OfferWithdrawal(call_id=call_id), now)
        elif status in (600, 603):
            acd.observer.offer_ended(other, call_id, "rejected")
            acd._handle(other, AgentHangup(call_id=call_id), now)
        else:
            acd.observer.offer_ended(other, call_id, "no-answer")
            acd._handle(other, RingTimeout(call_id=call_id), now)

    def _completed(
        self, agent: str, other: str, waiter: Waiter, talking: _Talking, consulted: _Talking
    ) -> None:
        """The consulted agent took the call: the first agent wraps up; the call's end is
        now the second agent's (the bridge reports it through the first's `_Talking`)."""
        acd = self.acd
        if acd.talking.get(agent) is talking:
            del acd.talking[agent]
        acd._handle(agent, AgentHangup(call_id=waiter.call_id), acd.clock())
        acd.observer.call_ended(agent, waiter.call_id, "transfer")
        talking.agent = other
        acd.talking[other] = talking
        consulted.ended = True
        waiter.agent = other
        acd._event(waiter.call_id, "transferred", by=agent, to=f"agent:{other}", mode="warm")
        if acd.call_log is not None:
            acd.call_log.update(waiter.call_id, agent=other)

    def _handed_off(
        self, agent: str, waiter: Waiter, talking: _Talking, target: TransferTarget
    ) -> None:
        """A consulted number took the call: the agent wraps up; the call goes on without
        any agent, and its end closes the record as transferred."""
        acd = self.acd
        if acd.talking.get(agent) is talking:
            del acd.talking[agent]
        talking.handed_off = True
        acd._stop_recording(waiter)  # (a number outside: not recorded past the handover)
        waiter.agent = None
        waiter.gone = True  # the ACD is done with this caller
        acd.waiters.pop(waiter.call_id, None)
        acd._handle(agent, AgentHangup(call_id=waiter.call_id), acd.clock())
        acd.observer.call_ended(agent, waiter.call_id, "transfer")
        acd._event(waiter.call_id, "transferred", by=agent, to=target.label(), mode="warm")

    def complete_consult(self, agent: str, call_id: str) -> None:
        _, _, connection = self._connection(agent, call_id)
        try:
            connection.complete_consult()
        except CallStateError as exc:
            raise ControlError(409, str(exc)) from exc
        self.acd._event(call_id, "consult-completed", by=agent)

    def cancel_consult(self, agent: str, call_id: str) -> None:
        _, _, connection = self._connection(agent, call_id)
        try:
            connection.cancel_consult()
        except CallStateError as exc:
            raise ControlError(409, str(exc)) from exc
        self.acd._event(call_id, "consult-cancelled", by=agent)
