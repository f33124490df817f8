"""Caller ID of an incoming call: who the network says is calling, as an E.164 number.

Pure and synchronous (no I/O, no clock): header text in, a `CallerId` out; it never raises on
what a peer sends. Lives with the customers service rather than in `callcenter.sip` because
turning a number into E.164 needs a business setting (the default region) and phonenumbers,
neither of which the SIP core should know.

Sources, in order (RFC 3325 §9.1, RFC 3323):

    PAssertedID       = "P-Asserted-Identity" HCOLON PAssertedID-value *(COMMA PAssertedID-value)
    PAssertedID-value = name-addr / addr-spec
    Privacy-hdr       = "Privacy" HCOLON priv-value *(";" priv-value)
    priv-value        = "header" / "session" / "user" / "none" / "critical" / "id" / token

1. P-Asserted-Identity, only when the request came from a trusted peer (a trunk): a phone can
   write anything there, so an untrusted PAI is ignored (RFC 3325 §5). It may hold one sip(s):
   and one tel: value; the tel: value is tried first.
2. From, which the caller's own equipment writes.

A number is withheld when Privacy asks for it (id, user or header) or the From/PAI is the
RFC 3323 anonymous form ("Anonymous" <sip:anonymous@anonymous.invalid>) or a carrier's
equivalent user part (restricted, private, withheld). Withheld calls carry no number: the
caller asked not to be identified, so the agent is not shown one and no customer is matched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import phonenumbers

from ...sip import Headers, SipError, SipUri, TelUri, parse_name_addr
from ...sip.uri import unescape

# Bounds before any parsing: header values longer than this are not caller IDs.
MAX_HEADER_CHARS: Final = 1024
MAX_PAI_VALUES: Final = 4
# A dialled string with national or international prefixes and visual separators stays well
# under this; E.164 itself is at most 15 digits.
MAX_NUMBER_CHARS: Final = 40

_WITHHELD_USERS: Final = frozenset(
    {"anonymous", "restricted", "private", "withheld", "unavailable", "unknown"}
)
_WITHHELD_PRIVACY: Final = frozenset({"id", "user", "header"})
_ANONYMOUS_HOST: Final = "anonymous.invalid"

# RFC 3966 telephone-subscriber, digits only (hex digits, '*' and '#' dial nothing we match):
#   global-number-digits = "+" *phonedigit DIGIT *phonedigit
#   local-number-digits  = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
#   visual-separator     = "-" / "." / "(" / ")"
# A sip: user part is accepted as a number only in this shape: "alice" or "1001x" is not one.
_NUMBER_RE: Final = re.compile(r"\+?[0-9().\-]*[0-9][0-9().\-]*")
_SEPARATORS: Final = str.maketrans("", "", "().-")

_POSSIBLE: Final = phonenumbers.ValidationResult.IS_POSSIBLE

Source = Literal["p-asserted-identity", "from"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerId:
    """Who is calling, as far as the headers tell.

    `e164` is None when the caller is withheld, when no header holds a number, or when the
    number cannot be read in `default_region`. `raw` is the header value the answer came from
    (for logs and the call record), or '' when there was none.
    """

    e164: str | None
    withheld: bool
    raw: str
    source: Source | None = None
    display_name: str | None = None


NO_CALLER_ID: Final = CallerId(e164=None, withheld=False, raw="")


def normalize_number(text: str, default_region: str) -> str | None:
    """`text` as E.164 ('+441632960001'), or None when it is not a plausible phone number.

    National forms ('01632 960001') are read in `default_region` (ISO 3166 alpha-2, e.g. 'GB');
    international forms ('+44 …', '0044 …' from the GB region) need no region. "Plausible" is
    phonenumbers' possible-number test (length for the country, area code included), not its
    valid-number test: the stored form of a number must not change when phonenumbers learns a
    new range, or old customer records would stop matching.
    """
    if len(text) > MAX_NUMBER_CHARS:
        return None
    try:
        number = phonenumbers.parse(text, default_region.upper() or None)
    except phonenumbers.NumberParseException:
        return None
    # IS_POSSIBLE_LOCAL_ONLY ('1001', '7946 0018') lacks the area code: an extension or a
    # local number we cannot place, never a customer's number.
    if phonenumbers.is_possible_number_with_reason(number) != _POSSIBLE:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Vanity letters and extensions are dropped by format_number; keep only clean results.
    return e164 if _is_e164(e164) else None


def _is_e164(text: str) -> bool:
    return 3 <= len(text) <= 16 and text[0] == "+" and text[1:].isdigit() and text[1] != "0"


def caller_id_from_headers(
    headers: Headers, *, default_region: str, trusted: bool = True
) -> CallerId:
    """The caller ID of a request's headers; see `extract_caller_id`."""
    try:
        pai = headers.values("p-asserted-identity", max_values=MAX_PAI_VALUES)
    except SipError:
        pai = []
    return extract_caller_id(
        p_asserted_identity=pai,
        from_=headers.get("from"),
        privacy=";".join(headers.fields("privacy")) or None,
        default_region=default_region,
        trusted=trusted,
    )


