"""Voicemail dialled directly: what the router hands a call for `voicemail:BOX`.

Owns the INVITE's answer (or its 404 for a missing or malformed box) and nothing else: the
message is the service's. The engine knows this only as a `routing.CallApplication`.
"""

from __future__ import annotations

import logging

from callcenter.engine.calls import PendingCall
from callcenter.sip import SipUri

from .service import MAX_CALLER, VoicemailService, is_box

log = logging.getLogger(__name__)


class VoicemailApplication:
    """`take_call(pending, "sales")` answers and takes a message for box `sales`."""

    def __init__(self, service: VoicemailService) -> None:
        self.service = service

    async def take_call(self, pending: PendingCall, argument: str) -> None:
        calls = self.service.calls
        call_id = pending.request.call_id
        if not is_box(argument):
            log.info("call %s: no voicemail box %r", call_id, argument[:64])
            calls.reject(pending, 404, "No such voicemail box")
            return
        call = calls.answer(pending)
        if call is None:
            return  # cancelled meanwhile
        await self.service.record(call, argument, call_id=call_id, caller=caller_of(pending))


def caller_of(pending: PendingCall) -> str:
    """The From's user part (the path through the IVR passes the E.164 number instead)."""
    uri = pending.request.from_addr.uri
    user = (uri.user_unescaped or "") if isinstance(uri, SipUri) else ""
    return user[:MAX_CALLER]
