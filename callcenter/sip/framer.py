"""Cutting a byte stream (TCP, TLS) into SIP messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

On a stream, Content-Length is the only frame boundary, so a missing-but-needed, negative or
duplicated value is unrecoverable: `feed` raises FramingError and the transport must close
the connection. A message that is framed correctly but malformed inside is reported as a
`MessageRejected` item so the connection lives on and the sender gets its 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import FramingError, MessageTooLarge, SipParseError
from .headers import normalize_name
from .limits import DEFAULT_LIMITS, Limits
from .message import Message
from .parser import parse_message


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepAliveReceived:
    """A CRLFCRLF ping (RFC 5626 §3.5.1): answer with a single CRLF pong."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRejected:
    """A correctly framed message that failed to parse."""

    error: SipParseError


Framed = Message | KeepAliveReceived | MessageRejected


def _declared_length(head: bytes) -> int:
    """Content-Length read from the raw head without parsing anything else."""
    found: int | None = None
    for raw in head.split(b"\n")[1:]:
        name, colon, value = raw.partition(b":")
        if not colon or raw[:1] in (b" ", b"\t"):
            continue
        if normalize_name(name.strip().decode("latin-1")) != "content-length":
            continue
        text = value.strip()
        if found is not None:
            raise FramingError("more than one Content-Length on a stream")
        if not text.isdigit() or len(text) > 10:
            raise FramingError("bad Content-Length on a stream")
        found = int(text)
    # RFC 3261 §18.3 makes Content-Length mandatory on streams; a message without one can
    # only be taken as having no body.
    return 0 if found is None else found


def _head_end(buf: bytearray, start: int, stop: int) -> int | None:
    """Offset of the body: just past the empty line that ends the header section.

    The same rule as the parser's `split_head`: an empty line is a line feed followed by an
    optional CR and a line feed, so CRLF and bare-LF peers are framed alike.
    """
    crlf = buf.find(b"\n\r\n", start, stop)
    lf = buf.find(b"\n\n", start, stop)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf + 2
    return crlf + 3 if crlf >= 0 else None


class StreamFramer:
    """Feed bytes as they arrive; take out whole messages.

    Work is linear in the bytes fed: the search for the end of the header section resumes
    where the previous one stopped, and a frame's length is computed once.
    """

    __slots__ = ("_buffer", "_frame", "_limits", "_scanned")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._buffer = bytearray()
        self._limits = limits
        self._scanned = 0  # bytes of the buffer known to hold no end of headers
        self._frame: int | None = None  # length of the message at the front, once known

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete message (the transport times these out)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Framed]:
        """Take out every complete message; raise SipParseError (the transport must close)
        when the stream cannot be framed or an incomplete message outgrows the limit."""
        self._buffer += data
        out: list[Framed] = []
        while True:
            item = self._next()
            if item is None:
                break
            out.append(item)
        # One read may carry many whole messages; only the incomplete rest is bounded.
        if len(self._buffer) > self._limits.max_message_size:
            raise MessageTooLarge("incomplete message over limit")
        return out

    def _next(self) -> Framed | None:
        buf = self._buffer
        if self._frame is None:
            if buf.startswith(b"\r\n\r\n"):
                del buf[:4]
                return KeepAliveReceived()
            # A lone CRLF is a pong or a stray line ending between messages (§7.5: ignore).
            while buf.startswith(b"\r\n") and len(buf) >= 4 and not buf.startswith(b"\r\n\r\n"):
                del buf[:2]
                self._scanned = 0
            if buf.startswith(b"\r\n\r\n"):
                return self._next()
            if len(buf) < 4:
                return None
            limit = self._limits.max_message_size
            body_at = _head_end(buf, max(0, self._scanned - 2), limit + 3)
            if body_at is None:
                self._scanned = len(buf)
                if len(buf) > limit:
                    raise MessageTooLarge("header section over limit")
                return None
            length = _declared_length(bytes(buf[:body_at]))
            if body_at + length > limit:
                raise MessageTooLarge("message over limit")
            self._frame = body_at + length
        if len(buf) < self._frame:
            return None
        frame = bytes(buf[: self._frame])
        del buf[: self._frame]
        self._frame = None
        self._scanned = 0
        try:
            return parse_message(frame, limits=self._limits, datagram=False)
        except SipParseError as exc:
            return MessageRejected(error=exc)
