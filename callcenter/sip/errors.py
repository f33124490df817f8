"""Errors of the SIP core: one base, split into the peer's faults and ours.

Like h11's `error_status_hint`, a peer's fault carries the status a UAS should answer with,
or None when the right action is to drop the message silently (a broken response, or a request
too broken to route a response back).
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by `callcenter.sip`."""


class SipParseError(SipError):
    """The peer sent something we cannot accept.

    `status` is the response a UAS should send (400, 505, 513 …) or None to drop.
    """

    def __init__(self, message: str, status: int | None = 400) -> None:
        super().__init__(message)
        self.status = status
        self.reason = message
        # The header fields as far as they were read, so a UAS can answer statelessly
        # (Via, From, To, Call-ID and CSeq are copied verbatim into the error response).
        self.fields: list[tuple[str, str]] | None = None


class MessageTooLarge(SipParseError):
    """The message exceeds a configured bound (513 Message Too Large)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=513)


class VersionNotSupported(SipParseError):
    """The SIP-Version is not SIP/2.0 (505 Version Not Supported)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=505)


class FramingError(SipParseError):
    """The byte stream cannot be split into messages; a stream transport must close."""


class LocalProtocolError(SipError):
    """We were asked to do something the protocol forbids (a bug on our side)."""
