"""The rules a dialog applies that need no dialog: which responses create one, tags,
the glare retry interval (§14.1) and how a UA builds a response (§8.2.6, §12.1.1).

Must not know dialog state; `dialog.py` and `dialogs.py` build on these.
"""

from __future__ import annotations

import random as _random_module
import secrets
from collections.abc import Callable, Iterable

from ..address import NameAddr
from ..errors import LocalProtocolError
from ..message import Request, Response, make_response

RandomFloat = Callable[[], float]
"""A callable like `random.random`: a float in [0, 1)."""

MAX_CSEQ = 2**31 - 1  # §8.1.1.5
MAX_FORWARDS = 70
# Methods whose success creates a dialog: INVITE (RFC 3261), SUBSCRIBE (RFC 6665), REFER (3515).
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})
# Target refresh requests (RFC 3261 §12.2, RFC 3311, RFC 6665 §4.1.1 / §4.2.1).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})
Fields = tuple[tuple[str, str], ...]

system_random: RandomFloat = _random_module.SystemRandom().random


def random_tag() -> str:
    """A From/To tag: cryptographically random, 64 bits (§19.3 asks for at least 32)."""
    return secrets.token_hex(8)


def creates_dialog(method: str, status: int) -> bool:
    """Whether a response of `status` to `method` creates a dialog (§12.1): 101–299 to
    INVITE, 2xx to SUBSCRIBE and REFER."""
    if method == "INVITE":
        return 101 <= status < 300
    return method in DIALOG_CREATING and 200 <= status < 300


def glare_retry_after(*, owns_call_id: bool, random: RandomFloat) -> float:
    """Seconds to wait before retrying a re-INVITE that got 491 (§14.1), in units of 10 ms:
    2.1–4 s if we generated the Call-ID (we were the dialog's UAC), 0–2 s otherwise."""
    low, steps = (210, 191) if owns_call_id else (0, 201)
    return (low + min(int(random() * steps), steps - 1)) / 100


def set_body(message: Request | Response, body: bytes, content_type: str | None) -> None:
    if body and content_type is None:
        raise LocalProtocolError("a body needs a Content-Type")
    if body or content_type is not None:
        message.set_body(body, content_type)


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None,
    contact: NameAddr | None,
    body: bytes = b"",
    content_type: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """A response as a UA sends it (§8.2.6) plus, for 101–299, the Record-Route of the
    request (§12.1.1) and, to a dialog-creating or target refresh request, our Contact."""
    success = 100 < status < 300
    response = make_response(
        request, status, reason, to_tag=to_tag if status > 100 else None, record_route=success
    )
    method = request.method
    if success and contact is not None and (method in DIALOG_CREATING or method in TARGET_REFRESH):
        response.headers.add("Contact", str(contact))
    for name, value in extra_headers:
        response.headers.add(name, value)
    set_body(response, body, content_type)
    return response
