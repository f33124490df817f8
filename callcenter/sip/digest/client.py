"""The Digest client: answers a challenge only for a realm (and host) it holds an account for,
so a hostile peer cannot harvest a digest of our credentials.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .grammar import _HASH_NAMES, _PREFERENCE, Challenge, Credentials, DigestRefused
from .server import compute_ha1, compute_response


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
