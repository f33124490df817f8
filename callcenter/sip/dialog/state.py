"""Who a dialog is and which states it may move through (RFC 3261 §12, §13.2.2, §15).

Owns the dialog ID, the role, and the `(state, input) -> state` table. The `Dialog` decides
which input a message amounts to; a pair missing from the table is a bug on our side and
raises LocalProtocolError, never a silent no-op. Must not know messages or routing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from ..errors import LocalProtocolError


class _Tagged(Protocol):
    @property
    def call_id(self) -> str: ...
    @property
    def from_tag(self) -> str | None: ...
    @property
    def to_tag(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID, local tag, remote tag (§12). A missing tag (RFC 2543 peer) is ""."""

    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def as_uas(cls, message: _Tagged) -> DialogId:
        """The ID seen from the receiving side: a request from the peer or our response to it
        (local tag = To tag, remote tag = From tag)."""
        return cls(message.call_id, message.to_tag or "", message.from_tag or "")

    @classmethod
    def as_uac(cls, message: _Tagged) -> DialogId:
        """The ID seen from the sending side: our request or the peer's response to it
        (local tag = From tag, remote tag = To tag)."""
        return cls(message.call_id, message.from_tag or "", message.to_tag or "")


class Role(enum.Enum):
    """Which side of the dialog-creating request we were. The UAC generated the Call-ID,
    which decides the 491 back-off (§14.1)."""

    UAC = "uac"
    UAS = "uas"


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogInput(enum.Enum):
    PROVISIONAL = "101-199 with a To tag to the dialog-creating request"
    SUCCESS = "2xx to the dialog-creating request"
    FAILURE = "non-2xx final response to the dialog-creating request"
    BYE = "BYE sent or received"
    ENDED = "481/408/timeout of a request in the dialog, or the TU ends it"


_E, _C, _T = DialogState.EARLY, DialogState.CONFIRMED, DialogState.TERMINATED
_I = DialogInput

TRANSITIONS: Mapping[tuple[DialogState, DialogInput], DialogState] = MappingProxyType(
    {
        (_E, _I.PROVISIONAL): _E,
        (_E, _I.SUCCESS): _C,
        (_E, _I.FAILURE): _T,  # §13.2.2.3: a non-2xx final ends every early dialog
        (_E, _I.BYE): _T,  # §15: the caller may BYE an early dialog
        (_E, _I.ENDED): _T,
        # A 1xx overtaken by the 2xx (UDP reorders) and 2xx retransmissions change nothing.
        (_C, _I.PROVISIONAL): _C,
        (_C, _I.SUCCESS): _C,
        (_C, _I.BYE): _T,
        (_C, _I.ENDED): _T,
        # (_C, FAILURE) is absent: no final non-2xx can follow a 2xx of the same request.
        # TERMINATED is final: nothing moves it.
    }
)


def next_state(state: DialogState, event: DialogInput) -> DialogState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(f"dialog cannot take {event.name} in state {state.name}") from None
