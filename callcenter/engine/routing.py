"""Who may call, and where a new INVITE goes.

Owns the admission of an out-of-dialog INVITE — from a trunk's allowlisted address, or from a
user whose digest credentials check out (401 challenge otherwise, 403 when the From claims
someone else, 403 for anyone when no directory exists) — and its destination: an application
the composition root plugged in (`ivr`, or `flow:NAME` from a trunk's number mapping), a
built-in extension, a registered phone by user name (480 while it has no registration, 404 for
nobody), or, for users only, an outside number through the outbound trunk. A trunk's call
never reaches an outbound path: what a carrier sends in stays in (toll fraud). Must not know
queues, agents, HTTP or the database (the registrar's directory answers who exists).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from ..sip import Request, Response, SipUri, make_response
from ..sip.dialog import random_tag
from ..sip.transaction import ServerTransactionKey
from .bridge import Bridges
from .calls import Calls, PendingCall
from .registration import Registrations
from .transport import Peer
from .trunks import Trunk, Trunks

log = logging.getLogger(__name__)

_DIALABLE = frozenset("+0123456789*#")
MAX_NUMBER = 32


class Responder(Protocol):
    def respond(self, key: ServerTransactionKey, response: Response) -> None: ...


class CallApplication(Protocol):
    """Something outside the engine that takes whole calls (the IVR): given the caller's
    INVITE with its offer accepted, it answers or rejects it. `argument` is what followed the
    application's name in the destination (`flow:sales` → `sales`, `ivr` → "")."""

    async def take_call(self, pending: PendingCall, argument: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: a trunk (by address) or an authenticated user."""

    trunk: Trunk | None
    user: str | None

    def __str__(self) -> str:
        return f"trunk {self.trunk.name}" if self.trunk is not None else f"user {self.user}"


def dialled(request: Request) -> str:
    uri = request.uri
    return (uri.user_unescaped or "") if isinstance(uri, SipUri) else ""


def is_number(text: str) -> bool:
    return 0 < len(text) <= MAX_NUMBER and all(ch in _DIALABLE for ch in text)


class Router:
    def __init__(
        self,
        responder: Responder,
        calls: Calls,
        bridges: Bridges,
        *,
        trunks: Trunks,
        registrations: Registrations | None,
        local_host: str,
    ) -> None:
        self.responder = responder
        self.calls = calls
        self.bridges = bridges
        self.trunks = trunks
        self.registrations = registrations
        self.local_host = local_host
        # Destinations taken by the contact center, by name (`ivr`, `flow`): the composition
        # root fills this in; the engine cannot import services.
        self.applications: dict[str, CallApplication] = {}

    def _refuse(
        self, key: ServerTransactionKey, request: Request, status: int, reason: str | None = None
    ) -> None:
        self.responder.respond(key, make_response(request, status, reason, to_tag=random_tag()))

    async def admit(self, key: ServerTransactionKey, request: Request, peer: Peer) -> Caller | None:
        """Who the INVITE is from, or None when it was refused (answered already)."""
        trunk = self.trunks.match(peer.host)
        if trunk is not None:
            return Caller(trunk, None)
        if self.registrations is None:
            self._refuse(key, request, 403, "Calls only from trunks")
            return None
        verdict = await self.registrations.authenticate(request, to_tag=random_tag())
        if isinstance(verdict, Response):
            self.responder.respond(key, verdict)
            return None
        claimed = request.from_addr.uri
        if not isinstance(claimed, SipUri) or (claimed.user_unescaped or "") != verdict:
            # A user may not call as another user (caller ID spoofing inside the PBX).
            log.warning(
                "INVITE from %s:%d: %s sent From %s", peer.host, peer.port, verdict, claimed
            )
            self._refuse(key, request, 403, "From does not match credentials")
            return None
        return Caller(None, verdict)

    async def route(self, key: ServerTransactionKey, request: Request, peer: Peer) -> None:
        """Admit and place a new INVITE; every path ends in a response, a failure in 500."""
        try:
            await self._route(key, request, peer)
        except Exception:
            log.exception("call %s failed", request.call_id)
            self.calls.fail(key, request)

    async def _route(self, key: ServerTransactionKey, request: Request, peer: Peer) -> None:
        if _hops_left(request) <= 0:
            # A loop (a trunk sending our own call back to us, two PBXes forwarding to each
            # other) ends here instead of ringing forever (RFC 3261 §16.3 step 2).
            self._refuse(key, request, 483)
            return
        caller = await self.admit(key, request, peer)
        if caller is None or self.calls.cancelled_early(key, request):
            return
        number = dialled(request)
        if caller.trunk is not None:
            number = caller.trunk.numbers.get(number, number)
        name, _, argument = number.partition(":")
        application = self.applications.get(name)
        if application is not None:
            pending = await self.calls.accept_offer(key, request, peer)
            if pending is None:
                return
            log.info("call %s from %s to %s", request.call_id, caller, number[:64])
            await application.take_call(pending, argument)
            return
        if number in self.calls.extensions:
            log.info("call %s from %s to extension %s", request.call_id, caller, number)
            await self.calls.invite(key, request, peer, extension=number)
            return
        if self.registrations is not None and await self.registrations.is_user(number):
            await self._to_phone(key, request, peer, caller, number)
            return
        outbound = self.trunks.outbound()
        if caller.user is not None and outbound is not None and is_number(number):
            await self._to_trunk(key, request, peer, caller, outbound, number)
            return
        log.info("call %s from %s: no route to %r", request.call_id, caller, number[:64])
        self._refuse(key, request, 404)

    async def _to_phone(
        self, key: ServerTransactionKey, request: Request, peer: Peer, caller: Caller, user: str
    ) -> None:
        assert self.registrations is not None
        bindings = self.registrations.contacts_of_user(user)
        if not bindings:
            log.info("call %s from %s: %s has no registered phone", request.call_id, caller, user)
            self._refuse(key, request, 480, "Not registered")
            return
        binding = bindings[0]  # the newest registration
        pending = await self.calls.accept_offer(key, request, peer)
        if pending is None:
            return
        source = binding.source
        log.info("call %s from %s to %s at %s", request.call_id, caller, user, binding.contact)
        caller_id, caller_name = _caller_id(request, caller)
        await self.bridges.connect(
            pending,
            binding.contact_uri,
            Peer(source.transport.upper(), source.host, source.port),
            caller_id=caller_id,
            caller_name=caller_name,
            max_forwards=_hops_left(request) - 1,
        )

    async def _to_trunk(
        self,
        key: ServerTransactionKey,
        request: Request,
        peer: Peer,
        caller: Caller,
        trunk: Trunk,
        number: str,
    ) -> None:
        assert trunk.outbound is not None
        pending = await self.calls.accept_offer(key, request, peer)
        if pending is None:
            return
        destination = trunk.outbound
        target = SipUri(host=destination.host, port=destination.port, user=number)
        log.info("call %s from %s out through trunk %s", request.call_id, caller, trunk.name)
        caller_id, caller_name = _caller_id(request, caller)
        await self.bridges.connect(
            pending,
            target,
            destination,
            caller_id=caller_id,
            caller_name=caller_name,
            max_forwards=_hops_left(request) - 1,
        )


def _caller_id(request: Request, caller: Caller) -> tuple[str, str | None]:
    """The From we present to the callee: the calling user, or the number the trunk gave."""
    if caller.user is not None:
        user = caller.user
    else:
        uri = request.from_addr.uri
        user = (uri.user_unescaped or "anonymous") if isinstance(uri, SipUri) else "anonymous"
    safe = "".join(ch for ch in user[:64] if ch.isascii() and (ch.isalnum() or ch in "+-_.*#"))
    return safe or "anonymous", request.from_addr.display_text


def _hops_left(request: Request) -> int:
    """The INVITE's Max-Forwards (70 when absent or unreadable, as a UAS may assume)."""
    value = (request.headers.get("Max-Forwards") or "").strip()
    return min(int(value), 70) if value.isdigit() and len(value) <= 3 else 70
