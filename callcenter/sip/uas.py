"""The general UAS checks of RFC 3261 §8.2 that need no state: method, URI scheme,
extensions, content type and acceptable response bodies.

The engine runs these before a request reaches a transaction user; each failing check yields
the response to send. What needs state (481 for unknown dialogs, 482 merged requests, 401
challenges) lives in the dialog layer, the transaction layer and the registrar.
"""

from __future__ import annotations

from dataclasses import dataclass

from .message import Request, Response, make_response
from .uri import SipUri

# Methods defined by RFC 3261 and the extensions a PBX meets; a method outside this set is
# unknown (501), one inside it but not allowed by the policy is known-but-refused (405).
KNOWN_METHODS: frozenset[str] = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)

# Methods whose requests may carry a session description we must understand.
_SESSION_METHODS = frozenset({"INVITE", "UPDATE", "PRACK", "ACK"})


@dataclass(frozen=True, slots=True, kw_only=True)
class UasPolicy:
    allowed_methods: tuple[str, ...] = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER")
    supported: frozenset[str] = frozenset()
    uri_schemes: frozenset[str] = frozenset({"sip", "sips", "tel"})
    content_types: frozenset[str] = frozenset({"application/sdp"})
    content_encodings: frozenset[str] = frozenset({"identity"})

    @property
    def allow_header(self) -> str:
        return ", ".join(self.allowed_methods)


def _optional_body(request: Request) -> bool:
    """Content-Disposition `handling=optional` (§20.11): a body we may ignore, such as the
    ISUP a SIP-I/SIP-T carrier attaches to a BYE, never earns a 415 (§8.2.3)."""
    disposition = request.headers.get("content-disposition")
    if disposition is None:
        return False
    params = disposition.lower().replace(" ", "").replace("\t", "").split(";")[1:]
    return "handling=optional" in params


def check_request(
    request: Request, policy: UasPolicy, *, to_tag: str | None = None
) -> Response | None:
    """The response rejecting `request`, or None when it passes every §8.2 check.

    Order follows §8.2: method (§8.2.1), then headers (§8.2.2), then content (§8.2.3).
    ACK is never answered, so it is never rejected here.
    """
    method = request.method
    if method == "ACK":
        return None
    if method not in policy.allowed_methods:
        status = 405 if method in KNOWN_METHODS else 501
        response = make_response(request, status, to_tag=to_tag)
        response.headers.add("Allow", policy.allow_header)
        return response
    if request.uri.scheme not in policy.uri_schemes:
        return make_response(request, 416, to_tag=to_tag)
    if method == "REGISTER" and not isinstance(request.to_addr.uri, SipUri):
        # §10.3 step 3: the address-of-record in To must be a SIP or SIPS URI.
        return make_response(request, 400, "To must be a SIP or SIPS URI", to_tag=to_tag)
    if method != "CANCEL":
        unsupported = [t for t in request.option_tags("require") if t not in policy.supported]
        if unsupported:
            response = make_response(request, 420, to_tag=to_tag)
            response.headers.add("Unsupported", ", ".join(unsupported))
            return response
    if request.body and not _optional_body(request):
        content_type = request.content_type
        encodings = [e.lower() for e in request.option_tags("content-encoding")]
        if content_type not in policy.content_types or any(
            e not in policy.content_encodings for e in encodings
        ):
            response = make_response(request, 415, to_tag=to_tag)
            response.headers.add("Accept", ", ".join(sorted(policy.content_types)))
            response.headers.add("Accept-Encoding", ", ".join(sorted(policy.content_encodings)))
            return response
    if method in _SESSION_METHODS and "accept" in request.headers:
        accepted = [a.split(";", 1)[0].strip().lower() for a in request.headers.values("accept")]
        if not any(a in ("application/sdp", "application/*", "*/*") for a in accepted if a):
            # §21.4.7 with the Warning §20.43 asks for when the reason is a media type.
            response = make_response(request, 406, to_tag=to_tag)
            response.headers.add("Warning", '399 - "application/sdp is required"')
            return response
    return None
