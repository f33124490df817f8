"""Digest header values (RFC 7616 §3.3–3.4, RFC 3261 §25.1): grammar, data types, serialisation.

Must not know: hashing, nonces, accounts (server.py and client.py own those).

    challenge     = "Digest" LWS digest-cln *(COMMA digest-cln) / other-challenge
    credentials   = "Digest" LWS dig-resp *(COMMA dig-resp) / other-response
    auth-param    = auth-param-name EQUAL ( token / quoted-string )
    EQUAL = SWS "=" SWS   COMMA = SWS "," SWS   SWS = [LWS]   LWS = [*WSP CRLF] 1*WSP
    quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
    qdtext        = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
    quoted-pair   = "\\" (%x00-09 / %x0B-0C / %x0E-7F)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import LocalProtocolError, SipError, SipParseError
from ..limits import DEFAULT_LIMITS, Limits

# A nonce is 43 characters and a SIP URI rarely passes a few hundred; this caps one value
# before the scanner copies it, on top of the whole-field bound from Limits.
MAX_PARAM_VALUE = 4096

# Canonical spelling → hashlib name. Names compare case-insensitively on input.
_HASH_NAMES = {"MD5": "md5", "MD5-sess": "md5", "SHA-256": "sha256", "SHA-256-sess": "sha256"}
_CANONICAL = {name.lower(): name for name in _HASH_NAMES}
_HEX_LENGTH = {"md5": 32, "sha256": 64}
# RFC 8760 §2.4 has a UAC take the topmost challenge it supports "unless a local policy dictates
# otherwise"; ours is the strongest hash, so a middlebox reordering fields cannot downgrade us.
# Plain before -sess: the same hash, and -sess adds nothing with a fresh cnonce per request.
_PREFERENCE = {"SHA-256": 0, "SHA-256-sess": 1, "MD5": 2, "MD5-sess": 3}

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_HEX = frozenset("0123456789abcdefABCDEF")
_LHEX = frozenset("0123456789abcdef")
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

Params = tuple[tuple[str, str], ...]


class DigestParseError(SipParseError):
    """A malformed Digest header value: answer 400 Bad Request (SipParseError's default)."""


class DigestRefused(SipError):
    """The client will not answer this challenge (no account for its realm or host, or it asks
    for an algorithm or qop we cannot compute)."""


def _skip_lws(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        c = text[i]
        if c == " " or c == "\t":
            i += 1
        elif c == "\r" and i + 2 < n and text[i + 1] == "\n" and text[i + 2] in " \t":
            i += 3  # a fold: CRLF is only whitespace when WSP follows
        else:
            break
    return i


def _read_token(text: str, i: int) -> tuple[str, int]:
    start = i
    n = len(text)
    while i < n and text[i] in _TOKEN_CHARS:
        i += 1
    return text[start:i], i


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """Unescape the quoted-string whose opening quote is at `i`; return it and the index after."""
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        if len(out) > MAX_PARAM_VALUE:
            raise DigestParseError("authentication parameter too long")
        c = text[i]
        o = ord(c)
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n" or ord(text[i + 1]) > 0x7F:
                raise DigestParseError("bad quoted-pair")
            out.append(text[i + 1])
            i += 2
        elif c == "\r":
            j = _skip_lws(text, i)
            if j == i:
                raise DigestParseError("CR or LF in a quoted string")
            out.append(" ")  # RFC 3261 §7.3.1: a fold is equivalent to one SP
            i = j
        elif (o < 0x20 and c != "\t") or o == 0x7F:
            raise DigestParseError("control character in a quoted string")
        elif 0xD800 <= o <= 0xDFFF and not 0xDC80 <= o <= 0xDCFF:
            # Only surrogateescape's stand-ins for raw bytes can be hashed back to wire bytes.
            raise DigestParseError("invalid character in a quoted string")
        else:
            out.append(c)
            i += 1
    raise DigestParseError("unterminated quoted string")


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherScheme:
    """A challenge or credentials in a scheme other than Digest (RFC 4475 regaut01).

    Not an error: a UAS answers it with a fresh Digest challenge (401), not 400."""

    scheme: str


def _parse_params(value: str, limits: Limits) -> dict[str, str] | OtherScheme:
    # Bound first, then one left-to-right pass: cost is linear in a length we already capped.
    if len(value) > limits.max_header_line:
        raise DigestParseError("authentication header value too long")
    n = len(value)
    i = _skip_lws(value, 0)
    scheme, i = _read_token(value, i)
    if not scheme:
        raise DigestParseError("missing authentication scheme")
    j = _skip_lws(value, i)
    if j == i and i < n:
        raise DigestParseError("no whitespace after the authentication scheme")
    if scheme.lower() != "digest":
        return OtherScheme(scheme=scheme)  # its parameters are that scheme's business
    if j == n:
        raise DigestParseError("Digest without parameters")
    params: dict[str, str] = {}
    i = j
    while True:
        name, i = _read_token(value, i)
        if not name:
            raise DigestParseError("expected an authentication parameter name")
        i = _skip_lws(value, i)
        if i >= n or value[i] != "=":
            raise DigestParseError(f"expected '=' after {name[:32]!r}")
        i = _skip_lws(value, i + 1)
        if i < n and value[i] == '"':
            val, i = _read_quoted(value, i)
        else:
            val, i = _read_token(value, i)
            if not val:
                raise DigestParseError(f"missing value for {name[:32]!r}")
            if len(val) > MAX_PARAM_VALUE:
                raise DigestParseError("authentication parameter too long")
        key = name.lower()
        if key in params:
            raise DigestParseError(f"duplicate parameter {name[:32]!r}")
        if len(params) >= limits.max_params:
            raise DigestParseError("too many authentication parameters")
        params[key] = val
        i = _skip_lws(value, i)
        if i >= n:
            return params
        if value[i] != ",":
            raise DigestParseError(f"unexpected {value[i]!r} after {name[:32]!r}")
        i = _skip_lws(value, i + 1)


def _quote(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise LocalProtocolError("CR or LF in an authentication parameter")  # header injection
    out = ["\\" + c if c in '"\\' or (c < " " and c != "\t") or c == "\x7f" else c for c in value]
    return '"' + "".join(out) + '"'


def _token_or_quote(value: str) -> str:
    return value if _is_token(value) else _quote(value)


def _is_token(value: str) -> bool:
    return bool(value) and all(c in _TOKEN_CHARS for c in value)


def _required(params: dict[str, str], name: str) -> str:
    value = params.pop(name, None)
    if value is None:
        raise DigestParseError(f"Digest {name} missing")
    return value


def _algorithm(value: str) -> str:
    if not value:
        raise DigestParseError("empty algorithm")
    return _CANONICAL.get(value.lower(), value)


def _flag(value: str) -> bool:
    return value.lower() == "true"  # RFC 7616 §3.3: anything but "true" means false


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """One Digest challenge; RFC 8760 puts each algorithm in its own header field.

    `algorithm` is canonical for the known names ("MD5" when absent), as received otherwise.
    `params` keeps unknown auth-params (lower-cased names) in order."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: tuple[str, ...] = ()
    userhash: bool = False
    params: Params = ()

    def to_header_value(self) -> str:
        return _format(
            ("realm", _quote(self.realm)),
            ("domain", _quote(" ".join(self.domain)) if self.domain else None),
            ("nonce", _quote(self.nonce)),
            ("opaque", None if self.opaque is None else _quote(self.opaque)),
            ("stale", "true" if self.stale else None),
            ("algorithm", _token_or_quote(self.algorithm)),
            ("qop", _quote(",".join(self.qop)) if self.qop else None),
            ("userhash", "true" if self.userhash else None),
            *((k, _token_or_quote(v)) for k, v in self.params),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """The Digest credentials of one request. `nc` is the integer of the 8LHEX nonce-count."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    nc: int | None = None
    qop: str | None = None
    opaque: str | None = None
    userhash: bool = False
    params: Params = ()

    def to_header_value(self) -> str:
        return _format(
            ("username", _quote(self.username)),
            ("realm", _quote(self.realm)),
            ("nonce", _quote(self.nonce)),
            ("uri", _quote(self.uri)),
            ("response", _quote(self.response)),
            ("algorithm", _token_or_quote(self.algorithm)),
            ("cnonce", None if self.cnonce is None else _quote(self.cnonce)),
            ("opaque", None if self.opaque is None else _quote(self.opaque)),
            ("qop", None if self.qop is None else _token_or_quote(self.qop)),  # 3261: unquoted
            ("nc", None if self.nc is None else _format_nc(self.nc)),
            ("userhash", "true" if self.userhash else None),
            *((k, _token_or_quote(v)) for k, v in self.params),
        )


def _format(*fields: tuple[str, str | None]) -> str:
    """Fields arrive formatted; None omits one."""
    return "Digest " + ", ".join(f"{k}={v}" for k, v in fields if v is not None)


def _format_nc(nc: int) -> str:
    if not 0 <= nc <= 0xFFFFFFFF:
        raise LocalProtocolError(f"nonce-count out of range: {nc}")
    return f"{nc:08x}"


def parse_challenge(value: str, *, limits: Limits = DEFAULT_LIMITS) -> Challenge | OtherScheme:
    """Parse one `WWW-Authenticate` / `Proxy-Authenticate` field value."""
    p = _parse_params(value, limits)
    if isinstance(p, OtherScheme):
        return p
    qop: tuple[str, ...] = ()
    if "qop" in p:
        qop = tuple(q.strip(" \t") for q in p.pop("qop").split(","))
        if not all(_is_token(q) for q in qop):
            raise DigestParseError("bad qop-options")
    domain = tuple(d for d in p.pop("domain", "").replace("\t", " ").split(" ") if d)
    return Challenge(
        realm=_required(p, "realm"),
        nonce=_required(p, "nonce"),
        algorithm=_algorithm(p.pop("algorithm", "MD5")),
        qop=qop,
        opaque=p.pop("opaque", None),
        stale=_flag(p.pop("stale", "false")),
        domain=domain,
        userhash=_flag(p.pop("userhash", "false")),
        params=tuple(p.items()),
    )


def parse_credentials(value: str, *, limits: Limits = DEFAULT_LIMITS) -> Credentials | OtherScheme:
    """Parse one `Authorization` / `Proxy-Authorization` field value."""
    p = _parse_params(value, limits)
    if isinstance(p, OtherScheme):
        return p
    nc_text = p.pop("nc", None)
    # The nc string is hashed as sent, so only the canonical 8LHEX form survives int().
    if nc_text is not None and (len(nc_text) != 8 or not all(c in _LHEX for c in nc_text)):
        raise DigestParseError("bad nonce-count")
    c = Credentials(
        username=_required(p, "username"),
        realm=_required(p, "realm"),
        nonce=_required(p, "nonce"),
        uri=_required(p, "uri"),
        response=_required(p, "response"),
        algorithm=_algorithm(p.pop("algorithm", "MD5")),
        cnonce=p.pop("cnonce", None),
        nc=None if nc_text is None else int(nc_text, 16),
        qop=p.pop("qop", None),
        opaque=p.pop("opaque", None),
        userhash=_flag(p.pop("userhash", "false")),
        params=tuple(p.items()),
    )
    size = _HEX_LENGTH.get(_HASH_NAMES.get(c.algorithm, ""))  # None: unknown algorithm
    response_ok = len(c.response) == size if size else 0 < len(c.response) <= 128
    if not response_ok or not all(ch in _HEX for ch in c.response):
        raise DigestParseError("bad Digest response")
    if c.qop is not None and (not _is_token(c.qop) or c.cnonce is None or c.nc is None):
        raise DigestParseError("qop needs a token value, cnonce and nc")
    return c


def find_credentials(
    values: Iterable[str], *, realm: str, limits: Limits = DEFAULT_LIMITS
) -> Credentials | None:
    """The Digest credentials for `realm` among a request's Authorization field values.

    A request may carry one per realm (RFC 3261 §22.3); other schemes and realms are skipped.
    A malformed value still raises: the request is broken whatever realm it was meant for."""
    for value in values:
        parsed = parse_credentials(value, limits=limits)
        if isinstance(parsed, Credentials) and parsed.realm == realm:
            return parsed
    return None
