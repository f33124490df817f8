"""Route sets, remote targets and where a request within a dialog goes.

RFC 3261 §12.1.1 (UAS: Record-Route of the request, in order), §12.1.2 (UAC: Record-Route of
the response, reversed) and §12.2.1.1 (loose routing when the first route has `lr`, strict
routing otherwise). Must not know dialog state or transports.
"""

from __future__ import annotations

from dataclasses import replace

from ..address import ContactStar
from ..errors import SipParseError
from ..message import Request, Response
from ..uri import SipUri

# Not allowed in a Request-URI (§19.1.1 table): the method parameter and URI headers.
_NOT_IN_REQUEST_URI = frozenset({"method"})


def _sip_uris(message: Request | Response, status: int | None) -> tuple[SipUri, ...]:
    out: list[SipUri] = []
    for addr in message.record_route:
        if not isinstance(addr.uri, SipUri):
            raise SipParseError("Record-Route with a non-SIP URI", status)
        out.append(addr.uri)
    return tuple(out)


def route_set_as_uas(request: Request) -> tuple[SipUri, ...]:
    """Record-Route of the request, in order, all URI parameters kept (§12.1.1)."""
    return _sip_uris(request, 400)


def route_set_as_uac(response: Response) -> tuple[SipUri, ...]:
    """Record-Route of the response in reverse order (§12.1.2)."""
    return tuple(reversed(_sip_uris(response, None)))


def contact_uri(message: Request | Response) -> SipUri | None:
    """The first Contact URI, None without Contact.

    Raises SipParseError (400 for a request, drop for a response) for `*` or a non-SIP URI:
    a remote target must be a SIP or SIPS URI (§8.1.1.8).
    """
    status = 400 if isinstance(message, Request) else None
    contacts = message.contacts
    if not contacts:
        return None
    first = contacts[0]
    if isinstance(first, ContactStar) or not isinstance(first.uri, SipUri):
        raise SipParseError("Contact must be one SIP or SIPS URI", status)
    return first.uri


def initial_remote_target(request: Request) -> SipUri | None:
    """The remote target a dialog-creating request gives us: its Contact, or for an RFC 2543
    peer (no magic cookie in its branch), which may omit Contact, its From URI (RFC 2543 §6.13).
    """
    target = contact_uri(request)
    if target is None and not request.top_via.rfc3261_branch:
        sender = request.from_addr.uri
        if isinstance(sender, SipUri):
            return request_uri_form(sender)
    return target


def request_uri_form(uri: SipUri) -> SipUri:
    """`uri` with what a Request-URI may not carry stripped (§12.2.1.1, §19.1.1)."""
    if not uri.headers and not any(k in _NOT_IN_REQUEST_URI for k, _ in uri.params):
        return uri
    kept = tuple((k, v) for k, v in uri.params if k not in _NOT_IN_REQUEST_URI)
    return replace(uri, params=kept, headers=())


def is_loose(route_set: tuple[SipUri, ...]) -> bool:
    return not route_set or route_set[0].has_param("lr")


def next_hop(remote_target: SipUri, route_set: tuple[SipUri, ...]) -> tuple[SipUri, list[SipUri]]:
    """The Request-URI and the Route values of a request within the dialog (§12.2.1.1).

    Loose: the remote target is the Request-URI and the route set is the Route. Strict: the
    first route (stripped) is the Request-URI, the Route is the rest followed by the remote
    target, so the last strict router can put it back.
    """
    if is_loose(route_set):
        return request_uri_form(remote_target), list(route_set)
    return request_uri_form(route_set[0]), [*route_set[1:], remote_target.without_headers()]
