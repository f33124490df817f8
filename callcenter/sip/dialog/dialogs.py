"""Every dialog of one UA, keyed by dialog ID: matching, creation, and 481 for the rest.

Owns the lookup of a request from the peer (local tag = To tag) and of a response to our
request (local tag = From tag), the creation of a dialog by the response that makes one
(§12.1), forks of one request as separate dialogs with their own remote tags, and the end of
every early dialog when the request fails (§13.2.2.3). Keeps terminated dialogs until the
caller discards them, so a late 2xx retransmission still finds its dialog.

Must not know: transactions and timers (the caller reports timeouts), sockets, or the TU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ..address import NameAddr
from ..errors import LocalProtocolError, SipParseError
from ..message import Request, Response
from .dialog import Dialog
from .events import (
    Accepted,
    DialogConfirmed,
    DialogEstablished,
    DialogEvent,
    Rejected,
    TerminationReason,
    Verdict,
    no_such_dialog,
)
from .routing import initial_remote_target, route_set_as_uas
from .rules import (
    DIALOG_CREATING,
    RandomFloat,
    build_response,
    creates_dialog,
    random_tag,
    system_random,
)
from .state import DialogId, DialogState, Role


def _established(dialog: Dialog) -> tuple[DialogEvent, ...]:
    created = DialogEstablished(dialog_id=dialog.id, role=dialog.role, state=dialog.state)
    if dialog.state is DialogState.CONFIRMED:
        return (created, DialogConfirmed(dialog_id=dialog.id))
    return (created,)


class Dialogs:
    """The dialogs of one UA. `make_tag` makes local tags, `random` feeds the back-offs."""

    __slots__ = ("_by_call_id", "_by_id", "_local_contact", "_make_tag", "_random")

    def __init__(
        self,
        *,
        local_contact: NameAddr | None = None,
        make_tag: Callable[[], str] = random_tag,
        random: RandomFloat = system_random,
    ) -> None:
        self._by_id: dict[DialogId, Dialog] = {}
        self._by_call_id: dict[str, dict[DialogId, Dialog]] = {}
        self._local_contact = local_contact
        self._make_tag = make_tag
        self._random = random

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._by_id.values()))

    def __contains__(self, dialog_id: object) -> bool:
        return dialog_id in self._by_id

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._by_id.get(dialog_id)

    def add(self, dialog: Dialog) -> None:
        if dialog.id in self._by_id:
            raise LocalProtocolError(f"dialog {dialog.id} exists already")
        self._by_id[dialog.id] = dialog
        self._by_call_id.setdefault(dialog.id.call_id, {})[dialog.id] = dialog

    def discard(self, dialog_id: DialogId) -> None:
        """Forget a dialog; do it some time after termination (64*T1 covers 2xx retries)."""
        self._by_id.pop(dialog_id, None)
        same_call = self._by_call_id.get(dialog_id.call_id)
        if same_call is not None:
            same_call.pop(dialog_id, None)
            if not same_call:
                del self._by_call_id[dialog_id.call_id]

    def _same_call(self, call_id: str) -> Iterable[Dialog]:
        return list(self._by_call_id.get(call_id, {}).values())

    # -- lookups ------------------------------------------------------------------------

    def find(self, request: Request) -> Dialog | None:
        """The dialog of a request from the peer (local tag = To tag, remote = From tag).

        An ACK that misses is also tried by Call-ID, From tag and the CSeq of a 2xx awaiting
        its ACK: pyVoIP puts a fresh, wrong To tag in its ACKs.
        """
        dialog = self._by_id.get(DialogId.as_uas(request)) if request.to_tag is not None else None
        if dialog is None and request.method == "ACK":
            seq = request.cseq.seq
            remote_tag = request.from_tag or ""
            for candidate in self._same_call(request.call_id):
                if candidate.id.remote_tag == remote_tag and candidate.awaiting_ack == seq:
                    return candidate
        return dialog

    def match_response(self, response: Response) -> Dialog | None:
        """The dialog of a response to our request (local tag = From tag, remote = To tag)."""
        return self._by_id.get(DialogId.as_uac(response))

    def early_dialogs(self, request: Request) -> list[Dialog]:
        """The early dialogs (one per fork) our dialog-creating `request` has so far."""
        local_tag = request.from_tag or ""
        return [
            d
            for d in self._same_call(request.call_id)
            if d.role is Role.UAC
            and d.id.local_tag == local_tag
            and d.initial_cseq == request.cseq
            and d.state is DialogState.EARLY
        ]

    def _created_by(self, request: Request) -> Dialog | None:
        """The UAS dialog an earlier response of ours to this (out-of-dialog) request made."""
        remote_tag = request.from_tag or ""
        for dialog in self._same_call(request.call_id):
            if (
                dialog.role is Role.UAS
                and dialog.id.remote_tag == remote_tag
                and dialog.initial_cseq == request.cseq
            ):
                return dialog
        return None

    # -- requests from the peer ---------------------------------------------------------

    def receive_request(self, request: Request) -> tuple[Dialog | None, Verdict]:
        """Judge a request from the peer. In a dialog: that dialog's verdict. With a To tag
        but no dialog: 481 (a stray ACK is ignored). A dialog-creating request without a
        usable Contact or with a non-SIP Record-Route: 400. Anything else is accepted with no
        dialog: it is new and the TU decides."""
        dialog = self.find(request)
        if dialog is not None:
            return dialog, dialog.receive_request(request)
        if request.to_tag is not None or request.method == "ACK":
            return None, no_such_dialog(request)
        if request.method in DIALOG_CREATING:
            try:
                contact = initial_remote_target(request)
                route_set_as_uas(request)
            except SipParseError as exc:
                return None, Rejected(status=400, reason=str(exc))
            if contact is None:
                return None, Rejected(status=400, reason="Missing Contact")
        return None, Accepted()

    def respond(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        contact: NameAddr | None = None,
        over_tls: bool = False,
    ) -> tuple[Response, tuple[DialogEvent, ...]]:
        """Build our response to the peer's request and apply it to the dialogs.

        In a dialog, the dialog builds and records it. Outside one: a 100 gets no To tag; a
        response that creates a dialog (§12.1) gets a fresh local tag, the request's
        Record-Route and our Contact (`contact` or the registry's), and makes a UAS dialog;
        later responses to the same request reuse that dialog's tag. Others get a fresh tag.
        """
        extra = tuple(extra_headers)
        in_dialog = request.to_tag is not None
        dialog = self.find(request) if in_dialog else self._created_by(request)
        if dialog is not None:
            response = dialog.make_response(
                request, status, reason, body=body, content_type=content_type, extra_headers=extra
            )
            return response, dialog.response_sent(response)
        our_contact = contact or self._local_contact
        creating = not in_dialog and creates_dialog(request.method, status)
        if creating and our_contact is None:
            raise LocalProtocolError("a dialog-creating response needs a local Contact")
        response = build_response(
            request,
            status,
            reason,
            to_tag=None if in_dialog or status == 100 else self._make_tag(),
            contact=our_contact,
            body=body,
            content_type=content_type,
            extra_headers=extra,
        )
        if not creating:
            return response, ()
        dialog = Dialog.create_uas(
            request, response, local_contact=our_contact, over_tls=over_tls, random=self._random
        )
        self.add(dialog)
        return response, _established(dialog)

    # -- responses to our requests ------------------------------------------------------

    def receive_response(
        self, request: Request, response: Response, *, over_tls: bool = False
    ) -> tuple[Dialog | None, tuple[DialogEvent, ...]]:
        """Apply the peer's response to our `request`: feed its dialog, or create one (a
        1xx with To tag or a 2xx to a dialog-creating request; each fork's To tag makes its
        own). A non-2xx final response to a dialog-creating request ends all its early
        dialogs (§13.2.2.3). A 2xx without usable Contact raises SipParseError (drop it)."""
        events: list[DialogEvent] = []
        dialog = self.match_response(response)
        if dialog is not None:
            events.extend(dialog.receive_response(response))
        elif (
            request.to_tag is None
            and creates_dialog(request.method, response.status)
            and (response.to_tag is not None or response.status >= 200)
        ):
            dialog = Dialog.create_uac(request, response, over_tls=over_tls, random=self._random)
            self.add(dialog)
            events.extend(_established(dialog))
        if request.to_tag is None and request.method in DIALOG_CREATING and response.status >= 300:
            events.extend(self.end_early(request, TerminationReason.REJECTED))
        return dialog, tuple(events)

    def request_timed_out(self, request: Request) -> tuple[DialogEvent, ...]:
        """Our client transaction for `request` timed out: its dialog ends, or, for a
        dialog-creating request, every early dialog it made (Timer B)."""
        if request.to_tag is None:
            events: list[DialogEvent] = []
            for early in self.early_dialogs(request):
                events.extend(early.request_timed_out(request))
            return tuple(events)
        dialog = self._by_id.get(DialogId.as_uac(request))
        return () if dialog is None else dialog.request_timed_out(request)

    def end_early(
        self, request: Request, reason: TerminationReason = TerminationReason.LOCAL
    ) -> tuple[DialogEvent, ...]:
        """End the early dialogs our `request` still has, e.g. the forks that never answered
        64*T1 after the first 2xx (§13.2.2.4)."""
        events: list[DialogEvent] = []
        for dialog in self.early_dialogs(request):
            events.extend(dialog.terminate(reason))
        return tuple(events)
