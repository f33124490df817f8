"""SIP dialogs (RFC 3261 §12) and what INVITE, re-INVITE and BYE need of them (§13–§15).

Owns: dialog IDs, the early → confirmed → terminated table, route sets and remote targets,
local and remote CSeq, requests within a dialog (loose and strict routing) and 2xx ACKs,
judging the peer's in-dialog requests (500 out of order, 481 no dialog, 491/500 overlapping
INVITEs), and a registry keyed by dialog ID that keeps forks apart.

Must not know: Via and branch (the transaction layer prepends the Via of every request built
here), clocks and timers (timeouts arrive as calls; randomness is injected), sockets, SDP and
offer/answer, computing credentials, or what a call means to the TU.
"""

from .dialog import Dialog
from .dialogs import Dialogs
from .events import (
    Accepted,
    DialogAckReceived,
    DialogConfirmed,
    DialogEstablished,
    DialogEvent,
    DialogTerminated,
    Ignored,
    Rejected,
    TargetRefreshed,
    TerminationReason,
    Verdict,
    no_such_dialog,
)
from .routing import next_hop, request_uri_form, route_set_as_uac, route_set_as_uas
from .rules import (
    DIALOG_CREATING,
    MAX_FORWARDS,
    TARGET_REFRESH,
    RandomFloat,
    build_response,
    creates_dialog,
    glare_retry_after,
    random_tag,
)
from .state import TRANSITIONS, DialogId, DialogInput, DialogState, Role, next_state

__all__ = [
    "DIALOG_CREATING",
    "MAX_FORWARDS",
    "TARGET_REFRESH",
    "TRANSITIONS",
    "Accepted",
    "Dialog",
    "DialogAckReceived",
    "DialogConfirmed",
    "DialogEstablished",
    "DialogEvent",
    "DialogId",
    "DialogInput",
    "DialogState",
    "DialogTerminated",
    "Dialogs",
    "Ignored",
    "RandomFloat",
    "Rejected",
    "Role",
    "TargetRefreshed",
    "TerminationReason",
    "Verdict",
    "build_response",
    "creates_dialog",
    "glare_retry_after",
    "next_hop",
    "next_state",
    "no_such_dialog",
    "random_tag",
    "request_uri_form",
    "route_set_as_uac",
    "route_set_as_uas",
]
