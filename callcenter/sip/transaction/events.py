"""What the transaction layer tells its user: past-tense events, and messages to transmit.

Owns: the event records and the transmission record. Must not know: addresses (the engine
maps a transaction key to the destination), sockets, or dialogs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..message import Request, Response
from .keys import ClientKey, ServerTransactionKey, TransactionKey
from .timers import Timer


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new server transaction was created for `request` (retransmissions are absorbed)."""

    transaction: ServerTransactionKey
    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """An ACK for the TU: one matching no transaction (the ACK for a 2xx, `transaction` None)
    or one an INVITE server transaction passed up in the Accepted state (RFC 6026)."""

    transaction: ServerTransactionKey | None
    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A client transaction passed a response up (every 2xx in Accepted, per RFC 6026)."""

    transaction: ClientKey
    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class StrayResponseReceived:
    """A response matching no client transaction (RFC 6026 §8.9: e.g. a late forked 2xx)."""

    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """Timer B, F (no final response) or H (no ACK) fired."""

    transaction: TransactionKey
    timer: Timer


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportErrorOccurred:
    """The engine reported that a message of this transaction could not be sent."""

    transaction: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTerminated:
    """The transaction reached Terminated and was destroyed; its key may be reused."""

    transaction: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRefused:
    """Too many transactions: no server transaction was created; the TU should answer
    statelessly with `status` (503, RFC 3261 §21.5.4) or drop the request."""

    request: Request
    status: int = 503


TransactionEvent = (
    RequestReceived
    | AckReceived
    | ResponseReceived
    | StrayResponseReceived
    | TransactionTimedOut
    | TransportErrorOccurred
    | TransactionTerminated
    | RequestRefused
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transmission:
    """A message to pass to the transport. `data` is serialised once per message, so every
    retransmission is byte-identical (RFC 3261 §17.1.1.2)."""

    transaction: TransactionKey
    message: Request | Response
    data: bytes
    retransmission: bool
