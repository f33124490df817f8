"""Call records: every call persisted with its timeline, wait and talk time and disposition.

Owns what the contact center remembers of a call once it is over: `CallLog` (the writer
behind the runtime: synchronous, memory-only calls on the hot path, one task writing
call_records in batches, recovery after a crash) and `CallRecordView` (a record as read).
Must not know: SIP, the engine, the ACD's or IVR's internals, HTTP. The runtime reports
what happened ("arrived", IVR nodes, digits, "queued", "offered", "answered", "hold",
"transfer", "ended" and by whom); this package keeps it, bounded, and never lets database
trouble reach a call.
"""

from __future__ import annotations

from .record import ENDED_BY, MAX_EVENTS, MAX_STRING, CallRecordView, jsonable
from .writer import LOST_WHY, CallLog

__all__ = [
    "ENDED_BY",
    "LOST_WHY",
    "MAX_EVENTS",
    "MAX_STRING",
    "CallLog",
    "CallRecordView",
    "jsonable",
]
