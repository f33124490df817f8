"""A connection: a caller joined to whoever answered them, and what can change while it lasts.

Owns the room of a call joined by `Bridges.connect_answered` and the changes made from a page
or an API while it lasts: hold (the caller hears music, nobody hears the caller), mute (the
server stops mixing the agent: the truth a page shows), digits to the caller, a consultation
(the caller on music while the agent talks to a third party in a room of its own, then
complete: the third party takes the agent's place; join: both come back into the caller's
room, a conference; or cancel), a party added straight into the room (the caller on music
only while it rings), parties removed or muted, supervisors monitoring (listen, whisper,
barge, switched in place), and detaching the caller for a blind transfer. Hold by re-INVITE
from either side still works as in any bridge.

The callee is the conference's owner: the one whose page controls it. When it leaves and an
added party is still there, the conference goes on and the first party added becomes the
owner (`on_owner` tells who); when only the caller (and monitors) would be left, the call
ends, unless `on_alone` takes the caller (back to a queue). Monitors never keep a call alive.

The modes follow from flags, never from the last click: the caller's leg is on hold while
we hold it, the callee's phone holds (re-INVITE) or a party is being reached; the callee's
leg is on hold while the caller holds (a two-party call only: in a conference the others go
on talking), else muted while muted; a party is muted or full; a monitor listens, whispers
(to the owner unless told whom) or is a full party (barge). Must not know agents, queues
or HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..media import Mode
from .browser import BrowserCall
from .calls import Call
from .media import MediaClock, Room
from .outbound import OutboundCall

log = logging.getLogger(__name__)

Callee = OutboundCall | BrowserCall
"""Whoever was rung for a call: a SIP phone or trunk (OutboundCall) or a page (BrowserCall)."""

EndedBy = Literal["caller", "callee"]
ConsultState = Literal["ringing", "talking", "failed", "cancelled", "completed", "joined"]
PartyRole = Literal["party", "monitor"]
MonitorMode = Literal["listen", "whisper", "barge"]
PartyChange = Literal["joined", "left", "removed", "changed"]
VALID_DIGITS = frozenset("0123456789*#ABCD")
MAX_PARTIES = 64
"""Parties and monitors in one room besides the caller and the owner (bounded: each one
costs a leg, a port pair and mixing)."""


class CallStateError(Exception):
    """An operation the connection's state does not allow now (ended, no consultation …);
    the message says which, for a person."""


@dataclass(slots=True, eq=False)
class Consult:
    """A third party being reached (or talked to) while the caller waits."""

    target: str
    callee: Callee | None = None  # once answered
    room: Room | None = None  # the agent and the third party, while talking
    cancel: Callable[[], None] | None = None  # stops the ringing
    cancelled: bool = False  # ended by us (cancel, the call's end), not by the third party
    join: bool = False  # straight into the caller's room once answered (no private talk)
    party: Party | None = None  # the party it became, once joined


@dataclass(slots=True, eq=False)
class Party:
    """Someone in the caller's room besides the caller and the owner: a party added to the
    conference, or a supervisor monitoring (`role="monitor"`). `id` is stable for the
    connection's life; `label` is what the service called it ('agent:bob')."""

    id: int
    label: str
    callee: Callee
    role: PartyRole = "party"
    muted: bool = False
    monitor: MonitorMode = "listen"
    whisper_to: Callee | None = None  # whisper's target; None: the owner
    left: bool = False


