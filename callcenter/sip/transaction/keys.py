"""Which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3, §9.2).

Owns: the matching keys and how they are computed from a message, including the RFC 2543
fallback for requests whose branch lacks the magic cookie. Must not know: transaction state,
time, or where messages came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..message import Message, Request


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientKey:
    """§17.1.3: a response matches a client transaction by the branch of its top Via and the
    method of its CSeq (the method tells a CANCEL apart from the INVITE it shares a branch with)."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerKey:
    """§17.2.3 for RFC 3261 clients: branch, sent-by of the top Via, and method (an ACK uses
    INVITE so that it finds the INVITE transaction; a CANCEL keeps its own method).

    The CSeq number is part of the key too. §17.2.3 does not need it, since a retransmission,
    the ACK for a non-2xx and a CANCEL all carry their INVITE's number anyway; but pyVoIP
    re-sends an authenticated INVITE with the same branch and CSeq + 1, which branch-only
    matching would swallow as a retransmission."""

    branch: str
    sent_by: tuple[str, int | None]
    method: str
    cseq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyAckKey:
    """§17.2.3 RFC 2543 fallback for ACK: like the INVITE's key without To tag and method; the
    To tag is then checked against the response the server transaction sent."""

    request_uri: str
    from_tag: str | None
    call_id: str
    cseq: int
    top_via: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyServerKey:
    """§17.2.3 RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq and top Via."""

    request_uri: str
    to_tag: str | None
    from_tag: str | None
    call_id: str
    cseq: int
    method: str
    top_via: str

    def ack_key(self) -> LegacyAckKey:
        return LegacyAckKey(
            request_uri=self.request_uri,
            from_tag=self.from_tag,
            call_id=self.call_id,
            cseq=self.cseq,
            top_via=self.top_via,
        )


ServerTransactionKey = ServerKey | LegacyServerKey
TransactionKey = ClientKey | ServerKey | LegacyServerKey


def client_key(message: Message) -> ClientKey | None:
    """The client transaction a request creates or a response belongs to; None without branch."""
    branch = message.top_via.branch
    if branch is None:
        return None
    return ClientKey(branch=branch, method=message.cseq.method)


def server_key(request: Request) -> ServerTransactionKey:
    """The server transaction of a request other than ACK (see `ack_key`)."""
    via = request.top_via
    if via.rfc3261_branch and via.branch is not None:
        return ServerKey(
            branch=via.branch,
            sent_by=(via.host.lower(), via.port),
            method=request.method,
            cseq=request.cseq.seq,
        )
    # No cookie, or the cookie alone (RFC 4475 badbranch): an RFC 2543 client.
    cseq = request.cseq
    return LegacyServerKey(
        request_uri=str(request.uri),
        to_tag=request.to_tag,
        from_tag=request.from_tag,
        call_id=request.call_id,
        cseq=cseq.seq,
        method=cseq.method,
        top_via=str(via),
    )


def ack_key(ack: Request) -> ServerKey | LegacyAckKey:
    """The INVITE server transaction an ACK may belong to (only an ACK for a non-2xx does)."""
    key = server_key(ack)
    if isinstance(key, ServerKey):
        return replace(key, method="INVITE")
    return key.ack_key()


def cancel_target(cancel: Request) -> ServerTransactionKey:
    """§9.2: the INVITE a CANCEL cancels matches as the CANCEL would, with method INVITE."""
    return replace(server_key(cancel), method="INVITE")
