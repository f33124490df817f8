"""Bridges: an INVITE we received connected, back to back, to a call we place (RFC 7092 B2BUA).

Owns the life of the pair: ringing relayed to the caller while the callee rings (180), the
callee's refusal relayed as what it means to the caller (486 busy, 480 unavailable, 603
declined …), the caller's CANCEL turned into ours (§9.1), a ring timeout, the answer, the
two legs joined in one room on the media clock, hold in either direction (the held side
hears the room's music), and the end of either call ending the other. Media is anchored:
both sides talk to our RTP legs, never to each other, so recording, monitoring and
conferencing can join the room later. Must not know queues, agents or HTTP.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..media import Mode
from ..sip import SipUri
from .browser import BrowserCall, BrowserPhone
from .calls import Call, Calls, PendingCall
from .connection import Callee, Connection, EndedBy, MonitorMode, Party
from .media import FrameSource, MediaClock, Room, RtpLeg, Tickable
from .outbound import CallFailed, OutboundCall, OutboundCalls
from .transport import Peer

log = logging.getLogger(__name__)


def relayed_status(status: int) -> tuple[int, str | None]:
    """What the caller is told when the callee refuses (`status` 0: no answer at all)."""
    if status in (486, 600):
        return 486, None
    if status == 603:
        return 603, None
    if status in (488, 606):
        return 488, None
    return 480, "No answer" if status in (0, 408, 487) else None


def _relay_digit(call_id: str, digit: str, to: RtpLeg) -> None:
    """DTMF passes through a bridge (an IVR or voicemail on the far side needs it): while the
    room forwards packets the events travel as they are; while it mixes, we send them."""
    log.info("call %s: DTMF %s", call_id, digit)
    if to.forwarding_to is None and not to.closed:
        to.send_digit(digit)


def _set_mode(room: Room, other: RtpLeg, held: bool) -> None:
    """One side held (or resumed): `other` hears the music (or them again)."""
    if other in room.legs:
        room.set_mode(other, Mode.HOLD if held else Mode.FULL)


DECLINES = frozenset({600, 603})
"""Refusals that speak for the party on every device (a busy phone, 486, does not)."""

Target = tuple[SipUri, Peer] | BrowserPhone
"""Something to ring: a SIP URI and where to send the INVITE, or a page's phone."""


@dataclass(slots=True, eq=False)
class _RingAll:
    placed: dict[int, Callee] = field(default_factory=dict)
    caller_gone: bool = False
    timed_out: bool = False
    winner: int = -1
    on_winner_end: Callable[[], None] | None = None

    def cancel_all(self, stop: Callable[[Callee], None], keep: int | None = None) -> None:
        for index, placed in list(self.placed.items()):
            if index != keep:
                stop(placed)


def _give_up(ring: _RingAll, stop: Callable[[Callee], None]) -> None:
    ring.timed_out = True
    ring.cancel_all(stop)


def _describe(target: Target) -> str:
    return f"page {target.name}" if isinstance(target, BrowserPhone) else str(target[0])


@dataclass(slots=True, eq=False)
class Bridge:
    caller: PendingCall
    room: Room
    callee: OutboundCall | None = None
    answered: Call | None = None
    timed_out: bool = False
    ended: bool = False