@dataclass(slots=True, eq=False, weakref_slot=True)
class Connection:
    call: Call
    room: Room
    callee: Callee
    clock: MediaClock
    hang_up_callee: Callable[[Callee], None]
    hang_up_caller: Callable[[Call], None]
    on_end: Callable[[EndedBy], None] | None = None
    on_consult: Callable[[ConsultState], None] | None = None
    previous_on_end: Callable[[], None] | None = None
    held: bool = False  # we hold the caller (the agent's Hold button)
    muted: bool = False
    caller_holds: bool = False  # the caller's re-INVITE
    callee_holds: bool = False  # the callee's re-INVITE (a SIP phone's hold key)
    ended: bool = False
    detached: bool = False
    consult: Consult | None = None
    last_consult: Consult | None = None  # the latest, also once over (how it ended)
    ended_by: EndedBy = "caller"
    parties: list[Party] = field(default_factory=list)
    on_party: Callable[[Party, PartyChange], None] | None = None
    # The owner left and `party` took its place (already removed from `parties`).
    on_owner: Callable[[Callee, Party], None] | None = None
    # The owner of a conference left and nobody is left to take over: True when the
    # service took the caller (it detached the connection), else the call ends.
    on_alone: Callable[[], bool] | None = None
    conference: bool = False  # a party has joined at some point
    _next_party: int = 1

    # --- modes --------------------------------------------------------------------------

    def apply_modes(self) -> None:
        if self.ended or self.detached:
            return
        room = self.room
        caller_mode = (
            Mode.HOLD if self.held or self.callee_holds or self.consult is not None else Mode.FULL
        )
        if self.call.leg in room.legs:
            room.set_mode(self.call.leg, caller_mode)
        leg = self.callee.leg
        conference = any(p.role == "party" for p in self.parties)
        if leg in room.legs:
            callee_mode = (
                Mode.HOLD
                if self.caller_holds and not conference
                else Mode.MUTED
                if self.muted
                else Mode.FULL
            )
            room.set_mode(leg, callee_mode)
        for party in self.parties:
            party_leg = party.callee.leg
            if party_leg not in room.legs:
                continue
            if party.role == "monitor" and party.monitor == "listen":
                room.set_mode(party_leg, Mode.LISTEN)
            elif party.role == "monitor" and party.monitor == "whisper":
                target = (party.whisper_to or self.callee).leg
                room.set_mode(party_leg, Mode.WHISPER, whisper_to=target)
            else:
                room.set_mode(party_leg, Mode.MUTED if party.muted else Mode.FULL)
        consult = self.consult
        if consult is not None and consult.room is not None and leg in consult.room.legs:
            # Mute is the agent's wherever it talks: the consulted party must not hear it.
            consult.room.set_mode(leg, Mode.MUTED if self.muted else Mode.FULL)

    def hold(self, on: bool) -> None:
        self._check_live()
        self.held = on
        self.apply_modes()

    def mute(self, on: bool) -> None:
        self._check_live()
        self.muted = on
        self.apply_modes()

    def send_digits(self, digits: str) -> None:
        """RFC 4733 events to the caller (in-band when they negotiated none)."""
        self._check_live()
        if not digits or len(digits) > 32 or not set(digits) <= VALID_DIGITS:
            raise CallStateError("digits are 1 to 32 of 0-9 * # A-D")
        for digit in digits:
            self.call.leg.send_digit(digit)

    def _check_live(self) -> None:
        if self.ended or self.detached:
            raise CallStateError("the call has ended")

    # --- the end ------------------------------------------------------------------------

    def caller_left(self) -> None:
        """The caller hung up (or was hung up): everyone else goes too."""
        if self.ended or self.detached:
            return
        self.ended_by = "caller"
        self._finish()
        self.hang_up_callee(self.callee)

    def callee_left(self, callee: Callee) -> None:
        """Someone rung for this call hung up: the owner (the caller goes too, unless a
        consultation or another party takes over), a party or a monitor (it leaves the
        room), or the consulted party (the consultation ends)."""
        if self.ended or self.detached:
            return
        if callee is not self.callee:
            party = self._party_of(callee)
            if party is not None:
                self._party_gone(party, "left")
            elif self.consult is not None and self.consult.callee is callee:
                self.consult_left(self.consult)
            return
        consult = self.consult
        if consult is not None and consult.callee is not None:
            self._complete(consult)  # the agent hung up while consulting: hand over
            return
        heir = next((p for p in self.parties if p.role == "party"), None)
        if heir is not None:
            self._promote(heir)
            return
        if self.conference and self.on_alone is not None and self.on_alone():
            return
        # (A consultation still ringing is cancelled by the end of the call, in _finish.)
        self.ended_by = "callee"
        self._finish()
        self.hang_up_caller(self.call)

    def _promote(self, heir: Party) -> None:
        """The owner left a conference: the first party added takes its place."""
        consult = self.consult
        if consult is not None:
            self._end_consult(consult, "cancelled")
        old = self.callee
        if old.leg in self.room.legs:
            self.room.remove(old.leg)
        self.parties.remove(heir)
        self.callee = heir.callee
        self.muted = heir.muted
        self.held = self.callee_holds = False
        if self.callee.call is not None:
            self.callee.call.on_hold = self._callee_holds
        self.apply_modes()
        if self.on_owner is not None:
            self.on_owner(old, heir)

    def _callee_holds(self, held: bool) -> None:
        self.callee_holds = held
        self.apply_modes()

    def _finish(self) -> None:
        self.ended = True
        self.clock.remove(self.room)
        for leg in self.room.legs:
            self.room.remove(leg)
        consult = self.consult
        if consult is not None:
            self._end_consult(consult, "cancelled")
        self._drop_parties()
        previous, self.previous_on_end = self.previous_on_end, None
        on_end, self.on_end = self.on_end, None
        self._unlink()
        if previous is not None:
            previous()
        if on_end is not None:
            on_end(self.ended_by)

    def _unlink(self) -> None:
        """Break the cycles closures <-> legs <-> calls at once: left to the cycle collector,
        thousands of ended calls made full collections that stalled the loop."""
        self.call.on_hold = None
        if self.callee.call is not None:
            self.callee.call.on_hold = None
        self.on_consult = None
        self.on_party = None
        self.on_owner = None
        self.on_alone = None
        if self.last_consult is not None:
            self.last_consult.cancel = None

    def detach(self) -> Call:
        """A blind transfer: the callee is hung up, the caller's call goes on, its leg free
        for whoever takes it next (nothing is reported through `on_end`)."""
        self._check_live()
        if any(p.role == "party" for p in self.parties):
            raise CallStateError("this is a conference: remove the other parties first")
        if self.consult is not None:
            self._end_consult(self.consult, "cancelled")
        self._drop_parties()
        self.detached = True
        self.clock.remove(self.room)
        for leg in self.room.legs:
            self.room.remove(leg)
        self.call.on_end = self.previous_on_end
        self.previous_on_end = None
        self.on_end = None
        self._unlink()
        self.hang_up_callee(self.callee)
        return self.call

    # --- consultation (warm transfer) ---------------------------------------------------

    def begin_consult(self, target: str, *, join: bool = False) -> Consult:
        """Start reaching a third party (the caller hears music meanwhile): to talk with
        privately first, or (`join`) to bring straight into the caller's room."""
        self._check_live()
        if self.consult is not None:
            raise CallStateError("a consultation is already in progress")
        if join and len(self.parties) >= MAX_PARTIES:
            raise CallStateError(f"a conference holds at most {MAX_PARTIES} parties")
        consult = Consult(target=target, join=join)
        self.consult = self.last_consult = consult
        self.apply_modes()  # the caller hears music from now on
        return consult

    def consult_answered(self, consult: Consult, callee: Callee) -> None:
        """The third party answered: the agent leaves the caller's room to talk to them."""
        if self.consult is not consult or self.ended or self.detached:
            self.hang_up_callee(callee)
            return
        consult.callee = callee
        if consult.join:
            self._join(consult)
            return
        agent_leg = self.callee.leg
        self.room.remove(agent_leg)
        room = consult.room = Room(forward=False)
        room.add(agent_leg)
        room.add(callee.leg)
        self.apply_modes()
        self.clock.add(room)
        if self.on_consult is not None:
            self.on_consult("talking")

    def consult_failed(self, consult: Consult) -> None:
        """Nobody answered the consultation: the agent is back with the caller."""
        if self.consult is not consult:
            return
        self.consult = None
        self.apply_modes()
        if self.on_consult is not None:
            self.on_consult("failed")

    def consult_left(self, consult: Consult) -> None:
        """The third party hung up during the consultation."""
        if self.consult is consult:
            self._end_consult(consult, "cancelled")
            self.apply_modes()

    def cancel_consult(self) -> None:
        consult = self.consult
        if consult is None:
            raise CallStateError("no consultation in progress")
        self._end_consult(consult, "cancelled")
        self.apply_modes()

    def join_consult(self) -> Party:
        """The consulted party joins the caller's room with the agent: a conference."""
        consult = self.consult
        if consult is None or consult.callee is None:
            raise CallStateError("the consultation has not been answered")
        if len(self.parties) >= MAX_PARTIES:
            raise CallStateError(f"a conference holds at most {MAX_PARTIES} parties")
        return self._join(consult)

    def _join(self, consult: Consult) -> Party:
        callee = consult.callee
        assert callee is not None
        self.consult = None
        if consult.room is not None:
            self.clock.remove(consult.room)
            for leg in consult.room.legs:
                consult.room.remove(leg)
            consult.room = None
        party = consult.party = self._new_party(consult.target, callee, "party")
        self.conference = True
        agent_leg = self.callee.leg
        if agent_leg not in self.room.legs:
            self.room.add(agent_leg)
        self.room.add(callee.leg)
        self.apply_modes()
        if self.on_consult is not None:
            self.on_consult("joined")
        if self.on_party is not None:
            self.on_party(party, "joined")
        return party

    # --- parties and monitors ------------------------------------------------------------

    def _new_party(self, label: str, callee: Callee, role: PartyRole) -> Party:
        party = Party(id=self._next_party, label=label, callee=callee, role=role)
        self._next_party += 1
        self.parties.append(party)
        if callee.call is not None:
            callee.call.on_hold = None  # a party's own hold key holds nobody else
        return party

    def _party_of(self, callee: Callee) -> Party | None:
        return next((p for p in self.parties if p.callee is callee), None)

    def remove_party(self, party: Party) -> None:
        """Take a party (or a monitor) out and hang it up."""
        self._check_live()
        if party.left or party not in self.parties:
            raise CallStateError("that party has left")
        self._party_gone(party, "removed")

    def mute_party(self, party: Party, on: bool) -> None:
        self._check_live()
        if party.left or party.role != "party":
            raise CallStateError("only a conference party can be muted")
        party.muted = on
        self.apply_modes()
        if self.on_party is not None:
            self.on_party(party, "changed")

    def add_monitor(
        self,
        label: str,
        callee: Callee,
        mode: MonitorMode,
        *,
        whisper_to: Callee | None = None,
    ) -> Party:
        """A supervisor's answered call joins the room: listening (hears all, heard by
        none), whispering (heard by `whisper_to`, the owner by default) or barging in."""
        self._check_live()
        if len(self.parties) >= MAX_PARTIES:
            raise CallStateError(f"a call holds at most {MAX_PARTIES} parties")
        party = self._new_party(label, callee, "monitor")
        party.monitor = mode
        party.whisper_to = whisper_to
        # Listening first: the leg never hears nor is heard in a wrong mode for a tick.
        self.room.add(callee.leg, mode=Mode.LISTEN)
        self.apply_modes()
        if self.on_party is not None:
            self.on_party(party, "joined")
        return party

    def set_monitor(
        self, party: Party, mode: MonitorMode, *, whisper_to: Callee | None = None
    ) -> None:
        """Switch a monitor between listen, whisper and barge in place (no re-dial)."""
        self._check_live()
        if party.left or party.role != "monitor":
            raise CallStateError("not a monitor of this call")
        party.monitor = mode
        party.whisper_to = whisper_to
        self.apply_modes()
        if self.on_party is not None:
            self.on_party(party, "changed")

    def _party_gone(self, party: Party, how: PartyChange) -> None:
        if party.left:
            return
        party.left = True
        if party in self.parties:
            self.parties.remove(party)
        self.room.remove(party.callee.leg)
        if how == "removed":
            self.hang_up_callee(party.callee)
        self.apply_modes()
        if self.on_party is not None:
            self.on_party(party, how)

    def _drop_parties(self) -> None:
        """The call is over for everyone: parties and monitors are hung up."""
        for party in list(self.parties):
            party.left = True
            self.room.remove(party.callee.leg)
            self.hang_up_callee(party.callee)
            if self.on_party is not None:
                self.on_party(party, "left")
        self.parties.clear()

    def complete_consult(self) -> Callee:
        """The third party takes the agent's place; the agent is hung up. Returns them."""
        consult = self.consult
        if consult is None or consult.callee is None:
            raise CallStateError("the consultation has not been answered")
        return self._complete(consult)

    def _complete(self, consult: Consult) -> Callee:
        assert consult.callee is not None
        self.consult = None
        if consult.room is not None:
            self.clock.remove(consult.room)
            for leg in consult.room.legs:
                consult.room.remove(leg)
        agent = self.callee
        self.room.remove(agent.leg)
        self.callee = consult.callee
        self.room.add(consult.callee.leg)
        self.muted = self.held = self.callee_holds = False
        self.apply_modes()
        self.hang_up_callee(agent)
        if self.on_consult is not None:
            self.on_consult("completed")
        return consult.callee

    def _end_consult(self, consult: Consult, state: ConsultState) -> None:
        self.consult = None
        consult.cancelled = state == "cancelled"
        if consult.room is not None:
            self.clock.remove(consult.room)
            for leg in consult.room.legs:
                consult.room.remove(leg)
            consult.room = None
        if consult.callee is not None:
            callee, consult.callee = consult.callee, None
            self.hang_up_callee(callee)
        elif consult.cancel is not None:
            consult.cancel()
        if not self.ended and not self.detached:
            agent_leg = self.callee.leg
            if agent_leg not in self.room.legs:
                self.room.add(agent_leg)
        if self.on_consult is not None:
            self.on_consult(state)
