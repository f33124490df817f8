"""The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 rport; RFC 5118 IPv6 `received`).

    via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
    sent-protocol = protocol-name SLASH protocol-version SLASH transport
    sent-by       = host [ COLON port ]

The branch is what transactions are matched by; a branch starting with the magic cookie
`z9hG4bK` marks an RFC 3261 client (§8.1.1.7).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import SipParseError
from .headers import is_token
from .limits import parse_decimal
from .params import Params, format_params, get_param, has_param, parse_params, set_param
from .uri import parse_hostport

MAGIC_COOKIE = "z9hG4bK"
_LWS = " \t"


@dataclass(frozen=True, slots=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch carries the magic cookie and something after it."""
        b = self.branch
        return b is not None and b.startswith(MAGIC_COOKIE) and len(b) > len(MAGIC_COOKIE)

    @property
    def received(self) -> str | None:
        return get_param(self.params, "received")

    @property
    def rport(self) -> int | None:
        value = get_param(self.params, "rport")
        return int(value) if value else None

    @property
    def wants_rport(self) -> bool:
        return has_param(self.params, "rport")

    @property
    def maddr(self) -> str | None:
        return get_param(self.params, "maddr")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=set_param(self.params, name, value))


def parse_via(text: str, *, max_params: int = 64) -> Via:
    """Parse one via-parm (one element of a possibly comma-separated Via field)."""
    text = text.strip(_LWS)
    if not text:
        raise SipParseError("empty Via value")
    # sent-protocol: three tokens separated by '/' with optional whitespace around it.
    parts: list[str] = []
    i = 0
    n = len(text)
    for _ in range(3):
        while i < n and text[i] in _LWS:
            i += 1
        start = i
        while i < n and text[i] not in "/ \t;":
            i += 1
        parts.append(text[start:i])
        while i < n and text[i] in _LWS:
            i += 1
        if len(parts) < 3:
            if i >= n or text[i] != "/":
                raise SipParseError("bad Via sent-protocol")
            i += 1
    name, version, transport = parts
    if not (is_token(name) and is_token(version) and is_token(transport)):
        raise SipParseError("bad Via sent-protocol")
    rest = text[i:]
    semi = rest.find(";")
    sent_by = (rest if semi < 0 else rest[:semi]).strip(_LWS)
    if not sent_by:
        raise SipParseError("Via without sent-by")
    host, port = parse_hostport(sent_by)
    params = parse_params("" if semi < 0 else rest[semi:].rstrip(_LWS), max_params)
    _check_params(params)
    return Via(transport.upper(), host, port, params, f"{name.upper()}/{version}")


def _check_params(params: Params) -> None:
    for key, value in params:
        if key == "rport" and value is not None:
            port = parse_decimal(value, 5)
            if port is None or not 0 < port <= 65535:
                raise SipParseError("bad Via rport")
        elif key in ("branch", "received", "maddr") and not value:
            raise SipParseError(f"Via {key} without value")
        elif key == "ttl":
            ttl = None if value is None else parse_decimal(value, 3)
            if ttl is None or ttl > 255:
                raise SipParseError("bad Via ttl")
