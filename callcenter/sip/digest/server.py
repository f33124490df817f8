"""The Digest server: stateless self-validating nonces and verification of credentials.

Must not know: where users live (the caller passes the password or stored HA1), transports, or
the clock (`now` is wall-clock seconds passed in, so nonces survive restarts and are shared by
nodes with the same secret).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from ..errors import LocalProtocolError
from .grammar import _B64URL, _HASH_NAMES, Challenge, Credentials, _format_nc


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
        request_uri: str | None,
        password: str | None = None,
        ha1: str | None = None,
    ) -> VerifyResult:
        """Check `credentials` of a `method` request.

        Pass the user's `password`, or `ha1` = compute_ha1(..., credentials.algorithm) when
        storing hashes; neither means an unknown user, which costs the same work and gets the
        same answer as a wrong password.

        `request_uri` is required so that no caller forgets it: a UAS passes the Request-URI,
        which must equal the digest uri exactly, binding the answer to the request. None skips
        the check; only for a peer known to send another uri (pyVoIP), or behind proxies that
        rewrite it (RFC 3261 §22.4). Answers without qop (RFC 2069) carry no nonce count, so
        each is accepted once per (username, nonce): a sniffed answer cannot be replayed."""
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
        if config.replay_cache_size:
            # Recorded only after the digest matched, so forged nc values cannot lock a user out.
            # A qop-less answer counts as nc 1: it is good exactly once.
            nc = 1 if c.nc is None else c.nc
            key = (c.username, c.nonce)
            if nc <= self._nc_seen.get(key, 0):
                return VerifyResult.REPLAY
            self._nc_seen[key] = nc
            self._nc_seen.move_to_end(key)
            if len(self._nc_seen) > config.replay_cache_size:
                self._nc_seen.popitem(last=False)
        return VerifyResult.OK
