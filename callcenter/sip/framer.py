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


class StreamFramer:
    """Feed bytes as they arrive; take out whole messages."""

    __slots__ = ("_buffer", "_limits")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._buffer = bytearray()
        self._limits = limits

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete message (the transport times these out)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Framed]:
        self._buffer += data
        if len(self._buffer) > 2 * self._limits.max_message_size:
            raise MessageTooLarge("stream buffer over limit")
        out: list[Framed] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> Framed | None:
        buf = self._buffer
        if buf.startswith(b"\r\n\r\n"):
            del buf[:4]
            return KeepAliveReceived()
        # A lone CRLF is a pong or stray line ending between messages (§7.5: ignore).
        while buf.startswith(b"\r\n") and len(buf) >= 4:
            del buf[:2]
        if len(buf) < 4:
            return None
        limit = self._limits.max_message_size
        end = buf.find(b"\r\n\r\n", 0, limit + 4)
        if end < 0:
            if len(buf) > limit:
                raise MessageTooLarge("header section over limit")
            return None
        body_at = end + 4
        length = _declared_length(bytes(buf[:end]))
        if body_at + length > limit:
            raise MessageTooLarge("message over limit")
        if len(buf) < body_at + length:
            return None
        frame = bytes(buf[: body_at + length])
        del buf[: body_at + length]
        try:
            return parse_message(frame, limits=self._limits, datagram=False)
        except SipParseError as exc:
            return MessageRejected(error=exc)
