"""Bytes to Request/Response (RFC 3261 §7, §18.3, §25), with every bound checked before work.

    Request-Line = Method SP Request-URI SP SIP-Version CRLF
    Status-Line  = SIP-Version SP Status-Code SP Reason-Phrase CRLF
    message-header = field-name HCOLON field-value CRLF   (LWS folding allowed)

Errors carry the response a UAS should send; any fault in a *response* is dropped (status
None): we never answer a response. Lines may end in CRLF or bare LF (RFC 5118 samples, and
peers that are liberal in what they send); header bytes are decoded with surrogateescape so
odd octets (RFC 4475 intmeth) survive a round trip.
"""

from __future__ import annotations

from .address import parse_contact, parse_name_addr
from .errors import MessageTooLarge, SipParseError, VersionNotSupported
from .headers import Headers, is_token, normalize_name
from .limits import DEFAULT_LIMITS, Limits, parse_decimal
from .message import SIP_VERSION, Message, Request, Response, parse_cseq
from .status import reason_phrase
from .uri import SipUri, parse_uri
from .via import parse_via

# Fields a transaction, dialog or response route depends on: present exactly once.
_SINGLE = ("call-id", "cseq", "from", "to")
# Each may appear at most once (multi01: several Max-Forwards must be rejected too).
_AT_MOST_ONCE = ("call-id", "cseq", "from", "to", "max-forwards", "content-length", "content-type")


