"""Calls the engine places (the UAC side, RFC 3261 §13.2): INVITE, its answers, ACK, BYE.

Owns our INVITE with an SDP offer on a fresh RTP leg, waiting for the final response
(provisionals only noted), accepting the answer (RFC 3264) and connecting the leg, ACKing
every 2xx, retransmissions included (§13.2.2.4), and hanging up. The `callcenter call` test
phone uses it now; routing calls to phones and trunks will. Must not know queues or HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from ..sip import Headers, NameAddr, Request, Response, SipUri
from ..sip.dialog import Dialog, DialogId, Dialogs, DialogState, random_tag
from ..sip.offer_answer import accept_answer, build_offer
from ..sip.sdp import SdpError, parse_sdp
from .media import RtpLeg, RtpPortPool
from .transport import Peer

_call_ids = itertools.count(1)


class CallFailed(Exception):
    """The call was not answered: `status` is the final response (0: no answer at all)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}".strip())
        self.status = status
        self.reason = reason


class UacSignalling(Protocol):
    """What placing calls needs from the SIP endpoint."""

    @property
    def dialogs(self) -> Dialogs: ...

    @property
    def contact(self) -> NameAddr: ...

    def send_request(
        self, request: Request, peer: Peer, *, on_response: ResponseHandler | None = None
    ) -> None: ...

    def send_ack(self, ack: Request, peer: Peer) -> None: ...


class ResponseHandler(Protocol):
    def __call__(self, response: Response | None) -> None: ...


@dataclass(slots=True)
class OutboundCall:
    """A call we placed. `ended` is set when either side hangs up."""

    leg: RtpLeg
    peer: Peer
    invite: Request
    dialog_id: DialogId | None = None
    status: int = 0
    answered: asyncio.Future[Response] = field(default_factory=asyncio.Future)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class OutboundCalls:
    def __init__(self, signalling: UacSignalling, *, pool: RtpPortPool, local_host: str) -> None:
        self.signalling = signalling
        self.pool = pool
        self.local_host = local_host
        self._calls: dict[DialogId, OutboundCall] = {}

    async def dial(self, target: SipUri, *, caller: str = "callcenter") -> OutboundCall:
        """INVITE `target` (sent to its host and port over UDP) and wait for the answer.
        Raises CallFailed for a final error response or when nobody answers (Timer B)."""
        leg = await self.pool.open_leg()
        offer = build_offer(address=self.local_host, port=leg.port, session_id=secrets.randbits(62))
        contact = self.signalling.contact
        from_uri = SipUri(host=self.local_host, user=caller)
        headers = Headers(
            [
                ("From", f"<{from_uri}>;tag={random_tag()}"),
                ("To", f"<{target.without_headers()}>"),
                ("Call-ID", f"{secrets.token_hex(8)}-{next(_call_ids)}@{self.local_host}"),
                ("CSeq", "1 INVITE"),
                ("Contact", str(contact)),
                ("Max-Forwards", "70"),
            ]
        )
        invite = Request("INVITE", target.without_headers(), headers)
        invite.set_body(bytes(offer), "application/sdp")
        peer = Peer("UDP", target.host_unbracketed, target.port or 5060)
        call = OutboundCall(leg=leg, peer=peer, invite=invite)
        self.signalling.send_request(
            invite, peer, on_response=lambda response: self._on_response(call, response)
        )
        try:
            ok = await call.answered
        except CallFailed:
            await leg.close()
            raise
        try:
            negotiated = accept_answer(offer, parse_sdp(ok.body))
        except SdpError as exc:
            await self.hang_up(call)
            raise CallFailed(488, f"unusable answer: {exc.reason}") from exc
        leg.connect(negotiated)
        return call

    def _on_response(self, call: OutboundCall, response: Response | None) -> None:
        if response is None:
            if not call.answered.done():
                call.answered.set_exception(CallFailed(0, "no answer (timeout)"))
            return
        dialog, _events = self.signalling.dialogs.receive_response(call.invite, response)
        if response.status < 200:
            return
        if response.status >= 300:
            if not call.answered.done():
                call.answered.set_exception(CallFailed(response.status, response.reason))
            return
        # Every 2xx is ACKed, the first and each retransmission (§13.2.2.4).
        if dialog is not None:
            self.signalling.send_ack(dialog.create_ack(call.invite.cseq), call.peer)
        if call.answered.done():
            return
        call.status = response.status
        if dialog is not None:
            call.dialog_id = dialog.id
            self._calls[dialog.id] = call
        call.answered.set_result(response)

    def ended_by_peer(self, dialog: Dialog) -> bool:
        """The peer's BYE ended one of our calls (the endpoint answered it 200)."""
        call = self._calls.pop(dialog.id, None)
        if call is None:
            return False
        call.ended.set()
        return True

    async def hang_up(self, call: OutboundCall) -> None:
        """BYE (if the call is up) and release the media."""
        if call.dialog_id is not None and self._calls.pop(call.dialog_id, None) is not None:
            dialog = self.signalling.dialogs.get(call.dialog_id)
            if dialog is not None and dialog.state is not DialogState.TERMINATED:
                self.signalling.send_request(dialog.create_request("BYE"), call.peer)
        call.ended.set()
        await call.leg.close()
