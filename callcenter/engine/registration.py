"""Registration of SIP phones: digest-authenticated REGISTER and the bindings it keeps.

Owns the registrar's state in memory (bindings by address-of-record, the source of truth for
routing calls to phones), the digest challenge/verify round, and keeping the directory's copy
current so bindings survive a restart. The rules of REGISTER are `callcenter.sip.registrar`'s;
users and their stored hashes are the directory's (the services layer implements it on the
database). Must not know the database, HTTP, queues or agents.

Unknown users and wrong passwords get the same answer (a fresh 401 challenge) after the same
work, so extensions cannot be enumerated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..sip import Request, Response, SipParseError, SipUri, Uri, make_response, parse_uri
from ..sip.digest import (
    Credentials,
    DigestConfig,
    DigestParseError,
    DigestServer,
    OtherScheme,
    VerifyResult,
    parse_credentials,
)
from ..sip.registrar import (
    DEFAULT_POLICY,
    Binding,
    RegistrarPolicy,
    Source,
    address_of_record,
    process_register,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SipCredentials:
    """What the registrar may know of a user's SIP password: its HA1 hashes for our realm."""

    username: str
    ha1_md5: str | None
    ha1_sha256: str | None

    def ha1(self, algorithm: str) -> str | None:
        return self.ha1_sha256 if algorithm.upper().startswith("SHA-256") else self.ha1_md5


class SubscriberDirectory(Protocol):
    """Users and stored bindings, as the engine needs them (services implement it)."""

    async def credentials(self, username: str) -> SipCredentials | None: ...

    async def load_bindings(self) -> Sequence[Binding]: ...

    async def save_bindings(self, aor: str, bindings: Sequence[Binding]) -> None: ...


class Registrations:
    """The registrar of one endpoint. `start()` loads stored bindings; `handle()` answers a
    REGISTER; `contacts(aor)` says where a user's phones are right now."""

    def __init__(
        self,
        directory: SubscriberDirectory,
        *,
        realm: str,
        secret: bytes,
        policy: RegistrarPolicy = DEFAULT_POLICY,
        algorithms: tuple[str, ...] = ("MD5",),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.realm = realm
        self.policy = policy
        # MD5 only by default: baresip 1.0 (libre 1.1, Debian 12) aborts on ANY non-MD5
        # challenge in a 401, even below an MD5 one, instead of skipping it as RFC 8760 §2.4
        # asks; most deployed phones know MD5 only. ("SHA-256", "MD5") is there for fleets
        # that support it (challenge order is preference order).
        self.digest = DigestServer(secret, realm, DigestConfig(algorithms=algorithms))
        # Nonces and expiries are wall-clock times: they must mean the same after a restart.
        self._clock = clock
        self._bindings: dict[str, tuple[Binding, ...]] = {}

    async def start(self) -> None:
        now = self._clock()
        for binding in await self.directory.load_bindings():
            if binding.expires_at > now:
                self._bindings[binding.aor] = (*self._bindings.get(binding.aor, ()), binding)
        log.info("registrar: %d stored bindings restored", self.count)

    @property
    def count(self) -> int:
        return sum(len(b) for b in self._bindings.values())

    def contacts(self, aor: str) -> tuple[Binding, ...]:
        now = self._clock()
        return tuple(b for b in self._bindings.get(aor, ()) if b.expires_at > now)

    def contacts_of_user(self, username: str) -> tuple[Binding, ...]:
        """Where a user's phones are, whatever host their AOR names (calls route by user
        name): newest registration first."""
        now = self._clock()
        found = [
            b
            for aor, bindings in self._bindings.items()
            if _aor_user(aor) == username
            for b in bindings
            if b.expires_at > now
        ]
        return tuple(sorted(found, key=lambda b: b.expires_at, reverse=True))

    async def authenticate(self, request: Request, *, to_tag: str) -> str | Response:
        """The user name a request's digest credentials prove, or what to answer instead: a
        fresh 401 challenge (none sent, wrong, stale, or an unknown user: one answer for
        all) or a 400 for a malformed header."""
        now = self._clock()
        credentials = self._credentials(request)
        if isinstance(credentials, Response):
            return credentials
        if credentials is None:
            return self._challenge(request, now, stale=False, to_tag=to_tag)
        user = await self.directory.credentials(credentials.username)
        ha1 = user.ha1(credentials.algorithm) if user is not None else None
        # The digest uri is not bound to the Request-URI here: pyVoIP sends a uri that matches
        # none, and a replayed REGISTER only re-registers the same contact (nc/once rules of
        # DigestServer stop a replay from being useful anyway).
        result = self.digest.verify(
            credentials, method=request.method, request_uri=None, now=now, ha1=ha1
        )
        if result is not VerifyResult.OK:
            return self._challenge(request, now, stale=result.stale, to_tag=to_tag)
        if request.method != "REGISTER" and not _same_target(credentials.uri, request.uri):
            # The answer was computed for another number: a sniffed Authorization moved onto
            # a call somewhere else (toll fraud). Phones put the Request-URI there.
            return self._challenge(request, now, stale=False, to_tag=to_tag)
        return credentials.username

    async def is_user(self, username: str) -> bool:
        return await self.directory.credentials(username) is not None

    async def handle(self, request: Request, source: Source, *, to_tag: str) -> Response:
        now = self._clock()
        username = await self.authenticate(request, to_tag=to_tag)
        if isinstance(username, Response):
            return username
        aor = address_of_record(request.to_addr.uri)
        current = self._bindings.get(aor, ()) if aor is not None else ()
        outcome = process_register(
            request,
            username=username,
            bindings=current,
            now=now,
            source=source,
            policy=self.policy,
            to_tag=to_tag,
        )
        # Even a rejected REGISTER drops expired bindings: store the outcome whole.
        if aor is not None and outcome.bindings != current:
            await self.directory.save_bindings(aor, outcome.bindings)
            if outcome.bindings:
                self._bindings[aor] = outcome.bindings
            else:
                self._bindings.pop(aor, None)
        return outcome.response

    def _credentials(self, request: Request) -> Credentials | Response | None:
        """Our realm's Digest credentials; None asks for a challenge (none sent, an unknown
        scheme as in RFC 4475 regaut01, or another realm); a malformed header is a 400."""
        for value in request.headers.fields("authorization"):
            try:
                parsed = parse_credentials(value)
            except DigestParseError as exc:
                return make_response(request, 400, f"Bad Authorization: {exc.reason}")
            if isinstance(parsed, OtherScheme):
                continue
            if parsed.realm == self.realm:
                return parsed
        return None

    def _challenge(self, request: Request, now: float, *, stale: bool, to_tag: str) -> Response:
        response = make_response(request, 401, to_tag=to_tag)
        for challenge in self.digest.challenge(now, stale=stale):
            response.headers.add("WWW-Authenticate", challenge.to_header_value())
        return response


def _aor_user(aor: str) -> str:
    """`sip:alice@host` → `alice` (the canonical AOR keeps safe characters unescaped)."""
    user, at, _host = aor.removeprefix("sip:").rpartition("@")
    return user if at else ""


def _same_target(digest_uri: str, request_uri: Uri) -> bool:
    """Whether the digest `uri` names the same user as the Request-URI (§22.4 wants them
    equal; comparing the user part survives harmless re-spellings of host and parameters)."""
    try:
        parsed = parse_uri(digest_uri)
    except SipParseError:
        return False
    if not isinstance(parsed, SipUri) or not isinstance(request_uri, SipUri):
        return False
    return (parsed.user_unescaped or "") == (request_uri.user_unescaped or "")
