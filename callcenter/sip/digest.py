"""Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

Owns: parsing and serialising Digest challenges (`WWW-Authenticate`, `Proxy-Authenticate`) and
credentials (`Authorization`, `Proxy-Authorization`), the response computation, a server that
issues stateless self-validating nonces and checks credentials, and a client that answers only
challenges from realms (and hosts) it holds an account for.

Must not know: where users and passwords live (the caller looks the user up and passes the
password or the stored HA1), transports, the clock (`now` is passed in: wall-clock seconds, so
nonces survive a restart and are shared by nodes with the same secret), nor which header name to
use (401 → WWW-Authenticate, 407 → Proxy-Authenticate is the caller's choice).

    challenge     = "Digest" LWS digest-cln *(COMMA digest-cln) / other-challenge
    credentials   = "Digest" LWS dig-resp *(COMMA dig-resp) / other-response
    auth-param    = auth-param-name EQUAL ( token / quoted-string )
    EQUAL = SWS "=" SWS   COMMA = SWS "," SWS   SWS = [LWS]   LWS = [*WSP CRLF] 1*WSP
    quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
    qdtext        = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
    quoted-pair   = "\\" (%x00-09 / %x0B-0C / %x0E-7F)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from .errors import LocalProtocolError, SipError, SipParseError
from .limits import DEFAULT_LIMITS, Limits

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


def _h(algorithm: str, data: str) -> str:
    hash_name = _HASH_NAMES.get(algorithm)
    if hash_name is None:
        raise LocalProtocolError(f"unsupported Digest algorithm {algorithm!r}")
    # Surrogates stand for the raw bytes that arrived (surrogateescape); hash those bytes.
    return hashlib.new(hash_name, data.encode("utf-8", "surrogateescape")).hexdigest()


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username ":" realm ":" password): store this instead of the password.

    One value per hash serves both "X" and "X-sess" (the session key is derived per request)."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def compute_response(credentials: Credentials, *, ha1: str, method: str) -> str:
    """The response `credentials` must carry (RFC 7616 §3.4.1; without qop, RFC 2069's)."""
    c = credentials
    alg = c.algorithm
    if alg.endswith("-sess"):
        if c.cnonce is None:
            raise LocalProtocolError("-sess algorithms need a cnonce")
        ha1 = _h(alg, f"{ha1}:{c.nonce}:{c.cnonce}")
    if c.qop not in (None, "auth"):  # auth-int would hash the body: no SIP peer of ours uses it
        raise LocalProtocolError(f"unsupported qop {c.qop!r}")
    ha2 = _h(alg, f"{method}:{c.uri}")
    if c.qop is None:
        return _h(alg, f"{ha1}:{c.nonce}:{ha2}")
    if c.nc is None or c.cnonce is None:
        raise LocalProtocolError("qop needs nc and cnonce")
    return _h(alg, f"{ha1}:{c.nonce}:{_format_nc(c.nc)}:{c.cnonce}:{c.qop}:{ha2}")


class VerifyResult(Enum):
    """Every result but OK means: answer 401/407 with fresh challenges, `stale=True` if `.stale`."""

    OK = "ok"
    STALE = "stale"  # right password, nonce too old: the client retries without asking its user
    REPLAY = "replay"  # right password, nc not above the last one accepted for this nonce
    BAD_RESPONSE = "bad-response"  # wrong password, unknown user, unsupported algorithm or qop
    BAD_NONCE = "bad-nonce"  # not a nonce we issued for this realm
    UNKNOWN_REALM = "unknown-realm"
    URI_MISMATCH = "uri-mismatch"

    @property
    def stale(self) -> bool:
        return self is VerifyResult.STALE or self is VerifyResult.REPLAY


_NONCE_BODY = 16  # 8 bytes of milliseconds, 8 random bytes
_NONCE_MAC = 16  # truncated HMAC-SHA-256
_NONCE_TEXT = 43  # unpadded base64url of 32 bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestConfig:
    """What a DigestServer offers and accepts."""

    nonce_lifetime: float = 300.0  # seconds; an older nonce with a right answer is stale
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")  # offered in this order (RFC 8760)
    qop: tuple[str, ...] = ("auth",)
    allow_rfc2069: bool = True  # accept answers without qop (old phones, pyVoIP)
    replay_cache_size: int = 4096  # (username, nonce) entries; 0 turns nc checks off

    def __post_init__(self) -> None:
        if self.nonce_lifetime <= 0 or self.replay_cache_size < 0:
            raise ValueError("nonce_lifetime and replay_cache_size must be positive")
        if not self.algorithms or any(a not in _HASH_NAMES for a in self.algorithms):
            raise ValueError(f"algorithms must be among {tuple(_HASH_NAMES)}")
        if self.qop not in ((), ("auth",)):
            raise ValueError('qop must be ("auth",) or ()')
        if not (self.qop or self.allow_rfc2069):
            raise ValueError("no qop and no RFC 2069 answers: nothing could authenticate")


DEFAULT_CONFIG = DigestConfig()


class DigestServer:
    """Issues challenges and verifies credentials for one realm.

    Nonces need no storage: base64url(ms || random || HMAC(secret, ms || random || realm)).
    The only state is a bounded LRU of the highest nc accepted per (username, nonce); an
    evicted entry reopens replay for that nonce until it expires, never more."""

    __slots__ = ("_nc_seen", "_realm", "_secret", "config")

    def __init__(self, secret: bytes, realm: str, config: DigestConfig = DEFAULT_CONFIG) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        if not realm or "\r" in realm or "\n" in realm:
            raise ValueError("bad realm")
        self._secret = secret
        self._realm = realm
        self.config = config
        self._nc_seen: OrderedDict[tuple[str, str], int] = OrderedDict()

    @property
    def realm(self) -> str:
        return self._realm

    def _mac(self, body: bytes) -> bytes:
        full = hmac.new(self._secret, body + self._realm.encode("utf-8"), hashlib.sha256)
        return full.digest()[:_NONCE_MAC]

    def make_nonce(self, now: float) -> str:
        stamp = min(max(0, int(now * 1000)), 2**64 - 1).to_bytes(8, "big")
        body = stamp + secrets.token_bytes(_NONCE_BODY - 8)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def nonce_age(self, nonce: str, now: float) -> float | None:
        """Seconds since we issued `nonce`, or None if we did not issue it for this realm."""
        if len(nonce) != _NONCE_TEXT or not all(c in _B64URL for c in nonce):
            return None  # checked first so the decoder never sees junk
        raw = base64.urlsafe_b64decode(nonce + "=")
        body, mac = raw[:_NONCE_BODY], raw[_NONCE_BODY:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        return now - int.from_bytes(body[:8], "big") / 1000

    def challenge(
        self, now: float, *, stale: bool = False, algorithms: Sequence[str] | None = None
    ) -> tuple[Challenge, ...]:
        """One challenge per algorithm in preference order (RFC 8760 §2.3), sharing one nonce."""
        offered = self.config.algorithms
        chosen = offered if algorithms is None else tuple(algorithms)
        if not chosen or any(a not in offered for a in chosen):
            raise ValueError(f"algorithms must be among {offered}")
        nonce = self.make_nonce(now)
        qop = self.config.qop
        return tuple(
            Challenge(realm=self._realm, nonce=nonce, algorithm=a, qop=qop, stale=stale)
            for a in chosen
        )

    def verify(
        self,
        credentials: Credentials,
        *,
        method: str,
        now: float,
        password: str | None = None,
        ha1: str | None = None,
        request_uri: str | None = None,
    ) -> VerifyResult:
        """Check `credentials` of a `method` request.

        Pass the user's `password`, or `ha1` = compute_ha1(..., credentials.algorithm) when
        storing hashes; neither means an unknown user, which costs the same work and gets the
        same answer as a wrong password. `request_uri`, if given, must equal the digest uri
        exactly (RFC 3261 §22.4 lets proxies rewrite, so only a UAS should pass it)."""
        if password is not None and ha1 is not None:
            raise ValueError("pass password or ha1, not both")
        c = credentials
        config = self.config
        # None of these checks depend on the user, so their timing tells nothing about users.
        if c.realm != self._realm:
            return VerifyResult.UNKNOWN_REALM
        age = self.nonce_age(c.nonce, now)
        if age is None:
            return VerifyResult.BAD_NONCE
        if request_uri is not None and c.uri != request_uri:
            return VerifyResult.URI_MISMATCH
        if c.algorithm not in config.algorithms or c.userhash:
            return VerifyResult.BAD_RESPONSE
        if c.qop is None:
            if not config.allow_rfc2069 or c.algorithm.endswith("-sess"):
                return VerifyResult.BAD_RESPONSE
        elif c.qop not in config.qop:
            return VerifyResult.BAD_RESPONSE
        known = password is not None or ha1 is not None
        if ha1 is None:
            # An unknown user hashes a throwaway password: same work as a real one.
            ha1 = compute_ha1(c.username, c.realm, password or "", c.algorithm)
        expected = compute_response(c, ha1=ha1, method=method)
        got = c.response.lower().encode("utf-8", "surrogatepass")
        matches = hmac.compare_digest(expected.encode("ascii"), got)
        if not (matches and known):
            return VerifyResult.BAD_RESPONSE
        if abs(age) > config.nonce_lifetime:  # a clock stepped back: "future" nonces too
            return VerifyResult.STALE
        if c.nc is not None and config.replay_cache_size:
            # Recorded only after the digest matched, so forged nc values cannot lock a user out.
            key = (c.username, c.nonce)
            if c.nc <= self._nc_seen.get(key, 0):
                return VerifyResult.REPLAY
            self._nc_seen[key] = c.nc
            self._nc_seen.move_to_end(key)
            if len(self._nc_seen) > config.replay_cache_size:
                self._nc_seen.popitem(last=False)
        return VerifyResult.OK


def make_cnonce() -> str:
    """A fresh client nonce: 128 random bits as hex."""
    return secrets.token_hex(16)


def _choose_qop(challenge: Challenge) -> str | None:
    if "auth" in challenge.qop:
        return "auth"
    if challenge.qop:
        raise DigestRefused(f"no supported qop in {challenge.qop!r}")
    if challenge.algorithm.endswith("-sess"):
        raise DigestRefused("-sess without qop cannot carry a cnonce")
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestAccount:
    """Credentials for one realm; `hosts` (if not empty) limits them to requests sent there."""

    realm: str
    username: str
    password: str
    hosts: frozenset[str] = frozenset()


def answer_challenge(
    challenge: Challenge, account: DigestAccount, *, method: str, uri: str, cnonce: str, nc: int = 1
) -> Credentials:
    """Answer one challenge with `account` (DigestClient picks among several).

    Raises DigestRefused when the challenge is for another realm, so a peer cannot make us
    hash our password into an answer for a realm of its choosing."""
    if challenge.realm != account.realm:
        raise DigestRefused(f"challenge for realm {challenge.realm[:64]!r}, not ours")
    if challenge.algorithm not in _HASH_NAMES:
        raise DigestRefused(f"unsupported algorithm {challenge.algorithm[:32]!r}")
    qop = _choose_qop(challenge)
    unsigned = Credentials(
        username=account.username,
        realm=account.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        cnonce=cnonce if qop else None,
        nc=nc if qop else None,
        qop=qop,
        opaque=challenge.opaque,
    )
    ha1 = compute_ha1(account.username, account.realm, account.password, challenge.algorithm)
    return replace(unsigned, response=compute_response(unsigned, ha1=ha1, method=method))


class DigestClient:
    """Answers challenges for the accounts it holds and counts nc per nonce (bounded)."""

    __slots__ = ("_accounts", "_max_nonces", "_nc")

    def __init__(self, accounts: Iterable[DigestAccount], *, max_nonces: int = 64) -> None:
        self._accounts: dict[str, list[DigestAccount]] = {}
        for account in accounts:
            self._accounts.setdefault(account.realm, []).append(account)
        self._max_nonces = max_nonces
        self._nc: OrderedDict[str, int] = OrderedDict()

    def account_for(self, realm: str, host: str) -> DigestAccount | None:
        host = host.lower()
        for account in self._accounts.get(realm, ()):
            if not account.hosts or host in {h.lower() for h in account.hosts}:
                return account
        return None

    def answer(
        self, challenges: Iterable[Challenge], *, method: str, uri: str, host: str, cnonce: str
    ) -> Credentials | None:
        """Credentials for the strongest challenge we can answer, or None if there is none.

        `host` is where we sent the request (the Request-URI host or the outbound proxy)."""
        best: tuple[int, Challenge, DigestAccount] | None = None
        for ch in challenges:
            rank = _PREFERENCE.get(ch.algorithm)
            account = self.account_for(ch.realm, host)
            if rank is None or account is None or (best is not None and rank >= best[0]):
                continue
            try:
                _choose_qop(ch)
            except DigestRefused:
                continue
            best = (rank, ch, account)
        if best is None:
            return None
        _, ch, account = best
        nc = self._nc.pop(ch.nonce, 0) + 1  # pop + set keeps the LRU order
        self._nc[ch.nonce] = nc
        if len(self._nc) > self._max_nonces:
            self._nc.popitem(last=False)
        return answer_challenge(ch, account, method=method, uri=uri, cnonce=cnonce, nc=nc)
