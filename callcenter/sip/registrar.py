"""The registrar of RFC 3261 §10.3: a REGISTER and the stored bindings in, the response and the
new bindings out.

Owns: the canonical address-of-record, the Contact / expires / Call-ID / CSeq rules of §10.3
steps 5–8 (answering the client rules of §10.2), the per-AOR bound, and the 200 listing every
binding. Must not know: digest authentication (the caller authenticates first and passes the
username in), the Request-URI domain check of step 1 and the Require check of step 2 (the
caller, with `uas.check_request`), storage (bindings are passed in and the full new set is
returned), clocks and timers (`now` is passed in; `next_expiry` says when to look again).

Every request is all-or-nothing (§10.3 step 7: updates are committed only if all succeed): an
error response comes back with the stored bindings unchanged, apart from those already expired.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import NamedTuple

from .address import ContactStar
from .errors import LocalProtocolError, SipParseError
from .message import Request, Response, make_response
from .params import unquote
from .uri import SipUri, Uri, parse_uri, unescape

# §20.19 / §10.2.1.1: an expiration beyond 2**32-1 seconds is taken as 2**32-1.
_MAX_DELTA = 2**32 - 1

# qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")

# user = 1*( unreserved / escaped / user-unreserved )
# unreserved = alphanum / mark; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
# The canonical AOR writes these octets as themselves and every other octet as %HH, so the
# spellings `%61lice` and `alice` give one key while `%00` stays an escape (escnull).
_USER_SAFE = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/"
)


class Source(NamedTuple):
    """Where a REGISTER came from: the engine sends INVITEs for the binding there, not to the
    Contact, which behind NAT names an address nobody can reach (RFC 5626's idea, without its
    flow tokens)."""

    host: str
    port: int
    transport: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One contact of an address-of-record.

    `contact` is the Contact URI as registered: URI parameters and escaped headers kept
    (cparam02, regescrt), header parameters such as `expires` and `q` not part of it (cparam01).
    `instance` is the unquoted `+sip.instance` value, `reg_id` the `reg-id` value.
    """

    aor: str
    contact: str
    expires_at: float
    call_id: str
    cseq: int
    source: Source
    q: float | None = None
    instance: str | None = None
    reg_id: str | None = None

    @property
    def contact_uri(self) -> SipUri:
        uri = parse_uri(self.contact)
        if not isinstance(uri, SipUri):  # only SIP/SIPS contacts are ever stored
            raise LocalProtocolError(f"binding with a non-SIP contact {self.contact!r}")
        return uri

    def remaining(self, now: float) -> int:
        """Whole seconds left, at least 1: `expires=0` in a 200 would tell the phone that the
        binding is gone while it is still there."""
        return max(1, round(self.expires_at - now))


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrarPolicy:
    default_expires: int = 3600
    min_expires: int = 60
    max_expires: int = 3600
    max_bindings_per_aor: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if self.max_bindings_per_aor < 1:
            raise ValueError("max_bindings_per_aor must be at least 1")


DEFAULT_POLICY = RegistrarPolicy()


class RemovalReason(enum.Enum):
    UNREGISTERED = "unregistered"  # expires 0, or Contact: *
    EXPIRED = "expired"  # not refreshed in time
    REPLACED = "replaced"  # another contact of the same +sip.instance took its place


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingAdded:
    binding: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingRefreshed:
    """A stored binding was updated: new expiry, Call-ID, CSeq, source, and possibly a new
    contact spelling (an equivalent URI) or a new URI for the same +sip.instance."""

    binding: Binding
    previous: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingRemoved:
    binding: Binding
    reason: RemovalReason


RegistrarEvent = BindingAdded | BindingRefreshed | BindingRemoved


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterOutcome:
    """The response to send, the complete binding set to store for the AOR, and what changed
    from the set passed in to the set returned."""

    response: Response
    bindings: tuple[Binding, ...]
    events: tuple[RegistrarEvent, ...]


def address_of_record(uri: Uri) -> str | None:
    """The canonical AOR key `sip:user@host` of a URI, or None when it is not SIP or SIPS.

    §10.3 step 5 drops URI parameters and headers. We also drop the port (peers put the
    registrar's port in To: baresip's `sip:alice@127.0.0.1:40597`) and write `sips` as `sip`:
    the AOR names a person; whether reaching a contact needs TLS is the contact's own scheme.
    The engine uses the same function on an INVITE's Request-URI to find the bindings.
    """
    return _canonical_aor(uri) if isinstance(uri, SipUri) else None


def _canonical_aor(uri: SipUri) -> str:
    host = uri.host.lower()
    if uri.user is None:
        return f"sip:{host}"
    raw = unescape(uri.user).encode("utf-8", "surrogateescape")
    user = "".join(chr(b) if b in _USER_SAFE else f"%{b:02X}" for b in raw)
    return f"sip:{user}@{host}"


def expired(bindings: Sequence[Binding], now: float) -> tuple[Binding, ...]:
    """The bindings whose time is up at `now`; the caller deletes them."""
    return tuple(b for b in bindings if b.expires_at <= now)


