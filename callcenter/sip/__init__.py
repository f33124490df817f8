"""The sans-IO SIP core: messages, URIs, SDP, transactions, dialogs and digest auth.

Bytes in, events out, bytes to send out; time is a `now` argument. Must not import asyncio,
socket, time, logging configuration or the database.
"""

from .address import ContactStar, NameAddr, parse_contact, parse_name_addr
from .errors import (
    FramingError,
    LocalProtocolError,
    MessageTooLarge,
    SipError,
    SipParseError,
    VersionNotSupported,
)
from .headers import Headers
from .limits import DEFAULT_LIMITS, Limits
from .message import CSeq, Message, Request, Response, make_response
from .parser import parse_message
from .uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from .via import MAGIC_COOKIE, Via, parse_via

__all__ = [
    "DEFAULT_LIMITS",
    "MAGIC_COOKIE",
    "AbsoluteUri",
    "CSeq",
    "ContactStar",
    "FramingError",
    "Headers",
    "Limits",
    "LocalProtocolError",
    "Message",
    "MessageTooLarge",
    "NameAddr",
    "Request",
    "Response",
    "SipError",
    "SipParseError",
    "SipUri",
    "TelUri",
    "Uri",
    "VersionNotSupported",
    "Via",
    "make_response",
    "parse_contact",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
]
