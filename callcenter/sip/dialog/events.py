"""What the dialog layer tells the TU: events (past tense) and verdicts on peer requests.

Events report changes of dialog state; verdicts say what to do with a request from the peer
before the TU sees it (pass it on, answer it with an error, or neither). Must not send
anything: a `Rejected` builds its response, the caller sends it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..message import Request, Response, make_response
from ..uri import SipUri
from .state import DialogId, DialogState, Role


class TerminationReason(enum.Enum):
    BYE_SENT = "bye-sent"
    BYE_RECEIVED = "bye-received"
    REJECTED = "rejected"  # a non-2xx final response to the dialog-creating request
    TIMED_OUT = "timed-out"  # a 408, or no response at all (§12.2.1.2)
    NO_SUCH_DIALOG = "no-such-dialog"  # the peer answered 481 (§12.2.1.2)
    LOCAL = "local"  # the TU ended it: fork given up, subscription over, ACK never came


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogEstablished:
    """A dialog came into being, early (1xx with To tag) or straight away confirmed (2xx)."""

    dialog_id: DialogId
    role: Role
    state: DialogState


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogConfirmed:
    """The dialog became confirmed; emitted exactly once, also right after a
    `DialogEstablished` when a 2xx created the dialog."""

    dialog_id: DialogId


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogTerminated:
    dialog_id: DialogId
    reason: TerminationReason


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetRefreshed:
    """A target refresh request or its 2xx replaced the remote target (§12.2)."""

    dialog_id: DialogId
    remote_target: SipUri


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogAckReceived:
    """The ACK for a 2xx we sent arrived: stop retransmitting that 2xx (§13.3.1.4)."""

    dialog_id: DialogId
    cseq: int


DialogEvent = (
    DialogEstablished | DialogConfirmed | DialogTerminated | TargetRefreshed | DialogAckReceived
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """Pass the request on to the TU, which answers it; `events` say what it changed."""

    events: tuple[DialogEvent, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """Answer the request with `response(request)` and do not pass it on."""

    status: int
    reason: str | None = None
    retry_after: int | None = None  # seconds, sent as Retry-After

    def response(self, request: Request, *, to_tag: str | None = None) -> Response:
        """The error response; a request outside a dialog wants a fresh `to_tag` (§8.2.6.2),
        one inside keeps its own."""
        response = make_response(request, self.status, self.reason, to_tag=to_tag)
        if self.retry_after is not None:
            response.headers.add("Retry-After", str(self.retry_after))
        return response


@dataclass(frozen=True, slots=True, kw_only=True)
class Ignored:
    """Neither answer nor pass on (an ACK is never answered, §17.2.3)."""

    why: str


Verdict = Accepted | Rejected | Ignored


def no_such_dialog(request: Request) -> Rejected | Ignored:
    """The verdict for an in-dialog request (To tag present) that matches no dialog (§12.2.2):
    481 Call/Transaction Does Not Exist, except that a stray ACK is dropped."""
    if request.method == "ACK":
        return Ignored(why="ACK for no dialog")
    return Rejected(status=481)
