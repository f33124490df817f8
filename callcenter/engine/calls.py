"""The engine's calls: every established dialog with an RTP leg, whichever side placed it.

Owns the UAS side of an INVITE (RFC 3261 §13.3): accepting the SDP offer (RFC 3264) on a new
RTP leg, provisional responses while something else decides (a phone rings), the 2xx
retransmitted until its ACK (§13.3.1.4: T1 doubling to T2, BYE after 64*T1 without ACK), the
487 of a CANCEL (§9.2) and other rejections; then, for calls we answered and calls we placed
alike (`adopt`), re-INVITEs for hold and resume (§14, RFC 3264 §8.4), BYE from either side
(§15), the media timeout (no RTP for a while: BYE, unless the peer put the call on hold),
and hanging up every call with BYE when the engine stops. What a call is connected to (a
built-in extension's player, the other half of a bridge) is the caller's business, told
through `media` and the `on_end`/`on_hold` callbacks. Must not know queues, agents or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..sip import NameAddr, Request, Response, SipError
from ..sip.dialog import Dialog, DialogId, Dialogs, DialogState
from ..sip.offer_answer import (
    Negotiated,
    NegotiationError,
    accept_answer,
    answer_offer,
    build_offer,
)
from ..sip.sdp import SdpError, SessionDescription, parse_sdp
from ..sip.transaction import DEFAULT_TIMERS, ServerTransactionKey, TimerConfig
from .media import Echo, MediaClock, RtpLeg, RtpPortPool, Tickable, TonePlayer
from .transport import Peer

log = logging.getLogger(__name__)

# A built-in extension turns the caller's leg into a media source/sink on the clock.
EXTENSIONS: dict[str, Callable[[RtpLeg], Tickable]] = {
    "echo": Echo,
    "tone": TonePlayer,
}


class Signalling(Protocol):
    """What calls need from the SIP endpoint."""

    @property
    def dialogs(self) -> Dialogs: ...

    @property
    def contact(self) -> NameAddr: ...

    def respond(self, key: ServerTransactionKey, response: Response) -> None: ...

    def send_request(self, request: Request, peer: Peer) -> object: ...

    def now(self) -> float: ...


@dataclass(slots=True, eq=False)
class PendingCall:
    """An INVITE whose offer we accepted on `leg`, not answered yet. `on_cancel` is called
    when the caller CANCELs it (the 487 is sent already)."""

    key: ServerTransactionKey
    request: Request
    peer: Peer
    leg: RtpLeg
    negotiated: Negotiated | None  # None: a late offer (ours goes in the 200)
    on_cancel: Callable[[], None] | None = None
    finished: bool = False  # answered, rejected or cancelled
    offer: SessionDescription | None = None  # our offer when the INVITE had none
    early: DialogId | None = None  # the early dialog our 18x made


@dataclass(slots=True, eq=False)
class Call:
    dialog_id: DialogId
    peer: Peer
    leg: RtpLeg
    started: float
    negotiated: Negotiated | None  # the last offer/answer (None: waiting for the ACK's)
    media: Tickable | None = None  # on the clock while the call lasts (a player)
    on_end: Callable[[], None] | None = None
    on_hold: Callable[[bool], None] | None = None  # the peer held (True) or resumed the call
    # Our latest 2xx to an INVITE from the peer, retransmitted until its ACK.
    key: ServerTransactionKey | None = None
    ok: Response | None = None
    acked: bool = True
    interval: float = 0.0
    answered_at: float = 0.0
    retransmit: asyncio.TimerHandle | None = field(default=None, repr=False)
    late_offer: SessionDescription | None = None  # our offer in the 2xx: the ACK answers


class Calls:
    """The calls of one endpoint. `accept_offer()` → `answer()` / `reject()` for INVITEs we
    receive, `adopt()` for those we placed; `ack()`, `reinvite()`, `ended_by_peer()` and
    `hang_up()` follow the dialog; `stop()` hangs everything up."""

    def __init__(
        self,
        signalling: Signalling,
        *,
        pool: RtpPortPool,
        clock: MediaClock,
        local_host: str,
        timers: TimerConfig = DEFAULT_TIMERS,
        media_timeout: float = 30.0,
    ) -> None:
        self.signalling = signalling
        self.pool = pool
        self.clock = clock
        self.local_host = local_host
        self.timers = timers
        self.media_timeout = media_timeout
        # This endpoint's built-in extensions (`music` joins once its file is loaded).
        self.extensions = dict(EXTENSIONS)
        self._calls: dict[DialogId, Call] = {}
        self._pending: dict[ServerTransactionKey, PendingCall] = {}
        # CANCELs that came while their INVITE was still being admitted (a database lookup,
        # a port): honoured when the INVITE gets here; forgotten with the transaction.
        self._cancelled: set[ServerTransactionKey] = set()
        self._watching = False
        self._closing: set[asyncio.Task[None]] = set()  # legs being closed, awaited on stop
        self._forget: set[asyncio.TimerHandle] = set()  # ended dialogs kept for late retries

    @property
    def active(self) -> int:
        return len(self._calls)

    def get(self, dialog_id: DialogId) -> Call | None:
        return self._calls.get(dialog_id)

    # --- INVITEs from peers ---------------------------------------------------------------

    async def accept_offer(
        self, key: ServerTransactionKey, request: Request, peer: Peer
    ) -> PendingCall | None:
        """Open a leg and answer the INVITE's offer (not sent yet); None when the INVITE was
        rejected instead (488 for an unusable or missing offer, 503 without media ports)."""
        if self.cancelled_early(key, request):
            return None
        if not request.body:
            return await self._late_offer(key, request, peer)
        if request.content_type != "application/sdp":
            self._respond(key, request, 415 if request.content_type else 488)
            return None
        try:
            offer = parse_sdp(request.body)
        except SdpError as exc:
            self._respond(key, request, 488, exc.reason[:100])
            return None
        leg = await self._open_leg(key, request, peer)
        if leg is None:
            return None
        try:
            negotiated = answer_offer(
                offer,
                local_address=self.local_host,
                local_port=leg.port,
                # o= sess-id: unique per session (RFC 8866 §5.2); random is what phones do.
                session_id=secrets.randbits(62),
            )
        except NegotiationError as exc:
            await leg.close()
            self._respond(key, request, 488, exc.reason[:100])
            return None
        leg.connect(negotiated)
        pending = PendingCall(key=key, request=request, peer=peer, leg=leg, negotiated=negotiated)
        self._pending[key] = pending
        return pending

    async def _open_leg(
        self, key: ServerTransactionKey, request: Request, peer: Peer
    ) -> RtpLeg | None:
        """A leg for the INVITE, or None when it was answered instead: 503 without a free
        port, 487 when a CANCEL came while we waited for one."""
        try:
            leg = await self.pool.open_leg()
        except OSError:  # PortsExhausted is one
            log.warning("no free RTP port for a call from %s:%d", peer.host, peer.port)
            self._respond(key, request, 503, "No media ports")
            return None
        if self.cancelled_early(key, request):
            await leg.close()
            return None
        return leg

    async def _late_offer(
        self, key: ServerTransactionKey, request: Request, peer: Peer
    ) -> PendingCall | None:
        """An INVITE without SDP (RFC 3261 §13.2.1): our offer goes in the 200 and the
        caller's answer comes in the ACK; the leg connects then."""
        leg = await self._open_leg(key, request, peer)
        if leg is None:
            return None
        offer = build_offer(address=self.local_host, port=leg.port, session_id=secrets.randbits(62))
        pending = PendingCall(
            key=key, request=request, peer=peer, leg=leg, negotiated=None, offer=offer
        )
        self._pending[key] = pending
        return pending

    def _respond(
        self, key: ServerTransactionKey, request: Request, status: int, reason: str | None = None
    ) -> Response:
        response, _events = self.signalling.dialogs.respond(
            request, status, reason, contact=self.signalling.contact
        )
        self.signalling.respond(key, response)
        return response

    def ringing(self, pending: PendingCall, status: int = 180) -> None:
        """A provisional response (180 Ringing, 183) while the call is being placed."""
        if not pending.finished:
            response = self._respond(pending.key, pending.request, status)
            pending.early = DialogId.as_uas(response)

    def reject(self, pending: PendingCall, status: int, reason: str | None = None) -> None:
        """A final error response (486, 480, 487 ...) and the leg released."""
        if pending.finished:
            return
        pending.finished = True
        self._pending.pop(pending.key, None)
        self._respond(pending.key, pending.request, status, reason)
        self._close_leg(pending.leg)
        if pending.early is not None:
            self.forget_later(pending.early)

    def cancelled_early(self, key: ServerTransactionKey, request: Request) -> bool:
        """Whether the INVITE `key` was CANCELled before it got this far (then it is 487ed)."""
        if key not in self._cancelled:
            return False
        self._cancelled.discard(key)
        self._respond(key, request, 487)
        return True

    def cancel_early_dialog(self, dialog_id: DialogId) -> None:
        """A BYE ended the early dialog of a call still ringing: as good as a CANCEL."""
        for pending in list(self._pending.values()):
            if pending.early == dialog_id:
                self.cancel(pending.key)

    def fail(self, key: ServerTransactionKey, request: Request) -> None:
        """Setting up the INVITE `key` broke (a bug, the database down): 500 rather than
        silence, and whatever was pending released."""
        pending = self._pending.get(key)
        if pending is not None:
            self.reject(pending, 500)
            if pending.on_cancel is not None:
                pending.on_cancel()
            return
        # Answered already (a 2xx cannot be followed by a 500): nothing to add.
        with contextlib.suppress(SipError):
            self._respond(key, request, 500)

    def forget(self, key: ServerTransactionKey) -> None:
        """The INVITE server transaction `key` is over."""
        self._cancelled.discard(key)

    def cancel(self, key: ServerTransactionKey) -> bool:
        """The caller CANCELled the INVITE `key` (its 200 is the endpoint's): 487 it, and tell
        whoever was placing the call. False when nothing is pending yet (remembered until the
        INVITE is ready) or any more (answered already)."""
        pending = self._pending.get(key)
        if pending is None:
            self._cancelled.add(key)
            return False
        self.reject(pending, 487)
        if pending.on_cancel is not None:
            pending.on_cancel()
        return True

    def answer(
        self,
        pending: PendingCall,
        *,
        media: Tickable | None = None,
        on_end: Callable[[], None] | None = None,
        on_hold: Callable[[bool], None] | None = None,
    ) -> Call | None:
        """Send the 200 with our SDP answer and keep the call; `media` goes on the clock.
        None if the INVITE was cancelled (or rejected) meanwhile."""
        if pending.finished:
            return None
        pending.finished = True
        self._pending.pop(pending.key, None)
        request = pending.request
        sdp = pending.negotiated.local_sdp if pending.negotiated is not None else pending.offer
        assert sdp is not None
        ok, _events = self.signalling.dialogs.respond(
            request,
            200,
            body=bytes(sdp),
            content_type="application/sdp",
            contact=self.signalling.contact,
        )
        now = self.signalling.now()
        call = Call(
            dialog_id=DialogId.as_uas(ok),
            peer=pending.peer,
            leg=pending.leg,
            started=now,
            negotiated=pending.negotiated,  # None until the ACK answers a late offer
            late_offer=pending.offer,
            media=media,
            on_end=on_end,
            on_hold=on_hold,
            key=pending.key,
            ok=ok,
            acked=False,
            interval=self.timers.t1,
            answered_at=now,
        )
        self._keep(call)
        self.signalling.respond(pending.key, ok)
        # §13.3.1.4: the UAS core retransmits its 2xx until the ACK, on every transport (the
        # transaction is gone after a 2xx, so nobody else will).
        self._arm(call)
        return call

    async def invite(
        self,
        key: ServerTransactionKey,
        request: Request,
        peer: Peer,
        *,
        extension: str,
    ) -> None:
        """Answer an INVITE for the built-in extension the router chose."""
        make_player = self.extensions.get(extension)
        if make_player is None:
            self._respond(key, request, 404)
            return
        pending = await self.accept_offer(key, request, peer)
        if pending is None:
            return
        call_id = request.call_id
        # Digits are logged per call (the IVR will consume them); RFC 4733 or in-band later.
        pending.leg.on_digit = lambda digit: log.info("call %s: DTMF %s", call_id, digit)
        if self.answer(pending, media=make_player(pending.leg)) is not None:
            log.info("call %s answered by %s", call_id, extension)

    # --- calls we placed ------------------------------------------------------------------

    def adopt(
        self,
        dialog_id: DialogId,
        peer: Peer,
        leg: RtpLeg,
        negotiated: Negotiated,
        *,
        media: Tickable | None = None,
        on_end: Callable[[], None] | None = None,
        on_hold: Callable[[bool], None] | None = None,
    ) -> Call:
        """Keep a call we placed (answered and ACKed) like the ones we answered."""
        now = self.signalling.now()
        call = Call(
            dialog_id=dialog_id,
            peer=peer,
            leg=leg,
            started=now,
            negotiated=negotiated,
            media=media,
            on_end=on_end,
            on_hold=on_hold,
            answered_at=now,
        )
        self._keep(call)
        return call

    # --- established calls ----------------------------------------------------------------

    def release_media(self, call: Call) -> None:
        """Take the call's player off the clock and free its leg for a room (a queue, an
        agent's bridge): the call goes on, its media is someone else's now."""
        media = call.media
        if media is None:
            return
        call.media = None
        self.clock.remove(media)
        detach = getattr(media, "detach", None)
        if callable(detach):
            detach()

    def attach_media(self, call: Call, media: Tickable) -> None:
        """Give a call whose media was released a new player (hold music while it waits)."""
        if call.dialog_id not in self._calls:
            return  # ended meanwhile
        self.release_media(call)
        call.media = media
        self.clock.add(media)

    def _keep(self, call: Call) -> None:
        self._calls[call.dialog_id] = call
        if call.media is not None:
            self.clock.add(call.media)
        if not self._watching:
            # The media-timeout check rides the media clock (one tick a second).
            self.clock.add(self)
            self._watching = True

    def _arm(self, call: Call) -> None:
        loop = asyncio.get_running_loop()
        call.retransmit = loop.call_later(call.interval, self._retransmit, call)

    def _retransmit(self, call: Call) -> None:
        call.retransmit = None
        if call.acked or call.dialog_id not in self._calls or call.key is None or call.ok is None:
            return
        if self.signalling.now() - call.answered_at >= 64 * self.timers.t1:
            log.info("no ACK for the 2xx of %s: hanging up", call.dialog_id.call_id)
            self.hang_up(call.dialog_id)
            return
        self.signalling.respond(call.key, call.ok)
        call.interval = min(call.interval * 2, self.timers.t2)
        self._arm(call)

    def reinvite(self, key: ServerTransactionKey, request: Request, dialog: Dialog) -> Response:
        """A re-INVITE in a call (hold, resume, new address): answer the new offer against
        our last SDP and re-point the leg (RFC 3264 §8). On any failure the session stays as it
        was, which is what a failed re-INVITE means (RFC 3261 §14.2)."""
        dialogs = self.signalling.dialogs
        call = self._calls.get(dialog.id)
        if call is None:
            return dialogs.respond(request, 481)[0]
        if call.negotiated is None:
            return dialogs.respond(request, 491)[0]  # our offer still awaits its answer
        if not request.body:
            return self._reoffer(key, request, call)
        if request.content_type != "application/sdp":
            return dialogs.respond(request, 415)[0]
        try:
            negotiated = answer_offer(
                parse_sdp(request.body),
                local_address=self.local_host,
                local_port=call.leg.port,
                previous=call.negotiated.local_sdp,
            )
        except SdpError as exc:  # NegotiationError is an SdpError
            return dialogs.respond(request, 488, exc.reason[:100])[0]
        call.leg.connect(negotiated)
        was_held = call.negotiated.remote_hold
        call.negotiated = negotiated
        ok, _events = dialogs.respond(
            request, 200, body=bytes(negotiated.local_sdp), content_type="application/sdp"
        )
        self._answered_again(call, key, ok)
        log.info(
            "call %s re-negotiated: we %s, peer %s",
            request.call_id,
            negotiated.direction.value,
            "holds" if negotiated.remote_hold else "sends",
        )
        if negotiated.remote_hold != was_held and call.on_hold is not None:
            call.on_hold(negotiated.remote_hold)
        return ok

    def _reoffer(self, key: ServerTransactionKey, request: Request, call: Call) -> Response:
        """A re-INVITE without SDP (RFC 3261 §14.2, e.g. a refresh or a 3PCC move): offer our
        session again (same o= id, version up) in the 200; the ACK brings the answer."""
        assert call.negotiated is not None
        previous = call.negotiated.local_sdp.origin
        offer = build_offer(
            address=self.local_host,
            port=call.leg.port,
            session_id=previous.sess_id,
            session_version=previous.sess_version + 1,
        )
        ok, _events = self.signalling.dialogs.respond(
            request, 200, body=bytes(offer), content_type="application/sdp"
        )
        call.late_offer = offer
        self._answered_again(call, key, ok)
        return ok

    def _answered_again(self, call: Call, key: ServerTransactionKey, ok: Response) -> None:
        """Our 2xx to a re-INVITE: retransmitted until its ACK, like the first one."""
        if call.retransmit is not None:
            call.retransmit.cancel()
        call.key, call.ok, call.acked = key, ok, False
        call.answered_at, call.interval = self.signalling.now(), self.timers.t1
        self._arm(call)

    def tick(self, n: int) -> None:
        """Once a second: hang up calls whose peer stopped sending RTP (dead phone, lost
        network), except while the peer holds the call and so rightly sends nothing."""
        if n % 50 or not self._calls:
            return
        now = self.signalling.now()
        for call in list(self._calls.values()):
            if call.negotiated is not None and call.negotiated.remote_hold:
                continue
            last = call.leg.last_packet_at or call.answered_at
            if now - last > self.media_timeout:
                log.info("no RTP for %.0f s on %s: hanging up", now - last, call.dialog_id.call_id)
                self.hang_up(call.dialog_id)

    def ack(self, dialog: Dialog, ack: Request | None = None) -> None:
        call = self._calls.get(dialog.id)
        if call is None:
            return
        call.acked = True
        if call.retransmit is not None:
            call.retransmit.cancel()
            call.retransmit = None
        if call.late_offer is not None:
            offer, call.late_offer = call.late_offer, None
            try:
                if ack is None or not ack.body:
                    raise SdpError("no answer in the ACK")
                negotiated = accept_answer(offer, parse_sdp(ack.body))
            except SdpError as exc:
                # §13.3.1.4: an ACK without an acceptable answer leaves no session: end it.
                log.info("call %s: %s, hanging up", dialog.id.call_id, exc.reason)
                self.hang_up(dialog.id)
                return
            was_held = call.negotiated is not None and call.negotiated.remote_hold
            call.leg.connect(negotiated)
            call.negotiated = negotiated
            if negotiated.remote_hold != was_held and call.on_hold is not None:
                call.on_hold(negotiated.remote_hold)

    def ended_by_peer(self, dialog: Dialog) -> bool:
        """The peer's BYE (already answered 200 by the endpoint) ends the call."""
        call = self._calls.pop(dialog.id, None)
        if call is None:
            return False
        self._release(call)
        return True

    def hang_up(self, dialog_id: DialogId) -> None:
        """End a call from our side: BYE to the peer (§15.1.1), media released at once."""
        call = self._calls.pop(dialog_id, None)
        if call is None:
            return
        dialog = self.signalling.dialogs.get(dialog_id)
        if dialog is not None and dialog.state is not DialogState.TERMINATED:
            bye = dialog.create_request("BYE")
            self.signalling.send_request(bye, call.peer)
        self._release(call)

    def _release(self, call: Call) -> None:
        if call.retransmit is not None:
            call.retransmit.cancel()
            call.retransmit = None
        if call.media is not None:
            self.clock.remove(call.media)
        self._close_leg(call.leg)
        self.forget_later(call.dialog_id)
        if call.on_end is not None:
            on_end, call.on_end = call.on_end, None
            on_end()

    def _close_leg(self, leg: RtpLeg) -> None:
        task = asyncio.get_running_loop().create_task(leg.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def forget_later(self, dialog_id: DialogId) -> None:
        """Drop an ended dialog after 64*T1, when no retransmission can still need it."""
        dialogs = self.signalling.dialogs

        def forget() -> None:
            self._forget.discard(handle)
            dialogs.discard(dialog_id)

        handle = asyncio.get_running_loop().call_later(64 * self.timers.t1, forget)
        self._forget.add(handle)

    async def stop(self) -> None:
        """Reject what is still ringing, hang up every call with BYE (graceful shutdown) and
        release the media."""
        for pending in list(self._pending.values()):
            self.reject(pending, 503, "Shutting down")
            if pending.on_cancel is not None:
                pending.on_cancel()
        for dialog_id in list(self._calls):
            self.hang_up(dialog_id)
        if self._watching:
            self.clock.remove(self)
            self._watching = False
        for handle in self._forget:
            handle.cancel()
        self._forget.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)
