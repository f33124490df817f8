"""Requests derived from an original request: the ACK for a non-2xx final response
(RFC 3261 §17.1.1.3) and CANCEL (§9.1).

Owns: which fields are copied from where. Must not know: transactions, dialogs (the ACK for
a 2xx belongs to the dialog, §13.2.2.4) or transports.
"""

from __future__ import annotations

from ..errors import LocalProtocolError
from ..headers import Headers
from ..message import CSeq, Request, Response


def _hop_headers(original: Request) -> Headers:
    """The single top Via (equal to the original's, so the ACK/CANCEL matches the same server
    transaction) and the original's Route set (so stateless proxies route it the same way)."""
    vias = original.headers.values("via")
    if not vias:
        raise LocalProtocolError("the original request has no Via")
    headers = Headers()
    headers.add("Via", vias[0])
    headers.add("Max-Forwards", "70")
    for route in original.headers.fields("route"):
        headers.add("Route", route)
    return headers


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 300-699 response (§17.1.1.3).

    Request-URI, Call-ID and From as in the INVITE; To from the response (with its tag); CSeq
    number of the INVITE with method ACK; no body (bodies in this ACK are NOT RECOMMENDED).
    """
    if invite.method != "INVITE":
        raise LocalProtocolError(f"only an INVITE is acknowledged, not {invite.method}")
    if response.success or response.provisional:
        raise LocalProtocolError("the transaction acknowledges only 300-699 responses")
    headers = _hop_headers(invite)
    headers.add("To", response.headers.get("to") or "")
    headers.add("From", invite.headers.get("from") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", str(CSeq(invite.cseq.seq, "ACK")))
    return Request("ACK", invite.uri, headers)


def build_cancel(request: Request) -> Request:
    """A CANCEL for `request` (§9.1): Request-URI, Call-ID, To, From and CSeq number as in the
    request, and its top Via, whose branch makes the CANCEL find the request at the server."""
    if request.method in ("ACK", "CANCEL"):
        raise LocalProtocolError(f"{request.method} cannot be cancelled")
    headers = _hop_headers(request)
    headers.add("To", request.headers.get("to") or "")
    headers.add("From", request.headers.get("from") or "")
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", str(CSeq(request.cseq.seq, "CANCEL")))
    return Request("CANCEL", request.uri, headers)