def next_expiry(bindings: Sequence[Binding]) -> float | None:
    """When the next binding expires (wall-clock seconds), or None if there is none."""
    return min((b.expires_at for b in bindings), default=None)


class _Refused(Exception):
    """Internal: abort the request with this response (never escapes this module)."""

    def __init__(
        self, status: int, reason: str | None = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(frozen=True, slots=True)
class _Wanted:
    """One Contact of the request, validated, with the expiration the registrar grants."""

    uri: SipUri
    expires: int
    q: float | None
    instance: str | None
    reg_id: str | None


@dataclass(slots=True)
class _Slot:
    """A binding of the set being built. `origin` is the stored binding it stands for (None
    for a new contact); `fresh` says this request wrote it, which exempts it from the CSeq
    check when the same contact appears twice in one REGISTER."""

    binding: Binding
    origin: Binding | None
    fresh: bool


def process_register(
    request: Request,
    *,
    username: str,
    bindings: Sequence[Binding],
    now: float,
    source: tuple[str, int, str],
    policy: RegistrarPolicy = DEFAULT_POLICY,
    to_tag: str | None = None,
) -> RegisterOutcome:
    """Apply an authenticated REGISTER to the stored bindings of its AOR (RFC 3261 §10.3).

    `bindings` are those stored for `address_of_record(request.to_addr.uri)`; `username` is
    who the digest check authenticated. Returns the response (a 200 lists every binding with
    its remaining `expires` and carries Date) and the new complete set, expired ones dropped.
    """
    if request.method != "REGISTER":
        raise LocalProtocolError(f"process_register given a {request.method}")
    live = tuple(b for b in bindings if b.expires_at > now)
    lapsed: list[RegistrarEvent] = [
        BindingRemoved(binding=b, reason=RemovalReason.EXPIRED) for b in expired(bindings, now)
    ]
    try:
        to_uri = request.to_addr.uri
        if not isinstance(to_uri, SipUri):
            # §10.3 step 5 (RFC 4475 unksm2).
            raise _Refused(400, "To must be a SIP or SIPS URI")
        aor = _canonical_aor(to_uri)
        if any(b.aor != aor for b in bindings):
            raise LocalProtocolError(f"bindings of another AOR passed in for {aor}")
        if to_uri.user_unescaped != username:
            # §10.3 step 4: one may register only one's own address-of-record. Exact match:
            # the user part of a SIP URI is case-sensitive (§19.1.4).
            raise _Refused(403)
        wanted = _read_contacts(request, policy)
        call_id = request.call_id
        cseq = request.cseq.seq
        if wanted is None:
            new, gone = _remove_all(live, call_id, cseq)
            changes: list[RegistrarEvent] = [*lapsed, *gone]
        else:
            slots, removed = _apply(live, wanted, aor, call_id, cseq, now, Source(*source))
            # Only a request that grows the set is refused, so bindings stored under a
            # larger bound (the policy was lowered) can still be refreshed or removed.
            if len(slots) > policy.max_bindings_per_aor and len(slots) > len(live):
                raise _too_many(live, now)
            new = tuple(s.binding for s in slots)
            changes = [*lapsed, *removed]
            for slot in slots:
                if slot.fresh and slot.origin is None:
                    changes.append(BindingAdded(binding=slot.binding))
                elif slot.fresh and slot.origin is not None:
                    changes.append(BindingRefreshed(binding=slot.binding, previous=slot.origin))
    except _Refused as refused:
        response = make_response(request, refused.status, refused.reason, to_tag=to_tag)
        for name, value in refused.headers:
            response.headers.add(name, value)
        return RegisterOutcome(response=response, bindings=live, events=tuple(lapsed))
    response = make_response(request, 200, to_tag=to_tag)
    for binding in new:
        response.headers.add("Contact", _format_contact(binding, now))
    response.headers.add("Date", formatdate(now, usegmt=True))
    return RegisterOutcome(response=response, bindings=new, events=tuple(changes))


def _too_many(live: Sequence[Binding], now: float) -> _Refused:
    """503, as Kamailio and OpenSIPS answer, rather than 403: the condition heals by itself
    (stale bindings expire, at the latest after max_expires), so the phone should retry, and
    Retry-After says when the first slot frees. A refresh of a full set is never refused."""
    soonest = next_expiry(live)
    wait = 1 if soonest is None else max(1, int(soonest - now + 0.999))
    return _Refused(503, "Too Many Registered Contacts", (("Retry-After", str(wait)),))


def _read_contacts(request: Request, policy: RegistrarPolicy) -> list[_Wanted] | None:
    """The Contacts of the request, validated; None for `Contact: *`; [] for a query.

    Everything that can refuse the whole request (400, 423) is checked here, before any
    binding is touched.
    """
    try:
        contacts = request.contacts
    except SipParseError as error:
        raise _Refused(400, f"Bad Contact: {error}") from None
    header_expires = _delta_seconds(request.headers.get("expires"))
    if any(isinstance(c, ContactStar) for c in contacts):
        # §10.2.2 / §10.3 step 6: `*` only alone and only with Expires: 0.
        if len(contacts) != 1 or header_expires != 0:
            raise _Refused(400, "Contact * needs Expires: 0 and no other Contact")
        return None
    out: list[_Wanted] = []
    for contact in contacts:
        assert not isinstance(contact, ContactStar)
        if not isinstance(contact.uri, SipUri):
            # The engine can only call SIP contacts, and §19.1.4 equality is for SIP URIs.
            raise _Refused(400, "Contact must be a SIP or SIPS URI")
        # A non-numeric `expires` param counts as absent: the Expires header, then the
        # default, apply (§20.19 treats a malformed Expires as the default too).
        expires = _delta_seconds(contact.param("expires"))
        if expires is None:
            expires = header_expires
        if expires is None:
            expires = policy.default_expires
        if 0 < expires < policy.min_expires:
            # §10.3 step 7: too brief for us; the phone retries with Min-Expires.
            raise _Refused(423, headers=(("Min-Expires", str(policy.min_expires)),))
        q_text = contact.param("q")
        if q_text is not None and not _QVALUE.match(q_text):
            raise _Refused(400, "Bad q value")
        instance = contact.param("+sip.instance")
        out.append(
            _Wanted(
                uri=contact.uri,
                expires=min(expires, policy.max_expires),
                q=None if q_text is None else float(q_text),
                instance=None if instance is None else unquote(instance),
                reg_id=contact.param("reg-id"),
            )
        )
    return out


def _delta_seconds(text: str | None) -> int | None:
    """delta-seconds = 1*DIGIT, or None when absent or not a number (an RFC 2543 date)."""
    if text is None:
        return None
    text = text.strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    text = text.lstrip("0") or "0"
    # Bound before int(): any longer digit string is past 2**32-1 anyway.
    if len(text) > 10:
        return _MAX_DELTA
    return min(int(text), _MAX_DELTA)


def _out_of_order(binding: Binding, call_id: str, cseq: int) -> bool:
    """§10.3 step 7: same Call-ID and a CSeq not higher than stored is a stale or replayed
    request; a different Call-ID is a phone that restarted and may start its CSeq anew."""
    return binding.call_id == call_id and cseq <= binding.cseq


def _remove_all(
    live: Sequence[Binding], call_id: str, cseq: int
) -> tuple[tuple[Binding, ...], list[RegistrarEvent]]:
    """`Contact: *` (§10.3 step 6), with the same out-of-order check as a single contact."""
    if any(_out_of_order(b, call_id, cseq) for b in live):
        raise _Refused(500, "Out-of-order REGISTER")
    return (), [BindingRemoved(binding=b, reason=RemovalReason.UNREGISTERED) for b in live]


def _matches(binding: Binding, wanted: _Wanted) -> bool:
    """The same binding: URI equality of §19.1.4, or the same device by +sip.instance and
    reg-id. The instance match goes beyond RFC 5626 (which wants a reg-id) because baresip
    puts a per-run pointer in its Contact user and would otherwise leave a stale binding
    after every restart, ringing a dead address until it expires."""
    if wanted.uri.equivalent(binding.contact_uri):
        return True
    return (
        wanted.instance is not None
        and wanted.instance == binding.instance
        and wanted.reg_id == binding.reg_id
    )


def _apply(
    live: Sequence[Binding],
    wanted: Sequence[_Wanted],
    aor: str,
    call_id: str,
    cseq: int,
    now: float,
    source: Source,
) -> tuple[list[_Slot], list[RegistrarEvent]]:
    """§10.3 step 7 for each Contact in order; raises _Refused(500) on an out-of-order one."""
    slots = [_Slot(b, b, fresh=False) for b in live]
    removed: list[RegistrarEvent] = []
    for want in wanted:
        hits = [s for s in slots if _matches(s.binding, want)]
        if any(not s.fresh and _out_of_order(s.binding, call_id, cseq) for s in hits):
            raise _Refused(500, "Out-of-order REGISTER")
        first = hits[0] if hits else None
        reason = RemovalReason.UNREGISTERED if want.expires == 0 else RemovalReason.REPLACED
        for slot in hits:
            if slot is not first or want.expires == 0:
                slots.remove(slot)
                if slot.origin is not None:
                    removed.append(BindingRemoved(binding=slot.origin, reason=reason))
        if want.expires == 0:
            continue
        binding = Binding(
            aor=aor,
            contact=str(want.uri),
            expires_at=now + want.expires,
            call_id=call_id,
            cseq=cseq,
            source=source,
            q=want.q,
            instance=want.instance,
            reg_id=want.reg_id,
        )
        if first is None:
            slots.append(_Slot(binding, None, fresh=True))
        else:
            # Updated in place so the 200 lists bindings in a stable order.
            first.binding = binding
            first.fresh = True
    return slots, removed


def _format_contact(binding: Binding, now: float) -> str:
    text = f"<{binding.contact}>;expires={binding.remaining(now)}"
    if binding.q is not None:
        # Three decimals at most (qvalue), trailing zeros dropped: 0.5, 1, 0.125.
        text += ";q=" + (f"{binding.q:.3f}".rstrip("0").rstrip(".") or "0")
    return text
