"""Calls answered by the engine itself: the built-in test extensions `echo` and `tone`.

Owns the UAS side of an INVITE (RFC 3261 §13.3): the SDP answer (RFC 3264), opening and
connecting the RTP leg, the 2xx retransmitted until its ACK (§13.3.1.4: T1 doubling to T2,
BYE after 64*T1 without ACK), re-INVITEs for hold and resume (§14, RFC 3264 §8.4), BYE from
either side (§15), the media timeout (no RTP for a while: BYE, unless the peer put the call
on hold), and hanging up every call with BYE when the engine stops. Must not know queues,
agents or HTTP: routing calls to registered phones and into the contact center is built on
top of this, later.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..sip import NameAddr, Request, Response, SipUri
from ..sip.dialog import Dialog, DialogEstablished, DialogId, Dialogs, DialogState
from ..sip.offer_answer import Negotiated, NegotiationError, answer_offer
from ..sip.sdp import SdpError, parse_sdp
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

    def send_request(self, request: Request, peer: Peer) -> None: ...

    def now(self) -> float: ...


@dataclass(slots=True)
class Call:
    dialog_id: DialogId
    key: ServerTransactionKey
    peer: Peer
    leg: RtpLeg
    player: Tickable
    ok: Response
    started: float
    interval: float
    negotiated: Negotiated  # the last offer/answer: a re-INVITE is answered against it
    acked: bool = False
    retransmit: asyncio.TimerHandle | None = field(default=None, repr=False)
    answered_at: float = 0.0  # when the latest 2xx went out (its retransmissions count from it)


class Calls:
    """The calls of one endpoint. `invite()` answers; `ack()`, `ended_by_peer()` and
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
        self._calls: dict[DialogId, Call] = {}
        self._watching = False
        self._closing: set[asyncio.Task[None]] = set()  # legs being closed, awaited on stop

    @property
    def active(self) -> int:
        return len(self._calls)

    def handles(self, request: Request) -> bool:
        """Whether an out-of-dialog INVITE is for us: its Request-URI names an extension."""
        uri = request.uri
        return isinstance(uri, SipUri) and (uri.user_unescaped or "") in EXTENSIONS

    async def invite(self, key: ServerTransactionKey, request: Request, peer: Peer) -> None:
        """Answer an INVITE for a built-in extension (the caller checked `handles`)."""
        respond = self.signalling.respond
        dialogs = self.signalling.dialogs
        if request.content_type != "application/sdp" or not request.body:
            # An INVITE without offer wants ours in the 200 and its answer in the ACK; that
            # (RFC 3261 §13.2.1 "late offer") is not supported yet, so say it plainly.
            respond(key, dialogs.respond(request, 488, "Offer required in INVITE")[0])
            return
        try:
            offer = parse_sdp(request.body)
        except SdpError as exc:
            respond(key, dialogs.respond(request, 488, exc.reason[:100])[0])
            return
        try:
            leg = await self.pool.open_leg()
        except OSError:
            log.warning("no free RTP port for a call from %s:%d", peer.host, peer.port)
            respond(key, dialogs.respond(request, 503, "No media ports")[0])
            return
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
            respond(key, dialogs.respond(request, 488, exc.reason[:100])[0])
            return
        leg.connect(negotiated)
        call_id = request.call_id
        # Digits are logged per call (the IVR will consume them); RFC 4733 or in-band later.
        leg.on_digit = lambda digit: log.info("call %s: DTMF %s", call_id, digit)
        ok, events = dialogs.respond(
            request,
            200,
            body=bytes(negotiated.local_sdp),
            content_type="application/sdp",
            contact=self.signalling.contact,
        )
        dialog_id = next(e.dialog_id for e in events if isinstance(e, DialogEstablished))
        extension = (request.uri.user_unescaped or "") if isinstance(request.uri, SipUri) else ""
        player = EXTENSIONS[extension](leg)
        now = self.signalling.now()
        call = Call(
            dialog_id=dialog_id,
            key=key,
            peer=peer,
            leg=leg,
            player=player,
            ok=ok,
            started=now,
            interval=self.timers.t1,
            negotiated=negotiated,
            answered_at=now,
        )
        self._calls[dialog_id] = call
        self.clock.add(player)
        if not self._watching:
            # The media-timeout check rides the media clock (one tick a second).
            self.clock.add(self)
            self._watching = True
        respond(key, ok)
        # §13.3.1.4: the UAS core retransmits its 2xx until the ACK, on every transport (the
        # transaction is gone after a 2xx, so nobody else will).
        self._arm(call)
        log.info("call %s answered by %s", request.call_id, extension)

    def _arm(self, call: Call) -> None:
        loop = asyncio.get_running_loop()
        call.retransmit = loop.call_later(call.interval, self._retransmit, call)

    def _retransmit(self, call: Call) -> None:
        call.retransmit = None
        if call.acked or call.dialog_id not in self._calls:
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
        if request.content_type != "application/sdp" or not request.body:
            return dialogs.respond(request, 488, "Offer required in re-INVITE")[0]
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
        call.negotiated = negotiated
        ok, _events = dialogs.respond(
            request, 200, body=bytes(negotiated.local_sdp), content_type="application/sdp"
        )
        if call.retransmit is not None:
            call.retransmit.cancel()
        call.key, call.ok, call.acked = key, ok, False
        call.answered_at, call.interval = self.signalling.now(), self.timers.t1
        self._arm(call)
        log.info(
            "call %s re-negotiated: we %s, peer %s",
            request.call_id,
            negotiated.direction.value,
            "holds" if negotiated.remote_hold else "sends",
        )
        return ok

    def tick(self, n: int) -> None:
        """Once a second: hang up calls whose peer stopped sending RTP (dead phone, lost
        network), except while the peer holds the call and so rightly sends nothing."""
        if n % 50 or not self._calls:
            return
        now = self.signalling.now()
        for call in list(self._calls.values()):
            if call.negotiated.remote_hold:
                continue
            last = call.leg.last_packet_at or call.answered_at
            if now - last > self.media_timeout:
                log.info("no RTP for %.0f s on %s: hanging up", now - last, call.dialog_id.call_id)
                self.hang_up(call.dialog_id)

    def ack(self, dialog: Dialog) -> None:
        call = self._calls.get(dialog.id)
        if call is None:
            return
        call.acked = True
        if call.retransmit is not None:
            call.retransmit.cancel()
            call.retransmit = None

    def ended_by_peer(self, dialog: Dialog) -> None:
        """The peer's BYE (already answered 200 by the endpoint) ends the call."""
        call = self._calls.pop(dialog.id, None)
        if call is not None:
            self._release(call)

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
        self.clock.remove(call.player)
        task = asyncio.get_running_loop().create_task(call.leg.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def stop(self) -> None:
        """Hang up every call with BYE (graceful shutdown) and release the media."""
        for dialog_id in list(self._calls):
            self.hang_up(dialog_id)
        if self._watching:
            self.clock.remove(self)
            self._watching = False
        await asyncio.gather(*self._closing, return_exceptions=True)
