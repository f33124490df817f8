"""A connection: a caller joined to whoever answered them, and what can change while it lasts.

Owns the room of a call joined by `Bridges.connect_answered` and the changes an agent makes
from a page or an API while it lasts: hold (the caller hears music, nobody hears the caller),
mute (the server stops mixing the agent: the truth a page shows), digits to the caller, a
consultation (the caller on music while the agent talks to a third party in a room of its
own, then complete: the third party takes the agent's place, or cancel), and detaching the
caller for a blind transfer (the agent leaves, the caller's call goes on with whoever takes
it next). Hold by re-INVITE from either side still works as in any bridge.

The modes follow from flags, never from the last click: the caller's leg is on hold while
we hold it, the callee's phone holds (re-INVITE) or a consultation runs; the callee's leg is
on hold while the caller holds, else muted while muted. Must not know agents, queues or HTTP.
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
ConsultState = Literal["ringing", "talking", "failed", "cancelled", "completed"]
VALID_DIGITS = frozenset("0123456789*#ABCD")


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


@dataclass(slots=True, eq=False)
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
    _callbacks: list[Callable[[], None]] = field(default_factory=list)

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
        if leg in room.legs:
            callee_mode = (
                Mode.HOLD if self.caller_holds else Mode.MUTED if self.muted else Mode.FULL
            )
            room.set_mode(leg, callee_mode)
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
        """The agent's side hung up: the caller too, unless a consultation takes over."""
        if self.ended or self.detached or callee is not self.callee:
            return
        consult = self.consult
        if consult is not None and consult.callee is not None:
            self._complete(consult)  # the agent hung up while consulting: hand over
            return
        # (A consultation still ringing is cancelled by the end of the call, in _finish.)
        self.ended_by = "callee"
        self._finish()
        self.hang_up_caller(self.call)

    def _finish(self) -> None:
        self.ended = True
        self.clock.remove(self.room)
        for leg in self.room.legs:
            self.room.remove(leg)
        consult = self.consult
        if consult is not None:
            self._end_consult(consult, "cancelled")
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
        if self.last_consult is not None:
            self.last_consult.cancel = None

    def detach(self) -> Call:
        """A blind transfer: the callee is hung up, the caller's call goes on, its leg free
        for whoever takes it next (nothing is reported through `on_end`)."""
        self._check_live()
        if self.consult is not None:
            self._end_consult(self.consult, "cancelled")
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

    def begin_consult(self, target: str) -> Consult:
        self._check_live()
        if self.consult is not None:
            raise CallStateError("a consultation is already in progress")
        consult = self.consult = self.last_consult = Consult(target=target)
        self.apply_modes()  # the caller hears music from now on
        return consult

    def consult_answered(self, consult: Consult, callee: Callee) -> None:
        """The third party answered: the agent leaves the caller's room to talk to them."""
        if self.consult is not consult or self.ended or self.detached:
            self.hang_up_callee(callee)
            return
        consult.callee = callee
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
