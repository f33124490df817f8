"""SDP data model (RFC 8866): the typed session and media descriptions, their accessors,
serialisation, and the scalar grammar shared with the parser (numbers, tokens, rtpmap).

Must not know which codecs we support or how offer/answer works (`offer_answer.py`), nor
anything about sockets or SIP messages.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..errors import LocalProtocolError, SipParseError


class SdpError(SipParseError):
    """The SDP body is malformed or exceeds a bound: answer 488 Not Acceptable Here."""

    def __init__(self, message: str, status: int | None = 488) -> None:
        super().__init__(message, status=status)


@dataclass(frozen=True, slots=True, kw_only=True)
class SdpLimits:
    max_size: int = 16 * 1024
    max_lines: int = 1024
    max_media: int = 16
    max_attributes: int = 512
    max_formats: int = 64
    max_clock_rate: int = 1_000_000
    max_channels: int = 255


DEFAULT_SDP_LIMITS = SdpLimits()
# Accessors re-read attributes that parse_sdp already checked against the caller's limits.
_LAX_LIMITS = SdpLimits(max_clock_rate=2**64, max_channels=2**64)

# (name, value); value None means the property form `a=name`, "" means `a=name:`.
Attribute = tuple[str, str | None]
ExtraLine = tuple[str, str]

_SESSION_ONLY = frozenset("vosuetrzp")
_TYPE_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
# RFC 8866 token-char: the names of attributes, bandwidth types, media, protos, fmts.
_TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`{|}~"
)
_DIGITS = frozenset("0123456789")
_IP_CHARS = frozenset("0123456789abcdefABCDEF:.")
# A 64-bit decimal has 20 digits; anything longer is hostile, and int() on it would cost time.
_MAX_DIGITS = 20


class Direction(StrEnum):
    """The RFC 3264 §5.1 stream direction attribute, from the point of view of its sender."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, *, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reversed(self) -> Direction:
        """The same stream seen from the other end (sendonly ↔ recvonly)."""
        return Direction.from_flags(sends=self.receives, receives=self.sends)


_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """`o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`."""

    username: str = "-"
    sess_id: int
    sess_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """`c=<nettype> <addrtype> <connection-address>`; ttl/count only for multicast."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str
    ttl: int | None = None
    count: int | None = None

    @property
    def family(self) -> int | None:
        """4 or 6 for `IN IP4` / `IN IP6`, None for a network type we cannot use."""
        if self.nettype != "IN":
            return None
        return {"IP4": 4, "IP6": 6}.get(self.addrtype)

    @property
    def is_unspecified(self) -> bool:
        """0.0.0.0 (or ::): RFC 3264 §8.4 says to send neither RTP nor RTCP there."""
        if self.family is None:
            return False
        try:
            return ipaddress.ip_address(self.address).is_unspecified
        except ValueError:
            return False

    def __str__(self) -> str:
        suffix = "".join(f"/{n}" for n in (self.ttl, self.count) if n is not None)
        return f"{self.nettype} {self.addrtype} {self.address}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Bandwidth:
    """`b=<bwtype>:<bandwidth>` (CT, AS, TIAS …)."""

    bwtype: str
    bandwidth: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """`t=<start> <stop>` and its `r=` lines, kept verbatim (nobody schedules calls by SDP)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpMap:
    """`a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int = 1

    def to_attribute(self) -> Attribute:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return (
            "rtpmap",
            f"{self.payload_type} {self.encoding_name}/{self.clock_rate}{suffix}",
        )


def _first(attributes: Iterable[Attribute], name: str) -> Attribute | None:
    for attr in attributes:
        if attr[0] == name:
            return attr
    return None


def _direction(attributes: Iterable[Attribute]) -> Direction | None:
    for name, _value in attributes:
        if name in _DIRECTIONS:
            return Direction(name)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """One `m=` section and the lines after it up to the next `m=`."""

    media: str
    port: int
    port_count: int | None = None
    proto: str = "RTP/AVP"
    formats: tuple[str, ...]
    information: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    extra_lines: tuple[ExtraLine, ...] = ()

    @property
    def is_rtp(self) -> bool:
        """RTP/AVP, RTP/SAVP, RTP/AVPF, UDP/TLS/RTP/SAVPF …: formats are payload types."""
        return "RTP" in self.proto.split("/")

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The formats as integers; empty for a non-RTP proto (formats are then opaque)."""
        return tuple(int(f) for f in self.formats) if self.is_rtp else ()

    def attribute(self, name: str) -> str | None:
        """Value of the first `a=name:value` (None if absent or a property attribute)."""
        attr = _first(self.attributes, name)
        return None if attr is None else attr[1]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Explicit rtpmaps by payload type; static types without one are not invented here."""
        out: dict[int, RtpMap] = {}
        for name, value in self.attributes:
            if name == "rtpmap" and value is not None:
                try:
                    rtpmap = _parse_rtpmap(value, _LAX_LIMITS)
                except SdpError:
                    continue  # only a hand-built description can get here; parse_sdp checked
                out.setdefault(rtpmap.payload_type, rtpmap)
        return out

    def rtpmap(self, payload_type: int) -> RtpMap | None:
        return self.rtpmaps().get(payload_type)

    def fmtp(self, fmt: str | int) -> str | None:
        """Parameters of `a=fmtp:<fmt> <parameters>` for one format, if any."""
        want = str(fmt)
        for name, value in self.attributes:
            if name == "fmtp" and value is not None:
                got, _sp, params = value.partition(" ")
                if got == want:
                    return params
        return None

    @property
    def ptime(self) -> int | None:
        return _milliseconds(self.attribute("ptime"))

    @property
    def maxptime(self) -> int | None:
        return _milliseconds(self.attribute("maxptime"))

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute only; see `SessionDescription.direction_of`."""
        return _direction(self.attributes)


