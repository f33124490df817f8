"""Real messages for transaction tests, parsed from bytes as they would arrive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callcenter.sip import Request, Response, make_response, parse_message
from callcenter.sip.transaction import Transaction, build_ack


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK776asdhds",
    sent_by: str = "pc33.atlanta.com",
    uri: str = "sip:bob@biloxi.com",
    cseq: int = 314159,
    to_tag: str | None = None,
    from_tag: str = "1928301774",
    call_id: str = "a84b4c76e66710@pc33.atlanta.com",
    routes: tuple[str, ...] = (),
    extra_vias: tuple[str, ...] = (),
    body: bytes = b"",
) -> Request:
    branch_param = "" if branch is None else f";branch={branch}"
    to = "Bob <sip:bob@biloxi.com>" + ("" if to_tag is None else f";tag={to_tag}")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {sent_by}{branch_param}",
        *(f"Via: {via}" for via in extra_vias),
        "Max-Forwards: 70",
        *(f"Route: {route}" for route in routes),
        f"To: {to}",
        f"From: Alice <sip:alice@atlanta.com>;tag={from_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@pc33.atlanta.com>",
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    message = parse_message("\r\n".join(lines).encode() + body)
    assert isinstance(message, Request)
    return message


def response(req: Request, status: int, *, to_tag: str | None = "a6c85cf") -> Response:
    """The response a UAS builds, serialised and parsed again as the client receives it."""
    built = make_response(req, status, to_tag=None if status == 100 else to_tag)
    parsed = parse_message(bytes(built))
    assert isinstance(parsed, Response)
    return parsed


def ack_for(req: Request, resp: Response) -> Request:
    """An ACK as a peer's client transaction sends it for a non-2xx final response."""
    parsed = parse_message(bytes(build_ack(req, resp)))
    assert isinstance(parsed, Request)
    return parsed


def counter_token() -> Callable[[], str]:
    """A deterministic random source for branches: t1, t2, t3 ..."""
    count = 0

    def token() -> str:
        nonlocal count
        count += 1
        return f"t{count}"

    return token


def run_timers(transaction: Transaction[Any, Any], until: float) -> list[tuple[float, object]]:
    """Step a fake clock from deadline to deadline; log what each firing produced."""
    log: list[tuple[float, object]] = []
    while (deadline := transaction.get_timer()) is not None and deadline <= until:
        transaction.handle_timer(deadline)
        log.extend((deadline, out) for out in transaction.data_to_send())
        log.extend((deadline, event) for event in transaction.next_events())
    return log
