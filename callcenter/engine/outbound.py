"""Calls the engine places (the UAC side, RFC 3261 §13.2): INVITE, its answers, ACK, BYE.

Owns our INVITE with an SDP offer on a fresh RTP leg until its final response: provisional
responses passed on (a bridge relays the ringing), CANCEL (§9.1: only once a provisional has
arrived, and a 2xx that crosses it is ACKed and hung up), accepting the answer (RFC 3264),
connecting the leg and handing the call to `Calls`, which then owns it like any other;
ACKing every 2xx, retransmissions included (§13.2.2.4). Used by the `callcenter call` test
phone and by bridges to registered phones and trunks. Must not know queues or HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..sip import Headers, NameAddr, Request, Response, SipError, SipUri
from ..sip.dialog import DialogId, Dialogs, DialogState, random_tag
from ..sip.digest import Challenge, DigestClient, DigestParseError, make_cnonce, parse_challenge
from ..sip.offer_answer import accept_answer, build_offer
from ..sip.sdp import SdpError, parse_sdp
from ..sip.transaction import ClientKey
from .calls import Call, Calls
from .media import RtpLeg, RtpPortPool, Tickable
from .transport import Peer

log = logging.getLogger(__name__)

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
    ) -> ClientKey: ...

    def abandon(self, key: ClientKey) -> None: ...

    def send_cancel(self, invite: Request, peer: Peer) -> None: ...

    def send_ack(self, ack: Request, peer: Peer) -> None: ...


class ResponseHandler(Protocol):
    def __call__(self, response: Response | None) -> None: ...


@dataclass(slots=True, eq=False, weakref_slot=True)
class OutboundCall:
    """A call we place. `answered` resolves with the 2xx (or fails with CallFailed); `ended`
    is set when either side hangs up or the call fails."""

    leg: RtpLeg
    peer: Peer
    invite: Request
    on_provisional: Callable[[int], None] | None = None
    dialog_id: DialogId | None = None
    status: int = 0
    provisional_seen: bool = False
    cancelled: bool = False
    cancel_sent: bool = False
    call: Call | None = None  # once answered: the established call, owned by Calls
    credentials: DigestClient | None = None  # answers one 401/407 challenge
    authenticated: bool = False
    key: ClientKey | None = None  # the INVITE's client transaction
    final_seen: bool = False  # a final response (or a timeout) ended the INVITE
    give_up: asyncio.TimerHandle | None = None  # after CANCEL: abandon at 64*T1
    dialogs: set[DialogId] = field(default_factory=set)  # every dialog a response made
    answered: asyncio.Future[Response] = field(default_factory=asyncio.Future)
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class OutboundCalls:
    def __init__(
        self,
        signalling: UacSignalling,
        calls: Calls,
        *,
        pool: RtpPortPool,
        local_host: str,
        cancel_timeout: float = 32.0,
    ) -> None:
        self.cancel_timeout = cancel_timeout  # 64*T1: how long a CANCELled INVITE may linger
        self.signalling = signalling
        self.calls = calls
        self.pool = pool
        self.local_host = local_host

    async def dial(
        self,
        target: SipUri,
        *,
        destination: Peer | None = None,
        caller: str = "callcenter",
        caller_name: str | None = None,
        on_provisional: Callable[[int], None] | None = None,
        on_end: Callable[[], None] | None = None,
        on_hold: Callable[[bool], None] | None = None,
        media: Callable[[RtpLeg], Tickable] | None = None,
        started: Callable[[OutboundCall], None] | None = None,
        credentials: DigestClient | None = None,
        max_forwards: int = 70,
    ) -> OutboundCall:
        """INVITE `target` (sent to `destination`, by default its host and port over UDP)
        and wait for the answer. Raises CallFailed for a final error response, a CANCEL, or
        when nobody answers (Timer B). `started` gets the call as soon as the INVITE is out,
        so that it can be cancelled."""
        leg = await self.pool.open_leg()
        offer = build_offer(address=self.local_host, port=leg.port, session_id=secrets.randbits(62))
        contact = self.signalling.contact
        from_uri = SipUri(host=self.local_host, user=caller)
        display = f'"{_quoted(caller_name)}" ' if caller_name else ""
        headers = Headers(
            [
                ("From", f"{display}<{from_uri}>;tag={random_tag()}"),
                ("To", f"<{target.without_headers()}>"),
                ("Call-ID", f"{secrets.token_hex(8)}-{next(_call_ids)}@{self.local_host}"),
                ("CSeq", "1 INVITE"),
                ("Contact", str(contact)),
                ("Max-Forwards", str(max_forwards)),
            ]
        )
        invite = Request("INVITE", target.without_headers(), headers)
        invite.set_body(bytes(offer), "application/sdp")
        peer = destination or Peer("UDP", target.host_unbracketed, target.port or 5060)
        call = OutboundCall(
            leg=leg,
            peer=peer,
            invite=invite,
            on_provisional=on_provisional,
            credentials=credentials,
        )
        self._send_invite(call)
        if started is not None:
            started(call)
        try:
            ok = await call.answered
        except asyncio.CancelledError:
            # Our caller went away (engine stopping, a CLI timeout): stop the phone ringing.
            self.cancel(call)
            self._failed(call)
            await leg.close()
            raise
        except CallFailed:
            self._failed(call)
            await leg.close()
            raise
        if call.cancelled:  # answered, but given up on while we were being told so
            self._bye(call)
            self._failed(call)
            await leg.close()
            raise CallFailed(487, "Request Terminated")
        try:
            negotiated = accept_answer(offer, parse_sdp(ok.body))
        except SdpError as exc:
            self._bye(call)
            self._failed(call)
            await leg.close()
            raise CallFailed(502, f"unusable answer: {exc.reason}") from exc
        leg.connect(negotiated)
        assert call.dialog_id is not None

        def ended() -> None:
            call.ended.set()
            if on_end is not None:
                on_end()

        call.call = self.calls.adopt(
            call.dialog_id,
            peer,
            leg,
            negotiated,
            media=media(leg) if media is not None else None,
            on_end=ended,
            on_hold=on_hold,
        )
        return call

    def _send_invite(self, call: OutboundCall) -> None:
        call.key = self.signalling.send_request(
            call.invite, call.peer, on_response=lambda response: self._on_response(call, response)
        )

    def _failed(self, call: OutboundCall) -> None:
        """The call never came up: its dialogs (early ones, a 2xx we hung up) go later."""
        call.ended.set()
        if call.give_up is not None:
            call.give_up.cancel()
            call.give_up = None
        for dialog_id in call.dialogs:
            self.calls.forget_later(dialog_id)
        call.dialogs.clear()

    def _authenticate(self, call: OutboundCall, challenge: Response) -> bool:
        """Send the INVITE again with credentials for the challenge (once per call, §22.2)."""
        if call.credentials is None or call.authenticated or call.cancelled:
            return False
        header = "www-authenticate" if challenge.status == 401 else "proxy-authenticate"
        offered = [
            parsed
            for value in challenge.headers.fields(header)
            if isinstance(parsed := _challenge_or_none(value), Challenge)
        ]
        old = call.invite
        credentials = call.credentials.answer(
            offered,
            method="INVITE",
            uri=str(old.uri),
            host=old.uri.host_unbracketed if isinstance(old.uri, SipUri) else "",
            cnonce=make_cnonce(),
        )
        if credentials is None:
            return False
        headers = old.headers.copy()
        headers.remove("Via")
        headers.set("CSeq", f"{old.cseq.seq + 1} INVITE")
        name = "Authorization" if challenge.status == 401 else "Proxy-Authorization"
        headers.set(name, credentials.to_header_value())
        invite = Request("INVITE", old.uri, headers)
        invite.set_body(old.body, "application/sdp")
        call.invite, call.authenticated, call.provisional_seen = invite, True, False
        self._send_invite(call)
        return True

    def _on_response(self, call: OutboundCall, response: Response | None) -> None:
        if response is None:
            call.final_seen = True
            if not call.answered.done():
                call.answered.set_exception(CallFailed(0, "no answer (timeout)"))
            return
        try:
            dialog, _events = self.signalling.dialogs.receive_response(call.invite, response)
        except SipError:
            dialog = None  # a 2xx without a usable Contact: nothing to ACK or talk to
        if dialog is not None:
            call.dialogs.add(dialog.id)
        if response.status >= 200:
            call.final_seen = True
        if response.status < 200:
            call.provisional_seen = True
            if call.cancelled:
                self._send_cancel(call)
            elif call.on_provisional is not None and response.status > 100:
                call.on_provisional(response.status)
            return
        if response.status >= 300:
            if response.status in (401, 407) and self._authenticate(call, response):
                return
            if not call.answered.done():
                call.answered.set_exception(CallFailed(response.status, response.reason))
            return
        # Every 2xx is ACKed, the first and each retransmission (§13.2.2.4).
        if dialog is not None:
            self.signalling.send_ack(dialog.create_ack(call.invite.cseq), call.peer)
        if call.dialog_id is not None or call.answered.done():
            if call.call is None and call.dialog_id is None and dialog is not None:
                self._bye_dialog(dialog.id, call.peer)  # answered after we gave up on it
            return
        if dialog is None:
            call.answered.set_exception(CallFailed(502, "2xx without Contact"))
            return
        call.status = response.status
        call.dialog_id = dialog.id
        if call.cancelled:
            # The 2xx crossed our CANCEL (§9.1): the call is up, so end it with BYE.
            self._bye(call)
            call.answered.set_exception(CallFailed(487, "Request Terminated"))
            return
        call.answered.set_result(response)

    def cancel(self, call: OutboundCall) -> None:
        """Stop ringing: CANCEL once the callee has sent a provisional response (§9.1), or as
        soon as it does; a call already answered is hung up instead."""
        if call.call is not None:
            self.calls.hang_up(call.call.dialog_id)
            return
        if call.cancelled:
            return
        call.cancelled = True
        if call.provisional_seen:
            self._send_cancel(call)
        if not call.final_seen:
            # §9.1: a CANCEL (or a callee that never answered anything) gets 64*T1, then the
            # INVITE is abandoned rather than left waiting forever.
            loop = asyncio.get_running_loop()
            call.give_up = loop.call_later(self.cancel_timeout, self._abandon, call)
        if not call.provisional_seen and not call.answered.done():
            # Nothing at all came back (a stale registration, a phone gone away): no CANCEL can
            # be sent yet, but whoever waits must not wait 64*T1. A late 2xx still gets a BYE.
            call.answered.set_exception(CallFailed(408, "Request Timeout"))

    def _abandon(self, call: OutboundCall) -> None:
        call.give_up = None
        if call.final_seen or call.key is None:
            return
        self.signalling.abandon(call.key)  # tells _on_response with None: CallFailed(0)

    def _send_cancel(self, call: OutboundCall) -> None:
        if not call.cancel_sent and not call.final_seen:
            call.cancel_sent = True
            self.signalling.send_cancel(call.invite, call.peer)

    def _bye(self, call: OutboundCall) -> None:
        if call.dialog_id is not None:
            self._bye_dialog(call.dialog_id, call.peer)

    def _bye_dialog(self, dialog_id: DialogId, peer: Peer) -> None:
        dialog = self.signalling.dialogs.get(dialog_id)
        if dialog is not None and dialog.state is not DialogState.TERMINATED:
            self.signalling.send_request(dialog.create_request("BYE"), peer)

    def hang_up_now(self, call: OutboundCall) -> None:
        """BYE if the call is up, CANCEL if it is still ringing; media released."""
        if call.call is not None:
            self.calls.hang_up(call.call.dialog_id)
        else:
            self.cancel(call)
        call.ended.set()

    async def hang_up(self, call: OutboundCall) -> None:
        """BYE if the call is up, CANCEL if it is still ringing; media released."""
        self.hang_up_now(call)


def _quoted(text: str) -> str:
    """A display name safe inside a quoted-string (RFC 3261 §25.1): no CR/LF, escaped."""
    clean = "".join(ch for ch in text if ch >= " " and ch != "\x7f")[:64]
    return clean.replace("\\", "\\\\").replace('"', '\\"')


def _challenge_or_none(value: str) -> Challenge | None:
    try:
        parsed = parse_challenge(value)
    except DigestParseError:
        return None
    return parsed if isinstance(parsed, Challenge) else None
