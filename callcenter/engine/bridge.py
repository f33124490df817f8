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
from collections.abc import Callable
from dataclasses import dataclass

from ..media import Mode
from ..sip import SipUri
from .calls import Call, Calls, PendingCall
from .media import FrameSource, MediaClock, Room, RtpLeg
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


@dataclass(slots=True, eq=False)
class _Ringing:
    callee: OutboundCall | None = None
    caller_gone: bool = False


@dataclass(slots=True, eq=False)
class Bridge:
    caller: PendingCall
    room: Room
    callee: OutboundCall | None = None
    answered: Call | None = None
    timed_out: bool = False
    ended: bool = False


class Bridges:
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
        target: SipUri,
        destination: Peer,
        *,
        caller_id: str,
        caller_name: str | None = None,
        ring_timeout: float | None = None,
    ) -> OutboundCall:
        """Ring `target` for a call that is already up (an IVR caller, a queued caller) and
        join the two when it answers; meanwhile the caller hears the room's music. The call's
        leg must be free (`Calls.release_media`). Raises CallFailed when the target does not
        answer (the caller's call goes on, back with whoever called this) or the caller hangs
        up while it rings (487)."""
        room = Room()
        room.music = self.music()
        room.add(call.leg, mode=Mode.HOLD, is_caller=True)
        self.clock.add(room)
        state = _Ringing()
        previous_on_end = call.on_end

        def caller_left() -> None:
            state.caller_gone = True
            if state.callee is not None:
                self.outbound.cancel(state.callee)
            if previous_on_end is not None:
                previous_on_end()

        def give_up() -> None:
            if state.callee is not None:
                self.outbound.cancel(state.callee)

        def started(placed: OutboundCall) -> None:
            state.callee = placed
            if state.caller_gone:
                self.outbound.cancel(placed)

        call.on_end = caller_left
        timer = asyncio.get_running_loop().call_later(
            ring_timeout if ring_timeout is not None else self.ring_timeout, give_up
        )
        try:
            callee = await self.outbound.dial(
                target,
                destination=destination,
                caller=caller_id,
                caller_name=caller_name,
                on_end=lambda: self.calls.hang_up(call.dialog_id),
                on_hold=lambda held: _set_mode(room, call.leg, held),
                started=started,
            )
        except BaseException:
            self.clock.remove(room)
            room.remove(call.leg)
            call.on_end = previous_on_end
            raise
        finally:
            timer.cancel()
        if state.caller_gone:
            self.outbound.cancel(callee)
            self.clock.remove(room)
            raise CallFailed(487, "Request Terminated")

        def ended() -> None:
            self.clock.remove(room)
            for leg in room.legs:
                room.remove(leg)
            if callee.call is not None:
                self.calls.hang_up(callee.call.dialog_id)
            if previous_on_end is not None:
                previous_on_end()

        call.on_end = ended
        call.on_hold = lambda held: _set_mode(room, callee.leg, held)
        room.add(callee.leg)
        room.set_mode(call.leg, Mode.FULL)
        log.info("call %s connected to %s", call.dialog_id.call_id, target)
        return callee

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