def split_head(data: bytes, limits: Limits) -> tuple[list[bytes], int | None]:
    """Split off the start line and header lines.

    Returns the raw lines and the offset of the body, or None if no empty line ends the
    header section within `data` (for a stream that means: wait for more).
    """
    lines: list[bytes] = []
    pos = 0
    n = len(data)
    while pos < n:
        end = data.find(b"\n", pos)
        if end < 0:
            if n - pos > max(limits.max_header_line, limits.max_start_line):
                raise MessageTooLarge("header line too long")
            break
        line = data[pos:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        pos = end + 1
        if not line:
            return lines, pos
        if len(line) > limits.max_header_line:
            raise MessageTooLarge("header line too long")
        lines.append(line)
        if len(lines) > limits.max_headers + 1:
            raise MessageTooLarge("too many header lines")
    if pos < n:
        lines.append(data[pos:])
    return lines, None


def _unfold(lines: list[bytes], is_response: bool) -> Headers:
    headers = Headers()
    fields: list[list[str]] = []
    problem: str | None = None
    for raw in lines:
        if b"\r" in raw:
            # A bare CR is a line end to some stacks (pjsip): refusing it keeps a caller
            # from smuggling header lines through values we echo or relay.
            problem = problem or "bare CR inside a header line"
            continue
        line = raw.decode("utf-8", "surrogateescape")
        if line[0] in " \t":
            if not fields:
                problem = problem or "continuation line before any header"
                continue
            fields[-1][1] += " " + line.strip(" \t")
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            problem = problem or f"malformed header line {line[:40]!r}"
            continue
        fields.append([name, value.strip(" \t")])
    for name, value in fields:
        # A value that starts on a continuation line must not keep the joining space.
        headers.add(name, value.strip(" \t"))
    if problem is not None:
        # Keep the well-formed fields so a 400 can still be addressed to the sender.
        error = SipParseError(problem)
        error.fields = list(headers)
        raise error
    return headers


def _parse_start_line(line: str, limits: Limits) -> tuple[bool, list[str]]:
    if len(line) > limits.max_start_line:
        raise MessageTooLarge("start line too long")
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version != SIP_VERSION:
            raise SipParseError(f"unsupported version in response {version[:16]!r}", None)
        if len(code) != 3 or not code.isascii() or not code.isdigit():
            raise SipParseError("bad status code", None)
        status = int(code)
        if not 100 <= status <= 699:
            raise SipParseError("status code out of range", None)
        return True, [version, code, reason]
    # Exactly three single-SP separated parts: extra or trailing SP (lwsstart, trws) is
    # acceptable to reject, and rejecting is safer than guessing.
    parts = line.split(" ")
    if len(parts) != 3:
        raise SipParseError("malformed Request-Line")
    method, _uri, version = parts
    if not is_token(method):
        raise SipParseError("bad method")
    _check_version(version)
    return False, parts


def _check_version(version: str) -> None:
    """SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, compared case-insensitively."""
    proto, slash, number = version.partition("/")
    major, dot, minor = number.partition(".")
    major_number = parse_decimal(major)
    minor_number = parse_decimal(minor)
    if (
        proto.upper() != "SIP"
        or not slash
        or not dot
        or major_number is None
        or minor_number is None
    ):
        raise SipParseError(f"bad SIP-Version {version[:16]!r}")
    if major_number != 2 or minor_number != 0:
        raise VersionNotSupported(f"SIP-Version {version[:16]} not supported")


def _validate(headers: Headers, method: str | None, limits: Limits) -> None:
    """Check what transactions and dialogs rely on, so typed accessors never fail later."""
    counts: dict[str, int] = {}
    for key in headers.lookup_keys():
        counts[key] = counts.get(key, 0) + 1
    for key in _SINGLE:
        if counts.get(key, 0) == 0:
            raise SipParseError(f"missing {key} header")
    for key in _AT_MOST_ONCE:
        if counts.get(key, 0) > 1:
            raise SipParseError(f"more than one {key} header")
    vias = headers.values("via", limits.max_vias)
    if not vias:
        raise SipParseError("missing Via header")
    if len(vias) > limits.max_vias:
        raise MessageTooLarge("too many Via values")
    for via in vias:
        parse_via(via, max_params=limits.max_params)
    call_id = headers.get("call-id") or ""
    if not call_id or any(c in call_id for c in " \t"):
        raise SipParseError("bad Call-ID")
    cseq = parse_cseq(headers.get("cseq") or "", limits.max_cseq)
    if method is not None and cseq.method != method:
        raise SipParseError("CSeq method does not match the Request-Line")
    parse_name_addr(headers.get("from") or "", max_params=limits.max_params)
    parse_name_addr(headers.get("to") or "", max_params=limits.max_params)
    for value in headers.values("contact", limits.max_values_per_header):
        parse_contact(value, max_params=limits.max_params)
    for key in ("route", "record-route"):
        for value in headers.values(key, limits.max_values_per_header):
            parse_name_addr(value, max_params=limits.max_params)
    max_forwards = headers.get("max-forwards")
    if max_forwards is not None:
        # Leading zeros are legal (wsinv's "0068"), so bound the digits, not the width.
        hops = parse_decimal(max_forwards)
        if hops is None or hops > 255:
            raise SipParseError("bad Max-Forwards")


def content_length(headers: Headers) -> int | None:
    """The declared body length; several values (mcl01) or a negative one (ncl) are framing
    faults, and the value is never trusted beyond the bytes we actually hold."""
    fields = headers.fields("content-length")
    if not fields:
        return None
    if len(fields) > 1:
        raise SipParseError("more than one Content-Length")
    value = fields[0]
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise SipParseError("bad Content-Length")
    return int(value)


def parse_head(
    lines: list[bytes], limits: Limits = DEFAULT_LIMITS
) -> tuple[Request | Response, Headers]:
    """Build a message without its body from the start line and header lines.

    Every error carries the header fields read so far, a bad start line included (badvers
    must still get its 505), so that a UAS can address its answer.
    """
    if not lines:
        raise SipParseError("empty message", None)
    is_response = lines[0].startswith(b"SIP/")
    headers = Headers()
    try:
        headers = _unfold(lines[1:], is_response)
        if b"\r" in lines[0]:
            raise SipParseError("bare CR in the start line")
        start = lines[0].decode("utf-8", "surrogateescape")
        is_response, parts = _parse_start_line(start, limits)
        if is_response:
            _validate(headers, None, limits)
            return Response(int(parts[1]), parts[2], headers, b"", parts[0]), headers
        method, uri_text, version = parts
        uri = parse_uri(uri_text, max_params=limits.max_params)
        if isinstance(uri, SipUri) and uri.headers:
            # escruri: headers are not allowed in a Request-URI (§19.1.1); never apply them.
            raise SipParseError("headers in Request-URI")
        _validate(headers, method, limits)
        return Request(method, uri, headers, b"", version), headers
    except SipParseError as exc:
        if is_response:
            exc.status = None
        if exc.fields is None:
            exc.fields = list(headers)
        raise


def parse_message(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS, datagram: bool = True
) -> Message:
    """Parse one complete message (a UDP datagram, or a message a stream framer cut out).

    In a datagram, a missing Content-Length means the body is the rest of the datagram
    (RFC 2543 style, inv2543), and octets beyond Content-Length are ignored (dblreq).
    """
    if len(data) > limits.max_message_size:
        if data.startswith(b"SIP/"):
            raise SipParseError("response too large", None)
        # Read just enough of the head to address a 513 back to the sender.
        error: SipParseError = MessageTooLarge("message too large")
        try:
            lines, _ = split_head(data[: limits.max_message_size], limits)
            error.fields = list(_unfold(lines[1:], False))
        except SipParseError as partial:
            # The cut may fall inside a header line: keep the fields read before it.
            error.fields = partial.fields
        raise error
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message", None)
    lines, body_at = split_head(data, limits)
    message, headers = parse_head(lines, limits)
    drop_status = None if isinstance(message, Response) else 400
    try:
        declared = content_length(headers)
    except SipParseError as exc:
        exc.status = drop_status
        exc.fields = list(headers)
        raise
    available = b"" if body_at is None else data[body_at:]
    if declared is None:
        message.body = available if datagram else b""
    elif declared > len(available):
        error = SipParseError("Content-Length larger than the message", drop_status)
        error.fields = list(headers)
        raise error
    else:
        message.body = available[:declared]
    return message


_ECHOED = ("via", "from", "to", "call-id", "cseq")


def error_response(error: SipParseError, *, to_tag: str | None = None) -> Response | None:
    """A stateless response to a request we could not parse (RFC 3261 §8.2, §16.3 step 1).

    The fields a client needs to match the response are copied verbatim, and `to_tag` is added
    to a To without one (§8.2.6.2); without a Via and a CSeq there is nowhere to send it and
    nothing to match, so the request is dropped.
    """
    if error.status is None or not error.fields:
        return None
    headers = Headers()
    for name, value in error.fields:
        key = normalize_name(name)
        if key == "to" and to_tag is not None and ";tag=" not in value.replace(" ", "").lower():
            value = f"{value};tag={to_tag}"
        if key in _ECHOED:
            headers.add(name, value)
    if "via" not in headers or "cseq" not in headers:
        return None
    reason = reason_phrase(error.status)
    return Response(error.status, reason, headers)
