"""Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616, RFC 8760).

Owns: parsing and serialising Digest challenges (`WWW-Authenticate`, `Proxy-Authenticate`) and
credentials (`Authorization`, `Proxy-Authorization`) in grammar.py, the response computation and
a server issuing stateless self-validating nonces in server.py, and a client that answers only
challenges from realms (and hosts) it holds an account for in client.py.

Must not know: where users and passwords live, transports, the clock (`now` is passed in), nor
which header name to use (401 → WWW-Authenticate, 407 → Proxy-Authenticate is the caller's).
"""

from .client import DigestAccount, DigestClient, answer_challenge, make_cnonce
from .grammar import (
    MAX_PARAM_VALUE,
    Challenge,
    Credentials,
    DigestParseError,
    DigestRefused,
    OtherScheme,
    find_credentials,
    parse_challenge,
    parse_credentials,
)
from .server import (
    DEFAULT_CONFIG,
    DigestConfig,
    DigestServer,
    VerifyResult,
    compute_ha1,
    compute_response,
)

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_PARAM_VALUE",
    "Challenge",
    "Credentials",
    "DigestAccount",
    "DigestClient",
    "DigestConfig",
    "DigestParseError",
    "DigestRefused",
    "DigestServer",
    "OtherScheme",
    "VerifyResult",
    "answer_challenge",
    "compute_ha1",
    "compute_response",
    "find_credentials",
    "make_cnonce",
    "parse_challenge",
    "parse_credentials",
]
