"""The transaction layer: finds, creates and destroys transactions (RFC 3261 §17.1.3, §17.2.3).

Owns: matching messages to transactions, creating server transactions for new requests (within
a bound), fresh branches for client transactions, one timer for all transactions, and the
merged output queues. Must not know: sockets or addresses (outputs carry the transaction key;
the engine knows where that transaction's messages go), dialogs, or a clock.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import secrets
from collections.abc import Callable

from ..errors import LocalProtocolError, SipParseError
from ..message import Request, Response
from ..via import MAGIC_COOKIE
from .client import InviteClientTransaction, NonInviteClientTransaction
from .events import (
    AckReceived,
    RequestRefused,
    StrayResponseReceived,
    TransactionEvent,
    Transmission,
)
from .keys import (
    ClientKey,
    LegacyAckKey,
    LegacyServerKey,
    ServerTransactionKey,
    TransactionKey,
    ack_key,
    cancel_target,
    client_key,
    server_key,
)
from .server import InviteServerTransaction, NonInviteServerTransaction
from .timers import DEFAULT_TIMERS, TimerConfig

ClientTransaction = InviteClientTransaction | NonInviteClientTransaction
ServerTransaction = InviteServerTransaction | NonInviteServerTransaction
AnyTransaction = ClientTransaction | ServerTransaction


class Disposition(enum.Enum):
    """What became of a received message."""

    NEW_TRANSACTION = "a server transaction was created; RequestReceived was emitted"
    MATCHED = "an existing transaction acted on it"
    ABSORBED = "an existing transaction absorbed it (a retransmission or a late message)"
    UNMATCHED = "no transaction: passed to the TU as StrayResponseReceived or AckReceived"
    REFUSED = "too many transactions: RequestRefused was emitted"


def random_token() -> str:
    # 96 random bits: the branch must be unique across space and time (§8.1.1.7).
    return secrets.token_hex(12)


class TransactionLayer:
    """All transactions of one SIP endpoint, behind one h11/aioquic-style interface.

    Feed it with `send_request`, `send_response`, `receive_request`, `receive_response`,
    `handle_transport_error` and `handle_timer(now)`; after each call drain `next_events()`
    (for the TU) and `data_to_send()` (for the engine), and ask `get_timer()` when to call
    `handle_timer` again. Terminated transactions are removed as soon as they terminate.

    `max_transactions` bounds the live transactions; past it, new *server* transactions are
    refused (RequestRefused, answer 503). Client transactions are never refused: the TU must
    stay able to send CANCEL and BYE while shedding load.
    """

    def __init__(
        self,
        *,
        config: TimerConfig = DEFAULT_TIMERS,
        max_transactions: int = 10_000,
        random_token: Callable[[], str] = random_token,
    ) -> None:
        self.config = config
        self.max_transactions = max_transactions
        self._random_token = random_token
        self._clients: dict[ClientKey, ClientTransaction] = {}
        self._servers: dict[ServerTransactionKey, ServerTransaction] = {}
        # RFC 2543 ACKs carry the To tag of our response, not of the INVITE (§17.2.3).
        self._legacy_acks: dict[LegacyAckKey, InviteServerTransaction] = {}
        self._events: list[TransactionEvent] = []
        self._outgoing: list[Transmission] = []
        # One heap for every transaction's next deadline; an entry is current only while it
        # equals _scheduled[key], so rescheduling never has to search the heap.
        self._heap: list[tuple[float, int, TransactionKey]] = []
        self._scheduled: dict[TransactionKey, float] = {}
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._clients) + len(self._servers)

    # -- client side ----------------------------------------------------------------------

    def new_branch(self) -> str:
        """A branch for a new client transaction (or a 2xx ACK, which the dialog sends)."""
        return MAGIC_COOKIE + self._random_token()

    def send_request(self, request: Request, now: float, *, reliable: bool) -> ClientKey:
        """Start a client transaction. A top Via without branch gets a fresh one (the request
        is updated in place); a CANCEL must already carry the branch of what it cancels."""
        if request.method == "ACK":
            raise LocalProtocolError(
                "ACK is not a client transaction: a non-2xx ACK is sent by the INVITE "
                "transaction, a 2xx ACK by the dialog"
            )
        self._ensure_branch(request)
        key = client_key(request)
        if key is None:  # pragma: no cover - _ensure_branch guarantees a branch
            raise LocalProtocolError("no branch")
        if key in self._clients:
            raise LocalProtocolError(f"a client transaction {key} already exists")
        transaction: ClientTransaction
        if request.method == "INVITE":
            transaction = InviteClientTransaction(
                request, reliable=reliable, config=self.config, key=key
            )
        else:
            transaction = NonInviteClientTransaction(
                request, reliable=reliable, config=self.config, key=key
            )
        self._clients[key] = transaction
        try:
            transaction.send_request(now)
        finally:
            self._collect(transaction)
        return key

    def receive_response(self, response: Response, now: float) -> Disposition:
        """§17.1.3: match by top-Via branch and CSeq method, else report a stray response."""
        try:
            key = client_key(response)
        except SipParseError:
            key = None
        transaction = None if key is None else self._clients.get(key)
        if transaction is None:
            self._events.append(StrayResponseReceived(response=response))
            return Disposition.UNMATCHED
        try:
            acted = transaction.receive_response(response, now)
        finally:
            self._collect(transaction)
        return Disposition.MATCHED if acted else Disposition.ABSORBED

    def abandon(self, key: ClientKey, now: float) -> bool:
        """Destroy an INVITE client transaction still waiting for a final response (§9.1)."""
        transaction = self._clients.get(key)
        if not isinstance(transaction, InviteClientTransaction):
            return False
        try:
            return transaction.abandon(now)
        finally:
            self._collect(transaction)

    # -- server side ----------------------------------------------------------------------

    def receive_request(self, request: Request, now: float, *, reliable: bool) -> Disposition:
        """§17.2.3: absorb retransmissions, route ACKs for non-2xx to their INVITE, pass
        other ACKs to the TU, and create a server transaction for anything new."""
        if request.method == "ACK":
            return self._receive_ack(request, now)
        key = server_key(request)
        existing = self._servers.get(key)
        if existing is not None:
            try:
                acted = existing.receive_request(request, now)
            finally:
                self._collect(existing)
            return Disposition.MATCHED if acted else Disposition.ABSORBED
        if len(self) >= self.max_transactions:
            self._events.append(RequestRefused(request=request))
            return Disposition.REFUSED
        transaction: ServerTransaction
        if request.method == "INVITE":
            transaction = InviteServerTransaction(
                request, reliable=reliable, config=self.config, key=key
            )
            if isinstance(key, LegacyServerKey):
                self._legacy_acks[key.ack_key()] = transaction
        else:
            transaction = NonInviteServerTransaction(
                request, reliable=reliable, config=self.config, key=key
            )
        self._servers[key] = transaction
        try:
            transaction.receive_request(request, now)
        finally:
            self._collect(transaction)
        return Disposition.NEW_TRANSACTION

    def _receive_ack(self, ack: Request, now: float) -> Disposition:
        key = ack_key(ack)
        transaction: ServerTransaction | None
        if isinstance(key, LegacyAckKey):
            transaction = self._legacy_acks.get(key)
            sent = None if transaction is None else transaction.last_response
            if sent is None or sent.to_tag != ack.to_tag:
                transaction = None
        else:
            transaction = self._servers.get(key)
        if transaction is None:
            # The ACK for a 2xx is its own transaction-less request: the dialog takes it.
            self._events.append(AckReceived(transaction=None, request=ack))
            return Disposition.UNMATCHED
        try:
            acted = transaction.receive_request(ack, now)
        finally:
            self._collect(transaction)
        return Disposition.MATCHED if acted else Disposition.ABSORBED

    def send_response(self, key: ServerTransactionKey, response: Response, now: float) -> bool:
        """Pass the TU's response to its server transaction. False: discarded by the table."""
        transaction = self._servers.get(key)
        if transaction is None:
            raise LocalProtocolError(f"no server transaction {key}")
        try:
            return transaction.send_response(response, now)
        finally:
            self._collect(transaction)

    def find_invite(self, cancel: Request) -> ServerTransactionKey | None:
        """The INVITE server transaction a CANCEL targets (§9.2), or None (answer 481)."""
        key = cancel_target(cancel)
        found = self._servers.get(key)
        return key if isinstance(found, InviteServerTransaction) else None

    # -- both -------------------------------------------------------------------------------

    def transaction(self, key: TransactionKey) -> AnyTransaction | None:
        if isinstance(key, ClientKey):
            return self._clients.get(key)
        return self._servers.get(key)

    def handle_transport_error(self, key: TransactionKey, now: float) -> bool:
        """The engine failed to send a message of `key`; False if nothing cared."""
        transaction = self.transaction(key)
        if transaction is None:
            return False
        try:
            return transaction.handle_transport_error(now)
        finally:
            self._collect(transaction)

    def get_timer(self) -> float | None:
        """The earliest deadline of all transactions, or None."""
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            if self._scheduled.get(key) == deadline:
                return deadline
            heapq.heappop(heap)  # stale: that transaction was rescheduled or destroyed
        return None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            if self._scheduled.get(key) != deadline:
                continue
            del self._scheduled[key]
            transaction = self.transaction(key)
            if transaction is None:  # pragma: no cover - removal also unschedules
                continue
            try:
                transaction.handle_timer(now)
            finally:
                self._collect(transaction)

    def next_events(self) -> list[TransactionEvent]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[Transmission]:
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    # -- internals ------------------------------------------------------------------------

    def _ensure_branch(self, request: Request) -> None:
        via = request.top_via
        if via.branch is None:
            request.headers.replace_first_value(
                "Via", str(via.with_param("branch", self.new_branch()))
            )
        elif not via.rfc3261_branch:
            raise LocalProtocolError(f"branch {via.branch!r} lacks the magic cookie")

    def _collect(self, transaction: AnyTransaction) -> None:
        """Move the transaction's outputs to ours, reschedule it, destroy it if terminated."""
        self._outgoing.extend(transaction.data_to_send())
        self._events.extend(transaction.next_events())
        key = transaction.key
        if transaction.terminated:
            self._remove(transaction)
            return
        deadline = transaction.get_timer()
        if deadline is None:
            self._scheduled.pop(key, None)
        elif self._scheduled.get(key) != deadline:
            self._scheduled[key] = deadline
            heapq.heappush(self._heap, (deadline, next(self._sequence), key))

    def _remove(self, transaction: AnyTransaction) -> None:
        key = transaction.key
        self._scheduled.pop(key, None)
        if isinstance(key, ClientKey):
            if self._clients.get(key) is transaction:
                del self._clients[key]
            return
        if self._servers.get(key) is transaction:
            del self._servers[key]
        if isinstance(key, LegacyServerKey):
            ack = key.ack_key()
            if self._legacy_acks.get(ack) is transaction:
                del self._legacy_acks[ack]
