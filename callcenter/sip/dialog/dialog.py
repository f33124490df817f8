"""One dialog: the peer-to-peer relationship two UAs keep between requests (RFC 3261 §12–§15).

Owns the dialog state (ID, role, early/confirmed/terminated, local and remote CSeq, local and
remote URI, remote target, route set, secure flag), building requests within the dialog
(§12.2.1.1) and the ACK of a 2xx (§13.2.2.4), judging the peer's requests (§12.2.2 CSeq order
and target refresh, §14 overlapping INVITEs, §15 BYE) and applying responses (§12.1.2,
§12.2.1.2, §13.2.2). Randomness is injected; nothing here reads a clock.

Must not know: Via and branch (the transaction layer prepends the Via to every request built
here, the ACK of a 2xx included), timers (a timeout arrives as a call), sockets, SDP and
offer/answer, how credentials are computed, or what the call means to the TU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..address import NameAddr
from ..errors import LocalProtocolError, SipParseError
from ..headers import Headers, normalize_name
from ..message import CSeq, Request, Response
from ..uri import SipUri, Uri
from .events import (
    Accepted,
    DialogAckReceived,
    DialogConfirmed,
    DialogEvent,
    DialogTerminated,
    Ignored,
    Rejected,
    TargetRefreshed,
    TerminationReason,
    Verdict,
)
from .routing import (
    contact_uri,
    initial_remote_target,
    next_hop,
    route_set_as_uac,
    route_set_as_uas,
)
from .rules import (
    MAX_CSEQ,
    MAX_FORWARDS,
    TARGET_REFRESH,
    Fields,
    RandomFloat,
    build_response,
    creates_dialog,
    glare_retry_after,
    set_body,
    system_random,
)
from .state import DialogId, DialogInput, DialogState, Role, next_state

_CREDENTIALS = frozenset({"authorization", "proxy-authorization"})


def _without_tag(addr: NameAddr) -> NameAddr:
    return replace(addr, params=tuple((k, v) for k, v in addr.params if k != "tag"))


def _our_contact(message: Request | Response) -> NameAddr | None:
    for contact in message.contacts:
        if isinstance(contact, NameAddr):
            return contact
    return None


def _credentials(request: Request) -> Fields:
    return tuple((n, v) for n, v in request.headers if normalize_name(n) in _CREDENTIALS)


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.secure


def _check_answers(request: Request, response: Response) -> None:
    if response.call_id != request.call_id or response.cseq != request.cseq:
        raise LocalProtocolError("the response does not answer this request")
    if request.to_tag is not None:
        raise LocalProtocolError("the request is already within a dialog")


class Dialog:
    """A dialog in one of three states; see the module note for what it does.

    Attributes are read-only for callers: change them through the methods, which keep the
    state table and the CSeq rules. `invite_pending_out` / `invite_pending_in` hold the CSeq
    of an INVITE transaction in progress that we sent / received (§14); `awaiting_ack` the
    CSeq of an INVITE whose 2xx we sent and whose ACK has not come.
    """

    __slots__ = (
        "_credentials",
        "_random",
        "awaiting_ack",
        "id",
        "initial_cseq",
        "invite_pending_in",
        "invite_pending_out",
        "local_addr",
        "local_contact",
        "local_seq",
        "remote_addr",
        "remote_seq",
        "remote_target",
        "role",
        "route_set",
        "secure",
        "state",
        "termination_reason",
    )

    def __init__(
        self,
        *,
        id: DialogId,
        role: Role,
        state: DialogState,
        local_seq: int | None,
        remote_seq: int | None,
        local_addr: NameAddr,
        remote_addr: NameAddr,
        remote_target: SipUri,
        route_set: tuple[SipUri, ...],
        secure: bool,
        local_contact: NameAddr,
        initial_cseq: CSeq,
        random: RandomFloat = system_random,
    ) -> None:
        if state is DialogState.TERMINATED:
            raise LocalProtocolError("a dialog starts early or confirmed")
        self.id = id
        self.role = role
        self.state: DialogState = state
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_addr = local_addr  # our From/To name-addr, without tag
        self.remote_addr = remote_addr
        self.remote_target = remote_target
        self.route_set = route_set
        self.secure = secure
        self.local_contact = local_contact
        self.initial_cseq = initial_cseq  # of the dialog-creating request
        self.invite_pending_out: int | None = None
        self.invite_pending_in: int | None = None
        self.awaiting_ack: int | None = None
        self.termination_reason: TerminationReason | None = None
        self._credentials: tuple[int, Fields] | None = None
        self._random = random

    def __repr__(self) -> str:
        return (
            f"<Dialog {self.role.name} {self.state.name} {self.id.call_id} "
            f"local={self.id.local_tag} remote={self.id.remote_tag}>"
        )

    # -- creation -----------------------------------------------------------------------

    @classmethod
    def create_uas(
        cls,
        request: Request,
        response: Response,
        *,
        local_contact: NameAddr | None = None,
        over_tls: bool = False,
        random: RandomFloat = system_random,
    ) -> Dialog:
        """The dialog our `response` (1xx with To tag, or 2xx) to the peer's `request` creates
        (§12.1.1). The local tag is the response's To tag, our Contact the response's unless
        given; `over_tls` says the request arrived over TLS (the secure flag needs a SIPS
        Request-URI too). A request without a usable Contact raises SipParseError(400)."""
        _check_answers(request, response)
        if not creates_dialog(request.method, response.status):
            raise LocalProtocolError(f"a {response.status} to {request.method} creates no dialog")
        local_tag = response.to_tag
        if not local_tag:
            raise LocalProtocolError("a dialog-creating response needs a To tag")
        contact = local_contact or _our_contact(response)
        if contact is None:
            raise LocalProtocolError("a dialog-creating response needs our Contact (§12.1.1)")
        remote_target = initial_remote_target(request)
        if remote_target is None:
            raise SipParseError("dialog-creating request without Contact", 400)
        seq = request.cseq.seq
        dialog = cls(
            id=DialogId(request.call_id, local_tag, request.from_tag or ""),
            role=Role.UAS,
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            local_seq=None,
            remote_seq=seq,
            local_addr=_without_tag(request.to_addr),
            remote_addr=_without_tag(request.from_addr),
            remote_target=remote_target,
            route_set=route_set_as_uas(request),
            secure=over_tls and _is_sips(request.uri),
            local_contact=contact,
            initial_cseq=request.cseq,
            random=random,
        )
        if request.method == "INVITE":
            if response.status < 200:
                dialog.invite_pending_in = seq
            else:
                dialog.awaiting_ack = seq
        return dialog

    @classmethod
    def create_uac(
        cls,
        request: Request,
        response: Response,
        *,
        over_tls: bool = False,
        random: RandomFloat = system_random,
    ) -> Dialog:
        """The dialog the peer's `response` to our `request` creates (§12.1.2): early for a
        1xx with To tag, confirmed for a 2xx (whose To tag may be missing, RFC 2543). Our
        Contact is the request's. A 2xx without a usable Contact raises SipParseError with
        status None (drop it); a 1xx without one targets the Request-URI until the 2xx."""
        _check_answers(request, response)
        status = response.status
        if not creates_dialog(request.method, status):
            raise LocalProtocolError(f"a {status} to {request.method} creates no dialog")
        if status < 200 and not response.to_tag:
            raise LocalProtocolError("a provisional response without To tag creates no dialog")
        local_tag = request.from_tag
        if not local_tag:
            raise LocalProtocolError("our request has no From tag")
        contact = _our_contact(request)
        if contact is None:
            raise LocalProtocolError("our dialog-creating request has no Contact")
        remote_target = contact_uri(response)
        if remote_target is None:
            if status >= 200 or not isinstance(request.uri, SipUri):
                raise SipParseError("dialog-creating response without Contact", None)
            remote_target = request.uri
        seq = request.cseq.seq
        dialog = cls(
            id=DialogId(request.call_id, local_tag, response.to_tag or ""),
            role=Role.UAC,
            state=DialogState.EARLY if status < 200 else DialogState.CONFIRMED,
            local_seq=seq,
            remote_seq=None,
            local_addr=_without_tag(request.from_addr),
            remote_addr=_without_tag(response.to_addr),
            remote_target=remote_target,
            route_set=route_set_as_uac(response),
            secure=over_tls and _is_sips(request.uri),
            local_contact=contact,
            initial_cseq=request.cseq,
            random=random,
        )
        if request.method == "INVITE":
            dialog._credentials = (seq, _credentials(request))
            if status < 200:
                dialog.invite_pending_out = seq
        return dialog

    # -- properties ---------------------------------------------------------------------

    @property
    def owns_call_id(self) -> bool:
        """We generated the Call-ID: we sent the dialog-creating request."""
        return self.role is Role.UAC

    @property
    def invite_pending(self) -> bool:
        """An INVITE transaction is in progress in this dialog, in either direction (§14.1)."""
        return self.invite_pending_out is not None or self.invite_pending_in is not None

    def retry_after_491(self) -> float:
        """Seconds to wait before retrying our re-INVITE that got 491 Request Pending."""
        return glare_retry_after(owns_call_id=self.owns_call_id, random=self._random)

    # -- requests we send ---------------------------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A request within the dialog (§12.2.1.1), without Via: the transaction layer
        prepends it. The CSeq is the next local one; target refresh requests carry our
        Contact. A BYE terminates the dialog at once (§15.1.1: the session ends when the BYE
        is handed to its transaction); the caller knows, so no event is returned."""
        if method == "ACK":
            raise LocalProtocolError("build the ACK of a 2xx with create_ack()")
        if method == "CANCEL":
            raise LocalProtocolError("a CANCEL copies the request it cancels (§9.1)")
        if self.state is DialogState.TERMINATED:
            raise LocalProtocolError(f"the dialog is terminated ({self.termination_reason})")
        if method == "BYE" and self.state is DialogState.EARLY and self.role is Role.UAS:
            raise LocalProtocolError("the callee must not send BYE on an early dialog (§15)")
        if method == "INVITE" and self.invite_pending:
            raise LocalProtocolError("an INVITE transaction is in progress in the dialog (§14.1)")
        seq = 1 if self.local_seq is None else self.local_seq + 1
        if seq > MAX_CSEQ:
            raise LocalProtocolError("local CSeq exhausted")
        request = self._build(
            CSeq(seq, method),
            body,
            content_type,
            tuple(extra_headers),
            contact=method in TARGET_REFRESH,
        )
        self.local_seq = seq
        if method == "INVITE":
            self.invite_pending_out = seq
            self._credentials = (seq, _credentials(request))
        elif method == "BYE":
            self._move(DialogInput.BYE, TerminationReason.BYE_SENT)
        return request

    def create_ack(
        self,
        invite_cseq: int | CSeq,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """The ACK of a 2xx to our INVITE (§13.2.2.4): built like any request in the dialog,
        but with the INVITE's CSeq number and credentials; the local CSeq does not move.
        Allowed after termination too: every 2xx is ACKed, even one that comes late."""
        if isinstance(invite_cseq, CSeq):
            if invite_cseq.method != "INVITE":
                raise LocalProtocolError("an ACK acknowledges an INVITE")
            seq = invite_cseq.seq
        else:
            seq = invite_cseq
        if self.local_seq is None or not 0 <= seq <= self.local_seq:
            raise LocalProtocolError(f"we sent no INVITE with CSeq {seq} in this dialog")
        if self.state is DialogState.EARLY:
            raise LocalProtocolError("only a 2xx is ACKed here, and a 2xx confirms the dialog")
        creds = self._credentials[1] if self._credentials and self._credentials[0] == seq else ()
        return self._build(
            CSeq(seq, "ACK"), body, content_type, (*creds, *extra_headers), contact=False
        )

    def _build(
        self,
        cseq: CSeq,
        body: bytes,
        content_type: str | None,
        extra: Fields,
        *,
        contact: bool,
    ) -> Request:
        uri, routes = next_hop(self.remote_target, self.route_set)
        headers = Headers()
        for route in routes:
            headers.add("Route", f"<{route}>")
        headers.add("Max-Forwards", str(MAX_FORWARDS))
        headers.add("From", str(self.local_addr.with_tag(self.id.local_tag)))
        remote = self.remote_addr
        if self.id.remote_tag:
            remote = remote.with_tag(self.id.remote_tag)
        headers.add("To", str(remote))
        headers.add("Call-ID", self.id.call_id)
        headers.add("CSeq", str(cseq))
        if contact:
            headers.add("Contact", str(self.local_contact))
        for name, value in extra:
            headers.add(name, value)
        request = Request(cseq.method, uri, headers)
        set_body(request, body, content_type)
        return request

    # -- responses to our requests ------------------------------------------------------

    def receive_response(self, response: Response) -> tuple[DialogEvent, ...]:
        """Apply the peer's response to a request we sent in this dialog, or to the request
        that created it. A 2xx to an INVITE must be ACKed (create_ack) every time it comes,
        retransmissions included; that is the caller's job. A 2xx without usable Contact
        raises SipParseError with status None (drop it)."""
        cseq = response.cseq
        status = response.status
        if cseq.method == "INVITE" and status >= 200 and self.invite_pending_out == cseq.seq:
            self.invite_pending_out = None
        if self.state is DialogState.TERMINATED:
            return ()
        if self.role is Role.UAC and cseq == self.initial_cseq:
            return self._initial_response(response)
        if status in (408, 481):  # §12.2.1.2: the dialog is gone
            reason = (
                TerminationReason.TIMED_OUT if status == 408 else TerminationReason.NO_SUCH_DIALOG
            )
            return self._move(DialogInput.ENDED, reason)
        if 200 <= status < 300 and cseq.method in TARGET_REFRESH:
            return self._refresh_target(contact_uri(response))
        return ()

    def _initial_response(self, response: Response) -> tuple[DialogEvent, ...]:
        status = response.status
        if status < 200:
            return self._move(DialogInput.PROVISIONAL)
        if status < 300:
            if self.state is DialogState.CONFIRMED:
                return ()  # a retransmission or a reordered copy: ACK it again
            target = contact_uri(response)
            if target is None:
                raise SipParseError("2xx without Contact", None)
            # §13.2.2.4: the 2xx recomputes the route set and the target of an early dialog.
            self.route_set = route_set_as_uac(response)
            self.remote_target = target
            return self._move(DialogInput.SUCCESS)
        if self.state is DialogState.CONFIRMED:
            return ()  # a non-2xx after the 2xx is the peer's fault: drop it
        return self._move(DialogInput.FAILURE, TerminationReason.REJECTED)

    def request_timed_out(self, request: Request) -> tuple[DialogEvent, ...]:
        """Our client transaction for `request` timed out or its transport failed: the
        dialog ends (§12.2.1.2), an early one too (Timer B)."""
        cseq = request.cseq
        if cseq.method == "INVITE" and self.invite_pending_out == cseq.seq:
            self.invite_pending_out = None
        if self.state is DialogState.TERMINATED or cseq.method in ("ACK", "CANCEL"):
            return ()
        if cseq == self.initial_cseq and self.state is DialogState.CONFIRMED:
            return ()  # the 2xx came; the transaction ending is not the dialog's
        return self._move(DialogInput.ENDED, TerminationReason.TIMED_OUT)

    def terminate(
        self, reason: TerminationReason = TerminationReason.LOCAL
    ) -> tuple[DialogEvent, ...]:
        """End the dialog without BYE: a fork given up, a subscription over, an ACK that
        never came (the TU still sends the BYE of §13.3.1.4 before calling this)."""
        if self.state is DialogState.TERMINATED:
            return ()
        return self._move(DialogInput.ENDED, reason)

    # -- requests from the peer ---------------------------------------------------------

    def receive_request(self, request: Request) -> Verdict:
        """Judge a request from the peer within this dialog (§12.2.2) before the TU sees it.

        500 for a CSeq below the remote CSeq (ACK and CANCEL exempt: they carry their
        INVITE's), 481 once terminated, 491 for an INVITE while ours is in progress and 500
        with Retry-After for one while the peer's previous INVITE is unanswered (§14.2).
        A target refresh request replaces the remote target with its Contact; a BYE ends the
        dialog. An ACK is passed on once, for the 2xx it acknowledges; others are ignored.
        """
        if request.call_id != self.id.call_id:
            raise LocalProtocolError("the request belongs to another call")
        method = request.method
        if method == "CANCEL":
            return Accepted()  # the transaction layer matches it to its INVITE (§9.2)
        if method == "ACK":
            return self._receive_ack(request)
        if self.state is DialogState.TERMINATED:
            return Rejected(status=481)
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return Rejected(status=500, reason="CSeq Out of Order")
        target: SipUri | None = None
        if method in TARGET_REFRESH:
            try:
                target = contact_uri(request)
            except SipParseError as exc:
                return Rejected(status=400, reason=str(exc))
        self.remote_seq = seq
        if method == "INVITE":
            if self.invite_pending_out is not None:
                return Rejected(status=491)
            if self.invite_pending_in is not None:
                return Rejected(status=500, retry_after=min(int(self._random() * 11), 10))
            self.invite_pending_in = seq
        events = self._refresh_target(target)
        if method == "BYE":
            events += self._move(DialogInput.BYE, TerminationReason.BYE_RECEIVED)
        return Accepted(events=events)

    def _receive_ack(self, request: Request) -> Verdict:
        seq = request.cseq.seq
        if self.awaiting_ack is None or seq != self.awaiting_ack:
            return Ignored(why="no 2xx of ours awaits this ACK")
        self.awaiting_ack = None
        return Accepted(events=(DialogAckReceived(dialog_id=self.id, cseq=seq),))

    def make_response(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Our response to the peer's request in this dialog (or to the one that created
        it): To tag, Record-Route and Contact as §12.1.1 wants. Pass it to response_sent."""
        return build_response(
            request,
            status,
            reason,
            to_tag=self.id.local_tag,
            contact=self.local_contact,
            body=body,
            content_type=content_type,
            extra_headers=extra_headers,
        )

    def response_sent(self, response: Response) -> tuple[DialogEvent, ...]:
        """Apply a response we send to the peer's request: a 2xx to the creating request
        confirms the dialog and a non-2xx final ends an early one; a final response to an
        INVITE ends its transaction for §14, and a 2xx to one awaits its ACK."""
        cseq = response.cseq
        status = response.status
        if cseq.method in ("ACK", "CANCEL") or status == 100:
            return ()
        if cseq.method == "INVITE" and status >= 200:
            if self.invite_pending_in == cseq.seq:
                self.invite_pending_in = None
            if status < 300:
                self.awaiting_ack = cseq.seq
        if self.role is not Role.UAS or cseq != self.initial_cseq:
            return ()
        if self.state is DialogState.TERMINATED:
            return ()  # e.g. the 487 to an INVITE whose early dialog a BYE ended
        if status < 200:
            return self._move(DialogInput.PROVISIONAL)
        if status < 300:
            return self._move(DialogInput.SUCCESS)
        if self.state is DialogState.CONFIRMED:
            raise LocalProtocolError("a non-2xx final response cannot follow the 2xx")
        return self._move(DialogInput.FAILURE, TerminationReason.REJECTED)

    # -- internals ----------------------------------------------------------------------

    def _refresh_target(self, target: SipUri | None) -> tuple[DialogEvent, ...]:
        if target is None or target == self.remote_target:
            return ()
        self.remote_target = target
        return (TargetRefreshed(dialog_id=self.id, remote_target=target),)

    def _move(
        self, event: DialogInput, reason: TerminationReason = TerminationReason.LOCAL
    ) -> tuple[DialogEvent, ...]:
        before = self.state
        self.state = next_state(before, event)
        if self.state is before:
            return ()
        if self.state is DialogState.CONFIRMED:
            return (DialogConfirmed(dialog_id=self.id),)
        # Pending INVITEs no longer matter; an awaited ACK may still come (BYE overtook it).
        self.invite_pending_out = self.invite_pending_in = None
        self.termination_reason = reason
        return (DialogTerminated(dialog_id=self.id, reason=reason),)
