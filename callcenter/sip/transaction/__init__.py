"""SIP transactions (RFC 3261 §17, RFC 6026): four table-driven machines and the layer
that matches messages to them.

Sans-IO and synchronous: time is the `now` argument of every call, the next deadline is asked
for with `get_timer()`, outputs are drained with `next_events()` and `data_to_send()`. Must
not know sockets, addresses, dialogs or a clock.
"""

from .base import Transaction
from .client import (
    INVITE_CLIENT,
    NON_INVITE_CLIENT,
    InviteClientInput,
    InviteClientState,
    InviteClientTransaction,
    NonInviteClientInput,
    NonInviteClientState,
    NonInviteClientTransaction,
)
from .construct import build_ack, build_cancel
from .events import (
    AckReceived,
    RequestReceived,
    RequestRefused,
    ResponseReceived,
    StrayResponseReceived,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimedOut,
    Transmission,
    TransportErrorOccurred,
)
from .keys import (
    ClientKey,
    LegacyAckKey,
    LegacyServerKey,
    ServerKey,
    ServerTransactionKey,
    TransactionKey,
    ack_key,
    cancel_target,
    client_key,
    server_key,
)
from .layer import AnyTransaction, Disposition, TransactionLayer
from .machine import Action, MachineSpec, StateMachine, Transition
from .server import (
    INVITE_SERVER,
    NON_INVITE_SERVER,
    InviteServerInput,
    InviteServerState,
    InviteServerTransaction,
    NonInviteServerInput,
    NonInviteServerState,
    NonInviteServerTransaction,
)
from .timers import DEFAULT_TIMERS, Timer, TimerConfig, timer_values

__all__ = [
    "DEFAULT_TIMERS",
    "INVITE_CLIENT",
    "INVITE_SERVER",
    "NON_INVITE_CLIENT",
    "NON_INVITE_SERVER",
    "AckReceived",
    "Action",
    "AnyTransaction",
    "ClientKey",
    "Disposition",
    "InviteClientInput",
    "InviteClientState",
    "InviteClientTransaction",
    "InviteServerInput",
    "InviteServerState",
    "InviteServerTransaction",
    "LegacyAckKey",
    "LegacyServerKey",
    "MachineSpec",
    "NonInviteClientInput",
    "NonInviteClientState",
    "NonInviteClientTransaction",
    "NonInviteServerInput",
    "NonInviteServerState",
    "NonInviteServerTransaction",
    "RequestReceived",
    "RequestRefused",
    "ResponseReceived",
    "ServerKey",
    "ServerTransactionKey",
    "StateMachine",
    "StrayResponseReceived",
    "Timer",
    "TimerConfig",
    "Transaction",
    "TransactionEvent",
    "TransactionKey",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimedOut",
    "Transition",
    "Transmission",
    "TransportErrorOccurred",
    "ack_key",
    "build_ack",
    "build_cancel",
    "cancel_target",
    "client_key",
    "server_key",
    "timer_values",
]