def _milliseconds(value: str | None) -> int | None:
    # ptime is advisory (RFC 8866 §6.4: "not required to decode"), so an odd value such as
    # "20.0" is ignored rather than failing the call.
    if value is None or not value or len(value) > 5 or not set(value) <= _DIGITS:
        return None
    ms = int(value)
    return ms if 0 < ms <= 10_000 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP body. `bytes(sd)` writes it in RFC field order with CRLF line ends."""

    version: int = 0
    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    timings: tuple[Timing, ...] = (Timing(),)
    zone: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    extra_lines: tuple[ExtraLine, ...] = ()

    def attribute(self, name: str) -> str | None:
        attr = _first(self.attributes, name)
        return None if attr is None else attr[1]

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute only."""
        return _direction(self.attributes)

    def direction_of(self, media: MediaDescription) -> Direction:
        """Media-level direction, else session-level, else sendrecv (RFC 3264 §5.1)."""
        return media.direction or self.direction or Direction.SENDRECV

    def connection_of(self, media: MediaDescription) -> Connection | None:
        """The media's own `c=`, else the session's (RFC 8866 §5.7)."""
        return media.connection or self.connection

    def to_bytes(self) -> bytes:
        lines: list[str] = [
            f"v={self.version}",
            f"o={self.origin}",
            f"s={self.session_name}",
        ]
        _opt(lines, "i", self.information)
        _opt(lines, "u", self.uri)
        lines.extend(f"e={e}" for e in self.emails)
        lines.extend(f"p={p}" for p in self.phones)
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={b.bwtype}:{b.bandwidth}" for b in self.bandwidths)
        for t in self.timings:
            lines.append(f"t={t.start} {t.stop}")
            lines.extend(f"r={r}" for r in t.repeats)
        _opt(lines, "z", self.zone)
        _opt(lines, "k", self.key)
        _attrs(lines, self.attributes)
        lines.extend(f"{k}={v}" for k, v in self.extra_lines)
        for m in self.media:
            port = f"{m.port}" if m.port_count is None else f"{m.port}/{m.port_count}"
            lines.append(" ".join((f"m={m.media}", port, m.proto, *m.formats)))
            _opt(lines, "i", m.information)
            if m.connection is not None:
                lines.append(f"c={m.connection}")
            lines.extend(f"b={b.bwtype}:{b.bandwidth}" for b in m.bandwidths)
            _opt(lines, "k", m.key)
            _attrs(lines, m.attributes)
            lines.extend(f"{k}={v}" for k, v in m.extra_lines)
        text = "\r\n".join(lines)
        # A CR, LF or NUL smuggled into a field would forge extra SDP lines.
        if (
            "\x00" in text
            or text.count("\n") != len(lines) - 1
            or text.count("\r") != len(lines) - 1
        ):
            raise LocalProtocolError("an SDP field contains CR, LF or NUL")
        return (text + "\r\n").encode("utf-8", "surrogateescape")

    def __bytes__(self) -> bytes:
        return self.to_bytes()


def _opt(lines: list[str], letter: str, value: str | None) -> None:
    if value is not None:
        lines.append(f"{letter}={value}")


def _attrs(lines: list[str], attributes: tuple[Attribute, ...]) -> None:
    lines.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in attributes)


# Scalar grammar, shared with parser.py (accessors re-read rtpmap lines).


def _non_ws(text: str, what: str) -> str:
    # non-ws-string = 1*(VCHAR/%x80-FF)
    if not text or any(c <= " " or c == "\x7f" for c in text):
        raise SdpError(f"bad {what}: {text[:40]!r}")
    return text


def _is_token(text: str) -> bool:
    return bool(text) and set(text) <= _TOKEN_CHARS


def _token(text: str, what: str) -> str:
    if not _is_token(text):
        raise SdpError(f"bad {what}: {text[:40]!r}")
    return text


def _int(text: str, what: str, low: int, high: int) -> int:
    # int() alone would accept "+1", " 1", "1_000" and non-ASCII digits.
    if not text or len(text) > _MAX_DIGITS or not set(text) <= _DIGITS:
        raise SdpError(f"bad {what}: {text[:40]!r}")
    value = int(text)
    if not low <= value <= high:
        raise SdpError(f"{what} out of range: {value}")
    return value


def _fields(value: str, what: str, count: int | None = None) -> list[str]:
    # Split on SP only: str.split() would also split on Unicode spaces. Runs of spaces are
    # tolerated; the canonical single space is written back.
    parts = [p for p in value.split(" ") if p]
    if count is not None and len(parts) != count:
        raise SdpError(f"bad {what} line: expected {count} fields")
    return parts


def _parse_rtpmap(value: str, limits: SdpLimits) -> RtpMap:
    pt_text, _sp, rest = value.partition(" ")
    pt = _int(pt_text, "rtpmap payload type", 0, 127)
    parts = rest.strip(" ").split("/")
    if len(parts) not in (2, 3):
        raise SdpError(f"bad rtpmap: {value[:60]!r}")
    name = _token(parts[0], "rtpmap encoding name")
    rate = _int(parts[1], "rtpmap clock rate", 1, limits.max_clock_rate)
    channels = _int(parts[2], "rtpmap channels", 1, limits.max_channels) if len(parts) == 3 else 1
    return RtpMap(payload_type=pt, encoding_name=name, clock_rate=rate, channels=channels)
