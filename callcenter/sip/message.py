"""SIP requests and responses: the in-memory model and its serialisation (RFC 3261 §7, §20).

Header values are stored verbatim; typed views (Via, CSeq, name-addr …) are parsed on access.
The parser validates every header a transaction or dialog relies on, so the typed accessors of
a parsed message do not raise. Serialising writes each field as `Name: value` and a
Content-Length equal to the body, so what we send is always correctly framed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .address import ContactStar, NameAddr, parse_contact, parse_name_addr
from .errors import LocalProtocolError, SipParseError
from .headers import Headers
from .status import reason_phrase
from .uri import Uri
from .via import Via, parse_via

SIP_VERSION = "SIP/2.0"


@dataclass(frozen=True, slots=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(text: str, max_cseq: int = 2**31 - 1) -> CSeq:
    """CSeq = 1*DIGIT LWS Method; the number must be below 2**31 (RFC 3261 §8.1.1.5)."""
    parts = text.split()
    if len(parts) != 2:
        raise SipParseError("bad CSeq")
    number, method = parts
    if not number.isascii() or not number.isdigit() or len(number) > 12:
        raise SipParseError("bad CSeq number")
    seq = int(number)
    if seq > max_cseq:
        raise SipParseError("CSeq number out of range")
    return CSeq(seq, method)


def _check_line(text: str) -> None:
    """Refuse CR and LF in anything we write: a value from a user, the CRM or a peer (a
    display name, a reason phrase) must never become a header line of its own."""
    if "\r" in text or "\n" in text:
        raise LocalProtocolError(f"CR or LF in a SIP line: {text[:40]!r}")


class _Message:
    """Accessors shared by requests and responses (subclasses are slotted dataclasses)."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        return self.headers.get("call-id") or ""

    @property
    def cseq(self) -> CSeq:
        return parse_cseq(self.headers.get("cseq") or "")

    @property
    def from_addr(self) -> NameAddr:
        return parse_name_addr(self.headers.get("from") or "")

    @property
    def to_addr(self) -> NameAddr:
        return parse_name_addr(self.headers.get("to") or "")

    @property
    def from_tag(self) -> str | None:
        return self.from_addr.tag

    @property
    def to_tag(self) -> str | None:
        return self.to_addr.tag

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.values("via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.values("via")
        if not values:
            raise SipParseError("no Via")
        return parse_via(values[0])

    @property
    def contacts(self) -> list[NameAddr | ContactStar]:
        return [parse_contact(v) for v in self.headers.values("contact")]

    @property
    def record_route(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.values("record-route")]

    @property
    def route(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.headers.values("route")]

    @property
    def content_type(self) -> str | None:
        """The media type, lower-cased, without parameters."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    def option_tags(self, name: str) -> list[str]:
        """Option tags of Require, Proxy-Require, Supported or Unsupported."""
        return [v for v in self.headers.values(name) if v]

    def set_body(self, body: bytes, content_type: str | None) -> None:
        self.body = body
        if content_type is None:
            self.headers.remove("content-type")
        else:
            self.headers.set("Content-Type", content_type)

    def _serialize(self, start_line: str) -> bytes:
        _check_line(start_line)
        lines = [start_line]
        has_length = False
        for key, name, value in self.headers.entries():
            if key == "content-length":
                if has_length:
                    continue
                has_length = True
                value = str(len(self.body))
            _check_line(name)
            _check_line(value)
            lines.append(f"{name}: {value}")
        if not has_length:
            lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


@dataclass(slots=True, eq=True)
class Request(_Message):
    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} {self.version}")

    def to_bytes(self) -> bytes:
        return bytes(self)

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("max-forwards")
        return None if value is None else int(value)


@dataclass(slots=True, eq=True)
class Response(_Message):
    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        return self._serialize(f"{self.version} {self.status} {self.reason}")

    def to_bytes(self) -> bytes:
        return bytes(self)

    @property
    def provisional(self) -> bool:
        return self.status < 200

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300


Message = Request | Response

# Copied from request to response by a UAS (RFC 3261 §8.2.6.2).
_COPIED = ("via", "from", "call-id", "cseq")


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    record_route: bool = False,
) -> Response:
    """Build a response to `request` as a UAS must (RFC 3261 §8.2.6).

    Via, From, Call-ID and CSeq are copied; To is copied and gets `to_tag` unless it already
    has a tag (§8.2.6.2); a 100 Trying also echoes Timestamp (§8.2.6.1). Record-Route is copied
    only when asked, for dialog-creating responses (§12.1.1).
    """
    headers = Headers()
    for key, name, value in request.headers.entries():
        if key in _COPIED or (record_route and key == "record-route"):
            headers.add(name, value)
        elif key == "to":
            if to_tag is not None and request.to_tag is None:
                value = str(parse_name_addr(value).with_tag(to_tag))
            headers.add(name, value)
        elif key == "timestamp" and status == 100:
            headers.add(name, value)
    return Response(status, reason if reason is not None else reason_phrase(status), headers)
