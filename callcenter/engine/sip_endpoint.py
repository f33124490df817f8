"""The SIP endpoint: the sans-IO core driven by the event loop over real transports.

Owns the transaction layer's clock (`loop.time()` is the core's `now`, one timer handle for the
next deadline), stamping received/rport on requests (RFC 3261 §18.2.1, RFC 3581), routing
responses back (§18.2.2), stateless answers to unparsable requests, and the UAS behaviour that
needs no call: §8.2 checks, 481 for in-dialog requests of unknown dialogs, OPTIONS, CANCEL of
nothing. Must not know queues, agents, HTTP or the database; calls plug in as a handler.

Until call handling is built, `Allow` says exactly what is served (OPTIONS, and REGISTER when
a registrar is plugged in), so an INVITE gets an honest 405 rather than a pretence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass

from ..sip import (
    DEFAULT_LIMITS,
    Limits,
    NameAddr,
    Request,
    Response,
    SipError,
    SipParseError,
    SipUri,
    make_response,
    parse_message,
)
from ..sip.dialog import Accepted, Dialogs, Rejected, random_tag
from ..sip.framer import Framed, KeepAliveReceived, MessageRejected
from ..sip.parser import error_response
from ..sip.registrar import Source
from ..sip.transaction import (
    DEFAULT_TIMERS,
    AckReceived,
    ClientKey,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    ServerTransactionKey,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimedOut,
    Transmission,
    TransportErrorOccurred,
    build_cancel,
)
from ..sip.uas import UasPolicy, check_request
from .bridge import Bridges
from .calls import Calls
from .media import MediaClock, Prompt, RtpPortPool, load_music, music_extension
from .outbound import OutboundCalls, ResponseHandler
from .registration import Registrations
from .routing import Router
from .transport import Peer, SipTransports
from .trunks import Trunks

log = logging.getLogger(__name__)

SERVED_METHODS = ("OPTIONS", "ACK", "CANCEL")


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    host: str = "127.0.0.1"
    port: int = 5060
    user_agent: str = "callcenter"
    limits: Limits = DEFAULT_LIMITS
    timers: TimerConfig = DEFAULT_TIMERS
    max_transactions: int = 50_000
    media_timeout: float = 30.0  # seconds without RTP before a call is hung up
    ring_timeout: float = 60.0  # seconds a bridged call may ring before the caller gets 480
    hold_music: str | None = None  # WAV file for `music` and held calls (None: built-in)


def stamp_via(request: Request, peer: Peer) -> None:
    """§18.2.1 and RFC 3581: record where the request really came from in its top Via."""
    via = request.top_via
    host = via.host[1:-1] if via.host.startswith("[") else via.host
    stamped = via
    if via.wants_rport:
        stamped = stamped.with_param("rport", str(peer.port)).with_param("received", peer.host)
    elif host != peer.host:
        stamped = stamped.with_param("received", peer.host)
    if stamped is not via:
        request.headers.replace_first_value("Via", str(stamped))


def response_destination(response: Response, peer: Peer) -> Peer:
    """§18.2.2: where a response goes. Streams reuse the connection; over UDP the address is
    `received` (the source we stamped) and the port is rport, else the sent-by port."""
    if peer.reliable:
        return peer
    via = response.top_via
    received = via.received
    host = received.strip("[]") if received else via.host.strip("[]")
    port = via.rport or via.port or 5060
    return Peer("UDP", host, port)


class SipEndpoint:
    """An owned component: `start()` binds UDP and TCP, `stop()` closes them and its timer."""

    def __init__(
        self,
        config: EndpointConfig = EndpointConfig(),
        *,
        registrations: Registrations | None = None,
        media: tuple[RtpPortPool, MediaClock] | None = None,
        trunks: Trunks | None = None,
    ) -> None:
        self.config = config
        self.registrations = registrations
        served = SERVED_METHODS + (("REGISTER",) if registrations is not None else ())
        if media is not None:
            served += ("INVITE", "BYE")
        self.policy = UasPolicy(allowed_methods=served)
        self.clock = media[1] if media is not None else None
        self.calls = (
            Calls(
                self,
                pool=media[0],
                clock=media[1],
                local_host=config.host,
                timers=config.timers,
                media_timeout=config.media_timeout,
            )
            if media is not None
            else None
        )
        self.trunks = trunks or Trunks()
        self._music: Prompt | None = None
        self.outbound: OutboundCalls | None = None
        self.router: Router | None = None
        if self.calls is not None and media is not None:
            self.outbound = OutboundCalls(
                self,
                self.calls,
                pool=media[0],
                local_host=config.host,
                cancel_timeout=64 * config.timers.t1,
            )
            self.bridges = Bridges(
                self.calls,
                self.outbound,
                media[1],
                ring_timeout=config.ring_timeout,
                music=lambda: self._music.loop() if self._music is not None else None,
            )
            self.router = Router(
                self,
                self.calls,
                self.bridges,
                trunks=self.trunks,
                registrations=registrations,
                local_host=config.host,
            )
        self.transports = SipTransports(
            config.host,
            config.port,
            on_datagram=self._on_datagram,
            on_framed=self._on_framed,
            limits=config.limits,
        )
        self.layer = TransactionLayer(
            config=config.timers, max_transactions=config.max_transactions
        )
        self.dialogs = Dialogs()
        self._peers: dict[ServerTransactionKey, Peer] = {}
        self._destinations: dict[ClientKey, Peer] = {}  # where our requests go
        self._handlers: dict[ClientKey, ResponseHandler] = {}  # who awaits their responses
        self._timer: asyncio.TimerHandle | None = None
        self._overload_logged = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        # Requests answered after an await (a database lookup): owned, cancelled on stop.
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self.transports.port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.registrations is not None:
            await self.registrations.start()
        if self.calls is not None:
            # Loaded before the first call (it reads a file, once): a bad file stops startup
            # with its name rather than failing each call.
            self._music = await load_music(self.config.hold_music)
            self.calls.extensions["music"] = music_extension(self._music)
        await self.transports.start()
        if self.clock is not None:
            self.clock.start()

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.calls is not None:
            await self.calls.stop()  # BYE to every call while the transports still run
            self._flush()
        if self.clock is not None:
            await self.clock.stop()
        await self.transports.stop()

    def listening(self) -> str:
        line = self.transports.listening()
        if self.calls is not None:
            pool = self.calls.pool
            line += f"; RTP: udp {self.config.host} ports from a pool of {pool.capacity}"
            line += f" (extensions: {', '.join(sorted(self.calls.extensions))})"
            names = ", ".join(t.name for t in self.trunks.trunks) or "none"
            line += f"; trunks: {names}"
        return line

    # --- what calls need (calls.Signalling) -----------------------------------------------

    @property
    def contact(self) -> NameAddr:
        return NameAddr(SipUri(host=self.config.host, port=self.port, user="callcenter"))

    def now(self) -> float:
        return self._now()

    def respond(self, key: ServerTransactionKey, response: Response) -> None:
        if self.layer.transaction(key) is not None:
            self.layer.send_response(key, response, self._now())
            self._flush()

    def send_request(
        self, request: Request, peer: Peer, *, on_response: ResponseHandler | None = None
    ) -> ClientKey:
        """Send a request of ours to `peer` through a client transaction; `on_response` gets
        each response passed up, and None if the transaction times out."""
        request.headers.prepend(
            "Via", f"SIP/2.0/{peer.transport} {self.config.host}:{self.port};rport"
        )
        key = self.layer.send_request(request, self._now(), reliable=peer.reliable)
        self._destinations[key] = peer
        if on_response is not None:
            self._handlers[key] = on_response
        self._flush()
        return key

    def abandon(self, key: ClientKey) -> None:
        """Give up on our INVITE that no final response ever came for (§9.1: a CANCEL that
        was not answered within 64*T1); its handler is told with None."""
        handler = self._handlers.pop(key, None)
        self.layer.abandon(key, self._now())
        self._flush()
        if handler is not None:
            handler(None)

    def send_cancel(self, invite: Request, peer: Peer) -> None:
        """CANCEL our INVITE (§9.1): its own client transaction, on the INVITE's branch."""
        key = self.layer.send_request(build_cancel(invite), self._now(), reliable=peer.reliable)
        self._destinations[key] = peer
        self._flush()

    def send_ack(self, ack: Request, peer: Peer) -> None:
        """The ACK of a 2xx goes straight to the transport: it is a transaction of its own
        that nobody answers (§17.1.1.3), with a fresh branch each time."""
        branch = self.layer.new_branch()
        ack.headers.prepend(
            "Via", f"SIP/2.0/{peer.transport} {self.config.host}:{self.port};branch={branch}"
        )
        self._send_bytes(ack, peer)

    # --- input --------------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_datagram(self, data: bytes, peer: Peer) -> None:
        if not data.strip(b"\r\n"):
            return  # a keep-alive (RFC 5626 §3.5.1 over UDP is STUN; CRLFs are just ignored)
        try:
            message = parse_message(data, limits=self.config.limits)
        except SipParseError as exc:
            self._reject_unparsable(exc, peer)
            return
        self._receive(message, peer)

    def _on_framed(self, item: Framed, peer: Peer) -> None:
        if isinstance(item, KeepAliveReceived):
            self.transports.pong(peer)
        elif isinstance(item, MessageRejected):
            self._reject_unparsable(item.error, peer)
        else:
            self._receive(item, peer)

    def _reject_unparsable(self, error: SipParseError, peer: Peer) -> None:
        response = error_response(error, to_tag=random_tag())
        log.debug("unparsable message from %s:%d: %s", peer.host, peer.port, error)
        if response is not None:
            # The Via could not be trusted; the source address is the only sane destination.
            self._send_bytes(response, peer)

    def _receive(self, message: Request | Response, peer: Peer) -> None:
        now = self._now()
        if isinstance(message, Response):
            # No client transactions exist yet: the layer reports strays, which we drop
            # (RFC 4475 bcast, unreason, noreason: never answer a response).
            self.layer.receive_response(message, now)
        else:
            stamp_via(message, peer)
            self.layer.receive_request(message, now, reliable=peer.reliable)
            for event in self.layer.next_events():
                self._dispatch(event, peer)
        self._flush()

    def _dispatch(self, event: object, peer: Peer | None) -> None:
        if isinstance(event, RequestReceived) and peer is not None:
            self._peers[event.transaction] = peer
            request = event.request
            if self.calls is not None and (
                request.to_tag is not None or request.method in ("INVITE", "CANCEL")
            ):
                response = self._call_request(event.transaction, request, peer)
                if response is not None:
                    self.layer.send_response(event.transaction, response, self._now())
                return
            if request.method == "REGISTER" and self.registrations is not None:
                rejection = self._pre_check(request)
                if rejection is None:
                    self._spawn(self._register(event.transaction, request, peer))
                    return
                response = rejection
            else:
                response = self._answer(request)
            self.layer.send_response(event.transaction, response, self._now())
        elif isinstance(event, RequestRefused) and peer is not None:
            # Over the transaction bound: answer statelessly and keep no state (§21.5.4).
            now = self._now()
            if now - self._overload_logged > 10:
                self._overload_logged = now
                log.warning(
                    "overload: %d SIP transactions (the limit): answering 503",
                    self.config.max_transactions,
                )
            busy = make_response(event.request, 503, to_tag=random_tag())
            busy.headers.add("Retry-After", "5")
            self._send_bytes(busy, peer)
        elif isinstance(event, ResponseReceived):
            handler = self._handlers.get(event.transaction)
            if handler is not None:
                handler(event.response)
        elif isinstance(event, TransactionTimedOut | TransportErrorOccurred):
            key = event.transaction
            if isinstance(key, ClientKey) and (handler := self._handlers.pop(key, None)):
                handler(None)
        elif isinstance(event, TransactionTerminated):
            key = event.transaction
            if isinstance(key, ClientKey):
                self._destinations.pop(key, None)
                self._handlers.pop(key, None)
            else:
                self._peers.pop(key, None)
                if self.calls is not None:
                    self.calls.forget(key)
        elif isinstance(event, AckReceived) and self.calls is not None:
            # The ACK of a 2xx: it belongs to the dialog, not to a transaction (§13.3.1.4);
            # one reusing the INVITE's branch comes through its Accepted state (RFC 6026).
            dialog, verdict = self.dialogs.receive_request(event.request)
            if dialog is not None and isinstance(verdict, Accepted):
                self.calls.ack(dialog, event.request)

    def _call_request(
        self, key: ServerTransactionKey, request: Request, peer: Peer
    ) -> Response | None:
        """INVITE, CANCEL and in-dialog requests while calls are served; None when the answer
        comes later (an INVITE being set up)."""
        assert self.calls is not None
        if request.method == "CANCEL":
            # The CANCEL is answered itself (§9.2: 200 if its INVITE exists, else 481), then
            # the INVITE, if still ringing, gets its 487.
            invite = self.layer.find_invite(request)
            ok = make_response(request, 200 if invite is not None else 481, to_tag=random_tag())
            self.layer.send_response(key, ok, self._now())
            if invite is not None:
                self.calls.cancel(invite)
            return None
        if request.to_tag is None:
            rejection = self._pre_check(request)
            if rejection is not None:
                return rejection
            assert self.router is not None
            self._spawn(self.router.route(key, request, peer))
            return None
        dialog, verdict = self.dialogs.receive_request(request)
        if isinstance(verdict, Rejected):
            return verdict.response(request, to_tag=random_tag())
        if dialog is None:
            return make_response(request, 481, to_tag=random_tag())
        if request.method == "BYE":
            response, _events = self.dialogs.respond(request, 200)
            if not self.calls.ended_by_peer(dialog):
                # A BYE of an early dialog: the caller gave up ringing (§15.1.2: 487 it).
                self.calls.cancel_early_dialog(dialog.id)
            return response
        if request.method == "INVITE":
            return self.calls.reinvite(key, request, dialog)
        if request.method == "OPTIONS":
            return self.dialogs.respond(request, 200)[0]
        return self.dialogs.respond(request, 405)[0]

    def _pre_check(self, request: Request) -> Response | None:
        """481 for an in-dialog request of no dialog, then the §8.2 checks."""
        tag = random_tag()
        if request.to_tag is not None and request.method != "REGISTER":
            _dialog, verdict = self.dialogs.receive_request(request)
            if isinstance(verdict, Rejected):
                return verdict.response(request, to_tag=tag)
        return check_request(request, self.policy, to_tag=tag)

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A bug in a request's handling: say so loudly; the transaction times out.
            log.error("request handling failed", exc_info=exc)

    async def _register(self, key: ServerTransactionKey, request: Request, peer: Peer) -> None:
        assert self.registrations is not None
        source = Source(peer.host, peer.port, peer.transport)
        try:
            response = await self.registrations.handle(request, source, to_tag=random_tag())
        except Exception:
            # The directory failed (database down): say so, never leave the phone hanging.
            log.exception("REGISTER from %s:%d failed", peer.host, peer.port)
            response = make_response(request, 500, to_tag=random_tag())
            response.headers.add("Retry-After", "30")
        if self.layer.transaction(key) is None:
            return  # the transaction ended meanwhile (transport error): nothing to answer
        self.layer.send_response(key, response, self._now())
        self._flush()

    def _answer(self, request: Request) -> Response:
        """The final response to a request outside any call (we have no calls yet)."""
        tag = random_tag()
        rejection = self._pre_check(request)
        if rejection is not None:
            return rejection
        if request.method == "CANCEL":
            # No INVITE server transaction exists to cancel (§9.2).
            return make_response(request, 481, to_tag=tag)
        ok = make_response(request, 200, to_tag=tag)
        ok.headers.add("Allow", self.policy.allow_header)
        ok.headers.add("Accept", ", ".join(sorted(self.policy.content_types)))
        ok.headers.add("Accept-Encoding", "identity")
        ok.headers.add("Accept-Language", "en")
        ok.headers.add("Supported", "")
        ok.headers.add("Server", self.config.user_agent)
        return ok

    # --- output -------------------------------------------------------------------------

    def _flush(self) -> None:
        for transmission in self.layer.data_to_send():
            self._transmit(transmission)
        for event in self.layer.next_events():
            self._dispatch(event, None)
        self._schedule()

    def _transmit(self, transmission: Transmission) -> None:
        key = transmission.transaction
        message = transmission.message
        if isinstance(key, ClientKey):
            destination = self._destinations.get(key)
            if destination is None:
                return
        else:
            peer = self._peers.get(key)
            if peer is None or not isinstance(message, Response):
                return
            destination = response_destination(message, peer)
        if not self.transports.send(transmission.data, destination):
            self.layer.handle_transport_error(key, self._now())

    def _send_bytes(self, message: Request | Response, peer: Peer) -> None:
        try:
            data = bytes(message)
        except SipError:
            return  # an echoed field we refuse to write (CR/LF): better silent than injected
        self.transports.send(data, peer)

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.layer.get_timer()
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.layer.handle_timer(self._now())
        self._flush()