class Bridges:
    """Every call the engine joins back to back: `connect` (an INVITE rung through to one
    target) and `connect_answered` (a call already up, rung to several, then a
    `Connection`)."""

    def __init__(
        self,
        calls: Calls,
        outbound: OutboundCalls,
        clock: MediaClock,
        *,
        ring_timeout: float = 60.0,
        music: Callable[[], FrameSource | None] = lambda: None,
    ) -> None:
        self.calls = calls
        self.outbound = outbound
        self.clock = clock
        self.ring_timeout = ring_timeout
        self.music = music
        self._bridges: set[Bridge] = set()
        self._connections: dict[Call, Connection] = {}

    @property
    def active(self) -> int:
        return len(self._bridges)

    async def connect(
        self,
        caller: PendingCall,
        target: SipUri,
        destination: Peer,
        *,
        caller_id: str,
        caller_name: str | None = None,
        max_forwards: int = 70,
    ) -> None:
        """Ring `target` at `destination` for the caller's INVITE and bridge the two when it
        answers; every outcome ends with a final response to the caller."""
        room = Room()
        room.music = self.music()
        bridge = Bridge(caller=caller, room=room)
        self._bridges.add(bridge)
        loop = asyncio.get_running_loop()

        def give_up() -> None:
            bridge.timed_out = True
            if bridge.callee is not None:
                self.outbound.cancel(bridge.callee)

        def cancelled_by_caller() -> None:
            if bridge.callee is not None:
                self.outbound.cancel(bridge.callee)

        def started(call: OutboundCall) -> None:
            bridge.callee = call
            if caller.finished or bridge.timed_out:  # given up while our INVITE was built
                self.outbound.cancel(call)

        caller.on_cancel = cancelled_by_caller
        timer = loop.call_later(self.ring_timeout, give_up)
        try:
            callee = await self.outbound.dial(
                target,
                destination=destination,
                caller=caller_id,
                caller_name=caller_name,
                on_provisional=lambda status: self.calls.ringing(caller, 180),
                on_end=lambda: self._end(bridge),
                on_hold=lambda held: self._held(bridge, callee_holds=held),
                started=started,
                max_forwards=max_forwards,
            )
        except CallFailed as exc:
            self._bridges.discard(bridge)
            if not caller.finished:
                status, reason = relayed_status(487 if bridge.timed_out else exc.status)
                log.info(
                    "call %s to %s failed: %s; caller told %d",
                    caller.request.call_id,
                    target,
                    exc,
                    status,
                )
                self.calls.reject(caller, status, reason)
            return
        except OSError:
            self._bridges.discard(bridge)
            log.warning("no free RTP port to call %s", target)
            self.calls.reject(caller, 503, "No media ports")
            return
        except BaseException:
            self._bridges.discard(bridge)
            raise
        finally:
            timer.cancel()
        answered = self.calls.answer(
            caller,
            on_end=lambda: self._end(bridge),
            on_hold=lambda held: self._held(bridge, caller_holds=held),
        )
        if answered is None:  # cancelled while the answer was on its way
            self._end(bridge)
            return
        bridge.answered = answered
        call_id = caller.request.call_id
        caller.leg.on_digit = lambda digit: _relay_digit(call_id, digit, callee.leg)
        callee.leg.on_digit = lambda digit: _relay_digit(call_id, digit, caller.leg)
        room.add(caller.leg, is_caller=True)
        room.add(callee.leg)
        self.clock.add(room)
        log.info("call %s bridged to %s", caller.request.call_id, target)

    async def connect_answered(
        self,
        call: Call,
        targets: Sequence[Target],
        *,
        caller_id: str,
        caller_name: str | None = None,
        ring_timeout: float | None = None,
        on_failed: Callable[[int, CallFailed], None] | None = None,
        on_end: Callable[[EndedBy], None] | None = None,
        groups: Sequence[int] | None = None,
        started: Callable[[Connection], None] | None = None,
    ) -> tuple[int, Callee]:
        """Ring every target at once for a call that is already up (an IVR caller, a queued
        caller) and join the call with the first to answer; meanwhile the caller hears the
        room's music. The others stop ringing (CANCEL; one that answers anyway gets a BYE).
        A target is a SIP URI and where to send it, or a page's `BrowserPhone`.

        The call's leg must be free (`Calls.release_media`). Returns the index of the target
        that answered and its call; `connection(call)` is the joined call's handle (hold,
        mute, digits, consult, transfer). `on_failed(index, error)` reports each target that
        refused or rang out while the call was still to be had. `groups[i]` names the party
        behind target i (an agent's page and desk phone): a decline (603, 600) by one of
        them stops the others ringing. Raises CallFailed when no target answers (the
        caller's call goes on, back with whoever called this) or when the caller hangs up
        while it rings (487). `on_end` says who ended the joined call.
        """
        if self.calls.get(call.dialog_id) is None:
            raise CallFailed(487, "Request Terminated")  # the caller left before we began
        room = Room()
        room.music = self.music()
        room.add(call.leg, mode=Mode.HOLD, is_caller=True)
        self.clock.add(room)
        ring = _RingAll()
        previous_on_end = call.on_end

        def caller_left() -> None:
            ring.caller_gone = True
            ring.cancel_all(self._stop)
            if previous_on_end is not None:
                previous_on_end()

        call.on_end = caller_left
        try:
            callee = await self._ring_first(
                ring,
                targets,
                caller_id=caller_id,
                caller_name=caller_name,
                ring_timeout=ring_timeout,
                on_failed=on_failed,
                on_hold=lambda held: _set_mode(room, call.leg, held),
                groups=groups,
            )
        except BaseException:
            self.clock.remove(room)
            room.remove(call.leg)
            if not ring.caller_gone:
                call.on_end = previous_on_end
            raise
        connection = Connection(
            call=call,
            room=room,
            callee=callee,
            clock=self.clock,
            hang_up_callee=self.hang_up_callee,
            hang_up_caller=lambda c: self.calls.hang_up(c.dialog_id),
            on_end=on_end,
            previous_on_end=previous_on_end,
        )
        self._connections[call] = connection

        def forget(by: EndedBy) -> None:
            self._connections.pop(call, None)
            if on_end is not None:
                on_end(by)

        connection.on_end = forget
        ring.on_winner_end = lambda: connection.callee_left(callee)
        call.on_end = connection.caller_left

        def caller_holds(held: bool) -> None:
            connection.caller_holds = held
            connection.apply_modes()

        call.on_hold = caller_holds
        if callee.call is not None:

            def callee_holds(held: bool) -> None:
                connection.callee_holds = held
                connection.apply_modes()

            callee.call.on_hold = callee_holds
        room.add(callee.leg)
        room.set_mode(call.leg, Mode.FULL)
        if started is not None:
            started(connection)
        log.info("call %s connected to %s", call.dialog_id.call_id, _describe(targets[ring.winner]))
        return ring.winner, callee

    def connection(self, call: Call) -> Connection | None:
        """The live connection of a call joined by `connect_answered` (None once it ended or
        was detached)."""
        connection = self._connections.get(call)
        if connection is None or connection.ended or connection.detached:
            return None
        return connection

    def detach(self, connection: Connection) -> Call:
        """Blind transfer: the callee is hung up and the caller's call is free again."""
        self._connections.pop(connection.call, None)
        return connection.detach()

    async def consult(
        self,
        connection: Connection,
        targets: Sequence[Target],
        *,
        label: str,
        caller_id: str,
        caller_name: str | None = None,
        ring_timeout: float | None = None,
        join: bool = False,
    ) -> Callee:
        """Warm transfer or conference, first half: the caller hears music while `targets`
        ring; the first to answer talks with the callee (the agent) in a room of their own,
        or (`join`) comes straight into the caller's room as a party. Raises CallFailed when
        nobody answers (the agent is back with the caller)."""
        consult = connection.begin_consult(label, join=join)
        ring = _RingAll()
        consult.cancel = lambda: _give_up(ring, self._stop)
        if connection.on_consult is not None:
            connection.on_consult("ringing")
        try:
            callee = await self._ring_first(
                ring,
                targets,
                caller_id=caller_id,
                caller_name=caller_name,
                ring_timeout=ring_timeout,
                on_failed=None,
            )
        except BaseException:
            connection.consult_failed(consult)
            raise
        # Whatever it has become by then (consulted, a party, the owner), its end is told.
        ring.on_winner_end = lambda: connection.callee_left(callee)
        connection.consult_answered(consult, callee)
        return callee

    async def monitor(
        self,
        connection: Connection,
        targets: Sequence[Target],
        *,
        label: str,
        mode: MonitorMode,
        caller_id: str,
        caller_name: str | None = None,
        ring_timeout: float | None = None,
        whisper_to: Callee | None = None,
    ) -> Party:
        """A supervisor joins a live call: `targets` (their page, phone or number) ring; the
        first to answer joins the caller's room in `mode`. The caller hears nothing of it.
        Raises CallFailed when nobody answers, CallStateError when the call ended meanwhile
        (the supervisor's call is hung up)."""
        ring = _RingAll()
        callee: Callee
        if len(targets) == 1 and isinstance(targets[0], BrowserPhone):
            # The supervisor asked from that very page: it is answered already, no ring.
            callee = targets[0].take(
                caller_id=caller_id,
                caller_name=caller_name,
                on_end=lambda: connection.callee_left(callee),
            )
        else:
            callee = await self._ring_first(
                ring,
                targets,
                caller_id=caller_id,
                caller_name=caller_name,
                ring_timeout=ring_timeout,
                on_failed=None,
            )
            ring.on_winner_end = lambda: connection.callee_left(callee)
        try:
            return connection.add_monitor(label, callee, mode, whisper_to=whisper_to)
        except BaseException:
            ring.on_winner_end = None
            self.hang_up_callee(callee)
            raise

    def hang_up_callee(self, callee: Callee) -> None:
        """End a rung party's call whatever it is: BYE or CANCEL for SIP, the page's end."""
        if isinstance(callee, BrowserCall):
            callee.phone.cancel(callee)
        else:
            self.outbound.hang_up_now(callee)

    def _stop(self, callee: Callee) -> None:
        if isinstance(callee, BrowserCall):
            callee.phone.cancel(callee)
        else:
            self.outbound.cancel(callee)

    async def originate(
        self,
        targets: Sequence[tuple[SipUri, Peer]],
        *,
        caller_id: str,
        caller_name: str | None = None,
        ring_timeout: float | None = None,
        on_failed: Callable[[int, CallFailed], None] | None = None,
        media: Callable[[RtpLeg], Tickable] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> tuple[int, OutboundCall]:
        """Place a call of our own (a callback: the agent first): ring every target at once,
        keep the first to answer (its leg playing `media`), stop the others. Raises
        CallFailed when nobody answers; `on_end` is called when the kept call ends."""
        ring = _RingAll()
        ring.on_winner_end = on_end
        callee = await self._ring_first(
            ring,
            targets,
            caller_id=caller_id,
            caller_name=caller_name,
            ring_timeout=ring_timeout,
            on_failed=on_failed,
            media=media,
        )
        assert isinstance(callee, OutboundCall)  # SIP targets only
        return ring.winner, callee

    async def _ring_first(
        self,
        ring: _RingAll,
        targets: Sequence[Target],
        *,
        caller_id: str,
        caller_name: str | None,
        ring_timeout: float | None,
        on_failed: Callable[[int, CallFailed], None] | None,
        on_hold: Callable[[bool], None] | None = None,
        media: Callable[[RtpLeg], Tickable] | None = None,
        groups: Sequence[int] | None = None,
    ) -> Callee:
        """Ring-all: the first target to answer wins (`ring.winner`); see connect_answered."""
        if not targets:
            raise ValueError("no target to ring")
        if groups is not None and len(groups) != len(targets):
            raise ValueError("one group per target")

        def give_up() -> None:
            _give_up(ring, self._stop)

        def callee_ended(index: int) -> None:
            if index == ring.winner and ring.on_winner_end is not None:
                ring.on_winner_end()

        def declined(index: int) -> None:
            # One party's refusal is its answer on every device it has.
            if groups is None:
                return
            for other, placed in list(ring.placed.items()):
                if other != index and groups[other] == groups[index]:
                    self._stop(placed)

        async def dial(index: int, target: Target) -> Callee:
            def started(placed: Callee) -> None:
                ring.placed[index] = placed
                if ring.caller_gone or ring.timed_out or ring.winner >= 0:
                    self._stop(placed)

            if isinstance(target, BrowserPhone):
                return await target.ring(
                    caller_id=caller_id,
                    caller_name=caller_name,
                    on_end=lambda: callee_ended(index),
                    started=started,
                )
            uri, destination = target
            try:
                return await self.outbound.dial(
                    uri,
                    destination=destination,
                    caller=caller_id,
                    caller_name=caller_name,
                    on_end=lambda: callee_ended(index),
                    on_hold=on_hold,
                    media=media,
                    started=started,
                )
            except OSError as exc:
                log.warning("no free RTP port to call %s", uri)
                raise CallFailed(503, "No media ports") from exc

        timer = asyncio.get_running_loop().call_later(
            ring_timeout if ring_timeout is not None else self.ring_timeout, give_up
        )
        tasks = {
            asyncio.ensure_future(dial(index, target)): index
            for index, target in enumerate(targets)
        }
        waiting = set(tasks)
        failure: CallFailed | None = None
        winner: Callee | None = None
        try:
            while waiting and winner is None:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=tasks.__getitem__):
                    index = tasks[task]
                    error = task.exception()
                    if error is None:
                        answered = task.result()
                        if answered.ended.is_set():  # answered and hung up before we looked
                            error = CallFailed(487, "Request Terminated")
                            failure = failure or error
                            if winner is None and not ring.caller_gone and on_failed is not None:
                                on_failed(index, error)
                        elif winner is None and not ring.caller_gone:
                            winner, ring.winner = answered, index
                            ring.cancel_all(self._stop, keep=index)
                        else:  # a second answer (or one after the caller left): not wanted
                            self.hang_up_callee(answered)
                    elif isinstance(error, CallFailed):
                        failure = error if failure is None else failure
                        if error.status in DECLINES:
                            declined(index)
                        if winner is None and not ring.caller_gone and on_failed is not None:
                            on_failed(index, error)
                    else:
                        raise error
        except BaseException:
            for task in waiting:
                task.cancel()
            raise
        finally:
            timer.cancel()
        for task in waiting:  # the ones told to stop ringing: a late answer gets a BYE
            task.add_done_callback(self._unwanted)
        if ring.caller_gone:
            if winner is not None:
                self.hang_up_callee(winner)
            raise CallFailed(487, "Request Terminated")
        if winner is None:
            assert failure is not None
            raise failure
        return winner

    def _unwanted(self, task: asyncio.Future[Callee]) -> None:
        if task.cancelled():
            return
        if task.exception() is None:
            self.hang_up_callee(task.result())

    def _held(
        self, bridge: Bridge, *, caller_holds: bool | None = None, callee_holds: bool | None = None
    ) -> None:
        """One side put the call on hold (or resumed): the other side hears music (or them)."""
        if caller_holds is not None and bridge.callee is not None:
            _set_mode(bridge.room, bridge.callee.leg, caller_holds)
        if callee_holds is not None:
            _set_mode(bridge.room, bridge.caller.leg, callee_holds)

    def _end(self, bridge: Bridge) -> None:
        """Either side hung up (or the answer came too late): hang up the other."""
        if bridge.ended:
            return
        bridge.ended = True
        self._bridges.discard(bridge)
        self.clock.remove(bridge.room)
        for leg in bridge.room.legs:
            bridge.room.remove(leg)
        if bridge.answered is not None:
            self.calls.hang_up(bridge.answered.dialog_id)
        if bridge.callee is not None:
            self.outbound.cancel(bridge.callee)
        # Break the reference cycles of the pair (closures <-> legs <-> calls) so that
        # reference counting frees them at once: left to the cycle collector, thousands of
        # ended calls made full collections that stalled the loop for 100-400 ms.
        bridge.caller.on_cancel = None
        bridge.caller.leg.on_digit = None
        if bridge.callee is not None:
            bridge.callee.leg.on_digit = None
            bridge.callee.on_provisional = None
            if bridge.callee.call is not None:
                bridge.callee.call.on_end = bridge.callee.call.on_hold = None
        if bridge.answered is not None:
            bridge.answered.on_end = bridge.answered.on_hold = None
