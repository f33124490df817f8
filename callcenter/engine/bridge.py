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
from typing import Literal

from ..media import Mode
from ..sip import SipUri
from .calls import Call, Calls, PendingCall
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


EndedBy = Literal["caller", "callee"]


@dataclass(slots=True, eq=False)
class _RingAll:
    placed: dict[int, OutboundCall] = field(default_factory=dict)
    caller_gone: bool = False
    timed_out: bool = False
    winner: int = -1
    ended: bool = False
    ended_by: EndedBy = "caller"
    on_winner_end: Callable[[], None] | None = None

    def cancel_all(self, outbound: OutboundCalls, keep: int | None = None) -> None:
        for index, placed in self.placed.items():
            if index != keep:
                outbound.cancel(placed)


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
        targets: Sequence[tuple[SipUri, Peer]],
        *,
        caller_id: str,
        caller_name: str | None = None,
        ring_timeout: float | None = None,
        on_failed: Callable[[int, CallFailed], None] | None = None,
        on_end: Callable[[EndedBy], None] | None = None,
    ) -> tuple[int, OutboundCall]:
        """Ring every target at once for a call that is already up (an IVR caller, a queued
        caller) and join the call with the first to answer; meanwhile the caller hears the
        room's music. The others stop ringing (CANCEL; one that answers anyway gets a BYE).

        The call's leg must be free (`Calls.release_media`). Returns the index of the target
        that answered and its call. `on_failed(index, error)` reports each target that
        refused or rang out while the call was still to be had. Raises CallFailed when no
        target answers (the caller's call goes on, back with whoever called this) or when the
        caller hangs up while it rings (487). `on_end` says who ended the joined call.
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
            ring.cancel_all(self.outbound)
            if previous_on_end is not None:
                previous_on_end()

        def callee_left() -> None:
            if not ring.ended:
                ring.ended_by = "callee"
                self.calls.hang_up(call.dialog_id)

        ring.on_winner_end = callee_left
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
            )
        except BaseException:
            self.clock.remove(room)
            room.remove(call.leg)
            if not ring.caller_gone:
                call.on_end = previous_on_end
            raise

        def ended() -> None:
            ring.ended = True
            self.clock.remove(room)
            for leg in room.legs:
                room.remove(leg)
            if callee.call is not None:
                self.calls.hang_up(callee.call.dialog_id)
            if previous_on_end is not None:
                previous_on_end()
            if on_end is not None:
                on_end(ring.ended_by)

        call.on_end = ended
        call.on_hold = lambda held: _set_mode(room, callee.leg, held)
        room.add(callee.leg)
        room.set_mode(call.leg, Mode.FULL)
        log.info("call %s connected to %s", call.dialog_id.call_id, targets[ring.winner][0])
        return ring.winner, callee

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
        return ring.winner, callee

    async def _ring_first(
        self,
        ring: _RingAll,
        targets: Sequence[tuple[SipUri, Peer]],
        *,
        caller_id: str,
        caller_name: str | None,
        ring_timeout: float | None,
        on_failed: Callable[[int, CallFailed], None] | None,
        on_hold: Callable[[bool], None] | None = None,
        media: Callable[[RtpLeg], Tickable] | None = None,
    ) -> OutboundCall:
        """Ring-all: the first target to answer wins (`ring.winner`); see connect_answered."""
        if not targets:
            raise ValueError("no target to ring")

        def give_up() -> None:
            ring.timed_out = True
            ring.cancel_all(self.outbound)

        def callee_ended(index: int) -> None:
            if index == ring.winner and ring.on_winner_end is not None:
                ring.on_winner_end()

        async def dial(index: int, target: SipUri, destination: Peer) -> OutboundCall:
            def started(placed: OutboundCall) -> None:
                ring.placed[index] = placed
                if ring.caller_gone or ring.timed_out or ring.winner >= 0:
                    self.outbound.cancel(placed)

            try:
                return await self.outbound.dial(
                    target,
                    destination=destination,
                    caller=caller_id,
                    caller_name=caller_name,
                    on_end=lambda: callee_ended(index),
                    on_hold=on_hold,
                    media=media,
                    started=started,
                )
            except OSError as exc:
                log.warning("no free RTP port to call %s", target)
                raise CallFailed(503, "No media ports") from exc

        timer = asyncio.get_running_loop().call_later(
            ring_timeout if ring_timeout is not None else self.ring_timeout, give_up
        )
        tasks = {
            asyncio.ensure_future(dial(index, uri, peer)): index
            for index, (uri, peer) in enumerate(targets)
        }
        waiting = set(tasks)
        failure: CallFailed | None = None
        winner: OutboundCall | None = None
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
                            ring.cancel_all(self.outbound, keep=index)
                        else:  # a second answer (or one after the caller left): not wanted
                            self.outbound.hang_up_now(answered)
                    elif isinstance(error, CallFailed):
                        failure = error if failure is None else failure
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
                self.outbound.hang_up_now(winner)
            raise CallFailed(487, "Request Terminated")
        if winner is None:
            assert failure is not None
            raise failure
        return winner

    def _unwanted(self, task: asyncio.Future[OutboundCall]) -> None:
        if task.cancelled():
            return
        if task.exception() is None:
            self.outbound.hang_up_now(task.result())

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
