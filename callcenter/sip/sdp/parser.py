"""Parsing SDP text into the model (RFC 8866 §5, §9): a linear line scan, bounded first.

    session-description = version-field origin-field session-name-field
                          [information-field] [uri-field] *email-field *phone-field
                          [connection-field] *bandwidth-field 1*time-description
                          [key-field] *attribute-field *media-description
    time-description    = time-field [repeat-description]   ; RFC 4566: zone after all t=
    media-description   = media-field [information-field] *connection-field
                          *bandwidth-field [key-field] *attribute-field
    media-field         = %s"m" "=" media SP port ["/" integer] SP proto 1*(SP fmt) CRLF

Parsing is a linear line scan without regexes. Every field is kept so that
`parse_sdp(bytes(sd)) == sd`; lines of an unknown type letter are kept too (RFC 8866 says to
ignore such a description, but deployed peers send `y=`/`f=` lines and a 488 helps nobody)
and are re-emitted at the end of their section, which is where those peers put them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from .model import (
    _IP_CHARS,
    _SESSION_ONLY,
    _TYPE_LETTERS,
    DEFAULT_SDP_LIMITS,
    Attribute,
    Bandwidth,
    Connection,
    ExtraLine,
    MediaDescription,
    Origin,
    SdpError,
    SdpLimits,
    SessionDescription,
    Timing,
    _fields,
    _int,
    _is_token,
    _non_ws,
    _parse_rtpmap,
    _token,
)


def _parse_attribute(value: str, limits: SdpLimits) -> Attribute:
    # attribute = (attribute-name ":" attribute-value) / attribute-name
    name, colon, rest = value.partition(":")
    _token(name, "attribute name")
    # Only the attributes whose meaning we rely on are checked; all others stay opaque.
    if name in ("rtpmap", "fmtp") and not colon:
        raise SdpError(f"{name} without a value")
    if name == "rtpmap":
        _parse_rtpmap(rest, limits)
    elif name == "fmtp":
        _token(rest.partition(" ")[0], "fmtp format")
    return (name, rest if colon else None)


def _parse_ip(address: str, version: int) -> str:
    # Literal addresses only: an FQDN would need a DNS lookup this layer cannot do, and SIP
    # endpoints send literals. No brackets (RFC 5118 §4.5), no zone ids.
    if not address or len(address) > 45 or not set(address) <= _IP_CHARS:
        raise SdpError(f"bad IP{version} address: {address[:50]!r}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SdpError(f"bad IP{version} address: {address!r}") from None
    if ip.version != version:
        raise SdpError(f"address {address!r} is not IP{version}")
    return address


def _parse_connection(value: str) -> Connection:
    nettype, addrtype, conn_addr = _fields(value, "c=", 3)
    _token(nettype, "nettype")
    _token(addrtype, "addrtype")
    if nettype != "IN" or addrtype not in ("IP4", "IP6"):
        # Some other network (ATM, TN …): keep it so the body round-trips; it is unusable.
        if "/" in conn_addr:
            raise SdpError(f"bad connection address: {conn_addr[:50]!r}")
        address = _non_ws(conn_addr, "connection address")
        return Connection(nettype=nettype, addrtype=addrtype, address=address)
    address, *suffix = conn_addr.split("/")
    version = 4 if addrtype == "IP4" else 6
    _parse_ip(address, version)
    # IP4 multicast: addr/ttl[/count]; IP6 multicast: addr[/count] (RFC 8866 §5.7).
    if suffix and not ipaddress.ip_address(address).is_multicast:
        raise SdpError(f"TTL or count on a unicast address: {conn_addr!r}")
    if len(suffix) > (2 if version == 4 else 1):
        raise SdpError(f"bad multicast address: {conn_addr!r}")
    ttl = _int(suffix.pop(0), "multicast TTL", 0, 255) if suffix and version == 4 else None
    count = _int(suffix[0], "multicast count", 1, 256) if suffix else None
    return Connection(nettype=nettype, addrtype=addrtype, address=address, ttl=ttl, count=count)


def _parse_origin(value: str) -> Origin:
    username, sess_id, sess_version, nettype, addrtype, address = _fields(value, "o=", 6)
    return Origin(
        username=_non_ws(username, "origin username"),
        sess_id=_int(sess_id, "sess-id", 0, 2**64 - 1),
        sess_version=_int(sess_version, "sess-version", 0, 2**64 - 1),
        nettype=_token(nettype, "nettype"),
        addrtype=_token(addrtype, "addrtype"),
        # The origin address only names the session; hostnames are common and harmless here.
        address=_non_ws(address, "origin address"),
    )


def _parse_bandwidth(value: str) -> Bandwidth:
    bwtype, colon, amount = value.partition(":")
    if not colon:
        raise SdpError(f"bad b= line: {value[:40]!r}")
    return Bandwidth(
        bwtype=_token(bwtype, "bwtype"), bandwidth=_int(amount, "bandwidth", 0, 2**64 - 1)
    )


def _parse_media_line(value: str, limits: SdpLimits) -> MediaDescription:
    parts = _fields(value, "m=")
    if len(parts) < 3:
        raise SdpError(f"bad m= line: {value[:60]!r}")
    port_text, slash, count_text = parts[1].partition("/")
    proto, formats = parts[2], tuple(parts[3:])
    # proto = token *("/" token)
    if not all(_is_token(p) for p in proto.split("/")):
        raise SdpError(f"bad media proto: {proto[:40]!r}")
    m = MediaDescription(
        media=_token(parts[0], "media type"),
        port=_int(port_text, "media port", 0, 65535),
        port_count=_int(count_text, "port count", 1, 65535) if slash else None,
        proto=proto,
        formats=formats,
    )
    if len(formats) > limits.max_formats:
        raise SdpError("too many formats on an m= line")
    if not formats and m.port != 0:
        raise SdpError("m= line without formats")
    for fmt in formats:
        if m.is_rtp:
            _int(fmt, "payload type", 0, 127)
        else:
            _token(fmt, "media format")
    return m


@dataclass(slots=True)
class _Section:
    """The lines of one section sorted by type; a scan result, not part of the model."""

    single: dict[str, str] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)
    timings: list[Timing] = field(default_factory=list)
    extra: list[ExtraLine] = field(default_factory=list)

    def all(self, letter: str) -> list[str]:
        return self.multi.get(letter, [])

    def connection(self) -> Connection | None:
        c = self.single.get("c")
        return None if c is None else _parse_connection(c)


def _scan(lines: list[str], *, media: bool) -> _Section:
    # Within a section any order is accepted (some stacks put a= or c= before t=); what matters
    # is that single-valued fields stay single and session-only fields stay out of media.
    sec = _Section()
    for line in lines:
        letter, value = line[0], line[2:]
        if letter in "vos" or (media and letter in _SESSION_ONLY):
            raise SdpError(f"misplaced or duplicate {letter}= line")
        if letter == "t":
            start, stop = _fields(value, "t=", 2)
            sec.timings.append(
                Timing(
                    start=_int(start, "start time", 0, 2**64 - 1),
                    stop=_int(stop, "stop time", 0, 2**64 - 1),
                )
            )
        elif letter == "r":
            if not sec.timings:
                raise SdpError("r= before t=")
            t = sec.timings[-1]
            sec.timings[-1] = Timing(start=t.start, stop=t.stop, repeats=(*t.repeats, value))
        elif letter in "iukcz":
            # RFC 8866 allows several c= per media only for layered multicast, which a call
            # center never receives; one keeps the model simple.
            if letter in sec.single or (letter == "z" and not sec.timings):
                raise SdpError(f"misplaced or duplicate {letter}= line")
            sec.single[letter] = value
        elif letter in "epba":
            sec.multi.setdefault(letter, []).append(value)
        else:
            sec.extra.append((letter, value))
    return sec


def _lines(data: bytes | str, limits: SdpLimits) -> list[str]:
    if isinstance(data, str):
        try:
            data = data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise SdpError("SDP text is not encodable as UTF-8") from None
    if len(data) > limits.max_size:
        raise SdpError(f"SDP larger than {limits.max_size} bytes")
    if data.count(b"\n") > limits.max_lines:
        raise SdpError(f"SDP has more than {limits.max_lines} lines")
    if b"\x00" in data:
        raise SdpError("NUL in SDP")
    # surrogateescape keeps non-UTF-8 octets (Latin-1 session names exist) and writes them back.
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    while lines and lines[-1] in ("", "\r"):
        lines.pop()
    out: list[str] = []
    attributes = media = 0
    for raw in lines:
        line = raw[:-1] if raw.endswith("\r") else raw
        if "\r" in line:
            raise SdpError("bare CR in SDP")
        if len(line) < 2 or line[1] != "=" or line[0] not in _TYPE_LETTERS:
            raise SdpError(f"bad SDP line: {line[:40]!r}")
        attributes += line[0] == "a"
        media += line[0] == "m"
        out.append(line)
    if attributes > limits.max_attributes:
        raise SdpError(f"more than {limits.max_attributes} attributes")
    if media > limits.max_media:
        raise SdpError(f"more than {limits.max_media} media sections")
    return out


def parse_sdp(data: bytes | str, *, limits: SdpLimits = DEFAULT_SDP_LIMITS) -> SessionDescription:
    """Parse an SDP body (CRLF or bare LF line ends). Raises SdpError (status 488)."""
    lines = _lines(data, limits)
    if len(lines) < 3 or lines[0][0] != "v" or lines[1][0] != "o" or lines[2][0] != "s":
        raise SdpError("SDP must start with v=, o=, s=")
    if lines[0] != "v=0":
        raise SdpError(f"unsupported SDP version: {lines[0][:20]!r}")
    starts = [i for i, line in enumerate(lines) if line[0] == "m"]
    ends = [*starts[1:], len(lines)] if starts else []
    session = _scan(lines[3 : starts[0] if starts else len(lines)], media=False)
    if not session.timings:
        raise SdpError("SDP without t= before the media")
    connection = session.connection()

    media: list[MediaDescription] = []
    for start, end in zip(starts, ends, strict=True):
        m = _parse_media_line(lines[start][2:], limits)
        sec = _scan(lines[start + 1 : end], media=True)
        m = replace(
            m,
            information=sec.single.get("i"),
            connection=sec.connection(),
            bandwidths=tuple(_parse_bandwidth(b) for b in sec.all("b")),
            key=sec.single.get("k"),
            attributes=tuple(_parse_attribute(a, limits) for a in sec.all("a")),
            extra_lines=tuple(sec.extra),
        )
        # An active stream needs somewhere to send to (RFC 8866 §5.7).
        if m.port != 0 and m.connection is None and connection is None:
            raise SdpError(f"no c= for active {m.media} stream")
        media.append(m)

    return SessionDescription(
        version=0,
        origin=_parse_origin(lines[1][2:]),
        session_name=lines[2][2:],
        information=session.single.get("i"),
        uri=session.single.get("u"),
        emails=tuple(session.all("e")),
        phones=tuple(session.all("p")),
        connection=connection,
        bandwidths=tuple(_parse_bandwidth(b) for b in session.all("b")),
        timings=tuple(session.timings),
        zone=session.single.get("z"),
        key=session.single.get("k"),
        attributes=tuple(_parse_attribute(a, limits) for a in session.all("a")),
        media=tuple(media),
        extra_lines=tuple(session.extra),
    )