def extract_caller_id(
    *,
    p_asserted_identity: Sequence[str] = (),
    from_: str | None,
    privacy: str | None = None,
    default_region: str,
    trusted: bool = True,
) -> CallerId:
    """Caller ID from header values: trusted PAI first, then From; never raises.

    `p_asserted_identity` holds the PAI values already split at top-level commas
    (`Headers.values`); `privacy` the Privacy header value(s) joined by ';'.
    """
    withheld = _privacy_withholds(privacy)
    candidates: list[tuple[Source, str]] = []
    if trusted:
        pai = [v for v in p_asserted_identity[:MAX_PAI_VALUES] if len(v) <= MAX_HEADER_CHARS]
        # The tel: value names the number directly; try it before the sip(s): one.
        pai.sort(key=lambda v: 0 if "tel:" in v.lower() else 1)
        candidates.extend(("p-asserted-identity", v) for v in pai)
    if from_ is not None and len(from_) <= MAX_HEADER_CHARS:
        candidates.append(("from", from_))

    found = [_read(source, raw, default_region) for source, raw in candidates]
    for caller in found:
        if caller.withheld:
            # An anonymous PAI or From is a request for privacy (RFC 3323 §4.1.1.3), even when
            # another header still carries the number: it wins.
            return CallerId(e164=None, withheld=True, raw=caller.raw, source=caller.source)
    numbered = next((caller for caller in found if caller.e164 is not None), None)
    best = numbered or (found[0] if found else NO_CALLER_ID)
    if withheld:
        return CallerId(e164=None, withheld=True, raw=best.raw, source=best.source)
    return best


def _privacy_withholds(privacy: str | None) -> bool:
    if not privacy or len(privacy) > MAX_HEADER_CHARS:
        return False
    values = {v.strip().lower() for v in re.split(r"[;,]", privacy)}
    return bool(values & _WITHHELD_PRIVACY)


def _read(source: Source, raw: str, default_region: str) -> CallerId:
    try:
        addr = parse_name_addr(raw, max_params=16)
    except (SipError, ValueError):
        return CallerId(e164=None, withheld=False, raw=raw, source=source)
    display = addr.display_text
    uri = addr.uri
    number: str | None = None
    withheld = False
    if isinstance(uri, TelUri):
        number = _tel_number(uri, default_region)
    elif isinstance(uri, SipUri):
        user = _user_part(uri)
        host = uri.host.lower()
        if host == _ANONYMOUS_HOST or (user is not None and user.lower() in _WITHHELD_USERS):
            withheld = True
        elif user is not None:
            number = _sip_number(user, uri, default_region)
    if not withheld and display is not None and display.strip().lower() in _WITHHELD_USERS:
        # "Anonymous" <sip:+441632960001@trunk>: some carriers hide the number only here.
        withheld = True
    if withheld:
        return CallerId(e164=None, withheld=True, raw=raw, source=source, display_name=display)
    return CallerId(e164=number, withheld=False, raw=raw, source=source, display_name=display)


def _user_part(uri: SipUri) -> str | None:
    if uri.user is None:
        return None
    try:
        user = unescape(uri.user)
    except (SipError, ValueError):
        return None
    return user


def _tel_number(uri: TelUri, default_region: str) -> str | None:
    try:
        number = unescape(uri.number)
    except (SipError, ValueError):
        return None
    return _number(number, uri.param("phone-context"), default_region)


def _sip_number(user: str, uri: SipUri, default_region: str) -> str | None:
    # telephone-subscriber parameters (';npdi', ';rn=…', ';phone-context=…') follow the number.
    number, _, params = user.partition(";")
    context = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "phone-context":
            context = value.strip()
    if uri.param("user") != "phone" and not _NUMBER_RE.fullmatch(number):
        return None
    return _number(number, context, default_region)


def _number(text: str, context: str | None, default_region: str) -> str | None:
    if not _NUMBER_RE.fullmatch(text):
        return None
    digits = text.translate(_SEPARATORS)
    if not digits.startswith("+") and context is not None and context.startswith("+"):
        # RFC 3966 §5.1.5: a local number whose context is a global number prefix (country
        # and perhaps area code) dials as prefix + local digits.
        prefix = context.translate(_SEPARATORS)
        if _NUMBER_RE.fullmatch(prefix):
            joined = normalize_number(prefix + digits, default_region)
            if joined is not None:
                return joined
    return normalize_number(digits, default_region)
