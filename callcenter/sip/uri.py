"""SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), and any other absoluteURI kept opaque.

Parsing is a hand-written scan, not a regex, so hostile input costs linear time. Fields keep
their escaped wire form so a URI serialises to exactly what arrived; `unescape()` gives the
decoded value for comparisons (RFC 3261 §19.1.4: `%HH` equals the character it encodes).

    SIP-URI   = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
    userinfo  = ( user / telephone-subscriber ) [ ":" password ] "@"
    hostport  = host [ ":" port ]
    host      = hostname / IPv4address / IPv6reference
    uri-parameters = *( ";" uri-parameter )
    headers   = "?" header *( "&" header )
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import SipParseError

_SCHEME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_SCHEME_CHARS = _SCHEME_FIRST | frozenset("0123456789+-.")
_HOSTNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
# Octets never allowed unescaped anywhere in a URI: controls, space, and the delimiters that
# would make a URI ambiguous inside a header (RFC 3986 excluded set).
_FORBIDDEN = frozenset([chr(c) for c in range(0x21)] + ["\x7f", "<", ">", '"', "{", "}", "|", "^"])
_HEX = frozenset("0123456789abcdefABCDEF")

Params = tuple[tuple[str, str | None], ...]


def unescape(text: str) -> str:
    """Decode %HH escapes; an invalid escape stays literal (esc02: `%` that is not an escape)."""
    if "%" not in text:
        return text
    out = bytearray()
    raw = text.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        b = raw[i]
        if b == 0x25 and i + 2 < len(raw) and chr(raw[i + 1]) in _HEX and chr(raw[i + 2]) in _HEX:
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _check_escapes(text: str, what: str) -> None:
    for i, c in enumerate(text):
        if c in _FORBIDDEN:
            raise SipParseError(f"illegal character {c!r} in {what}")
        if c == "%" and not (i + 2 < len(text) and text[i + 1] in _HEX and text[i + 2] in _HEX):
            raise SipParseError(f"bad %-escape in {what}")


def _parse_params(text: str, max_params: int) -> Params:
    """`;name[=value]` pairs; names are case-insensitive and stored lower-cased."""
    if not text:
        return ()
    out: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        if len(out) >= max_params:
            raise SipParseError("too many URI parameters")
        name, eq, value = item.partition("=")
        if not name:
            raise SipParseError("empty URI parameter")
        _check_escapes(name, "URI parameter")
        if eq:
            _check_escapes(value, "URI parameter")
        out.append((name.lower(), value if eq else None))
    return tuple(out)


def _format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _param(params: Params, name: str) -> str | None:
    name = name.lower()
    for k, v in params:
        if k == name:
            return v
    return None


def _has_param(params: Params, name: str) -> bool:
    name = name.lower()
    return any(k == name for k, _ in params)


def parse_port(text: str) -> int:
    if not text or not text.isascii() or not text.isdigit() or len(text) > 5:
        raise SipParseError(f"bad port {text[:16]!r}")
    port = int(text)
    if port > 65535:
        raise SipParseError(f"port out of range {port}")
    return port


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Split `host[:port]`; an IPv6 reference keeps its brackets and any port follows `]`.

    RFC 5118 §4.3: `[2001:db8::10:5070]` is an address with no port. The three-colon form of
    §4.10 (an RFC 3261 ABNF bug) is tolerated: we check the character set, not the grouping.
    """
    if not text:
        raise SipParseError("empty host")
    if text[0] == "[":
        end = text.find("]")
        if end < 0:
            raise SipParseError("unterminated IPv6 reference")
        inner = text[1:end]
        if not inner or ":" not in inner or any(c not in _IPV6_CHARS for c in inner):
            raise SipParseError("bad IPv6 reference")
        host = text[: end + 1]
        rest = text[end + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise SipParseError("junk after IPv6 reference")
        return host, parse_port(rest[1:])
    host, colon, port = text.partition(":")
    if not host or any(c not in _HOSTNAME_CHARS for c in host):
        raise SipParseError(f"bad host {host[:64]!r}")
    return host, (parse_port(port) if colon else None)


@dataclass(frozen=True, slots=True)
class SipUri:
    """A sip: or sips: URI. `user`, `password`, parameter and header values are as escaped on
    the wire; `host` keeps IPv6 brackets."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(_format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unescape(self.user)

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def host_unbracketed(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    def has_param(self, name: str) -> bool:
        return _has_param(self.params, name)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        kept = tuple((k, v) for k, v in self.params if k != name.lower())
        return replace(self, params=(*kept, (name.lower(), value)))

    def without_headers(self) -> SipUri:
        return replace(self, headers=())

    def equivalent(self, other: object) -> bool:
        """URI comparison of RFC 3261 §19.1.4 (escapes decoded, host case-insensitive,
        parameters present in both must match, user/ttl/method/maddr/transport must match)."""
        if not isinstance(other, SipUri):
            return False
        if self.scheme != other.scheme or self.port != other.port:
            return False
        if self.user_unescaped != other.user_unescaped:
            return False
        if (self.password and unescape(self.password)) != (
            other.password and unescape(other.password)
        ):
            return False
        if self.host.lower() != other.host.lower():
            return False
        mine = {k: unescape(v).lower() if v else v for k, v in self.params}
        theirs = {k: unescape(v).lower() if v else v for k, v in other.params}
        for key in mine.keys() & theirs.keys():
            if mine[key] != theirs[key]:
                return False
        for key in ("user", "ttl", "method", "maddr", "transport"):
            if (key in mine) != (key in theirs):
                return False
        mine_h = {k.lower(): unescape(v) for k, v in self.headers}
        theirs_h = {k.lower(): unescape(v) for k, v in other.headers}
        return mine_h == theirs_h


@dataclass(frozen=True, slots=True)
class TelUri:
    """A tel: URI (RFC 3966); `number` is the subscriber part as written."""

    number: str
    params: Params = ()
    scheme: str = field(default="tel", init=False)

    def __str__(self) -> str:
        return f"tel:{self.number}{_format_params(self.params)}"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    def param(self, name: str) -> str | None:
        return _param(self.params, name)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme (RFC 3261 absoluteURI): parsed enough to route a 416, kept opaque."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


def split_scheme(text: str) -> tuple[str, str]:
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or scheme[0] not in _SCHEME_FIRST:
        raise SipParseError(f"not a URI: {text[:64]!r}")
    if any(c not in _SCHEME_CHARS for c in scheme):
        raise SipParseError(f"bad URI scheme {scheme[:32]!r}")
    return scheme.lower(), rest


def parse_uri(text: str, *, max_params: int = 64) -> Uri:
    """Parse any URI; unknown schemes become AbsoluteUri (the caller answers 416)."""
    scheme, rest = split_scheme(text)
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, max_params)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise SipParseError("empty tel URI")
        _check_escapes(number, "tel URI")
        return TelUri(number, _parse_params(params, max_params))
    if not rest:
        raise SipParseError("empty URI")
    _check_escapes(rest, "URI")
    return AbsoluteUri(scheme, rest)


def _parse_sip(scheme: str, rest: str, max_params: int) -> SipUri:
    user: str | None = None
    password: str | None = None
    # '@' can appear unescaped only at the end of userinfo: params and headers exclude it.
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, colon, pw = userinfo.partition(":")
        _check_escapes(user, "URI user")
        if not user:
            raise SipParseError("empty user in URI")
        if colon:
            _check_escapes(pw, "URI password")
            password = pw
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    if semi and not param_text:
        raise SipParseError("empty URI parameter")
    host, port = parse_hostport(hostport)
    headers: list[tuple[str, str]] = []
    if qmark:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq:
                raise SipParseError("bad URI header")
            _check_escapes(name, "URI header")
            _check_escapes(value, "URI header")
            headers.append((name, value))
            if len(headers) > max_params:
                raise SipParseError("too many URI headers")
    return SipUri(
        host=host,
        user=user,
        password=password,
        port=port,
        params=_parse_params(param_text, max_params),
        headers=tuple(headers),
        scheme=scheme,
    )
