"""name-addr and addr-spec values of From, To, Contact, Route, Record-Route (RFC 3261 §20, §25.1).

    name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
    display-name = *(token LWS) / quoted-string
    contact-param = (name-addr / addr-spec) *(SEMI contact-params)

Without angle brackets, everything after the first ';' is a header parameter, never a URI
parameter (RFC 4475 cparam01), and the URI may not contain ',', '?' or ';' (regbadct).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import SipParseError
from .headers import TOKEN_CHARS
from .params import Params, format_params, get_param, parse_params, scan_quoted, set_param, unquote
from .uri import Uri, parse_uri

_LWS = " \t"


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A URI with optional display name and header parameters (tag, expires, q …).

    `display_name` is kept in wire form (quoted or token words) for exact serialisation;
    `display_text` gives the decoded text.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    def __str__(self) -> str:
        name = f"{self.display_name} " if self.display_name else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"

    @property
    def display_text(self) -> str | None:
        return None if self.display_name is None else unquote(self.display_name)

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return get_param(self.params, name.lower())

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params=set_param(self.params, "tag", tag))

    def with_param(self, name: str, value: str | None) -> NameAddr:
        return replace(self, params=set_param(self.params, name.lower(), value))


def parse_name_addr(text: str, *, max_params: int = 64) -> NameAddr:
    """Parse one name-addr or addr-spec followed by header parameters."""
    text = text.strip(_LWS)
    if not text:
        raise SipParseError("empty address")
    i = 0
    n = len(text)
    display: str | None = None
    if text[0] == '"':
        end = scan_quoted(text, 0)
        display = text[:end]
        i = end
        while i < n and text[i] in _LWS:
            i += 1
        if i >= n or text[i] != "<":
            raise SipParseError("quoted display name without <URI>")
    else:
        lt = text.find("<")
        if lt >= 0:
            words = text[:lt].strip(_LWS)
            # *(token LWS): anything else (baddn's "Bell, Alexander") is malformed.
            if words and any(c not in TOKEN_CHARS and c not in _LWS for c in words):
                raise SipParseError("display name is neither token words nor quoted-string")
            display = words or None
            i = lt
    if i < n and text[i] == "<":
        gt = text.find(">", i)
        if gt < 0:
            raise SipParseError("unterminated <URI>")
        uri = parse_uri(text[i + 1 : gt], max_params=max_params)
        rest = text[gt + 1 :].lstrip(_LWS)
        return NameAddr(uri, display, parse_params(rest, max_params))
    semi = text.find(";")
    spec = text if semi < 0 else text[:semi]
    spec = spec.rstrip(_LWS)
    if any(c in spec for c in ",?> \t"):
        raise SipParseError("addr-spec with ',', '?' or spaces must be enclosed in <>")
    uri = parse_uri(spec, max_params=max_params)
    rest = "" if semi < 0 else text[semi:]
    return NameAddr(uri, None, parse_params(rest, max_params))


@dataclass(frozen=True, slots=True)
class ContactStar:
    """`Contact: *` (remove all bindings, RFC 3261 §10.2.2)."""

    def __str__(self) -> str:
        return "*"


def parse_contact(text: str, *, max_params: int = 64) -> NameAddr | ContactStar:
    if text.strip(_LWS) == "*":
        return ContactStar()
    return parse_name_addr(text, max_params=max_params)
